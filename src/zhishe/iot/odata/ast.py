"""The typed syntax tree of ``$filter`` and ``$orderby`` expressions (frozen dataclasses), the
literal value types, and ``render`` (a tree back to OData text, which parses to the same tree).
"""

from __future__ import annotations

import builtins
import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal as TypingLiteral

from zhishe.iot.odata.model import PropertyKind

__all__ = [
    "ARITHMETIC",
    "COMPARISONS",
    "Arith",
    "Call",
    "Compare",
    "Duration",
    "Expr",
    "Geography",
    "Literal",
    "LiteralKind",
    "LiteralValue",
    "Logic",
    "Negate",
    "Not",
    "Path",
    "TimeRange",
    "paths",
    "render",
]

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
ARITHMETIC = ("add", "sub", "mul", "div", "mod")

LiteralKind = TypingLiteral[
    "string", "number", "boolean", "null", "datetime", "date", "time", "duration", "interval", "geography"
]


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration (``P1DT2H``): whole months (years count 12) plus an exact span."""

    months: int
    span: timedelta
    text: str

    def add_to(self, moment: datetime, sign: int = 1) -> datetime:
        """``moment`` moved by this duration (``sign`` -1 moves it back); month ends are clamped."""
        months = moment.month - 1 + sign * self.months
        year = moment.year + months // 12
        month = months % 12 + 1
        if not 1 <= year <= 9999:
            raise OverflowError("date out of range")
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day) + sign * self.span

    def negated(self) -> Duration:
        """The same duration, pointing the other way."""
        text = self.text[1:] if self.text.startswith("-") else "-" + self.text.lstrip("+")
        return Duration(-self.months, -self.span, text)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A time interval literal ``start/end``: half-open, ``start <= t < end``."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Geography:
    """A ``geography'…'`` literal: Well-Known Text, kept as written."""

    wkt: str


LiteralValue = str | int | float | bool | None | datetime | date | time | Duration | TimeRange | Geography


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal: ``'text'``, ``42``, ``2.5``, ``true``, ``null``, ``2026-11-01T00:00:00+08:00``…"""

    kind: LiteralKind
    value: LiteralValue


@dataclass(frozen=True, slots=True)
class Path:
    """A property path such as ``Datastream/ObservedProperty/name`` or ``properties/site``.

    ``navigation`` holds the leading navigation properties (``Datastream``, ``ObservedProperty``),
    ``property`` the property and any member path inside it (``properties``, ``site``). ``entity``
    is the entity type that has the property and ``kind`` its kind in the data model.
    """

    navigation: tuple[str, ...]
    property: tuple[str, ...]
    entity: str
    kind: PropertyKind

    @builtins.property
    def segments(self) -> tuple[str, ...]:
        """Every segment, navigation first."""
        return self.navigation + self.property


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call: ``startswith(name,'PM')``, ``year(resultTime)``, ``now()``."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """``left add|sub|mul|div|mod right``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Negate:
    """Unary minus: ``-result``."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class Compare:
    """``left eq|ne|gt|ge|lt|le right``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Logic:
    """``a and b and c`` or ``a or b or c`` (one node for a chain of the same operator)."""

    op: str
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    operand: Expr


Expr = Literal | Path | Call | Arith | Negate | Compare | Logic | Not


def paths(expr: Expr) -> Iterator[Path]:
    """Every property path in ``expr``, in reading order."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        match node:
            case Path():
                yield node
            case Call(args=args):
                stack.extend(reversed(args))
            case Arith(left=left, right=right) | Compare(left=left, right=right):
                stack.extend((right, left))
            case Negate(operand=operand) | Not(operand=operand):
                stack.append(operand)
            case Logic(items=items):
                stack.extend(reversed(items))


def _moment(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if value.utcoffset() == timedelta(0) and text.endswith("+00:00") else text


def _render_literal(node: Literal) -> str:
    value = node.value
    match node.kind:
        case "string":
            return "'" + str(value).replace("'", "''") + "'"
        case "boolean":
            return "true" if value else "false"
        case "null":
            return "null"
        case "number":
            return repr(value)
        case "datetime":
            assert isinstance(value, datetime)
            return _moment(value)
        case "date" | "time":
            assert isinstance(value, date | time)
            return value.isoformat()
        case "duration":
            assert isinstance(value, Duration)
            return f"duration'{value.text}'"
        case "interval":
            assert isinstance(value, TimeRange)
            return f"{_moment(value.start)}/{_moment(value.end)}"
        case "geography":
            assert isinstance(value, Geography)
            return f"geography'{value.wkt}'"
    raise AssertionError(node.kind)  # pragma: no cover


def render(expr: Expr) -> str:
    """``expr`` as OData text; every operation is parenthesised, so it parses back to ``expr``."""
    match expr:
        case Literal():
            return _render_literal(expr)
        case Path():
            return "/".join(expr.segments)
        case Call(name=name, args=args):
            return f"{name}({','.join(render(a) for a in args)})"
        case Arith(op=op, left=left, right=right) | Compare(op=op, left=left, right=right):
            return f"({render(left)} {op} {render(right)})"
        case Negate(operand=operand):
            return f"-({render(operand)})"
        case Not(operand=operand):
            return f"(not {render(operand)})"
        case Logic(op=op, items=items):
            return "(" + f" {op} ".join(render(i) for i in items) + ")"
    raise AssertionError(expr)  # pragma: no cover
