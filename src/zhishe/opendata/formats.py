"""Download formats of the open-data portal, written as a stream of bytes from Arrow record batches.

`stream()` turns the batches of a release into one of `FORMATS`. All formats but XLSX are written
chunk by chunk as the batches arrive, so memory stays bounded by one chunk (`CHUNK_ROWS` rows; for
Parquet one row group) whatever the size of the release; values are converted with vectorised
Arrow compute, not row by row.

How values are written:

- ``csv``: UTF-8, a header row, CRLF line ends, RFC 4180 quoting (every string is quoted, a null is
  an empty unquoted field). ``bom=True`` prepends the UTF-8 byte order mark so that Excel reads
  Chinese text correctly. A point column ``p`` becomes two number columns ``p_lat`` and ``p_lon``,
  which Excel and every CSV reader understand.
- ``json``: one array of objects; ``ndjson``: one object per line (``\\n``). Points are objects
  ``{"lat": …, "lon": …}``; NaN and infinities are written as ``null``.
- ``parquet``: the Arrow types as they are (timestamps in UTC, points as structs), zstd compression,
  one row group per `PARQUET_ROW_GROUP` rows.
- ``xlsx``: one sheet (named after ``title``), bold header; points as two columns like CSV; date-times
  as local date-times in ``tz`` (Excel has no time zones). XLSX cannot be streamed while it is
  written: the workbook goes to a temporary file which is then streamed and always deleted, also
  when the consumer stops early. At most `XLSX_MAX_ROWS` data rows fit; pass ``row_count`` to have
  a larger download refused with `Invalid` before anything is written, otherwise the error comes
  from the first chunk. Strings are always stored as text, never as formulas.
- ``geojson``: a FeatureCollection (RFC 7946); each row is a Feature whose geometry is a Point
  ``[lon, lat]`` from ``point_column`` (``null`` when that point is missing) and whose properties
  are the other columns, written as in ``json``.

Date-times (``timestamp`` columns, stored in UTC) are written in text formats as ISO 8601 with the
offset of ``tz`` (``2024-03-01T08:00:00+08:00``); naive timestamps are read as wall-clock time in
``tz``. Fractional seconds appear only when they are not zero. CSV values are not escaped against
spreadsheet formula injection: downloads are the published data, byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from zhishe.core.errors import Invalid

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "PARQUET_ROW_GROUP",
    "XLSX_MAX_ROWS",
    "Format",
    "extension",
    "filename",
    "media_type",
    "stream",
]

#: Rows converted and written at a time by the streaming formats.
CHUNK_ROWS = 32_768
#: Rows per Parquet row group (small incoming batches are gathered up to this many).
PARQUET_ROW_GROUP = 131_072
#: Data rows that fit on one Excel sheet (1,048,576 rows less the header).
XLSX_MAX_ROWS = 1_048_575
#: Bytes read at a time when the XLSX temporary file is streamed out.
FILE_CHUNK_BYTES = 1 << 20

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Format:
    """A download format: its HTTP media type, file extension and catalog identifiers."""

    name: str
    media_type: str
    extension: str
    #: The IANA-registered media type (for DCAT ``dcat:mediaType``), None when there is none.
    iana: str | None
    #: The EU file-type authority code (for DCAT ``dct:format``), None when there is none.
    eu_file_type: str | None
    #: True when the format needs a point column (GeoJSON).
    needs_point: bool = False


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "text/csv; charset=utf-8", "csv", "text/csv", "CSV"),
        Format("json", "application/json", "json", "application/json", "JSON"),
        # NDJSON has no IANA registration and no EU file-type code.
        Format("ndjson", "application/x-ndjson", "ndjson", None, None),
        Format(
            "parquet",
            "application/vnd.apache.parquet",
            "parquet",
            "application/vnd.apache.parquet",
            "PARQUET",
        ),
        Format(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "XLSX",
        ),
        Format("geojson", "application/geo+json", "geojson", "application/geo+json", "GEOJSON", True),
    )
}

_Kind = Literal["string", "integer", "decimal", "boolean", "date", "datetime", "point", "other"]


def _format(fmt: str) -> Format:
    try:
        return FORMATS[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        raise Invalid(
            f"unknown download format {fmt!r}; use one of {known}", detail={"parameter": "format"}
        ) from None


def media_type(fmt: str) -> str:
    """The HTTP Content-Type of a download in `fmt`."""
    return _format(fmt).media_type


def extension(fmt: str) -> str:
    """The file extension (without the dot) of a download in `fmt`."""
    return _format(fmt).extension


def filename(slug: str, version: int | str, fmt: str) -> str:
    """The download's file name, ``<slug>-v<version>.<ext>``, safe for Content-Disposition."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{slug}-v{version}").strip("-.") or "download"
    return f"{safe}.{extension(fmt)}"


def stream(
    fmt: str,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    bom: bool = False,
    point_column: str | None = None,
    title: str = "",
    tz: str = "Asia/Shanghai",
    row_count: int | None = None,
) -> Iterator[bytes]:
    """The download of `batches` (columns as in `schema`) in `fmt`, as an iterator of byte chunks.

    Arguments are checked at once, so a bad request fails before the first byte: an unknown
    format or time zone, GeoJSON without a point column, or an XLSX over `XLSX_MAX_ROWS`
    when `row_count` says so all raise `Invalid`. `bom` only affects CSV and `title` only XLSX.
    """
    spec = _format(fmt)
    zone = _zone(tz)
    kinds = {f.name: _kind(f.type) for f in schema}
    if spec.needs_point and not point_column:
        raise Invalid(
            f"the {fmt} format needs a point column, and this dataset has none",
            detail={"parameter": "format"},
        )
    if point_column is not None and kinds.get(point_column) != "point":
        raise Invalid(
            f"column {point_column!r} is not a point column (struct<lat, lon>)",
            detail={"parameter": "point_column"},
        )
    if fmt == "xlsx" and row_count is not None and row_count > XLSX_MAX_ROWS:
        raise Invalid(_too_many_rows(row_count), detail={"parameter": "format", "rows": row_count})
    if fmt == "csv":
        return _csv(batches, schema, kinds, zone, bom)
    if fmt in ("json", "ndjson"):
        return _json(batches, schema, kinds, zone, lines=fmt == "ndjson")
    if fmt == "parquet":
        return _parquet(batches, schema)
    if fmt == "xlsx":
        return _xlsx(batches, schema, kinds, zone, title)
    assert point_column is not None
    return _geojson(batches, schema, kinds, zone, point_column)


# --- shared helpers ---------------------------------------------------------------------------


def _zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {tz!r}", detail={"parameter": "tz"}) from None
    return tz


def _kind(dtype: pa.DataType) -> _Kind:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "decimal"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    if pa.types.is_struct(dtype) and {dtype.field(i).name for i in range(dtype.num_fields)} == {"lat", "lon"}:
        return "point"
    return "other"


def _too_many_rows(rows: int | str) -> str:
    count = f"{rows:,}" if isinstance(rows, int) else rows
    return (
        f"an xlsx sheet holds at most {XLSX_MAX_ROWS:,} data rows and this download has {count}; "
        "download csv or parquet instead"
    )


def _chunks(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The batches, columns in schema order, cut to at most CHUNK_ROWS rows; closes the source."""
    try:
        for batch in batches:
            batch = pa.RecordBatch.from_arrays([batch.column(n) for n in schema.names], schema=schema)
            for start in range(0, batch.num_rows, CHUNK_ROWS):
                yield batch.slice(start, CHUNK_ROWS)
    finally:
        close = getattr(batches, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def _local_timestamps(array: pa.Array, tz: str) -> pa.Array:
    """Timestamps as aware values in `tz` (naive ones read as wall-clock time in `tz`), in µs."""
    if array.type.tz is None:
        array = pc.assume_timezone(array, tz, ambiguous="earliest", nonexistent="earliest")
    return array.cast(pa.timestamp("us", tz=tz), safe=False)


def _iso_datetimes(array: pa.Array, tz: str) -> pa.Array:
    """ISO 8601 text with the offset of `tz`; microseconds only when not zero; nulls stay null."""
    aware = _local_timestamps(array, tz)
    local = pc.local_timestamp(aware)
    text = local.cast(pa.string())  # "YYYY-MM-DD HH:MM:SS.ffffff", much faster than strftime
    fraction = pc.utf8_slice_codeunits(text, 19, 26)
    fraction = pc.if_else(pc.equal(fraction, ".000000"), "", fraction)
    offsets = pc.subtract(local.cast(pa.int64()), aware.cast(pa.int64()))
    distinct = pc.unique(offsets.drop_null())  # one or two offsets, a few more in a DST zone
    labels = pa.array([_offset_label(int(v.as_py())) for v in distinct], pa.string())
    offset_text: pa.Scalar | pa.Array | str = ""
    if len(distinct) == 1:
        offset_text = labels[0]
    elif len(distinct) > 1:
        offset_text = pc.take(labels, pc.index_in(offsets, distinct))
    day, clock = pc.utf8_slice_codeunits(text, 0, 10), pc.utf8_slice_codeunits(text, 11, 19)
    return pc.binary_join_element_wise(day, "T", clock, fraction, offset_text, "")


def _offset_label(offset_us: int) -> str:
    """A UTC offset as ISO 8601 text, ``+08:00`` (seconds only when the offset has them)."""
    sign = "-" if offset_us < 0 else "+"
    minutes, seconds = divmod(abs(offset_us) // 1_000_000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _lat_lon(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The lat and lon children of a point column; a null point gives null lat and lon."""
    fields = array.flatten()
    names = [array.type.field(i).name for i in range(array.type.num_fields)]
    return fields[names.index("lat")], fields[names.index("lon")]


def _utf8(array: pa.Array) -> pa.Array:
    """Large strings and string views as plain strings, which every kernel used here accepts."""
    return array if pa.types.is_string(array.type) else array.cast(pa.string())


def _finite(array: pa.Array) -> pa.Array:
    """Floats with NaN and infinities turned into nulls."""
    if pa.types.is_floating(array.type):
        return pc.if_else(pc.is_finite(array), array, None)
    return array


def _joined_bytes(text: pa.Array, *, drop_last: int = 0) -> bytes:
    """All values of a string array (no nulls) concatenated, as UTF-8 bytes, in one copy.

    `drop_last` bytes are left off the end (the separator after the last item).
    """
    if len(text) == 0:
        return b""
    offsets_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)
    start, end = int(offsets[text.offset]), int(offsets[text.offset + len(text)]) - drop_last
    if buffers[2] is None or end <= start:
        return b""
    return memoryview(buffers[2])[start:end].tobytes()


# --- CSV ------------------------------------------------------------------------------------------


def _csv(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, kinds: dict[str, _Kind], tz: str, bom: bool
) -> Iterator[bytes]:
    names: list[str] = []
    for name in schema.names:
        names += [f"{name}_lat", f"{name}_lon"] if kinds[name] == "point" else [name]
    if bom:
        yield _BOM
    header = True
    for chunk in _chunks(batches, schema):
        columns: list[pa.Array] = []
        for name in schema.names:
            columns += _csv_columns(chunk.column(name), kinds[name], tz)
        out = _write_csv(pa.RecordBatch.from_arrays(columns, names=names), header)
        header = False
        yield out
    if header:
        empty = [pa.array([], pa.string()) for _ in names]
        yield _write_csv(pa.RecordBatch.from_arrays(empty, names=names), True)


def _csv_columns(array: pa.Array, kind: _Kind, tz: str) -> list[pa.Array]:
    if kind == "datetime":
        return [_iso_datetimes(array, tz)]
    if kind == "point":
        return [_finite(a) for a in _lat_lon(array)]
    if kind == "decimal":
        return [_finite(array)]
    if kind == "other":
        return [_as_text(array)]
    if kind == "string":
        return [_utf8(array)]
    return [array]


def _write_csv(batch: pa.RecordBatch, header: bool) -> bytes:
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=header, eol="\r\n")
    pacsv.write_csv(batch, sink, write_options=options)
    return bytes(sink.getvalue().to_pybytes())


def _as_text(array: pa.Array) -> pa.Array:
    """Any other type as text (Arrow's cast when it has one, else Python's str)."""
    try:
        return array.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


# --- JSON, NDJSON, GeoJSON -----------------------------------------------------------------------

_JSON_CONTROL = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


def _json_text(array: pa.Array) -> pa.Array:
    """Strings as JSON string literals (quotes, backslashes and control characters escaped)."""
    out = pc.replace_substring(array, pattern="\\", replacement="\\\\")
    out = pc.replace_substring(out, pattern='"', replacement='\\"')
    if pc.any(pc.match_substring_regex(out, pattern=r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            escaped = _JSON_CONTROL.get(code, f"\\u{code:04x}")
            out = pc.replace_substring(out, pattern=chr(code), replacement=escaped)
    return pc.binary_join_element_wise('"', out, '"', "")


def _json_number(array: pa.Array) -> pa.Array:
    """Numbers as JSON number literals; NaN and infinities become null. 1.0 stays ``1.0``."""
    text = _finite(array).cast(pa.string())
    if pa.types.is_floating(array.type):
        text = pc.replace_substring_regex(text, pattern=r"^(-?\d+)$", replacement=r"\1.0")
    return text


def _json_values(array: pa.Array, kind: _Kind, tz: str) -> pa.Array:
    """Each value as a JSON literal, ``null`` for nulls: a string array without nulls."""
    text: pa.Array
    if kind == "string":
        text = _json_text(_utf8(array))
    elif kind in ("integer", "decimal"):
        text = _json_number(array)
    elif kind == "boolean":
        text = array.cast(pa.string())
    elif kind == "date":
        text = pc.binary_join_element_wise('"', array.cast(pa.date32()).cast(pa.string()), '"', "")
    elif kind == "datetime":
        text = pc.binary_join_element_wise('"', _iso_datetimes(array, tz), '"', "")
    elif kind == "point":
        lat, lon = (_json_values(a, "decimal", tz) for a in _lat_lon(array))
        text = pc.if_else(
            array.is_valid(), pc.binary_join_element_wise('{"lat":', lat, ',"lon":', lon, "}", ""), None
        )
    else:
        values = array.to_pylist()
        text = pa.array([json.dumps(v, ensure_ascii=False, default=str) for v in values], pa.string())
    return pc.fill_null(text, "null")


def _json_objects(
    chunk: pa.RecordBatch, names: list[str], kinds: dict[str, _Kind], tz: str, end: str
) -> pa.Array:
    """One JSON object per row (``{"name": value, …}``) followed by `end`."""
    if not names:
        return pa.array(["{}" + end] * chunk.num_rows, pa.string())
    parts: list[Any] = []
    for i, name in enumerate(names):
        parts.append(("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        parts.append(_json_values(chunk.column(name), kinds[name], tz))
    parts.append("}" + end)
    return pc.binary_join_element_wise(*parts, "")


def _json(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, kinds: dict[str, _Kind], tz: str, *, lines: bool
) -> Iterator[bytes]:
    names = schema.names
    if lines:
        for chunk in _chunks(batches, schema):
            yield _joined_bytes(_json_objects(chunk, names, kinds, tz, "\n"))
        return
    yield from _json_array(
        b"[", _chunks(batches, schema), lambda c: _json_objects(c, names, kinds, tz, ","), b"]"
    )


def _json_array(
    opening: bytes,
    chunks: Iterator[pa.RecordBatch],
    render: Callable[[pa.RecordBatch], pa.Array],
    closing: bytes,
) -> Iterator[bytes]:
    """``opening`` + the rendered items separated by commas + ``closing``; valid when empty too."""
    first = True
    for chunk in chunks:
        if chunk.num_rows == 0:
            continue
        yield opening if first else b","
        yield _joined_bytes(render(chunk), drop_last=1)  # every item ends with ","
        first = False
    yield (opening + closing) if first else closing


def _geojson(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, kinds: dict[str, _Kind], tz: str, point_column: str
) -> Iterator[bytes]:
    others = [n for n in schema.names if n != point_column]

    def features(chunk: pa.RecordBatch) -> pa.Array:
        point = chunk.column(point_column)
        lat, lon = (_finite(a) for a in _lat_lon(point))
        ok = pc.and_kleene(point.is_valid(), pc.and_kleene(lat.is_valid(), lon.is_valid()))
        geometry = pc.binary_join_element_wise(
            '{"type":"Point","coordinates":[', _json_number(lon), ",", _json_number(lat), "]}", ""
        )
        geometry = pc.fill_null(pc.if_else(ok, geometry, None), "null")
        properties = _json_objects(chunk, others, kinds, tz, "")
        return pc.binary_join_element_wise(
            '{"type":"Feature","geometry":', geometry, ',"properties":', properties, "},", ""
        )

    opening = b'{"type":"FeatureCollection","features":['
    yield from _json_array(opening, _chunks(batches, schema), features, b"]}")


# --- Parquet ----------------------------------------------------------------------------------


class _Sink:
    """A write-only file object that keeps what is written until it is drained."""

    def __init__(self) -> None:
        self._parts: deque[bytes] = deque()
        self._size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        part = bytes(data)
        self._parts.append(part)
        self._size += len(part)
        return len(part)

    def drain(self) -> Iterator[bytes]:
        """What was written so far, in chunks of about `FILE_CHUNK_BYTES`, each freed as it goes."""
        gathered: list[bytes] = []
        size = 0
        while self._parts:
            part = self._parts.popleft()
            gathered.append(part)
            size += len(part)
            if size >= FILE_CHUNK_BYTES:
                yield b"".join(gathered)
                gathered, size = [], 0
        if gathered:
            yield b"".join(gathered)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False


def _parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for chunk in _chunks(batches, schema):
            pending.append(chunk)
            rows += chunk.num_rows
            if rows >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=PARQUET_ROW_GROUP)
                pending, rows = [], 0
                yield from sink.drain()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=PARQUET_ROW_GROUP)
        writer.close()
        yield from sink.drain()
    finally:
        if writer.is_open:
            writer.close()


# --- XLSX -------------------------------------------------------------------------------------

_XLSX_ILLEGAL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _sheet_title(title: str) -> str:
    cleaned = re.sub(r"[\[\]:*?/\\]", " ", title).strip().strip("'")
    return cleaned[:31] or "data"


def _xlsx_columns(array: pa.Array, kind: _Kind, tz: str) -> list[list[Any]]:
    if kind == "datetime":
        return [pc.local_timestamp(_local_timestamps(array, tz)).to_pylist()]
    if kind == "point":
        return [_finite(a).to_pylist() for a in _lat_lon(array)]
    if kind == "decimal":
        return [_finite(array).to_pylist()]
    if kind == "string":
        return [pc.replace_substring_regex(_utf8(array), pattern=_XLSX_ILLEGAL, replacement="").to_pylist()]
    if kind == "other":
        return [
            pc.replace_substring_regex(_as_text(array), pattern=_XLSX_ILLEGAL, replacement="").to_pylist()
        ]
    return [array.to_pylist()]


def _xlsx(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, kinds: dict[str, _Kind], tz: str, title: str
) -> Iterator[bytes]:
    # Imported here: openpyxl is only needed by this one format.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    fd, path = tempfile.mkstemp(prefix="zhishe-download-", suffix=".xlsx")
    os.close(fd)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(title))
    saved = False
    try:
        bold = Font(bold=True)
        header = []
        for name in schema.names:
            for label in [f"{name}_lat", f"{name}_lon"] if kinds[name] == "point" else [name]:
                cell = WriteOnlyCell(sheet, value=label)
                cell.data_type = "s"
                cell.font = bold
                header.append(cell)
        sheet.append(header)
        written = 0
        for chunk in _chunks(batches, schema):
            written += chunk.num_rows
            if written > XLSX_MAX_ROWS:
                raise Invalid(_too_many_rows(f"more than {XLSX_MAX_ROWS:,}"), detail={"parameter": "format"})
            columns: list[list[Any]] = []
            for name in schema.names:
                columns += _xlsx_columns(chunk.column(name), kinds[name], tz)
            for row in zip(*columns, strict=True):
                sheet.append([_xlsx_cell(sheet, v, WriteOnlyCell) for v in row])
        workbook.save(path)
        saved = True
        with open(path, "rb") as handle:
            while data := handle.read(FILE_CHUNK_BYTES):
                yield data
    finally:
        if not saved:
            _discard_sheet(sheet)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _xlsx_cell(sheet: Any, value: Any, cell_type: Any) -> Any:
    """Strings that look like formulas are stored as text; everything else as it is."""
    if isinstance(value, str) and value.startswith("="):
        cell = cell_type(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def _discard_sheet(sheet: Any) -> None:
    """Close an unsaved write-only sheet and remove its temporary XML (openpyxl keeps it until exit)."""
    with contextlib.suppress(Exception):
        sheet.close()
    writer = getattr(sheet, "_writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.cleanup()
