"""Resource paths and links of the SensorThings API: ``parse_path`` reads the part of a URL after
the service root (``/Things(1)/Datastreams``), and the link helpers build ``@iot.selfLink``,
``…@iot.navigationLink`` and ``@iot.nextLink`` values (OGC 18-088 clauses 9.2 and 9.3.3.6).

A next link keeps the request's other query options exactly as the client sent them (only
characters a URL may not hold are percent-encoded) and sets ``$top`` and ``$skip``; clients treat
it as opaque. A link of an expanded collection (``Datastreams@iot.nextLink``) is rendered from the
parsed options instead.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from zhishe.iot.odata.ast import render
from zhishe.iot.odata.errors import QueryError, shown
from zhishe.iot.odata.lexer import MAX_INT
from zhishe.iot.odata.model import ENTITY_SETS, EntityType
from zhishe.iot.odata.options import Expand, QueryOptions

__all__ = [
    "PathKind",
    "ResourcePath",
    "Segment",
    "expand_next_link",
    "navigation_link",
    "next_link",
    "options_query",
    "parse_path",
    "self_link",
]

PathKind = Literal["service", "collection", "entity", "property", "value", "ref"]
_OPEN_KINDS = frozenset({"json", "geometry", "any"})
#: Kept as they are in a query the client sent (already percent-encoded where needed).
_QUERY_SAFE = "$&=()',;/:@!*+%?~-._"
#: Kept as they are in an option value this module renders (everything else is encoded).
_VALUE_SAFE = "$(),;/:@!*'~-._="


@dataclass(frozen=True, slots=True)
class Segment:
    """One entity-addressing segment: ``Things(1)``, ``Datastreams``, ``Sensor``."""

    name: str
    entity_set: str
    entity: str
    id: int | str | None = None
    #: True when the segment addresses a collection (a plural name without an id).
    collection: bool = False


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A parsed resource path: the entity segments, then any property (with member path) and a
    final ``$value`` or ``$ref``."""

    segments: tuple[Segment, ...] = ()
    property: tuple[str, ...] = ()
    value: bool = False
    ref: bool = False

    @builtins.property
    def kind(self) -> PathKind:
        """What the path addresses (the standard's usages 1–7)."""
        if not self.segments:
            return "service"
        if self.ref:
            return "ref"
        if self.value:
            return "value"
        if self.property:
            return "property"
        return "collection" if self.segments[-1].collection else "entity"

    @builtins.property
    def entity_set(self) -> str | None:
        """The entity set of the addressed entities (or of the entity whose property it is)."""
        return self.segments[-1].entity_set if self.segments else None


def _split_path(text: str) -> list[str]:
    """``text`` split at ``/`` outside quoted ids."""
    parts: list[str] = []
    quoted, start = False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == "/" and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _id(path: str, segment: str, text: str) -> int | str:
    if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_INT:
        return int(text)
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'" and "'" not in text[1:-1].replace("''", ""):
        return text[1:-1].replace("''", "'")
    raise QueryError(
        f"{path}: the id in {shown(segment)} must be an integer or a quoted string such as 'abc'",
        detail={"path": path, "segment": segment},
    )


def _name_and_id(path: str, segment: str) -> tuple[str, int | str | None]:
    if segment.endswith(")") and "(" in segment:
        name, _, rest = segment.partition("(")
        return name, _id(path, segment, rest[:-1])
    return segment, None


def parse_path(path: str) -> ResourcePath:
    """The resource path after the service root: ``/Things(1)/Datastreams``,
    ``/Observations(12)/result``, ``/Things(1)/properties/owner``, ``…/name/$value``,
    ``/Datastreams(1)/Observations/$ref``. ``QueryError`` names the entity type a wrong segment
    was looked up in; a route answers those with 404 (or 400 for a malformed id)."""
    where = path if len(path) <= 100 else path[:97] + "..."
    text = path.strip("/") if path.strip("/") else ""
    if not text:
        return ResourcePath()
    if "\x00" in text:
        raise QueryError(f"{where!r}: the path holds a NUL character", detail={"path": where})
    raw = _split_path(text)
    first_name, first_id = _name_and_id(where, raw[0])
    kind = ENTITY_SETS.get(first_name)
    if kind is None:
        raise QueryError(
            f"{where}: unknown entity set {shown(first_name)}; the entity sets are {', '.join(ENTITY_SETS)}",
            detail={"path": where, "segment": first_name[:60]},
        )
    segments = [Segment(first_name, kind.set_name, kind.name, first_id, first_id is None)]
    current: EntityType = kind
    properties: list[str] = []
    for index, part in enumerate(raw[1:], start=1):
        last = index == len(raw) - 1
        if part in ("$value", "$ref"):
            if not last:
                raise QueryError(f"{where}: {part} must end the path", detail={"path": where})
            if part == "$value" and not properties:
                raise QueryError(
                    f"{where}: $value follows a property, as in name/$value", detail={"path": where}
                )
            if part == "$ref" and properties:
                raise QueryError(f"{where}: $ref follows an entity or a collection", detail={"path": where})
            return ResourcePath(
                tuple(segments), tuple(properties), value=part == "$value", ref=part == "$ref"
            )
        if properties:
            parent_kind = current.kind_of(properties[0])
            if parent_kind not in _OPEN_KINDS or not part or "(" in part:
                raise QueryError(
                    f"{where}: {'/'.join(properties)} of {current.name} has no member {shown(part)}",
                    detail={"path": where, "entity": current.name, "segment": part[:60]},
                )
            properties.append(part)
            continue
        name, entity_id = _name_and_id(where, part)
        previous = segments[-1]
        if previous.collection:
            raise QueryError(
                f"{where}: {previous.name} is a collection; address one entity, as in "
                f"{previous.name}(1)/{name[:60]}, before navigating on",
                detail={"path": where, "entity": current.name, "segment": name[:60]},
            )
        target = current.target_of(name)
        if target is not None:
            target_type, many = target
            if entity_id is not None and not many:
                raise QueryError(
                    f"{where}: {name} of {current.name} is a single entity and takes no id",
                    detail={"path": where, "entity": current.name, "segment": name},
                )
            segments.append(
                Segment(name, target_type.set_name, target_type.name, entity_id, many and entity_id is None)
            )
            current = target_type
            continue
        property_name = "id" if name == "@iot.id" else name
        if current.kind_of(property_name) is not None and entity_id is None:
            properties.append(property_name)
            continue
        raise QueryError(
            f"{where}: {current.name} has no property or navigation property {shown(name)}",
            detail={"path": where, "entity": current.name, "segment": name[:60]},
        )
    return ResourcePath(tuple(segments), tuple(properties))


def _id_text(entity_id: int | str) -> str:
    if isinstance(entity_id, int):
        return str(entity_id)
    return quote("'" + entity_id.replace("'", "''") + "'", safe="'")


def self_link(base: str, entity_set: str, entity_id: int | str) -> str:
    """``{base}/Things(1)``; with ``base`` empty, the relative ``Things(1)``."""
    prefix = base.rstrip("/") + "/" if base else ""
    return f"{prefix}{entity_set}({_id_text(entity_id)})"


def navigation_link(base: str, entity_set: str, entity_id: int | str, navigation: str) -> str:
    """``{base}/Things(1)/Datastreams``; with ``base`` empty, ``Things(1)/Datastreams``."""
    return f"{self_link(base, entity_set, entity_id)}/{navigation}"


def next_link(url: str, *, top: int, skip: int, more: bool) -> str | None:
    """The ``@iot.nextLink`` of a page: ``url`` with ``$skip`` advanced by ``top``, ``$top`` set
    to ``top`` and every other option kept as sent; None on the last page (or when ``top`` is 0)."""
    if not more or top <= 0:
        return None
    parts = urlsplit(url)
    kept: list[str] = []
    for item in parts.query.split("&") if parts.query else []:
        if not item:
            continue
        key = unquote_plus(item.split("=", 1)[0]).lower()
        if key not in ("$top", "$skip"):
            kept.append(quote(item, safe=_QUERY_SAFE))
    kept += [f"$top={top}", f"$skip={skip + top}"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def _expand_text(items: tuple[Expand, ...]) -> str:
    rendered = []
    for item in items:
        inner = ";".join(f"{name}={value}" for name, value in options_query(item.options))
        rendered.append(f"{item.navigation}({inner})" if inner else item.navigation)
    return ",".join(rendered)


def options_query(
    options: QueryOptions, *, top: int | None = None, skip: int | None = None
) -> list[tuple[str, str]]:
    """The options the client gave, as (name, value) pairs rendered from the parsed options, with
    ``$top``/``$skip`` replaced when given."""
    pairs: list[tuple[str, str]] = []
    given = options.given
    if options.filter is not None:
        pairs.append(("$filter", render(options.filter)))
    if options.orderby:
        keys = (f"{render(key.expr)}{' desc' if key.descending else ''}" for key in options.orderby)
        pairs.append(("$orderby", ",".join(keys)))
    if "$select" in given:
        pairs.append(("$select", ",".join(options.select) or "*"))
    if options.expand:
        pairs.append(("$expand", _expand_text(options.expand)))
    if "$count" in given:
        pairs.append(("$count", "true" if options.count else "false"))
    if top is not None or "$top" in given:
        pairs.append(("$top", str(top if top is not None else options.top)))
    if skip is not None or "$skip" in given:
        pairs.append(("$skip", str(skip if skip is not None else options.skip)))
    return pairs


def expand_next_link(
    base: str, *, entity_set: str, entity_id: int | str, item: Expand, skip: int, more: bool
) -> str | None:
    """The ``{navigation}@iot.nextLink`` of an expanded collection whose page started at ``skip``:
    ``{base}/Things(1)/Datastreams?…&$top=…&$skip=…``; None on its last page."""
    top = item.options.top
    if not more or top <= 0:
        return None
    query = "&".join(
        f"{name}={quote(value, safe=_VALUE_SAFE)}"
        for name, value in options_query(item.options, top=top, skip=skip + top)
    )
    return f"{navigation_link(base, entity_set, entity_id, item.navigation)}?{query}"
