"""The errors of the SensorThings query layer: both are ``Invalid``, so callers that catch
``Invalid`` catch them; they only carry the HTTP status the standard asks for.

OGC 18-088 answers a malformed request with 400 Bad Request and an unsupported system query
option with 501 Not Implemented (req. ``request-data/query-status-code``). Every message starts
with the option or path it is about (``$filter: unexpected ')' at position 17``) and
``detail["option"]`` names it again.
"""

from __future__ import annotations

from typing import Any

from zhishe.core.errors import Invalid

__all__ = ["QueryError", "UnsupportedOption", "bad", "shown"]


class QueryError(Invalid):
    """A query option or resource path is malformed or names something that does not exist."""

    status_code = 400
    type = "bad_request"


class UnsupportedOption(QueryError):
    """The request uses a system query option or function this server does not implement."""

    status_code = 501
    type = "not_implemented"


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def bad(option: str, message: str, **detail: Any) -> QueryError:
    """A ``QueryError`` whose message starts with ``option`` and whose detail names it."""
    return QueryError(f"{option}: {message}", detail={"option": option, **detail})
