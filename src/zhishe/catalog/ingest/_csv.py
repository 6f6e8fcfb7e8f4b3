"""CSV and TSV reading with pyarrow.csv, and precise diagnosis when a file is malformed.

pyarrow parses fast but says little about where a file is broken, and it silently accepts a quote
that is never closed (the rest of the file becomes one value). So the happy path is pyarrow alone,
plus a cheap look at the end of the file; only when something is wrong (or looks wrong) is the file
read again with Python's csv module to name the row and line.
"""

from __future__ import annotations

import codecs
import csv
import io
import mmap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from zhishe.catalog.ingest._header import clean_names
from zhishe.catalog.ingest.errors import IngestError

__all__ = ["ConversionFailed", "CsvSource", "open_csv", "read_csv"]

csv.field_size_limit(2**31 - 1)

_HEAD_BYTES = 1 << 20
_TAIL_BYTES = 1 << 16
_QUOTE = '"'


class ConversionFailed(Exception):
    """pyarrow could not convert a value to a requested type (the caller falls back to text)."""


@dataclass(frozen=True, slots=True)
class CsvSource:
    """A CSV or TSV file whose header has been read and checked."""

    path: Path
    delimiter: str
    encoding: str  # Python codec name
    raw_names: list[str]  # the header cells as written
    names: list[str]  # the same, stripped of whitespace and BOM

    @property
    def arrow_encoding(self) -> str:
        """The encoding as pyarrow.csv names it (it reads UTF-8 itself, and skips a BOM)."""
        return "utf8" if self.encoding in ("utf-8", "utf-8-sig") else self.encoding


def _first_record(text: str, delimiter: str) -> list[str] | None:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        for fields in reader:
            if fields:
                return fields
    except csv.Error:
        return None
    return None


def open_csv(path: Path, *, fmt: str, encoding: str) -> CsvSource:
    """Read and check the header of a CSV/TSV file (UnicodeError if the start of the file is not
    valid in `encoding`)."""
    delimiter = "\t" if fmt == "tsv" else ","
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)  # UnicodeError if wrong
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise IngestError("empty_file", "the file is empty")
    raw = _first_record(text, delimiter)
    if raw is None:
        source = CsvSource(path, delimiter, encoding, [], [])
        raise diagnose(source) or IngestError("malformed_csv", "the header row could not be read")
    return CsvSource(path, delimiter, encoding, raw, clean_names(raw))


def read_csv(
    source: CsvSource,
    column_types: dict[str, pa.DataType],
    *,
    null_values: Sequence[str] = ("",),
    true_values: Sequence[str] = ("true",),
    false_values: Sequence[str] = ("false",),
) -> pa.Table:
    """Read the whole file, columns typed by `column_types` (keyed by cleaned name).

    Raises IngestError for a malformed file, ConversionFailed when a value does not convert to
    its column's type, and UnicodeError when the text is not valid in the source's encoding.
    """
    types = {raw: column_types[name] for raw, name in zip(source.raw_names, source.names, strict=True)}
    try:
        table = pacsv.read_csv(
            source.path,
            read_options=pacsv.ReadOptions(encoding=source.arrow_encoding, use_threads=True),
            parse_options=pacsv.ParseOptions(
                delimiter=source.delimiter, newlines_in_values=_may_quote(source)
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=list(null_values),
                strings_can_be_null=False,
                quoted_strings_can_be_null=True,
                true_values=list(true_values),
                false_values=list(false_values),
            ),
        )
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "CSV parse error" in message:
            error = diagnose(source) or IngestError("malformed_csv", f"the file is not valid CSV: {message}")
            raise error from None
        if "invalid UTF8" in message or "UTF-8" in message:
            raise UnicodeError(message) from None
        raise ConversionFailed(message) from None
    except UnicodeDecodeError as exc:
        raise UnicodeError(str(exc)) from None
    if table.column_names != source.raw_names:
        raise IngestError(
            "malformed_csv",
            "the header row could not be read consistently; check its quoting",
            header=source.names,
        )
    table = table.rename_columns(source.names)
    _check_end(source, table)
    return table


def _may_quote(source: CsvSource) -> bool:
    """Whether the file holds a quote character anywhere (checked on its bytes, in ~15 ms for 100 MB).

    A value can only span lines inside quotes, and pyarrow splits a file without quotes among
    its threads much faster when it is told that no value does (``newlines_in_values=False``).
    The quote is searched as its encoded bytes, which every encoding the importer reads contains
    (ASCII-compatible ones as ``"`` itself, UTF-16 as ``"`` and a zero byte); a file that cannot
    be mapped is assumed to hold quotes.
    """
    try:  # without the byte order mark some codecs write first
        needle = _QUOTE.encode(source.encoding).removeprefix("".encode(source.encoding))
    except (LookupError, UnicodeError):
        return True
    if not needle:
        return True
    try:
        with source.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(needle) != -1
    except (OSError, ValueError):
        return True


def _check_end(source: CsvSource, table: pa.Table) -> None:
    """Catch an unclosed quote, which pyarrow reads silently as a value running to the end."""
    suspicious = False
    if table.num_rows:
        last = table.slice(table.num_rows - 1)
        for column in last.columns:
            if pa.types.is_string(column.type) and pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
                suspicious = True
    if not suspicious:
        size = source.path.stat().st_size
        with source.path.open("rb") as f:
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read().decode(source.encoding, errors="replace")
        if tail and not tail.endswith(("\n", "\r")):
            last_line = tail.splitlines()[-1]
            try:
                list(csv.reader([last_line], delimiter=source.delimiter, strict=True))
            except csv.Error:
                suspicious = True
    if suspicious and (error := diagnose(source)) is not None and error.code == "unclosed_quote":
        raise error


def _quote_opening_line(path: Path, encoding: str, start: int) -> int:
    """The line, at or after `start`, whose quote is still open at the end of the file."""
    opened = start
    odd = False
    with path.open(encoding=encoding, errors="replace", newline="") as f:
        for number, line in enumerate(f, start=1):
            if number < start:
                continue
            if line.count(_QUOTE) % 2:
                if not odd:
                    opened = number
                odd = not odd
    return opened


def diagnose(source: CsvSource) -> IngestError | None:
    """Re-read the file with Python's csv module and describe its first structural problem."""
    header: list[str] | None = None
    row = 0
    with source.path.open(encoding=source.encoding, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=source.delimiter, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                if "end of data" in str(exc) or "EOF" in str(exc):
                    line = _quote_opening_line(source.path, source.encoding, start)
                    return IngestError(
                        "unclosed_quote",
                        f"unclosed quote starting on line {line}: a quoted value never ends",
                        line=line,
                        row=row + 1 if header is not None else 0,
                    )
                return IngestError(
                    "bad_quote",
                    f"badly quoted value on line {reader.line_num}: a closing quote must be followed by "
                    f"the delimiter or the end of the line ({exc})",
                    line=reader.line_num,
                )
            if not fields:
                continue
            if header is None:
                header = fields
                continue
            row += 1
            if len(fields) != len(header):
                return IngestError(
                    "ragged_row",
                    f"row {row} (line {start}) has {len(fields)} fields, the header has {len(header)}",
                    row=row,
                    line=start,
                    fields=len(fields),
                    expected=len(header),
                )
