"""Running the detectors over the households' recent data and raising what they find.

For each household site (``run``, every few minutes from the worker, or ``zhishe energy detect``):

- **water leaks** from the water meter's 15-minute consumption over the last two days;
- **abnormal use** of electricity against the household's latest day-ahead forecast interval (95 %);
- **counter resets and meter swaps** recorded by the rollups (``iot_counter_events``);
- **unusual inactivity**, only for households enrolled with consent (``Site.care_enrolled``): learned
  from their own motion and door events and electricity use over the past weeks, by hour of day and
  kind of day.

Alerts are raised through ``energy.alerts`` (idempotent: a finding raised before is not raised again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.energy import alerts, detect, inactivity
from zhishe.energy.models import ForecastRun
from zhishe.iot import history, reads
from zhishe.iot import service as iot
from zhishe.iot.models import CounterEvent, Datastream, Site

__all__ = ["DetectionResult", "run", "run_site"]

#: How far back inactivity habits are learned.
_LEARN_WEEKS = 8
#: A pause during the day alarms past twice the longest usual one at that time (at least 30 min
#: more): one person's afternoon nap is not a fall, and a false alarm at a neighbour's door costs trust.
_PAUSE_SLACK = 1.0
#: Use outside the forecast interval by less than this (kWh over the run) is not worth an alert.
_MIN_EXCESS_KWH = 0.2
#: A quarter hour whose electricity use is this much above the household's quiet level counts as use.
_USE_ABOVE_KWH = 0.05


@dataclass
class DetectionResult:
    """What one run found: new alerts per kind, and households skipped with the reason."""

    sites: int = 0
    raised: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _streams(session: Session, site: Site, device_kind: str, key: str) -> list[Datastream]:
    return iot.streams_at(session=session, site_ids=[site.id], device_kind=device_kind, key=key)


def _quarters(
    session: Session, stream_ids: list[int], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """Consumption per quarter hour over the streams, in time order."""
    return sorted(
        reads.consumption(session=session, streams=stream_ids, interval="15min", start=start, end=end).items()
    )


def _filled(
    points: list[tuple[datetime, float]], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """Quarter hours from ``start`` to ``end`` with 0 where no consumption was recorded."""
    known = dict(points)
    out = []
    moment = history.bucket_start(start, "15min", get_settings().tz)
    while moment < end:
        out.append((moment, known.get(moment, 0.0)))
        moment += timedelta(minutes=15)
    return out


def _to_new(found: detect.Alert, datastream_id: int | None = None) -> alerts.NewAlert:
    return alerts.NewAlert(
        kind=found.kind,
        subject=found.subject,
        started_at=found.start,
        ended_at=found.end,
        reason=found.reason_template,
        params=dict(found.params),
        severity=found.severity,
        datastream_id=datastream_id,
    )


def run_site(session: Session, site: Site, now: datetime) -> tuple[list[alerts.NewAlert], str]:
    """The findings for one household at ``now``, and why inactivity was not checked (if so)."""
    tz = get_settings().tz
    found: list[alerts.NewAlert] = []
    # Water: the last two whole days and today so far, in litres per quarter hour.
    water = _streams(session, site, "water_meter", "volume")
    if water:
        start = now - timedelta(hours=48)
        quarters = _filled(_quarters(session, [s.id for s in water], start, now), start, now)
        complete = [(t, v) for t, v in quarters if t + timedelta(minutes=15) <= now]
        if complete:
            found += [_to_new(a, water[0].id) for a in detect.water_leak(complete, tz=tz, unit="m3")]
    # Counter corrections recorded by the rollups in the last two days.
    counters = [s.id for s in (*_streams(session, site, "electricity_meter", "energy"), *water)]
    if counters:
        events = session.scalars(
            select(CounterEvent).where(
                CounterEvent.datastream_id.in_(counters), CounterEvent.time >= now - timedelta(days=2)
            )
        ).all()
        for event in events:
            found.append(
                alerts.NewAlert(
                    kind="counter_" + event.kind if event.kind != "reset" else "counter_reset",
                    subject=f"datastream {event.datastream_id}",
                    started_at=event.time,
                    ended_at=event.time,
                    reason=event.reason,
                    params=dict(event.params),
                    severity="info",
                    datastream_id=event.datastream_id,
                )
            )
    found += _abnormal(session, site, now)
    skipped = ""
    if site.care_enrolled:
        activities = _activities(session, site, now)
        try:
            routine = inactivity.learn_routine(activities, today=now.astimezone(tz).date(), tz=tz)
            quiet = inactivity.check_inactivity(routine, activities, now=now, pause_slack=_PAUSE_SLACK)
        except Invalid as exc:
            quiet, skipped = [], exc.message
        found += [_to_new(a) for a in quiet]
    return found, skipped


def _abnormal(session: Session, site: Site, now: datetime) -> list[alerts.NewAlert]:
    """Electricity demand outside the latest forecast's 95 % interval, hour by hour, over the
    forecast's hours that have passed."""
    forecast = session.scalars(
        select(ForecastRun).where(ForecastRun.site_id == site.id).order_by(ForecastRun.made_at.desc())
    ).first()
    electricity = _streams(session, site, "electricity_meter", "energy")
    if forecast is None or not electricity:
        return []
    result: dict[str, Any] = forecast.result
    band = result.get("intervals", {}).get("95")
    times = [datetime.fromisoformat(t) for t in result.get("times") or []]
    if not band or len(times) < 2:
        return []
    step = times[1] - times[0]
    per_hour = round(timedelta(hours=1) / step)
    if per_hour < 1 or timedelta(hours=1) % step:
        return []
    quarters = dict(_quarters(session, [s.id for s in electricity], times[0], times[-1] + step))
    hours: list[datetime] = []
    actual: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    for first in range(0, len(times) - per_hour + 1, per_hour):
        begin = times[first]
        if begin + timedelta(hours=1) > now:
            break
        used = [quarters.get(begin + timedelta(minutes=15 * q)) for q in range(4)]
        hours.append(begin)
        actual.append(float(np.nan) if any(u is None for u in used) else sum(u or 0.0 for u in used))
        # kW per step over the hour → kWh in the hour: the mean of the steps' bounds.
        lower.append(float(np.mean(band["lower"][first : first + per_hour])))
        upper.append(float(np.mean(band["upper"][first : first + per_hour])))
    if not hours:
        return []
    found = detect.abnormal_use(
        hours,
        actual,
        lower=lower,
        upper=upper,
        tz=get_settings().tz,
        interval="1h",
        min_excess=_MIN_EXCESS_KWH,
    )
    return [_to_new(a, electricity[0].id) for a in found]


def _activities(session: Session, site: Site, now: datetime) -> list[inactivity.Activity]:
    """Motion and door events and electricity use of a household over the learning weeks."""
    start = now - timedelta(weeks=_LEARN_WEEKS)
    out: list[inactivity.Activity] = []
    sources = [
        (stream, kind)
        for device_kind, key, kind in (("motion_sensor", "motion", "motion"), ("door_sensor", "door", "door"))
        for stream in _streams(session, site, device_kind, key)
    ]
    events = history.readings_many(
        session, [s.id for s, _ in sources], start, now, fresh=False, kinds=("event",)
    )
    for stream, kind in sources:
        times, values = events.get(stream.id, ([], []))
        moments = [t for t, v in zip(times, values, strict=True) if v > 0]
        out.append(inactivity.Activity(place=stream.room or kind, kind=kind, times=moments))  # type: ignore[arg-type]
    electricity = _streams(session, site, "electricity_meter", "energy")
    if electricity:
        quarters = _quarters(session, [s.id for s in electricity], start, now)
        if quarters:
            quiet = float(np.percentile([v for _, v in quarters], 25))
            used = [t + timedelta(minutes=15) for t, v in quarters if v > quiet + _USE_ABOVE_KWH]
            out.append(inactivity.Activity(place="electricity", kind="use", times=used))
    return out


def run(*, session: Session, now: datetime | None = None, org_id: int | None = None) -> DetectionResult:
    """Run every detector for every household (of one organisation, or all) and raise new alerts."""
    now = now or clock.now()
    result = DetectionResult()
    query = select(Site).where(Site.kind == "household").order_by(Site.id)
    if org_id is not None:
        query = query.where(Site.org_id == org_id)
    for site in session.scalars(query).all():
        result.sites += 1
        found, skipped = run_site(session, site, now)
        if skipped:
            result.skipped.append((site.code, skipped))
        for alert in alerts.raise_alerts(session=session, site=site, found=found):
            result.raised[alert.kind] = result.raised.get(alert.kind, 0) + 1
    return result
