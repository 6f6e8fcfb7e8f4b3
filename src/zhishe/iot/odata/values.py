"""The values of a compiled expression and their kinds: the kind of a SQL type, the kind of a tree
known before resolving paths, the built-in functions' signatures, literal binding and the folding
of arithmetic on literals (which follows the database: integer division truncates toward zero,
a remainder has the sign of the dividend, a division by zero is null).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    Numeric,
    String,
    Time,
    cast,
    literal,
    null,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from zhishe.core.db import UTCDateTime
from zhishe.iot.odata import sqlfuncs as sf
from zhishe.iot.odata.ast import Arith, Call, Expr, Literal, Negate, Path
from zhishe.iot.odata.errors import bad
from zhishe.iot.odata.lexer import MAX_INT
from zhishe.iot.odata.resolve import ValueKind

__all__ = [
    "COMPARE",
    "DATE_PARTS",
    "KIND_NAMES",
    "LITERAL_KINDS",
    "MAX_DATETIME",
    "MAX_POSITION",
    "MIN_DATETIME",
    "NUMERIC_TEXT",
    "SIGNATURES",
    "Value",
    "base_type",
    "bind_literal",
    "fold_numbers",
    "kind_of",
    "shorten",
    "static_kind",
]

MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_POSITION = 2**31 - 2  # the largest position substr can be given, before adding 1
NUMERIC_TEXT = re.compile(r"-?\d{1,19}(\.\d{1,30})?", re.ASCII)
COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
LITERAL_KINDS: dict[str, ValueKind] = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
    "datetime": "datetime",
    "date": "date",
    "time": "time",
    "duration": "duration",
    "interval": "datetime",
    "geography": "geometry",
}
PATH_HINTS: dict[str, ValueKind] = {"string": "string", "time": "datetime"}
_S: ValueKind = "string"
_N: ValueKind = "number"
_D: ValueKind = "datetime"
_B: ValueKind = "boolean"
#: function → (parameter kinds, result kind)
SIGNATURES: dict[str, tuple[tuple[ValueKind, ...], ValueKind]] = {
    **dict.fromkeys(("substringof", "contains", "endswith", "startswith"), ((_S, _S), _B)),
    "length": ((_S,), _N),
    "indexof": ((_S, _S), _N),
    "substring": ((_S, _N, _N), _S),
    **dict.fromkeys(("tolower", "toupper", "trim"), ((_S,), _S)),
    "concat": ((_S, _S), _S),
    **dict.fromkeys(
        ("year", "month", "day", "hour", "minute", "second", "fractionalseconds", "totaloffsetminutes"),
        ((_D,), _N),
    ),
    "date": ((_D,), "date"),
    "time": ((_D,), "time"),
    **dict.fromkeys(("now", "mindatetime", "maxdatetime"), ((), _D)),
    **dict.fromkeys(("before", "after", "meets", "during", "overlaps", "starts", "finishes"), ((_D, _D), _B)),
    **dict.fromkeys(("round", "floor", "ceiling"), ((_N,), _N)),
}
DATE_PARTS: dict[str, type[sf._UtcPart]] = {
    "year": sf.Year,
    "month": sf.Month,
    "day": sf.Day,
    "hour": sf.Hour,
    "minute": sf.Minute,
    "second": sf.Second,
    "fractionalseconds": sf.FractionalSeconds,
    "date": sf.Date_,
    "time": sf.Time_,
}


def base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def kind_of(sql: ColumnElement[Any]) -> ValueKind:
    type_ = base_type(sql.type)
    if isinstance(type_, Boolean):
        return "boolean"
    if isinstance(type_, Integer | Numeric | Float):  # Float is not a Numeric in SQLAlchemy 2.1
        return "number"
    if isinstance(type_, String):
        return "string"
    if isinstance(type_, DateTime):
        return "datetime"
    if isinstance(type_, Date):
        return "date"
    if isinstance(type_, Time):
        return "time"
    if isinstance(type_, JSON):
        return "json"
    if isinstance(type_, Interval):
        return "duration"
    return "any"


KIND_NAMES = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time of day",
    "duration": "a duration",
    "geometry": "a geometry",
    "json": "a JSON object",
    "null": "null",
    "any": "a value",
}


@dataclass(frozen=True, slots=True)
class Value:
    """A compiled value: SQL, or a Python literal not bound yet (so it can take the type of the
    value it meets); time values carry an end (the start again for an instant)."""

    kind: ValueKind
    text: str
    sql: ColumnElement[Any] | None = None
    value: Any = None
    end_sql: ColumnElement[Any] | None = None
    end_value: Any = None
    interval: bool = False

    @property
    def literal(self) -> bool:
        """Whether this is a Python value still to be bound."""
        return self.sql is None

    @property
    def described(self) -> str:
        """The source text and kind, for messages: ``name (a string)``."""
        return f"{self.text} ({KIND_NAMES[self.kind]})"


def shorten(text: str) -> str:
    """``text`` cut to 60 characters, for messages."""
    return text if len(text) <= 60 else text[:57] + "..."


def static_kind(node: Expr) -> ValueKind | None:
    """The kind of ``node`` known without asking the resolver (None: the resolver decides)."""
    match node:
        case Literal(kind=kind):
            return LITERAL_KINDS[kind]
        case Path(kind=kind):
            return PATH_HINTS.get(kind)
        case Call(name=name):
            signature = SIGNATURES.get(name)
            return signature[1] if signature else None
        case Arith(left=left, right=right):
            kinds = {static_kind(left), static_kind(right)}
            if "datetime" in kinds:
                return "datetime"
            return "duration" if kinds == {"duration"} else "number"
        case Negate(operand=operand):
            return "duration" if static_kind(operand) == "duration" else "number"
    return "boolean"


def bind_literal(option: str, kind: ValueKind, value: Any, like: Value | None) -> ColumnElement[Any]:
    """``value`` as a bound parameter typed for the value it meets (``like``): a date-time takes
    that column's type and is converted to UTC; a number takes an integer, float or NUMERIC type."""
    like_type = base_type(like.sql.type) if like is not None and like.sql is not None else None
    if kind == "string":
        return literal(value, String())
    if kind == "number":
        if isinstance(like_type, Float):
            return literal(value, Float())
        if isinstance(value, int) and isinstance(like_type, Integer):
            return literal(value, BigInteger())
        return cast(literal(value, Float() if isinstance(value, float) else BigInteger()), Numeric())
    if kind == "boolean":
        return literal(bool(value), Boolean())
    if kind == "datetime":
        assert isinstance(value, datetime)
        type_: TypeEngine[Any] = UTCDateTime()
        if like is not None and like.sql is not None and isinstance(like_type, DateTime):
            type_ = like.sql.type
        return literal(value.astimezone(UTC), type_)
    if kind == "date":
        return literal(value, Date())
    if kind == "time":
        return literal(value, Time())
    if kind == "null":
        return null()
    raise bad(option, f"{KIND_NAMES[kind]} cannot be used here")


def fold_numbers(option: str, op: str, a: int | float, b: int | float) -> int | float | None:
    """``a op b`` of two number literals as the database would compute it (None: division by 0)."""
    if op in ("div", "mod") and b == 0:
        return None
    try:
        result = _arithmetic(op, a, b)
    except (OverflowError, ValueError) as exc:
        raise bad(option, f"the result of {op} on literals is out of range") from exc
    if isinstance(result, int) and abs(result) > MAX_INT:
        raise bad(option, f"the result of {op} on literals is out of range")
    if isinstance(result, float) and not math.isfinite(result):
        raise bad(option, f"the result of {op} on literals is out of range")
    return result


def _arithmetic(op: str, a: int | float, b: int | float) -> int | float:
    if op == "add":
        result = a + b
    elif op == "sub":
        result = a - b
    elif op == "mul":
        result = a * b
    elif op == "div":
        if isinstance(a, int) and isinstance(b, int):
            quotient = abs(a) // abs(b)
            result = quotient if (a >= 0) == (b >= 0) else -quotient
        else:
            result = a / b
    else:
        result = math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else _int_mod(int(a), int(b))
    return result


def _int_mod(a: int, b: int) -> int:
    remainder = abs(a) % abs(b)
    return remainder if a >= 0 else -remainder
