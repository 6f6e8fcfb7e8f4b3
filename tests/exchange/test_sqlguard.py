"""The derived-dataset SQL guard: what it accepts, what it refuses and why, and the locked runner."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.core.errors import Invalid
from zhishe.exchange import sqlguard
from zhishe.exchange.sqlguard import connect, referenced_views, run, validate

VIEWS = ("residents", "readings")


@pytest.fixture()
def views() -> dict[str, Any]:
    residents = pa.table(
        {
            "id": [1, 2, 3, 4],
            "building": ["A", "A", "B", "C"],
            "age": [34, 71, 58, None],
            "moved_in": [
                dt.date(2020, 1, 15),
                dt.date(2021, 6, 1),
                dt.date(2021, 6, 20),
                dt.date(2023, 3, 3),
            ],
        }
    )
    readings = pa.table(
        {
            "building": ["A", "A", "B", "B", "C"],
            "day": [
                dt.date(2024, 1, 1),
                dt.date(2024, 1, 2),
                dt.date(2024, 1, 1),
                dt.date(2024, 2, 1),
                dt.date(2024, 2, 2),
            ],
            "kwh": [10.0, 12.5, 7.0, 8.0, 3.0],
        }
    )
    return {"residents": residents, "readings": readings}


def refusal(sql: str, views: tuple[str, ...] = VIEWS) -> Invalid:
    with pytest.raises(Invalid) as caught:
        validate(sql, views)
    return caught.value


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


# --- accepted queries -----------------------------------------------------------------------------

ACCEPTED = {
    "join": "SELECT r.id, g.kwh FROM residents r JOIN readings g ON r.building = g.building",
    "group_by": "SELECT building, count(*) AS n, avg(age) AS mean_age, max(age) FROM residents GROUP BY building",
    "cte": "WITH old AS (SELECT * FROM residents WHERE age >= 60) SELECT building, count(*) FROM old GROUP BY ALL",
    "window": "SELECT id, row_number() OVER (PARTITION BY building ORDER BY age DESC NULLS LAST) AS rn, "
    "lag(age) OVER (ORDER BY id) FROM residents",
    "case": "SELECT id, CASE WHEN age >= 65 THEN 'senior' WHEN age IS NULL THEN 'unknown' ELSE 'adult' END FROM residents",
    "date_trunc": "SELECT date_trunc('month', day) AS month, sum(kwh) FROM readings GROUP BY 1",
    "union_all": "SELECT building FROM residents UNION ALL SELECT building FROM readings",
    "subqueries": "SELECT * FROM (SELECT building, sum(kwh) AS total FROM readings GROUP BY building) t "
    "WHERE total > (SELECT avg(kwh) FROM readings) AND building IN (SELECT building FROM residents)",
    "exists": "SELECT id FROM residents r WHERE EXISTS (SELECT 1 FROM readings g WHERE g.building = r.building)",
    "casts_and_text": "SELECT CAST(id AS VARCHAR) || '-' || lower(building), age::DOUBLE / 2, coalesce(age, 0), "
    "strftime(moved_in, '%Y'), extract(year FROM moved_in), round(age / 3.0, 1) FROM residents",
    "qualify": "SELECT * FROM readings QUALIFY row_number() OVER (PARTITION BY building ORDER BY day) = 1",
    "set_ops": "SELECT building FROM residents INTERSECT SELECT building FROM readings "
    "EXCEPT SELECT 'C' ORDER BY 1",
    "filter_and_quantile": "SELECT count(*) FILTER (WHERE kwh > 5), median(kwh), quantile_cont(kwh, 0.9), "
    "string_agg(building, ',' ORDER BY building) FROM readings",
    "from_first": "FROM readings SELECT building, kwh WHERE day >= DATE '2024-01-02'",
    "recursive_cte": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
    "position_and_trim": "SELECT position('A' IN building), trim(building), substring(building, 1, 1) FROM residents",
}


@pytest.mark.parametrize("sql", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_query_runs_with_the_same_result_as_the_original_text(
    sql: str, views: dict[str, Any]
) -> None:
    result = run(sql, views)
    plain = duckdb.connect()
    for name, table in views.items():
        plain.register(name, table)
    expected = plain.sql(sql).to_arrow_table()
    assert result.num_rows == expected.num_rows
    assert rows(result) == rows(expected)


def test_join_of_two_views_returns_the_joined_rows(views: dict[str, Any]) -> None:
    result = run(
        "SELECT r.building, sum(g.kwh) AS kwh FROM residents r JOIN readings g USING (building) "
        "GROUP BY r.building ORDER BY r.building",
        views,
    )
    assert result.to_pylist() == [
        {"building": "A", "kwh": 45.0},
        {"building": "B", "kwh": 15.0},
        {"building": "C", "kwh": 3.0},
    ]


def test_normalised_sql_has_no_comments_and_one_statement() -> None:
    text = validate("SELECT id /* the key */ FROM residents -- trailing\n;", VIEWS)
    assert text == "SELECT id FROM residents"


def test_a_statement_inside_a_block_comment_is_only_a_comment() -> None:
    text = validate("SELECT id FROM residents /* ; DROP TABLE residents; */", VIEWS)
    assert "DROP" not in text
    assert "/*" not in text


def test_referenced_views_lists_the_views_read_not_ctes() -> None:
    sql = "WITH b AS (SELECT building FROM readings) SELECT * FROM residents JOIN b USING (building)"
    assert referenced_views(sql, [*VIEWS, "unused"]) == ["readings", "residents"]


def test_a_cte_named_like_a_view_shadows_it_but_its_own_body_reads_the_view() -> None:
    sql = "WITH residents AS (SELECT * FROM residents WHERE age > 60) SELECT * FROM residents"
    assert referenced_views(sql, VIEWS) == ["residents"]
    assert referenced_views("WITH readings AS (SELECT 1 AS x) SELECT * FROM readings", VIEWS) == []


def test_cte_names_match_case_insensitively_like_duckdb(views: dict[str, Any]) -> None:
    result = run("WITH Old AS (SELECT * FROM residents WHERE age > 60) SELECT id FROM old", views)
    assert result.column("id").to_pylist() == [2]


def test_run_accepts_datasets_and_record_batch_readers(views: dict[str, Any], tmp_path: Path) -> None:
    pq.write_table(views["readings"], tmp_path / "part-0.parquet")
    residents = views["residents"]
    mixed = {
        "readings": pads.dataset(tmp_path, format="parquet"),
        "residents": pa.RecordBatchReader.from_batches(residents.schema, residents.to_batches()),
    }
    result = run("SELECT count(*) AS n FROM residents JOIN readings USING (building)", mixed)
    assert result.column("n").to_pylist() == [7]


def test_run_registers_only_the_views_the_query_reads(views: dict[str, Any]) -> None:
    # A reader can be scanned once; an unread one must be left alone.
    untouched = pa.RecordBatchReader.from_batches(views["readings"].schema, views["readings"].to_batches())
    run("SELECT count(*) FROM residents", {**views, "readings": untouched})
    assert untouched.read_all().num_rows == 5


# --- refused: statements and injection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT 1; DROP TABLE residents", "DROP"),
        ("SELECT * FROM residents WHERE building = ''; DROP TABLE x; --'", "DROP"),
        ("SELECT * FROM residents -- \n; ATTACH 'evil.db'", "ATTACH"),
        ("SELECT * FROM residents /* hidden */; INSTALL httpfs", "INSTALL"),
        ("SELECT 1; SELECT 2", "2"),
    ],
)
def test_stacked_statements_are_refused_naming_them(sql: str, named: str) -> None:
    error = refusal(sql)
    assert "only one statement" in error.message
    assert named in error.message
    assert error.detail["reason"] == "statements"


def test_a_quote_then_drop_injection_is_refused() -> None:
    error = refusal("'; DROP TABLE x; --")
    assert error.detail["reason"] == "syntax"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO residents SELECT * FROM residents", "INSERT"),
        ("UPDATE residents SET age = 0", "UPDATE"),
        ("DELETE FROM residents", "DELETE"),
        ("CREATE TABLE copy AS SELECT * FROM residents", "CREATE"),
        ("DROP TABLE residents", "DROP"),
        ("ALTER TABLE residents ADD COLUMN x INT", "ALTER"),
        ("COPY residents TO '/tmp/out.csv'", "COPY"),
        ("COPY (SELECT * FROM residents) TO '/tmp/out.parquet' (FORMAT parquet)", "COPY"),
        ("ATTACH 'other.db' AS other", "ATTACH"),
        ("DETACH other", "DETACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("PRAGMA database_list", "PRAGMA"),
        ("SET enable_external_access = true", "SET"),
        ("RESET threads", "RESET"),
        ("CALL pragma_version()", "CALL"),
        ("EXPORT DATABASE '/tmp/dump'", "EXPORT"),
        ("IMPORT DATABASE '/tmp/dump'", "IMPORT"),
        ("USE other", "USE"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("VACUUM", "VACUUM"),
        ("EXPLAIN SELECT * FROM residents", "EXPLAIN"),
        ("DESCRIBE residents", "DESCRIBE"),
        ("SUMMARIZE residents", "SUMMARIZE"),
        ("PIVOT readings ON building USING sum(kwh)", "PIVOT"),
        ("SHOW TABLES", "SHOW"),
        ("VALUES (1)", "VALUES"),
    ],
)
def test_statements_other_than_a_query_are_refused_naming_the_kind(sql: str, kind: str) -> None:
    error = refusal(sql)
    assert error.message.startswith(f"{kind} statements are not allowed")
    assert error.detail["statement"] == kind


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", "/* nothing */ ;", ";;"])
def test_empty_input_is_refused(sql: str) -> None:
    error = refusal(sql)
    assert "empty" in error.message


def test_a_parse_error_gives_line_and_column() -> None:
    error = refusal("SELECT id,\nFROM residents WHERE (")
    assert "could not be parsed at line" in error.message
    assert error.detail["line"] is not None and error.detail["column"] is not None


@pytest.mark.parametrize(
    ("sql", "syntax"),
    [
        ("SELECT * INTO stolen FROM residents", "SELECT ... INTO"),
        ("SELECT * FROM residents FOR UPDATE", "FOR UPDATE"),
        ("SELECT * FROM residents WHERE id = $1", "parameter"),
        ("WITH x AS (INSERT INTO residents VALUES (9) RETURNING *) SELECT * FROM x", "INSERT"),
    ],
)
def test_writes_and_odd_clauses_inside_a_query_are_refused(sql: str, syntax: str) -> None:
    error = refusal(sql)
    assert syntax in error.message


# --- refused: tables ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_csv_auto('data.csv')", "read_csv_auto"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "read_parquet"),
        ("SELECT * FROM read_json('x.json')", "read_json"),
        ("SELECT * FROM read_json_auto('x.json')", "read_json_auto"),
        ("SELECT * FROM parquet_scan('x.parquet')", "parquet_scan"),
        ("SELECT * FROM delta_scan('var/lake/t')", "delta_scan"),
        ("SELECT * FROM glob('/etc/*')", "glob"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM query_table('residents')", "query_table"),
        ("SELECT * FROM sniff_csv('x.csv')", "sniff_csv"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT * FROM pragma_version()", "pragma_version"),
        ("SELECT * FROM iceberg_scan('x')", "iceberg_scan"),
        ("SELECT * FROM sqlite_scan('x.db', 't')", "sqlite_scan"),
        ("SELECT * FROM postgres_scan('dsn', 'public', 't')", "postgres_scan"),
        ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
        ("SELECT * FROM range(10)", "range"),
        ("SELECT * FROM residents JOIN read_parquet('p.parquet') p ON true", "read_parquet"),
        ("SELECT * FROM residents, (SELECT * FROM read_csv('x.csv'))", "read_csv"),
    ],
)
def test_table_functions_are_refused_naming_them(sql: str, function: str) -> None:
    error = refusal(sql)
    assert f"table function {function}()" in error.message
    assert error.detail == {"reason": "table_function", "function": function}


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM 'secrets.csv'", "SELECT * FROM residents JOIN '/data/x.parquet' ON true"]
)
def test_a_string_used_as_a_table_is_refused(sql: str) -> None:
    error = refusal(sql)
    assert "cannot be used as a table" in error.message
    assert error.detail["reason"] == "file_table"


def test_an_ungranted_table_is_refused_naming_it() -> None:
    error = refusal("SELECT * FROM residents JOIN salaries USING (id)")
    assert error.message.startswith("table salaries is not one of the granted views")
    assert error.detail["table"] == "salaries"
    assert error.detail["views"] == sorted(VIEWS)


def test_view_names_match_case_sensitively_with_a_hint() -> None:
    error = refusal("SELECT * FROM Residents")
    assert "did you mean residents?" in error.message


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM main.residents", "main.residents"),
        ("SELECT * FROM other.db.t", "other.db.t"),
        ("SELECT * FROM information_schema.tables", "information_schema.tables"),
    ],
)
def test_schema_qualified_names_are_refused(sql: str, name: str) -> None:
    error = refusal(sql)
    assert f"the table name {name} is schema-qualified" in error.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM duckdb_settings",
        # a CTE of a nested query is not in scope outside it
        "SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1), duckdb_settings",
        # a CTE is not in scope in the CTEs defined before it
        "WITH q AS (SELECT * FROM duckdb_settings), duckdb_settings AS (SELECT 1) SELECT * FROM q",
    ],
)
def test_catalog_views_are_unreachable_even_behind_a_cte_name(sql: str) -> None:
    error = refusal(sql)
    assert error.message.startswith("table duckdb_settings is not one of the granted views")


def test_pivot_needs_an_explicit_in_list(views: dict[str, Any]) -> None:
    error = refusal("SELECT * FROM (PIVOT readings ON building USING sum(kwh))")
    assert "ON building IN (...)" in error.message
    result = run(
        "SELECT * FROM (PIVOT readings ON building IN ('A', 'B') USING sum(kwh) GROUP BY day)", views
    )
    assert result.column_names == ["day", "A", "B"]


def test_time_travel_on_a_view_is_refused() -> None:
    error = refusal("SELECT * FROM residents AT (VERSION => 1)")
    assert "table clause" in error.message


# --- refused: functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        "getenv",
        "current_setting",
        "read_text",
        "read_blob",
        "http_get",
        "system",
        "shell",
        "setseed",
        "nextval",
        "duckdb_extensions",
        "make_it_up",
    ],
)
def test_functions_not_on_the_allow_list_are_refused_naming_them(function: str) -> None:
    error = refusal(f"SELECT {function}('x') FROM residents")
    assert error.message == f"function {function}() is not allowed in a derived dataset query"
    assert error.detail == {"reason": "function", "function": function}


def test_a_function_name_in_quotes_is_still_checked() -> None:
    assert refusal("""SELECT "getenv"('HOME')""").detail["function"] == "getenv"


@pytest.mark.parametrize(
    "sql", ["SELECT main.lower(building) FROM residents", "SELECT building.lower() FROM residents"]
)
def test_qualified_and_method_style_calls_are_refused(sql: str) -> None:
    error = refusal(sql)
    assert "qualified or method-style call" in error.message
    assert "lower" in error.message


def test_load_and_install_cannot_be_called_as_functions() -> None:
    for sql in ("SELECT load('httpfs')", "SELECT install('httpfs')"):
        refusal(sql)


def test_every_allow_listed_duckdb_name_is_a_real_duckdb_function() -> None:
    known = {
        row[0] for row in duckdb.connect().sql("SELECT function_name FROM duckdb_functions()").fetchall()
    }
    assert sorted(sqlguard._DUCKDB_FUNCTIONS - known) == []
    assert sqlguard._SYNTAX_FUNCTIONS.isdisjoint(sqlguard._DUCKDB_FUNCTIONS)


# --- refused: limits ------------------------------------------------------------------------------


def test_a_huge_in_list_is_refused_naming_the_limit() -> None:
    items = ", ".join(str(i) for i in range(5_000))
    error = refusal(f"SELECT * FROM residents WHERE id IN ({items})")
    assert "IN list has 5,000 items" in error.message
    assert "max_in_items" in error.message
    assert error.detail["limit"] == "max_in_items"


def test_an_in_list_at_the_limit_is_accepted() -> None:
    items = ", ".join(str(i) for i in range(sqlguard.MAX_IN_ITEMS))
    validate(f"SELECT * FROM residents WHERE id IN ({items})", VIEWS)


def test_a_string_too_long_is_refused_naming_the_limit() -> None:
    sql = "SELECT * FROM residents WHERE building = '" + "x" * sqlguard.MAX_SQL_CHARS + "'"
    error = refusal(sql)
    assert "max_sql_chars" in error.message
    assert error.detail["max"] == 200_000


def test_too_many_nodes_is_refused_naming_the_limit() -> None:
    error = refusal("SELECT " + " + ".join(["age"] * 3_000) + " FROM residents")
    assert "max_nodes" in error.message


def test_too_many_tokens_is_refused_before_parsing() -> None:
    error = refusal("SELECT " + ",".join(["1"] * 20_000))
    assert "max_tokens" in error.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * 40 + "1" + ")" * 40,
        "SELECT " + "abs(" * 40 + "1" + ")" * 40,
        "SELECT " + "NOT " * 400 + "true",
    ],
)
def test_deep_nesting_is_refused_naming_the_limit(sql: str) -> None:
    error = refusal(sql)
    assert "nested too deeply" in error.message
    assert error.detail["limit"] == "max_nesting"


# --- property: validate raises nothing but Invalid ------------------------------------------------

_WORDS = st.sampled_from(
    [
        "SELECT", "FROM", "WHERE", "WITH", "AS", "JOIN", "ON", "UNION", "ALL", "GROUP", "BY", "ORDER",
        "residents", "readings", "x", "*", ",", "(", ")", "[", "]", "{", "}", ";", "'", '"', "--", "/*",
        "*/", "1", "'a'", "=", "IN", "NOT", "CASE", "WHEN", "THEN", "END", "read_csv", "getenv",
        "COPY", "TO", "ATTACH", "PRAGMA", "SET", "::", "->", "$1", "?", "\n", "OVER", "LATERAL",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_raises_nothing_but_invalid(text: str) -> None:
    with contextlib.suppress(Invalid):
        assert isinstance(validate(text, VIEWS), str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WORDS, max_size=40).map(" ".join))
def test_random_sql_like_text_raises_nothing_but_invalid(text: str) -> None:
    try:
        normalised = validate(text, VIEWS)
    except Invalid:
        return
    # Whatever passes must pass again, unchanged, as DuckDB will see it.
    assert validate(normalised, VIEWS) == normalised


# --- the runner -----------------------------------------------------------------------------------


def test_run_refuses_what_validate_refuses(views: dict[str, Any]) -> None:
    with pytest.raises(Invalid, match="table function read_csv"):
        run("SELECT * FROM read_csv('/etc/passwd')", views)


def test_run_refuses_more_rows_than_max_rows(views: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        run("SELECT * FROM readings", views, max_rows=4)
    assert "max_rows" in caught.value.message
    assert caught.value.detail == {"reason": "limit", "limit": "max_rows", "max": 4}
    assert run("SELECT * FROM readings", views, max_rows=5).num_rows == 5


def test_run_stops_a_query_at_the_time_limit() -> None:
    big = {"n": pa.table({"x": pa.array(range(200_000), type=pa.int64())})}
    with pytest.raises(Invalid) as caught:
        run("SELECT sum(a.x * b.x) FROM n a, n b", big, timeout_s=0.2)
    assert "time limit of 0.2 seconds" in caught.value.message
    assert caught.value.detail["limit"] == "timeout_s"


def test_run_refuses_a_query_over_the_memory_limit() -> None:
    many = {"n": pa.table({"x": pa.array(range(4_000), type=pa.int64())})}
    with pytest.raises(Invalid) as caught:
        run("SELECT list(repeat('x', 100000)) FROM n", many, memory_limit="64MB")
    assert "memory" in caught.value.message
    assert "64MB" in caught.value.message


def test_duckdb_errors_become_invalid_with_duckdbs_message(views: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        run("SELECT nope FROM residents", views)
    assert 'Referenced column "nope" not found' in caught.value.message
    assert "LINE 1" not in caught.value.message
    with pytest.raises(Invalid) as caught:
        run("SELECT * FROM residents WHERE building = 1", views)
    assert "Conversion Error" in caught.value.message


def test_duckdb_errors_do_not_show_paths(views: dict[str, Any], tmp_path: Path) -> None:
    pq.write_table(views["readings"], tmp_path / "part-0.parquet")
    dataset = pads.dataset(tmp_path, format="parquet")
    (tmp_path / "part-0.parquet").unlink()
    with pytest.raises(Invalid) as caught:
        run("SELECT * FROM readings", {"readings": dataset})
    assert str(tmp_path) not in caught.value.message


def test_views_differing_only_in_case_are_refused(views: dict[str, Any]) -> None:
    with pytest.raises(Invalid, match="differ only in case"):
        run(
            "SELECT * FROM residents, Residents",
            {"residents": views["residents"], "Residents": views["residents"]},
        )


# --- the locked connection, even if validation were bypassed ---------------------------------------


def test_the_connection_settings_are_locked_down() -> None:
    con = connect(memory_limit="256MB", threads=1)
    settings = dict(
        con.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration', "
            "'threads', 'TimeZone', 'python_enable_replacements', 'allow_community_extensions')"
        ).fetchall()
    )
    assert settings == {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "python_enable_replacements": "false",
        "lock_configuration": "true",
        "threads": "1",
        "TimeZone": "UTC",
    }


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT content FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "ATTACH '/tmp/zhishe-sqlguard-attack.db' AS evil",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "SET memory_limit = '100GB'",
        "SET temp_directory = '/tmp'",
    ],
)
def test_the_connection_refuses_escapes_on_its_own(sql: str) -> None:
    con = connect()
    with pytest.raises(duckdb.Error):
        con.execute(sql).fetchall()


def test_the_connection_refuses_copy_to_a_file(tmp_path: Path) -> None:
    con = connect()
    con.register("residents", pa.table({"id": [1]}))
    target = tmp_path / "out.csv"
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY residents TO '{target}'")
    assert not target.exists()


def test_the_connection_does_not_scan_python_variables() -> None:
    leaked = pa.table({"secret": ["x"]})
    assert leaked.num_rows == 1
    with pytest.raises(duckdb.CatalogException):
        connect().sql("SELECT * FROM leaked").fetchall()
