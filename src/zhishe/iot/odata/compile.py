"""``$filter`` and ``$orderby`` trees compiled to SQLAlchemy Core expressions that run on SQLite
and PostgreSQL; literals always become bound parameters.

Types are checked before any SQL is built: a comparison of a string with a number, arithmetic on
text, or ``length`` of a number is a ``QueryError`` naming both sides, not a database error. Two
conveniences: a quoted number compared with a numeric property is read as the number
(``Datastream/id eq '1'``, as in the standard's example), and a date compared with a date-time is
its midnight UTC. Date-times are compared in UTC; a literal with an offset is converted first.
A path whose kind depends on use (an Observation's ``result``, a JSON member) is resolved with the
kind it meets; in ``$orderby`` it sorts by its number value, then by its text value.

Time intervals (a resolver may give a ``TimeInterval`` for ``phenomenonTime``, and ``start/end``
literals) are half-open; ``lt``/``gt`` mean ``before``/``after``, ``le``/``ge`` compare both ends,
``eq`` needs both ends equal, an instant counts as an interval of no length (OGC 18-088
9.3.3.5.1). ``before after meets during overlaps starts finishes`` follow the standard's table.

``indexof`` and ``substring`` are zero-based, as the OData canonical functions the standard adopts
(its table's ``indexof(description,'Sensor') eq 1`` contradicts that; FROST-Server is one-based).
Where the back ends differ: ``tolower``/``toupper`` change only ASCII letters on SQLite; ``gt``/
``lt`` on strings follow the database's collation (code points on SQLite); arithmetic runs in
64-bit floats on SQLite and in exact ``NUMERIC`` on PostgreSQL. Arithmetic on date-times is
evaluated on literals only (``now() sub duration'P1D'``). The geospatial functions (``geo.*``,
``st_*``) are parsed and refused here with ``UnsupportedOption`` (501): the platform keeps no
geometry index. An expression nested too deeply for SQLite's parser is refused on every back end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import False_, True_

from zhishe.core import clock
from zhishe.iot.odata import sqlfuncs as sf
from zhishe.iot.odata.ast import (
    Arith,
    Call,
    Compare,
    Duration,
    Expr,
    Literal,
    Logic,
    Negate,
    Not,
    Path,
    TimeRange,
    render,
)
from zhishe.iot.odata.errors import QueryError, UnsupportedOption, bad
from zhishe.iot.odata.lexer import MAX_INT
from zhishe.iot.odata.parser import OrderBy
from zhishe.iot.odata.resolve import Resolver, TimeInterval, ValueKind
from zhishe.iot.odata.values import (
    COMPARE,
    DATE_PARTS,
    KIND_NAMES,
    LITERAL_KINDS,
    MAX_DATETIME,
    MAX_POSITION,
    MIN_DATETIME,
    NUMERIC_TEXT,
    SIGNATURES,
    Value,
    base_type,
    bind_literal,
    fold_numbers,
    kind_of,
    shorten,
    static_kind,
)

__all__ = ["compile_filter", "compile_orderby"]


class _Compiler:
    def __init__(self, resolver: Resolver, *, option: str, now: datetime, ordering: bool) -> None:
        self.resolver = resolver
        self.option = option
        self.now = now
        self.ordering = ordering

    def error(self, message: str) -> QueryError:
        return bad(self.option, message)

    # binding
    def bind(self, value: Value, like: Value | None = None) -> ColumnElement[Any]:
        if value.sql is not None:
            return value.sql
        return self.literal_(value.kind, value.value, like)

    def bind_end(self, value: Value, like: Value | None = None) -> ColumnElement[Any]:
        if value.end_sql is not None:
            return value.end_sql
        if value.literal and value.interval:
            return self.literal_("datetime", value.end_value, like)
        return self.bind(value, like)

    def literal_(self, kind: ValueKind, value: Any, like: Value | None) -> ColumnElement[Any]:
        return bind_literal(self.option, kind, value, like)

    # values
    def value(self, node: Expr, hint: ValueKind | None) -> Value:
        text = shorten(render(node))
        match node:
            case Literal(kind=kind, value=value):
                if isinstance(value, TimeRange):
                    return Value("datetime", text, value=value.start, end_value=value.end, interval=True)
                return Value(LITERAL_KINDS[kind], text, value=value)
            case Path():
                return self.path(node, hint, text)
            case Call():
                return self.call(node, text)
            case Arith():
                return self.arith(node, text)
            case Negate(operand=operand):
                inner = self.value(operand, "number")
                if inner.kind == "duration" and inner.literal:
                    return Value("duration", text, value=inner.value.negated())
                self.need(inner, "number", "-")
                if inner.kind == "null":
                    return Value("null", text)
                if inner.literal:
                    return Value("number", text, value=-inner.value)
                return Value("number", text, sql=sf.Sub(self.literal_("number", 0, None), inner.sql))
            case Compare(op=op, left=left, right=right):
                return self.boolean_value(self.compare(op, left, right), text)
            case Logic(op=op, items=items):
                parts = [self.condition(item) for item in items]
                return self.boolean_value(and_(*parts) if op == "and" else or_(*parts), text)
            case Not(operand=operand):
                return self.boolean_value(not_(self.condition(operand)), text)
        raise AssertionError(node)  # pragma: no cover

    @staticmethod
    def boolean_value(sql: ColumnElement[bool], text: str) -> Value:
        """A condition; a constant one (``1 eq 1``) stays a literal, to be bound where it is used."""
        if isinstance(sql, True_ | False_):
            return Value("boolean", text, value=isinstance(sql, True_))
        return Value("boolean", text, sql=sql)

    def path(self, node: Path, hint: ValueKind | None, text: str) -> Value:
        found = self.resolver.column(node, hint=hint, ordering=self.ordering)
        if isinstance(found, TimeInterval):
            return Value("datetime", text, sql=found.start, end_sql=found.end, interval=True)
        return Value(kind_of(found), text, sql=found)

    def condition(self, node: Expr) -> ColumnElement[bool]:
        value = self.value(node, "boolean")
        if value.kind == "null":
            return cast(null(), Boolean())
        if value.kind not in ("boolean", "any"):
            raise self.error(f"{value.described} is not a condition")
        if value.literal:
            return true() if value.value else false()
        assert value.sql is not None
        return value.sql

    def need(self, value: Value, kind: ValueKind, where: str) -> None:
        if value.kind not in (kind, "any", "null"):
            raise self.error(f"{where} needs {KIND_NAMES[kind]}, and {value.described} is not")

    # comparisons
    def compare(self, op: str, left_node: Expr, right_node: Expr) -> ColumnElement[bool]:
        left = self.value(left_node, static_kind(right_node))
        right = self.value(right_node, static_kind(left_node))
        return self.compare_values(op, left, right)

    def coerce(self, value: Value, other: Value) -> Value:
        if value.literal and value.kind == "string" and other.kind == "number" and not other.literal:
            if not NUMERIC_TEXT.fullmatch(value.value):
                raise self.error(f"cannot compare {other.described} with {value.described}")
            number: int | float = int(value.value) if "." not in value.value else float(value.value)
            return Value("number", value.text, value=number)
        if value.literal and value.kind == "date" and other.kind == "datetime":
            moment = datetime.combine(value.value, time(0), tzinfo=UTC)
            return Value("datetime", value.text, value=moment)
        return value

    def compare_values(self, op: str, left: Value, right: Value) -> ColumnElement[bool]:
        left, right = self.coerce(left, right), self.coerce(right, left)
        for side in (left, right):
            if side.kind == "json":
                raise self.error(
                    f"{side.text} is a JSON object or array; compare one of its members, such as {side.text}/name"
                )
            if side.kind == "geometry":
                raise UnsupportedOption(
                    f"{self.option}: comparing geometries ({side.text}) is not supported by this server",
                    detail={"option": self.option},
                )
        if "null" in (left.kind, right.kind):
            return self.compare_null(op, left, right)
        if left.kind != right.kind and "any" not in (left.kind, right.kind):
            raise self.error(f"cannot compare {left.described} with {right.described}")
        if left.kind == "datetime" or right.kind == "datetime":
            return self.compare_times(op, left, right)
        if left.kind == "duration" or right.kind == "duration":
            if left.literal and right.literal and op in ("eq", "ne"):
                same = (left.value.months, left.value.span) == (right.value.months, right.value.span)
                return true() if same == (op == "eq") else false()
            raise self.error(f"durations can only be tested for equality, as literals ({left.text})")
        if left.literal and right.literal:
            return true() if COMPARE[op](left.value, right.value) else false()
        result: ColumnElement[bool] = COMPARE[op](self.bind(left, right), self.bind(right, left))
        return result

    def compare_null(self, op: str, left: Value, right: Value) -> ColumnElement[bool]:
        other = right if left.kind == "null" else left
        if other.kind == "null" or other.literal:
            same = other.kind == "null"
            if op == "eq":
                return true() if same else false()
            if op == "ne":
                return false() if same else true()
            return cast(null(), Boolean())
        sql = self.bind(other)
        if op == "eq":
            return sql.is_(None)
        if op == "ne":
            return sql.is_not(None)
        return cast(null(), Boolean())

    def ends(self, value: Value, like: Value) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        start = self.bind(value, like)
        return start, (self.bind_end(value, like) if value.interval else start)

    def compare_times(self, op: str, left: Value, right: Value) -> ColumnElement[bool]:
        if not (left.interval or right.interval):
            if left.literal and right.literal:
                return true() if COMPARE[op](left.value, right.value) else false()
            result: ColumnElement[bool] = COMPARE[op](self.bind(left, right), self.bind(right, left))
            return result
        (s1, e1), (s2, e2) = self.ends(left, right), self.ends(right, left)
        if op == "eq":
            return and_(s1 == s2, e1 == e2)
        if op == "ne":
            return or_(s1 != s2, e1 != e2)
        if op == "le":
            return and_(s1 <= s2, e1 <= e2)
        if op == "ge":
            return and_(s1 >= s2, e1 >= e2)
        return self.time_function("before" if op == "lt" else "after", left, right)

    def time_function(self, name: str, a: Value, b: Value) -> ColumnElement[bool]:
        if "null" in (a.kind, b.kind):
            return cast(null(), Boolean())
        for side in (a, b):
            if side.kind not in ("datetime", "any"):
                raise self.error(f"{name}() needs date-times or intervals, and {side.described} is not")
        (s1, e1), (s2, e2) = self.ends(a, b), self.ends(b, a)
        if name == "before":
            return e1 <= s2 if a.interval else e1 < s2
        if name == "after":
            return e2 <= s1 if b.interval else e2 < s1
        if name == "meets":
            return or_(e1 == s2, e2 == s1)
        if name == "during":
            return and_(s1 >= s2, s1 < e2, e1 <= e2)
        if name == "overlaps":
            if a.interval and b.interval:
                return and_(s1 < e2, s2 < e1)
            if b.interval:
                return and_(s2 <= s1, s1 < e2)
            if a.interval:
                return and_(s1 <= s2, s2 < e1)
            return s1 == s2
        if name == "starts":
            return s1 == s2
        assert name == "finishes"
        return e1 == e2

    # arithmetic
    def arith(self, node: Arith, text: str) -> Value:
        left_static, right_static = static_kind(node.left), static_kind(node.right)
        left = self.value(node.left, None if right_static in ("datetime", "duration") else "number")
        right = self.value(node.right, None if left_static in ("datetime", "duration") else "number")
        kinds = {left.kind, right.kind}
        if kinds & {"datetime", "duration"}:
            return self.time_arith(node.op, left, right, text)
        self.need(left, "number", node.op)
        self.need(right, "number", node.op)
        if "null" in kinds:
            return Value("null", text)
        if left.literal and right.literal:
            folded = fold_numbers(self.option, node.op, left.value, right.value)
            return Value("null", text) if folded is None else Value("number", text, value=folded)
        a, b = self.bind(left), self.bind(right)
        if node.op == "div":
            integers = all(
                isinstance(v.value, int) if v.literal else isinstance(base_type(v.sql.type), Integer)  # type: ignore[union-attr]
                for v in (left, right)
            )
            return Value("number", text, sql=(sf.IntDiv if integers else sf.Div)(a, b))
        construct = {"add": sf.Add, "sub": sf.Sub, "mul": sf.Mul, "mod": sf.Mod}[node.op]
        return Value("number", text, sql=construct(a, b))

    def time_arith(self, op: str, left: Value, right: Value, text: str) -> Value:
        if not (left.literal and right.literal) or op not in ("add", "sub"):
            raise self.error(
                f"date-time arithmetic ({text}) is supported on literals only, as in now() sub duration'P1D'"
            )
        try:
            if left.kind == "datetime" and right.kind == "duration" and not left.interval:
                return Value("datetime", text, value=right.value.add_to(left.value, 1 if op == "add" else -1))
            if left.kind == "duration" and right.kind == "duration":
                second = right.value if op == "add" else right.value.negated()
                return Value(
                    "duration",
                    text,
                    value=Duration(left.value.months + second.months, left.value.span + second.span, text),
                )
            if left.kind == "duration" and right.kind == "datetime" and op == "add" and not right.interval:
                return Value("datetime", text, value=left.value.add_to(right.value))
        except (OverflowError, ValueError) as exc:
            raise self.error(f"{text} is out of the range of dates") from exc
        raise self.error(f"cannot {op} {right.described} and {left.described}")

    # functions
    def call(self, node: Call, text: str) -> Value:
        name = node.name
        if name.startswith(("geo.", "st_")):
            raise UnsupportedOption(
                f"{self.option}: {name}() is not supported by this server", detail={"option": self.option}
            )
        if name == "now":
            return Value("datetime", text, value=self.now)
        if name in ("mindatetime", "maxdatetime"):
            return Value("datetime", text, value=MIN_DATETIME if name == "mindatetime" else MAX_DATETIME)
        params, _result = SIGNATURES[name]
        args = [self.value(arg, params[index]) for index, arg in enumerate(node.args)]
        if name in ("before", "after", "meets", "during", "overlaps", "starts", "finishes"):
            a, b = (self.coerce(args[0], args[1]), self.coerce(args[1], args[0]))
            return Value("boolean", text, sql=self.time_function(name, a, b))
        for index, (arg, kind) in enumerate(zip(args, params, strict=False)):
            if arg.literal and arg.kind == "date" and kind == "datetime":
                args[index] = Value(
                    "datetime", arg.text, value=datetime.combine(arg.value, time(0), tzinfo=UTC)
                )
            self.need(args[index], kind, f"{name}() argument {index + 1}")
        if any(arg.kind == "null" for arg in args):
            return Value("null", text)
        return self.function(name, args, text)

    def sql_args(self, args: Sequence[Value], kinds: Sequence[ValueKind]) -> list[ColumnElement[Any]]:
        return [
            self.bind(arg) if not arg.literal else self.literal_(kind, arg.value, None)
            for arg, kind in zip(args, kinds, strict=False)
        ]

    def function(self, name: str, args: list[Value], text: str) -> Value:
        if name in ("round", "floor", "ceiling"):
            (arg,) = args
            if arg.literal:
                exact = Decimal(str(arg.value))
                rounding = {"round": ROUND_HALF_UP, "floor": ROUND_FLOOR, "ceiling": ROUND_CEILING}[name]
                whole = int(exact.to_integral_value(rounding=rounding))
                return Value("number", text, value=whole if abs(whole) <= MAX_INT else float(whole))
            construct = {"round": sf.Round, "floor": sf.Floor, "ceiling": sf.Ceiling}[name]
            return Value("number", text, sql=construct(self.bind(arg)))
        if name == "totaloffsetminutes":
            (arg,) = args
            if arg.literal:
                offset = arg.value.utcoffset() or timedelta(0)
                return Value("number", text, value=int(offset.total_seconds() // 60))
            moment = self.bind(arg)
            return Value("number", text, sql=case((moment.is_(None), null()), else_=literal(0, Integer())))
        if name in DATE_PARTS:
            (arg,) = args
            part = DATE_PARTS[name](self.bind(arg))
            return Value(kind_of(part), text, sql=part)
        sql: list[ColumnElement[Any]] = self.sql_args(args, SIGNATURES[name][0])
        if name in ("substringof", "contains"):
            haystack, needle = (sql[1], sql[0]) if name == "substringof" else (sql[0], sql[1])
            return Value("boolean", text, sql=sf.Position(haystack, needle) > 0)
        if name == "startswith":
            return Value("boolean", text, sql=func.substr(sql[0], 1, func.length(sql[1])) == sql[1])
        if name == "endswith":
            full, tail = sql
            tail_start = func.length(full) - func.length(tail) + literal(1, Integer())
            return Value(
                "boolean",
                text,
                sql=and_(func.length(full) >= func.length(tail), func.substr(full, tail_start) == tail),
            )
        if name == "length":
            return Value("number", text, sql=func.length(sql[0], type_=Integer()))
        if name == "indexof":
            return Value("number", text, sql=sf.Position(sql[0], sql[1]) - literal(1, Integer()))
        if name == "substring":
            first = self.position(args[1]) + literal(1, Integer())
            if len(args) == 2:
                return Value("string", text, sql=func.substr(sql[0], first, type_=String()))
            return Value(
                "string", text, sql=func.substr(sql[0], first, self.position(args[2]), type_=String())
            )
        if name in ("tolower", "toupper", "trim"):
            sql_name = {"tolower": "lower", "toupper": "upper", "trim": "trim"}[name]
            return Value("string", text, sql=getattr(func, sql_name)(sql[0], type_=String()))
        assert name == "concat", name
        return Value("string", text, sql=type_coerce(sql[0].concat(sql[1]), String()))

    def position(self, value: Value) -> ColumnElement[Any]:
        """A non-negative int4 from a number (SQL's substr takes nothing else)."""
        if value.literal:
            return literal(max(0, min(int(value.value), MAX_POSITION)), Integer())
        return sf.Clamp(self.bind(value))


#: Trees at most this deep are always parsed by SQLite (measured: the shallowest tree it could not
#: parse was 12 levels deep); deeper ones are checked.
SAFE_DEPTH = 8


def _depth(expr: Expr) -> int:
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        match node:
            case Call(args=children) | Logic(items=children):
                stack.extend((child, depth + 1) for child in children)
            case Arith(left=left, right=right) | Compare(left=left, right=right):
                stack.extend(((left, depth + 1), (right, depth + 1)))
            case Negate(operand=operand) | Not(operand=operand):
                stack.append((operand, depth + 1))
    return deepest


def _check_depth(option: str, clauses: Sequence[ColumnElement[Any]], *, ordering: bool) -> None:
    """Refuse what SQLite cannot parse: its parser has a fixed stack (100 entries before 3.46), so
    an expression nested a dozen levels deep in heavy functions fails there at execution. The
    statement is parsed (not run) by an empty in-memory SQLite, inside two more levels than a route
    adds, and the same limit then holds on PostgreSQL, so both back ends accept the same filters."""
    probe = select(literal(1))
    probe = probe.order_by(*clauses) if ordering else probe.where(*clauses)
    try:
        statement = str(probe.compile(dialect=sqlite.dialect()))
    except SQLAlchemyError:  # pragma: no cover - a resolver's construct SQLite cannot render
        return
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(f"EXPLAIN SELECT 1 WHERE EXISTS (SELECT 1 WHERE EXISTS ({statement}))")
    except sqlite3.Error as exc:
        if any(sign in str(exc) for sign in ("stack overflow", "too deep", "too large")):
            raise bad(option, "the expression is nested too deeply for the database; simplify it") from exc
    finally:
        connection.close()


def compile_filter(
    expr: Expr | None, resolver: Resolver, *, now: datetime | None = None, option: str = "$filter"
) -> ColumnElement[bool]:
    """``expr`` as a SQL condition (``true()`` when there is no filter); ``now()`` is ``now``, by
    default the platform clock's time."""
    if expr is None:
        return true()
    compiler = _Compiler(resolver, option=option, now=now or clock.now(), ordering=False)
    condition = resolver.finish(compiler.condition(expr))
    if _depth(expr) > SAFE_DEPTH:
        _check_depth(option, [condition], ordering=False)
    return condition


def compile_orderby(
    keys: Sequence[OrderBy], resolver: Resolver, *, now: datetime | None = None, option: str = "$orderby"
) -> list[ColumnElement[Any]]:
    """The ORDER BY expressions of ``keys``: nulls first ascending and last descending, as the
    standard asks. Append the entity's id as the last key to make the order total."""
    compiler = _Compiler(resolver, option=option, now=now or clock.now(), ordering=True)
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        expr = key.expr
        if isinstance(expr, Path) and (
            expr.kind == "any" or (expr.kind == "json" and len(expr.property) > 1)
        ):
            # a value of any JSON type: numbers in numeric order, then strings in text order
            for hint in ("number", "string"):
                sql = compiler.path(expr, hint, render(expr)).sql
                assert sql is not None
                clauses.append(sql.desc().nulls_last() if key.descending else sql.asc().nulls_first())
            continue
        value = compiler.value(expr, None)
        if value.kind in ("json", "geometry"):
            raise bad(option, f"cannot order by {value.described}; order by one of its members")
        if value.literal:
            continue  # a constant does not change the order
        assert value.sql is not None
        sqls = [value.sql] + ([value.end_sql] if value.end_sql is not None else [])
        for sql in sqls:
            clauses.append(sql.desc().nulls_last() if key.descending else sql.asc().nulls_first())
    if any(_depth(key.expr) > SAFE_DEPTH for key in keys):
        _check_depth(option, clauses, ordering=True)
    return clauses
