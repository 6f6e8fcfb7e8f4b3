"""Ingestion: readings in, checked one by one, stored durably, acknowledged only once committed.

Every payload shape ends here as a list of ``Incoming`` readings: the simple batch
(``{datastream, time, value}`` as JSON or NDJSON), SensorThings ``CreateObservations`` with its
``dataArray``, SensorThings MQTT ``Observations`` messages, and ThingsBoard telemetry
(``{"ts": ms, "values": {key: value}}``). ``store`` checks each reading and writes the good ones in
one transaction:

- a reading for an unknown datastream, one the sender may not write to (another household's), a
  value that is not a finite number, or a time missing, unreadable, too far in the future or older
  than the datastream's retention is rejected **with its own reason**, and the rest of the batch
  is still stored;
- the same datastream and time twice is idempotent: the first value stays, the repeat is counted as
  a duplicate and acknowledged (so a device retrying after a lost acknowledgement is safe);
- late and out-of-order readings are accepted; the latest value per datastream only moves forward.

The caller commits; only then is the batch acknowledged (HTTP 2xx, MQTT PUBACK).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.auth import Actor, can
from zhishe.core.config import get_settings
from zhishe.core.errors import TooLarge
from zhishe.core.i18n import T
from zhishe.iot.models import Datastream, Device, Latest, Reading, Site

__all__ = [
    "Incoming",
    "Rejection",
    "StoreResult",
    "insert_for",
    "parse_time",
    "parse_value",
    "store",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One reading as sent: a datastream (by id, or by key of the sending device), a time, a value."""

    index: int
    datastream: Any
    time: Any
    value: Any
    #: For device payloads keyed by name (ThingsBoard): the key within the device.
    key: str | None = None
    #: Set when the payload item could not even be read; the reading is rejected with it.
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reading that was not stored, and why."""

    index: int
    reason: str
    datastream: Any = None


@dataclass
class StoreResult:
    """What happened to a batch: how many stored, how many repeats, and each rejection."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    #: (datastream id, time) of every accepted reading, new or repeated, in input order.
    accepted: list[tuple[int, datetime]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the ingestion endpoints."""
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": [
                {
                    "index": r.index,
                    "reason": r.reason,
                    **({"datastream": r.datastream} if r.datastream is not None else {}),
                }
                for r in self.rejected
            ],
        }


@dataclass(frozen=True, slots=True)
class _Stream:
    id: int
    device_id: int
    key: str
    kind: str
    site_id: int
    org_id: int


def parse_time(value: Any, *, tz: Any = None) -> datetime:
    """A reading's time: ISO 8601 (naive means the platform timezone) or epoch milliseconds."""
    if isinstance(value, bool):
        raise ValueError("a time must be an ISO 8601 string or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("the time is not a finite number")
        return _EPOCH + timedelta(milliseconds=float(value))
    if isinstance(value, str):
        text = value.strip()
        if "/" in text:  # a SensorThings interval: the phenomenon time is its start
            text = text.split("/", 1)[0]
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz or get_settings().tz)
        return moment.astimezone(UTC)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz or get_settings().tz)).astimezone(UTC)
    raise ValueError(f"a time must be an ISO 8601 string or epoch milliseconds, not {type(value).__name__}")


def parse_value(value: Any, kind: str) -> float:
    """A reading's value as a float: a finite number; for events also true/false."""
    if isinstance(value, bool):
        if kind == "event":
            return 1.0 if value else 0.0
        raise ValueError("the value must be a number, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"the value {value[:40]!r} is not a number") from None
    else:
        raise ValueError(
            f"the value must be a number, not {type(value).__name__ if value is not None else 'null'}"
        )
    if not math.isfinite(number):
        raise ValueError("the value is not a finite number (NaN or infinite)")
    if kind == "cumulative" and number < 0:
        raise ValueError("a cumulative counter cannot be negative")
    return number


def _streams(session: Session, ids: set[int], device: Device | None) -> dict[int, _Stream]:
    query = (
        select(
            Datastream.id, Datastream.device_id, Datastream.key, Datastream.kind, Device.site_id, Site.org_id
        )
        .join(Device, Device.id == Datastream.device_id)
        .join(Site, Site.id == Device.site_id)
    )
    if device is not None:
        query = query.where(Datastream.device_id == device.id)
        if ids:
            query = query.where(Datastream.id.in_(ids))
    else:
        query = query.where(Datastream.id.in_(ids))
    return {row[0]: _Stream(*row) for row in session.execute(query)}


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 18:
        return int(value)
    if isinstance(value, Mapping):
        inner = value.get("@iot.id")
        return _as_id(inner)
    return None


def store(
    *,
    session: Session,
    readings: Sequence[Incoming],
    device: Device | None = None,
    actor: Actor | None = None,
) -> StoreResult:
    """Check and write a batch; the caller commits, then acknowledges.

    With ``device``, readings may name only that device's datastreams (by id or key); with
    ``actor``, only datastreams of sites the actor may ingest for.
    """
    settings = get_settings()
    if len(readings) > settings.iot_max_batch:
        raise TooLarge(
            T(
                "a batch may hold at most {limit} readings; this one has {count}",
                limit=settings.iot_max_batch,
                count=len(readings),
            ),
            detail={"limit": settings.iot_max_batch, "received": len(readings)},
        )
    result = StoreResult(received=len(readings))
    ids = {i for i in (_as_id(r.datastream) for r in readings if r.key is None) if i is not None}
    streams = _streams(session, ids, device)
    by_key = {s.key: s for s in streams.values()} if device is not None else {}
    now = clock.now()
    latest_allowed = now + timedelta(seconds=settings.iot_future_seconds)
    retention = settings.iot_retention()
    allowed_orgs: dict[int, bool] = {}
    rows: list[dict[str, Any]] = []
    for item in readings:
        if item.problem is not None:
            result.rejected.append(Rejection(item.index, item.problem, None))
            continue
        stream = by_key.get(item.key) if item.key is not None else streams.get(_as_id(item.datastream) or -1)
        shown = item.key if item.key is not None else item.datastream
        if stream is None:
            if item.key is not None:
                reason = f"this device has no datastream with the key {item.key!r}"
            elif _as_id(item.datastream) is None:
                reason = "the datastream must be given by its numeric id"
            elif device is not None:
                reason = f"datastream {item.datastream} does not belong to this device"
            else:
                reason = f"there is no datastream {item.datastream}"
            result.rejected.append(Rejection(item.index, reason, shown))
            continue
        if actor is not None:
            ok = allowed_orgs.get(stream.org_id)
            if ok is None:
                ok = allowed_orgs[stream.org_id] = can(actor, "iot.ingest", org_id=stream.org_id)
            if not ok:
                result.rejected.append(
                    Rejection(item.index, f"you may not send readings for datastream {stream.id}", shown)
                )
                continue
        try:
            moment = parse_time(item.time, tz=settings.tz)
        except (ValueError, TypeError, OverflowError) as exc:
            result.rejected.append(Rejection(item.index, f"time: {_reason(exc, item.time)}", shown))
            continue
        if moment > latest_allowed:
            result.rejected.append(
                Rejection(
                    item.index,
                    f"time {moment.isoformat()} is more than {settings.iot_future_seconds} s in the future",
                    shown,
                )
            )
            continue
        if moment < now - timedelta(days=retention[stream.kind]):
            result.rejected.append(
                Rejection(
                    item.index,
                    f"time {moment.isoformat()} is older than the {retention[stream.kind]}-day retention of {stream.kind} data",
                    shown,
                )
            )
            continue
        try:
            value = parse_value(item.value, stream.kind)
        except ValueError as exc:
            result.rejected.append(Rejection(item.index, f"value: {exc}", shown))
            continue
        rows.append(
            {"datastream_id": stream.id, "time": moment, "value": value, "received_at": now, "flushed": 0}
        )
        result.accepted.append((stream.id, moment))
    if rows:
        result.stored = _insert(session, rows)
        result.duplicates = len(rows) - result.stored
        _advance_latest(session, rows)
    return result


def _reason(exc: BaseException, value: Any) -> str:
    if isinstance(exc, ValueError) and "isoformat" in str(exc):
        return f"{str(value)[:40]!r} is not an ISO 8601 time"
    return str(exc) or type(exc).__name__


def insert_for(session: Session) -> Any:
    """The back end's ``insert`` construct, which has ``on_conflict_do_nothing/do_update``."""
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the rows, skipping (datastream, time) pairs already stored; how many were new.

    This is the hot path of ingestion, so it talks to the driver directly: an ``executemany`` on
    SQLite (times written in SQLAlchemy's storage format for ``UTCDateTime``), one ``INSERT …
    SELECT FROM unnest(…)`` on PostgreSQL. Both run inside the session's transaction.
    """
    unique: dict[tuple[int, datetime], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault((row["datastream_id"], row["time"]), row)
    connection = session.connection()
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    table = Reading.__tablename__
    try:
        if connection.dialect.name == "postgresql":
            ids, times, values = [], [], []
            for (stream, moment), row in unique.items():
                ids.append(stream)
                times.append(moment)
                values.append(row["value"])
            received = next(iter(unique.values()))["received_at"]
            cursor.execute(
                f"INSERT INTO {table} (datastream_id, time, value, received_at, flushed) "  # noqa: S608 - constant name
                "SELECT d, t, v, %s, 0 FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) AS r(d, t, v) "
                "ON CONFLICT (datastream_id, time) DO NOTHING",
                (received, ids, times, values),
            )
        else:
            cursor.executemany(
                f"INSERT INTO {table} (datastream_id, time, value, received_at, flushed) "  # noqa: S608 - constant name
                "VALUES (?, ?, ?, ?, 0) ON CONFLICT (datastream_id, time) DO NOTHING",
                [
                    (stream, _sqlite_time(moment), row["value"], _sqlite_time(row["received_at"]))
                    for (stream, moment), row in unique.items()
                ],
            )
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _sqlite_time(moment: datetime) -> str:
    """A UTC time as SQLAlchemy stores a ``UTCDateTime`` in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _advance_latest(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Move each datastream's latest value forward (never back) to the newest reading of the batch."""
    newest: dict[int, dict[str, Any]] = {}
    for row in rows:
        found = newest.get(row["datastream_id"])
        if found is None or row["time"] > found["time"]:
            newest[row["datastream_id"]] = row
    insert = insert_for(session)
    values = [
        {
            "datastream_id": r["datastream_id"],
            "time": r["time"],
            "value": r["value"],
            "received_at": r["received_at"],
        }
        for r in newest.values()
    ]
    statement = insert(Latest)
    statement = statement.on_conflict_do_update(
        index_elements=["datastream_id"],
        set_={
            "time": statement.excluded.time,
            "value": statement.excluded.value,
            "received_at": statement.excluded.received_at,
        },
        where=statement.excluded.time > Latest.time,
    )
    session.execute(statement, values)
