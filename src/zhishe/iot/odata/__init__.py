"""The query-option layer of the SensorThings API v1.1 read API (OGC 18-088 clause 9.3, and the
OData 4.0 subset it adopts): parse ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$count``,
``$select`` and ``$expand`` into typed trees, compile filters and orderings to SQLAlchemy Core
for SQLite and PostgreSQL, parse resource paths, and build self, navigation and next links.

A route uses it like this::

    opts = odata.parse_options(request.query_params, entity="Datastreams", default_top=100, max_top=10_000)
    resolver = odata.SchemaResolver(entity="Datastreams", tables=TABLES, links=LINKS)
    stmt = (
        select(datastreams)
        .where(odata.compile_filter(opts.filter, resolver))
        .order_by(*odata.compile_orderby(opts.orderby, resolver), datastreams.c.id)
        .offset(opts.skip)
        .limit(opts.top + 1)
    )
    rows = session.execute(stmt).all()
    more = len(rows) > opts.top
    link = odata.next_link(str(request.url), top=opts.top, skip=opts.skip, more=more)

Parsing (``odata.options``, ``odata.parser``):

- ``parse_options(params, *, entity, default_top=100, max_top=10_000) -> QueryOptions``: every
  system query option; ``params`` is a query string, a mapping, pairs or Starlette's
  ``QueryParams``. ``QueryOptions.top`` is the page size to use (``$top``, else the default, never
  above ``max_top``); ``expand`` holds ``Expand(navigation, collection, options)`` items whose
  ``options`` are a nested ``QueryOptions`` over the target entity set.
- ``parse_filter(text, *, entity) -> Expr`` and ``parse_orderby(text, *, entity) ->
  tuple[OrderBy, ...]``; ``parse_select``, ``parse_expand``, ``parse_top``, ``parse_skip`` and
  ``parse_count`` parse one option each. ``render(expr)`` writes a tree back as OData text.
- ``parse_path(path) -> ResourcePath``: ``/Things(1)/Datastreams``, ``/Observations(12)/result``,
  ``…/name/$value``, ``…/Observations/$ref``.

Compiling (``odata.compile``, ``odata.resolve``):

- ``compile_filter(expr, resolver, *, now=None) -> ColumnElement[bool]`` and
  ``compile_orderby(keys, resolver) -> list[ColumnElement]`` (nulls first ascending, last
  descending; append the id yourself as the final key).
- A ``Resolver`` maps a property path to SQL: ``column(path, *, hint, ordering)`` and
  ``finish(predicate)``. ``hint`` says what the expression expects (``number`` when compared with
  ``5``) so ``result`` can be read from a numeric or a text column. ``SchemaResolver`` is a ready
  resolver over ``EntityTable``s and ``Link``s: navigation paths become ``EXISTS (SELECT … LEFT
  JOIN …)`` in filters and correlated scalar subqueries in orderings; JSON members
  (``properties/site``) are read with ``json_member``. A property held as two columns is a
  ``TimeInterval(start, end)``.

Links (``odata.links``): ``self_link``, ``navigation_link``, ``next_link(url, *, top, skip,
more)`` and ``expand_next_link``.

Errors: every refusal is a ``QueryError`` (an ``Invalid``, HTTP 400) whose message starts with the
option (``$filter: unexpected ')' at position 17``) and whose ``detail["option"]`` names it;
``UnsupportedOption`` (501) for options and functions this server does not implement: other
``$`` options, ``$select=distinct:…``, and the geospatial functions, which are parsed but not
compiled.
"""

from __future__ import annotations

from zhishe.iot.odata.ast import (
    Arith,
    Call,
    Compare,
    Duration,
    Expr,
    Geography,
    Literal,
    Logic,
    Negate,
    Not,
    Path,
    TimeRange,
    paths,
    render,
)
from zhishe.iot.odata.compile import compile_filter, compile_orderby
from zhishe.iot.odata.errors import QueryError, UnsupportedOption, bad
from zhishe.iot.odata.links import (
    ResourcePath,
    Segment,
    expand_next_link,
    navigation_link,
    next_link,
    options_query,
    parse_path,
    self_link,
)
from zhishe.iot.odata.model import ENTITY_SETS, ENTITY_TYPES, EntityType, entity_type
from zhishe.iot.odata.options import (
    Expand,
    QueryOptions,
    parse_count,
    parse_expand,
    parse_options,
    parse_select,
    parse_skip,
    parse_top,
)
from zhishe.iot.odata.parser import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, OrderBy, parse_filter, parse_orderby
from zhishe.iot.odata.resolve import EntityTable, Link, Resolver, SchemaResolver, TimeInterval, ValueKind
from zhishe.iot.odata.sqlfuncs import json_member

__all__ = [
    "ENTITY_SETS",
    "ENTITY_TYPES",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Arith",
    "Call",
    "Compare",
    "Duration",
    "EntityTable",
    "EntityType",
    "Expand",
    "Expr",
    "Geography",
    "Link",
    "Literal",
    "Logic",
    "Negate",
    "Not",
    "OrderBy",
    "Path",
    "QueryError",
    "QueryOptions",
    "Resolver",
    "ResourcePath",
    "SchemaResolver",
    "Segment",
    "TimeInterval",
    "TimeRange",
    "UnsupportedOption",
    "ValueKind",
    "bad",
    "compile_filter",
    "compile_orderby",
    "entity_type",
    "expand_next_link",
    "json_member",
    "navigation_link",
    "next_link",
    "options_query",
    "parse_count",
    "parse_expand",
    "parse_filter",
    "parse_options",
    "parse_orderby",
    "parse_path",
    "parse_select",
    "parse_skip",
    "parse_top",
    "paths",
    "render",
    "self_link",
]
