"""The public read-only SQL endpoint end to end: joins and aggregates across open datasets, releases
by number, the row cap, GET and POST, and only published releases visible."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

import pytest

from opendata.open_world import OpenWorld, air_csv

SQL = "/opendata/api/v1/sql"

STATION_COLUMNS = [
    {"name": "station", "type": "string", "is_key": True, "classification": "public"},
    {"name": "district", "type": "string", "classification": "public"},
    {"name": "opened", "type": "integer", "classification": "public"},
]
STATIONS_CSV = "station,district,opened\n东四,东城区,1985\n天坛,东城区,1990\n奥体中心,朝阳区,2008\n".encode()


@pytest.fixture()
def two(ow: OpenWorld) -> OpenWorld:
    """``air`` and ``stations`` open; ``register`` with a draft only."""
    ow.open_air()
    ow.create(
        "stations",
        columns=STATION_COLUMNS,
        title_zh="监测站",
        title_en="Stations",
        accrual_periodicity="annual",
    )
    assert ow.upload("stations", STATIONS_CSV).status_code == 201
    ow.release("stations")
    return ow


def air_rows(hours: int = 48) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(air_csv(hours).decode())))


def run(ow: OpenWorld, query: str, rows: int | None = None, *, post: bool = False) -> dict[str, Any]:
    if post:
        body: dict[str, Any] = {"query": query} if rows is None else {"query": query, "rows": rows}
        response = ow.client.post(SQL, json=body)
    else:
        params = {"query": query} if rows is None else {"query": query, "rows": str(rows)}
        response = ow.client.get(SQL, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_joins_and_aggregates_across_two_open_datasets(two: OpenWorld) -> None:
    query = """
        SELECT s.district, count(*) AS readings, round(avg(a.pm25), 4) AS mean_pm25, max(a.aqi) AS top_aqi
        FROM "air" AS a JOIN "stations" AS s ON a.station = s.station
        WHERE s.opened < 2000
        GROUP BY s.district ORDER BY s.district
    """
    body = run(two, query)
    assert body["columns"] == ["district", "readings", "mean_pm25", "top_aqi"]
    old = [r for r in air_rows() if r["station"] in {"东四", "天坛"}]
    assert body["rows"] == [
        {
            "district": "东城区",
            "readings": len(old),
            "mean_pm25": pytest.approx(round(sum(float(r["pm25"]) for r in old) / len(old), 4)),
            "top_aqi": max(int(r["aqi"]) for r in old),
        }
    ]
    assert body["truncated"] is False and body["row_cap"] == 1000

    per_district: dict[str, int] = defaultdict(int)
    district = {"东四": "东城区", "天坛": "东城区", "奥体中心": "朝阳区"}
    for r in air_rows():
        per_district[district[r["station"]]] += int(r["aqi"])
    windowed = run(
        two,
        "WITH t AS (SELECT s.district, sum(a.aqi) AS total FROM air a, stations s "
        "WHERE a.station = s.station GROUP BY ALL) "
        "SELECT district, total, rank() OVER (ORDER BY total DESC) AS place FROM t ORDER BY place",
    )
    assert [(r["district"], r["total"]) for r in windowed["rows"]] == sorted(
        per_district.items(), key=lambda kv: -kv[1]
    )
    assert [r["place"] for r in windowed["rows"]] == [1, 2]


def test_a_release_number_reads_the_old_data_after_a_new_release(two: OpenWorld) -> None:
    before = run(two, 'SELECT station, count(*) AS n FROM "air" GROUP BY station ORDER BY station')
    assert two.upload("air", air_csv(72), mode="replace").status_code == 201
    draft = two.draft("air")
    assert draft.status_code == 201
    # a draft is not public: "air@2" does not exist until it is published
    hidden = two.client.get(SQL, params={"query": 'SELECT count(*) FROM "air@2"'})
    assert hidden.status_code == 400 and hidden.json()["error"]["detail"]["parameter"] == "sql"
    assert run(two, 'SELECT count(*) AS n FROM "air"')["rows"] == [{"n": 144}]
    assert two.publish(draft.json()["id"]).status_code == 200

    counts = run(
        two,
        'SELECT (SELECT count(*) FROM "air@1") AS v1, (SELECT count(*) FROM "air@2") AS v2, '
        '(SELECT count(*) FROM "air") AS newest',
    )
    assert counts["rows"] == [{"v1": 144, "v2": 216, "newest": 216}]
    again = run(two, 'SELECT station, count(*) AS n FROM "air@1" GROUP BY station ORDER BY station')
    assert again["rows"] == before["rows"]
    # both releases in one query: the hours only release 2 has
    only_new = run(
        two,
        'SELECT count(*) AS n FROM "air@2" AS b WHERE NOT EXISTS '
        '(SELECT 1 FROM "air@1" AS a WHERE a.station = b.station AND a.observed_at = b.observed_at)',
    )
    assert only_new["rows"] == [{"n": 72}]


def test_the_row_cap_cuts_and_says_truncated(two: OpenWorld) -> None:
    everything = 'SELECT a.aqi, b.aqi AS other FROM "air" a, "air" b'  # 20,736 rows
    default = run(two, everything)
    assert len(default["rows"]) == 1000 and default["truncated"] is True and default["row_cap"] == 1000
    ten = run(two, everything, rows=10)
    assert len(ten["rows"]) == 10 and ten["truncated"] is True and ten["row_cap"] == 10
    exact = run(two, 'SELECT * FROM "air"', rows=144)
    assert len(exact["rows"]) == 144 and exact["truncated"] is False
    own_limit = run(two, 'SELECT * FROM "air" LIMIT 5000', rows=100)
    assert len(own_limit["rows"]) == 100 and own_limit["truncated"] is True
    small_limit = run(two, 'SELECT * FROM "air" LIMIT 3', rows=100)
    assert len(small_limit["rows"]) == 3 and small_limit["truncated"] is False
    most = run(two, everything, rows=50_000)
    assert len(most["rows"]) == 20_736 and most["truncated"] is False


def test_get_and_post_give_the_same_answer(two: OpenWorld) -> None:
    query = "SELECT station, max(pm25) AS top FROM \"air\" WHERE station <> '天坛' GROUP BY station ORDER BY top DESC"
    got = run(two, query, rows=5)
    posted = run(two, query, rows=5, post=True)
    assert got == posted
    assert {r["station"] for r in got["rows"]} == {"东四", "奥体中心"}
    assert run(two, query) == run(two, query, post=True)


def test_only_published_columns_and_datasets_are_visible(two: OpenWorld) -> None:
    two.register()
    phone = two.client.get(SQL, params={"query": 'SELECT reporter_phone FROM "air"'})
    assert phone.status_code == 400 and "reporter_phone" in phone.json()["error"]["message"]
    register = two.client.post(SQL, json={"query": 'SELECT * FROM "register"'})
    assert register.status_code == 400
    assert register.json()["error"]["detail"]["parameter"] == "sql"
    assert "register" in register.json()["error"]["message"]
    names = run(two, 'SELECT count(*) AS n FROM "stations"')
    assert names["rows"] == [{"n": 3}]
