"""Keyset paging for lists: an opaque ``next`` token, never an offset."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from zhishe.core.errors import Invalid

__all__ = ["Page", "decode_after", "encode_after"]

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a list and the token of the next one (None on the last page)."""

    items: list[T] = field(default_factory=list)
    next: str | None = None


def encode_after(value: int | str) -> str:
    """The token that resumes a list after ``value``."""
    return base64.urlsafe_b64encode(f"k:{value}".encode()).decode().rstrip("=")


def decode_after(token: str | None) -> str | None:
    """The value a token resumes after; a garbled token is an ``Invalid`` naming the parameter."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not raw.startswith("k:") or not raw[2:].isdigit():
        raise Invalid("invalid paging token in 'after'", detail={"parameter": "after"})
    return raw[2:]
