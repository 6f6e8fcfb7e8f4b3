"""Reading an uploaded file, whatever its format, into a table of raw text: `read_raw`.

The text table is what the value rules (`values`) and type inference (`infer`) work on. Row numbers
used everywhere are 1-based data rows: the first row after the header is row 1. Blank lines (CSV,
TSV, NDJSON) and empty rows (XLSX) are skipped and not counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from zhishe.catalog.ingest._csv import CsvSource, open_csv, read_csv
from zhishe.catalog.ingest._json import read_json
from zhishe.catalog.ingest._parquet import read_parquet, text_view
from zhishe.catalog.ingest._xlsx import read_xlsx
from zhishe.catalog.ingest.detect import FORMATS, detect_encoding, detect_format, normalise_encoding
from zhishe.catalog.ingest.errors import IngestError

__all__ = ["BINARY", "RawTable", "read_raw"]

#: The `encoding` of formats that are not plain text (XLSX, Parquet).
BINARY = "binary"
_TEXT_FORMATS = ("csv", "tsv", "json", "ndjson")
_HEAD = 1 << 20


@dataclass(frozen=True)
class RawTable:
    """A file as read: every column as text, plus what is known about the file."""

    #: Every column pa.string(): the text as in the file (JSON numbers and booleans as written,
    #: nested JSON values as JSON text, Parquet values rendered as text); null for a missing value.
    table: pa.Table
    #: "csv", "tsv", "xlsx", "json", "ndjson" or "parquet".
    format: str
    #: Python codec name of the text ("utf-8", "utf-8-sig", "gb18030"...), or "binary".
    encoding: str
    #: Data rows in the file.
    row_count: int
    #: Column names in file order, stripped of whitespace and BOM.
    columns: list[str]
    #: Parquet only: the table with the file's own column types.
    typed: pa.Table | None = None
    #: JSON/NDJSON only: for each column holding objects or arrays, a mask of those rows.
    nested: dict[str, pa.Array] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """Format and encoding of a file, detected or given."""

    path: Path
    format: str
    encoding: str


def inspect_file(path: str | os.PathLike[str], *, fmt: str | None, encoding: str | None) -> FileInfo:
    """Detect what `detect_format` / `detect_encoding` say about a file, unless the caller said it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD)
    except OSError as exc:
        raise IngestError("unreadable_file", f"the file cannot be read: {exc.strerror}") from None
    if size == 0:
        raise IngestError("empty_file", "the file is empty")
    fmt = fmt or detect_format(path.name, head[:65536])
    if fmt not in FORMATS:
        known = ", ".join(FORMATS)
        raise IngestError("unsupported_format", f"unsupported format {fmt!r}; use one of {known}")
    if fmt not in _TEXT_FORMATS:
        return FileInfo(path, fmt, BINARY)
    encoding = normalise_encoding(encoding) if encoding else detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    if not text.lstrip("\ufeff").strip():
        raise IngestError("empty_file", "the file is empty")
    return FileInfo(path, fmt, encoding)


def redetect(info: FileInfo, problem: str) -> FileInfo:
    """After the text failed to decode: the encoding the whole file has, if that is another one.

    The encoding given or detected from the start of a file is only a good guess (the first
    megabyte of a GBK file may be plain ASCII), and a file that does not decode in it cannot be
    read in it anyway.
    """
    data = info.path.read_bytes()
    encoding = detect_encoding(data)
    if encoding != info.encoding:
        return FileInfo(info.path, info.format, encoding)
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(
            "bad_encoding",
            f"the file is not valid {encoding} text: line {line} has bytes that are not "
            f"{encoding} ({data[exc.start : exc.start + 4]!r}); save the file as UTF-8 and upload it again",
            encoding=encoding,
            line=line,
        ) from None
    raise IngestError(
        "bad_encoding",
        f"the file is not valid {encoding} text ({problem}); save it as UTF-8 and upload it again",
        encoding=encoding,
    )


def read_csv_text(info: FileInfo) -> tuple[pa.Table, CsvSource]:
    """A CSV/TSV file with every column as text; the encoding is re-detected once if it fails."""
    while True:
        try:
            source = open_csv(info.path, fmt=info.format, encoding=info.encoding)
            table = read_csv(source, dict.fromkeys(source.names, pa.string()))
        except UnicodeError as exc:
            info = redetect(info, str(exc))
            continue
        return table, source


def _no_rows(fmt: str) -> IngestError:
    if fmt in ("csv", "tsv", "xlsx"):
        return IngestError("header_only", "the file has a header row but no data rows")
    return IngestError("no_rows", "the file holds no rows")


def read_file(info: FileInfo) -> RawTable:
    """Read a file whose format and encoding are known."""
    typed = None
    nested: dict[str, pa.Array] = {}
    encoding = info.encoding
    if info.format in ("csv", "tsv"):
        table, source = read_csv_text(info)
        encoding = source.encoding
    elif info.format == "xlsx":
        table = read_xlsx(info.path)
    elif info.format in ("json", "ndjson"):
        try:
            table, nested = read_json(info.path, fmt=info.format, encoding=info.encoding)
        except UnicodeDecodeError as exc:
            info = redetect(info, str(exc))
            return read_file(info)
    else:
        typed = read_parquet(info.path)
        table = text_view(typed)
    if table.num_rows == 0:
        raise _no_rows(info.format)
    return RawTable(table, info.format, encoding, table.num_rows, list(table.column_names), typed, nested)


def read_raw(
    path: str | os.PathLike[str], *, fmt: str | None = None, encoding: str | None = None
) -> RawTable:
    """Read a file into a `RawTable` of text columns.

    `fmt` and `encoding` are detected when not given (`detect_format`, `detect_encoding`). Raises
    IngestError when the file cannot be read as a whole: empty, header only, malformed (ragged
    rows, unclosed quotes, invalid JSON, merged header cells...), or with blank or duplicate
    column names.
    """
    return read_file(inspect_file(path, fmt=fmt, encoding=encoding))
