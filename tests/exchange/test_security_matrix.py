"""The exchange's security matrix: for every way in (page, rows API, query API, aggregate, export,
exchange rows, exchange export, CLI export, derived SQL) and every situation (no grant, columns or
rows outside the grant, after expiry, after revocation, a 不予共享 dataset), nothing outside the
grant is read."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from typer.testing import CliRunner

from exchange.exchange_world import SHANGHAI
from helpers import login
from zhishe.cli import app as cli_app

OUTSIDE_ROW = "天坛"  # the grant covers station 东四 only
HIDDEN_COLUMN = "aqi"  # the grant covers station, day, pm25


def _rows_of(response) -> list[dict]:
    if response.status_code != 200:
        return []
    kind = response.headers.get("content-type", "")
    if "csv" in kind:
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    body = response.json()
    return body.get("rows", [])


WAYS = {
    "rows-api": lambda xw, ds, extra: xw.client.get(
        f"/api/v1/datasets/{ds}/rows", params=extra, headers=xw.h("water.analyst")
    ),
    "query-api": lambda xw, ds, extra: xw.client.post(
        f"/api/v1/datasets/{ds}/query",
        json={
            k: (v.split(",") if k == "select" else json.loads(v) if k == "where" else v)
            for k, v in extra.items()
        },
        headers=xw.h("water.analyst"),
    ),
    "exchange-rows": lambda xw, ds, extra: xw.client.get(
        f"/api/v1/exchange/datasets/{ds}/rows", params=extra, headers=xw.h("water.analyst")
    ),
    "export": lambda xw, ds, extra: xw.client.get(
        f"/api/v1/datasets/{ds}/export", params={"format": "csv", **extra}, headers=xw.h("water.analyst")
    ),
    "exchange-export": lambda xw, ds, extra: xw.client.get(
        f"/api/v1/exchange/datasets/{ds}/export",
        params={"format": "csv", **extra},
        headers=xw.h("water.analyst"),
    ),
}


def _leaks(rows: list[dict]) -> list[str]:
    found = []
    for row in rows:
        if row.get("station") == OUTSIDE_ROW:
            found.append("row outside the grant")
        if HIDDEN_COLUMN in row or "reporter_phone" in row:
            found.append("column outside the grant")
    return found


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize(
    "situation",
    ["no-grant", "granted", "ask-hidden-column", "filter-hidden-column", "expired", "revoked", "not-shared"],
)
def test_no_way_in_reads_outside_the_grant(xw, way, situation):
    dataset = "secret-air" if situation == "not-shared" else "air"
    if situation not in {"no-grant", "not-shared"}:
        request = xw.granted(expires_on="2026-09-30")
    extra: dict[str, str] = {}
    if situation == "ask-hidden-column":
        extra["select"] = f"station,{HIDDEN_COLUMN}"
    if situation == "filter-hidden-column":
        extra["where"] = json.dumps({"column": HIDDEN_COLUMN, "op": ">", "value": 0})
    if situation == "expired":
        xw.at(datetime(2026, 10, 1, 0, 0, tzinfo=SHANGHAI))
    if situation == "revoked":
        xw.act(request["id"], "revoke", reason="结束")
    if way == "query-api":
        extra.setdefault("select", "station,day,pm25")
    response = WAYS[way](xw, dataset, extra)
    rows = _rows_of(response)
    assert _leaks(rows) == [], (way, situation, response.text[:300])
    if situation == "granted":
        assert response.status_code == 200, response.text
        assert {r["station"] for r in rows} == {"东四"}
    else:
        assert response.status_code in (403, 422), (way, situation, response.status_code, response.text[:300])


@pytest.mark.parametrize("situation", ["no-grant", "granted", "expired", "revoked"])
def test_the_page_and_the_cli_read_only_inside_the_grant(xw, situation, tmp_path):
    if situation != "no-grant":
        request = xw.granted(expires_on="2026-09-30")
    if situation == "expired":
        xw.at(datetime(2026, 10, 1, 0, 0, tzinfo=SHANGHAI))
    if situation == "revoked":
        xw.act(request["id"], "revoke", reason="结束")
    login(xw.client, "water.analyst")
    page = xw.client.get("/datasets/air", params={"tab": "preview"})
    assert page.status_code == 200
    assert (
        OUTSIDE_ROW not in page.text.split('id="preview-table"')[-1]
        if 'id="preview-table"' in page.text
        else True
    )
    assert ("东四" in page.text) == (situation == "granted")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        cli_app, ["dataset", "export", "air", "-o", str(out), "--as", "water.analyst"]
    )
    if situation == "granted":
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert _leaks(rows) == [] and {r["station"] for r in rows} == {"东四"}
    else:
        assert result.exit_code == 1 and not out.exists()


@pytest.mark.parametrize("situation", ["no-grant", "granted", "expired", "revoked"])
def test_derived_sql_reads_only_inside_the_grant(xw, situation):
    if situation != "no-grant":
        request = xw.granted(expires_on="2026-09-30", mode="query")
    if situation == "expired":
        xw.at(datetime(2026, 10, 1, 0, 0, tzinfo=SHANGHAI))
    if situation == "revoked":
        xw.act(request["id"], "revoke", reason="结束")
    response = xw.client.post(
        "/api/v1/exchange/derived",
        json={"slug": "probe", "title_zh": "probe", "sql": "SELECT * FROM air"},
        headers=xw.h("water.steward"),
    )
    if situation == "granted":
        assert response.status_code == 201, response.text
        rows = xw.client.get("/api/v1/datasets/probe/rows", headers=xw.h("water.analyst")).json()["rows"]
        assert _leaks(rows) == [] and {r["station"] for r in rows} == {"东四"}
        hidden = xw.client.post(
            "/api/v1/exchange/derived",
            json={"slug": "probe-2", "title_zh": "p", "sql": f"SELECT {HIDDEN_COLUMN} FROM air"},
            headers=xw.h("water.steward"),
        )
        assert hidden.status_code == 422
    else:
        assert response.status_code == 422


def test_aggregates_count_only_granted_rows(xw):
    xw.granted()
    response = xw.client.get(
        "/api/v1/datasets/air/aggregate",
        params={"measure": "count", "group_by": "station"},
        headers=xw.h("water.analyst"),
    )
    assert response.status_code == 200
    assert response.json()["rows"] == [{"station": "东四", "count": 2}]
    hidden = xw.client.get(
        "/api/v1/datasets/air/aggregate",
        params={"measure": f"sum:{HIDDEN_COLUMN}"},
        headers=xw.h("water.analyst"),
    )
    assert hidden.status_code == 403
    profile = xw.client.get("/api/v1/datasets/air/versions/0/profile", headers=xw.h("water.analyst"))
    assert profile.status_code == 403, "a profile of every row would describe rows outside the grant"
