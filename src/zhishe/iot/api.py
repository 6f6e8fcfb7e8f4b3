"""JSON routes of IoT under ``/api/v1/iot``: sites, residents and consents, devices and their tokens,
readings in (the simple batch and ThingsBoard telemetry), and series, latest values and aggregates
out. The SensorThings routes are in ``sensorthings.py``.

Ingestion routes commit before they answer: a 2xx means the readings are durably stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zhishe.core.accounts import service as accounts
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import TooLarge, Unauthenticated
from zhishe.core.i18n import T
from zhishe.core.pagination import decode_after, encode_after
from zhishe.core.web.links import link_next
from zhishe.iot import ingest, payloads, reads
from zhishe.iot import service as iot
from zhishe.iot.models import Device
from zhishe.iot.schemas import (
    ConsentUpdate,
    DatastreamCreate,
    DatastreamRead,
    DeviceCreate,
    DeviceCreated,
    DeviceRead,
    MemberCreate,
    SeriesPoint,
    SeriesRead,
    SiteCreate,
    SitePage,
    SiteRead,
)

__all__ = ["read_body", "router"]

router = APIRouter(prefix="/api/v1/iot", tags=["iot"])

_INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored (or already stored); rejected readings are listed with their reasons.",
        "content": {
            "application/json": {
                "example": {
                    "received": 2,
                    "stored": 1,
                    "duplicates": 0,
                    "rejected": [
                        {"index": 1, "reason": "value: the value is not a finite number (NaN or infinite)"}
                    ],
                }
            }
        },
    },
    413: {"description": "More readings than ZHISHE_IOT_MAX_BATCH, or a body larger than the upload limit."},
}


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 past the upload limit (checked while reading)."""
    limit = get_settings().max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            T("the body is larger than {mb} MiB", mb=limit // (1024 * 1024)), detail={"limit": limit}
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                T("the body is larger than {mb} MiB", mb=limit // (1024 * 1024)), detail={"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _sender(session: Session, authorization: str) -> tuple[Device | None, Actor | None]:
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise Unauthenticated(T("send 'Authorization: Bearer <token>' with a device token or an API token"))
    if value.startswith(iot.TOKEN_PREFIX):
        return iot.authenticate_device(session=session, token=value), None
    return None, accounts.authenticate_token(session=session, secret=value)


def store_committed(
    readings: list[ingest.Incoming], *, device_token: str | None = None, authorization: str | None = None
) -> ingest.StoreResult:
    """Authenticate, store and commit one batch in a session of its own (run off the event loop)."""
    session = get_sessionmaker(get_settings().database_url)()
    try:
        device: Device | None
        actor: Actor | None
        if device_token is not None:
            device, actor = iot.authenticate_device(session=session, token=device_token), None
        else:
            device, actor = _sender(session, authorization or "")
        result = ingest.store(session=session, readings=readings, device=device, actor=actor)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@router.post("/readings", responses=_INGEST_RESPONSES, summary="Send a batch of readings")
async def post_readings(request: Request) -> Response:
    """Readings as a JSON array of ``{datastream, time, value}`` (or ``{"readings": [...]}``), or NDJSON
    (``Content-Type: application/x-ndjson``). Authenticated by a device token (its own datastreams
    only) or an API token with the ``iot:write`` scope."""
    body = await read_body(request)
    ndjson = "ndjson" in request.headers.get("content-type", "")
    readings = payloads.parse_batch(body, ndjson=ndjson)
    result = await run_in_threadpool(
        store_committed, readings, authorization=request.headers.get("authorization", "")
    )
    return _json(result.as_dict())


@router.post("/telemetry/{device_token}", responses=_INGEST_RESPONSES, summary="ThingsBoard-style telemetry")
async def post_telemetry(device_token: str, request: Request) -> Response:
    """``{"ts": <epoch ms>, "values": {"<key>": value}}``, a flat ``{"<key>": value}`` (time of arrival)
    or an array of either; keys are the device's datastream keys."""
    if len(device_token) > 200:
        raise Unauthenticated(T("the device token is not valid"))
    body = await read_body(request)
    readings = payloads.parse_telemetry(body)
    result = await run_in_threadpool(store_committed, readings, device_token=device_token)
    return _json(result.as_dict())


# --- sites -------------------------------------------------------------------------------------


@router.get("/sites", response_model=SitePage)
def list_sites(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SitePage:
    """Sites you may see: your own household, or your organisation's sites."""
    start = int(decode_after(after) or 0)
    rows = iot.list_sites(session=session, actor=actor, kind=kind, after=start, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    token = encode_after(rows[-1].id) if more and rows else None
    link_next(response, token, {"kind": kind, "limit": limit})
    return SitePage(items=[SiteRead.model_validate(r) for r in rows], next=token)


@router.post("/sites", response_model=SiteRead, status_code=201)
def create_site(site_in: SiteCreate, session: SessionDep, actor: CurrentActor) -> SiteRead:
    """Create a site (a household, building or community asset)."""
    site = iot.create_site(session=session, actor=actor, **site_in.model_dump())
    return SiteRead.model_validate(site)


@router.get("/sites/{site_id}", response_model=SiteRead)
def read_site(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> SiteRead:
    """One site."""
    return SiteRead.model_validate(iot.read_site(session=session, actor=actor, site_id=site_id).site)


@router.post("/sites/{site_id}/members", status_code=204)
def add_member(site_id: IdPath, member: MemberCreate, session: SessionDep, actor: CurrentActor) -> Response:
    """Make a resident a member of a household: they then see its devices and data."""
    iot.add_member(session=session, actor=actor, site_id=site_id, user_id=member.user_id)
    return Response(status_code=204)


@router.post("/sites/{site_id}/consent", response_model=SiteRead)
def set_consent(
    site_id: IdPath, consent: ConsentUpdate, session: SessionDep, actor: CurrentActor
) -> SiteRead:
    """A resident gives or withdraws the household's consents."""
    site = iot.set_consent(
        session=session, actor=actor, site_id=site_id, detail=consent.detail, care=consent.care
    )
    return SiteRead.model_validate(site)


@router.get("/sites/{site_id}/devices", response_model=list[DeviceRead])
def list_devices(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> list[DeviceRead]:
    """A site's devices with their datastreams."""
    return [_device_read(session, d) for d in iot.list_devices(session=session, actor=actor, site_id=site_id)]


@router.get("/sites/{site_id}/latest")
def site_latest(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """The latest reading of each datastream of a site (the hot table)."""
    return [
        {
            "datastream": stream.id,
            "key": stream.key,
            "name": stream.name,
            "unit": stream.unit_symbol,
            "time": latest.time.isoformat() if latest else None,
            "value": latest.value if latest else None,
        }
        for stream, latest in reads.latest_of_site(session=session, actor=actor, site_id=site_id)
    ]


# --- devices -----------------------------------------------------------------------------------


def _device_read(session: Session, device: Device, token: str | None = None) -> Any:
    streams = [
        DatastreamRead.model_validate(s) for s in iot.datastreams_of(session=session, device_id=device.id)
    ]
    data = DeviceRead.model_validate(device).model_dump() | {"datastreams": streams}
    return DeviceCreated(**data, token=token) if token else DeviceRead(**data)


@router.post("/devices", response_model=DeviceCreated, status_code=201)
def create_device(device_in: DeviceCreate, session: SessionDep, actor: CurrentActor) -> Any:
    """Provision a device with the datastreams of its kind; the token is in this answer only."""
    new = iot.create_device(session=session, actor=actor, **device_in.model_dump())
    return _device_read(session, new.device, new.token)


@router.post("/devices/import", response_model=list[DeviceCreated], status_code=201)
async def import_devices(request: Request, session: SessionDep, actor: CurrentActor) -> Any:
    """Provision devices from a CSV body (``site,code,kind[,name,room,phase]``), all or nothing."""
    body = await read_body(request)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        from zhishe.core.errors import Invalid

        raise Invalid(T("the CSV must be UTF-8")) from exc

    def work() -> list[Any]:
        result = iot.import_devices(session=session, actor=actor, text=text)
        return [_device_read(session, n.device, n.token) for n in result.created]

    return await run_in_threadpool(work)


@router.post("/devices/{device_id}/rotate-token", response_model=DeviceCreated)
def rotate_token(device_id: IdPath, session: SessionDep, actor: CurrentActor) -> Any:
    """Give a device a new token; the old one stops working at once."""
    new = iot.rotate_token(session=session, actor=actor, device_id=device_id)
    return _device_read(session, new.device, new.token)


@router.post("/devices/{device_id}/datastreams", response_model=DatastreamRead, status_code=201)
def create_datastream(
    device_id: IdPath, stream_in: DatastreamCreate, session: SessionDep, actor: CurrentActor
) -> Any:
    """Add a datastream to a device."""
    stream = iot.create_datastream(
        session=session, actor=actor, device_id=device_id, **stream_in.model_dump()
    )
    return DatastreamRead.model_validate(stream)


# --- reading back ------------------------------------------------------------------------------


@router.get("/datastreams/{datastream_id}/series", response_model=SeriesRead)
def get_series(
    datastream_id: IdPath,
    session: SessionDep,
    actor: CurrentActor,
    start: Annotated[datetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[datetime, Query(alias="to", description="ISO 8601 with offset")],
    interval: Annotated[str, Query(max_length=8, description="raw, 15min, 1h or 1d")] = "1h",
    agg: Annotated[
        str | None, Query(max_length=8, description="avg, min, max, sum, count, last or delta")
    ] = None,
) -> SeriesRead:
    """A datastream's values for a chart: raw readings, or one value per local bucket."""
    found = reads.series(
        session=session,
        actor=actor,
        datastream_id=datastream_id,
        start=start,
        end=end,
        interval=interval,
        agg=agg,
    )
    return SeriesRead(
        datastream=found.datastream,
        unit=found.unit,
        interval=found.interval,
        agg=found.agg,
        points=[SeriesPoint(time=t, value=v, count=c) for t, v, c in found.points],
    )


@router.get("/orgs/{org_id}/aggregate", response_model=SeriesRead)
def get_aggregate(
    org_id: IdPath,
    session: SessionDep,
    actor: CurrentActor,
    key: Annotated[str, Query(max_length=64, description="datastream key, e.g. energy or power")],
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    interval: Annotated[str, Query(max_length=8)] = "1h",
    parent: Annotated[
        int | None, Query(ge=1, le=2**62, description="only households fed by this site")
    ] = None,
) -> SeriesRead:
    """The sum over an organisation's households (at least 5, or all consenting) per bucket."""
    found = reads.aggregate(
        session=session,
        actor=actor,
        org_id=org_id,
        key=key,
        start=start,
        end=end,
        interval=interval,
        parent_id=parent,
    )
    return SeriesRead(
        datastream=0,
        unit=found.unit,
        interval=found.interval,
        agg=found.agg,
        points=[SeriesPoint(time=t, value=v, count=c) for t, v, c in found.points],
    )
