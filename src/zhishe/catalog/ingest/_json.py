"""JSON (an array of objects) and NDJSON (one object per line) reading with orjson, as text.

Each object is a row; the columns are the keys of all objects, in order of first appearance, and a
key an object lacks is null there. Values become text the way the value rules read them: strings as
they are, numbers as written, true/false, null as null, and nested objects and arrays as compact
JSON text, marked so that `validate` can refuse them outside point columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from zhishe.catalog.ingest._header import clean_names
from zhishe.catalog.ingest.errors import IngestError

__all__ = ["read_json"]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def _records_from_json(data: bytes | str) -> list[dict[str, Any]]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IngestError(
            "invalid_json",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if not isinstance(document, list):
        raise IngestError(
            "not_array_of_objects",
            f"the JSON document is {_kind(document)}, not an array of objects (one object per row)",
        )
    for index, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            raise IngestError(
                "not_array_of_objects",
                f"element {index} of the JSON array is {_kind(item)}, not an object; "
                "every row must be an object of column names and values",
                row=index,
            )
    return document


def _records_from_ndjson(text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise IngestError(
                "invalid_json",
                f"invalid JSON on line {number}, column {exc.colno}: {exc.msg}",
                line=number,
                column=exc.colno,
            ) from None
        if not isinstance(item, dict):
            raise IngestError(
                "not_object",
                f"line {number} holds {_kind(item)}, not a JSON object; NDJSON needs one object per line",
                line=number,
            )
        records.append(item)
    return records


def read_json(path: Path, *, fmt: str, encoding: str) -> tuple[pa.Table, dict[str, pa.Array]]:
    """Read a JSON or NDJSON file: a table of text columns and, per column holding nested values,
    a boolean mask of the rows where the value was an object or array."""
    data = path.read_bytes()
    text = data.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    records = _records_from_json(text) if fmt == "json" else _records_from_ndjson(text)
    if not records:
        raise IngestError("no_rows", "the file holds no rows: there is no object to import")
    keys: dict[str, None] = {}
    for record in records:
        for key in record:
            keys.setdefault(key)
    raw_keys = list(keys)
    names = clean_names(raw_keys, label=lambda i: f"the key {raw_keys[i]!r}")
    columns: dict[str, pa.Array] = {}
    nested: dict[str, pa.Array] = {}
    for key, name in zip(raw_keys, names, strict=True):
        values = [record.get(key) for record in records]
        columns[name] = pa.array([_text(v) for v in values], pa.string())
        flags = [isinstance(v, dict | list) for v in values]
        if any(flags):
            nested[name] = pa.array(flags, pa.bool_())
    return pa.table(columns), nested
