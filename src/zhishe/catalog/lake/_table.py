"""Opening Delta tables by URI and mapping delta-rs exceptions to the lake's errors.

Everything goes through a URI string (a local path today, ``s3://…`` later); nothing here
uses the local file system directly.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
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

__all__ = [
    "ROW_GROUP_ROWS",
    "Uri",
    "lake_error",
    "open_table",
    "table_schema",
    "uri_str",
    "writer_properties",
]

Uri = str | os.PathLike[str]

#: Rows per Parquet row group. Small enough that a keyset condition on a sorted column skips
#: most of a large file through the row-group min/max statistics, large enough to compress well.
ROW_GROUP_ROWS = 64 * 1024


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
