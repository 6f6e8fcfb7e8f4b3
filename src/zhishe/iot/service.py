"""The rules of IoT provisioning and access: sites, residents, devices and their tokens, datastreams.

Who sees what:

- a resident sees only the household sites they are a member of, with their devices and data;
- staff of the organisation that runs a site see its devices; for a household site they see its
  readings only when the household consented (``detail_consent``), and otherwise only aggregates
  over at least ``MIN_AGGREGATE`` households (``zhishe.iot.reads``);
- platform administrators see everything (audited like everyone).

Devices authenticate with their own token (``zhishe_dev_…``), shown once, stored as a SHA-256 and
rotatable; a rotated token stops working at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize, can
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.iot import kinds
from zhishe.iot.models import Datastream, Device, ObservedProperty, Sensor, Site, SiteMember

__all__ = [
    "MIN_AGGREGATE",
    "TOKEN_PREFIX",
    "DeviceAccess",
    "NewDevice",
    "add_member",
    "authenticate_device",
    "create_datastream",
    "create_device",
    "create_site",
    "datastreams_of",
    "get_datastream_or_raise",
    "get_device_or_raise",
    "get_site_by_code",
    "get_site_or_raise",
    "household_residents",
    "import_devices",
    "list_devices",
    "list_sites",
    "member_site_ids",
    "read_site",
    "rotate_token",
    "set_consent",
    "site_access",
    "stream_ids",
    "streams_at",
]

#: The smallest number of households an operator's aggregate may cover without their consent.
MIN_AGGREGATE = 5
TOKEN_PREFIX = "zhishe_dev_"  # noqa: S105 - the prefix of device tokens, not a secret
_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A device just provisioned or rotated, with its token (shown this once)."""

    device: Device
    token: str


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """How an actor may see a site: ``detail`` (its own readings) or only ``aggregate``."""

    site: Site
    detail: bool
    member: bool


def _check_code(code: str, what: str) -> str:
    code = (code or "").strip()
    if not code or len(code) > 64 or not set(code) <= _CODE_CHARS:
        raise Invalid(
            T(
                "{what} code {code} is not valid: use 1-64 letters, digits, '-', '_' or '.'",
                what=what,
                code=repr(code),
            ),
            detail={"field": "code"},
        )
    return code


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sites -------------------------------------------------------------------------------------


def get_site_or_raise(*, session: Session, site_id: int) -> Site:
    """The site with this id, or NotFound."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(T("there is no site {id}", id=site_id), detail={"site": site_id})
    return site


def get_site_by_code(*, session: Session, code: str) -> Site | None:
    """The site with this code, if any."""
    return session.scalars(select(Site).where(Site.code == code)).one_or_none()


def member_site_ids(*, session: Session, actor: Actor) -> set[int]:
    """The household sites ``actor`` lives at."""
    if actor.user_id is None:
        return set()
    return set(session.scalars(select(SiteMember.site_id).where(SiteMember.user_id == actor.user_id)))


def household_residents(*, session: Session, site_id: int) -> list[int]:
    """The user ids of a household's active residents, oldest account first (for a caller that
    already decided the household may be acted on)."""
    return list(
        session.scalars(
            select(User.id)
            .join(SiteMember, SiteMember.user_id == User.id)
            .where(SiteMember.site_id == site_id, User.role == Role.RESIDENT, User.is_active.is_(True))
            .order_by(User.id)
        )
    )


def site_access(*, session: Session, actor: Actor, site: Site) -> DeviceAccess:
    """How ``actor`` may see ``site``; Forbidden when not at all."""
    member = site.id in member_site_ids(session=session, actor=actor)
    if member:
        return DeviceAccess(site=site, detail=True, member=True)
    authorize(actor, "iot.read", org_id=site.org_id, what=f"site {site.code}")
    detail = site.kind != "household" or site.detail_consent or actor.is_platform_admin
    return DeviceAccess(site=site, detail=detail, member=False)


def read_site(*, session: Session, actor: Actor, site_id: int) -> DeviceAccess:
    """A site as ``actor`` may see it (audited: sites and their devices are internal)."""
    site = get_site_or_raise(session=session, site_id=site_id)
    access = site_access(session=session, actor=actor, site=site)
    record(
        session=session,
        actor=actor,
        action="iot.site.read",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
        detail={"detail": access.detail},
    )
    return access


def list_sites(
    *, session: Session, actor: Actor, kind: str | None = None, after: int = 0, limit: int = 100
) -> list[Site]:
    """Sites ``actor`` may see, by id: their own households, or all of their organisation's."""
    query = select(Site).where(Site.id > after).order_by(Site.id).limit(limit)
    if kind:
        query = query.where(Site.kind == kind)
    if not actor.is_platform_admin:
        own = member_site_ids(session=session, actor=actor)
        if can(actor, "iot.read", org_id=actor.org_id) and actor.org_id is not None:
            query = query.where((Site.org_id == actor.org_id) | Site.id.in_(own))
        else:
            query = query.where(Site.id.in_(own))
    return list(session.scalars(query))


def create_site(
    *,
    session: Session,
    actor: Actor,
    code: str,
    kind: str,
    name: str,
    org_id: int | None = None,
    area_id: int | None = None,
    parent_id: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    properties: dict[str, Any] | None = None,
) -> Site:
    """Create a site run by ``org_id`` (default: the actor's organisation)."""
    org_id = org_id if org_id is not None else actor.org_id
    if org_id is None:
        raise Invalid(T("say which organisation runs the site"), detail={"field": "org_id"})
    accounts.get_org_or_raise(session=session, org_id=org_id)
    authorize(actor, "iot.manage", org_id=org_id, what="sites")
    code = _check_code(code, "site")
    if kind not in kinds.SITE_KINDS:
        raise Invalid(
            T("site kind {kind} is not one of {kinds}", kind=repr(kind), kinds=", ".join(kinds.SITE_KINDS)),
            detail={"field": "kind"},
        )
    if not (name or "").strip():
        raise Invalid(T("a site needs a name"), detail={"field": "name"})
    if get_site_by_code(session=session, code=code) is not None:
        raise Conflict(T("a site with code {code} already exists", code=code), detail={"field": "code"})
    if parent_id is not None:
        get_site_or_raise(session=session, site_id=parent_id)
    if (lat is not None and not -90 <= lat <= 90) or (lon is not None and not -180 <= lon <= 180):
        raise Invalid(T("latitude must be within ±90 and longitude within ±180"), detail={"field": "lat"})
    props = dict(properties or {})
    limit = props.get("limit_kw")
    if limit is not None and (not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0):
        raise Invalid(T("limit_kw must be a positive number of kW"), detail={"field": "properties.limit_kw"})
    site = Site(
        code=code,
        kind=kind,
        name=name.strip(),
        org_id=org_id,
        area_id=area_id,
        parent_id=parent_id,
        lat=lat,
        lon=lon,
        properties=props,
        created_at=clock.now(),
    )
    session.add(site)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="iot.site.create",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=org_id,
        detail={"code": code, "kind": kind},
    )
    return site


def add_member(*, session: Session, actor: Actor, site_id: int, user_id: int) -> SiteMember:
    """Make a resident a member of a household site (they then see its devices and data)."""
    site = get_site_or_raise(session=session, site_id=site_id)
    authorize(actor, "iot.manage", org_id=site.org_id, what=f"site {site.code}")
    if site.kind != "household":
        raise Invalid(T("only households have residents"), detail={"site": site.code})
    user = accounts.get_user_or_raise(session=session, user_id=user_id)
    if user.role != Role.RESIDENT:
        raise Invalid(T("only residents can be members of a household"), detail={"user": user.username})
    found = session.get(SiteMember, (site.id, user.id))
    if found is not None:
        return found
    member = SiteMember(site_id=site.id, user_id=user.id)
    session.add(member)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="iot.site.member_add",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
        detail={"user": user.username},
    )
    return member


def set_consent(
    *, session: Session, actor: Actor, site_id: int, detail: bool | None = None, care: bool | None = None
) -> Site:
    """A resident gives or withdraws consent: operator detail, or the inactivity watch."""
    site = get_site_or_raise(session=session, site_id=site_id)
    if site.id not in member_site_ids(session=session, actor=actor):
        raise Forbidden(T("only a resident of this household may give or withdraw its consent"))
    changes: dict[str, bool] = {}
    if detail is not None:
        site.detail_consent = changes["detail_consent"] = bool(detail)
    if care is not None:
        site.care_enrolled = changes["care_enrolled"] = bool(care)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="iot.site.consent",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
        detail=changes,
    )
    return site


# --- devices and datastreams -----------------------------------------------------------------


def get_device_or_raise(*, session: Session, device_id: int) -> Device:
    """The device with this id, or NotFound."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(T("there is no device {id}", id=device_id), detail={"device": device_id})
    return device


def get_datastream_or_raise(*, session: Session, datastream_id: int) -> Datastream:
    """The datastream with this id, or NotFound."""
    stream = session.get(Datastream, datastream_id)
    if stream is None:
        raise NotFound(
            T("there is no datastream {id}", id=datastream_id), detail={"datastream": datastream_id}
        )
    return stream


def datastreams_of(*, session: Session, device_id: int) -> list[Datastream]:
    """A device's datastreams, by id."""
    return list(
        session.scalars(select(Datastream).where(Datastream.device_id == device_id).order_by(Datastream.id))
    )


def list_devices(*, session: Session, actor: Actor, site_id: int) -> list[Device]:
    """The devices of a site ``actor`` may see."""
    site = get_site_or_raise(session=session, site_id=site_id)
    site_access(session=session, actor=actor, site=site)
    return list(session.scalars(select(Device).where(Device.site_id == site.id).order_by(Device.id)))


def _new_token() -> tuple[str, str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    return token, _hash(token), token[: len(TOKEN_PREFIX) + 4]


def _named(session: Session, model: type[Sensor] | type[ObservedProperty], name: str, **values: str) -> int:
    found = session.scalars(select(model.id).where(model.name == name)).one_or_none()
    if found is not None:
        return int(found)
    row = model(name=name, **values)
    session.add(row)
    session.flush()
    return int(row.id)


def create_device(
    *,
    session: Session,
    actor: Actor,
    site_id: int,
    code: str,
    kind: str,
    name: str = "",
    description: str = "",
    room: str = "",
    phase: str = "",
    properties: dict[str, Any] | None = None,
) -> NewDevice:
    """Provision a device at a site with the datastreams of its kind; its token is returned once."""
    site = get_site_or_raise(session=session, site_id=site_id)
    authorize(actor, "iot.manage", org_id=site.org_id, what=f"site {site.code}")
    code = _check_code(code, "device")
    if kind not in kinds.DEVICE_KINDS:
        raise Invalid(
            T(
                "device kind {kind} is not one of {kinds}",
                kind=repr(kind),
                kinds=", ".join(kinds.DEVICE_KINDS),
            ),
            detail={"field": "kind"},
        )
    if phase not in ("", "L1", "L2", "L3"):
        raise Invalid(T("phase must be L1, L2, L3 or empty"), detail={"field": "phase"})
    if session.scalars(select(Device.id).where(Device.code == code)).first() is not None:
        raise Conflict(T("a device with code {code} already exists", code=code), detail={"field": "code"})
    token, digest, prefix = _new_token()
    now = clock.now()
    device = Device(
        code=code,
        site_id=site.id,
        kind=kind,
        name=(name or code).strip(),
        description=description,
        properties=dict(properties or {}),
        token_hash=digest,
        token_prefix=prefix,
        token_rotated_at=now,
        created_at=now,
    )
    session.add(device)
    session.flush()
    sensor_id = _named(session, Sensor, kind, description=kind.replace("_", " "), encoding_type="text/html")
    for spec in kinds.streams_of(kind):
        _add_stream(session, device, spec, sensor_id=sensor_id, room=room, phase=phase)
    record(
        session=session,
        actor=actor,
        action="iot.device.create",
        object_type="iot_device",
        object_id=device.id,
        object_org_id=site.org_id,
        detail={"code": code, "kind": kind, "site": site.code},
    )
    return NewDevice(device=device, token=token)


def _add_stream(
    session: Session, device: Device, spec: kinds.StreamSpec, *, sensor_id: int, room: str, phase: str
) -> Datastream:
    prop_id = _named(session, ObservedProperty, spec.observed_property, definition=spec.definition)
    stream = Datastream(
        device_id=device.id,
        sensor_id=sensor_id,
        observed_property_id=prop_id,
        key=spec.key,
        name=f"{device.name} · {spec.name}",
        description=spec.name,
        kind=spec.kind,
        unit_name=spec.unit_name,
        unit_symbol=spec.unit_symbol,
        unit_definition=spec.unit_definition,
        observation_type=kinds.OBSERVATION_TYPES[spec.kind],
        phase=phase,
        room=room,
        created_at=clock.now(),
    )
    session.add(stream)
    session.flush()
    return stream


def create_datastream(
    *,
    session: Session,
    actor: Actor,
    device_id: int,
    key: str,
    name: str,
    kind: str,
    observed_property: str,
    unit_name: str = "",
    unit_symbol: str = "",
    unit_definition: str = "",
    room: str = "",
    phase: str = "",
) -> Datastream:
    """Add a datastream to a device beyond those of its kind."""
    device = get_device_or_raise(session=session, device_id=device_id)
    site = get_site_or_raise(session=session, site_id=device.site_id)
    authorize(actor, "iot.manage", org_id=site.org_id, what=f"device {device.code}")
    key = _check_code(key, "datastream")
    if kind not in kinds.DATASTREAM_KINDS:
        raise Invalid(
            T(
                "datastream kind {kind} is not one of {kinds}",
                kind=repr(kind),
                kinds=", ".join(kinds.DATASTREAM_KINDS),
            ),
            detail={"field": "kind"},
        )
    if not observed_property.strip():
        raise Invalid(T("say what the datastream observes"), detail={"field": "observed_property"})
    if session.scalars(
        select(Datastream.id).where(Datastream.device_id == device.id, Datastream.key == key)
    ).first():
        raise Conflict(T("device {device} already has a datastream {key}", device=device.code, key=key))
    sensor_id = _named(session, Sensor, device.kind, description=device.kind.replace("_", " "))
    spec = kinds.StreamSpec(
        key=key,
        name=name or key,
        observed_property=observed_property.strip(),
        definition="",
        kind=kind,
        unit_name=unit_name,
        unit_symbol=unit_symbol,
        unit_definition=unit_definition,
    )
    stream = _add_stream(session, device, spec, sensor_id=sensor_id, room=room, phase=phase)
    stream.name = name or stream.name
    record(
        session=session,
        actor=actor,
        action="iot.datastream.create",
        object_type="iot_datastream",
        object_id=stream.id,
        object_org_id=site.org_id,
        detail={"device": device.code, "key": key, "kind": kind},
    )
    return stream


def rotate_token(*, session: Session, actor: Actor, device_id: int) -> NewDevice:
    """Give a device a new token; the old one stops working at once."""
    device = get_device_or_raise(session=session, device_id=device_id)
    site = get_site_or_raise(session=session, site_id=device.site_id)
    authorize(actor, "iot.manage", org_id=site.org_id, what=f"device {device.code}")
    token, digest, prefix = _new_token()
    device.token_hash, device.token_prefix, device.token_rotated_at = digest, prefix, clock.now()
    session.flush()
    record(
        session=session,
        actor=actor,
        action="iot.device.rotate_token",
        object_type="iot_device",
        object_id=device.id,
        object_org_id=site.org_id,
        detail={"code": device.code},
    )
    return NewDevice(device=device, token=token)


def authenticate_device(*, session: Session, token: str) -> Device:
    """The active device whose token this is; Unauthenticated-like Forbidden otherwise."""
    from zhishe.core.errors import Unauthenticated

    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated(T("the device token is not valid"))
    device = session.scalars(select(Device).where(Device.token_hash == _hash(token))).one_or_none()
    if device is None or not device.active:
        raise Unauthenticated(T("the device token is not valid"))
    return device


# --- CSV import ------------------------------------------------------------------------------

_CSV_COLUMNS = ("site", "code", "kind", "name", "room", "phase")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Devices provisioned from a CSV, with their tokens (shown once)."""

    created: list[NewDevice]


def import_devices(*, session: Session, actor: Actor, text: str) -> ImportResult:
    """Provision devices from CSV rows ``site,code,kind[,name,room,phase]``: all or nothing.

    Every row is checked before any is written; the first problem is reported with its row number.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("site", "code", "kind") if c not in header]
    if missing:
        raise Invalid(
            T("the CSV needs the columns site, code and kind; missing: {cols}", cols=", ".join(missing))
        )
    unknown = [h for h in header if h not in _CSV_COLUMNS]
    if unknown:
        raise Invalid(T("unknown CSV column {col}", col=unknown[0]), detail={"column": unknown[0]})
    rows = list(_rows(reader))
    seen: set[str] = set()
    for number, row in rows:
        code = row.get("code", "")
        if code in seen:
            raise Invalid(
                T("row {row}: device code {code} appears twice", row=number, code=code),
                detail={"row": number},
            )
        seen.add(code)
    created: list[NewDevice] = []
    for number, row in rows:
        site = get_site_by_code(session=session, code=row.get("site", ""))
        if site is None:
            raise Invalid(
                T("row {row}: there is no site {code}", row=number, code=repr(row.get("site", ""))),
                detail={"row": number},
            )
        try:
            created.append(
                create_device(
                    session=session,
                    actor=actor,
                    site_id=site.id,
                    code=row.get("code", ""),
                    kind=row.get("kind", ""),
                    name=row.get("name", ""),
                    room=row.get("room", ""),
                    phase=row.get("phase", ""),
                )
            )
        except (Invalid, Conflict) as exc:
            raise type(exc)(
                T("row {row}: {problem}", row=number, problem=str(exc)), detail={"row": number}
            ) from exc
    return ImportResult(created=created)


def _rows(reader: Iterable[dict[str, Any]]) -> Iterable[tuple[int, dict[str, str]]]:
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise Invalid(T("row {row} has more values than the header", row=number), detail={"row": number})
        yield number, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}


def streams_at(
    *, session: Session, site_ids: Sequence[int], device_kind: str | None = None, key: str | None = None
) -> list[Datastream]:
    """The datastreams of the devices at these sites (of one device kind, with one key, if given), by id."""
    query = (
        select(Datastream).join(Device, Device.id == Datastream.device_id).where(Device.site_id.in_(site_ids))
    )
    if device_kind is not None:
        query = query.where(Device.kind == device_kind)
    if key is not None:
        query = query.where(Datastream.key == key)
    return list(session.scalars(query.order_by(Datastream.id)))


def stream_ids(
    *, session: Session, site_ids: Sequence[int], device_kind: str | None = None, key: str | None = None
) -> list[int]:
    """The ids of ``streams_at``."""
    return [s.id for s in streams_at(session=session, site_ids=site_ids, device_kind=device_kind, key=key)]
