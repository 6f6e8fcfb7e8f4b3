"""EV charging at a community charging park: sessions, the plan made again at every arrival and
departure, and the OCPP 1.6 profiles that carry it to the chargers.

The plan (``zhishe.energy.charging``, an LP solved by HiGHS) covers the next 24 hours in 15-minute
slots from now. Its limit is the transformer's (``limit_kw`` of the park's parent site) minus the
forecast base load: the transformer's latest day-ahead forecast where there is one, otherwise the
households' aggregate load of the same quarter hour a day earlier (a seasonal-naive forecast), and
zero when neither is known. A battery fed by the same transformer is planned with the cars, for
peak shaving.

Energy delivered so far is taken as what the previous plan scheduled up to now (chargers follow
their profiles); a charger's meter reading, when sent as a session update, replaces it.

A session may name the resident charging (``user_id``). When the car leaves, the event
``energy.charging_session_closed`` is published in the same transaction, with ``session_id``,
``user_id`` (or None), ``kwh_milli`` (the energy delivered in Wh), ``started_at`` (arrival),
``ended_at`` (when it left) and ``tariff_org_id`` (the organisation running the park, whose
electricity tariff prices the energy); the operator's ledger bills the resident from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock, events
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.events import Event
from zhishe.core.i18n import T
from zhishe.energy import charging, ocpp
from zhishe.energy.battery import Battery
from zhishe.energy.models import ChargingPlan, ChargingSession, ForecastRun
from zhishe.iot import history, reads
from zhishe.iot import service as iot
from zhishe.iot.models import Datastream, Device, Latest, Site

__all__ = [
    "CLOSED",
    "SLOTS",
    "add_session",
    "latest_plan",
    "leave",
    "list_sessions",
    "profiles",
    "replan",
]

#: The event published when a car leaves.
CLOSED = "energy.charging_session_closed"
#: Slots of a plan: 24 hours of 15 minutes.
SLOTS = 96
_SLOT = timedelta(minutes=15)
_PHASES = ("", "L1", "L2", "L3", "L1L2L3")


def _park(session: Session, actor: Actor, site_id: int) -> tuple[Site, Site]:
    park = iot.get_site_or_raise(session=session, site_id=site_id)
    if park.kind != "charging_park":
        raise Invalid(T("site {code} is not a charging park", code=park.code), detail={"site": site_id})
    authorize(actor, "iot.operate", org_id=park.org_id, what=f"site {park.code}")
    if park.parent_id is None:
        raise Invalid(
            T("the charging park has no transformer: set the site that feeds it"), detail={"site": park.code}
        )
    transformer = iot.get_site_or_raise(session=session, site_id=park.parent_id)
    limit = transformer.properties.get("limit_kw")
    if not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0:
        raise Invalid(
            T("transformer {code} has no limit_kw", code=transformer.code), detail={"site": transformer.code}
        )
    return park, transformer


def _driver(session: Session, user_id: int | None) -> int | None:
    """The resident charging, checked: an active resident's user id, or None."""
    if user_id is None:
        return None
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise Invalid(T("user_id must be a user id"), detail={"field": "user_id"})
    user = session.get(User, user_id)
    if user is None:
        raise Invalid(T("there is no user {id}", id=user_id), detail={"field": "user_id"})
    if user.role != Role.RESIDENT or not user.is_active:
        raise Invalid(
            T("user {name} is not an active resident: only residents charge at the park", name=user.username),
            detail={"field": "user_id"},
        )
    return user.id


def add_session(
    *,
    session: Session,
    actor: Actor,
    site_id: int,
    arrival: datetime,
    departure: datetime,
    energy_kwh: float,
    max_kw: float,
    phase: str = "",
    connector_id: int = 1,
    transaction_id: int = 0,
    user_id: int | None = None,
) -> tuple[ChargingSession, ChargingPlan]:
    """A car arrives (or is booked): record its session, with the resident charging when known
    (billed when the car leaves), and plan the park again."""
    park, _ = _park(session, actor, site_id)
    driver = _driver(session, user_id)
    if arrival.tzinfo is None or departure.tzinfo is None:
        raise Invalid(T("arrival and departure need a timezone offset"), detail={"field": "arrival"})
    if departure <= arrival:
        raise Invalid(T("departure must be after arrival"), detail={"field": "departure"})
    if departure <= clock.now():
        raise Invalid(T("the car has already left"), detail={"field": "departure"})
    if not 0 < energy_kwh <= 500 or not 0 < max_kw <= 500:
        raise Invalid(
            T("energy must be within (0, 500] kWh and power within (0, 500] kW"),
            detail={"field": "energy_kwh"},
        )
    if phase not in _PHASES:
        raise Invalid(T("phase must be L1, L2, L3, L1L2L3 or empty"), detail={"field": "phase"})
    if connector_id < 1 or transaction_id < 0:
        raise Invalid(
            T("connector ids start at 1 and transaction ids at 0"), detail={"field": "connector_id"}
        )
    row = ChargingSession(
        site_id=park.id,
        connector_id=connector_id,
        transaction_id=transaction_id,
        arrival=arrival,
        departure=departure,
        energy_kwh=float(energy_kwh),
        max_kw=float(max_kw),
        phase=phase,
        delivered_kwh=0.0,
        state="waiting" if arrival > clock.now() else "charging",
        created_at=clock.now(),
        user_id=driver,
    )
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.charging.arrive",
        object_type="energy_charging_session",
        object_id=row.id,
        object_org_id=park.org_id,
        detail={
            "energy_kwh": energy_kwh,
            "max_kw": max_kw,
            "departure": departure.isoformat(),
            "user_id": driver,
        },
    )
    return row, replan(session=session, actor=actor, site_id=park.id, reason=f"session {row.id} arrived")


def leave(
    *, session: Session, actor: Actor, session_id: int, delivered_kwh: float | None = None
) -> tuple[ChargingSession, ChargingPlan]:
    """A car leaves: close its session (with the charger's meter figure, if given), publish
    ``energy.charging_session_closed`` in the same transaction, and plan again."""
    row = session.get(ChargingSession, session_id)
    if row is None:
        raise NotFound(T("there is no charging session {id}", id=session_id), detail={"session": session_id})
    park, _ = _park(session, actor, row.site_id)
    if row.state == "left":
        raise Conflict(T("the car has already left"), detail={"session": session_id})
    if delivered_kwh is not None:
        if not 0 <= delivered_kwh <= 500:
            raise Invalid(
                T("delivered energy must be within [0, 500] kWh"), detail={"field": "delivered_kwh"}
            )
        if delivered_kwh > 0 and clock.now() <= row.arrival:
            raise Invalid(
                T("a car that has not arrived yet cannot have been delivered energy"),
                detail={"field": "delivered_kwh"},
            )
    _settle(session, park.id)
    if delivered_kwh is not None:
        row.delivered_kwh = float(delivered_kwh)
    row.state, row.left_at = "left", clock.now()
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.charging.leave",
        object_type="energy_charging_session",
        object_id=row.id,
        object_org_id=park.org_id,
        detail={"delivered_kwh": round(row.delivered_kwh, 3), "user_id": row.user_id},
    )
    events.publish(Event(CLOSED, _closed_payload(row, park)), session)
    return row, replan(session=session, actor=actor, site_id=park.id, reason=f"session {row.id} left")


def _closed_payload(row: ChargingSession, park: Site) -> dict[str, Any]:
    """What ``energy.charging_session_closed`` says of a session that just closed."""
    assert row.left_at is not None
    return {
        "session_id": row.id,
        "site_id": park.id,
        "user_id": row.user_id,
        "kwh_milli": round(row.delivered_kwh * 1000),
        "started_at": row.arrival.isoformat(),
        "ended_at": row.left_at.isoformat(),
        "tariff_org_id": park.org_id,
    }


def list_sessions(
    *, session: Session, actor: Actor, site_id: int, present: bool = True
) -> list[ChargingSession]:
    """The park's sessions: those present or expected (default), or all."""
    park, _ = _park(session, actor, site_id)
    query = (
        select(ChargingSession).where(ChargingSession.site_id == park.id).order_by(ChargingSession.arrival)
    )
    if present:
        query = query.where(ChargingSession.state != "left", ChargingSession.departure > clock.now())
    return list(session.scalars(query))


def latest_plan(*, session: Session, actor: Actor, site_id: int) -> ChargingPlan:
    """The park's current plan."""
    park, _ = _park(session, actor, site_id)
    found = session.scalars(
        select(ChargingPlan)
        .where(ChargingPlan.site_id == park.id)
        .order_by(ChargingPlan.made_at.desc(), ChargingPlan.id.desc())
    ).first()
    if found is None:
        raise NotFound(T("no plan has been made for this park yet"), detail={"site": park.code})
    return found


def _settle(session: Session, park_id: int) -> None:
    """Credit each session with what the current plan scheduled for it up to now."""
    plan = session.scalars(
        select(ChargingPlan)
        .where(ChargingPlan.site_id == park_id)
        .order_by(ChargingPlan.made_at.desc(), ChargingPlan.id.desc())
    ).first()
    if plan is None:
        return
    now = clock.now()
    start = datetime.fromisoformat(plan.result["start"])
    starts = [datetime.fromisoformat(t) for t in plan.result["slot_starts"]]
    ends = [*starts[1:], datetime.fromisoformat(plan.result["end"])]
    for item in plan.result["sessions"]:
        row = session.get(ChargingSession, int(item["session"]))
        if row is None or row.state == "left":
            continue
        done = 0.0
        for begin, end, kw in zip(starts, ends, item["power_kw"], strict=True):
            begin = max(begin, start, row.arrival)
            end = min(end, now, row.departure)
            if end > begin:
                done += kw * (end - begin).total_seconds() / 3600
        row.delivered_kwh = min(row.energy_kwh, plan.result["delivered_before"].get(str(row.id), 0.0) + done)
        if row.state == "waiting" and row.arrival <= now:
            row.state = "charging"


def _base_load(session: Session, transformer: Site, starts: list[datetime]) -> tuple[list[float], str]:
    """The forecast base load of the transformer per slot, and where it came from."""
    run = session.scalars(
        select(ForecastRun).where(ForecastRun.site_id == transformer.id).order_by(ForecastRun.made_at.desc())
    ).first()
    if run is not None and run.result.get("times"):
        times = [datetime.fromisoformat(t) for t in run.result["times"]]
        step = times[1] - times[0] if len(times) > 1 else _SLOT
        mean = run.result["mean"]
        values = []
        for moment in starts:
            j = next((k for k, t in enumerate(times) if t <= moment < t + step), None)
            values.append(float(mean[j]) if j is not None else float("nan"))
        if all(v == v for v in values):
            return [max(v, 0.0) for v in values], f"forecast {run.model}"
    households = [
        s.id
        for s in session.scalars(
            select(Site).where(Site.parent_id == transformer.id, Site.kind == "household")
        )
    ]
    streams = iot.stream_ids(
        session=session, site_ids=households, device_kind="electricity_meter", key="energy"
    )
    if not streams:
        return [0.0] * len(starts), "no base load known"
    day = timedelta(days=1)
    used = reads.consumption(
        session=session,
        streams=streams,
        interval="15min",
        start=starts[0] - day,
        end=starts[-1] - day + _SLOT,
    )
    by_start = {moment: kwh * 4 for moment, kwh in used.items()}
    return [by_start.get(s - day, 0.0) for s in starts], "the households' load a day earlier (seasonal naive)"


def _battery(session: Session, transformer: Site) -> tuple[Site | None, Battery | None]:
    site = session.scalars(
        select(Site).where(Site.parent_id == transformer.id, Site.kind == "battery")
    ).first()
    if site is None:
        return None, None
    props = site.properties
    try:
        capacity = float(props["capacity_kwh"])
        charge_kw = float(props.get("max_charge_kw", capacity / 2))
        discharge_kw = float(props.get("max_discharge_kw", charge_kw))
    except (KeyError, TypeError, ValueError):
        return site, None
    soc = session.scalars(
        select(Latest.value)
        .join(Datastream, Datastream.id == Latest.datastream_id)
        .join(Device, Device.id == Datastream.device_id)
        .where(Device.site_id == site.id, Datastream.key == "soc")
    ).first()
    initial = capacity * (float(soc) / 100 if soc is not None else 0.5)
    minimum = capacity * float(props.get("min_soc", 0.1))
    return site, Battery(
        capacity_kwh=capacity,
        max_charge_kw=charge_kw,
        max_discharge_kw=discharge_kw,
        initial_soc_kwh=max(min(initial, capacity), minimum),
        min_soc_kwh=minimum,
    )


def replan(*, session: Session, actor: Actor, site_id: int, reason: str = "asked") -> ChargingPlan:
    """Plan the park's cars (and the battery) for the next 24 hours from now, and keep the plan."""
    park, transformer = _park(session, actor, site_id)
    _settle(session, park.id)
    tz = get_settings().tz
    now = clock.now()
    first = history.bucket_start(now, "15min", tz)
    starts = [first + i * _SLOT for i in range(SLOTS)]
    base, base_from = _base_load(session, transformer, starts)
    battery_site, battery = _battery(session, transformer)
    present = list(
        session.scalars(
            select(ChargingSession).where(
                ChargingSession.site_id == park.id,
                ChargingSession.state != "left",
                ChargingSession.departure > now,
            )
        )
    )
    cars = [
        charging.ChargingSession(
            session_id=str(row.id),
            arrival=row.arrival,
            departure=row.departure,
            energy_kwh=row.energy_kwh,
            max_power_kw=row.max_kw,
            phase=row.phase or None,  # type: ignore[arg-type]
            delivered_kwh=min(row.delivered_kwh, row.energy_kwh),
        )
        for row in present
    ]
    grid = charging.Site(
        start=first, slot=_SLOT, limit_kw=float(transformer.properties["limit_kw"]), base_load_kw=base
    )
    made = charging.plan(now=now, sessions=cars, site=grid, battery=battery)
    result: dict[str, Any] = {
        "start": made.start.isoformat(),
        "end": made.end.isoformat(),
        "slot_starts": [t.isoformat() for t in made.slot_starts],
        "base_load_kw": [round(x, 4) for x in made.base_load_kw],
        "base_load_from": base_from,
        "limit_kw": float(transformer.properties["limit_kw"]),
        "ev_load_kw": [round(x, 4) for x in made.ev_load_kw],
        "grid_load_kw": [round(x, 4) for x in made.grid_load_kw],
        "energy_kwh": round(made.objective_kwh, 4),
        "min_share": round(made.min_share, 4),
        "status": made.status,
        "solve_seconds": round(made.solve_seconds, 4),
        "overloaded_slots": [t.isoformat() for t in made.overloaded_slots],
        "delivered_before": {str(row.id): row.delivered_kwh for row in present},
        "sessions": [
            {
                "session": int(p.session_id),
                "arrival": p.session.arrival.isoformat(),
                "departure": p.session.departure.isoformat(),
                "power_kw": [round(x, 4) for x in p.power_kw],
                "energy_kwh": round(p.energy_kwh, 4),
                "served_kwh": round(p.served_kwh, 4),
                "shortfall_kwh": round(p.shortfall_kwh, 4),
                "fraction_served": round(p.fraction_served, 4),
            }
            for p in made.sessions
        ],
        "battery": None
        if made.battery is None or battery_site is None
        else {
            "site": battery_site.id,
            "charge_kw": [round(x, 4) for x in made.battery.charge_kw],
            "discharge_kw": [round(x, 4) for x in made.battery.discharge_kw],
            "soc_kwh": [round(x, 4) for x in made.battery.soc_kwh],
            "peak_kw": round(made.battery.peak_kw, 4),
            "peak_without_battery_kw": round(made.battery.peak_without_battery_kw, 4),
        },
    }
    row = ChargingPlan(site_id=park.id, made_at=now, start=made.start, reason=reason[:100], result=result)
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.charging.plan",
        object_type="energy_charging_plan",
        object_id=row.id,
        object_org_id=park.org_id,
        detail={"reason": reason, "cars": len(cars), "energy_kwh": result["energy_kwh"]},
    )
    return row


def profiles(*, session: Session, actor: Actor, site_id: int) -> list[dict[str, Any]]:
    """OCPP 1.6 ``SetChargingProfile.req`` payloads (``TxProfile``) for every car of the current plan."""
    stored = latest_plan(session=session, actor=actor, site_id=site_id)
    made = _rebuild(stored)
    out = []
    for item in stored.result["sessions"]:
        row = session.get(ChargingSession, int(item["session"]))
        if row is None:
            continue
        payload = ocpp.set_charging_profile(
            made,
            session_id=str(row.id),
            connector_id=row.connector_id,
            transaction_id=row.transaction_id,
            charging_profile_id=stored.id * 1000 + row.id % 1000,
            timezone=get_settings().tz,
        )
        out.append({"session": row.id, "connectorId": row.connector_id, "request": payload})
    return out


def _rebuild(stored: ChargingPlan) -> charging.ChargingPlan:
    """The solver's plan object from a stored plan (for the OCPP export)."""
    result = stored.result
    starts = tuple(datetime.fromisoformat(t) for t in result["slot_starts"])
    slot = (starts[1] - starts[0]) if len(starts) > 1 else _SLOT
    sessions = []
    for item in result["sessions"]:
        car = charging.ChargingSession(
            session_id=str(item["session"]),
            arrival=datetime.fromisoformat(item["arrival"]),
            departure=datetime.fromisoformat(item["departure"]),
            energy_kwh=max(item["served_kwh"] + item["shortfall_kwh"], 1e-9),
            max_power_kw=max([*item["power_kw"], 1e-9]),
        )
        sessions.append(
            charging.SessionPlan(
                session=car,
                power_kw=tuple(item["power_kw"]),
                energy_kwh=item["energy_kwh"],
                served_kwh=item["served_kwh"],
                shortfall_kwh=item["shortfall_kwh"],
                fraction_served=item["fraction_served"],
            )
        )
    return charging.ChargingPlan(
        policy="lp",
        start=datetime.fromisoformat(result["start"]),
        end=datetime.fromisoformat(result["end"]),
        slot=slot,
        slot_starts=starts,
        base_load_kw=tuple(result["base_load_kw"]),
        headroom_kw=tuple(result["limit_kw"] - b for b in result["base_load_kw"]),
        ev_load_kw=tuple(result["ev_load_kw"]),
        grid_load_kw=tuple(result["grid_load_kw"]),
        sessions=tuple(sessions),
        battery=None,
        objective_kwh=result["energy_kwh"],
        min_share=result["min_share"],
        overloaded_slots=tuple(datetime.fromisoformat(t) for t in result["overloaded_slots"]),
        status=result["status"],
        stages=(),
        build_seconds=0.0,
        solve_seconds=result["solve_seconds"],
    )
