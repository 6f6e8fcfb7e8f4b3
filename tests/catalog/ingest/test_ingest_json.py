"""JSON and NDJSON files: an array of objects, or one object per line; errors say where."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from zhishe.catalog.ingest import IngestError, infer_columns, load, read_raw
from zhishe.catalog.types import ColumnSpec, ColumnType

TZ = "Asia/Shanghai"
SIMPLE = [
    ColumnSpec("name", ColumnType.STRING),
    ColumnSpec("n", ColumnType.INTEGER),
    ColumnSpec("day", ColumnType.DATE),
]


def _write(tmp_path: Path, content: str, name: str = "data.json") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ('{"name": "a"}', "not_array_of_objects", "the JSON document is an object, not an array of objects"),
        ("[1, 2, 3]", "not_array_of_objects", "element 1 of the JSON array is a number, not an object"),
        ('[{"name": "a"}, "b"]', "not_array_of_objects", "element 2 of the JSON array is a string"),
        ('"just text"', "not_array_of_objects", "the JSON document is a string"),
        ('[{"name": "a", ', "invalid_json", "invalid JSON at line 1, column 16"),
        ('[\n  {"name": "a"},\n  {"name": "b",}\n]', "invalid_json", "invalid JSON at line 3"),
        ("[]", "no_rows", "no rows"),
    ],
)
def test_json_that_is_not_an_array_of_objects_is_refused_saying_where(
    tmp_path: Path, content: str, code: str, message: str
) -> None:
    with pytest.raises(IngestError) as caught:
        load(_write(tmp_path, content), SIMPLE, timezone=TZ)
    assert caught.value.code == code
    assert message in caught.value.message


def test_json_values_become_text_as_written(tmp_path: Path) -> None:
    content = (
        '[{"a": "x", "b": 1, "c": 1.0, "d": true, "e": null, "f": {"k": [1, 2]}}, {"a": "y", "g": 2.5e-8}]'
    )
    raw = read_raw(_write(tmp_path, content))
    assert raw.columns == ["a", "b", "c", "d", "e", "f", "g"]
    assert raw.table.to_pylist() == [
        {"a": "x", "b": "1", "c": "1.0", "d": "true", "e": None, "f": '{"k":[1,2]}', "g": None},
        {"a": "y", "b": None, "c": None, "d": None, "e": None, "f": None, "g": "2.5e-08"},
    ]
    assert raw.nested["f"].to_pylist() == [True, False]


def test_json_numbers_and_booleans_map_naturally(tmp_path: Path) -> None:
    content = '[{"name": "a", "n": 7, "day": "2026-01-02", "ok": false, "x": 0.5}]'
    columns = [*SIMPLE, ColumnSpec("ok", ColumnType.BOOLEAN), ColumnSpec("x", ColumnType.DECIMAL)]
    result = load(_write(tmp_path, content), columns, timezone=TZ)
    assert result.table.to_pylist() == [
        {"name": "a", "n": 7, "day": dt.date(2026, 1, 2), "ok": False, "x": 0.5}
    ]


def test_json_float_in_an_integer_column_is_an_issue(tmp_path: Path) -> None:
    content = '[{"name": "a", "n": 1.0, "day": null}]'
    result = load(_write(tmp_path, content), SIMPLE, timezone=TZ)
    assert [(i.row, i.column, i.reason) for i in result.issues] == [(1, "n", "'1.0' is not an integer")]


def test_nested_values_are_accepted_only_in_point_columns(tmp_path: Path) -> None:
    content = (
        '[{"name": "a", "where": {"lat": 39.9, "lon": 116.4}},'
        ' {"name": {"first": "b"}, "where": {"lng": 121.5, "lat": 31.2}}]'
    )
    columns = [ColumnSpec("name", ColumnType.STRING), ColumnSpec("where", ColumnType.POINT)]
    result = load(_write(tmp_path, content), columns, timezone=TZ)
    assert result.table.to_pylist() == [{"name": "a", "where": {"lat": 39.9, "lon": 116.4}}]
    assert [(i.row, i.column, i.value) for i in result.issues] == [(2, "name", '{"first":"b"}')]
    assert "only point columns accept nested values" in result.issues[0].reason


def test_ndjson_reads_one_object_per_line_skipping_blank_lines(tmp_path: Path) -> None:
    content = '{"name": "a", "n": 1, "day": "2026-01-01"}\n\n{"name": "b", "n": "x", "day": "2026-01-02"}\n'
    result = load(_write(tmp_path, content, name="data.ndjson"), SIMPLE, timezone=TZ)
    assert result.format == "ndjson"
    assert result.bad_rows == [2]


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ('{"name": "a"}\n{"name": \n', "invalid_json", "invalid JSON on line 2"),
        ('{"name": "a"}\n[1]\n', "not_object", "line 2 holds an array, not a JSON object"),
    ],
)
def test_bad_ndjson_lines_are_named(tmp_path: Path, content: str, code: str, message: str) -> None:
    with pytest.raises(IngestError) as caught:
        read_raw(_write(tmp_path, content, name="data.ndjson"))
    assert caught.value.code == code
    assert message in caught.value.message


def test_json_inference_keeps_nested_non_points_as_strings(tmp_path: Path) -> None:
    content = '[{"id": 1, "tags": ["a"], "where": {"lat": 1.5, "lon": 2.5}, "ok": true}]'
    types = {s.name: s.type for s in infer_columns(read_raw(_write(tmp_path, content)))}
    assert types == {
        "id": ColumnType.INTEGER,
        "tags": ColumnType.STRING,
        "where": ColumnType.POINT,
        "ok": ColumnType.BOOLEAN,
    }


def test_gbk_encoded_json_is_read(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_bytes('[{"name": "张三", "n": 1, "day": null}]'.encode("gbk"))
    result = load(path, SIMPLE, timezone=TZ)
    assert result.encoding == "gb18030"
    assert result.table.column("name").to_pylist() == ["张三"]
