"""Keyset tokens of the open-data query API: the position after the last row of a page.

A token is ``base64url(JSON)`` without padding, of ``{"v": 1, "q": <query fingerprint>, "k": [...]}``
where ``k`` holds the order-key values of the last row, each as ``[tag, value]`` so that types
survive JSON (``n`` null, ``b`` boolean, ``i`` integer, ``f`` float, ``m`` decimal as text, ``s``
text, ``d`` date, ``t`` naive timestamp, ``z`` timestamp with offset, all ISO 8601), the hidden
``_row`` last. The fingerprint ties a token to the query that made it: a token replayed against
another filter or order is refused instead of silently skipping rows. Tokens are not secret and not
signed; a forged one can only move a reader's position within data it may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["MAX_TOKEN_CHARS", "TOKEN_VERSION", "TokenError", "decode", "encode", "fingerprint"]

#: The version written into every token; others are refused.
TOKEN_VERSION = 1
#: The longest token accepted, in characters.
MAX_TOKEN_CHARS = 4_096


class TokenError(ValueError):
    """A token that cannot be read; the message says why (the caller names the parameter)."""


def fingerprint(*parts: object) -> str:
    """A short stable hash of the query a token belongs to."""
    text = json.dumps([str(p) for p in parts], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def encode(query: str, values: Sequence[Any]) -> str:
    """The token for the position after a row whose order-key values are `values`."""
    body = {"v": TOKEN_VERSION, "q": query, "k": [_tag(v) for v in values]}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(token: str, query: str, count: int) -> list[Any]:
    """The `count` order-key values in `token`; TokenError unless it is a valid token of `query`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"the token must be 1 to {MAX_TOKEN_CHARS:,} characters")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("the token is garbled: use the next token exactly as it was returned") from None
    if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
        raise TokenError("the token is from another version of the API: start again from the first page")
    if body.get("q") != query:
        raise TokenError("the token belongs to a different query: keep the same filter, order and select")
    keys = body.get("k")
    if not isinstance(keys, list) or len(keys) != count:
        raise TokenError("the token is garbled: it holds the wrong number of values")
    return [_untag(k) for k in keys]


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, Decimal):
        return ["m", str(value)]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, datetime):
        return ["z" if value.tzinfo is not None else "t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    raise TypeError(f"cannot page by a value of type {type(value).__name__}")


def _untag(item: Any) -> Any:
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
        raise TokenError("the token is garbled: a value is malformed")
    tag, value = item
    try:
        if tag == "n" and value is None:
            return None
        if tag == "b" and isinstance(value, bool):
            return value
        if tag == "i" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tag == "f" and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if tag == "m" and isinstance(value, str):
            return Decimal(value)
        if tag == "s" and isinstance(value, str):
            return value
        if tag == "d" and isinstance(value, str):
            return date.fromisoformat(value)
        if tag in ("t", "z") and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if (parsed.tzinfo is not None) == (tag == "z"):
                return parsed
    except (ValueError, InvalidOperation):
        pass
    raise TokenError("the token is garbled: a value is malformed")
