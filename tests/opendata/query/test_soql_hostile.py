"""Hostile SoQL: every attack is a BadQuery naming its parameter; fuzzed $where never escapes."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odq_data import COLUMNS

from zhishe.opendata.soql import BadQuery, check_text, compile_query
from zhishe.opendata.store import QueryFailed, ReleaseStore

KEYS = {"data": "rel1"}


@pytest.mark.parametrize(
    ("parameter", "value", "reason"),
    [
        ("$where", "1=1; DROP TABLE x", "syntax"),
        ("$where", "' OR 1=1 --", "syntax"),
        ("$where", "district = '' OR 1=1 --", None),
        ("$where", "n in (SELECT 1)", "subquery"),
        ("$where", "exists (select 1)", None),
        ("$where", "n = 1 UNION SELECT * FROM data", "syntax"),
        ("$where", "nope = 1", "column"),
        ("$where", "_row > 5", "column"),
        ("$where", "read_csv('/etc/passwd') IS NULL", "function"),
        ("$where", "glob('/*') IS NULL", "function"),
        ("$where", "getenv('HOME') = 'x'", "function"),
        ("$where", "current_setting('memory_limit') = 'x'", "function"),
        ("$where", "read_parquet('x') IS NULL", "function"),
        ("$where", "district = 5", "type"),
        ("$where", "m1 > 'abc'", "type"),
        ("$where", "count(*) > 1", "aggregate"),
        ("$where", "n::VARCHAR = '1'", "function"),
        ("$where", "(" * 500 + "n = 1" + ")" * 500, "limit"),
        ("$where", "NOT " * 500 + "ok", "limit"),
        ("$where", "n in (" + ", ".join(["1"] * 10_000) + ")", "limit"),
        ("$where", "x" * 40_000, "limit"),
        ("$select", "district FROM read_csv('/etc/passwd')", "syntax"),
        ("$select", "district; DROP TABLE data", "syntax"),
        ("$select", "sum(district)", "type"),
        ("$select", "district, count(*)", "grouping"),
        ("$order", "n; DROP TABLE data", "syntax"),
        ("$order", "loc", "type"),
        ("$group", "count(*)", "aggregate"),
        ("$having", "n > 1", "having"),
        ("$limit", str(10**30), "limit"),
        ("$limit", "abc", "number"),
        ("$offset", "-1", "number"),
        ("$xyz", "1", "unknown_parameter"),
        ("nope", "1", "column"),
        ("$q", "a " * 40, "limit"),
    ],
)
def test_hostile_parameters_are_refused_naming_the_parameter(
    parameter: str, value: str, reason: str | None
) -> None:
    params = {parameter: value}
    try:
        compile_query(params, COLUMNS)
    except BadQuery as exc:
        assert exc.status_code == 400 and exc.type == "bad_query"
        assert exc.message.startswith(f"{parameter}: ")
        assert exc.detail["parameter"] == parameter
        if reason is not None:
            assert exc.detail["reason"] == reason, exc.message
    else:
        # `district = '' OR 1=1 --` is a valid (harmless) condition over the release: the -- is a comment
        assert reason is None


def test_injection_in_a_literal_stays_a_parameter() -> None:
    q = compile_query({"$where": "district = 'x''; DROP TABLE data; --'"}, COLUMNS)
    assert "DROP" not in q.sql and "x'; DROP TABLE data; --" in q.params


@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe", "abc\udcff", "a\x00b", "x" * 40_000],
)
def test_check_text_refuses_bad_encoding_nul_and_length(value: str | bytes) -> None:
    with pytest.raises(BadQuery, match=r"^\$where: ") as caught:
        check_text("$where", value)
    assert caught.value.detail["parameter"] == "$where"
    with pytest.raises(BadQuery, match=r"^\$where: "):
        compile_query({"$where": value}, COLUMNS)  # type: ignore[dict-item]


def test_utf8_bytes_are_accepted() -> None:
    assert check_text("$q", "海淀".encode()) == "海淀"


_ATOMS = st.sampled_from(
    ["n", "m1", "ts", "district", "ok", "day", "loc", "1", "2.5", "'x'", "'2026-01-01'", "null", "true", "(", ")",
     " and ", " or ", " not ", "=", "<", ">=", "!=", "+", "-", "*", "/", "%", ",", " in ", " between ", " like ",
     " is ", "count(", "sum(", "lower(", "date_trunc_ym(", "within_circle(", "'", ";", "--", "\"", "`", "$", "::"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(_ATOMS, max_size=14).map("".join), st.text(max_size=40)))
def test_fuzzed_where_is_refused_or_runs(release_store: ReleaseStore, where: str) -> None:
    try:
        q = compile_query({"$where": where, "$limit": "5"}, COLUMNS)
    except BadQuery:
        return
    try:
        release_store.execute(KEYS, q.sql, q.params, timeout=5, max_rows=q.fetch_rows)
    except QueryFailed as exc:  # only arithmetic overflow may fail at run time
        assert "Out of Range" in exc.message or "overflow" in exc.message.lower(), (where, q.sql, exc.message)
    except duckdb.Error as exc:  # pragma: no cover - the store maps every DuckDB error
        raise AssertionError((where, q.sql)) from exc
