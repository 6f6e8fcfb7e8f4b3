"""Energy pages: a household's own energy and cost (phone-first), the operator's community view of
a transformer, and the alert queue with acknowledge and resolve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Conflict, Invalid
from zhishe.core.i18n import T, localize
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.energy import alerts as alerts_
from zhishe.energy import demand, service
from zhishe.iot import service as iot

router = APIRouter(include_in_schema=False)


def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(T("day must be a date like 2026-11-02"), detail={"parameter": "day"}) from None


def _local_forecast(result: dict[str, Any]) -> dict[str, Any]:
    """A stored forecast with its times in local clock time, for the charts."""
    tz = get_settings().tz
    from datetime import datetime

    return result | {
        "times": [datetime.fromisoformat(t).astimezone(tz).isoformat() for t in result.get("times", [])]
    }


def reason_of(alert: Any) -> str:
    """An alert's reason in the reader's language."""
    return localize(T(alert.reason, **{k: str(v) for k, v in (alert.params or {}).items()}))


def _points(series: Sequence[tuple[Any, float | None]]) -> dict[str, list[Any]]:
    """A series for Plotly: local clock times (Plotly draws the clock time it is given), and no
    value for buckets that have not happened yet."""
    tz = get_settings().tz
    now = clock.now()
    return {
        "x": [t.astimezone(tz).isoformat() for t, _ in series],
        "y": [None if t + timedelta(minutes=15) > now or v is None else round(v, 4) for t, v in series],
    }


@router.get("/energy", response_class=HTMLResponse)
def energy_home(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Residents go to their household; staff see their transformers and the alert queue."""
    sites = iot.list_sites(session=session, actor=actor, limit=1000)
    own = sorted(iot.member_site_ids(session=session, actor=actor))
    if own and len(own) == 1 and not actor.is_staff:
        return redirect(f"/energy/home/{own[0]}")
    return render(
        request,
        "energy/index.html",
        {
            "households": [s for s in sites if s.kind == "household" and s.id in own],
            "transformers": [s for s in sites if s.kind == "transformer"],
            "parks": [s for s in sites if s.kind == "charging_park"],
        },
    )


@router.get("/energy/home/{site_id}", response_class=HTMLResponse)
def household_page(
    request: Request, site_id: IdPath, session: SessionDep, actor: PageActor, day: str = ""
) -> Response:
    """A household's energy today: load curve, daily and monthly use, cost, band and alerts."""
    view = service.household_view(session=session, actor=actor, site_id=site_id, day=_day(day))
    chart = {
        "load": _points(view.load),
        "daily": {
            k: {"x": [d.isoformat() for d, _ in v], "y": [round(x, 3) for _, x in v]}
            for k, v in view.daily.items()
        },
    }
    if view.forecast is not None:
        chart["forecast"] = _local_forecast(view.forecast.result)
    return render(
        request,
        "energy/home.html",
        {
            "v": view,
            "chart_json": orjson.dumps(chart).decode(),
            "reason_of": reason_of,
            "events": demand.events_of_household(session=session, site_id=site_id),
            "now": clock.now(),
        },
    )


@router.post("/energy/home/{site_id}/opt-out", response_class=HTMLResponse)
async def opt_out(request: Request, site_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """A resident takes the household out of a demand-response event."""
    form = await request.form()
    check_csrf(request, form)
    event = str(form.get("event_id") or "")
    if not event.isdigit():
        raise Invalid(T("say which event"), detail={"field": "event_id"})
    demand.opt_out(session=session, actor=actor, event_id=int(event), site_id=site_id)
    return redirect(f"/energy/home/{site_id}#events")


@router.get("/energy/community/{site_id}", response_class=HTMLResponse)
def community_page(
    request: Request, site_id: IdPath, session: SessionDep, actor: PageActor, day: str = ""
) -> Response:
    """A transformer's load from households and assets, peak, load factor, flows and anomalies."""
    view = service.community_view(session=session, actor=actor, transformer_id=site_id, day=_day(day))
    chart: dict[str, Any] = {name: _points(points) for name, points in view.series.items()}
    chart["limit"] = view.limit_kw
    if view.forecast is not None:
        chart["forecast"] = _local_forecast(view.forecast.result)
    return render(
        request,
        "energy/community.html",
        {"v": view, "chart_json": orjson.dumps(chart).decode(), "reason_of": reason_of},
    )


@router.get("/energy/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep, actor: PageActor, state: str = "open") -> Response:
    """The alert queue."""
    if state and state not in alerts_.STATES:
        raise Invalid(T("state must be open, acknowledged or resolved"), detail={"parameter": "state"})
    found = alerts_.list_alerts(session=session, actor=actor, state=state or None)
    return render(
        request,
        "energy/alerts.html",
        {"alerts": found, "state": state, "states": alerts_.STATES, "reason_of": reason_of},
    )


@router.get("/energy/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """One alert, with its actions."""
    alert = alerts_.read_alert(session=session, actor=actor, alert_id=alert_id)
    return render(request, "energy/alert.html", {"a": alert, "reason_of": reason_of, "error": None})


@router.post("/energy/alerts/{alert_id}", response_class=HTMLResponse)
async def alert_action(request: Request, alert_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """Acknowledge or resolve an alert."""
    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    note = str(form.get("note") or "")[:2000]
    try:
        if action == "acknowledge":
            alerts_.acknowledge(session=session, actor=actor, alert_id=alert_id, note=note)
        elif action == "resolve":
            alerts_.resolve(session=session, actor=actor, alert_id=alert_id, note=note)
        else:
            raise Invalid(T("unknown action"), detail={"action": action})
    except (Invalid, Conflict) as exc:
        session.rollback()
        alert = alerts_.get_alert_or_raise(session=session, alert_id=alert_id)
        return render(
            request,
            "energy/alert.html",
            {"a": alert, "reason_of": reason_of, "error": exc.message},
            status=exc.status_code,
        )
    return redirect(f"/energy/alerts/{alert_id}")


def _dr_context(session: Any, actor: Any, error: str | None = None) -> dict[str, Any]:
    """What the demand-response page shows: events with their households, programmes, transformers."""
    events = demand.list_events(session=session, actor=actor)
    return {
        "rows": [
            {"event": e, "participants": demand.participants_of(session=session, event_id=e.id)}
            for e in events
        ],
        "programs": demand.list_programs(session=session, actor=actor, org_id=actor.org_id)
        if actor.org_id
        else [],
        "transformers": iot.list_sites(session=session, actor=actor, kind="transformer", limit=1000),
        "error": error,
        "report": None,
    }


@router.get("/energy/dr", response_class=HTMLResponse)
def dr_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Demand-response programmes and events: create them, follow opt-outs, read the reports."""
    return render(request, "energy/dr.html", _dr_context(session, actor))


@router.post("/energy/dr", response_class=HTMLResponse)
async def dr_action(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a programme or an event, cancel an event, or measure an event's report."""
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from zhishe.core.config import get_settings
    from zhishe.iot.models import Site

    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    try:
        if action == "program":
            if actor.org_id is None:
                raise Invalid(T("only staff of an organisation run programmes"))
            rate = str(form.get("incentive_fen_per_kwh") or "").strip()
            if rate and not rate.isdigit():
                raise Invalid(
                    T("the incentive must be a whole number of fen per kWh"),
                    detail={"field": "incentive_fen_per_kwh"},
                )
            demand.create_program(
                session=session,
                actor=actor,
                org_id=actor.org_id,
                name=str(form.get("name") or ""),
                incentive_fen_per_kwh=int(rate) if rate else None,
            )
        elif action == "event":
            tz = get_settings().tz
            try:
                start = datetime.fromisoformat(str(form.get("start") or "")).replace(tzinfo=tz)
                hours = float(str(form.get("hours") or "0"))
                target = float(str(form.get("target_kw") or "0"))
            except ValueError:
                raise Invalid(T("start must be a date and time, hours and target numbers")) from None
            transformer = str(form.get("transformer") or "")
            if not transformer.isdigit() or not str(form.get("program") or "").isdigit():
                raise Invalid(T("choose a programme and a transformer"))
            households = list(
                session.scalars(
                    select(Site.id).where(Site.parent_id == int(transformer), Site.kind == "household")
                )
            )
            demand.create_event(
                session=session,
                actor=actor,
                program_id=int(str(form.get("program"))),
                name=str(form.get("name") or ""),
                start=start,
                end=start + timedelta(hours=hours),
                target_kw=target,
                site_ids=households,
            )
        elif action in ("cancel", "report"):
            event = str(form.get("event_id") or "")
            if not event.isdigit():
                raise Invalid(T("say which event"))
            if action == "cancel":
                demand.cancel_event(session=session, actor=actor, event_id=int(event))
            else:
                demand.make_report(session=session, actor=actor, event_id=int(event))
        else:
            raise Invalid(T("unknown action"), detail={"action": action})
    except (Invalid, Conflict) as exc:
        session.rollback()
        return render(
            request, "energy/dr.html", _dr_context(session, actor, exc.message), status=exc.status_code
        )
    return redirect("/energy/dr")


@router.get("/energy/dr/{event_id}", response_class=HTMLResponse)
def dr_event_page(request: Request, event_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """One event: its window, target, households and opt-outs, and its report when measured."""
    from zhishe.core.errors import NotFound

    event = next((e for e in demand.list_events(session=session, actor=actor) if e.id == event_id), None)
    if event is None:
        demand.get_event_or_raise(session=session, event_id=event_id)
        raise NotFound(T("you neither run nor take part in this event"))
    try:
        report = demand.read_report(session=session, actor=actor, event_id=event_id)
    except (NotFound, Invalid):
        report = None
    return render(
        request,
        "energy/dr_event.html",
        {
            "e": event,
            "participants": demand.participants_of(session=session, event_id=event_id),
            "report": report,
        },
    )


@router.get("/energy/charging/{site_id}", response_class=HTMLResponse)
def charging_page(request: Request, site_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """A charging park: cars present or expected, the current plan under the limit, and its OCPP export."""
    from datetime import datetime

    from zhishe.core.errors import NotFound
    from zhishe.energy import evcharging

    sessions = evcharging.list_sessions(session=session, actor=actor, site_id=site_id)
    try:
        plan = evcharging.latest_plan(session=session, actor=actor, site_id=site_id)
    except NotFound:
        plan = None
    chart = {}
    if plan is not None:
        result = plan.result
        chart = {
            "plan": {
                "x": [
                    datetime.fromisoformat(t).astimezone(get_settings().tz).isoformat()
                    for t in result["slot_starts"]
                ],
                "base": result["base_load_kw"],
                "ev": result["ev_load_kw"],
                "grid": result["grid_load_kw"],
                "limit": result["limit_kw"],
            }
        }
    site = iot.get_site_or_raise(session=session, site_id=site_id)
    return render(
        request,
        "energy/charging.html",
        {
            "site": site,
            "sessions": sessions,
            "plan": plan,
            "chart_json": orjson.dumps(chart).decode(),
            "error": None,
        },
    )


@router.post("/energy/charging/{site_id}", response_class=HTMLResponse)
async def charging_action(
    request: Request, site_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """Add a car, let a car leave, or plan again."""
    from datetime import datetime, timedelta

    from zhishe.core.config import get_settings
    from zhishe.energy import evcharging

    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    try:
        if action == "arrive":
            tz = get_settings().tz
            try:
                arrival = datetime.fromisoformat(str(form.get("arrival") or "")).replace(tzinfo=tz)
                hours = float(str(form.get("hours") or "0"))
                energy = float(str(form.get("energy_kwh") or "0"))
                power = float(str(form.get("max_kw") or "0"))
            except ValueError:
                raise Invalid(T("arrival must be a date and time; hours, energy and power numbers")) from None
            driver = str(form.get("user_id") or "").strip()
            if driver and not driver.isdigit():
                raise Invalid(T("the resident must be a user id"), detail={"field": "user_id"})
            evcharging.add_session(
                session=session,
                actor=actor,
                site_id=site_id,
                arrival=arrival,
                departure=arrival + timedelta(hours=hours),
                energy_kwh=energy,
                max_kw=power,
                phase=str(form.get("phase") or ""),
                user_id=int(driver) if driver else None,
            )
        elif action == "leave":
            car = str(form.get("session_id") or "")
            if not car.isdigit():
                raise Invalid(T("say which car"))
            evcharging.leave(session=session, actor=actor, session_id=int(car))
        elif action == "plan":
            evcharging.replan(session=session, actor=actor, site_id=site_id, reason="asked on the page")
        else:
            raise Invalid(T("unknown action"), detail={"action": action})
    except (Invalid, Conflict) as exc:
        session.rollback()
        site = iot.get_site_or_raise(session=session, site_id=site_id)
        return render(
            request,
            "energy/charging.html",
            {"site": site, "sessions": [], "plan": None, "chart_json": "{}", "error": exc.message},
            status=exc.status_code,
        )
    return redirect(f"/energy/charging/{site_id}")
