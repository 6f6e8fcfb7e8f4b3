"""Reading back: a datastream's series for charts, the latest values of a site, and aggregates over
households that respect the minimum group size.

Every read here is of internal data, so every read is audited. A resident reads their own
household; the operating organisation's staff read community assets, and households only when the
household consented (``Site.detail_consent``) or as an aggregate of at least ``MIN_AGGREGATE``
households (``aggregate``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.i18n import T
from zhishe.iot import history
from zhishe.iot import service as iot
from zhishe.iot.models import Datastream, Device, Latest, Rollup, Site

__all__ = ["AGGREGATES", "Series", "aggregate", "consumption", "latest_of_site", "mean_level", "series"]

AGGREGATES = ("avg", "min", "max", "sum", "count", "last", "delta")
_MAX_RAW_POINTS = 20_000
_MAX_BUCKETS = 20_000


@dataclass(frozen=True, slots=True)
class Series:
    """Points of one datastream (or an aggregate): (bucket start or reading time, value, count)."""

    datastream: int
    unit: str
    interval: str
    agg: str
    points: list[tuple[datetime, float | None, int]]


def _stream_site(session: Session, datastream_id: int) -> tuple[Datastream, Site]:
    stream = iot.get_datastream_or_raise(session=session, datastream_id=datastream_id)
    device = iot.get_device_or_raise(session=session, device_id=stream.device_id)
    return stream, iot.get_site_or_raise(session=session, site_id=device.site_id)


def _check_range(start: datetime, end: datetime, interval: str, agg: str | None) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid(T("from and to need a timezone offset"), detail={"parameter": "from"})
    if end <= start:
        raise Invalid(T("to must be after from"), detail={"parameter": "to"})
    if interval not in ("raw", *history.INTERVALS):
        raise Invalid(
            T("interval must be raw, 15min, 1h or 1d, not {value}", value=repr(interval)),
            detail={"parameter": "interval"},
        )
    if agg is not None and agg not in AGGREGATES:
        raise Invalid(
            T("agg must be one of {aggs}, not {value}", aggs=", ".join(AGGREGATES), value=repr(agg)),
            detail={"parameter": "agg"},
        )
    if interval != "raw" and (end - start) / history.INTERVALS[interval] > _MAX_BUCKETS:
        raise Invalid(
            T(
                "that range holds more than {n} {interval} buckets; ask for a longer interval",
                n=_MAX_BUCKETS,
                interval=interval,
            ),
            detail={"parameter": "interval"},
        )


def _default_agg(kind: str) -> str:
    return {"cumulative": "delta", "event": "count"}.get(kind, "avg")


def _value(row: Rollup, agg: str) -> float | None:
    match agg:
        case "avg":
            return row.total / row.count if row.count else None
        case "min":
            return row.minimum if row.count else None
        case "max":
            return row.maximum if row.count else None
        case "sum":
            return row.total
        case "count":
            return float(row.count)
        case "last":
            return row.last if row.count else None
        case _:
            return row.delta if row.delta is not None else 0.0


def series(
    *,
    session: Session,
    actor: Actor,
    datastream_id: int,
    start: datetime,
    end: datetime,
    interval: str = "1h",
    agg: str | None = None,
) -> Series:
    """A datastream's values in [start, end): raw readings or one value per local bucket."""
    _check_range(start, end, interval, agg)
    stream, site = _stream_site(session, datastream_id)
    access = iot.site_access(session=session, actor=actor, site=site)
    if not access.detail:
        raise Forbidden(
            T(
                "this household has not consented to showing its own data; ask for an aggregate of at least {n} households",
                n=iot.MIN_AGGREGATE,
            ),
            detail={"site": site.code},
        )
    chosen = agg or _default_agg(stream.kind)
    if chosen == "delta" and stream.kind != "cumulative":
        raise Invalid(T("agg=delta is only for cumulative counters"), detail={"parameter": "agg"})
    points: list[tuple[datetime, float | None, int]]
    if interval == "raw":
        times, values = history.readings_between(session, stream.id, start, end - timedelta(microseconds=1))
        if len(times) > _MAX_RAW_POINTS:
            raise Invalid(
                T(
                    "{n} readings in that range; ask for at most {limit} or use an interval",
                    n=len(times),
                    limit=_MAX_RAW_POINTS,
                ),
                detail={"parameter": "interval"},
            )
        points = [(t, v, 1) for t, v in zip(times, values, strict=True)]
        chosen = "raw"
    else:
        rows = session.scalars(
            select(Rollup)
            .where(
                Rollup.datastream_id == stream.id,
                Rollup.interval == interval,
                Rollup.start >= history.bucket_start(start, interval, get_settings().tz),
                Rollup.start < end,
            )
            .order_by(Rollup.start)
        ).all()
        points = [(r.start, _value(r, chosen), r.count) for r in rows]
    record(
        session=session,
        actor=actor,
        action="iot.series.read",
        object_type="iot_datastream",
        object_id=stream.id,
        object_org_id=site.org_id,
        detail={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "interval": interval,
            "points": len(points),
        },
    )
    return Series(datastream=stream.id, unit=stream.unit_symbol, interval=interval, agg=chosen, points=points)


def consumption(
    *, session: Session, streams: Sequence[int], interval: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Counters' consumption per bucket start in [start, end), summed over ``streams`` (no audit:
    for the services that show it only as the rules above allow)."""
    out: dict[datetime, float] = defaultdict(float)
    if streams:
        rows = session.execute(
            select(Rollup.start, Rollup.delta).where(
                Rollup.datastream_id.in_(streams),
                Rollup.interval == interval,
                Rollup.start >= start,
                Rollup.start < end,
            )
        ).all()
        for moment, delta in rows:
            out[moment] += float(delta or 0.0)
    return dict(out)


def mean_level(
    *, session: Session, streams: Sequence[int], interval: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Instantaneous datastreams' mean per bucket start in [start, end), summed over ``streams``."""
    out: dict[datetime, float] = defaultdict(float)
    if streams:
        rows = session.execute(
            select(Rollup.start, Rollup.total, Rollup.count).where(
                Rollup.datastream_id.in_(streams),
                Rollup.interval == interval,
                Rollup.start >= start,
                Rollup.start < end,
            )
        ).all()
        for moment, total, count in rows:
            out[moment] += float(total) / count if count else 0.0
    return dict(out)


def latest_of_site(*, session: Session, actor: Actor, site_id: int) -> list[tuple[Datastream, Latest | None]]:
    """Each datastream of a site with its latest reading (the hot table)."""
    access = iot.read_site(session=session, actor=actor, site_id=site_id)
    if not access.detail:
        raise Forbidden(
            T("this household has not consented to showing its own data"), detail={"site": site_id}
        )
    rows = session.execute(
        select(Datastream, Latest)
        .join(Device, Device.id == Datastream.device_id)
        .outerjoin(Latest, Latest.datastream_id == Datastream.id)
        .where(Device.site_id == site_id)
        .order_by(Datastream.id)
    ).all()
    return [(r[0], r[1]) for r in rows]


def aggregate(
    *,
    session: Session,
    actor: Actor,
    org_id: int,
    key: str,
    start: datetime,
    end: datetime,
    interval: str = "1h",
    site_ids: list[int] | None = None,
    parent_id: int | None = None,
) -> Series:
    """The sum over households (and their devices' datastreams with this ``key``) per bucket.

    Refused when fewer than ``MIN_AGGREGATE`` households would be in it, unless every one of them
    consented to showing its own data.
    """
    _check_range(start, end, interval, None)
    if interval == "raw":
        raise Invalid(T("aggregates need an interval: 15min, 1h or 1d"), detail={"parameter": "interval"})
    authorize(actor, "iot.read", org_id=org_id, what="household aggregates")
    query = select(Site).where(Site.org_id == org_id, Site.kind == "household")
    if site_ids:
        query = query.where(Site.id.in_(site_ids))
    if parent_id is not None:
        query = query.where(Site.parent_id == parent_id)
    households = list(session.scalars(query))
    if len(households) < iot.MIN_AGGREGATE and not (households and all(h.detail_consent for h in households)):
        raise Forbidden(
            T(
                "an aggregate must cover at least {n} households; this one covers {count}",
                n=iot.MIN_AGGREGATE,
                count=len(households),
            ),
            detail={"households": len(households)},
        )
    streams = session.execute(
        select(Datastream.id, Datastream.kind, Datastream.unit_symbol)
        .join(Device, Device.id == Datastream.device_id)
        .where(Device.site_id.in_([h.id for h in households]), Datastream.key == key)
    ).all()
    kinds = {s[1] for s in streams}
    agg = "delta" if kinds == {"cumulative"} else "avg"
    value = (
        func.sum(Rollup.delta) if agg == "delta" else func.sum(Rollup.total / func.nullif(Rollup.count, 0))
    )
    rows = session.execute(
        select(Rollup.start, value, func.count())
        .where(
            Rollup.datastream_id.in_([s[0] for s in streams]),
            Rollup.interval == interval,
            Rollup.start >= history.bucket_start(start, interval, get_settings().tz),
            Rollup.start < end,
        )
        .group_by(Rollup.start)
        .order_by(Rollup.start)
    ).all()
    record(
        session=session,
        actor=actor,
        action="iot.aggregate.read",
        object_type="organisation",
        object_id=org_id,
        object_org_id=org_id,
        detail={
            "key": key,
            "households": len(households),
            "interval": interval,
            "at": clock.now().isoformat(),
        },
    )
    unit = streams[0][2] if streams else ""
    return Series(
        datastream=0,
        unit=unit,
        interval=interval,
        agg="sum of " + agg,
        points=[(r[0], float(r[1]) if r[1] is not None else None, int(r[2])) for r in rows],
    )
