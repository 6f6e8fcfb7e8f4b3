"""The platform's error hierarchy. Each error knows its HTTP status and its envelope ``type``.

Library exceptions are mapped to these at the boundary; the web layer turns any of them into
``{"error": {"type", "message", "detail"}, "request_id"}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthenticated",
    "ZhisheError",
]


class ZhisheError(Exception):
    """Base of every error the platform reports to a user."""

    status_code = 400
    type = "error"

    def __init__(
        self, message: str, *, detail: dict[str, Any] | None = None, keep_writes: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail or {}
        #: True when what was written before the error is a record of the refusal (a failed login,
        #: its audit event) and must be committed even though the request fails.
        self.keep_writes = keep_writes


class Invalid(ZhisheError):
    """The input is wrong; the message names the field, row or parameter."""

    status_code = 422
    type = "invalid"


class Unauthenticated(ZhisheError):
    """No valid login or token was presented."""

    status_code = 401
    type = "unauthenticated"


class Forbidden(ZhisheError):
    """The actor is known but not allowed to do this."""

    status_code = 403
    type = "forbidden"


class NotFound(ZhisheError):
    """The object does not exist, or the actor may not know that it does."""

    status_code = 404
    type = "not_found"


class Conflict(ZhisheError):
    """The change clashes with the current state (a duplicate, a concurrent write)."""

    status_code = 409
    type = "conflict"


class TooLarge(ZhisheError):
    """The request body is over the configured limit."""

    status_code = 413
    type = "too_large"


class RateLimited(ZhisheError):
    """Too many attempts; try again later."""

    status_code = 429
    type = "rate_limited"
