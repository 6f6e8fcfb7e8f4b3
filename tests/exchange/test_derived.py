"""Derived datasets over granted views: SQL guarded, grants enforced, lineage kept, staleness told."""

from __future__ import annotations

from sqlalchemy import select

from zhishe.core.notifications.models import Notification


def _derive(xw, sql, slug="air-by-station", who="water.steward"):
    return xw.client.post(
        "/api/v1/exchange/derived",
        json={"slug": slug, "title_zh": "各站点均值", "sql": sql},
        headers=xw.h(who),
    )


def test_derived_dataset_holds_only_granted_rows_and_keeps_lineage(xw):
    xw.granted(mode="query")  # rows of 东四 only, columns station, day, pm25
    views = xw.client.get("/api/v1/exchange/views", headers=xw.h("water.steward")).json()
    assert views == [
        {"name": "air", "dataset": "air", "dataset_id": views[0]["dataset_id"], "grant_id": views[0]["grant_id"],
         "columns": ["station", "day", "pm25"]}
    ]  # fmt: skip
    made = _derive(
        xw, "SELECT station, count(*) AS n, round(avg(pm25), 2) AS mean_pm25 FROM air GROUP BY station"
    )
    assert made.status_code == 201, made.text
    assert made.json()["version"] == 0
    rows = xw.client.get("/api/v1/datasets/air-by-station/rows", headers=xw.h("water.analyst")).json()
    assert rows["rows"] == [{"station": "东四", "n": 2, "mean_pm25": 57.8}]
    meta = xw.client.get("/api/v1/datasets/air-by-station", headers=xw.h("water.analyst")).json()
    assert meta["sharing_class"] == "conditional"

    graph = xw.client.get(
        "/api/v1/exchange/datasets/air-by-station/lineage", headers=xw.h("water.analyst")
    ).json()
    assert {n["slug"]: n["role"] for n in graph["nodes"]} == {"air-by-station": "self", "air": "upstream"}
    assert graph["edges"][0]["source_version"] == 0
    down = xw.client.get("/api/v1/exchange/datasets/air/lineage", headers=xw.h("env.steward")).json()
    assert {n["slug"]: n["role"] for n in down["nodes"]} == {"air": "self", "air-by-station": "downstream"}

    # a new source version marks it stale and tells its owner; one action refreshes it
    assert (
        xw.upload(
            "air", b"station,day,pm25,aqi,reporter_phone\n\xe4\xb8\x9c\xe5\x9b\x9b,2026-01-05,10,9,1\n"
        ).status_code
        == 201
    )
    listed = xw.client.get("/api/v1/exchange/derived", headers=xw.h("water.steward")).json()
    assert listed[0]["stale"] is True
    told = xw.db.scalars(select(Notification).where(Notification.kind == "exchange.derived")).all()
    assert {n.user_id for n in told} == {xw.users["water.steward"].id}
    refreshed = xw.client.post(
        "/api/v1/exchange/derived/air-by-station/refresh", headers=xw.h("water.steward")
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["version"] == 1
    rows = xw.client.get("/api/v1/datasets/air-by-station/rows", headers=xw.h("water.analyst")).json()["rows"]
    assert rows == [{"station": "东四", "n": 3, "mean_pm25": 41.87}]
    assert (
        xw.client.get("/api/v1/exchange/derived", headers=xw.h("water.steward")).json()[0]["stale"] is False
    )


def test_hostile_derived_sql_is_refused_with_a_clear_error(xw):
    xw.granted(mode="query")
    cases = {
        "SELECT * FROM read_csv('/etc/passwd')": "read_csv",
        "SELECT * FROM read_parquet('x.parquet')": "read_parquet",
        "COPY air TO '/tmp/x.csv'": "COPY",
        "ATTACH '/tmp/x.db' AS x": "ATTACH",
        "INSTALL httpfs": "INSTALL",
        "SELECT * FROM air; DROP TABLE air": "statement",
        "SELECT * FROM air -- harmless\n; ATTACH 'x.db'": "statement",
        "SELECT * FROM open_air": "open_air",
        "SELECT * FROM secret_air": "secret_air",
        "SELECT * FROM air WHERE station IN (" + ",".join(f"'{i}'" for i in range(5000)) + ")": "1,000",
        "SELECT * FROM 'x.csv'": "x.csv",
        "SELECT reporter_phone FROM air": "reporter_phone",
    }
    for sql, named in cases.items():
        response = _derive(xw, sql)
        assert response.status_code == 422, (sql, response.text)
        assert named.lower() in response.json()["error"]["message"].lower(), (sql, response.json())
    assert xw.client.get("/api/v1/datasets/air-by-station", headers=xw.h("water.steward")).status_code == 404


def test_no_derived_dataset_without_a_live_grant(xw):
    request = xw.granted(mode="query")
    xw.act(request["id"], "revoke", reason="结束")
    refused = _derive(xw, "SELECT * FROM air")
    assert refused.status_code == 422 and "air" in refused.json()["error"]["message"]
    assert _derive(xw, "SELECT 1 AS one").status_code == 422
    assert _derive(xw, "SELECT * FROM air", who="water.analyst").status_code == 403
