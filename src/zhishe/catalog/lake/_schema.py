"""Declared columns against stored Arrow schemas: validation, comparison and conforming data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.lake.errors import LakeSchemaError
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType, arrow_schema, arrow_type

__all__ = [
    "check_declared",
    "column_type_of",
    "conform",
    "effective_columns",
    "key_names",
    "schema_changes",
    "stored_types",
]


def key_names(columns: Sequence[ColumnSpec]) -> list[str]:
    """The names of the key columns, in declaration order."""
    return [c.name for c in columns if c.is_key]


def check_declared(columns: Sequence[ColumnSpec]) -> None:
    """Refuse a column list that cannot describe a table (empty, duplicated or reserved names)."""
    if not columns:
        raise LakeSchemaError("a dataset needs at least one column", detail={})
    seen: set[str] = set()
    for spec in columns:
        if not spec.name or spec.name != spec.name.strip():
            raise LakeSchemaError(
                f"column name {spec.name!r} is empty or padded", detail={"column": spec.name}
            )
        if spec.name == ROW_ID:
            raise LakeSchemaError(f"column name {ROW_ID!r} is reserved", detail={"column": spec.name})
        if spec.name in seen:
            raise LakeSchemaError(f"column {spec.name!r} is declared twice", detail={"column": spec.name})
        seen.add(spec.name)
        ColumnType(spec.type)


def column_type_of(data_type: pa.DataType) -> ColumnType | None:
    """The declared column type stored as `data_type`, or None for a type the lake never writes."""
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    ):
        return ColumnType.STRING
    if pa.types.is_int64(data_type):
        return ColumnType.INTEGER
    if pa.types.is_float64(data_type):
        return ColumnType.DECIMAL
    if pa.types.is_boolean(data_type):
        return ColumnType.BOOLEAN
    if pa.types.is_date32(data_type):
        return ColumnType.DATE
    if pa.types.is_timestamp(data_type) and data_type.tz is not None:
        return ColumnType.DATETIME
    if pa.types.is_struct(data_type) and [f.name for f in data_type] == ["lat", "lon"]:
        return ColumnType.POINT
    return None


def stored_types(schema: pa.Schema) -> dict[str, ColumnType | None]:
    """Column name → declared type of a stored table schema, without the row id."""
    return {f.name: column_type_of(f.type) for f in schema if f.name != ROW_ID}


def schema_changes(
    before: dict[str, ColumnType | None], after: dict[str, ColumnType | None]
) -> dict[str, Any]:
    """Columns added, removed and retyped going from `before` to `after` (JSON-able)."""
    return {
        "added": [name for name in after if name not in before],
        "removed": [name for name in before if name not in after],
        "retyped": [
            {"column": name, "from": _type_name(before[name]), "to": _type_name(after[name])}
            for name in after
            if name in before and before[name] != after[name]
        ],
    }


def _type_name(column_type: ColumnType | None) -> str:
    return column_type.value if column_type is not None else "unknown"


def effective_columns(declared: Sequence[ColumnSpec], schema: pa.Schema) -> list[ColumnSpec]:
    """The columns of one stored version, in stored order.

    A declared column keeps its spec when the version stores it with the declared type. A column
    the version stores but the declaration lacks (or types differently) is described by its
    stored type, so old versions read back exactly as they were written.
    """
    by_name = {c.name: c for c in declared}
    result: list[ColumnSpec] = []
    for name, column_type in stored_types(schema).items():
        if column_type is None:
            raise LakeSchemaError(
                f"column {name!r} has the type {schema.field(name).type}, which the lake does not support",
                detail={"column": name},
            )
        spec = by_name.get(name)
        if spec is not None and ColumnType(spec.type) == column_type:
            result.append(spec)
        else:
            result.append(ColumnSpec(name=name, type=column_type, is_key=spec.is_key if spec else False))
    return result


def check_compatible(declared: Sequence[ColumnSpec], schema: pa.Schema, *, mode: str) -> None:
    """Refuse to `mode` rows of the declared columns into a table stored with `schema`."""
    changes = schema_changes(stored_types(schema), {c.name: ColumnType(c.type) for c in declared})
    problems: list[str] = []
    problems += [f"column {name!r} is declared but not in the table" for name in changes["added"]]
    problems += [f"column {name!r} is in the table but not declared" for name in changes["removed"]]
    problems += [
        f"column {r['column']!r} is stored as {r['from']} but declared as {r['to']}"
        for r in changes["retyped"]
    ]
    if problems:
        first = (changes["added"] + changes["removed"] + [r["column"] for r in changes["retyped"]])[0]
        raise LakeSchemaError(
            f"cannot {mode}: {'; '.join(problems)} (use mode 'replace' to change the schema)",
            detail={"column": first, **changes},
        )


def conform(data: pa.Table, columns: Sequence[ColumnSpec]) -> pa.Table:
    """`data` as exactly `arrow_schema(columns)`: columns picked by name, safely cast where needed."""
    if not isinstance(data, pa.Table):
        raise LakeSchemaError(f"data must be a pyarrow.Table, not {type(data).__name__}", detail={})
    wanted = arrow_schema(list(columns))
    names = set(data.column_names)
    if len(names) != len(data.column_names):
        duplicated = sorted({n for n in data.column_names if data.column_names.count(n) > 1})
        raise LakeSchemaError(
            f"data has the column {duplicated[0]!r} twice", detail={"column": duplicated[0]}
        )
    for name in data.column_names:
        if name not in wanted.names:
            raise LakeSchemaError(f"data has the undeclared column {name!r}", detail={"column": name})
    arrays: list[pa.ChunkedArray] = []
    for spec in columns:
        if spec.name not in names:
            raise LakeSchemaError(
                f"data lacks the declared column {spec.name!r}", detail={"column": spec.name}
            )
        array = data.column(spec.name)
        target = arrow_type(spec.type)
        if array.type != target:
            array = _cast(array, target, spec.name)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=wanted)


def _cast(array: pa.ChunkedArray, target: pa.DataType, name: str) -> pa.ChunkedArray:
    if pa.types.is_timestamp(target) and pa.types.is_timestamp(array.type) and array.type.tz is None:
        raise LakeSchemaError(
            f"column {name!r} holds naive timestamps; the lake stores aware UTC datetimes",
            detail={"column": name},
        )
    try:
        return pc.cast(array, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise LakeSchemaError(
            f"column {name!r} of type {array.type} cannot be stored as {target}: {exc}",
            detail={"column": name},
        ) from exc
