"""The exchange pages through real form posts: request, queue, one-click answers, calendar, notifications."""

from __future__ import annotations

from datetime import datetime

from exchange.exchange_world import SHANGHAI
from helpers import csrf_of, login


def _post(client, path, data):
    token = csrf_of(client, "/exchange")
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def test_request_through_the_form_with_a_row_scope_then_one_click_approve(xw):
    c = xw.client
    login(c, "water.steward")
    form = c.get("/exchange/requests/new", params={"dataset": "air"})
    assert form.status_code == 200 and 'name="cond_col_0"' in form.text
    sent = _post(
        c,
        "/exchange/requests/new",
        {
            "dataset": "air",
            "purpose": "防汛",
            "legal_basis": "办法第十条",
            "columns": ["station", "day", "pm25"],
            "cond_col_0": "station",
            "cond_op_0": "in",
            "cond_val_0": "东四，天坛",
            "cond_col_1": "pm25",
            "cond_op_1": ">",
            "cond_val_1": "30",
            "starts_on": "2026-09-18",
            "expires_on": "2026-10-31",
            "mode": "export",
            "action": "submit",
        },
    )
    assert sent.status_code == 303, sent.text
    page = c.get(sent.headers["location"])
    assert "submitted" in page.text or "已提交" in page.text
    mine = c.get("/exchange", params={"tab": "outgoing"})
    assert "防汛" in mine.text

    login(c, "env.steward")
    queue = c.get("/exchange", params={"tab": "incoming"})
    assert "防汛" in queue.text and "data-approve" in queue.text
    request_id = int(sent.headers["location"].rsplit("/", 1)[1])
    assert _post(c, f"/exchange/requests/{request_id}/approve", {}).status_code == 303
    shown = c.get(f"/exchange/requests/{request_id}")
    assert 'id="grant"' in shown.text

    rows = xw.rows().json()["rows"]
    assert {(r["station"], r["pm25"]) for r in rows} == {("东四", 35.5), ("东四", 80.1)}

    login(c, "water.steward")
    bell = c.get("/notifications")
    assert f"/exchange/requests/{request_id}" in bell.text
    assert _post(c, "/notifications/read", {}).status_code == 303


def test_reject_and_narrow_forms_require_reasons(xw):
    c = xw.client
    request_id = xw.ask().json()["id"]
    login(c, "env.steward")
    refused = _post(c, f"/exchange/requests/{request_id}/reject", {"reason": ""})
    assert refused.status_code == 422
    narrowed = _post(
        c,
        f"/exchange/requests/{request_id}/narrow",
        {"reason": "只给日期", "columns": ["station", "day"], "expires_on": "2026-10-15"},
    )
    assert narrowed.status_code == 303, narrowed.text
    page = c.get(f"/exchange/requests/{request_id}")
    assert "只给日期" in page.text
    assert xw.rows().json()["columns"] == ["station", "day"]


def test_the_owner_sees_usage_and_others_do_not(xw):
    xw.granted()
    xw.rows()
    c = xw.client
    login(c, "env.steward")
    usage = c.get("/exchange/usage/air")
    assert usage.status_code == 200 and "防汛调度" in usage.text
    login(c, "water.analyst")
    assert c.get("/exchange/usage/air").status_code == 403


def test_calendar_page_shows_and_edits_days(xw):
    c = xw.client
    login(c, "bureau.admin")
    page = c.get("/exchange/calendar", params={"year": "2026"})
    assert "国庆节" in page.text
    assert (
        _post(
            c, "/exchange/calendar", {"day": "2026-12-31", "name": "区级调休", "kind": "holiday"}
        ).status_code
        == 303
    )
    assert "区级调休" in c.get("/exchange/calendar", params={"year": "2026"}).text
    assert _post(c, "/exchange/calendar", {"day": "not-a-day"}).status_code == 422
    login(c, "env.steward")
    assert _post(c, "/exchange/calendar", {"day": "2026-12-30", "kind": "holiday"}).status_code == 403


def test_overdue_requests_are_highlighted_in_the_queue(xw):
    xw.ask()
    xw.at(datetime(2026, 9, 25, 9, 0, tzinfo=SHANGHAI))
    login(xw.client, "env.steward")
    queue = xw.client.get("/exchange", params={"tab": "incoming"})
    assert "overdue-row" in queue.text
    login(xw.client, "bureau.admin")
    everything = xw.client.get("/exchange", params={"tab": "all"})
    assert "overdue-row" in everything.text


def test_dataset_page_offers_a_request_to_others_and_usage_to_the_owner(xw):
    login(xw.client, "water.analyst")
    assert 'id="request-access"' in xw.client.get("/datasets/air").text
    login(xw.client, "env.steward")
    page = xw.client.get("/datasets/air").text
    assert 'id="request-access"' not in page and "/exchange/usage/air" in page


def test_dashboard_figures_page_and_publication_as_datasets(xw):
    request = xw.granted()
    xw.rows()
    xw.ask(purpose="第二个申请")
    xw.at(datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))
    figures = xw.client.get("/api/v1/exchange/dashboard", headers=xw.h("bureau.admin")).json()
    assert figures["requests_by_state"] == {"active": 1, "submitted": 1}
    assert [r["id"] for r in figures["overdue"]] != [] and request["id"] not in [
        r["id"] for r in figures["overdue"]
    ]
    assert figures["reply_time_by_owner"][str(xw.env.id)]["answered"] == 1
    assert figures["most_requested"][0] == {"dataset_id": request["dataset_id"], "requests": 2}
    assert any(r["org_id"] == xw.water.id and r["reads"] >= 1 for r in figures["reads"])
    assert xw.client.get("/api/v1/exchange/dashboard", headers=xw.h("env.steward")).status_code == 403
    xw.at(datetime(2026, 10, 20, 9, 0, tzinfo=SHANGHAI))
    soon = xw.client.get("/api/v1/exchange/dashboard", headers=xw.h("bureau.admin")).json()["expiring_grants"]
    assert [g["id"] for g in soon] == [request["grant_id"]]

    published = xw.client.post("/api/v1/exchange/dashboard/publish", headers=xw.h("bureau.admin"))
    assert published.status_code == 200, published.text
    assert published.json()["exchange-requests-by-state"] == 0
    rows = xw.client.get(
        "/api/v1/datasets/exchange-requests-by-state/rows", headers=xw.h("env.analyst")
    ).json()
    assert {r["state"]: r["requests"] for r in rows["rows"]} == {"active": 1, "submitted": 1}
    expiring = xw.client.get(
        "/api/v1/datasets/exchange-expiring-grants/rows", headers=xw.h("env.analyst")
    ).json()
    assert [r["grant"] for r in expiring["rows"]] == [request["grant_id"]]
    most = xw.client.get("/api/v1/datasets/exchange-most-requested/rows", headers=xw.h("env.analyst")).json()
    assert most["rows"] == [{"dataset": "air", "requests": 2}]
    again = xw.client.post("/api/v1/exchange/dashboard/publish", headers=xw.h("bureau.admin")).json()
    assert again["exchange-requests-by-state"] == 1

    login(xw.client, "bureau.admin")
    page = xw.client.get("/exchange/dashboard")
    assert page.status_code == 200 and 'id="chart-states"' in page.text


def test_data_issue_through_the_pages(xw):
    c = xw.client
    login(c, "water.analyst")
    assert 'id="report-problem"' in c.get("/datasets/open-air").text
    form = c.get("/exchange/issues/new", params={"dataset": "open-air"})
    assert 'name="key_station"' in form.text
    sent = _post(
        c,
        "/exchange/issues/new",
        {
            "dataset": "open-air",
            "kind": "value",
            "key_station": "天坛",
            "key_day": "2026-01-02",
            "column": "pm25",
            "problem": "缺少 PM2.5 数值",
            "suggested_value": "22.5",
        },
    )
    assert sent.status_code == 303, sent.text
    issue_path = sent.headers["location"]
    login(c, "env.steward")
    assert "缺少 PM2.5 数值" in c.get("/exchange/issues").text
    assert _post(c, f"{issue_path}/triage", {"state": "accepted"}).status_code == 303
    edited = _post(c, f"{issue_path}/edit", {"value": "22.5", "reason": "补录"})
    assert edited.status_code == 303, edited.text
    assert "fixed" in c.get(issue_path).text or "已修复" in c.get(issue_path).text
    login(c, "water.analyst")
    assert _post(c, f"{issue_path}/confirm", {}).status_code == 303
    rows = xw.rows(dataset="open-air", where='{"column": "station", "op": "=", "value": "天坛"}').json()[
        "rows"
    ]
    assert {r["day"]: r["pm25"] for r in rows} == {"2026-01-01": 20.0, "2026-01-02": 22.5}


def test_derived_dataset_through_the_pages_and_its_lineage_graph(xw):
    xw.granted(mode="query")
    login(xw.client, "water.steward")
    page = xw.client.get("/exchange/derived")
    assert 'id="derive-form"' in page.text and "<code>air</code>" in page.text
    made = _post(
        xw.client,
        "/exchange/derived",
        {
            "slug": "air-daily",
            "title_zh": "日均",
            "sql": "SELECT day, avg(pm25) AS pm25 FROM air GROUP BY day",
        },
    )
    assert made.status_code == 303, made.text
    graph = xw.client.get("/exchange/lineage/air-daily")
    assert graph.status_code == 200 and "<svg" in graph.text and "v0 → v0" in graph.text
    refused = _post(
        xw.client, "/exchange/derived", {"slug": "x-y", "title_zh": "x", "sql": "SELECT * FROM read_csv('a')"}
    )
    assert refused.status_code == 422
