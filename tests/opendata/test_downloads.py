"""Downloads of whole releases through the public API: every format read back by its own reader,
the CSV byte-order mark, file names, download counts, refusals, and streaming in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pyarrow.parquet as pq
import pytest

from opendata.open_world import OpenWorld, air_csv, air_rows
from zhishe.opendata import queries

SHANGHAI = ZoneInfo("Asia/Shanghai")
DOWNLOAD = "/opendata/api/v1/datasets/{slug}/download.{fmt}"
BOM = b"\xef\xbb\xbf"


def expected_air(hours: int = 48) -> list[dict[str, Any]]:
    """The air release's rows in release order (see `air_rows`), the point as two numbers."""
    rows = air_rows(hours)
    for row in rows:
        point = row.pop("location")
        row["lat"], row["lon"] = point["lat"], point["lon"]
    return rows


def fetch(ow: OpenWorld, fmt: str, slug: str = "air", **params: Any) -> Any:
    response = ow.client.get(DOWNLOAD.format(slug=slug, fmt=fmt), params=params)
    assert response.status_code == 200, response.text[:300]
    return response


def downloads(ow: OpenWorld, slug: str = "air") -> int:
    return int(ow.client.get(f"/opendata/api/v1/datasets/{slug}").json()["downloads"])


@pytest.fixture()
def air(ow: OpenWorld) -> OpenWorld:
    ow.open_air()
    return ow


def test_csv_with_and_without_bom_round_trips_with_chinese_intact(air: OpenWorld) -> None:
    want = expected_air()
    plain = fetch(air, "csv")
    assert plain.headers["content-type"] == "text/csv; charset=utf-8"
    assert plain.headers["content-disposition"] == 'attachment; filename="air-v1.csv"'
    assert not plain.content.startswith(BOM)
    with_bom = fetch(air, "csv", bom="1")
    assert with_bom.content.startswith(BOM) and with_bom.content.count(BOM) == 1
    assert with_bom.content[len(BOM) :] == plain.content  # the BOM is the only difference
    assert fetch(air, "csv", bom="0").content == plain.content
    text = plain.content.decode("utf-8")
    assert "\r\n" in text and "东四" in text and "奥体中心" in text
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(table[0]) == ["station", "observed_at", "pm25", "aqi", "location_lat", "location_lon"]
    got = [
        {
            "station": r["station"],
            "observed_at": datetime.fromisoformat(r["observed_at"]),
            "pm25": float(r["pm25"]),
            "aqi": int(r["aqi"]),
            "lat": float(r["location_lat"]),
            "lon": float(r["location_lon"]),
        }
        for r in table
    ]
    assert got == want
    assert table[0]["observed_at"] == "2026-09-01T00:00:00+08:00"  # local time, with its offset
    assert "reporter_phone" not in text and "1380000" not in text
    assert BOM not in fetch(air, "json", bom="1").content  # only CSV takes a BOM


def test_json_ndjson_and_geojson_round_trip(air: OpenWorld) -> None:
    want = expected_air()
    as_json = fetch(air, "json")
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["content-disposition"] == 'attachment; filename="air-v1.json"'
    items = json.loads(as_json.content)
    assert [
        {
            "station": r["station"],
            "observed_at": datetime.fromisoformat(r["observed_at"]),
            "pm25": r["pm25"],
            "aqi": r["aqi"],
            "lat": r["location"]["lat"],
            "lon": r["location"]["lon"],
        }
        for r in items
    ] == want

    lines = fetch(air, "ndjson")
    assert lines.headers["content-disposition"].endswith('filename="air-v1.ndjson"')
    assert [json.loads(x) for x in lines.content.decode("utf-8").splitlines()] == items

    geo = fetch(air, "geojson")
    assert geo.headers["content-type"] == "application/geo+json"
    assert geo.headers["content-disposition"] == 'attachment; filename="air-v1.geojson"'
    collection = json.loads(geo.content)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 144
    for feature, row in zip(collection["features"], want, strict=True):
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [row["lon"], row["lat"]]}  # lon first
        assert feature["properties"]["station"] == row["station"]
        assert datetime.fromisoformat(feature["properties"]["observed_at"]) == row["observed_at"]
        assert "location" not in feature["properties"]


def test_parquet_and_xlsx_round_trip(air: OpenWorld) -> None:
    want = expected_air()
    parquet = fetch(air, "parquet")
    assert parquet.headers["content-disposition"] == 'attachment; filename="air-v1.parquet"'
    assert parquet.content[:4] == b"PAR1"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == ["station", "observed_at", "pm25", "aqi", "location"]
    assert [
        {
            "station": r["station"],
            "observed_at": r["observed_at"],
            "pm25": r["pm25"],
            "aqi": r["aqi"],
            "lat": r["location"]["lat"],
            "lon": r["location"]["lon"],
        }
        for r in table.to_pylist()
    ] == want

    xlsx = fetch(air, "xlsx")
    assert xlsx.headers["content-disposition"] == 'attachment; filename="air-v1.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    sheet = book.worksheets[0]
    assert sheet.title == "空气质量"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("station", "observed_at", "pm25", "aqi", "location_lat", "location_lon")
    assert (
        [
            {
                "station": r[0],
                "observed_at": r[1].replace(tzinfo=SHANGHAI),  # Excel has local wall-clock times
                "pm25": r[2],
                "aqi": r[3],
                "lat": r[4],
                "lon": r[5],
            }
            for r in rows[1:]
        ]
        == want
    )
    book.close()


def test_an_old_release_downloads_under_its_own_name(air: OpenWorld) -> None:
    assert air.upload("air", air_csv(24), mode="replace").status_code == 201
    air.release("air", note="只有一天")
    newest = fetch(air, "csv")
    assert newest.headers["content-disposition"] == 'attachment; filename="air-v2.csv"'
    assert len(newest.text.strip().splitlines()) == 1 + 72
    old = fetch(air, "csv", version="1")
    assert old.headers["content-disposition"] == 'attachment; filename="air-v1.csv"'
    assert len(old.text.strip().splitlines()) == 1 + 144
    missing = air.client.get(DOWNLOAD.format(slug="air", fmt="csv"), params={"version": "3"})
    assert missing.status_code == 404


def test_downloads_are_counted_and_refusals_are_not(air: OpenWorld) -> None:
    # counts are relative: the process's usage buffer may still hold counts of an earlier test
    start = downloads(air)
    for fmt in ("csv", "json", "ndjson", "parquet", "xlsx", "geojson"):
        fetch(air, fmt)
    fetch(air, "csv", bom="1")
    assert downloads(air) == start + 7
    unknown = air.client.get(DOWNLOAD.format(slug="air", fmt="xml"))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["detail"]["parameter"] == "format"
    assert "xml" in unknown.json()["error"]["message"]
    assert air.client.get(DOWNLOAD.format(slug="nope", fmt="csv")).status_code == 404
    assert downloads(air) == start + 7
    before = air.client.get("/opendata/api/v1/datasets/air").json()["api_calls"]
    air.query(**{"$limit": "1"})
    after = air.client.get("/opendata/api/v1/datasets/air").json()
    assert after["api_calls"] == before + 1 and after["downloads"] == start + 7
    page = air.client.get("/opendata/datasets/air")
    assert f'<dd id="downloads-count">{start + 7}</dd>' in page.text


def test_geojson_needs_a_point_column(ow: OpenWorld) -> None:
    ow.create(
        "stations",
        columns=[
            {"name": "station", "type": "string", "is_key": True, "classification": "public"},
            {"name": "district", "type": "string", "classification": "public"},
        ],
        title_zh="监测站",
    )
    assert ow.upload("stations", "station,district\n东四,东城区\n".encode()).status_code == 201
    ow.release("stations")
    start = downloads(ow, "stations")
    refused = ow.client.get(DOWNLOAD.format(slug="stations", fmt="geojson"))
    assert 400 <= refused.status_code < 500, refused.text
    error = refused.json()["error"]
    assert error["detail"]["parameter"] == "format" and "point" in error["message"]
    assert downloads(ow, "stations") == start
    links = ow.client.get("/opendata/api/v1/datasets/stations").json()["links"]
    assert "download_geojson" not in links and "download_csv" in links
    assert fetch(ow, "csv", slug="stations").text.splitlines()[1] == '"东四","东城区"'


# -- streaming ---------------------------------------------------------------------------------------

BIG_ROWS = 200_000


@pytest.fixture()
def big(ow: OpenWorld) -> OpenWorld:
    ow.create(
        "big",
        columns=[
            {"name": "id", "type": "integer", "is_key": True, "classification": "public"},
            {"name": "label", "type": "string", "classification": "public"},
            {"name": "v", "type": "decimal", "classification": "public"},
        ],
        title_zh="大表",
    )
    lines = ["id,label,v"] + [f"{i},站点{i % 500},{i / 8}" for i in range(BIG_ROWS)]
    assert ow.upload("big", ("\n".join(lines) + "\n").encode()).status_code == 201
    assert ow.configure("big", order_by=["id"]).status_code == 200
    ow.release("big")
    return ow


def test_a_large_release_is_streamed_in_pieces_in_bounded_memory(big: OpenWorld) -> None:
    response = big.client.get(DOWNLOAD.format(slug="big", fmt="csv"))
    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed, not built whole
    lines = response.content.decode("utf-8").splitlines()
    assert len(lines) == BIG_ROWS + 1 and lines[1] == '0,"站点0",0' and lines[-1].startswith("199999,")

    for fmt in ("csv", "ndjson", "json"):
        tracemalloc.start()
        try:
            prepared = queries.download(session=big.db, slug="big", fmt=fmt, count=False)
            pieces = total = biggest = 0
            for chunk in prepared.chunks:
                pieces += 1
                total += len(chunk)
                biggest = max(biggest, len(chunk))
                del chunk
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert pieces >= 5, f"{fmt}: {pieces} pieces"
        assert biggest < total / 4, f"{fmt}: one piece of {biggest:,} bytes out of {total:,}"
        assert peak < total / 2, f"{fmt}: peak {peak:,} bytes for a {total:,}-byte download"
