"""Hostile input to the public query API and the SQL endpoint: every attempt is refused with 400,
the error envelope, and the offending parameter named in ``error.detail.parameter`` and in the
message. Nothing reaches DuckDB that the allow-lists did not build, and the data stays intact."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from opendata.open_world import OpenWorld

QUERY = "/opendata/api/v1/datasets/air/query.json"
SQL = "/opendata/api/v1/sql"


@pytest.fixture()
def air(ow: OpenWorld) -> OpenWorld:
    ow.open_air()
    return ow


def refused(response: Any, parameter: str, *words: str) -> dict[str, Any]:
    """Assert a 400 in the envelope naming `parameter`, whose message holds each of `words`."""
    label = f"{response.request.method} {str(response.request.url)[:160]}"
    assert response.status_code == 400, f"{label}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert set(body) == {"error", "request_id"}, label
    error = body["error"]
    assert error["type"] == "bad_query", label
    assert error["detail"]["parameter"] == parameter, f"{label}: {error}"
    assert error["message"].startswith(f"{parameter}: "), f"{label}: {error['message']}"
    for word in words:
        assert word.lower() in error["message"].lower(), f"{label}: {error['message']!r} lacks {word!r}"
    return dict(error)


def still_intact(ow: OpenWorld) -> None:
    body = ow.client.get(QUERY, params={"$limit": "1"}).json()
    assert body["total"] == 144
    sql = ow.client.get(SQL, params={"query": 'SELECT count(*) AS n FROM "air"'}).json()
    assert sql["rows"] == [{"n": 144}]


INJECTIONS: list[tuple[dict[str, str], str, tuple[str, ...]]] = [
    ({"$where": "1=1; DROP TABLE x"}, "$where", ("could not be parsed",)),
    ({"$where": "' OR 1=1 --"}, "$where", ("could not be parsed",)),
    ({"$where": "station = '东四' UNION SELECT * FROM data"}, "$where", ("could not be parsed",)),
    ({"$select": "station UNION SELECT reporter_phone FROM data"}, "$select", ("UNION",)),
    ({"$order": "pm25; DROP TABLE data"}, "$order", ("no ';'",)),
    ({"$select": "*, pm25 FROM data"}, "$select", ("FROM",)),
    ({"$where": "pm25 IN (SELECT pm25 FROM data)"}, "$where", ("subquery",)),
    ({"$where": "pm25 > (SELECT max(pm25) FROM data)"}, "$where", ("subqueries",)),
    ({"$group": "station HAVING 1=1 UNION SELECT 1"}, "$group", ()),
]


def test_sql_injection_is_refused(air: OpenWorld) -> None:
    for params, parameter, words in INJECTIONS:
        refused(air.client.get(QUERY, params=params), parameter, *words)
    # A quote inside a value is only a value: it is a parameter of the query, never SQL.
    quoted = air.client.get(QUERY, params={"station": "东四' OR '1'='1"})
    assert quoted.status_code == 200 and quoted.json()["total"] == 0
    still_intact(air)


def test_unknown_columns_and_parameters_are_named(air: OpenWorld) -> None:
    for params, parameter in [
        ({"$where": "secret > 1"}, "$where"),
        ({"$select": "station, reporter_phone"}, "$select"),
        ({"$order": "secret"}, "$order"),
        ({"$group": "secret"}, "$group"),
        ({"$having": "count(secret) > 1", "$group": "station", "$select": "station"}, "$having"),
    ]:
        error = refused(air.client.get(QUERY, params=params), parameter, "unknown column")
        assert error["detail"]["column"] in {"secret", "reporter_phone"}
        assert "station, observed_at, pm25, aqi, location" in error["message"]  # the hint
    refused(air.client.get(QUERY, params={"reporter_phone": "1"}), "reporter_phone", "not a column")
    refused(air.client.get(QUERY, params={"$drop": "air"}), "$drop", "not a SoQL parameter")
    refused(air.client.get(QUERY, params={"$select": "station", "$limit": "5", "$jsonp": "x"}), "$jsonp")


def test_forbidden_functions_are_refused(air: OpenWorld) -> None:
    for function in ("read_csv", "glob", "read_parquet", "getenv", "read_text", "current_setting"):
        argument = "'/etc/passwd'" if function != "getenv" else "'HOME'"
        for parameter in ("$select", "$where", "$order"):
            text = f"{function}({argument})" + (" IS NOT NULL" if parameter == "$where" else "")
            error = refused(
                air.client.get(QUERY, params={parameter: text}), parameter, function, "not allowed"
            )
            assert error["detail"]["function"] == function
        for query in (f"SELECT * FROM {function}({argument})", f'SELECT {function}({argument}) FROM "air"'):
            error = refused(air.client.get(SQL, params={"query": query}), "sql", function)
            assert "not allowed" in error["message"]
    still_intact(air)


def test_limits_on_size_and_nesting(air: OpenWorld) -> None:
    deep = "(" * 1000 + "pm25 > 1" + ")" * 1000
    refused(air.client.get(QUERY, params={"$where": deep}), "$where", "nested too deeply")
    refused(air.client.get(QUERY, params={"$select": "(" * 1000 + "pm25" + ")" * 1000}), "$select", "nested")
    refused(air.client.get(QUERY, params={"$where": "NOT " * 100 + "pm25 > 1"}), "$where", "nested")
    many = "aqi IN (" + ",".join("1" for _ in range(10_000)) + ")"
    error = refused(air.client.get(QUERY, params={"$where": many}), "$where", "10,000", "1,000")
    assert error["detail"]["limit"] == "max_in_items"
    refused(air.client.get(QUERY, params={"$where": "station = '" + "x" * 33_000 + "'"}), "$where", "bytes")
    refused(air.client.post(SQL, json={"query": "SELECT '" + "长" * 12_000 + "'"}), "sql")
    refused(air.client.get(SQL, params={"query": "SELECT " + "(" * 1000 + "1" + ")" * 1000}), "sql")
    refused(
        air.client.get(SQL, params={"query": "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 10_000) + ")"}),
        "sql",
    )
    still_intact(air)


def test_limit_and_offset_must_be_whole_numbers_in_range(air: OpenWorld) -> None:
    for value, words in [
        ("100000000000000000000000", ("maximum of 50,000",)),
        ("50001", ("maximum of 50,000",)),
        ("abc", ("'abc'", "whole number")),
        ("-1", ("whole number",)),
        ("1.5", ("whole number",)),
        ("１０", ("whole number",)),  # full-width digits
        ("", ("whole number",)),
    ]:
        refused(air.client.get(QUERY, params={"$limit": value}), "$limit", *words)
    for value in ("-5", "1e3", "x"):
        refused(air.client.get(QUERY, params={"$offset": value}), "$offset", "whole number")
    refused(air.client.get(QUERY, params={"$offset": "100000000000"}), "$offset", "maximum")
    assert air.client.get(QUERY, params={"$limit": "50000"}).status_code == 200
    assert air.client.get(QUERY, params={"$limit": "0"}).json()["rows"] == []


def test_bytes_that_are_not_utf8_and_repeated_parameters(air: OpenWorld) -> None:
    def raw(query_string: str) -> Any:
        return air.client.get(f"{QUERY}?{query_string}")

    refused(raw("$where=%ff%fe"), "$where", "not valid UTF-8")
    refused(raw("station=%C0%AF"), "station", "not valid UTF-8")  # an overlong '/'
    refused(raw("$q=" + quote("东").replace("%9C", "") + "&$limit=1"), "$q", "not valid UTF-8")
    refused(raw("%ff%fe=1"), "parameter name", "not valid UTF-8")
    refused(raw("$where=pm25%20%3E%201%00"), "$where", "NUL")
    refused(raw("$limit=1&$limit=2"), "$limit", "once")
    refused(raw("station=%E4%B8%9C%E5%9B%9B&station=%E5%A4%A9%E5%9D%9B"), "station", "once")
    refused(raw("$where=aqi%3E1&%24where=aqi%3E2"), "$where", "once")  # encoded or not, the same name
    assert raw("station=%E4%B8%9C%E5%9B%9B&lang=en&version=1").json()["total"] == 48


def test_garbled_or_foreign_next_tokens_are_refused(air: OpenWorld) -> None:
    first = air.client.get(QUERY, params={"$order": "pm25", "$limit": "5"}).json()
    token = first["next"]
    assert token
    for bad, words in [
        ("garbage!!", ("garbled",)),
        ("eyJ2IjoxfQ", ("different query",)),  # {"v":1}
        ("eyJ2Ijo5OSwicSI6IngiLCJrIjpbXX0", ("another version",)),  # {"v":99,...}
        (token[:-3], ("garbled",)),
        ("x" * 5000, ("4,096",)),
    ]:
        refused(
            air.client.get(QUERY, params={"$order": "pm25", "$limit": "5", "$next": bad}), "$next", *words
        )
    # a real token replayed against another filter or order is refused, not silently misread
    refused(
        air.client.get(QUERY, params={"$order": "aqi", "$limit": "5", "$next": token}), "$next", "different"
    )
    refused(
        air.client.get(QUERY, params={"$order": "pm25", "$limit": "5", "$next": token, "$offset": "5"}),
        "$next",
        "$offset",
    )
    grouped = {"$select": "station, count(*) AS n", "$group": "station", "$next": token}
    refused(air.client.get(QUERY, params=grouped), "$next", "$offset")


SQL_REFUSALS: list[tuple[str, tuple[str, ...]]] = [
    ('DELETE FROM "air"', ("DELETE", "not allowed")),
    ('DROP TABLE "air"', ("DROP",)),
    ('INSERT INTO "air" VALUES (1)', ("INSERT",)),
    ('UPDATE "air" SET aqi = 0', ("UPDATE",)),
    ('CREATE TABLE x AS SELECT * FROM "air"', ("CREATE",)),
    ('SELECT 1; SELECT count(*) FROM "air"', ("one statement",)),
    ('SELECT 1; DROP TABLE "air"', ("one statement",)),
    ("SELECT * FROM read_csv('/etc/passwd')", ("read_csv",)),
    ("SELECT * FROM '/etc/passwd'", ()),
    ("ATTACH '/tmp/evil.duckdb' AS evil", ("ATTACH",)),
    ("COPY \"air\" TO '/tmp/air.csv'", ("COPY",)),
    ("PRAGMA database_list", ("PRAGMA",)),
    ("SET enable_external_access = true", ("SET",)),
    ("INSTALL httpfs", ()),
    ("SELECT * FROM nope", ("nope", "published datasets")),
    ('SELECT * FROM "air@9"', ("air@9",)),
    ("SELECT * FROM duckdb_settings()", ("duckdb_settings",)),
    ("SELECT * FROM main.data", ()),
]


def test_the_sql_endpoint_refuses_everything_but_one_select(air: OpenWorld) -> None:
    for text, words in SQL_REFUSALS:
        refused(air.client.get(SQL, params={"query": text}), "sql", *words)
        refused(air.client.post(SQL, json={"query": text}), "sql", *words)
    for rows in ("50001", "0", "-1", "many", "1e3"):
        refused(air.client.get(SQL, params={"query": 'SELECT * FROM "air"', "rows": rows}), "rows", "50,000")
    refused(air.client.get(f"{SQL}?query=SELECT%20%ff"), "sql", "not valid UTF-8")
    refused(
        air.client.get(f"{SQL}?query=SELECT%20count(*)%20FROM%20air%20WHERE%20station%3D'%ff'"),
        "sql",
        "UTF-8",
    )
    refused(air.client.get(f"{SQL}?query=SELECT%201&query=SELECT%202"), "sql", "once")
    still_intact(air)
