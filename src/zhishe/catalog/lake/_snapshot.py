"""One version of a table opened for reading, and the request checks that readers share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable

from zhishe.catalog.lake._schema import effective_columns
from zhishe.catalog.lake._sql import Known
from zhishe.catalog.lake._table import Uri, open_table, table_schema
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.lake.filters import Filter, parse_filter
from zhishe.catalog.types import ROW_ID, ColumnSpec

__all__ = ["Snapshot", "as_filter", "open_snapshot", "select_names"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A table loaded at one version, with the columns that version stores."""

    table: DeltaTable
    known: Known
    version: int


def open_snapshot(uri: Uri, columns: Sequence[ColumnSpec], version: int | None) -> Snapshot:
    """The table at `uri` and `version` (latest when None), described by the declared `columns`."""
    table = open_table(uri, version)
    specs = effective_columns(columns, table_schema(table))
    return Snapshot(table=table, known=Known(specs), version=int(table.version()))


def as_filter(where: Filter | Any | None) -> Filter | None:
    """A filter given as a `Filter` or as its plain JSON form, validated either way."""
    if where is None:
        return None
    return parse_filter(where)


def select_names(select: Sequence[str] | None, known: Known) -> list[str]:
    """The validated output columns: all stored ones by default; `ROW_ID` only when named."""
    if select is None:
        return known.names
    if not isinstance(select, list | tuple) or not select:
        raise LakeQueryError("select must be a non-empty list of column names", detail={})
    names: list[str] = []
    for name in select:
        if name != ROW_ID:
            known.get(name)
        if name in names:
            raise LakeQueryError(f"column {name!r} is selected twice", detail={"column": str(name)})
        names.append(name)
    return names
