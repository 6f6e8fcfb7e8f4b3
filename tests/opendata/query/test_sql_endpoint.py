"""The read-only SQL endpoint: names, allow-lists, row caps, and running on the store."""

from __future__ import annotations

import pytest
from odq_data import ROWS

from zhishe.opendata.soql import BadQuery
from zhishe.opendata.sqlapi import DEFAULT_ROWS, MAX_ROWS, validate_sql
from zhishe.opendata.store import ReleaseStore

TABLES = {"air-quality": {"n": "integer"}, "air-quality@1": {"n": "integer"}, "parks": {}}
KEYS = {"air-quality": "rel1", "air-quality@1": "rel1", "parks": "rel1"}


def test_slugs_and_versions_in_quotes_run_on_the_store(release_store: ReleaseStore) -> None:
    v = validate_sql(
        'WITH a AS (SELECT district, count(*) AS c FROM "air-quality" GROUP BY district) '
        'SELECT a.district, a.c, (SELECT count(*) FROM "air-quality@1") AS total FROM a ORDER BY a.c DESC',
        TABLES,
        keys=KEYS,
    )
    assert v.keys == {"air-quality": "rel1", "air-quality@1": "rel1"}
    assert v.sql.endswith(f"LIMIT {DEFAULT_ROWS + 1}")
    rows, cut = v.cut(
        release_store.execute(v.keys, v.sql, timeout=5, max_rows=v.fetch_rows, include_row=False)
    )
    assert not cut and sum(rows.column("c").to_pylist()) == ROWS


def test_row_cap_cuts_and_says_so(release_store: ReleaseStore) -> None:
    v = validate_sql("SELECT * FROM parks", TABLES, keys=KEYS, rows="10")
    rows, cut = v.cut(release_store.execute(v.keys, v.sql, timeout=5, max_rows=v.fetch_rows))
    assert rows.num_rows == 10 and cut
    assert validate_sql("SELECT * FROM parks LIMIT 100000", TABLES).fetch_rows == DEFAULT_ROWS + 1
    for bad in ["0", str(MAX_ROWS + 1), "x"]:
        with pytest.raises(BadQuery, match=r"^rows: ") as caught:
            validate_sql("SELECT 1", TABLES, rows=bad)
        assert caught.value.detail["parameter"] == "rows"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "table_function"),
        ("SELECT * FROM 'data.parquet'", "file_table"),
        ("SELECT * FROM secrets", "table"),
        ('SELECT * FROM "AIR-QUALITY"', "table"),
        ("SELECT * FROM main.parks", "qualified_table"),
        ("DROP TABLE parks", "statement"),
        ("SELECT 1; SELECT 2", "statements"),
        ("INSERT INTO parks VALUES (1)", "statement"),
        ("ATTACH '/tmp/x.db' AS x", "statement"),
        ("COPY parks TO '/tmp/x.csv'", "statement"),
        ("SELECT getenv('HOME')", "function"),
        ("SELECT current_setting('threads')", "function"),
        ("SELECT * FROM glob('/*')", "table_function"),
        ("SELECT " + "(" * 100 + "1" + ")" * 100, "limit"),
        ("SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 2000) + ")", "limit"),
    ],
)
def test_hostile_sql_is_refused_naming_sql(sql: str, reason: str) -> None:
    with pytest.raises(BadQuery, match=r"^sql: ") as caught:
        validate_sql(sql, TABLES)
    assert caught.value.status_code == 400
    assert caught.value.detail["parameter"] == "sql" and caught.value.detail["reason"] == reason


def test_bad_encoding_is_refused_naming_sql() -> None:
    with pytest.raises(BadQuery, match=r"^sql: "):
        validate_sql(b"SELECT '\xff'", TABLES)
