"""Opening Delta tables by URI and mapping delta-rs exceptions to the lake's errors.

Everything goes through a URI string (a local path today, ``s3://…`` later); nothing here
uses the local file system directly.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as pds
from deltalake import ColumnProperties, DeltaTable, WriterProperties
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
    TableNotFoundError,
)

from zhishe.catalog.lake.errors import (
    LakeConflictError,
    LakeError,
    LakeNotFound,
    LakeSchemaError,
)
from zhishe.catalog.types import ROW_ID

__all__ = [
    "ROW_GROUP_ROWS",
    "Uri",
    "dataset",
    "lake_error",
    "open_table",
    "table_schema",
    "uri_str",
    "writer_properties",
]

Uri = str | os.PathLike[str]

_GUARANTEE_CACHE = 65_536
_GUARANTEES: OrderedDict[tuple[str, str], pds.Expression | None] = OrderedDict()
_GUARANTEE_LOCK = threading.Lock()

#: Rows per Parquet row group. Small enough that a keyset condition on a sorted column skips
#: most of a large file through the row-group min/max statistics, large enough to compress well.
ROW_GROUP_ROWS = 16 * 1024


def uri_str(uri: Uri) -> str:
    """The table URI as a string (paths are accepted for convenience)."""
    return os.fspath(uri)


def writer_properties() -> WriterProperties:
    """Parquet writer settings of every file the lake writes: small row groups, full statistics."""
    return WriterProperties(
        max_row_group_size=ROW_GROUP_ROWS,
        compression="ZSTD",
        default_column_properties=ColumnProperties(statistics_enabled="PAGE"),
    )


def lake_error(exc: DeltaError, *, uri: str, action: str) -> LakeError:
    """The lake error that best describes a delta-rs exception raised while doing `action`."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail: dict[str, Any] = {"uri": uri}
    if isinstance(exc, CommitFailedError) or "already exists" in text or "concurrent" in text.lower():
        return LakeConflictError(
            f"{action} {uri}: a concurrent write committed first ({text})", detail=detail
        )
    if isinstance(exc, TableNotFoundError):
        return LakeNotFound(f"there is no dataset table at {uri}", detail=detail)
    if isinstance(exc, SchemaMismatchError):
        return LakeSchemaError(f"{action} {uri}: the schema does not match ({text})", detail=detail)
    if isinstance(exc, DeltaProtocolError):
        return LakeError(f"{action} {uri}: unsupported table protocol ({text})", detail=detail)
    return LakeError(f"{action} {uri} failed: {text}", detail=detail)


def open_table(uri: Uri, version: int | None = None) -> DeltaTable:
    """The table at `uri`, at `version` (latest when None); LakeNotFound when either is missing."""
    location = uri_str(uri)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise LakeNotFound(f"version {version!r} is not a version number", detail={"version": version})
    if version is not None and version < 0:
        latest = open_table(location).version()
        raise LakeNotFound(
            f"version {version} does not exist; the latest version is {latest}",
            detail={"uri": location, "version": version, "latest": latest},
        )
    try:
        return DeltaTable(location, version=version)
    except TableNotFoundError as exc:
        raise LakeNotFound(f"there is no dataset table at {location}", detail={"uri": location}) from exc
    except DeltaError as exc:
        if version is None:
            raise lake_error(exc, uri=location, action="open") from exc
        latest = open_table(location).version()
        message = (
            f"version {version} does not exist; the latest version is {latest}"
            if version > latest
            else f"version {version} is no longer available (its log was cleaned up); the latest is {latest}"
        )
        raise LakeNotFound(message, detail={"uri": location, "version": version, "latest": latest}) from exc


def table_schema(table: DeltaTable) -> pa.Schema:
    """The Arrow schema of the table's loaded version (with the row id)."""
    return pa.schema(table.schema().to_arrow())


def dataset(table: DeltaTable) -> pds.FileSystemDataset:
    """The loaded version as an Arrow dataset whose files carry exact min/max guarantees.

    delta-rs attaches each file's log statistics to its fragment, but turns a missing bound
    (a float column holding -inf, +inf or NaN, which JSON statistics cannot hold) into a
    comparison with null, and pyarrow then drops files that do hold matching rows; building
    those expressions also costs about 2 ms per file. So the guarantees are built here from the
    same statistics, for the column types whose bounds are exact (never floats), skipping any
    bound that is missing. Parquet row-group statistics still prune inside each file.
    """
    # Ask delta-rs for no file at all (row ids are never negative): it still hands over the
    # table's file system and Parquet format, which work for any URI it supports.
    base = table.to_pyarrow_dataset(file_pruning_predicate=[(ROW_ID, "<", 0)])
    schema = base.schema
    location = str(table.table_uri)
    actions = pa.table(table.get_add_actions(flatten=True))
    fragments = []
    for i, raw_path in enumerate(actions.column("path").to_pylist()):
        key = (location, raw_path)
        with _GUARANTEE_LOCK:
            known = key in _GUARANTEES
            guarantee = _GUARANTEES.get(key)
        if not known:  # files never change, so neither does what they guarantee
            guarantee = _guarantee(actions.slice(i, 1).to_pylist()[0], schema)
            with _GUARANTEE_LOCK:
                _GUARANTEES[key] = guarantee
                while len(_GUARANTEES) > _GUARANTEE_CACHE:
                    _GUARANTEES.popitem(last=False)
        fragments.append(
            base.format.make_fragment(
                unquote(raw_path), filesystem=base.filesystem, partition_expression=guarantee
            )
        )
    return pds.FileSystemDataset(fragments, schema, base.format, base.filesystem)


def _prunable(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_int64(data_type)
        or pa.types.is_string(data_type)
        or pa.types.is_date32(data_type)
        or pa.types.is_timestamp(data_type)
        or pa.types.is_boolean(data_type)
    )


def _guarantee(stats: dict[str, Any], schema: pa.Schema) -> pds.Expression | None:
    """What every row of one file satisfies, from its log statistics (None when nothing is known)."""
    terms: list[pds.Expression] = []
    for field in schema:
        if "." in field.name or not _prunable(field.type):
            continue
        low, high = stats.get(f"min.{field.name}"), stats.get(f"max.{field.name}")
        if low is None or high is None:
            continue
        if pa.types.is_timestamp(field.type):
            high = high + timedelta(milliseconds=1)  # log statistics keep milliseconds only
        column = pds.field(field.name)
        bounded = (column >= pa.scalar(low, type=field.type)) & (column <= pa.scalar(high, type=field.type))
        if stats.get(f"null_count.{field.name}") != 0:
            bounded = bounded | column.is_null()
        terms.append(bounded)
    if not terms:
        return None
    result = terms[0]
    for term in terms[1:]:
        result = result & term
    return result
