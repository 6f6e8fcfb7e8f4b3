"""The system query options of a SensorThings request (OGC 18-088 clause 9.3) parsed into one
``QueryOptions`` value: ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$count``, ``$select``,
``$expand`` (with options nested in parentheses, separated by ``;``) and ``$resultFormat``.

``$top`` is the number of entities to return: the caller's default when absent, and the caller's
maximum when the request asks for more (the standard discards a ``$top`` over the server's page
limit and pages instead). Other ``$`` options (``$search``, ``$format``, ``$apply``…) raise
``UnsupportedOption`` (501); parameters without a ``$`` are left to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from zhishe.iot.odata.ast import Expr
from zhishe.iot.odata.errors import UnsupportedOption, bad, shown
from zhishe.iot.odata.lexer import MAX_INT, check_text
from zhishe.iot.odata.model import EntityType, entity_type
from zhishe.iot.odata.parser import MAX_LENGTH, OrderBy, parse_filter, parse_orderby

__all__ = [
    "MAX_EXPAND_DEPTH",
    "OPTIONS",
    "Expand",
    "QueryOptions",
    "parse_count",
    "parse_expand",
    "parse_options",
    "parse_select",
    "parse_skip",
    "parse_top",
]

#: The system query options this layer understands, in their canonical spelling.
OPTIONS = ("$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand", "$resultFormat")
_CANONICAL = {name.lower(): name for name in OPTIONS}
_NESTED = frozenset({"$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand"})
#: How deep ``$expand`` may nest (``Things?$expand=Datastreams/Observations/FeatureOfInterest`` is 3).
MAX_EXPAND_DEPTH = 10
_INTEGER = re.compile(r"[0-9]{1,19}")
_NAME = re.compile(r"(?:[^\W\d]|@)[\w.@-]*")


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The query options of one request, or of one ``$expand`` item, over entity set ``entity``."""

    entity: str
    filter: Expr | None = None
    orderby: tuple[OrderBy, ...] = ()
    top: int = 100
    skip: int = 0
    count: bool = False
    #: Selected properties (``id`` for ``@iot.id``, navigation properties, ``@iot.selfLink``);
    #: empty means every property.
    select: tuple[str, ...] = ()
    expand: tuple[Expand, ...] = ()
    #: ``$top`` as the client gave it (None when absent; may exceed ``top``).
    requested_top: int | None = None
    result_format: str | None = None
    #: The options the client gave (canonical names).
    given: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Expand:
    """One ``$expand`` item: a navigation property, whether it is a collection, and its options."""

    navigation: str
    collection: bool
    options: QueryOptions


def _integer(option: str, value: str) -> int:
    if not _INTEGER.fullmatch(value) or int(value) > MAX_INT:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise bad(option, f"{option} must be a non-negative integer, got {shown!r}")
    return int(value)


def parse_top(value: str, *, max_top: int = 10_000) -> tuple[int, int]:
    """(the number of entities to return, the number asked for) from a ``$top`` value."""
    requested = _integer("$top", value)
    return min(requested, max_top), requested


def parse_skip(value: str) -> int:
    """The ``$skip`` value: a non-negative integer."""
    return _integer("$skip", value)


def parse_count(value: str) -> bool:
    """The ``$count`` value: ``true`` or ``false``."""
    lowered = value.lower()
    if lowered not in ("true", "false"):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise bad("$count", f"$count must be true or false, got {shown!r}")
    return lowered == "true"


def parse_select(value: str, *, entity: str, option: str = "$select") -> tuple[str, ...]:
    """The properties a ``$select`` names: properties and navigation properties of ``entity``,
    ``id`` (also written ``@iot.id``) and ``@iot.selfLink``; ``*`` (or nothing) means all."""
    kind = entity_type(entity)
    if value.startswith("distinct:"):
        raise UnsupportedOption(
            f"{option}: distinct: is not part of SensorThings API v1.1", detail={"option": option}
        )
    chosen: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if name == "*":
            return ()
        if name == "@iot.id":
            name = "id"
        if not name:
            raise bad(option, f"{option} has an empty item; separate property names with single commas")
        if "/" in name:
            raise bad(option, f"{option} takes property names, and {shown(name)} is a path")
        if name != "@iot.selfLink" and kind.kind_of(name) is None and kind.target_of(name) is None:
            raise bad(option, f"unknown property {shown(name)} of {kind.set_name}", entity=kind.name)
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _split(option: str, text: str, separator: str) -> list[tuple[str, int]]:
    """``text`` split at ``separator`` outside quotes and parentheses, with each part's offset."""
    parts: list[tuple[str, int]] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise bad(option, f"unexpected ')' at position {index + 1}")
        elif char == separator and depth == 0:
            parts.append((text[start:index], start))
            start = index + 1
    if quoted:
        raise bad(option, "a quoted text has no closing quote")
    if depth:
        raise bad(option, "a '(' has no matching ')'")
    parts.append((text[start:], start))
    return parts


def _merge(option: str, items: Iterable[Expand]) -> tuple[Expand, ...]:
    """Items for the same navigation property merged: ``Datastreams,Datastreams/Sensor``."""
    merged: dict[str, Expand] = {}
    for item in items:
        seen = merged.get(item.navigation)
        if seen is None:
            merged[item.navigation] = item
            continue
        mine, theirs = item.options, seen.options
        mine_given, theirs_given = mine.given - {"$expand"}, theirs.given - {"$expand"}
        if (
            mine_given
            and theirs_given
            and replace(mine, expand=(), given=frozenset()) != replace(theirs, expand=(), given=frozenset())
        ):
            raise bad(option, f"{item.navigation} is expanded twice with different options")
        base = mine if mine_given else theirs
        merged[item.navigation] = replace(
            seen,
            options=replace(
                base, expand=_merge(option, (*theirs.expand, *mine.expand)), given=mine.given | theirs.given
            ),
        )
    return tuple(merged.values())


def parse_expand(
    value: str, *, entity: str, default_top: int = 100, max_top: int = 10_000, depth: int = 1
) -> tuple[Expand, ...]:
    """The items of an ``$expand`` value over ``entity``, with their nested options parsed."""
    option = "$expand"
    if depth > MAX_EXPAND_DEPTH:
        raise bad(option, f"$expand is nested deeper than {MAX_EXPAND_DEPTH} levels")
    kind = entity_type(entity)
    items: list[Expand] = []
    for text, offset in _split(option, value, ","):
        opened = _first_open(text)
        path_text, inner = (text, None) if opened < 0 else (text[:opened], text[opened:])
        if inner is not None and not (inner.rstrip().endswith(")")):
            raise bad(option, f"options in parentheses must end the item, at position {offset + opened + 1}")
        segments = [s.strip() for s in path_text.split("/")]
        if len(segments) + depth - 1 > MAX_EXPAND_DEPTH:
            raise bad(option, f"$expand is nested deeper than {MAX_EXPAND_DEPTH} levels")
        chain: list[tuple[str, EntityType, bool]] = []
        current = kind
        for segment in segments:
            if not segment:
                raise bad(option, f"empty navigation property at position {offset + 1}")
            target = current.target_of(segment)
            if target is None:
                raise bad(
                    option, f"{current.name} has no navigation property {shown(segment)}", entity=current.name
                )
            chain.append((segment, target[0], target[1]))
            current = target[0]
        nested_depth = depth + len(chain) - 1
        last_options = _nested(
            inner.rstrip()[1:-1] if inner is not None else None,
            entity=current.set_name,
            default_top=default_top,
            max_top=max_top,
            depth=nested_depth + 1,
        )
        node: Expand | None = None
        for name, target_type, collection in reversed(chain):
            options = (
                last_options
                if node is None
                else QueryOptions(
                    entity=target_type.set_name, top=default_top, expand=(node,), given=frozenset({"$expand"})
                )
            )
            node = Expand(name, collection, options)
        assert node is not None
        items.append(node)
    return _merge(option, items)


def _first_open(text: str) -> int:
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == "(" and not quoted:
            return index
    return -1


def _nested(text: str | None, *, entity: str, default_top: int, max_top: int, depth: int) -> QueryOptions:
    """The options inside an ``$expand`` item's parentheses (``$top=2;$orderby=name desc``)."""
    if text is None:
        return QueryOptions(entity=entity, top=default_top)
    pairs: list[tuple[str, str]] = []
    for part, _offset in _split("$expand", text, ";"):
        name, equals, value = part.partition("=")
        canonical = _CANONICAL.get(name.strip().lower())
        if not equals or canonical not in _NESTED:
            shown = part.strip()[:40]
            raise bad("$expand", f"{shown!r} is not one of {', '.join(sorted(_NESTED))} (inside $expand)")
        pairs.append((canonical, value))
    return _build(pairs, entity=entity, default_top=default_top, max_top=max_top, depth=depth)


def _pairs(params: Any) -> list[tuple[str, str]]:
    if isinstance(params, str):
        return parse_qsl(params.lstrip("?"), keep_blank_values=True)
    multi = getattr(params, "multi_items", None)
    if callable(multi):
        return [(str(k), str(v)) for k, v in multi()]
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def _build(
    pairs: list[tuple[str, str]], *, entity: str, default_top: int, max_top: int, depth: int
) -> QueryOptions:
    kind = entity_type(entity)
    values: dict[str, str] = {}
    for name, value in pairs:
        if not name.startswith("$"):
            continue
        canonical = _CANONICAL.get(name.lower())
        if canonical is None:
            shown = name if len(name) <= 40 else name[:37] + "..."
            raise UnsupportedOption(
                f"{shown}: this system query option is not supported; "
                f"the supported ones are {', '.join(OPTIONS)}",
                detail={"option": shown},
            )
        if canonical in values:
            raise bad(canonical, f"{canonical} is given more than once")
        check_text(canonical, value)
        if len(value) > MAX_LENGTH:
            raise bad(canonical, f"{canonical} is longer than {MAX_LENGTH:,} characters")
        values[canonical] = value
    options = QueryOptions(entity=kind.set_name, top=default_top, given=frozenset(values))
    for name in ("$filter", "$orderby", "$select", "$expand", "$resultFormat"):
        if name in values and not values[name].strip():
            raise bad(name, f"{name} is empty")
    if "$filter" in values:
        options = replace(options, filter=parse_filter(values["$filter"], entity=kind.set_name))
    if "$orderby" in values:
        options = replace(options, orderby=parse_orderby(values["$orderby"], entity=kind.set_name))
    if "$top" in values:
        top, requested = parse_top(values["$top"].strip(), max_top=max_top)
        options = replace(options, top=top, requested_top=requested)
    if "$skip" in values:
        options = replace(options, skip=parse_skip(values["$skip"].strip()))
    if "$count" in values:
        options = replace(options, count=parse_count(values["$count"].strip()))
    if "$select" in values:
        options = replace(options, select=parse_select(values["$select"], entity=kind.set_name))
    if "$expand" in values:
        expand = parse_expand(
            values["$expand"], entity=kind.set_name, default_top=default_top, max_top=max_top, depth=depth
        )
        options = replace(options, expand=expand)
    if "$resultFormat" in values:
        result_format = values["$resultFormat"].strip()
        if not _NAME.fullmatch(result_format):
            raise bad("$resultFormat", f"{result_format[:40]!r} is not a result format name")
        options = replace(options, result_format=result_format)
    return options


def parse_options(
    params: str | Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    entity: str,
    default_top: int = 100,
    max_top: int = 10_000,
) -> QueryOptions:
    """Every system query option of a request over entity set ``entity``.

    ``params`` is the raw query string, a mapping, pairs, or Starlette's ``QueryParams`` (whose
    repeated keys are seen, and refused).
    """
    if not 0 <= default_top <= max_top:
        raise ValueError("default_top must be between 0 and max_top")
    return _build(_pairs(params), entity=entity, default_top=default_top, max_top=max_top, depth=1)
