"""How compiled expressions reach the caller's tables: the ``Resolver`` protocol, and
``SchemaResolver``, a resolver built from a declarative description of tables and joins.

A resolver turns a property path (``name``, ``Datastream/ObservedProperty/name``,
``properties/site``) into a SQL value and is told the kind of value the expression expects there
(``hint``: ``number`` when the path is compared with ``5``, ``string`` when with ``'5'``), so an
Observation's ``result`` can come from a numeric column for numbers and from a JSON or text column
for the rest. Once the whole ``$filter`` is compiled, ``finish`` may wrap it: ``SchemaResolver``
turns a filter over navigation paths into ``EXISTS (SELECT … FROM root AS r LEFT JOIN … WHERE
r.id = root.id AND …)`` (a key lookup per row, so a page stops early), where one join per
navigation path prefix is shared by the whole filter, so ``Datastreams/Observations/resultTime ge A
and Datastreams/Observations/resultTime le B`` means one Observation in that range (the reading of
the standard's example 4 in clause 9.3.3.5.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import JSON, ColumnElement, FromClause, exists, select
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.types import TypeDecorator

from zhishe.iot.odata.ast import Path
from zhishe.iot.odata.errors import bad
from zhishe.iot.odata.model import EntityType, entity_type
from zhishe.iot.odata.sqlfuncs import json_member

__all__ = [
    "ColumnSpec",
    "EntityTable",
    "Link",
    "Operand",
    "Resolver",
    "SchemaResolver",
    "TimeInterval",
    "ValueKind",
]

#: The kinds of value in a compiled expression.
ValueKind = Literal[
    "string", "number", "boolean", "datetime", "date", "time", "duration", "geometry", "json", "null", "any"
]


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """A time interval property held in two columns: ``start <= t < end``."""

    start: ColumnElement[Any]
    end: ColumnElement[Any]


Operand = ColumnElement[Any] | TimeInterval


class Resolver(Protocol):
    """What ``compile_filter`` and ``compile_orderby`` need from the caller."""

    def column(self, path: Path, *, hint: ValueKind | None, ordering: bool) -> Operand:
        """The SQL value of ``path``; ``ordering`` is True for an ``$orderby`` key, which must have
        one value per row. Raise ``QueryError`` (``odata.bad``) for a path that cannot be served."""
        ...

    def finish(self, predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        """The compiled ``$filter``, wrapped as the joins its paths need; often ``predicate``."""
        ...


#: A property's column: a column name of the entity's table, or a function of (the table or its
#: alias, the hint) that returns a SQL value or a ``TimeInterval``.
ColumnSpec = str | Callable[[FromClause, "ValueKind | None"], Operand]


@dataclass(frozen=True, slots=True)
class EntityTable:
    """Where an entity type's rows live: the table, its key column and its property columns.

    Properties missing from ``columns`` are looked up as same-named columns of ``table``.
    """

    table: FromClause
    key: str = "id"
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Link:
    """How a navigation property joins: ``source.<source_key> = target.<target_key>``, or, through an
    association table ``via``: ``source.<source_key> = via.<via_source>`` and
    ``via.<via_target> = target.<target_key>``."""

    source_key: str
    target_key: str
    via: FromClause | None = None
    via_source: str = ""
    via_target: str = ""

    def joins(self, source: FromClause, target: FromClause) -> list[tuple[FromClause, ColumnElement[bool]]]:
        """The (table, on clause) pairs that lead from ``source`` to ``target``."""
        if self.via is None:
            return [(target, source.c[self.source_key] == target.c[self.target_key])]
        via = self.via.alias()
        return [
            (via, source.c[self.source_key] == via.c[self.via_source]),
            (target, via.c[self.via_target] == target.c[self.target_key]),
        ]


def _is_json(column: ColumnElement[Any]) -> bool:
    type_ = column.type
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return isinstance(type_, JSON)


class SchemaResolver:
    """A ``Resolver`` over tables described by ``EntityTable``s and ``Link``s.

    ``tables`` is keyed by entity type name (``Datastream``), ``links`` by (entity type name,
    navigation property). Use one resolver per compiled ``$filter``.
    """

    def __init__(
        self,
        *,
        entity: str,
        tables: Mapping[str, EntityTable],
        links: Mapping[tuple[str, str], Link],
    ) -> None:
        self.entity: EntityType = entity_type(entity)
        self.tables = tables
        self.links = links
        if self.entity.name not in tables:
            raise ValueError(f"no table for {self.entity.name}")
        self.root = tables[self.entity.name]
        #: navigation prefix → (alias, its entity table)
        self._aliases: dict[tuple[str, ...], tuple[FromClause, EntityTable]] = {}
        self._order: list[tuple[tuple[str, ...], Link]] = []

    def _table_of(self, option: str, target: EntityType) -> EntityTable:
        found = self.tables.get(target.name)
        if found is None:
            raise bad(option, f"{target.set_name} cannot be queried on this server")
        return found

    def _link(self, option: str, source: EntityType, navigation: str) -> tuple[Link, EntityType, bool]:
        target = source.target_of(navigation)
        link = self.links.get((source.name, navigation))
        if target is None or link is None:
            raise bad(option, f"{source.name}/{navigation} cannot be queried on this server")
        return link, target[0], target[1]

    def _value(
        self, option: str, path: Path, table: FromClause, spec: EntityTable, hint: ValueKind | None
    ) -> Operand:
        name = path.property[0]
        column_spec: ColumnSpec | None = spec.columns.get(name)
        if column_spec is None and name in table.c:
            column_spec = name
        if column_spec is None:
            raise bad(option, f"property {name!r} of {path.entity} cannot be queried on this server")
        value = table.c[column_spec] if isinstance(column_spec, str) else column_spec(table, hint)
        members = path.property[1:]
        if not members:
            return value
        if isinstance(value, TimeInterval) or not _is_json(value):
            raise bad(option, f"property {name!r} of {path.entity} has no members")
        return json_member(value, members, hint)

    def column(self, path: Path, *, hint: ValueKind | None, ordering: bool) -> Operand:
        """See ``Resolver.column``."""
        option = "$orderby" if ordering else "$filter"
        if not path.navigation:
            return self._value(option, path, self.root.table, self.root, hint)
        if ordering:
            return self._ordering_value(option, path, hint)
        source = self.entity
        for index, navigation in enumerate(path.navigation):
            prefix = path.navigation[: index + 1]
            link, target, _collection = self._link(option, source, navigation)
            if prefix not in self._aliases:
                spec = self._table_of(option, target)
                self._aliases[prefix] = (spec.table.alias(), spec)
                self._order.append((prefix, link))
            source = target
        alias, spec = self._aliases[path.navigation]
        return self._value(option, path, alias, spec, hint)

    def _ordering_value(self, option: str, path: Path, hint: ValueKind | None) -> Operand:
        source, parent = self.entity, self.root.table
        joins: list[tuple[FromClause, ColumnElement[bool]]] = []
        spec = self.root
        for navigation in path.navigation:
            link, target, collection = self._link(option, source, navigation)
            if collection:
                raise bad(option, f"cannot order by {'/'.join(path.segments)}: {navigation} is a collection")
            spec = self._table_of(option, target)
            alias = spec.table.alias()
            joins.extend(link.joins(parent, alias))
            source, parent = target, alias
        value = self._value(option, path, parent, spec, hint)
        if isinstance(value, TimeInterval):
            value = value.start
        first, first_on = joins[0]
        frm: FromClause = first
        for table, on in joins[1:]:
            frm = frm.join(table, on)
        return select(value).select_from(frm).where(first_on).limit(1).scalar_subquery()

    def finish(self, predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        """See ``Resolver.finish``."""
        if not self._order:
            return predicate
        inner = self.root.table.alias()
        frm: FromClause = inner
        parents: dict[tuple[str, ...], FromClause] = {(): inner}
        for prefix, link in self._order:
            alias, _spec = self._aliases[prefix]
            for table, on in link.joins(parents[prefix[:-1]], alias):
                frm = frm.outerjoin(table, on)
            parents[prefix] = alias
        self._aliases, self._order = {}, []
        adapted = ClauseAdapter(inner).traverse(predicate)
        key = self.root.key
        return exists(
            select(inner.c[key]).select_from(frm).where(inner.c[key] == self.root.table.c[key], adapted)
        )
