"""The versioned dataset store (Delta Lake via delta-rs) and the platform's one read function.

Every dataset is a Delta table at a URI; each commit is an addressable, immutable version and
each row carries the hidden `ROW_ID`. Reads, counts, aggregates, exports, diffs and profiles
run in DuckDB over a version's Arrow dataset, with SQL built as sqlglot expressions and every
value bound as a parameter. Nothing here touches the metadata database or HTTP.
"""

from zhishe.catalog.lake.diffing import VersionDiff, diff
from zhishe.catalog.lake.errors import (
    LakeConflictError,
    LakeDataError,
    LakeError,
    LakeNotFound,
    LakeQueryError,
    LakeSchemaError,
)
from zhishe.catalog.lake.exporting import ExportFormat, export
from zhishe.catalog.lake.filters import And, Condition, Filter, Not, Op, Or, filter_to_json, parse_filter
from zhishe.catalog.lake.profiling import profile, profile_table
from zhishe.catalog.lake.query import Direction, Measure, Page, TimeUnit, aggregate, count, read
from zhishe.catalog.lake.render import json_value, rows_to_dicts
from zhishe.catalog.lake.store import (
    VersionInfo,
    WriteMode,
    WriteResult,
    compact,
    next_row_id,
    table_exists,
    versions,
    write_version,
)

__all__ = [
    "And",
    "Condition",
    "Direction",
    "ExportFormat",
    "Filter",
    "LakeConflictError",
    "LakeDataError",
    "LakeError",
    "LakeNotFound",
    "LakeQueryError",
    "LakeSchemaError",
    "Measure",
    "Not",
    "Op",
    "Or",
    "Page",
    "TimeUnit",
    "VersionDiff",
    "VersionInfo",
    "WriteMode",
    "WriteResult",
    "aggregate",
    "compact",
    "count",
    "diff",
    "export",
    "filter_to_json",
    "json_value",
    "next_row_id",
    "parse_filter",
    "profile",
    "profile_table",
    "read",
    "rows_to_dicts",
    "table_exists",
    "versions",
    "write_version",
]
