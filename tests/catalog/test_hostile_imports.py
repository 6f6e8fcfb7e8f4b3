"""Hostile files: each gets a clear error naming what is wrong, and nothing is written."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from catalog_world import AIR_COLUMNS, AIR_CSV

SIMPLE = [
    {"name": "name", "type": "string"},
    {"name": "n", "type": "integer"},
    {"name": "day", "type": "date"},
]


def _nothing_written(cw, slug="air"):
    assert cw.client.get(f"/api/v1/datasets/{slug}/versions", headers=cw.h("env.steward")).json() == []
    assert (
        cw.client.get(f"/api/v1/datasets/{slug}", headers=cw.h("env.steward")).json()["current_version"]
        is None
    )


def _refused(response, *needles):
    assert response.status_code in (413, 422), response.text
    message = response.json()["error"]["message"]
    for needle in needles:
        assert needle in message, message
    return response.json()


def test_ragged_row_is_named(cw):
    cw.create(columns=SIMPLE)
    _refused(cw.upload("air", b"name,n,day\na,1,2026-01-01\nb,2,2026-01-02,extra\n"), "2")
    _nothing_written(cw)


def test_unclosed_quote_is_named(cw):
    cw.create(columns=SIMPLE)
    _refused(cw.upload("air", b'name,n,day\n"a,1,2026-01-01\nb,2,2026-01-02\n'), "quote")
    _nothing_written(cw)


def test_gbk_file_with_chinese_headers_imports_as_chinese(cw):
    cw.create()
    text = "站点,日期,数值\n东四,2026-01-01,1\n天坛,2026-01-02,2\n"
    response = cw.upload("air", text.encode("gbk"))
    assert response.status_code == 201, response.text
    assert response.json()["encoding"] in {"gb18030", "gbk"}
    rows = cw.client.get("/api/v1/datasets/air/rows", headers=cw.h("env.steward")).json()
    assert rows["columns"] == ["站点", "日期", "数值"] and rows["rows"][1]["站点"] == "天坛"


def test_utf8_bom_is_not_part_of_the_first_header(cw):
    cw.create(columns=SIMPLE)
    response = cw.upload("air", "\ufeffname,n,day\na,1,2026-01-01\n".encode())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content", [b"", b"name,n,day\n"], ids=["empty", "header-only"])
def test_empty_and_header_only_files_are_refused(cw, content):
    cw.create(columns=SIMPLE)
    body = _refused(cw.upload("air", content))
    assert body["error"]["message"]
    _nothing_written(cw)


def test_wrong_type_in_row_50000_of_a_large_file(cw):
    cw.create(columns=SIMPLE)
    lines = ["name,n,day"] + [f"r{i},{i},2026-01-01" for i in range(1, 60001)]
    lines[50000] = "r50000,fifty,2026-01-01"
    body = _refused(cw.upload("air", ("\n".join(lines) + "\n").encode()))
    issues = body["error"]["detail"]["issues"]
    assert issues == [{"row": 50000, "column": "n", "value": "fifty", "reason": issues[0]["reason"]}]
    assert "integer" in issues[0]["reason"]
    _nothing_written(cw)


def test_xlsx_with_merged_header_cells_is_refused(cw):
    cw.create(columns=SIMPLE)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "value", None])
    sheet.merge_cells("B1:C1")
    sheet.append(["a", 1, "2026-01-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    _refused(cw.upload("air", buffer.getvalue(), filename="data.xlsx"), "merged")
    _nothing_written(cw)


def test_xlsx_imports(cw):
    cw.create(columns=SIMPLE)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "n", "day"])
    sheet.append(["a", 1, "2026-01-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert cw.upload("air", buffer.getvalue(), filename="data.xlsx").status_code == 201


def test_file_over_the_limit_gets_413_naming_the_limit(cw):
    cw.create(columns=SIMPLE)
    big = b"name,n,day\n" + b"x" * (65 * 1024 * 1024)
    body = _refused(cw.upload("air", big), "64 MiB")
    assert body["error"]["type"] == "too_large"
    _nothing_written(cw)


@pytest.mark.parametrize(
    "content",
    [b'{"name": "a"}', b"[1, 2, 3]", b'[{"name": "a", '],
    ids=["object", "array-of-numbers", "truncated"],
)
def test_json_that_is_not_an_array_of_objects_is_refused(cw, content):
    cw.create(columns=SIMPLE)
    _refused(cw.upload("air", content, filename="data.json"))
    _nothing_written(cw)


def test_json_and_ndjson_import(cw):
    cw.create(columns=SIMPLE)
    assert (
        cw.upload("air", b'[{"name": "a", "n": 1, "day": "2026-01-01"}]', filename="d.json").status_code
        == 201
    )
    ndjson = b'{"name": "b", "n": 2, "day": "2026-01-02"}\n{"name": "c", "n": 3, "day": "2026-01-03"}\n'
    assert cw.upload("air", ndjson, filename="d.ndjson").status_code == 201


def test_parquet_with_a_conflicting_schema_is_refused(cw):
    cw.create(columns=SIMPLE)
    table = pa.table({"name": ["a"], "n": ["not a number"], "day": ["2026-01-01"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    _refused(cw.upload("air", buffer.getvalue(), filename="d.parquet"), "n")
    _nothing_written(cw)


def test_missing_and_extra_columns_are_named(cw):
    cw.create(columns=SIMPLE)
    _refused(cw.upload("air", b"name,n\na,1\n"), "day")
    _refused(cw.upload("air", b"name,n,day,colour\na,1,2026-01-01,red\n"), "colour")
    _nothing_written(cw)


def test_two_imports_at_the_same_time_both_land_or_one_conflicts(cw, settings_env):
    from zhishe.catalog import flows
    from zhishe.core.accounts.service import actor_for_user
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker

    cw.create(columns=AIR_COLUMNS)
    maker = get_sessionmaker(get_settings().database_url)
    actor = actor_for_user(cw.users["env.steward"])
    paths = []
    for i in range(2):
        path = Path(settings_env["ZHISHE_DATA_DIR"]) / f"c{i}.csv"
        path.write_bytes(AIR_CSV)
        paths.append(path)
    reports = [None, None]
    barrier = threading.Barrier(2)

    def run(i):
        barrier.wait()
        reports[i] = flows.import_path(maker=maker, actor=actor, dataset="air", path=paths[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in reports if r.status == "done"]
    failed = [r for r in reports if r.status != "done"]
    assert len(done) + len(failed) == 2 and done
    for r in failed:
        assert "same time" in r.message
    versions = cw.client.get("/api/v1/datasets/air/versions", headers=cw.h("env.steward")).json()
    assert sorted(v["version"] for v in versions) == sorted(r.version for r in done)
    total = cw.client.get(
        "/api/v1/datasets/air/rows", params={"total": "true"}, headers=cw.h("env.steward")
    ).json()
    assert total["total"] == 4 * len(done)
