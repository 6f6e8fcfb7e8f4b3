"""Exporting a version's rows to CSV, JSON, NDJSON or Parquet, streamed in record batches.

DuckDB renders the values (ISO 8601 datetimes with offset, points as ``lat,lon`` in CSV and as
``{"lat", "lon"}`` in JSON), so no row is ever turned into Python objects. Rows come in row-id
order, so the same version always exports to the same file. The file is written beside `dest`
and moved into place only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlglot import exp

from zhishe.catalog.lake._snapshot import as_filter, open_snapshot, select_names
from zhishe.catalog.lake._sql import Known, Params, col, compile_filter, duck, reader
from zhishe.catalog.lake._table import Uri, dataset
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.lake.filters import Filter
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType, arrow_type

__all__ = ["ExportFormat", "export"]

ExportFormat = Literal["csv", "json", "ndjson", "parquet"]
_BATCH_ROWS = 64 * 1024
_TABLE = "t"


def export(
    uri: Uri,
    *,
    columns: list[ColumnSpec],
    version: int | None = None,
    select: list[str] | None = None,
    where: Filter | None = None,
    fmt: ExportFormat,
    dest: str | os.PathLike[str],
) -> int:
    """Write the matching rows of a version to the local file `dest` in `fmt`; returns the row count.

    CSV is UTF-8 with a header row; JSON is one array of objects; NDJSON one object per line;
    Parquet keeps the stored Arrow types.
    """
    if fmt not in ("csv", "json", "ndjson", "parquet"):
        raise LakeQueryError(
            f"export format {fmt!r} is not csv, json, ndjson or parquet", detail={"fmt": str(fmt)}
        )
    snap = open_snapshot(uri, columns, version)
    known = snap.known
    names = select_names(select, known)
    condition = as_filter(where)
    params = Params()
    specs = [_spec(name, known) for name in names]
    if fmt == "json" or fmt == "ndjson":
        items: list[exp.Expr] = []
        for spec in specs:
            items += [params.bind(spec.name, "VARCHAR"), _json_value(spec)]
        outputs: list[exp.Expr] = [exp.alias_(exp.Anonymous(this="json_object", expressions=items), "j")]
    elif fmt == "csv":
        outputs = [exp.alias_(_csv_value(spec), spec.name, quoted=True) for spec in specs]
    else:
        outputs = [exp.alias_(col(spec.name), spec.name, quoted=True) for spec in specs]
    query = exp.select(*outputs).from_(_TABLE)
    if condition is not None:
        query = query.where(compile_filter(condition, known, params))
    query = query.order_by(exp.Ordered(this=col(ROW_ID), desc=False))
    target = Path(dest)
    partial = target.with_name(target.name + ".part")
    written = 0
    try:
        with duck({_TABLE: dataset(snap.table)}) as con:
            batches = reader(con, query, params, batch_rows=_BATCH_ROWS)
            if fmt == "parquet":
                written = _write_parquet(batches, partial, specs)
            elif fmt == "csv":
                written = _write_csv(batches, partial)
            else:
                written = _write_json(batches, partial, lines=fmt == "ndjson")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _spec(name: str, known: Known) -> ColumnSpec:
    if name == ROW_ID:
        return ColumnSpec(name=ROW_ID, type=ColumnType.INTEGER)
    return known.get(name)


def _iso_datetime(column: exp.Expr) -> exp.Expr:
    """ISO 8601 with offset, as Python's `isoformat()` writes UTC: fraction only when non-zero."""
    whole = exp.Anonymous(
        this="strftime", expressions=[column, exp.Literal.string("%Y-%m-%dT%H:%M:%S+00:00")]
    )
    fraction = exp.Anonymous(
        this="strftime", expressions=[column.copy(), exp.Literal.string("%Y-%m-%dT%H:%M:%S.%f+00:00")]
    )
    sub_second = exp.Mod(
        this=exp.Anonymous(this="microsecond", expressions=[column.copy()]),
        expression=exp.Literal.number(1_000_000),
    )
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=sub_second, expression=exp.Literal.number(0)), true=whole)],
        default=fraction,
    )


def _csv_value(spec: ColumnSpec) -> exp.Expr:
    column = col(spec.name)
    kind = ColumnType(spec.type)
    if kind == ColumnType.DATETIME:
        return _iso_datetime(column)
    if kind == ColumnType.POINT:
        lat = exp.Cast(
            this=exp.Dot(this=column, expression=exp.to_identifier("lat")), to=exp.DataType.build("VARCHAR")
        )
        lon = exp.Cast(
            this=exp.Dot(this=column.copy(), expression=exp.to_identifier("lon")),
            to=exp.DataType.build("VARCHAR"),
        )
        return exp.DPipe(this=exp.DPipe(this=lat, expression=exp.Literal.string(",")), expression=lon)
    return column


def _json_value(spec: ColumnSpec) -> exp.Expr:
    column = col(spec.name)
    kind = ColumnType(spec.type)
    if kind == ColumnType.DATETIME:
        return _iso_datetime(column)
    if kind == ColumnType.DECIMAL:  # JSON cannot write NaN or infinities
        finite = exp.Anonymous(this="isfinite", expressions=[column])
        return exp.Case(ifs=[exp.If(this=finite, true=column.copy())], default=exp.Null())
    return column


def _write_parquet(batches: Any, path: Path, specs: list[ColumnSpec]) -> int:
    schema = pa.schema([pa.field(s.name, arrow_type(s.type)) for s in specs])
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(_cast_batch(batch, schema))
            rows += batch.num_rows
    return rows


def _cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [batch.column(i).cast(schema.field(i).type) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _write_csv(batches: Any, path: Path) -> int:
    rows = 0
    with pacsv.CSVWriter(str(path), batches.schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _write_json(batches: Any, path: Path, *, lines: bool) -> int:
    rows = 0
    with open(path, "wb") as out:
        if not lines:
            out.write(b"[")
        for batch in batches:
            if batch.num_rows == 0:
                continue
            texts = batch.column(0)
            # Arrow joins the separators in, so no row becomes a Python object.
            if lines:
                joined = pc.binary_join_element_wise(texts, pa.scalar(""), "\n")
            else:
                joined = pc.binary_join_element_wise(pa.scalar(",\n"), texts, "")
            data = _string_bytes(joined)
            out.write(data[2:] if not lines and rows == 0 else data)
            rows += batch.num_rows
        if not lines:
            out.write(b"]\n")
    return rows


def _string_bytes(array: pa.Array) -> bytes:
    """The concatenated UTF-8 bytes of a string array's values."""
    width = pa.int64() if pa.types.is_large_string(array.type) else pa.int32()
    offsets = pa.Array.from_buffers(width, len(array) + 1, [None, array.buffers()[1]], offset=array.offset)
    start, end = offsets[0].as_py(), offsets[len(array)].as_py()
    data: bytes = array.buffers()[2].to_pybytes()[start:end]
    return data
