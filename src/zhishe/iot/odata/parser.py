"""The parser of ``$filter`` and ``$orderby`` expressions into the tree of ``odata.ast``.

Precedence, loosest first: ``or``; ``and``; ``not``; the comparisons ``eq ne gt ge lt le`` (they do
not chain: ``a eq b eq c`` is refused, ``(a eq b) eq c`` is not); ``add sub``; ``mul div mod``;
unary ``-``; then literals, parenthesised expressions, function calls and property paths.
``not`` takes the comparison after it, so ``not a eq 1 and b eq 2`` is ``(not (a eq 1)) and
(b eq 2)`` (as FROST-Server reads it). Operators, function names and ``true``/``false``/``null``
are matched case-insensitively; property names are not.

Every property path is checked against the data model of the entity set the option applies to.
Input is bounded: at most ``MAX_LENGTH`` characters, ``MAX_DEPTH`` levels of nesting and
``MAX_NODES`` tree nodes; anything else is refused with a ``QueryError`` naming the option and the
position, never an unhandled exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhishe.iot.odata.ast import (
    ARITHMETIC,
    COMPARISONS,
    Arith,
    Call,
    Compare,
    Expr,
    Literal,
    Logic,
    Negate,
    Not,
    Path,
)
from zhishe.iot.odata.errors import bad, shown
from zhishe.iot.odata.lexer import Token, tokenize
from zhishe.iot.odata.model import EntityType, entity_type

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "OrderBy",
    "parse_filter",
    "parse_orderby",
    "resolve_path",
]

MAX_LENGTH = 20_000
MAX_DEPTH = 100
MAX_NODES = 5_000

#: Built-in functions (OGC 18-088 table "Built-in Query Functions", plus OData 4.0's ``contains``)
#: → (fewest, most) arguments.
FUNCTIONS: dict[str, tuple[int, int]] = {
    **dict.fromkeys(("substringof", "contains", "endswith", "startswith", "indexof", "concat"), (2, 2)),
    **dict.fromkeys(("length", "tolower", "toupper", "trim"), (1, 1)),
    "substring": (2, 3),
    **dict.fromkeys(
        ("year", "month", "day", "hour", "minute", "second", "fractionalseconds", "date", "time"), (1, 1)
    ),
    "totaloffsetminutes": (1, 1),
    **dict.fromkeys(("now", "mindatetime", "maxdatetime"), (0, 0)),
    **dict.fromkeys(("before", "after", "meets", "during", "overlaps", "starts", "finishes"), (2, 2)),
    **dict.fromkeys(("round", "floor", "ceiling"), (1, 1)),
    "geo.distance": (2, 2),
    "geo.length": (1, 1),
    "geo.intersects": (2, 2),
    **dict.fromkeys(
        (
            "st_equals",
            "st_disjoint",
            "st_touches",
            "st_within",
            "st_overlaps",
            "st_crosses",
            "st_intersects",
            "st_contains",
        ),
        (2, 2),
    ),
    "st_relate": (3, 3),
}

_OR, _AND, _COMPARE, _ADD, _MUL = 1, 2, 3, 4, 5
_BINARY = {
    "or": _OR,
    "and": _AND,
    **dict.fromkeys(COMPARISONS, _COMPARE),
    "add": _ADD,
    "sub": _ADD,
    "mul": _MUL,
    "div": _MUL,
    "mod": _MUL,
}
_CONSTANTS = {
    "true": Literal("boolean", True),
    "false": Literal("boolean", False),
    "null": Literal("null", None),
}
_OPEN_KINDS = frozenset({"json", "geometry", "any"})


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ``$orderby`` key: an expression and its direction (ascending unless ``desc``)."""

    expr: Expr
    descending: bool = False


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of the expression"
    shown = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    if token.kind == "string":
        shown = "'" + shown + "'"
    return f"{shown!r} at position {token.position}"


def resolve_path(option: str, segments: tuple[str, ...], entity: EntityType) -> Path:
    """``segments`` checked against the data model, starting at ``entity``."""
    navigation: list[str] = []
    current = entity
    for index, segment in enumerate(segments):
        name = "id" if segment == "@iot.id" else segment
        target = current.target_of(name)
        if target is not None:
            navigation.append(name)
            current = target[0]
            continue
        kind = current.kind_of(name)
        if kind is None:
            raise bad(option, f"unknown property {shown(segment)} of {current.set_name}", entity=current.name)
        rest = segments[index + 1 :]
        if rest and kind not in _OPEN_KINDS:
            raise bad(option, f"property {name!r} of {current.set_name} has no member {shown(rest[0])}")
        return Path(tuple(navigation), (name, *rest), current.name, kind)
    raise bad(
        option,
        f"{'/'.join(segments)} ends at the navigation property {navigation[-1]}; "
        f"name one of its properties, such as {'/'.join(segments)}/id",
    )


class _Parser:
    def __init__(self, option: str, text: str, entity: EntityType) -> None:
        if len(text) > MAX_LENGTH:
            raise bad(option, f"the expression is longer than {MAX_LENGTH:,} characters")
        self.option = option
        self.entity = entity
        self.tokens = tokenize(option, text)
        self.index = 0
        self._check_nesting()

    def _check_nesting(self) -> None:
        """Refuse input nested deeper than ``MAX_DEPTH`` before the recursive descent starts."""
        levels: list[int] = []
        total = 0  # the levels open at this token
        pending = 0  # prefix operators (not, -) waiting for their operand
        for token in self.tokens:
            if token.kind == "-" or (token.kind == "word" and token.text.lower() == "not"):
                pending += 1
            elif token.kind == "(":
                levels.append(1 + pending)
                total += 1 + pending
                pending = 0
            else:
                if token.kind == ")" and levels:
                    total -= levels.pop()
                pending = 0
            if total + pending > MAX_DEPTH:
                raise bad(self.option, f"the expression is nested deeper than {MAX_DEPTH} levels")

    # token helpers
    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def unexpected(self, token: Token) -> Exception:
        return bad(self.option, f"unexpected {_describe(token)}", position=token.position)

    def expect(self, kind: str, opened: Token | None = None) -> Token:
        token = self.peek()
        if token.kind != kind:
            if opened is not None:
                raise bad(
                    self.option,
                    f"expected ')' to close the '(' at position {opened.position}, found {_describe(token)}",
                    position=token.position,
                )
            raise self.unexpected(token)
        return self.advance()

    @staticmethod
    def operator(token: Token) -> str | None:
        if token.kind != "word":
            return None
        word = token.text.lower()
        return word if word in _BINARY else None

    # grammar
    def expression(self, least: int = _OR) -> Expr:
        left = self.unary()
        chain: list[Expr] | None = None
        chain_op = ""
        while True:
            token = self.peek()
            op = self.operator(token)
            if op is None or _BINARY[op] < least:
                break
            level = _BINARY[op]
            self.advance()
            right = self.expression(level + 1)
            if op in ("and", "or"):
                if chain is not None and chain_op == op:
                    chain.append(right)
                else:
                    if chain is not None:
                        left = Logic(chain_op, tuple(chain))
                    chain, chain_op = [left, right], op
                continue
            assert chain is None  # and/or bind loosest: nothing tighter follows a chain here
            if level == _COMPARE:
                left = Compare(op, left, right)
                following = self.peek()
                if self.operator(following) in COMPARISONS:
                    raise bad(
                        self.option,
                        f"comparisons do not chain; put parentheses around one (at position {following.position})",
                        position=following.position,
                    )
                continue
            assert op in ARITHMETIC
            left = Arith(op, left, right)
        if chain is not None:
            left = Logic(chain_op, tuple(chain))
        return left

    def unary(self) -> Expr:
        token = self.peek()
        if token.kind == "-":
            self.advance()
            operand = self.unary()
            if isinstance(operand, Literal) and operand.kind == "number":
                assert isinstance(operand.value, int | float) and not isinstance(operand.value, bool)
                return Literal("number", -operand.value)
            return Negate(operand)
        if token.kind == "word" and token.text.lower() == "not":
            self.advance()
            return Not(self.expression(_COMPARE))
        return self.primary()

    def primary(self) -> Expr:
        token = self.advance()
        if token.kind == "(":
            inner = self.expression()
            self.expect(")", opened=token)
            return inner
        if token.kind in (
            "string",
            "number",
            "datetime",
            "date",
            "time",
            "interval",
            "duration",
            "geography",
        ):
            return Literal(token.kind, token.value)  # type: ignore[arg-type]
        if token.kind != "word":
            raise self.unexpected(token)
        word = token.text.lower()
        if self.peek().kind == "(":
            return self.call(token)
        if word in _CONSTANTS:
            return _CONSTANTS[word]
        if word in _BINARY or word in ("not", "asc", "desc"):
            raise self.unexpected(token)
        segments = [token.text]
        while self.peek().kind == "/":
            self.advance()
            segment = self.advance()
            if segment.kind != "word":
                raise bad(
                    self.option,
                    f"expected a property name after '/', found {_describe(segment)}",
                    position=segment.position,
                )
            segments.append(segment.text)
        return resolve_path(self.option, tuple(segments), self.entity)

    def call(self, name_token: Token) -> Call:
        name = name_token.text.lower()
        if name not in FUNCTIONS:
            raise bad(
                self.option,
                f"unknown function {shown(name_token.text)} at position {name_token.position}",
                position=name_token.position,
            )
        opened = self.expect("(")
        args: list[Expr] = []
        if self.peek().kind != ")":
            args.append(self.expression())
            while self.peek().kind == ",":
                self.advance()
                args.append(self.expression())
        self.expect(")", opened=opened)
        fewest, most = FUNCTIONS[name]
        if not fewest <= len(args) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} or {most}"
            raise bad(
                self.option,
                f"{name}() takes {wanted} argument{'s' if most != 1 else ''}, got {len(args)} "
                f"(at position {name_token.position})",
                position=name_token.position,
            )
        return Call(name, tuple(args))

    def finish(self) -> None:
        token = self.peek()
        if token.kind != "end":
            raise self.unexpected(token)


def _check_size(option: str, expr: Expr) -> None:
    nodes = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise bad(option, f"the expression has more than {MAX_NODES:,} parts")
        if depth > MAX_DEPTH:
            raise bad(option, f"the expression is nested deeper than {MAX_DEPTH} levels")
        match node:
            case Call(args=children) | Logic(items=children):
                stack.extend((child, depth + 1) for child in children)
            case Arith(left=left, right=right) | Compare(left=left, right=right):
                stack.extend(((left, depth + 1), (right, depth + 1)))
            case Negate(operand=operand) | Not(operand=operand):
                stack.append((operand, depth + 1))


def _run(option: str, text: str, entity: str) -> _Parser:
    return _Parser(option, text, entity_type(entity))


def parse_filter(text: str, *, entity: str, option: str = "$filter") -> Expr:
    """The tree of a ``$filter`` expression over entity set (or type) ``entity``."""
    parser = _run(option, text, entity)
    try:
        expr = parser.expression()
        parser.finish()
    except RecursionError as exc:  # pragma: no cover - the nesting check comes first
        raise bad(option, f"the expression is nested deeper than {MAX_DEPTH} levels") from exc
    _check_size(option, expr)
    return expr


def parse_orderby(text: str, *, entity: str, option: str = "$orderby") -> tuple[OrderBy, ...]:
    """The keys of an ``$orderby`` value: comma-separated expressions, each ``asc`` or ``desc``."""
    parser = _run(option, text, entity)
    keys: list[OrderBy] = []
    try:
        while True:
            expr = parser.expression()
            _check_size(option, expr)
            descending = False
            token = parser.peek()
            if token.kind == "word" and token.text.lower() in ("asc", "desc"):
                descending = token.text.lower() == "desc"
                parser.advance()
            keys.append(OrderBy(expr, descending))
            token = parser.peek()
            if token.kind == "end":
                break
            if token.kind != ",":
                raise parser.unexpected(token)
            parser.advance()
    except RecursionError as exc:  # pragma: no cover - the nesting check comes first
        raise bad(option, f"the expression is nested deeper than {MAX_DEPTH} levels") from exc
    if len(keys) > 100:
        raise bad(option, "more than 100 sort keys")
    return tuple(keys)
