"""Keyset paging for lists: an opaque ``next`` token, never an offset."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from zhishe.core.errors import Invalid

__all__ = ["Page", "decode_after", "encode_after", "is_number", "keyset_page"]

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a list and the token of the next one (None on the last page)."""

    items: list[T] = field(default_factory=list)
    next: str | None = None


def is_number(text: str) -> bool:
    """Whether ``text`` is a plain non-negative decimal integer (ASCII digits only: not "¹" or "٣")."""
    return text.isascii() and text.isdigit()


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
    if not raw.startswith("k:") or not is_number(raw[2:]):
        raise Invalid("invalid paging token in 'after'", detail={"parameter": "after"})
    return raw[2:]


def keyset_page(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    *,
    after: str | None,
    limit: int,
    newest_first: bool = False,
) -> Page[Any]:
    """One page of ``query`` ordered by ``id_column``, resuming after the ``after`` token."""
    cursor = decode_after(after)
    if cursor is not None:
        query = query.where(id_column < int(cursor) if newest_first else id_column > int(cursor))
    order = id_column.desc() if newest_first else id_column
    rows = list(session.scalars(query.order_by(order).limit(limit + 1)))
    next_token = encode_after(getattr(rows[limit - 1], id_column.key)) if len(rows) > limit else None
    return Page(items=rows[:limit], next=next_token)
