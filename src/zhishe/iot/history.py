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
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from zhishe.catalog.lake._table import writer_properties
from zhishe.core import clock, events
from zhishe.core.audit.service import record
from zhishe.core.config import get_settings
from zhishe.iot import counters
from zhishe.iot.models import CounterEvent, Datastream, Flush, Reading, Rollup

__all__ = [
    "INTERVALS",
    "FlushResult",
    "bucket_start",
    "compact",
    "flush",
    "history_uri",
    "prune",
    "read_history",
    "readings_between",
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


def flush(*, session: Session, limit_repeats_check: bool = True) -> FlushResult:
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
        select(Reading.datastream_id, Reading.time, Reading.value, Datastream.kind)
        .join(Datastream, Datastream.id == Reading.datastream_id)
        .where(Reading.flushed == -flush_id)
        .order_by(Reading.datastream_id, Reading.time)
    ).all()
    return _table(
        [r[0] for r in result], [r[1] for r in result], [r[2] for r in result], [r[3] for r in result]
    )


def _table(
    ids: Sequence[int], times: Sequence[datetime], values: Sequence[float], kinds: Sequence[str]
) -> pa.Table:
    time_array = pa.array(times, type=pa.timestamp("us", tz="UTC"))
    day = pc.strftime(time_array, format="%Y-%m-%d") if len(times) else pa.array([], pa.string())
    return pa.table(
        {
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


def _roll_up(session: Session, rows: pa.Table) -> None:
    if not rows.num_rows:
        return
    tz = get_settings().tz
    ids = rows["datastream_id"].to_pylist()
    times = rows["time"].to_pylist()
    values = rows["value"].to_pylist()
    kinds_ = rows["kind"].to_pylist()
    merged: dict[tuple[int, str, datetime], list[Any]] = {}
    for stream, moment, value in zip(ids, times, values, strict=True):
        for interval in INTERVALS:
            key = (stream, interval, bucket_start(moment, interval, tz))
            agg = merged.get(key)
            if agg is None:
                merged[key] = [1, value, value, value, value, moment]
            else:
                agg[0] += 1
                agg[1] += value
                agg[2] = min(agg[2], value)
                agg[3] = max(agg[3], value)
                if moment >= agg[5]:
                    agg[4], agg[5] = value, moment
    existing = {
        (r.datastream_id, r.interval, r.start): r
        for chunk in _chunks(list(merged), 500)
        for r in session.scalars(
            select(Rollup).where(tuple_(Rollup.datastream_id, Rollup.interval, Rollup.start).in_(chunk))
        )
    }
    for key, (count, total, low, high, last, last_time) in merged.items():
        found = existing.get(key)
        if found is None:
            session.add(
                Rollup(
                    datastream_id=key[0],
                    interval=key[1],
                    start=key[2],
                    count=count,
                    total=total,
                    minimum=low,
                    maximum=high,
                    last=last,
                    last_time=last_time,
                )
            )
        else:
            found.count += count
            found.total += total
            found.minimum = min(found.minimum, low)
            found.maximum = max(found.maximum, high)
            if last_time >= found.last_time:
                found.last, found.last_time = last, last_time
    session.flush()
    counter_times: dict[int, list[datetime]] = defaultdict(list)
    for stream, moment, kind in zip(ids, times, kinds_, strict=True):
        if kind == "cumulative":
            counter_times[stream].append(moment)
    for stream, moments in counter_times.items():
        _counter_window(session, stream, min(moments), max(moments), tz)


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
        lake = read_history(
            [stream],
            *((moment - timedelta(days=40), moment) if before else (moment, moment + timedelta(days=40))),
        )
        extra = [t for t in lake["time"].to_pylist() if (t < moment if before else t > moment)]
        found = sorted(set(found) | set(extra), reverse=before)[:count]
    return found


def _counter_window(session: Session, stream: int, first: datetime, last: datetime, tz: ZoneInfo) -> None:
    """Recompute the consumption of the 15-minute buckets the new readings of a counter touch,
    then of their hours and days."""
    before = _neighbours(session, stream, first, before=True, count=2)
    after = _neighbours(session, stream, last, before=False, count=1)
    start = before[-1] if before else first
    end = after[0] if after else last
    times, values = readings_between(session, stream, start, end)
    if not times:
        return
    lead = before[0] if len(before) == 2 else None  # the reading before `start`: the baseline
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
    buckets = {b: e for b, e in energy if window_start <= b <= window_end}
    # Buckets of the window that lost all consumption (none found now) are zero, not stale.
    moment = window_start
    while moment <= window_end:
        buckets.setdefault(moment, 0.0)
        moment += INTERVALS["15min"]
    _set_deltas(session, stream, "15min", buckets)
    hours = {bucket_start(b, "1h", tz) for b in buckets}
    days = {bucket_start(b, "1d", tz) for b in buckets}
    for interval, starts in (("1h", hours), ("1d", days)):
        sums: dict[datetime, float] = {}
        for begin in starts:
            finish = begin + INTERVALS[interval] if interval == "1h" else _next_day(begin, tz)
            total = session.scalar(
                select(func.coalesce(func.sum(Rollup.delta), 0.0)).where(
                    Rollup.datastream_id == stream,
                    Rollup.interval == "15min",
                    Rollup.start >= begin,
                    Rollup.start < finish,
                )
            )
            sums[begin] = float(total or 0.0)
        _set_deltas(session, stream, interval, sums)
    session.flush()


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
    if not deltas:
        return
    rows = {
        r.start: r
        for r in session.scalars(
            select(Rollup).where(
                Rollup.datastream_id == stream, Rollup.interval == interval, Rollup.start.in_(list(deltas))
            )
        )
    }
    for start, value in deltas.items():
        row = rows.get(start)
        if row is None:
            if value == 0.0:
                continue
            # Consumption spread into a bucket without readings of its own (a gap).
            row = Rollup(
                datastream_id=stream,
                interval=interval,
                start=start,
                count=0,
                total=0.0,
                minimum=0.0,
                maximum=0.0,
                last=0.0,
                last_time=start,
                delta=max(value, 0.0),
            )
            session.add(row)
        else:
            row.delta = max(value, 0.0)


def readings_between(
    session: Session, stream: int, start: datetime, end: datetime
) -> tuple[list[datetime], list[float]]:
    """A datastream's readings in [start, end], from the database and, for old times, the lake."""
    result = session.execute(
        select(Reading.time, Reading.value)
        .where(Reading.datastream_id == stream, Reading.time >= start, Reading.time <= end)
        .order_by(Reading.time)
    ).all()
    found = {r[0]: r[1] for r in result}
    if start < clock.now() - timedelta(days=get_settings().iot_hot_days - 1):
        lake = read_history([stream], start, end)
        for moment, value in zip(lake["time"].to_pylist(), lake["value"].to_pylist(), strict=True):
            found.setdefault(moment, value)
    ordered = sorted(found.items())
    return [t for t, _ in ordered], [v for _, v in ordered]


def read_history(streams: Sequence[int], start: datetime, end: datetime) -> pa.Table:
    """Lake rows of these datastreams with start <= time <= end (pruned by day partition)."""
    table = _open()
    if table is None or not streams:
        return _table([], [], [], [])
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
    return (
        table.to_pyarrow_dataset()
        .to_table(filter=expression)
        .sort_by([("datastream_id", "ascending"), ("time", "ascending")])
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
            lake_removed += int(metrics.get("num_deleted_rows", 0) or 0)
    return {"database": int(removed or 0), "lake": lake_removed}


def compact() -> int:
    """Merge the lake's small files (one per flush) into larger ones; returns files removed."""
    table = _open()
    if table is None:
        return 0
    metrics = table.optimize.compact(writer_properties=writer_properties())
    return int(metrics.get("numFilesRemoved", 0))
