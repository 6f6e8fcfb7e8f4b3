"""The point rule, vectorised: "lat,lon", WKT "POINT(lon lat)" or a JSON object with lat and lon."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest._columns import (
    NULL_STRING,
    NUMBER,
    Converted,
    any_true,
    bad_where,
    chunked,
    numeric_type,
    prepare,
)
from zhishe.catalog.types import POINT_TYPE

__all__ = ["convert_point", "point_struct", "point_verdicts"]

_LATLON_RE = rf"^(?P<lat>{NUMBER})\s*[,，]\s*(?P<lon>{NUMBER})$"
_WKT_RE = rf"^(?i:point)\s*\(\s*(?P<lon>{NUMBER})\s+(?P<lat>{NUMBER})\s*\)$"
_JSON_POINT_RE = (
    rf'^\{{\s*"(?P<k1>lat|lon|lng|long)"\s*:\s*(?P<v1>{NUMBER})\s*,'
    rf'\s*"(?P<k2>lat|lon|lng|long)"\s*:\s*(?P<v2>{NUMBER})\s*\}}$'
)


def _point_text(t: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Latitude and longitude text of each point, null where no form matches."""
    latlon = pc.extract_regex(t, _LATLON_RE)
    lat, lon = pc.struct_field(latlon, "lat"), pc.struct_field(latlon, "lon")
    if any_true(pc.match_substring_regex(t, "^(?i:point)")):
        wkt = pc.extract_regex(t, _WKT_RE)
        lat = pc.coalesce(lat, pc.struct_field(wkt, "lat"))
        lon = pc.coalesce(lon, pc.struct_field(wkt, "lon"))
    if any_true(pc.starts_with(t, "{")):
        obj = pc.extract_regex(t, _JSON_POINT_RE)
        first_is_lat = pc.equal(pc.struct_field(obj, "k1"), "lat")
        second_is_lat = pc.equal(pc.struct_field(obj, "k2"), "lat")
        one_lat = pc.xor(first_is_lat, second_is_lat)
        v1, v2 = pc.struct_field(obj, "v1"), pc.struct_field(obj, "v2")
        obj_lat = pc.if_else(one_lat, pc.if_else(first_is_lat, v1, v2), NULL_STRING)
        obj_lon = pc.if_else(one_lat, pc.if_else(first_is_lat, v2, v1), NULL_STRING)
        lat, lon = pc.coalesce(lat, obj_lat), pc.coalesce(lon, obj_lon)
    return chunked(lat), chunked(lon)


def _point_from(lat: pa.ChunkedArray, lon: pa.ChunkedArray, given: pa.ChunkedArray) -> Converted:
    """Points from float coordinates; bad where `given` has a value but a coordinate is missing
    or out of range."""
    ok = pc.and_(
        pc.and_(pc.greater_equal(lat, -90.0), pc.less_equal(lat, 90.0)),
        pc.and_(pc.greater_equal(lon, -180.0), pc.less_equal(lon, 180.0)),
    )
    ok = chunked(pc.fill_null(ok, False))
    lat_a, lon_a = (chunked(pc.cast(x, pa.float64())).combine_chunks() for x in (lat, lon))
    mask = chunked(pc.invert(ok)).combine_chunks()
    struct = pa.StructArray.from_arrays([lat_a, lon_a], fields=list(POINT_TYPE), mask=mask)
    return Converted(chunked(struct), bad_where(given, ok))


def convert_point(text: pa.ChunkedArray) -> Converted:
    """The point rule, for text."""
    t = prepare(text)
    lat_text, lon_text = _point_text(t)
    lat = pc.cast(lat_text, pa.float64())
    lon = pc.cast(lon_text, pa.float64())
    return _point_from(chunked(lat), chunked(lon), t)


_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")


def point_struct(values: pa.ChunkedArray) -> Converted | None:
    """Points from a struct column (Parquet) with numeric lat and lon fields; None if it has none."""
    names = {f.name.lower(): i for i, f in enumerate(values.type)}
    lat_i = next((names[n] for n in _LAT_NAMES if n in names), None)
    lon_i = next((names[n] for n in _LON_NAMES if n in names), None)
    if lat_i is None or lon_i is None:
        return None
    lat, lon = pc.struct_field(values, lat_i), pc.struct_field(values, lon_i)
    if not all(numeric_type(x.type) for x in (lat, lon)):
        return None
    return _point_from(chunked(pc.cast(lat, pa.float64())), chunked(pc.cast(lon, pa.float64())), values)


def point_verdicts(text: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """For prepared text: where it is not a point at all, and where its latitude is out of range."""
    lat_text, lon_text = _point_text(text)
    lat = pc.cast(lat_text, pa.float64()).combine_chunks()
    lon = pc.cast(lon_text, pa.float64()).combine_chunks()
    shapeless = pc.or_(pc.is_null(lat), pc.is_null(lon))
    lat_out = pc.invert(pc.and_(pc.greater_equal(lat, -90.0), pc.less_equal(lat, 90.0)))
    return shapeless, lat_out
