"""Row filters: a JSON-able structure, its validation, and coercing values to column types.

A filter is one of::

    {"and": [f, ...]}   {"or": [f, ...]}   {"not": f}
    {"column": "c", "op": OP, "value": v}

with OP one of ``= != < <= > >= in not_in between is_null not_null contains starts_with``.
``in``/``not_in`` take a list, ``between`` a ``[low, high]`` pair (inclusive), ``is_null``
and ``not_null`` no value, ``contains``/``starts_with`` a string matched literally and
case-sensitively (``%`` and ``_`` are ordinary characters).

Semantics: a comparison never matches a row whose column is NULL (use ``is_null``), and
``not`` is the exact complement of what it wraps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.types import ColumnSpec, ColumnType

__all__ = [
    "And",
    "Condition",
    "Filter",
    "Not",
    "Op",
    "Or",
    "coerce_value",
    "filter_to_json",
    "parse_filter",
]

Op = Literal[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "between",
    "is_null",
    "not_null",
    "contains",
    "starts_with",
]
OPS: frozenset[str] = frozenset(get_args(Op))
_SCALAR_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_LIST_OPS = frozenset({"in", "not_in"})
_NULL_OPS = frozenset({"is_null", "not_null"})
_TEXT_OPS = frozenset({"contains", "starts_with"})

#: Limits that keep a filter from an API body small enough to plan quickly.
MAX_DEPTH = 32
MAX_NODES = 500
MAX_LIST = 1000
MAX_TEXT = 10_000
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Condition:
    """One column compared with a value: ``{"column", "op", "value"}``."""

    column: str
    op: Op
    value: Any = None


@dataclass(frozen=True, slots=True)
class And:
    """Every filter matches."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one filter matches."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The filter does not match."""

    filter: Filter


Filter = Condition | And | Or | Not


def parse_filter(obj: Any) -> Filter:
    """Validate a plain JSON value (an API body's ``where``) and build the `Filter` it describes.

    Only the structure is checked here; columns and value types are checked against a table's
    columns when the filter is used. Raises LakeQueryError naming where the problem is.
    """
    counter = [0]
    return _parse(obj, path="where", depth=0, counter=counter)


def _parse(obj: Any, *, path: str, depth: int, counter: list[int]) -> Filter:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise LakeQueryError(f"the filter has more than {MAX_NODES} parts", detail={"path": path})
    if depth > MAX_DEPTH:
        raise LakeQueryError(f"the filter nests deeper than {MAX_DEPTH} levels", detail={"path": path})
    if isinstance(obj, Condition | And | Or | Not):
        obj = filter_to_json(obj)
    if not isinstance(obj, Mapping):
        raise LakeQueryError(f"{path} must be an object, not {type(obj).__name__}", detail={"path": path})
    keys = set(obj)
    for combinator in ("and", "or"):
        if keys == {combinator}:
            items = obj[combinator]
            if not isinstance(items, list) or not items:
                raise LakeQueryError(f"{path}.{combinator} must be a non-empty list", detail={"path": path})
            parts = tuple(
                _parse(item, path=f"{path}.{combinator}[{i}]", depth=depth + 1, counter=counter)
                for i, item in enumerate(items)
            )
            return And(parts) if combinator == "and" else Or(parts)
    if keys == {"not"}:
        return Not(_parse(obj["not"], path=f"{path}.not", depth=depth + 1, counter=counter))
    if "column" in keys and "op" in keys and keys <= {"column", "op", "value"}:
        return _parse_condition(obj, path=path)
    raise LakeQueryError(
        f"{path} must be {{'and': [...]}}, {{'or': [...]}}, {{'not': ...}} or "
        f"{{'column', 'op', 'value'}}; it has the keys {sorted(map(str, keys))}",
        detail={"path": path},
    )


def _parse_condition(obj: Mapping[str, Any], *, path: str) -> Condition:
    column, op = obj["column"], obj["op"]
    if not isinstance(column, str) or not column:
        raise LakeQueryError(f"{path}.column must be a column name", detail={"path": path})
    if op not in OPS:
        raise LakeQueryError(
            f"{path}.op {op!r} is not one of {', '.join(sorted(OPS))}",
            detail={"path": path, "column": column},
        )
    value = obj.get("value")
    if op in _NULL_OPS:
        if value is not None:
            raise LakeQueryError(f"{path}: {op} takes no value", detail={"path": path, "column": column})
        return Condition(column, op)
    if op in _LIST_OPS or op == "between":
        if not isinstance(value, list | tuple):
            raise LakeQueryError(
                f"{path}: {op} needs a list of values", detail={"path": path, "column": column}
            )
        if op == "between" and len(value) != 2:
            raise LakeQueryError(
                f"{path}: between needs exactly [low, high]", detail={"path": path, "column": column}
            )
        if not value or len(value) > MAX_LIST:
            raise LakeQueryError(
                f"{path}: {op} needs 1 to {MAX_LIST} values", detail={"path": path, "column": column}
            )
        for item in value:
            _check_scalar(item, path=path, column=column, op=op)
        return Condition(column, op, tuple(value))
    _check_scalar(value, path=path, column=column, op=op)
    if op in _TEXT_OPS and not isinstance(value, str):
        raise LakeQueryError(f"{path}: {op} needs a string value", detail={"path": path, "column": column})
    return Condition(column, op, value)


def _check_scalar(value: Any, *, path: str, column: str, op: str) -> None:
    if value is None:
        raise LakeQueryError(
            f"{path}: {op} on {column!r} needs a value; use is_null / not_null for empty values",
            detail={"path": path, "column": column},
        )
    if not isinstance(value, str | int | float | bool | date):
        raise LakeQueryError(
            f"{path}: the value for {column!r} must be a string, number or boolean, "
            f"not {type(value).__name__}",
            detail={"path": path, "column": column},
        )
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise LakeQueryError(f"{path}: the value is longer than {MAX_TEXT} characters", detail={"path": path})


def filter_to_json(where: Filter) -> dict[str, Any]:
    """The plain JSON form of a filter (the inverse of `parse_filter`)."""
    if isinstance(where, And):
        return {"and": [filter_to_json(f) for f in where.filters]}
    if isinstance(where, Or):
        return {"or": [filter_to_json(f) for f in where.filters]}
    if isinstance(where, Not):
        return {"not": filter_to_json(where.filter)}
    result: dict[str, Any] = {"column": where.column, "op": where.op}
    if where.op not in _NULL_OPS:
        value = where.value
        if isinstance(value, tuple | list):
            result["value"] = [_json_scalar(v) for v in value]
        else:
            result["value"] = _json_scalar(value)
    return result


def _json_scalar(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def coerce_value(spec: ColumnSpec, value: Any) -> Any:
    """`value` as a Python value of `spec`'s column type, or LakeQueryError naming column and value.

    Strings are parsed (ISO 8601 dates and datetimes, numbers, true/false); datetimes must carry
    an offset and come back as aware UTC.
    """
    kind = ColumnType(spec.type)
    try:
        result = _COERCE[kind](value)
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc) or "not valid"
        raise LakeQueryError(
            f"column {spec.name!r}: {value!r} is not a valid {kind.value} ({reason})",
            detail={"column": spec.name, "value": repr(value)[:200], "type": kind.value},
        ) from exc
    return result


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError("expected text")


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected a whole number")
        number = int(value)
    elif isinstance(value, str):
        number = int(value.strip())
    else:
        raise TypeError("expected an integer")
    if not _INT64[0] <= number <= _INT64[1]:
        raise OverflowError("outside the 64-bit integer range")
    return number


def _to_decimal(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError("expected a number")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("expected true or false")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise TypeError("expected a date, not a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    raise TypeError("expected an ISO 8601 date")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip())
    else:
        raise TypeError("expected an ISO 8601 datetime with offset")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the datetime needs a UTC offset, e.g. 2024-05-01T08:00:00+08:00")
    return moment.astimezone(UTC)


def _to_point(value: Any) -> Any:
    raise TypeError("points can only be tested with is_null / not_null")


_COERCE: dict[ColumnType, Any] = {
    ColumnType.STRING: _to_string,
    ColumnType.INTEGER: _to_integer,
    ColumnType.DECIMAL: _to_decimal,
    ColumnType.BOOLEAN: _to_boolean,
    ColumnType.DATE: _to_date,
    ColumnType.DATETIME: _to_datetime,
    ColumnType.POINT: _to_point,
}
