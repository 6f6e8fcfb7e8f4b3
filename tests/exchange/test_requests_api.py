"""Apply-reply requests through the API: lifecycle, deadlines, grants enforced on every read."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pyarrow.parquet as pq
from sqlalchemy import select

from exchange.exchange_world import SHANGHAI
from zhishe.core.audit.models import AuditEvent
from zhishe.core.notifications.models import Notification


def test_full_lifecycle_request_approve_read_export_usage_revoke(xw):
    asked = xw.ask()
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "submitted"
    # Friday 18 Sep; Sat off, Sun 20 Sep is a make-up working day: 20, 21, 22, 23, 24 -> end of the 24th
    assert datetime.fromisoformat(request["due_at"]) == datetime(2026, 9, 25, tzinfo=SHANGHAI)

    before = xw.rows()
    assert before.status_code == 403
    assert "approved request" in before.json()["error"]["message"]

    queue = xw.client.get(
        "/api/v1/exchange/requests", params={"box": "incoming"}, headers=xw.h("env.steward")
    )
    assert [r["id"] for r in queue.json()["items"]] == [request["id"]]
    owners = xw.db.scalars(select(Notification.user_id).where(Notification.kind == "exchange.request")).all()
    assert set(owners) == {xw.users["env.steward"].id, xw.users["env.admin"].id}

    approved = xw.act(request["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "active"
    grant_id = approved.json()["grant_id"]

    page = xw.rows()
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["columns"] == ["station", "day", "pm25"]
    assert {r["station"] for r in body["rows"]} == {"东四"}
    assert len(body["rows"]) == 2

    # the same through the spine's read API with the grant named, and a filter of the reader's own
    narrowed = xw.client.get(
        "/api/v1/datasets/air/rows",
        params={"grant": grant_id, "where": '{"column": "pm25", "op": ">", "value": 50}'},
        headers=xw.h("water.analyst"),
    )
    assert narrowed.status_code == 200, narrowed.text
    assert [r["day"] for r in narrowed.json()["rows"]] == ["2026-01-02"]

    exported = xw.client.get(
        "/api/v1/exchange/datasets/air/export", params={"format": "csv"}, headers=xw.h("water.analyst")
    )
    assert exported.status_code == 200, exported.text
    table = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8"))))
    assert [row["station"] for row in table] == ["东四", "东四"]
    assert set(table[0]) == {"station", "day", "pm25"}
    parquet = xw.client.get(
        "/api/v1/exchange/datasets/air/export", params={"format": "parquet"}, headers=xw.h("water.analyst")
    )
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 2

    usage = xw.client.get("/api/v1/exchange/datasets/air/usage", headers=xw.h("env.steward")).json()
    assert usage == [
        {
            "grant_id": grant_id,
            "org_id": xw.water.id,
            "purpose": "防汛调度需要空气质量监测数据",
            "reads": 4,
            "rows": 7,
            "last_read_at": usage[0]["last_read_at"],
        }
    ]
    reads = xw.db.scalars(
        select(AuditEvent).where(AuditEvent.action == "dataset.read", AuditEvent.actor == "water.analyst")
    ).all()
    assert reads and all('"purpose"' in e.detail and '"grant"' in e.detail for e in reads)

    revoked = xw.act(request["id"], "revoke", reason="用途已结束")
    assert revoked.json()["state"] == "revoked"
    after = xw.rows()
    assert after.status_code == 403


def test_columns_and_versions_outside_the_grant_are_refused_and_audited(xw):
    request = xw.granted(min_version=1)
    assert request["state"] == "active"
    hidden = xw.rows(select="station,reporter_phone")
    assert hidden.status_code == 403
    assert "reporter_phone" in hidden.json()["error"]["message"]
    probing = xw.rows(where='{"column": "reporter_phone", "op": "=", "value": "13800000001"}')
    assert probing.status_code == 403, "a filter on a hidden column would leak its values"
    old = xw.rows(version=0)
    assert old.status_code == 403
    assert "version 0" in old.json()["error"]["message"]
    refusals = xw.db.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.read_refused")).all()
    assert len(refusals) == 3
    ordered = xw.rows(order="aqi:desc")
    assert ordered.status_code == 403


def test_query_grants_do_not_allow_bulk_export(xw):
    xw.granted(mode="query")
    response = xw.client.get("/api/v1/exchange/datasets/air/export", headers=xw.h("water.analyst"))
    assert response.status_code == 403
    assert "not bulk export" in response.json()["error"]["message"]


def test_expiry_stops_access_on_the_very_next_request(xw):
    xw.granted(expires_on="2026-09-30")
    xw.at(datetime(2026, 9, 30, 23, 59, 59, tzinfo=SHANGHAI))
    assert xw.rows().status_code == 200
    xw.at(datetime(2026, 10, 1, 0, 0, 0, tzinfo=SHANGHAI))
    assert xw.rows().status_code == 403
    listed = xw.client.get("/api/v1/exchange/requests", headers=xw.h("water.steward")).json()["items"]
    assert listed[0]["state"] == "expired"


def test_a_grant_starts_only_with_its_period(xw):
    request = xw.granted(starts_on="2026-10-08")
    assert request["state"] == "approved"
    assert xw.rows().status_code == 403
    xw.at(datetime(2026, 10, 8, 0, 0, tzinfo=SHANGHAI))
    assert xw.rows().status_code == 200
    listed = xw.client.get("/api/v1/exchange/requests", headers=xw.h("water.steward")).json()["items"]
    assert listed[0]["state"] == "active"


def test_narrowing_needs_a_reason_and_only_narrows(xw):
    request = xw.ask(row_filter=None).json()
    assert xw.act(request["id"], "narrow", columns=["station", "day"]).status_code == 422
    wider = xw.act(request["id"], "narrow", reason="x", columns=["station", "aqi"])
    assert wider.status_code == 422
    assert "aqi" in wider.json()["error"]["message"]
    longer = xw.act(request["id"], "narrow", reason="x", expires_on="2027-01-01")
    assert longer.status_code == 422
    done = xw.act(
        request["id"],
        "narrow",
        reason="只提供东四站点",
        columns=["station", "day"],
        row_filter={"column": "station", "op": "=", "value": "东四"},
        expires_on="2026-10-15",
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "active" and done.json()["narrowed"] is True
    grant = xw.client.get(f"/api/v1/exchange/grants/{done.json()['grant_id']}", headers=xw.h("water.analyst"))
    assert grant.json()["columns"] == ["station", "day"]
    rows = xw.rows().json()
    assert rows["columns"] == ["station", "day"] and {r["station"] for r in rows["rows"]} == {"东四"}
    assert xw.rows(select="pm25").status_code == 403


def test_rejection_needs_a_reason_and_is_final(xw):
    request = xw.ask().json()
    assert xw.act(request["id"], "reject").status_code == 422
    assert xw.act(request["id"], "reject", reason="   ").status_code == 422
    rejected = xw.act(request["id"], "reject", reason="数据正在更正")
    assert rejected.json()["state"] == "rejected" and rejected.json()["reason"] == "数据正在更正"
    again = xw.act(request["id"], "approve")
    assert again.status_code == 409
    assert xw.rows().status_code == 403


def test_not_shared_datasets_cannot_be_requested_or_read(xw):
    response = xw.ask(dataset="secret-air")
    assert response.status_code == 403
    assert "不予共享" in response.json()["error"]["message"]
    assert xw.rows(dataset="secret-air").status_code == 403
    meta = xw.client.get("/api/v1/datasets/secret-air", headers=xw.h("water.analyst"))
    assert meta.status_code == 200 and meta.json()["legal_basis"] == "《环境保护法》"


def test_unconditional_open_columns_need_no_grant_but_personal_ones_do(xw):
    open_rows = xw.rows(dataset="open-air")
    assert open_rows.status_code == 200
    assert "reporter_phone" not in open_rows.json()["columns"]
    assert xw.rows(dataset="open-air", select="station,reporter_phone").status_code == 403
    xw.granted(dataset="open-air", columns=["reporter_phone"], row_filter=None)
    personal = xw.rows(dataset="open-air", select="station,reporter_phone")
    assert personal.status_code == 200
    assert len(personal.json()["rows"]) == 4


def test_who_may_do_what(xw):
    request = xw.ask().json()
    assert xw.act(request["id"], "approve", who="env.analyst").status_code == 403
    assert xw.act(request["id"], "approve", who="water.steward").status_code == 403
    assert xw.ask(who="resident.li").status_code == 403
    # the bureau answers in the owner's place only once the deadline has passed
    early = xw.act(request["id"], "approve", who="bureau.admin")
    assert early.status_code == 403 and "not overdue" in early.json()["error"]["message"]
    xw.at(datetime(2026, 9, 25, 0, 0, tzinfo=SHANGHAI))
    overdue = xw.client.get("/api/v1/exchange/requests", params={"box": "all"}, headers=xw.h("bureau.admin"))
    assert overdue.json()["items"][0]["overdue"] is True
    assert overdue.json()["items"][0]["escalated_at"] is not None
    assert xw.db.scalars(select(Notification).where(Notification.kind == "exchange.overdue")).all()
    answered = xw.act(request["id"], "approve", who="bureau.admin")
    assert answered.status_code == 200 and answered.json()["answered_for_owner"] is True
    assert (
        xw.client.get(
            "/api/v1/exchange/requests", params={"box": "all"}, headers=xw.h("env.steward")
        ).status_code
        == 403
    )


def test_the_bureau_reassigns_an_overdue_request(xw):
    request = xw.ask().json()
    xw.at(datetime(2026, 9, 26, 9, 0, tzinfo=SHANGHAI))
    wrong = xw.act(request["id"], "reassign", who="bureau.admin", assignee="water.steward")
    assert wrong.status_code == 422
    moved = xw.act(request["id"], "reassign", who="bureau.admin", assignee="env.admin", reason="原经办人休假")
    assert moved.status_code == 200, moved.text
    # Saturday 26 Sep: 28, 29, 30 Sep, then National Day until 7 Oct, 8 and 9 Oct -> end of 9 Oct
    assert datetime.fromisoformat(moved.json()["due_at"]) == datetime(2026, 10, 10, tzinfo=SHANGHAI)
    assert xw.act(request["id"], "reassign", who="env.steward", assignee="env.admin").status_code == 403


def test_hostile_row_filters_are_refused_with_a_clear_error(xw):
    cases = [
        ({"column": "station", "op": "=", "value": "东四' OR '1'='1"}, 201),  # a value, never SQL
        ({"column": "station; DROP TABLE x", "op": "=", "value": "a"}, 422),
        ({"column": "station", "op": "LIKE", "value": "%"}, 422),
        ({"column": "nope", "op": "=", "value": "a"}, 422),
        ({"column": "aqi", "op": ">", "value": "not a number"}, 422),
        ({"column": "station", "op": "in", "value": [str(i) for i in range(5000)]}, 422),
        ({"or": []}, 422),
        ({"sql": "1=1"}, 422),
    ]
    for row_filter, status in cases:
        response = xw.ask(row_filter=row_filter)
        assert response.status_code == status, (row_filter, response.text)
        if status == 422:
            assert response.json()["error"]["message"]
    injected = xw.db.scalar(select(AuditEvent).where(AuditEvent.action == "exchange.request.submit"))
    assert injected is not None
    request_id = int(injected.object_id)
    xw.act(request_id, "approve")
    assert xw.rows().json()["rows"] == [], "the quote-laden value matches no station literally"


def test_bad_periods_columns_and_states_are_refused(xw):
    assert xw.ask(expires_on="2026-09-01").status_code == 422
    assert xw.ask(starts_on="2026-10-01", expires_on="2026-09-30").status_code == 422
    assert xw.ask(columns=["nope"]).status_code == 422
    assert xw.ask(columns=[]).status_code == 422
    assert xw.ask(purpose="").status_code == 422
    assert xw.ask(dataset="air", who="env.steward").status_code == 422  # one's own dataset
    draft = xw.ask(submit=False).json()
    assert draft["state"] == "draft"
    assert xw.act(draft["id"], "approve").status_code in (403, 404, 409)
    assert xw.act(draft["id"], "submit", who="water.steward").json()["state"] == "submitted"
    assert xw.act(draft["id"], "submit", who="water.steward").status_code == 409
    assert xw.client.get("/api/v1/exchange/requests/999999", headers=xw.h("water.steward")).status_code == 404
    other = xw.client.get(f"/api/v1/exchange/requests/{draft['id']}", headers=xw.h("resident.li"))
    assert other.status_code == 403


def test_grant_lists_for_grantee_and_owner(xw):
    request = xw.granted()
    held = xw.client.get("/api/v1/exchange/grants", headers=xw.h("water.analyst")).json()["items"]
    given = xw.client.get("/api/v1/exchange/grants", params={"side": "given"}, headers=xw.h("env.steward"))
    assert [g["id"] for g in held] == [request["grant_id"]] == [g["id"] for g in given.json()["items"]]
    assert held[0]["active"] is True
    assert xw.client.get("/api/v1/exchange/grants", headers=xw.h("resident.li")).status_code == 403


def test_subscribers_hear_of_every_new_version_in_the_app(xw):
    xw.granted(mode="subscription")
    xw.granted(who="env.steward", mode="query", purpose="只查询")  # not a subscription: not told
    before = xw.db.scalars(select(Notification).where(Notification.kind == "exchange.version")).all()
    assert before == []
    assert (
        xw.upload(
            "air", b"station,day,pm25,aqi,reporter_phone\n\xe5\xa4\xa9\xe5\x9d\x9b,2026-01-03,9,9,1\n"
        ).status_code
        == 201
    )
    told = xw.db.scalars(select(Notification).where(Notification.kind == "exchange.version")).all()
    assert {n.user_id for n in told} == {xw.users["water.steward"].id, xw.users["water.analyst"].id}
    assert told[0].message["values"] == {"slug": "air", "version": "1"}
