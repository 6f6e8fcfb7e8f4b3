"""Feedback -> correction -> re-share: data issues through the API."""

from __future__ import annotations

from sqlalchemy import select

from zhishe.core.notifications.models import Notification


def _file(xw, who="water.analyst", **changes):
    body = {
        "dataset": "air",
        "kind": "value",
        "problem": "PM2.5 在 1 月 2 日东四站明显偏高，疑为录入错误",
        "key_values": {"station": "东四", "day": "2026-01-02"},
        "column": "pm25",
        "suggested_value": "40.1",
    }
    body.update(changes)
    return xw.client.post("/api/v1/exchange/issues", json=body, headers=xw.h(who))


def _act(xw, issue_id, action, who="env.steward", **body):
    return xw.client.post(
        f"/api/v1/exchange/issues/{issue_id}/{action}", json=body or None, headers=xw.h(who)
    )


def test_report_triage_edit_in_place_notify_and_confirm(xw):
    xw.granted()
    filed = _file(xw)
    assert filed.status_code == 201, filed.text
    issue = filed.json()
    assert issue["state"] == "open" and issue["version"] == 0

    asked = _act(xw, issue["id"], "triage", state="needs_info", reason="请提供监测原始记录编号")
    assert asked.json()["state"] == "needs_info"
    answered = _act(xw, issue["id"], "comments", who="water.analyst", body="原始记录编号 A-102")
    assert answered.json()["state"] == "open"
    assert _act(xw, issue["id"], "triage", state="accepted").json()["state"] == "accepted"

    assert _act(xw, issue["id"], "edit", value="40.1", reason="").status_code == 422
    fixed = _act(xw, issue["id"], "edit", value="40.1", reason="按原始记录 A-102 更正")
    assert fixed.status_code == 200, fixed.text
    body = fixed.json()
    assert body["state"] == "fixed" and body["fixed_version"] == 1
    assert [e["state"] for e in body["thread"] if e["kind"] == "state"] == [
        "open",
        "needs_info",
        "open",
        "accepted",
        "fixed",
    ]

    got = xw.rows(where='{"column": "day", "op": "=", "value": "2026-01-02"}')
    assert got.status_code == 200, got.text
    rows = got.json()["rows"]
    assert rows == [{"station": "东四", "day": "2026-01-02", "pm25": 40.1}]
    versions = xw.client.get("/api/v1/datasets/air/versions", headers=xw.h("env.steward")).json()
    assert versions[0]["note"] == "按原始记录 A-102 更正" and versions[0]["mode"] == "upsert"
    assert versions[0]["row_count"] == 4

    told = xw.db.scalars(select(Notification).where(Notification.kind == "exchange.correction")).all()
    assert {n.user_id for n in told} >= {xw.users["water.analyst"].id, xw.users["water.steward"].id}
    assert "~1" in told[0].message["values"]["summary"]

    assert _act(xw, issue["id"], "confirm", who="env.steward").status_code == 403
    assert _act(xw, issue["id"], "confirm", who="water.analyst").json()["state"] == "confirmed"
    turnaround = xw.client.get("/api/v1/exchange/turnaround", headers=xw.h("env.steward")).json()
    assert turnaround["by_owner"][str(xw.env.id)]["count"] == 1


def test_fix_by_an_imported_version_and_reopen(xw):
    issue = _file(xw, who="env.analyst").json()
    assert _act(xw, issue["id"], "fix", version=0).status_code == 422  # not newer
    assert (
        xw.upload(
            "air", b"station,day,pm25,aqi,reporter_phone\n\xe4\xb8\x9c\xe5\x9b\x9b,2026-01-03,1,1,1\n"
        ).status_code
        == 201
    )
    fixed = _act(xw, issue["id"], "fix", version=1, note="补录")
    assert fixed.json()["state"] == "fixed"
    reopened = _act(xw, issue["id"], "reopen", who="env.analyst", reason="1 月 2 日的值仍未更正")
    assert reopened.json()["state"] == "reopened" and reopened.json()["fixed_version"] is None


def test_bad_reports_are_refused_clearly(xw):
    assert _file(xw, kind="bogus").status_code == 422
    assert _file(xw, column="nope").status_code == 422
    assert _file(xw, key_values={"station": "东四"}).status_code == 422  # not the whole key
    assert _file(xw, key_values=None).status_code == 422
    assert _file(xw, kind="missing_period", key_values=None, column="").status_code == 422
    assert (
        _file(xw, kind="missing_period", key_values=None, column="", period="2026-01-03").status_code == 201
    )
    assert _file(xw, dataset="secret-air").status_code == 403
    assert _file(xw, who="resident.li").status_code == 403
    issue = _file(xw).json()
    assert _act(xw, issue["id"], "triage", state="rejected").status_code == 422
    assert _act(xw, issue["id"], "triage", state="accepted", who="water.analyst").status_code == 403
    assert (
        xw.client.get(f"/api/v1/exchange/issues/{issue['id']}", headers=xw.h("resident.li")).status_code
        == 403
    )
    assert _act(xw, issue["id"], "edit", value="not a number", reason="x").status_code == 422
