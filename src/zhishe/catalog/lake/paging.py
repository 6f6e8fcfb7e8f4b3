"""Keyset paging: the sort keys of a read, its opaque ``next`` token, and the "after" condition.

Every ordering is made total by ending it with `ROW_ID`. NULLs sort as the largest value:
last in ascending order, first in descending order. The token is the urlsafe base64 of JSON
holding the last row's sort values and row id, plus a checksum over those values and the
query's shape (its order and filter), so a token fails on another query or when edited.
The checksum is not a secret signature: a forged token can only move the starting point of a
read that is still filtered, never widen what the read may return.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from zhishe.catalog.lake._sql import SQL_TYPES, Known, Params, col
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.lake.filters import coerce_value
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType

__all__ = ["SortKey", "after_condition", "decode_token", "encode_token", "order_by", "shape_of", "sort_keys"]

_BAD_TOKEN = "invalid paging token"  # noqa: S105 - a message, not a secret


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of a total ordering."""

    spec: ColumnSpec
    desc: bool


def sort_keys(order: Sequence[tuple[str, str]] | None, known: Known) -> list[SortKey]:
    """The validated sort keys of `order`, ending with the row id (ascending unless given)."""
    keys: list[SortKey] = []
    seen: set[str] = set()
    for item in order or []:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise LakeQueryError(f"order items are (column, 'asc'|'desc') pairs, not {item!r}", detail={})
        name, direction = item
        if direction not in ("asc", "desc"):
            raise LakeQueryError(
                f"order direction {direction!r} for {name!r} is not 'asc' or 'desc'",
                detail={"column": str(name)},
            )
        if name == ROW_ID:
            keys.append(SortKey(ColumnSpec(name=ROW_ID, type=ColumnType.INTEGER), direction == "desc"))
            return keys  # unique: anything after it could not change the order
        spec = known.get(name)
        if ColumnType(spec.type) == ColumnType.POINT:
            raise LakeQueryError(f"cannot order by the point column {name!r}", detail={"column": name})
        if name in seen:
            raise LakeQueryError(f"column {name!r} appears twice in the order", detail={"column": name})
        seen.add(name)
        keys.append(SortKey(spec, direction == "desc"))
    keys.append(SortKey(ColumnSpec(name=ROW_ID, type=ColumnType.INTEGER), False))
    return keys


def order_by(keys: Sequence[SortKey], *, table: str | None = None) -> list[exp.Ordered]:
    """ORDER BY terms: NULLS LAST ascending, NULLS FIRST descending."""
    return [exp.Ordered(this=col(k.spec.name, table), desc=k.desc, nulls_first=k.desc) for k in keys]


def shape_of(keys: Sequence[SortKey], where: Any) -> str:
    """A digest of what decides the row sequence: the sort keys and the filter's JSON form."""
    shape = {"order": [[k.spec.name, "desc" if k.desc else "asc"] for k in keys], "where": where}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def _checksum(shape: str, values: list[Any]) -> str:
    body = json.dumps(values, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(f"{shape}|{body}".encode()).hexdigest()[:16]


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def encode_token(keys: Sequence[SortKey], row: Sequence[Any], shape: str) -> str:
    """The token that continues a read after the row whose sort values are `row`."""
    values = [_to_json(v) for v in row]
    if len(values) != len(keys):
        raise ValueError("one value per sort key")
    payload = {"v": values, "c": _checksum(shape, values)}
    raw = json.dumps(payload, separators=(",", ":"), allow_nan=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str, keys: Sequence[SortKey], shape: str) -> list[Any]:
    """The sort values a token carries, typed; LakeQueryError "invalid paging token" otherwise."""
    if not isinstance(token, str) or not token or len(token) > 100_000:
        raise LakeQueryError(_BAD_TOKEN, detail={"after": "malformed"})
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise LakeQueryError(_BAD_TOKEN, detail={"after": "malformed"}) from exc
    if not isinstance(payload, dict) or set(payload) != {"v", "c"}:
        raise LakeQueryError(_BAD_TOKEN, detail={"after": "malformed"})
    values = payload["v"]
    if not isinstance(values, list) or len(values) != len(keys) or payload["c"] != _checksum(shape, values):
        raise LakeQueryError(_BAD_TOKEN, detail={"after": "does not belong to this query"})
    typed: list[Any] = []
    for key, value in zip(keys, values, strict=True):
        if value is None:
            if key.spec.name == ROW_ID:
                raise LakeQueryError(_BAD_TOKEN, detail={"after": "no row id"})
            typed.append(None)
            continue
        try:
            typed.append(coerce_value(key.spec, value))
        except LakeQueryError as exc:
            raise LakeQueryError(_BAD_TOKEN, detail={"after": "bad value"}) from exc
    return typed


def after_condition(
    keys: Sequence[SortKey], values: Sequence[Any], params: Params, *, table: str | None = None
) -> exp.Expr:
    """Rows strictly after `values` in the order of `keys` (a lexicographic, NULL-aware comparison)."""
    terms: list[exp.Expr] = []
    same_so_far: list[exp.Expr] = []
    for key, value in zip(keys, values, strict=True):
        column = col(key.spec.name, table)
        state = _state(key, value, params)
        later = _later(key, column, state)
        if later is not None:
            terms.append(exp.and_(*same_so_far, later) if same_so_far else later)
        same_so_far.append(_same(column, state))
    if not terms:
        return exp.false()
    return exp.or_(*terms)


@dataclass(frozen=True, slots=True)
class _Value:
    """A sort value as the keyset sees it: NULL, NaN, or an ordinary value bound as a parameter."""

    null: bool = False
    nan: bool = False
    bound: exp.Expr | None = None


def _state(key: SortKey, value: Any, params: Params) -> _Value:
    if value is None:
        return _Value(null=True)
    if isinstance(value, float) and math.isnan(value):
        return _Value(nan=True)
    return _Value(bound=params.bind(value, SQL_TYPES[ColumnType(key.spec.type)]))


def _is_null(column: exp.Expr) -> exp.Expr:
    return exp.Is(this=column.copy(), expression=exp.Null())


def _is_nan(column: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="isnan", expressions=[column.copy()])


def _same(column: exp.Expr, state: _Value) -> exp.Expr:
    if state.null:
        return _is_null(column)
    if state.nan:
        return _is_nan(column)
    assert state.bound is not None
    return exp.EQ(this=column.copy(), expression=state.bound.copy())


def _later(key: SortKey, column: exp.Expr, state: _Value) -> exp.Expr | None:
    """Values of one column that sort strictly after `state`; None when nothing does.

    The order is: values, then NaN (numbers only), then NULL; reversed for descending keys.
    NaN is spelt out with isnan(): a comparison pushed down into the Arrow scan follows IEEE
    rules (NaN compares false), while DuckDB sorts NaN above +inf.
    """
    decimal = ColumnType(key.spec.type) == ColumnType.DECIMAL
    if key.spec.name == ROW_ID:  # never null
        assert state.bound is not None
        builder = exp.LT if key.desc else exp.GT
        return builder(this=column.copy(), expression=state.bound.copy())
    if key.desc:  # NULL first, then NaN, then values downwards
        if state.null:
            return exp.Not(this=_is_null(column))
        if state.nan:
            return exp.and_(exp.Not(this=_is_null(column)), exp.Not(this=_is_nan(column)))
        assert state.bound is not None
        below = exp.LT(this=column.copy(), expression=state.bound.copy())
        return exp.and_(below, exp.Not(this=_is_nan(column))) if decimal else below
    if state.null:  # values upwards, then NaN, then NULL: nothing sorts after NULL
        return None
    if state.nan:
        return _is_null(column)
    assert state.bound is not None
    above: list[exp.Expr] = [exp.GT(this=column.copy(), expression=state.bound.copy())]
    if decimal:
        above.append(_is_nan(column))
    above.append(_is_null(column))
    return exp.Paren(this=exp.or_(*above))
