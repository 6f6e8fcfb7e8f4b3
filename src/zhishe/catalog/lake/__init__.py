"""The versioned dataset store (Delta Lake via delta-rs) and the platform's one read function.

Every dataset is a Delta table at a URI; each commit is an addressable, immutable version and
each row carries the hidden `ROW_ID`. Reads, counts, aggregates, exports, diffs and profiles
run in DuckDB over a version's Arrow dataset, with SQL built as sqlglot expressions and every
value bound as a parameter. Nothing here touches the metadata database or HTTP.

The public names below are loaded from their modules on first use (PEP 562), so that a caller
that only writes a version does not import the query, diff and export code (nor DuckDB and
sqlglot until it profiles). ``from zhishe.catalog.lake import read`` and ``lake.read`` work as
for any package; the errors are always loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zhishe.catalog.lake.errors import (
    LakeConflictError,
    LakeDataError,
    LakeError,
    LakeNotFound,
    LakeQueryError,
    LakeSchemaError,
)

if TYPE_CHECKING:
    from zhishe.catalog.lake.diffing import VersionDiff, diff
    from zhishe.catalog.lake.exporting import ExportFormat, export
    from zhishe.catalog.lake.filters import (
        And,
        Condition,
        Filter,
        Not,
        Op,
        Or,
        filter_to_json,
        parse_filter,
    )
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

#: Public name → the module (in this package) that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["VersionDiff", "diff"], "diffing"),
    **dict.fromkeys(["ExportFormat", "export"], "exporting"),
    **dict.fromkeys(
        ["And", "Condition", "Filter", "Not", "Op", "Or", "filter_to_json", "parse_filter"], "filters"
    ),
    **dict.fromkeys(["profile", "profile_table"], "profiling"),
    **dict.fromkeys(["Direction", "Measure", "Page", "TimeUnit", "aggregate", "count", "read"], "query"),
    **dict.fromkeys(["json_value", "rows_to_dicts"], "render"),
    **dict.fromkeys(
        [
            "VersionInfo",
            "WriteMode",
            "WriteResult",
            "compact",
            "next_row_id",
            "table_exists",
            "versions",
            "write_version",
        ],
        "store",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
