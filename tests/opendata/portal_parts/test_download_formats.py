"""Download formats: each one read back with its own reader, bounded memory, XLSX temp files."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from zhishe.catalog.types import POINT_TYPE
from zhishe.core.errors import Invalid
from zhishe.opendata import formats

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("ok", pa.bool_()),
        ("day", pa.date32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("where", POINT_TYPE),
    ]
)
TRICKY = '北京 "朝阳", 逗号\r\n换行\t制表 \\ 反斜杠 \x01 控制 😀'
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": TRICKY,
        "value": 1.0,
        "ok": True,
        "day": date(2024, 2, 29),
        "at": datetime(2024, 1, 31, 16, 30, tzinfo=UTC),
        "where": {"lat": 39.9042, "lon": 116.4074},
    },
    {"id": None, "name": None, "value": None, "ok": None, "day": None, "at": None, "where": None},
    {
        "id": -9007199254740993,
        "name": "",
        "value": 0.1,
        "ok": False,
        "day": date(1999, 12, 31),
        "at": datetime(2024, 6, 30, 23, 59, 59, 123456, tzinfo=UTC),
        "where": {"lat": -33.5, "lon": None},
    },
    {
        "id": 4,
        "name": '=HYPERLINK("http://x")',
        "value": -2.5e-7,
        "ok": True,
        "day": date(2000, 1, 1),
        "at": datetime(1969, 12, 31, 23, 0, tzinfo=UTC),
        "where": {"lat": 31.2304, "lon": 121.4737},
    },
]


def _batch(rows: list[dict[str, Any]] = ROWS) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def _download(fmt: str, batches: list[pa.RecordBatch] | None = None, **options: Any) -> bytes:
    return b"".join(formats.stream(fmt, [_batch()] if batches is None else batches, SCHEMA, **options))


def _local(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(SHANGHAI).isoformat()


# --- round trips --------------------------------------------------------------------------------


def test_csv_reads_back_with_the_csv_module_bom_crlf_and_point_columns() -> None:
    data = _download("csv", bom=True)

    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["id", "name", "value", "ok", "day", "at", "where_lat", "where_lon"]
    first, empty, third, fourth = rows[1:]
    assert first == [
        "1",
        TRICKY,
        "1",
        "true",
        "2024-02-29",
        "2024-02-01T00:30:00+08:00",
        "39.9042",
        "116.4074",
    ]
    assert empty == [""] * 8
    assert third[:3] == ["-9007199254740993", "", "0.1"]
    assert third[5:] == ["2024-07-01T07:59:59.123456+08:00", "-33.5", ""]
    assert datetime.fromisoformat(third[5]) == ROWS[2]["at"]
    assert fourth[1] == ROWS[3]["name"]  # published as is: no formula escaping
    assert float(fourth[2]) == -2.5e-7
    assert fourth[5] == "1970-01-01T07:00:00+08:00"


def test_csv_without_bom_starts_with_the_header() -> None:
    assert _download("csv").startswith(b'"id","name"')


def test_csv_keeps_null_and_empty_string_apart() -> None:
    data = _download("csv")
    options = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)

    table = pacsv.read_csv(
        io.BytesIO(data), read_options=pacsv.ReadOptions(use_threads=False), convert_options=options
    )

    assert b"\r\n,,,,,,,\r\n" in data

    assert table.column("name").to_pylist()[1:3] == [None, ""]


def test_json_is_one_array_of_objects_with_iso_datetimes_and_point_objects() -> None:
    rows = json.loads(_download("json"))

    assert len(rows) == 4
    for got, want in zip(rows, ROWS, strict=True):
        assert got["id"] == want["id"]
        assert got["name"] == want["name"]
        assert got["ok"] == want["ok"]
        assert got["day"] == (want["day"].isoformat() if want["day"] else None)
        assert got["at"] == _local(want["at"])
        assert got["where"] == want["where"]
    assert rows[0]["value"] == 1.0 and isinstance(rows[0]["value"], float)
    assert rows[2]["value"] == 0.1
    assert rows[3]["value"] == -2.5e-7
    assert rows[2]["id"] == -9007199254740993  # exact, no float rounding
    assert datetime.fromisoformat(rows[2]["at"]) == ROWS[2]["at"]


def test_json_writes_nan_and_infinity_as_null() -> None:
    schema = pa.schema([("v", pa.float64())])
    batch = pa.record_batch([pa.array([float("nan"), float("inf"), -float("inf"), 2.0])], schema=schema)

    assert json.loads(b"".join(formats.stream("json", [batch], schema))) == [
        {"v": None},
        {"v": None},
        {"v": None},
        {"v": 2.0},
    ]


def test_ndjson_is_one_object_per_line() -> None:
    data = _download("ndjson")

    lines = data.decode().split("\n")
    assert lines[-1] == ""
    objects = [json.loads(line) for line in lines[:-1]]
    assert [o["name"] for o in objects] == [r["name"] for r in ROWS]
    assert objects[0]["at"] == "2024-02-01T00:30:00+08:00"
    assert objects[1] == dict.fromkeys(SCHEMA.names)


def test_json_escapes_every_control_character() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\\u2028é中'
    schema = pa.schema([("t", pa.string())])
    batch = pa.record_batch([pa.array([text])], schema=schema)

    data = b"".join(formats.stream("ndjson", [batch], schema))

    assert data.count(b"\n") == 1
    assert json.loads(data) == {"t": text}


def test_parquet_round_trips_the_arrow_types_exactly() -> None:
    data = _download("parquet", batches=[_batch(), _batch(ROWS[:2])])

    table = pq.read_table(io.BytesIO(data), use_threads=False)
    assert table.schema.equals(SCHEMA)
    assert table.to_pylist() == ROWS + ROWS[:2]
    assert pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0).compression == "ZSTD"


def test_xlsx_reads_back_with_openpyxl_as_local_datetimes_and_text() -> None:
    data = _download("xlsx", title="空气质量 / Air quality: 2024")

    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook.active
    assert sheet is not None
    assert sheet.title == "空气质量   Air quality  2024"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("id", "name", "value", "ok", "day", "at", "where_lat", "where_lon")
    assert sheet["A1"].font.bold
    first = rows[1]
    assert first[1] == TRICKY.replace("\x01", "").replace("\r\n", "\n")  # XML: no control characters, LF
    assert first[2:6] == (1, True, datetime(2024, 2, 29), datetime(2024, 2, 1, 0, 30))
    assert first[6:] == (39.9042, 116.4074)
    assert rows[2] == (None,) * 8
    assert rows[3][0] == -9007199254740993 or rows[3][0] == pytest.approx(-9007199254740993)
    assert rows[3][5] == datetime(2024, 7, 1, 7, 59, 59, 123000)  # Excel keeps milliseconds
    assert rows[4][1] == ROWS[3]["name"]
    assert sheet.cell(row=5, column=2).data_type == "s"  # a formula-looking string stays text


def test_geojson_features_have_lon_lat_points_and_the_other_columns_as_properties() -> None:
    collection = json.loads(_download("geojson", point_column="where"))

    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert [f["type"] for f in features] == ["Feature"] * 4
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [116.4074, 39.9042]}
    assert features[0]["properties"]["name"] == TRICKY
    assert features[0]["properties"]["at"] == "2024-02-01T00:30:00+08:00"
    assert "where" not in features[0]["properties"]
    assert features[1]["geometry"] is None  # null point
    assert features[2]["geometry"] is None  # point without a longitude
    assert features[3]["geometry"]["coordinates"] == [121.4737, 31.2304]


@pytest.mark.parametrize("fmt", list(formats.FORMATS))
def test_an_empty_download_is_still_a_valid_file(fmt: str) -> None:
    data = _download(fmt, batches=[], point_column="where" if fmt == "geojson" else None)

    if fmt == "csv":
        assert list(csv.reader(io.StringIO(data.decode()))) == [
            ["id", "name", "value", "ok", "day", "at", "where_lat", "where_lon"]
        ]
    elif fmt == "json":
        assert json.loads(data) == []
    elif fmt == "ndjson":
        assert data == b""
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(data), use_threads=False)
        assert table.num_rows == 0 and table.schema.equals(SCHEMA)
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        assert sheet is not None and sheet.max_row == 1
    else:
        assert json.loads(data) == {"type": "FeatureCollection", "features": []}


def test_empty_batches_between_full_ones_do_not_break_json() -> None:
    empty = _batch([])

    rows = json.loads(_download("json", batches=[empty, _batch(), empty, _batch(ROWS[:1]), empty]))

    assert len(rows) == 5


def test_columns_follow_the_schema_and_extra_batch_columns_are_left_out() -> None:
    schema = pa.schema([("b", pa.int64()), ("a", pa.string())])
    batch = pa.record_batch([pa.array(["x"]), pa.array([7]), pa.array([99])], names=["a", "b", "_row_id"])

    assert json.loads(b"".join(formats.stream("json", [batch], schema))) == [{"b": 7, "a": "x"}]


def test_naive_timestamps_are_read_as_wall_clock_time_in_the_zone() -> None:
    schema = pa.schema([("at", pa.timestamp("ms"))])
    batch = pa.record_batch([pa.array([datetime(2024, 5, 1, 9, 30)], pa.timestamp("ms"))], schema=schema)

    assert json.loads(b"".join(formats.stream("json", [batch], schema))) == [
        {"at": "2024-05-01T09:30:00+08:00"}
    ]
    assert json.loads(b"".join(formats.stream("json", [batch], schema, tz="UTC"))) == [
        {"at": "2024-05-01T09:30:00+00:00"}
    ]


def test_datetimes_use_the_offset_of_the_zone_at_that_moment() -> None:
    schema = pa.schema([("at", pa.timestamp("us", tz="UTC"))])
    moments = [datetime(2024, 1, 15, 12, tzinfo=UTC), datetime(2024, 7, 15, 12, tzinfo=UTC)]
    batch = pa.record_batch([pa.array(moments, pa.timestamp("us", tz="UTC"))], schema=schema)

    rows = json.loads(b"".join(formats.stream("json", [batch], schema, tz="Europe/Berlin")))

    assert [r["at"] for r in rows] == ["2024-01-15T13:00:00+01:00", "2024-07-15T14:00:00+02:00"]


# --- refusals -----------------------------------------------------------------------------------


def test_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(Invalid, match=r"unknown download format 'xml'.*csv, json"):
        formats.stream("xml", [], SCHEMA)


def test_geojson_without_a_point_column_is_refused_naming_the_format() -> None:
    with pytest.raises(Invalid, match="geojson") as caught:
        formats.stream("geojson", [], SCHEMA)

    assert caught.value.detail == {"parameter": "format"}


def test_a_point_column_that_is_not_a_point_is_refused() -> None:
    with pytest.raises(Invalid, match="'name' is not a point column"):
        formats.stream("geojson", [], SCHEMA, point_column="name")


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(Invalid, match="unknown time zone 'Mars/Base'"):
        formats.stream("csv", [], SCHEMA, tz="Mars/Base")


def test_xlsx_over_the_excel_limit_is_refused_before_reading_anything() -> None:
    def never() -> Iterator[pa.RecordBatch]:
        raise AssertionError("the batches must not be read")
        yield  # pragma: no cover

    with pytest.raises(Invalid, match="1,048,575 data rows and this download has 1,048,576") as caught:
        formats.stream("xlsx", never(), SCHEMA, row_count=1_048_576)

    assert caught.value.detail["rows"] == 1_048_576
    formats.stream("xlsx", never(), SCHEMA, row_count=1_048_575).close()


def test_xlsx_over_the_limit_without_a_row_count_fails_and_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(formats, "XLSX_MAX_ROWS", 5)

    with pytest.raises(Invalid, match="at most 5 data rows"):
        _download("xlsx", batches=[_batch(), _batch()])

    assert list(tmp_path.iterdir()) == []


# --- XLSX temporary files -------------------------------------------------------------------------


def test_xlsx_temp_file_is_removed_after_a_full_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert _download("xlsx").startswith(b"PK")
    assert list(tmp_path.iterdir()) == []


def test_xlsx_temp_file_is_removed_when_the_consumer_stops_early(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(formats, "FILE_CHUNK_BYTES", 100)
    chunks = formats.stream("xlsx", [_batch()], SCHEMA)

    assert next(chunks).startswith(b"PK")
    assert [p.suffix for p in tmp_path.iterdir()] == [".xlsx"]
    chunks.close()

    assert list(tmp_path.iterdir()) == []


def test_xlsx_temp_files_are_removed_when_the_source_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def failing() -> Iterator[pa.RecordBatch]:
        yield _batch()
        raise OSError("lake went away")

    with pytest.raises(OSError, match="lake went away"):
        _download("xlsx", batches=failing())  # type: ignore[arg-type]

    assert list(tmp_path.iterdir()) == []


# --- streaming ------------------------------------------------------------------------------------


def test_batches_are_read_lazily_and_the_source_is_closed_when_the_consumer_stops() -> None:
    pulled: list[int] = []
    closed: list[bool] = []

    def source() -> Iterator[pa.RecordBatch]:
        try:
            for i in range(1000):
                pulled.append(i)
                yield _batch()
        finally:
            closed.append(True)

    chunks = formats.stream("csv", source(), SCHEMA)
    next(chunks)
    assert pulled == [0]
    chunks.close()

    assert closed == [True]


def _big_source(rows: int, batch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
    """`rows` rows in batches; values are made with Arrow compute, which tracemalloc does not see."""
    ids = pa.array(np.arange(batch_rows, dtype=np.int64))
    names = pa.array(["北京市朝阳区", '上海 "浦东"', "广州,天河", "深圳\n南山"] * (batch_rows // 4))
    for start in range(0, rows, batch_rows):
        shifted = pc.add(ids, start)
        value = pc.sin(pc.cast(shifted, pa.float64()))
        at = pc.cast(
            pc.add(pc.multiply(shifted, 1_000_000), 1_700_000_000_000_000), pa.timestamp("us", tz="UTC")
        )
        point = pa.StructArray.from_arrays(
            [pc.add(pc.multiply(value, 0.5), 31.0), pc.add(pc.multiply(value, 0.25), 121.0)],
            names=["lat", "lon"],
        )
        yield pa.RecordBatch.from_arrays(
            [
                shifted,
                names,
                value,
                pc.greater(value, 0),
                pc.cast(pc.divide(shifted, 1000), pa.int32()).cast(pa.date32()),
                at,
                point,
            ],
            schema=SCHEMA,
        )


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet", "geojson"])
def test_a_million_rows_stream_in_bounded_memory(fmt: str) -> None:
    rows = 1_000_000
    b"".join(formats.stream(fmt, _big_source(8, 8), SCHEMA, point_column="where"))  # lazy imports
    tracemalloc.start()
    try:
        total = biggest = 0
        for chunk in formats.stream(fmt, _big_source(rows), SCHEMA, point_column="where"):
            total += len(chunk)
            biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total > 10_000_000
    assert peak < total / 4, f"peak {peak:,} bytes for {total:,} bytes of {fmt}"
    assert biggest < 16_000_000


# --- names ----------------------------------------------------------------------------------------


def test_media_types_extensions_and_file_names() -> None:
    assert formats.media_type("csv") == "text/csv; charset=utf-8"
    assert formats.media_type("geojson") == "application/geo+json"
    assert formats.media_type("parquet") == "application/vnd.apache.parquet"
    assert formats.extension("xlsx") == "xlsx"
    assert formats.filename("air-quality", 3, "ndjson") == "air-quality-v3.ndjson"
    assert formats.filename("水质 data/../x", "2", "csv") == "data-..-x-v2.csv"
    with pytest.raises(Invalid):
        formats.extension("pdf")
