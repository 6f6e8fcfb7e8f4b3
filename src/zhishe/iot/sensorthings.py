"""The OGC SensorThings API v1.1 at ``/sensorthings/v1.1``: the read API over Things (devices),
Locations and FeaturesOfInterest (their sites), HistoricalLocations, Datastreams, Sensors,
ObservedProperties and Observations (readings), with ``$filter``, ``$orderby``, ``$top``,
``$skip``, ``$count``, ``$select``, ``$expand`` and ``@iot.nextLink`` (``zhishe.iot.odata``); and
the create side for readings: ``POST Observations``, ``POST Datastreams(<id>)/Observations`` and
the data-array extension's ``POST CreateObservations``.

Every request needs a login or a token: these are internal data. An actor sees the sites
``zhishe.iot.service.site_access`` gives them with detail (their own household; their
organisation's assets, and households that consented), and everything under them; each read is
audited. Observations are the readings still in the database (``ZHISHE_IOT_HOT_DAYS`` after they
reach the lake); older history is read through ``/api/v1/iot/datastreams/{id}/series``.
MultiDatastreams are not served (404).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import ColumnElement, FromClause, Select, false, func, literal, or_, select, true
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, can
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import request_actor
from zhishe.core.errors import Invalid, NotFound, Unauthenticated
from zhishe.core.web import routing
from zhishe.iot import ingest, odata, payloads
from zhishe.iot.api import read_body, store_committed
from zhishe.iot.models import Datastream, Device, ObservedProperty, Reading, Sensor, Site, SiteMember
from zhishe.iot.odata import EntityTable, Link, QueryOptions, SchemaResolver

__all__ = ["router"]

router = APIRouter(prefix="/sensorthings/v1.1", tags=["sensorthings"])

PREFIX = "/sensorthings/v1.1"
_CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
]
_SETS = (
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)

_sites = Site.__table__
_devices = Device.__table__
_streams = Datastream.__table__
_sensors = Sensor.__table__
_properties = ObservedProperty.__table__
_readings = Reading.__table__
#: Each datastream with the site of its device: how an Observation reaches its FeatureOfInterest.
_stream_sites = (
    select(_streams.c.id, _devices.c.site_id)
    .join(_devices, _devices.c.id == _streams.c.device_id)
    .subquery("stream_sites")
)


def _literal(value: str) -> Callable[[FromClause, Any], ColumnElement[Any]]:
    return lambda _table, _hint: literal(value)


TABLES: dict[str, EntityTable] = {
    "Thing": EntityTable(_devices, columns={"properties": "properties"}),
    "Location": EntityTable(
        _sites, columns={"description": "code", "encodingType": _literal("application/geo+json")}
    ),
    "HistoricalLocation": EntityTable(_devices, columns={"time": "created_at"}),
    "Datastream": EntityTable(_streams, columns={"observationType": "observation_type"}),
    "Sensor": EntityTable(_sensors, columns={"encodingType": "encoding_type", "metadata": "meta"}),
    "ObservedProperty": EntityTable(_properties),
    "Observation": EntityTable(
        _readings, columns={"phenomenonTime": "time", "resultTime": "time", "result": "value"}
    ),
    "FeatureOfInterest": EntityTable(
        _sites, columns={"description": "code", "encodingType": _literal("application/geo+json")}
    ),
}
LINKS: dict[tuple[str, str], Link] = {
    ("Thing", "Datastreams"): Link("id", "device_id"),
    ("Thing", "Locations"): Link("site_id", "id"),
    ("Thing", "HistoricalLocations"): Link("id", "id"),
    ("Location", "Things"): Link("id", "site_id"),
    ("Location", "HistoricalLocations"): Link("id", "site_id"),
    ("HistoricalLocation", "Thing"): Link("id", "id"),
    ("HistoricalLocation", "Locations"): Link("site_id", "id"),
    ("Datastream", "Thing"): Link("device_id", "id"),
    ("Datastream", "Sensor"): Link("sensor_id", "id"),
    ("Datastream", "ObservedProperty"): Link("observed_property_id", "id"),
    ("Datastream", "Observations"): Link("id", "datastream_id"),
    ("Sensor", "Datastreams"): Link("id", "sensor_id"),
    ("ObservedProperty", "Datastreams"): Link("id", "observed_property_id"),
    ("Observation", "Datastream"): Link("datastream_id", "id"),
    ("Observation", "FeatureOfInterest"): Link(
        "datastream_id", "id", via=_stream_sites, via_source="id", via_target="site_id"
    ),
    ("FeatureOfInterest", "Observations"): Link(
        "id", "datastream_id", via=_stream_sites, via_source="site_id", via_target="id"
    ),
}


def _moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _point(lat: float | None, lon: float | None) -> dict[str, Any] | None:
    return None if lat is None or lon is None else {"type": "Point", "coordinates": [lon, lat]}


def _visible_sites(session: Session, actor: Actor) -> ColumnElement[bool]:
    """Which sites the actor sees with detail, as a condition on ``iot_sites``."""
    if actor.is_platform_admin:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if actor.user_id is not None:
        conditions.append(
            _sites.c.id.in_(select(SiteMember.site_id).where(SiteMember.user_id == actor.user_id))
        )
    if actor.org_id is not None and can(actor, "iot.read", org_id=actor.org_id):
        conditions.append(
            (_sites.c.org_id == actor.org_id)
            & ((_sites.c.kind != "household") | (_sites.c.detail_consent == true()))
        )
    return or_(*conditions) if conditions else false()


@dataclass
class _Context:
    session: Session
    actor: Actor
    base: str
    sites: Select[Any]

    def visible(self, entity: str, table: FromClause) -> ColumnElement[bool]:
        """The visibility condition of ``entity`` rows in ``table``."""
        site_ids = self.sites
        devices = select(_devices.c.id).where(_devices.c.site_id.in_(site_ids))
        streams = select(_streams.c.id).where(_streams.c.device_id.in_(devices))
        match entity:
            case "Thing" | "HistoricalLocation":
                return table.c.site_id.in_(site_ids)
            case "Location" | "FeatureOfInterest":
                return table.c.id.in_(site_ids)
            case "Datastream":
                return table.c.device_id.in_(devices)
            case "Observation":
                return table.c.datastream_id.in_(streams)
        return true()  # Sensors and ObservedProperties describe kinds, not anyone's data


def _context(session: Session, actor: Actor, request: Request) -> _Context:
    base = str(request.base_url).rstrip("/") + PREFIX
    sites = select(_sites.c.id).where(_visible_sites(session, actor))
    return _Context(session=session, actor=actor, base=base, sites=sites)


# --- entities as JSON --------------------------------------------------------------------------


def _entity_json(ctx: _Context, kind: odata.EntityType, row: Any, options: QueryOptions) -> dict[str, Any]:
    fields: dict[str, Any]
    match kind.name:
        case "Thing":
            fields = {
                "name": row.name,
                "description": row.description or row.kind.replace("_", " "),
                "properties": {"kind": row.kind, "code": row.code, **(row.properties or {})},
            }
        case "Location":
            fields = {
                "name": row.name,
                "description": f"{row.kind} {row.code}",
                "encodingType": "application/geo+json",
                "location": _point(row.lat, row.lon),
            }
        case "FeatureOfInterest":
            fields = {
                "name": row.name,
                "description": f"{row.kind} {row.code}",
                "encodingType": "application/geo+json",
                "feature": _point(row.lat, row.lon),
            }
        case "HistoricalLocation":
            fields = {"time": _moment(row.created_at)}
        case "Datastream":
            fields = {
                "name": row.name,
                "description": row.description,
                "unitOfMeasurement": {
                    "name": row.unit_name,
                    "symbol": row.unit_symbol,
                    "definition": row.unit_definition,
                },
                "observationType": row.observation_type,
                "properties": {"key": row.key, "kind": row.kind, "phase": row.phase, "room": row.room},
            }
        case "Sensor":
            fields = {
                "name": row.name,
                "description": row.description,
                "encodingType": row.encoding_type,
                "metadata": row.meta,
            }
        case "ObservedProperty":
            fields = {"name": row.name, "definition": row.definition, "description": row.description}
        case _:  # Observation
            kind_of = ctx.session.get(Datastream, row.datastream_id)
            result: Any = bool(row.value) if kind_of is not None and kind_of.kind == "event" else row.value
            fields = {"phenomenonTime": _moment(row.time), "resultTime": _moment(row.time), "result": result}
    out: dict[str, Any] = {}
    chosen = set(options.select)
    if not chosen or "id" in chosen:
        out["@iot.id"] = row.id
    if not chosen or "@iot.selfLink" in chosen:
        out["@iot.selfLink"] = odata.self_link(ctx.base, kind.set_name, row.id)
    for name, value in fields.items():
        if not chosen or name in chosen:
            out[name] = value
    expanded = {item.navigation for item in options.expand}
    for navigation in kind.navigation:
        if (kind.name, navigation) not in LINKS or navigation in expanded:
            continue
        if not chosen or navigation in chosen:
            out[f"{navigation}@iot.navigationLink"] = odata.navigation_link(
                ctx.base, kind.set_name, row.id, navigation
            )
    for item in options.expand:
        _expand(ctx, kind, row, item, out)
    return out


def _expand(ctx: _Context, kind: odata.EntityType, row: Any, item: odata.Expand, out: dict[str, Any]) -> None:
    target = kind.target_of(item.navigation)
    link = LINKS.get((kind.name, item.navigation))
    if target is None or link is None:
        raise odata.bad("$expand", f"{kind.name}/{item.navigation} cannot be expanded on this server")
    target_type, collection = target
    table = TABLES[target_type.name].table
    source = TABLES[kind.name].table
    condition = _related(source, row, link, table)
    if collection:
        rows, count, more = _page(ctx, target_type, item.options, condition)
        out[item.navigation] = [_entity_json(ctx, target_type, r, item.options) for r in rows]
        if item.options.count:
            out[f"{item.navigation}@iot.count"] = count
        following = odata.expand_next_link(
            ctx.base, entity_set=kind.set_name, entity_id=row.id, item=item, skip=item.options.skip, more=more
        )
        if following:
            out[f"{item.navigation}@iot.nextLink"] = following
    else:
        found = ctx.session.execute(
            select(table).where(condition, ctx.visible(target_type.name, table)).limit(1)
        ).first()
        out[item.navigation] = _entity_json(ctx, target_type, found, item.options) if found else None


def _related(source: FromClause, row: Any, link: Link, target: FromClause) -> ColumnElement[bool]:
    """The condition on ``target`` rows linked to ``row`` of ``source``."""
    key = getattr(row, link.source_key)
    column: ColumnElement[Any] = target.c[link.target_key]
    via = link.via
    condition: ColumnElement[bool] = (
        column == key
        if via is None
        else column.in_(select(via.c[link.via_target]).where(via.c[link.via_source] == key))
    )
    return condition


def _page(
    ctx: _Context, kind: odata.EntityType, options: QueryOptions, condition: ColumnElement[bool] | None = None
) -> tuple[list[Any], int | None, bool]:
    """One page of ``kind`` under ``options`` (and ``condition``): rows, the count if asked, more?"""
    table = TABLES[kind.name].table
    where = ctx.visible(kind.name, table)
    if condition is not None:
        where = where & condition
    if options.filter is not None:
        resolver = SchemaResolver(entity=kind.set_name, tables=TABLES, links=LINKS)
        where = where & odata.compile_filter(options.filter, resolver)
    query = select(table).where(where)
    resolver = SchemaResolver(entity=kind.set_name, tables=TABLES, links=LINKS)
    order = odata.compile_orderby(options.orderby, resolver) if options.orderby else []
    default = [table.c.time.desc()] if kind.name == "Observation" and not options.orderby else []
    query = query.order_by(*order, *default, table.c.id).offset(options.skip).limit(options.top + 1)
    rows = list(ctx.session.execute(query).all())
    more = len(rows) > options.top
    count = None
    if options.count:
        count = int(ctx.session.scalar(select(func.count()).select_from(table).where(where)) or 0)
    return rows[: options.top], count, more


# --- routes --------------------------------------------------------------------------------------


def _actor(session: Session, request: Request) -> Actor:
    actor = request_actor(request, session)
    if actor is None:
        raise Unauthenticated("log in or send 'Authorization: Bearer <token>'")
    return actor


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _read(request: Request, path: str) -> Response:
    session = get_sessionmaker(get_settings().database_url)()
    try:
        actor = _actor(session, request)
        ctx = _context(session, actor, request)
        answer = _answer(ctx, request, path)
        record(
            session=session,
            actor=actor,
            action="iot.sensorthings.read",
            object_type="sensorthings",
            object_id=path[:100] or "/",
            detail={"query": str(request.url.query)[:300]},
        )
        session.commit()
        return answer
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _answer(ctx: _Context, request: Request, path: str) -> Response:
    resource = odata.parse_path(path)
    if resource.kind == "service":
        return _json(
            {
                "value": [{"name": name, "url": f"{ctx.base}/{name}"} for name in _SETS],
                "serverSettings": {"conformance": _CONFORMANCE},
            }
        )
    first = resource.segments[0]
    if first.entity_set == "MultiDatastreams":
        raise NotFound("MultiDatastreams are not served here", detail={"path": path})
    kind = odata.entity_type(first.entity)
    condition: ColumnElement[bool] | None = None
    row: Any = None
    table = TABLES[kind.name].table
    if first.id is not None:
        condition = table.c.id == first.id
    for segment in resource.segments[1:]:
        row = _one(ctx, kind, condition, path)
        target = kind.target_of(segment.name)
        link = LINKS.get((kind.name, segment.name))
        if target is None or link is None:
            raise NotFound(f"{kind.name} has no {segment.name}", detail={"path": path})
        next_table = TABLES[target[0].name].table
        condition = _related(TABLES[kind.name].table, row, link, next_table)
        if segment.id is not None:
            condition = condition & (next_table.c.id == segment.id)
        kind, table = target[0], next_table
    last = resource.segments[-1]
    collection = last.collection
    options = odata.parse_options(request.query_params, entity=kind.set_name, default_top=100, max_top=10_000)
    if resource.kind == "ref":
        if collection:
            rows, count, more = _page(ctx, kind, options, condition)
            body: dict[str, Any] = {
                "value": [{"@iot.selfLink": odata.self_link(ctx.base, kind.set_name, r.id)} for r in rows]
            }
            return _json(body)
        found = _one(ctx, kind, condition, path)
        return _json({"@iot.selfLink": odata.self_link(ctx.base, kind.set_name, found.id)})
    if collection:
        rows, count, more = _page(ctx, kind, options, condition)
        body = {}
        if options.count:
            body["@iot.count"] = count
        following = odata.next_link(str(request.url), top=options.top, skip=options.skip, more=more)
        if following:
            body["@iot.nextLink"] = following
        body["value"] = [_entity_json(ctx, kind, r, options) for r in rows]
        return _json(body)
    found = _one(ctx, kind, condition, path)
    entity = _entity_json(
        ctx, kind, found, options if not resource.property else QueryOptions(entity=kind.set_name)
    )
    if resource.property:
        name = resource.property[0]
        if name not in entity and name != "id":
            raise NotFound(f"{kind.name} has no property {name}", detail={"path": path})
        value: Any = entity.get("@iot.id") if name == "id" else entity[name]
        for member in resource.property[1:]:
            if not isinstance(value, dict) or member not in value:
                raise NotFound(
                    f"{'/'.join(resource.property)} is not a member of {kind.name}", detail={"path": path}
                )
            value = value[member]
        if resource.value:
            return Response("" if value is None else str(value), media_type="text/plain")
        return _json({resource.property[-1]: value})
    return _json(entity)


def _one(ctx: _Context, kind: odata.EntityType, condition: ColumnElement[bool] | None, path: str) -> Any:
    table = TABLES[kind.name].table
    where = ctx.visible(kind.name, table)
    if condition is not None:
        where = where & condition
    found = ctx.session.execute(select(table).where(where).limit(1)).first()
    if found is None:
        raise NotFound(f"no such {kind.name}", detail={"path": path})
    return found


@router.get("", include_in_schema=False)
@router.get("/", summary="SensorThings service root")
async def service_root(request: Request) -> Response:
    """The entity sets and the conformance classes served."""
    return await run_in_threadpool(_read, request, "")


def _store_create(request: Request, readings: list[ingest.Incoming]) -> ingest.StoreResult:
    return store_committed(readings, authorization=request.headers.get("authorization", ""))


@router.post("/CreateObservations", status_code=201, summary="Create observations (data-array extension)")
async def create_observations(request: Request) -> Response:
    """The data-array extension: per group a Datastream, its components and rows. The answer lists,
    in order, each new Observation's selfLink, or ``"error"`` (with the reason beside it)."""
    body = await read_body(request)
    groups = payloads.parse_create_observations(body)
    readings = [r for _, _, items in groups for r in items]
    result = await run_in_threadpool(_store_create, request, readings)
    return _json(await run_in_threadpool(_links_for, request, readings, result), status=201)


def _links_for(request: Request, readings: list[ingest.Incoming], result: ingest.StoreResult) -> list[Any]:
    """SelfLinks of the stored readings, in input order, and "error" for the rejected ones."""
    base = str(request.base_url).rstrip("/") + PREFIX
    rejected = {r.index: r.reason for r in result.rejected}
    session = get_sessionmaker(get_settings().database_url)()
    try:
        ids: dict[tuple[int, datetime], int] = {}
        for stream, moment in result.accepted:
            found = session.scalar(
                select(Reading.id).where(Reading.datastream_id == stream, Reading.time == moment)
            )
            if found is not None:
                ids[(stream, moment)] = int(found)
        accepted = iter(result.accepted)
        out: list[Any] = []
        for item in readings:
            if item.index in rejected:
                out.append("error")
                continue
            key = next(accepted)
            out.append(odata.self_link(base, "Observations", ids[key]) if key in ids else "error")
        return out
    finally:
        session.close()


@router.post("/Observations", status_code=201, summary="Create one Observation")
async def create_observation(request: Request) -> Response:
    """One Observation with its ``Datastream: {"@iot.id": n}``; the answer is the created entity."""
    body = await read_body(request)
    data = payloads.parse_single_observation(body)
    return await _create_one(request, data)


@router.post(
    "/Datastreams({datastream_id})/Observations",
    status_code=201,
    summary="Create one Observation of a Datastream",
)
async def create_datastream_observation(datastream_id: int, request: Request) -> Response:
    """One Observation of the Datastream in the path."""
    body = await read_body(request)
    return await _create_one(request, payloads.parse_observation(body, datastream_id)[:1])


async def _create_one(request: Request, readings: list[ingest.Incoming]) -> Response:
    result = await run_in_threadpool(_store_create, request, readings)
    if result.rejected:
        raise Invalid(result.rejected[0].reason, detail={"reason": result.rejected[0].reason})
    [link] = await run_in_threadpool(_links_for, request, readings, result)
    entity = await run_in_threadpool(_created, request, link)
    response = _json(entity, status=201)
    response.headers["Location"] = link
    return response


def _created(request: Request, link: str) -> dict[str, Any]:
    """The Observation just created, as the answer to its creator (a device may not read the API)."""
    reading_id = int(link.rsplit("(", 1)[1].rstrip(")"))
    session = get_sessionmaker(get_settings().database_url)()
    try:
        row = session.execute(select(_readings).where(_readings.c.id == reading_id)).one()
        base = str(request.base_url).rstrip("/") + PREFIX
        ctx = _Context(session=session, actor=None, base=base, sites=select(_sites.c.id))  # type: ignore[arg-type]
        kind = odata.entity_type("Observations")
        return _entity_json(ctx, kind, row, QueryOptions(entity="Observations"))
    finally:
        session.close()


@router.get(f"/{{path:{routing.REST}}}", summary="SensorThings read API")
async def read(path: str, request: Request) -> Response:
    """Any resource path of the read API: ``Things``, ``Datastreams(1)/Observations``,
    ``Observations(5)/result/$value``, ``Things(1)/Datastreams/$ref``, with the query options."""
    return await run_in_threadpool(_read, request, path)
