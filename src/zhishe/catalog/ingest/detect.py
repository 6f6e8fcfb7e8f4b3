"""Recognise an uploaded file: its format (magic bytes, then extension, then sniffing) and encoding.

Formats are "csv", "tsv", "xlsx", "json", "ndjson" and "parquet". Text files are read as UTF-8,
UTF-8 with a byte-order mark, or GB18030 (the superset of GBK and GB2312 in which Chinese
spreadsheets are usually exported); any other single-byte encoding is left to charset-normalizer.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import PurePath

import charset_normalizer
import orjson

from zhishe.catalog.ingest.errors import IngestError

__all__ = ["FORMATS", "detect_encoding", "detect_format", "normalise_encoding", "sniff_delimiter"]

#: The formats `read_raw` can read.
FORMATS: tuple[str, ...] = ("csv", "tsv", "xlsx", "json", "ndjson", "parquet")

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_TEXT_EXTENSIONS = (".csv", ".tsv", ".tab", ".txt", "")
_CHINESE = {"gb18030", "gbk", "gb2312", "hz", "cp936", "euc_cn", "big5", "big5hkscs", "cp950"}
_TRADITIONAL = {"big5", "big5hkscs", "cp950"}
_HANZI = re.compile("[\u4e00-\u9fff]")


def _decodes(data: bytes, encoding: str) -> bool:
    """True if `data` (possibly cut short in the middle of a character) is valid in `encoding`."""
    try:
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _damaged_utf8(data: bytes) -> bool:
    """UTF-8 text with a few broken bytes, rather than text in another encoding.

    Reading it as GB18030 would turn every Chinese character into mojibake; it is better called
    UTF-8 and refused where it breaks. GBK text read as UTF-8 is almost all replacement characters.
    """
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    extra_bytes = len(text.encode("utf-8")) - len(text) - 2 * broken  # of well-formed characters
    return broken > 0 and extra_bytes >= 40 * broken


def _damaged_gb18030(data: bytes) -> bool:
    """Chinese GB18030 text with a few broken bytes: refused where it breaks, not read as mojibake."""
    text = data.decode("gb18030", errors="replace")
    broken = text.count("\ufffd")
    return len(_HANZI.findall(text)) >= 20 * broken > 0


def detect_encoding(data: bytes) -> str:
    """The text encoding of `data` (the start of a file or all of it), as a Python codec name.

    "utf-8-sig" when the data starts with a UTF-8 byte-order mark; "utf-8" when it is valid UTF-8
    (or UTF-8 with a few broken bytes, which reading then refuses); "gb18030" when it is valid
    GB18030, a superset of GBK, or nearly so (Chinese text is never misread as mojibake); and
    otherwise the encoding charset-normalizer finds most likely. UTF-16 and UTF-32 files are
    refused with an IngestError asking for UTF-8.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise IngestError(
            "unsupported_encoding",
            "the file is UTF-16 or UTF-32 encoded; save it as UTF-8 (or GBK) and upload it again",
        )
    if _decodes(data, "utf-8") or _damaged_utf8(data):
        return "utf-8"
    best = charset_normalizer.from_bytes(data[: 1 << 20]).best()
    guess = codecs.lookup(best.encoding).name.replace("-", "_") if best is not None else None
    if _decodes(data, "gb18030") and guess not in _TRADITIONAL:
        return "gb18030"
    if guess in _CHINESE - _TRADITIONAL or (guess not in _TRADITIONAL and _damaged_gb18030(data)):
        return "gb18030"
    if guess is None or guess.startswith(("utf_16", "utf_32")):
        raise IngestError(
            "unknown_encoding",
            "the file's text encoding could not be recognised; save it as UTF-8 and try again",
        )
    return guess


def normalise_encoding(name: str) -> str:
    """A caller's encoding name as Python's codec name; GBK and GB2312 become their superset GB18030.

    Raises ValueError for a name Python does not know.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown text encoding {name!r}") from None
    return "gb18030" if codec in ("gbk", "gb2312", "cp936") else codec


def _strip_bom(head: bytes) -> bytes:
    return head[len(codecs.BOM_UTF8) :] if head.startswith(codecs.BOM_UTF8) else head


def _first_line_is_object(text: str) -> bool:
    line = text.split("\n", 1)[0].strip()
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _json_flavour(text: str, ext: str) -> str:
    """ "json" or "ndjson" for text that starts with '{' (an array starting '[' is always JSON)."""
    if ext in (".ndjson", ".jsonl"):
        return "ndjson"
    lines = [line.strip() for line in text.split("\n")[:3]]
    if _first_line_is_object(text) and (ext != ".json" or (len(lines) > 1 and lines[1].startswith("{"))):
        return "ndjson"
    return "json"


def _looks_like_json(text: str) -> bool:
    """JSON openings a CSV header is unlikely to have: '[{', '[]', '[' alone on its line, '{"'."""
    start = text.lstrip()
    if start.startswith("{"):
        return start[1:].lstrip().startswith(('"', "}"))
    if start.startswith("["):
        rest = start[1:].lstrip(" \t")
        return rest.startswith(("{", "]", "\n", "\r", "[", '"')) or rest == ""
    return False


def sniff_delimiter(text: str, *, preferred: str = ",") -> str:
    """ "," or "\\t": the delimiter that splits the first lines of `text` into equally many fields."""
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the head may end in the middle of a line
    sample = "".join(lines[:50])
    candidates = [preferred] + [d for d in (",", "\t") if d != preferred]
    for delimiter in candidates:
        try:
            widths = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if widths and widths[0] > 1 and all(w == widths[0] for w in widths):
            return delimiter
    header = lines[0] if lines else ""
    return "\t" if header.count("\t") > header.count(",") else preferred


def detect_format(filename: str, head: bytes) -> str:
    """The format of a file from its first bytes (`head`, say 64 KiB) and its name.

    Magic bytes decide first (PAR1 is Parquet, a ZIP holding xl/ is XLSX, '[' is a JSON array,
    '{' starts JSON or NDJSON), then the extension, then delimiter sniffing between CSV and TSV.
    A .csv or .tsv name wins over a first character that only might start JSON. Raises IngestError
    for formats that are recognised but not supported (legacy .xls, compressed files) and for
    files that are none of the above.
    """
    ext = PurePath(filename).suffix.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        if ext in (".xlsx", ".xlsm") or b"xl/" in head:
            return "xlsx"
        raise IngestError("unsupported_format", f"{filename} is a ZIP archive, not an XLSX workbook")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise IngestError(
            "unsupported_format",
            f"{filename} is a legacy Excel 97-2003 (.xls) file; save the sheet as .xlsx or CSV",
        )
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf")):
        raise IngestError(
            "unsupported_format", f"{filename} is compressed; unpack it and upload the file inside"
        )
    if ext in (".xlsx", ".xlsm", ".parquet", ".pq") and head:
        kind = "XLSX workbook" if ext in (".xlsx", ".xlsm") else "Parquet file"
        raise IngestError("unsupported_format", f"{filename} is named like an {kind} but is not one")
    if not head.strip():
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
        raise IngestError("empty_file", f"{filename} is empty")
    body = _strip_bom(head)
    text = body.decode(detect_encoding(body[:65536]), errors="replace")
    start = text.lstrip()
    explicit_text = ext in (".csv", ".tsv", ".tab")
    if start.startswith(("[", "{")) and (not explicit_text or _looks_like_json(text)):
        return "json" if start.startswith("[") else _json_flavour(start, ext)
    if ext in _EXTENSIONS and ext not in _TEXT_EXTENSIONS:
        return _EXTENSIONS[ext]
    if ext not in _TEXT_EXTENSIONS:
        raise IngestError(
            "unsupported_format",
            f"{filename}: unsupported file type {ext!r}; upload CSV, TSV, XLSX, JSON, NDJSON or Parquet",
        )
    preferred = "\t" if ext in (".tsv", ".tab") else ","
    return "tsv" if sniff_delimiter(text, preferred=preferred) == "\t" else "csv"
