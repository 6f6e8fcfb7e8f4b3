"""Reading history in the lake, and the rollups kept beside it.

New readings land in ``iot_readings`` (``zhishe.iot.ingest``). The flush job (every
``iot_flush_seconds``) copies them to one Delta table, ``<lake>/iot/readings``, partitioned by
datastream kind and UTC day, in three steps that survive a crash at any point:

1. **claim**: a ``Flush`` row is created and every committed, unflushed reading is marked with its
   negative number, in one transaction;
2. **write**: the claimed rows are appended to the lake in one commit that carries the flush number
   in its metadata; readings older than ``iot_hot_days`` are first checked against the lake, so a
   repeat that arrives after its original was pruned from the database is still stored once;
3. **finish**: the rollups are updated from exactly the rows written, the rows are marked with the
   positive number and the flush is closed, in one transaction.

A flush found unfinished at the next start is finished: step 2 is skipped when the lake already has
a commit with its number. Rows flushed and older than ``iot_hot_days`` are pruned from the database;
lake partitions older than each kind's retention are deleted, and small files are compacted.

Rollups (``iot_rollups``) are kept per datastream for 15-minute, hourly and daily buckets in the
platform timezone: count, total, minimum, maximum and last value, merged incrementally from new
rows (a duplicate never reaches them). For cumulative counters the bucket's consumption
(``delta``) is recomputed around the new readings by ``zhishe.iot.counters``, which treats resets
and meter swaps so that no bucket is ever negative.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from zhishe.catalog.lake._table import writer_properties
from zhishe.core import clock, events
from zhishe.core.audit.service import record
from zhishe.core.config import get_settings
from zhishe.iot import counters
from zhishe.iot.ingest import insert_for
from zhishe.iot.models import CounterEvent, Datastream, Flush, Reading, Rollup

__all__ = [
    "INTERVALS",
    "FlushResult",
    "bucket_start",
    "compact",
    "flush",
    "forget_lake_view",
    "history_uri",
    "prune",
    "read_history",
    "readings_between",
    "readings_many",
]

#: Rollup intervals and their length.
INTERVALS: dict[str, timedelta] = {
    "15min": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
_FLUSH_KEY = "zhishe.iot.flush"
_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("datastream_id", pa.int64()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("value", pa.float64()),
        ("kind", pa.string()),
        ("day", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one flush did."""

    flush_id: int | None
    rows: int
    repeats: int
    recovered: int


def history_uri() -> str:
    """Where the reading history table lives."""
    return os.path.join(get_settings().lake_uri, "iot", "readings")


def _open() -> DeltaTable | None:
    try:
        return DeltaTable(history_uri())
    except TableNotFoundError:
        return None


def bucket_start(moment: datetime, interval: str, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the local ``interval`` bucket that holds ``moment``."""
    local = moment.astimezone(tz)
    if interval == "1d":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif interval == "1h":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    return start.astimezone(UTC)


# --- flush -------------------------------------------------------------------------------------


def flush(*, session: Session) -> FlushResult:
    """Copy new readings to the lake and update rollups; commits as it goes (see the module doc)."""
    recovered = 0
    for open_flush in session.scalars(
        select(Flush).where(Flush.finished_at.is_(None)).order_by(Flush.id)
    ).all():
        recovered += _complete(session, open_flush.id)
    started = clock.now()
    claim = Flush(started_at=started)
    session.add(claim)
    session.flush()
    claimed = _rowcount(
        session.execute(update(Reading).where(Reading.flushed == 0).values(flushed=-claim.id))
    )
    if not claimed:
        session.delete(claim)
        session.commit()
        return FlushResult(flush_id=None, rows=0, repeats=0, recovered=recovered)
    session.commit()
    written = _complete(session, claim.id)
    return FlushResult(flush_id=claim.id, rows=written, repeats=claimed - written, recovered=recovered)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _committed(flush_id: int) -> bool:
    table = _open()
    if table is None:
        return False
    return any(str(entry.get(_FLUSH_KEY, "")) == str(flush_id) for entry in table.history(100))


def _complete(session: Session, flush_id: int) -> int:
    """Write (unless already in the lake), roll up and finish the claimed rows of one flush."""
    rows = _claimed(session, flush_id)
    rows = _drop_repeats(session, rows)
    if rows.num_rows and not _committed(flush_id):
        write_deltalake(
            history_uri(),
            rows,
            mode="append",
            partition_by=["kind", "day"],
            writer_properties=writer_properties(),
            commit_properties=CommitProperties(custom_metadata={_FLUSH_KEY: str(flush_id)}),
        )
        forget_lake_view()
    _roll_up(session, rows)
    session.execute(update(Reading).where(Reading.flushed == -flush_id).values(flushed=flush_id))
    done = session.get(Flush, flush_id)
    if done is not None:
        done.finished_at = clock.now()
        done.rows = rows.num_rows
    session.commit()
    return int(rows.num_rows)


def _claimed(session: Session, flush_id: int) -> pa.Table:
    result = session.execute(
        select(Reading.datastream_id, Reading.time, Reading.value, Datastream.kind, Reading.id)
        .join(Datastream, Datastream.id == Reading.datastream_id)
        .where(Reading.flushed == -flush_id)
        .order_by(Reading.datastream_id, Reading.time)
    ).all()
    return _table(
        [r[0] for r in result],
        [r[1] for r in result],
        [r[2] for r in result],
        [r[3] for r in result],
        [r[4] for r in result],
    )


def _table(
    ids: Sequence[int],
    times: Sequence[datetime],
    values: Sequence[float],
    kinds: Sequence[str],
    reading_ids: Sequence[int],
) -> pa.Table:
    time_array = pa.array(times, type=pa.timestamp("us", tz="UTC"))
    day = pc.strftime(time_array, format="%Y-%m-%d") if len(times) else pa.array([], pa.string())
    return pa.table(
        {
            "id": pa.array(reading_ids, pa.int64()),
            "datastream_id": pa.array(ids, pa.int64()),
            "time": time_array,
            "value": pa.array(values, pa.float64()),
            "kind": pa.array(kinds, pa.string()),
            "day": day,
        },
        schema=_SCHEMA,
    )


def _drop_repeats(session: Session, rows: pa.Table) -> pa.Table:
    """Drop rows older than the hot window that the lake already holds (their originals were pruned)."""
    if not rows.num_rows:
        return rows
    cutoff = clock.now() - timedelta(days=get_settings().iot_hot_days)
    old = pc.less(rows["time"], pa.scalar(cutoff, pa.timestamp("us", tz="UTC")))
    if not pc.any(old).as_py():
        return rows
    table = _open()
    if table is None:
        return rows
    old_rows = rows.filter(old)
    days = sorted(set(old_rows["day"].to_pylist()))
    ids = sorted(set(old_rows["datastream_id"].to_pylist()))
    existing = table.to_pyarrow_dataset().to_table(
        columns=["datastream_id", "time"],
        filter=(pc.field("day").isin(days)) & (pc.field("datastream_id").isin(ids)),
    )
    seen = set(zip(existing["datastream_id"].to_pylist(), existing["time"].to_pylist(), strict=True))
    keep = [
        (i, t) not in seen
        for i, t in zip(rows["datastream_id"].to_pylist(), rows["time"].to_pylist(), strict=True)
    ]
    return rows.filter(pa.array(keep))


# --- rollups -----------------------------------------------------------------------------------

_FLOORS = {"15min": (15, "minute"), "1h": (1, "hour"), "1d": (1, "day")}


def _pair(session: Session, name: str) -> Any:
    """The two-argument minimum or maximum of the back end (``min(a, b)`` on SQLite, ``least`` on PostgreSQL)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return getattr(func, {"min": "least", "max": "greatest"}[name] if postgres else name)


def _roll_up(session: Session, rows: pa.Table) -> None:
    """Merge the new rows into the rollups of every interval, then rework counters' consumption."""
    if not rows.num_rows:
        return
    tz = get_settings().tz
    local = rows["time"].cast(pa.timestamp("us", tz=str(tz)))
    insert = insert_for(session)
    least, greatest = _pair(session, "min"), _pair(session, "max")
    for interval, (multiple, unit) in _FLOORS.items():
        starts = pc.floor_temporal(local, multiple=multiple, unit=unit).cast(pa.timestamp("us", tz="UTC"))
        table = pa.table(
            {
                "datastream_id": rows["datastream_id"],
                "start": starts,
                "time": rows["time"],
                "value": rows["value"],
            }
        ).sort_by([("datastream_id", "ascending"), ("start", "ascending"), ("time", "ascending")])
        grouped = table.group_by(["datastream_id", "start"], use_threads=False).aggregate(
            [
                ("value", "count"),
                ("value", "sum"),
                ("value", "min"),
                ("value", "max"),
                ("value", "last"),
                ("time", "last"),
            ]
        )
        values = [
            {
                "datastream_id": d,
                "interval": interval,
                "start": b,
                "count": c,
                "total": t,
                "minimum": lo,
                "maximum": hi,
                "last": la,
                "last_time": lt,
            }
            for d, b, c, t, lo, hi, la, lt in zip(
                grouped["datastream_id"].to_pylist(),
                grouped["start"].to_pylist(),
                grouped["value_count"].to_pylist(),
                grouped["value_sum"].to_pylist(),
                grouped["value_min"].to_pylist(),
                grouped["value_max"].to_pylist(),
                grouped["value_last"].to_pylist(),
                grouped["time_last"].to_pylist(),
                strict=True,
            )
        ]
        statement = insert(Rollup)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["datastream_id", "interval", "start"],
            set_={
                "count": Rollup.count + new.count,
                "total": Rollup.total + new.total,
                "minimum": least(Rollup.minimum, new.minimum),
                "maximum": greatest(Rollup.maximum, new.maximum),
                "last": case((new.last_time >= Rollup.last_time, new.last), else_=Rollup.last),
                "last_time": greatest(Rollup.last_time, new.last_time),
            },
        )
        for chunk in _chunks(values, 5_000):
            session.execute(statement, chunk)
    counters_ = pc.equal(rows["kind"], "cumulative")
    if pc.any(counters_).as_py():
        touched = (
            rows.filter(counters_).group_by("datastream_id").aggregate([("time", "min"), ("time", "max")])
        )
        for stream, first, last in zip(
            touched["datastream_id"].to_pylist(),
            touched["time_min"].to_pylist(),
            touched["time_max"].to_pylist(),
            strict=True,
        ):
            _counter_window(session, stream, first, last, tz)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _neighbours(
    session: Session, stream: int, moment: datetime, *, before: bool, count: int
) -> list[datetime]:
    query = select(Reading.time).where(Reading.datastream_id == stream)
    if before:
        query = query.where(Reading.time < moment).order_by(Reading.time.desc())
    else:
        query = query.where(Reading.time > moment).order_by(Reading.time)
    found = list(session.scalars(query.limit(count)))
    if len(found) < count and moment < clock.now() - timedelta(days=get_settings().iot_hot_days - 1):
        span = (moment - timedelta(days=40), moment) if before else (moment, moment + timedelta(days=40))
        lake = read_history([stream], *span)
        extra = [t for t in lake["time"].to_pylist() if (t < moment if before else t > moment)]
        found = sorted(set(found) | set(extra), reverse=before)[:count]
    return found


def _counter_window(session: Session, stream: int, first: datetime, last: datetime, tz: ZoneInfo) -> None:
    """Recompute the consumption of the 15-minute buckets the new readings of a counter touch,
    then of their hours and days."""
    before = _neighbours(session, stream, first, before=True, count=2)
    after = _neighbours(session, stream, last, before=False, count=1)
    start = before[0] if before else first
    end = after[0] if after else last
    times, values = readings_between(session, stream, start, end)
    if not times:
        return
    lead = before[1] if len(before) == 2 else None  # the reading before `start`: the baseline
    prev: tuple[datetime, float] | None = None
    if lead is not None:
        lead_times, lead_values = readings_between(session, stream, lead, lead)
        if lead_times:
            prev = (lead_times[0], lead_values[0])
    found = counters.deltas(times, values, previous=prev)
    _record_corrections(session, stream, found.events)
    energy = counters.bucket_energy(found, interval="15min", tz=tz)
    window_start = bucket_start(before[0] if before else first, "15min", tz)
    window_end = bucket_start(end, "15min", tz)
    quarters = {b: e for b, e in energy if window_start <= b <= window_end}
    # Buckets of the window that lost all consumption (none found now) are zero, not stale.
    moment = window_start
    while moment <= window_end:
        quarters.setdefault(moment, 0.0)
        moment += INTERVALS["15min"]
    day_first = bucket_start(window_start, "1d", tz)
    day_last = _next_day(bucket_start(window_end, "1d", tz), tz)
    known = dict(
        session.execute(
            select(Rollup.start, Rollup.delta).where(
                Rollup.datastream_id == stream,
                Rollup.interval == "15min",
                Rollup.start >= day_first,
                Rollup.start < day_last,
            )
        ).all()
    )
    known.update(quarters)
    hours: dict[datetime, float] = defaultdict(float)
    days: dict[datetime, float] = defaultdict(float)
    touched_hours = {bucket_start(b, "1h", tz) for b in quarters}
    touched_days = {bucket_start(b, "1d", tz) for b in quarters}
    for begin, value in known.items():
        hour, day = bucket_start(begin, "1h", tz), bucket_start(begin, "1d", tz)
        if hour in touched_hours:
            hours[hour] += float(value or 0.0)
        if day in touched_days:
            days[day] += float(value or 0.0)
    for interval, deltas in (("15min", quarters), ("1h", dict(hours)), ("1d", dict(days))):
        _set_deltas(session, stream, interval, deltas)


def _record_corrections(session: Session, stream: int, found: Sequence[counters.Event]) -> None:
    """Record each reset, swap, jump or conflict once, audited, and announce it on the event bus."""
    for event in found:
        exists = session.scalars(
            select(CounterEvent.id).where(
                CounterEvent.datastream_id == stream,
                CounterEvent.time == event.time,
                CounterEvent.kind == event.kind,
            )
        ).first()
        if exists is not None:
            continue
        row = CounterEvent(
            datastream_id=stream,
            time=event.time,
            kind=event.kind,
            before=event.before,
            after=event.after,
            reason=event.reason_template,
            params={k: v for k, v in event.params.items()},
            recorded_at=clock.now(),
        )
        session.add(row)
        session.flush()
        record(
            session=session,
            actor=None,
            action="iot.counter.correct",
            object_type="iot_datastream",
            object_id=stream,
            detail={"kind": event.kind, "time": event.time.isoformat(), "reason": event.reason},
        )
        events.publish(
            events.Event(
                "iot.counter_corrected",
                {
                    "datastream_id": stream,
                    "event_id": row.id,
                    "kind": event.kind,
                    "time": event.time.isoformat(),
                },
            ),
            session,
        )


def _next_day(start: datetime, tz: ZoneInfo) -> datetime:
    local = start.astimezone(tz)
    return (local.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz).astimezone(UTC)


def _set_deltas(session: Session, stream: int, interval: str, deltas: dict[datetime, float]) -> None:
    """Set the consumption of these buckets (a bucket without readings of its own gets a row too)."""
    if not deltas:
        return
    statement = insert_for(session)(Rollup)
    statement = statement.on_conflict_do_update(
        index_elements=["datastream_id", "interval", "start"], set_={"delta": statement.excluded.delta}
    )
    values = [
        {
            "datastream_id": stream,
            "interval": interval,
            "start": start,
            "count": 0,
            "total": 0.0,
            "minimum": 0.0,
            "maximum": 0.0,
            "last": 0.0,
            "last_time": start,
            "delta": max(value, 0.0),
        }
        for start, value in deltas.items()
    ]
    for chunk in _chunks(values, 5_000):
        session.execute(statement, chunk)


def readings_between(
    session: Session, stream: int, start: datetime, end: datetime
) -> tuple[list[datetime], list[float]]:
    """A datastream's readings in [start, end], from the database and, for old times, the lake."""
    return readings_many(session, [stream], start, end).get(stream, ([], []))


def readings_many(
    session: Session,
    streams: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    fresh: bool = True,
    kinds: Sequence[str] = (),
) -> dict[int, tuple[list[datetime], list[float]]]:
    """Readings of several datastreams in [start, end], each in time order: from the database and,
    for times older than the hot window, the lake (``fresh=False`` accepts a lake view up to
    ``_DATASET_TTL`` seconds old, for reads that are not part of a flush; ``kinds``, when the
    streams' kinds are known, lets the lake skip the other kinds' files)."""
    found: dict[int, dict[datetime, float]] = defaultdict(dict)
    for chunk in _chunks(list(streams), 500):
        rows = session.execute(
            select(Reading.datastream_id, Reading.time, Reading.value).where(
                Reading.datastream_id.in_(chunk), Reading.time >= start, Reading.time <= end
            )
        ).all()
        for stream, moment, value in rows:
            found[stream][moment] = value
    if start < clock.now() - timedelta(days=get_settings().iot_hot_days - 1):
        lake = read_history(streams, start, end, fresh=fresh, kinds=kinds)
        for stream, moment, value in zip(
            lake["datastream_id"].to_pylist(),
            lake["time"].to_pylist(),
            lake["value"].to_pylist(),
            strict=True,
        ):
            found[stream].setdefault(moment, value)
    out: dict[int, tuple[list[datetime], list[float]]] = {}
    for stream, values in found.items():
        ordered = sorted(values.items())
        out[stream] = ([t for t, _ in ordered], [v for _, v in ordered])
    return out


#: Seconds a reader may use a lake view without looking for newer versions (writers clear it).
_DATASET_TTL = 5.0
_dataset_cache: tuple[float, str, Any] | None = None


def _lake_dataset(fresh: bool) -> Any:
    """The lake table as a pyarrow dataset; cached briefly for readers, refreshed for writers."""
    global _dataset_cache
    uri = history_uri()
    now = time.monotonic()
    if (
        not fresh
        and _dataset_cache is not None
        and _dataset_cache[1] == uri
        and now - _dataset_cache[0] < _DATASET_TTL
    ):
        return _dataset_cache[2]
    table = _open()
    if table is None:
        return None
    dataset = table.to_pyarrow_dataset()
    _dataset_cache = (now, uri, dataset)
    return dataset


def forget_lake_view() -> None:
    """Drop the cached lake view (after this process wrote to the lake)."""
    global _dataset_cache
    _dataset_cache = None


def read_history(
    streams: Sequence[int], start: datetime, end: datetime, *, fresh: bool = True, kinds: Sequence[str] = ()
) -> pa.Table:
    """Lake rows of these datastreams with start <= time <= end (pruned by day partition)."""
    dataset = _lake_dataset(fresh) if streams else None
    if dataset is None:
        return _table([], [], [], [], [])
    days = []
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        days.append(day.isoformat())
        day += timedelta(days=1)
    moment_type = pa.timestamp("us", tz="UTC")
    expression = (
        pc.field("day").isin(days)
        & pc.field("datastream_id").isin(list(streams))
        & (pc.field("time") >= pa.scalar(start, moment_type))
        & (pc.field("time") <= pa.scalar(end, moment_type))
    )
    if kinds:
        expression = expression & pc.field("kind").isin(list(kinds))
    return dataset.to_table(filter=expression).sort_by(
        [("datastream_id", "ascending"), ("time", "ascending")]
    )


# --- housekeeping ------------------------------------------------------------------------------


def prune(*, session: Session) -> dict[str, int]:
    """Drop flushed readings past the hot window from the database, and lake partitions past retention."""
    settings = get_settings()
    now = clock.now()
    removed = _rowcount(
        session.execute(
            delete(Reading).where(
                Reading.flushed > 0, Reading.time < now - timedelta(days=settings.iot_hot_days)
            )
        )
    )
    session.commit()
    lake_removed = 0
    table = _open()
    if table is not None:
        for kind, days in settings.iot_retention().items():
            oldest = (now - timedelta(days=days)).date().isoformat()
            metrics = table.delete(f"kind = '{kind}' AND day < '{oldest}'")
            forget_lake_view()
            lake_removed += int(metrics.get("num_deleted_rows", 0) or 0)
    return {"database": int(removed or 0), "lake": lake_removed}


def compact() -> int:
    """Merge the lake's small files (one per flush) into larger ones; returns files removed."""
    table = _open()
    if table is None:
        return 0
    metrics = table.optimize.compact(writer_properties=writer_properties())
    forget_lake_view()
    return int(metrics.get("numFilesRemoved", 0))
