"""Demand response, in OpenADR 3's terms: a **program** run by the operator, **events** in it (a
window and a target reduction in kW, for chosen households), and a **report** of the reduction
delivered against a stated baseline.

- Households in an event are notified and may opt out until it starts.
- The baseline of each household is, by default, the average over the highest 10 of its last 10
  similar days (``dr.high_x_of_y``, with no same-day adjustment), or its day-ahead forecast when
  the event says ``baseline="forecast"``. The report states the method.
- The operator sees the event total when at least ``MIN_AGGREGATE`` households take part (or all of
  them consented to showing their own data), and per household only for those that consented. A
  resident sees their own household's figures.
- A programme may pay an incentive per kWh shed (``incentive_fen_per_kwh``). When an event is
  reported, each household that shed energy and has a resident is owed its shed kWh × the rate
  (rounded half to even, in fen): ``energy.dr_incentive_due`` is published in the same transaction
  with ``event_id``, ``site_id`` (together one key per event and household), ``user_id`` (the
  household's first resident) and ``amount_fen``; the operator's ledger pays it into
  that resident's wallet, once however often the event is reported.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from zhishe.core import clock, events
from zhishe.core.accounts import service as accounts
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.events import Event
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.energy import dr
from zhishe.energy.models import DemandEvent, DemandProgram, DemandReport, EventParticipant, ForecastRun
from zhishe.iot import reads
from zhishe.iot import service as iot
from zhishe.iot.models import Site, SiteMember

__all__ = [
    "BASELINES",
    "INCENTIVE_DUE",
    "MAX_INCENTIVE_FEN_PER_KWH",
    "cancel_event",
    "create_event",
    "create_program",
    "events_of_household",
    "get_event_or_raise",
    "list_events",
    "list_programs",
    "make_report",
    "opt_out",
    "participants_of",
    "read_report",
]

BASELINES = ("high_x_of_y", "forecast")
#: The event published for each household owed an incentive when an event is reported.
INCENTIVE_DUE = "energy.dr_incentive_due"
#: The highest incentive a programme may pay per kWh shed (fen), 100 yuan.
MAX_INCENTIVE_FEN_PER_KWH = 10_000
_SLOT = timedelta(minutes=15)
_LOOKBACK_DAYS = 45


def _check_incentive(rate: int | None) -> int | None:
    """A programme's incentive per kWh shed: None, or whole fen from 1 to the maximum."""
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_INCENTIVE_FEN_PER_KWH:
        raise Invalid(
            T(
                "incentive_fen_per_kwh must be a whole number of fen from 1 to {n}, or empty",
                n=MAX_INCENTIVE_FEN_PER_KWH,
            ),
            detail={"field": "incentive_fen_per_kwh"},
        )
    return rate


def create_program(
    *,
    session: Session,
    actor: Actor,
    org_id: int,
    name: str,
    description: str = "",
    incentive_fen_per_kwh: int | None = None,
) -> DemandProgram:
    """A demand-response programme of the operator, paying ``incentive_fen_per_kwh`` per kWh a
    household sheds in its events (none when not given)."""
    accounts.get_org_or_raise(session=session, org_id=org_id)
    authorize(actor, "iot.operate", org_id=org_id, what="demand response")
    if not name.strip():
        raise Invalid(T("a programme needs a name"), detail={"field": "name"})
    rate = _check_incentive(incentive_fen_per_kwh)
    program = DemandProgram(
        org_id=org_id,
        name=name.strip(),
        description=description,
        incentive_fen_per_kwh=rate,
        created_at=clock.now(),
    )
    session.add(program)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.dr.program_create",
        object_type="energy_dr_program",
        object_id=program.id,
        object_org_id=org_id,
        detail={"name": program.name, "incentive_fen_per_kwh": rate},
    )
    return program


def list_programs(*, session: Session, actor: Actor, org_id: int) -> list[DemandProgram]:
    """An organisation's programmes."""
    authorize(actor, "iot.read", org_id=org_id, what="demand response")
    return list(
        session.scalars(
            select(DemandProgram).where(DemandProgram.org_id == org_id).order_by(DemandProgram.id)
        )
    )


def _program(session: Session, program_id: int) -> DemandProgram:
    program = session.get(DemandProgram, program_id)
    if program is None:
        raise NotFound(T("there is no programme {id}", id=program_id), detail={"program": program_id})
    return program


def get_event_or_raise(*, session: Session, event_id: int) -> DemandEvent:
    """The event with this id, or NotFound."""
    event = session.get(DemandEvent, event_id)
    if event is None:
        raise NotFound(T("there is no demand-response event {id}", id=event_id), detail={"event": event_id})
    return event


def create_event(
    *,
    session: Session,
    actor: Actor,
    program_id: int,
    name: str,
    start: datetime,
    end: datetime,
    target_kw: float,
    site_ids: list[int],
    baseline: str = "high_x_of_y",
) -> DemandEvent:
    """An event: a window on one local day, a target reduction and the households asked to join."""
    program = _program(session, program_id)
    authorize(actor, "iot.operate", org_id=program.org_id, what="demand response")
    tz = get_settings().tz
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid(T("start and end need a timezone offset"), detail={"field": "start"})
    if end <= start:
        raise Invalid(T("the event must end after it starts"), detail={"field": "end"})
    if start.astimezone(tz).date() != (end - timedelta(microseconds=1)).astimezone(tz).date():
        raise Invalid(T("an event must start and end on the same local day"), detail={"field": "end"})
    for moment, field in ((start, "start"), (end, "end")):
        local = moment.astimezone(tz)
        if local.minute % 15 or local.second or local.microsecond:
            raise Invalid(T("{field} must be on a quarter hour", field=field), detail={"field": field})
    if start <= clock.now():
        raise Invalid(T("an event must start in the future"), detail={"field": "start"})
    if not target_kw > 0 or target_kw != target_kw:
        raise Invalid(
            T("the target reduction must be a positive number of kW"), detail={"field": "target_kw"}
        )
    if baseline not in BASELINES:
        raise Invalid(T("baseline must be high_x_of_y or forecast"), detail={"field": "baseline"})
    ids = sorted(set(site_ids))
    if not ids:
        raise Invalid(T("choose the households that take part"), detail={"field": "site_ids"})
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(ids)))}
    for site_id in ids:
        site = sites.get(site_id)
        if site is None or site.kind != "household" or site.org_id != program.org_id:
            raise Invalid(
                T("site {id} is not a household of this programme's organisation", id=site_id),
                detail={"field": "site_ids", "site": site_id},
            )
    event = DemandEvent(
        program_id=program.id,
        name=name.strip() or f"DR {start.astimezone(tz):%Y-%m-%d %H:%M}",
        start=start,
        end=end,
        target_kw=float(target_kw),
        baseline=baseline,
        state="scheduled",
        created_by=actor.username,
        created_at=clock.now(),
    )
    session.add(event)
    session.flush()
    session.add_all(EventParticipant(event_id=event.id, site_id=i) for i in ids)
    residents = session.scalars(select(SiteMember.user_id).where(SiteMember.site_id.in_(ids))).all()
    notifications.notify_users(
        session=session,
        user_ids=residents,
        kind="energy.dr",
        message=T(
            "please use less electricity from {start} to {end}; you can opt out",
            start=f"{start.astimezone(tz):%m-%d %H:%M}",
            end=f"{end.astimezone(tz):%H:%M}",
        ),
        link=f"/energy/dr/{event.id}",
    )
    record(
        session=session,
        actor=actor,
        action="energy.dr.event_create",
        object_type="energy_dr_event",
        object_id=event.id,
        object_org_id=program.org_id,
        detail={
            "households": len(ids),
            "target_kw": target_kw,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    return event


def participants_of(*, session: Session, event_id: int) -> list[EventParticipant]:
    """An event's households, with their opt-outs."""
    return list(
        session.scalars(
            select(EventParticipant)
            .where(EventParticipant.event_id == event_id)
            .order_by(EventParticipant.site_id)
        )
    )


def events_of_household(*, session: Session, site_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The latest events a household is in, newest first, each with whether it opted out (for a
    page the household's access was already checked for)."""
    rows = session.execute(
        select(DemandEvent, EventParticipant)
        .join(EventParticipant, EventParticipant.event_id == DemandEvent.id)
        .where(EventParticipant.site_id == site_id)
        .order_by(DemandEvent.start.desc())
        .limit(limit)
    ).all()
    return [{"event": event, "opted_out": participant.opted_out} for event, participant in rows]


def list_events(*, session: Session, actor: Actor) -> list[DemandEvent]:
    """Events the actor runs (their organisation's) or takes part in (their household's), newest first."""
    own = iot.member_site_ids(session=session, actor=actor)
    query = select(DemandEvent).join(DemandProgram, DemandProgram.id == DemandEvent.program_id)
    conditions: list[ColumnElement[bool]] = []
    if own:
        conditions.append(
            DemandEvent.id.in_(select(EventParticipant.event_id).where(EventParticipant.site_id.in_(own)))
        )
    if actor.is_platform_admin:
        conditions = []
    elif actor.is_staff and actor.org_id is not None:
        conditions.append(DemandProgram.org_id == actor.org_id)
    elif not conditions:
        return []
    if conditions:
        query = query.where(or_(*conditions))
    return list(session.scalars(query.order_by(DemandEvent.start.desc())))


def opt_out(*, session: Session, actor: Actor, event_id: int, site_id: int) -> EventParticipant:
    """A resident takes their household out of an event, until it starts."""
    event = get_event_or_raise(session=session, event_id=event_id)
    if site_id not in iot.member_site_ids(session=session, actor=actor):
        raise Forbidden(T("only a resident of the household may opt it out"))
    participant = session.get(EventParticipant, (event.id, site_id))
    if participant is None:
        raise NotFound(T("this household is not in the event"), detail={"site": site_id})
    if clock.now() >= event.start:
        raise Conflict(
            T("the event has started: it is too late to opt out"), detail={"start": event.start.isoformat()}
        )
    if event.state == "cancelled":
        raise Conflict(T("the event was cancelled"))
    if not participant.opted_out:
        participant.opted_out, participant.opted_out_at = True, clock.now()
        session.flush()
        record(
            session=session,
            actor=actor,
            action="energy.dr.opt_out",
            object_type="energy_dr_event",
            object_id=event.id,
            detail={"site": site_id},
        )
    return participant


def cancel_event(*, session: Session, actor: Actor, event_id: int) -> DemandEvent:
    """Cancel an event that has not ended."""
    event = get_event_or_raise(session=session, event_id=event_id)
    program = _program(session, event.program_id)
    authorize(actor, "iot.operate", org_id=program.org_id, what="demand response")
    if event.state != "scheduled" or clock.now() >= event.end:
        raise Conflict(
            T("only a scheduled event that has not ended can be cancelled"), detail={"state": event.state}
        )
    event.state = "cancelled"
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.dr.event_cancel",
        object_type="energy_dr_event",
        object_id=event.id,
        object_org_id=program.org_id,
    )
    return event


def _demand_by_day(
    session: Session, site: Site, first: datetime, days: int
) -> tuple[list[Any], np.ndarray[Any, Any]]:
    """A household's demand (kW per quarter hour) for ``days`` local days from ``first``; NaN where unknown."""
    tz = get_settings().tz
    streams = iot.stream_ids(
        session=session, site_ids=[site.id], device_kind="electricity_meter", key="energy"
    )
    table = np.full((days, 96), np.nan)
    dates = [(first + timedelta(days=i)).astimezone(tz).date() for i in range(days)]
    index = {d: i for i, d in enumerate(dates)}
    used = reads.consumption(
        session=session, streams=streams, interval="15min", start=first, end=first + timedelta(days=days + 1)
    )
    for moment, kwh in used.items():
        local = moment.astimezone(tz)
        row = index.get(local.date())
        if row is None:
            continue
        slot = (local.hour * 60 + local.minute) // 15
        current = table[row, slot]
        table[row, slot] = (0.0 if np.isnan(current) else current) + kwh * 4
    return dates, table


def _household_report(session: Session, event: DemandEvent, site: Site) -> dict[str, Any]:
    tz = get_settings().tz
    event_day = event.start.astimezone(tz).date()
    first = datetime.combine(event_day - timedelta(days=_LOOKBACK_DAYS), time(0), tzinfo=tz)
    dates, table = _demand_by_day(session, site, first, _LOOKBACK_DAYS + 1)
    window = (event.start.astimezone(tz).time(), event.end.astimezone(tz).time())
    slots = int((event.end - event.start) / _SLOT)
    a = (window[0].hour * 60 + window[0].minute) // 15
    actual = table[-1, a : a + slots]
    earlier = [
        e.start.astimezone(tz).date()
        for e in session.scalars(
            select(DemandEvent)
            .join(EventParticipant, EventParticipant.event_id == DemandEvent.id)
            .where(
                EventParticipant.site_id == site.id,
                DemandEvent.id != event.id,
                DemandEvent.state != "cancelled",
            )
        )
    ]
    if event.baseline == "forecast":
        run = session.scalars(
            select(ForecastRun)
            .where(ForecastRun.site_id == site.id, ForecastRun.made_at <= event.start)
            .order_by(ForecastRun.made_at.desc())
        ).first()
        if run is None:
            raise Invalid(T("no forecast was made for {site} before the event", site=site.code))
        times = [datetime.fromisoformat(t) for t in run.result.get("times", [])]
        mean = run.result.get("mean", [])
        step = (times[1] - times[0]) if len(times) > 1 else _SLOT
        values = []
        for i in range(slots):
            moment = event.start + i * _SLOT
            j = next((k for k, t in enumerate(times) if t <= moment < t + step), None)
            if j is None:
                raise Invalid(T("the forecast for {site} does not cover the event window", site=site.code))
            values.append(float(mean[j]))
        baseline = dr.forecast_baseline(values, start=event.start, slot_minutes=15, name=run.model)
    else:
        baseline = dr.high_x_of_y(
            table, dates, event_day=event_day, window=window, x=10, y=10, tz=tz, event_days=earlier
        )
    if not bool(np.all(np.isfinite(actual))):
        raise Invalid(T("{site} has missing readings in the event window", site=site.code))
    reduction = dr.delivered_reduction(baseline, actual)
    return {
        "site": site.id,
        "code": site.code,
        "baseline_kw": [round(float(x), 4) for x in baseline.kw],
        "actual_kw": [round(float(x), 4) for x in actual],
        "reduction_kwh": round(reduction.total_kwh, 4),
        "mean_reduction_kw": round(reduction.mean_kw, 4),
        "days_used": [d.isoformat() for d in baseline.days_used],
        "method": baseline.method,
    }


def make_report(*, session: Session, actor: Actor, event_id: int) -> DemandReport:
    """Measure the delivered reduction of an ended event against each household's baseline."""
    event = get_event_or_raise(session=session, event_id=event_id)
    program = _program(session, event.program_id)
    authorize(actor, "iot.operate", org_id=program.org_id, what="demand response")
    if clock.now() < event.end:
        raise Conflict(T("the event has not ended yet"), detail={"end": event.end.isoformat()})
    if event.state == "cancelled":
        raise Conflict(T("the event was cancelled"))
    taking_part = [p for p in participants_of(session=session, event_id=event.id) if not p.opted_out]
    households: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for participant in taking_part:
        site = iot.get_site_or_raise(session=session, site_id=participant.site_id)
        try:
            households.append(_household_report(session, event, site) | {"consented": site.detail_consent})
        except Invalid as exc:
            problems.append({"site": site.id, "code": site.code, "reason": exc.message})
    for item in households:
        item["incentive_fen"] = _incentive_fen(item["reduction_kwh"], program.incentive_fen_per_kwh)
    slots = int((event.end - event.start) / _SLOT)
    baseline = np.zeros(slots)
    actual = np.zeros(slots)
    for item in households:
        baseline += np.asarray(item["baseline_kw"])
        actual += np.asarray(item["actual_kw"])
    reduction = baseline - actual
    methods = sorted({h["method"] for h in households})
    result = {
        "households": len(households),
        "opted_out": len(participants_of(session=session, event_id=event.id)) - len(taking_part),
        "target_kw": event.target_kw,
        "baseline_kw": [round(float(x), 4) for x in baseline],
        "actual_kw": [round(float(x), 4) for x in actual],
        "reduction_kw": [round(float(x), 4) for x in reduction],
        "mean_reduction_kw": round(float(reduction.mean()), 4) if slots else 0.0,
        "reduction_kwh": round(float(reduction.sum() * 0.25), 4),
        "target_met": bool(slots and float(reduction.mean()) >= event.target_kw),
        "per_household": households,
        "not_measured": problems,
    }
    report = DemandReport(event_id=event.id, made_at=clock.now(), method="; ".join(methods), result=result)
    session.add(report)
    event.state = "completed"
    session.flush()
    _announce_incentives(session, event, households)
    record(
        session=session,
        actor=actor,
        action="energy.dr.report",
        object_type="energy_dr_event",
        object_id=event.id,
        object_org_id=program.org_id,
        detail={"households": len(households), "reduction_kwh": result["reduction_kwh"]},
    )
    return report


def _incentive_fen(reduction_kwh: float, rate: int | None) -> int | None:
    """What a household is owed for the kWh it shed: kWh × rate, half to even in fen; None when
    the programme pays nothing, 0 when nothing was shed."""
    if rate is None:
        return None
    if not reduction_kwh > 0:
        return 0
    owed = Decimal(str(reduction_kwh)) * rate
    return int(owed.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _announce_incentives(session: Session, event: DemandEvent, households: list[dict[str, Any]]) -> None:
    """Publish ``energy.dr_incentive_due`` for each household owed an incentive that has a resident."""
    for item in households:
        if not item.get("incentive_fen"):
            continue
        residents = iot.household_residents(session=session, site_id=item["site"])
        if not residents:
            continue
        events.publish(
            Event(
                INCENTIVE_DUE,
                {
                    "event_id": event.id,
                    "user_id": residents[0],
                    "amount_fen": item["incentive_fen"],
                    "site_id": item["site"],
                    "reduction_kwh": item["reduction_kwh"],
                },
            ),
            session,
        )


def read_report(*, session: Session, actor: Actor, event_id: int) -> dict[str, Any]:
    """The latest report of an event as the actor may see it (audited).

    The operator gets the totals when at least 5 households took part (or all consented) and per
    household only the consenting ones; a resident gets their own household's figures.
    """
    event = get_event_or_raise(session=session, event_id=event_id)
    program = _program(session, event.program_id)
    report = session.scalars(
        select(DemandReport).where(DemandReport.event_id == event.id).order_by(DemandReport.made_at.desc())
    ).first()
    if report is None:
        raise NotFound(T("the event has no report yet"), detail={"event": event.id})
    result = dict(report.result)
    own = iot.member_site_ids(session=session, actor=actor)
    per = result.get("per_household", [])
    if own and not (actor.is_staff and actor.org_id == program.org_id) and not actor.is_platform_admin:
        mine = [h for h in per if h["site"] in own]
        if not mine:
            raise Forbidden(T("your household did not take part in this event"))
        shown = {"households": result["households"], "method": report.method, "per_household": mine}
    else:
        authorize(actor, "iot.read", org_id=program.org_id, what="demand response")
        enough = result["households"] >= iot.MIN_AGGREGATE or all(h.get("consented") for h in per)
        shown = (
            {k: v for k, v in result.items() if k != "per_household"}
            if enough
            else {
                "households": result["households"],
                "hidden": "fewer than 5 households took part: totals are not shown",
            }
        )
        shown["per_household"] = [h for h in per if h.get("consented")]
        shown["method"] = report.method
    record(
        session=session,
        actor=actor,
        action="energy.dr.report_read",
        object_type="energy_dr_event",
        object_id=event.id,
        object_org_id=program.org_id,
    )
    return shown | {"event": event.id, "made_at": report.made_at.isoformat()}
