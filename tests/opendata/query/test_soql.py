"""SoQL compilation: each parameter, results checked against the rows, keyset paging and totals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from odq_data import COLUMNS, ROWS, make_table

from zhishe.opendata.soql import BadQuery, compile_query
from zhishe.opendata.store import ReleaseStore

KEYS = {"data": "rel1"}
ROWS_PY = make_table().to_pylist()


def run(store: ReleaseStore, params: dict[str, str], after: str | None = None) -> Any:
    q = compile_query(params, COLUMNS, after=after, sort_key=["ts"])
    return q, q.page(store.execute(KEYS, q.sql, q.params, timeout=5, max_rows=q.fetch_rows))


def scalar(store: ReleaseStore, sql_params: tuple[str, list[Any]]) -> Any:
    sql, params = sql_params
    return store.execute(KEYS, sql, params, timeout=5, max_rows=1).column(0)[0].as_py()


def test_default_query_returns_every_column_but_row_and_a_thousand_rows(release_store: ReleaseStore) -> None:
    q, page = run(release_store, {})
    assert page.rows.column_names == list(COLUMNS)
    assert page.rows.num_rows == 1_000 and page.next is not None
    assert scalar(release_store, q.count_sql()) == ROWS


def test_where_with_text_numbers_dates_and_chinese(release_store: ReleaseStore) -> None:
    params = {
        "$where": "district = '朝阳' AND m1 > 50 AND ts >= '2026-01-02T00:00:00' AND n in (1, 2, 3) "
        "AND category not like 'cat4%' AND m1 IS NOT NULL AND NOT ok AND day between '2026-01-05' and '2026-01-20'",
        "$limit": "50000",
    }
    _, page = run(release_store, params)
    cut = datetime(2026, 1, 2, tzinfo=UTC)
    expected = [
        r for r in ROWS_PY
        if r["district"] == "朝阳" and r["m1"] is not None and r["m1"] > 50 and r["ts"] is not None
        and r["ts"] >= cut and r["n"] in (1, 2, 3) and not r["category"].startswith("cat4") and not r["ok"]
        and "2026-01-05" <= r["day"].isoformat() <= "2026-01-20"
    ]  # fmt: skip
    assert page.rows.num_rows == len(expected) > 0


def test_select_aliases_aggregates_group_having_order(release_store: ReleaseStore) -> None:
    params = {
        "$select": "district, count(*) AS n, sum(m1), avg(m1) AS mean, max(ts) AS last",
        "$group": "district",
        "$having": "count(*) > 10",
        "$order": "n DESC, district",
    }
    q, page = run(release_store, params)
    assert page.rows.column_names == ["district", "n", "sum_m1", "mean", "last"]
    assert sum(page.rows.column("n").to_pylist()) == ROWS
    assert page.next is None and not q.keyset and q.estimate_sql() is None
    assert scalar(release_store, q.count_sql()) == 4


def test_date_trunc_in_both_spellings(release_store: ReleaseStore) -> None:
    for select in ("date_trunc_ym(ts) AS month", "date_trunc('month', ts) AS month"):
        _, page = run(
            release_store, {"$select": f"{select}, count(*) AS c", "$group": "month", "$order": "month"}
        )
        assert sum(page.rows.column("c").to_pylist()) == ROWS


def test_simple_filters_and_full_text_search(release_store: ReleaseStore) -> None:
    _, page = run(release_store, {"district": "海淀", "n": "3", "ok": "true", "$limit": "50000"})
    expected = [r for r in ROWS_PY if r["district"] == "海淀" and r["n"] == 3 and r["ok"]]
    assert page.rows.num_rows == len(expected)
    _, page = run(release_store, {"$q": "海淀 CAT2", "$limit": "50000"})
    assert page.rows.num_rows == sum(
        1 for r in ROWS_PY if r["district"] == "海淀" and r["category"] == "cat2"
    )


def test_within_circle_on_a_point_column(release_store: ReleaseStore) -> None:
    _, page = run(release_store, {"$where": "within_circle(loc, 39.9, 116.4, 100)", "$limit": "50000"})
    assert page.rows.num_rows == sum(1 for r in ROWS_PY if r["loc"]["lat"] == pytest.approx(39.9))


@pytest.mark.parametrize("order", ["ts", "ts DESC", "m1 DESC, n", "n, m1 DESC, ts", "district DESC"])
def test_keyset_paging_visits_every_row_once_in_order(release_store: ReleaseStore, order: str) -> None:
    full = compile_query({"$order": order, "$limit": "50000"}, COLUMNS)
    expected = release_store.execute(KEYS, full.sql, full.params, timeout=5, max_rows=ROWS + 1)
    expected_rows = full.page(expected).rows.to_pylist()
    seen: list[dict[str, Any]] = []
    token = None
    for _ in range(100):
        _, page = run(release_store, {"$order": order, "$limit": "333"}, after=token)
        seen.extend(page.rows.to_pylist())
        token = page.next
        if token is None:
            break
    assert seen == expected_rows and len(seen) == ROWS


def test_an_order_the_file_is_in_needs_no_sort() -> None:
    for params in ({}, {"$order": "ts"}, {"$order": "ts ASC", "$where": "n = 1"}):
        assert "ORDER BY" not in compile_query(params, COLUMNS, sort_key=["ts"]).sql
    for params in ({"$order": "ts DESC"}, {"$order": "m1"}, {"$order": "ts, m1"}):
        assert "ORDER BY" in compile_query(params, COLUMNS, sort_key=["ts"]).sql


def test_offset_paging_for_grouped_queries(release_store: ReleaseStore) -> None:
    params = {"$select": "n, count(*) AS c", "$group": "n", "$order": "n", "$limit": "3"}
    _, first = run(release_store, params)
    assert first.next is None and first.next_offset == 3
    _, second = run(release_store, {**params, "$offset": "3", "$limit": "4"})
    assert first.rows.column("n").to_pylist() + second.rows.column("n").to_pylist()[:4] == list(range(7))


def test_tokens_are_tied_to_their_query_and_checked(release_store: ReleaseStore) -> None:
    _, page = run(release_store, {"$order": "ts", "$limit": "10"})
    assert page.next is not None
    with pytest.raises(BadQuery, match=r"\$next: the token belongs to a different query") as caught:
        compile_query({"$order": "m1", "$limit": "10"}, COLUMNS, after=page.next)
    assert caught.value.detail["parameter"] == "$next"
    for bad in ["garbage!!", "eyJ2IjoyfQ", "", "x" * 5000, page.next[:-3]]:
        with pytest.raises(BadQuery, match=r"\$next"):
            compile_query({"$order": "ts", "$limit": "10"}, COLUMNS, after=bad)
    with pytest.raises(BadQuery, match="grouped queries page by"):
        compile_query({"$select": "n, count(*)", "$group": "n"}, COLUMNS, after=page.next)


def test_estimate_is_close_and_exact_count_is_exact(release_store: ReleaseStore) -> None:
    q = compile_query({"$where": "n > 3"}, COLUMNS)
    exact = scalar(release_store, q.count_sql())
    assert exact == sum(1 for r in ROWS_PY if r["n"] > 3)
    estimate = q.estimate_sql()
    assert estimate is not None
    assert scalar(release_store, estimate) == exact  # the sample covers a small table entirely


def test_limit_bounds(release_store: ReleaseStore) -> None:
    assert compile_query({"$limit": "50000"}, COLUMNS).limit == 50_000
    assert compile_query({}, COLUMNS, default_limit=10).limit == 10
    for value in ["50001", "1" + "0" * 30, "abc", "-1", "1.5", ""]:
        with pytest.raises(BadQuery, match=r"^\$limit: ") as caught:
            compile_query({"$limit": value}, COLUMNS)
        assert caught.value.detail["parameter"] == "$limit" and caught.value.status_code == 400


def test_output_is_arrow_with_typed_columns(release_store: ReleaseStore) -> None:
    q, page = run(release_store, {"$select": "ts, m1 * 2 AS double_m1, lower(category) AS c", "$limit": "1"})
    assert q.columns == {"ts": "datetime", "double_m1": "number", "c": "text"}
    assert isinstance(page.rows, pa.Table) and page.rows.num_rows == 1


def test_unfiltered_pages_in_file_order_match_the_sorted_query(release_store: ReleaseStore) -> None:
    for params in ({"$offset": "10", "$limit": "5"}, {"$order": "ts", "$limit": "7"}):
        fast = compile_query(params, COLUMNS, sort_key=["ts"])
        slow = compile_query(params, COLUMNS)
        got = [fast.page(release_store.execute(KEYS, q.sql, q.params, timeout=5, max_rows=q.fetch_rows)).rows
               for q in (fast, slow)]  # fmt: skip
        assert got[0].to_pylist() == got[1].to_pylist()
