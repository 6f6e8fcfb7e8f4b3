"""Parquet reading with pyarrow.parquet: the typed table, and a text view of it for messages."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest._header import clean_names
from zhishe.catalog.ingest.errors import IngestError

__all__ = ["read_parquet", "text_view"]


def read_parquet(path: Path) -> pa.Table:
    """The typed table of a Parquet file, its column names cleaned and checked."""
    import pyarrow.parquet as pq  # here: CSV imports, the common case, do not need it

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError("invalid_parquet", f"the Parquet file cannot be read: {exc}") from None
    return table.rename_columns(clean_names(table.column_names))


def _column_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        texts = [None if v is None else orjson.dumps(v, default=str).decode() for v in column.to_pylist()]
        return pa.chunked_array([pa.array(texts, pa.string())])


def text_view(table: pa.Table) -> pa.Table:
    """Every column rendered as text (pa.string()), for inference, messages and reject files."""
    return pa.table({name: _column_text(table.column(name)) for name in table.column_names})
