"""Errors of the dataset store, each also one of the platform's errors (`zhishe.core.errors`).

delta-rs, DuckDB and Arrow exceptions are mapped to these at the lake's boundary, so callers
see one of the classes below and the web layer renders it with the right HTTP status.
"""

from __future__ import annotations

from typing import Any

from zhishe.core.errors import Conflict, Invalid, NotFound, ZhisheError

__all__ = [
    "LakeConflictError",
    "LakeDataError",
    "LakeError",
    "LakeNotFound",
    "LakeQueryError",
    "LakeSchemaError",
]


class LakeError(ZhisheError):
    """A dataset-store operation failed; `message` says what and `detail` where."""

    status_code = 500
    type = "lake_error"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message, detail=detail)


class LakeQueryError(Invalid, LakeError):
    """A read request is invalid: unknown column, bad value, bad paging token, bad limit."""

    status_code = 422
    type = "invalid"


class LakeSchemaError(Invalid, LakeError):
    """The data or the declared columns do not fit the table's schema (names the column)."""

    status_code = 422
    type = "invalid"


class LakeDataError(Invalid, LakeError):
    """The rows to write are unusable as given (a null or duplicated key in an upsert)."""

    status_code = 422
    type = "invalid"


class LakeConflictError(Conflict, LakeError):
    """A concurrent writer committed first; the write was not applied and may be retried."""

    status_code = 409
    type = "conflict"


class LakeNotFound(NotFound, LakeError):
    """There is no table at the URI, or the requested version does not exist."""

    status_code = 404
    type = "not_found"
