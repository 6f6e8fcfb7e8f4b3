"""Energy pages: a household's own energy and cost (phone-first), the operator's community view of
a transformer, and the alert queue with acknowledge and resolve."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Conflict, Invalid
from zhishe.core.i18n import T, localize
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.energy import alerts as alerts_
from zhishe.energy import service
from zhishe.iot import service as iot

router = APIRouter(include_in_schema=False)


def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(T("day must be a date like 2026-11-02"), detail={"parameter": "day"}) from None


def reason_of(alert: Any) -> str:
    """An alert's reason in the reader's language."""
    return localize(T(alert.reason, **{k: str(v) for k, v in (alert.params or {}).items()}))


def _points(series: list[tuple[Any, float]]) -> dict[str, list[Any]]:
    return {"x": [t.isoformat() for t, _ in series], "y": [round(v, 4) for _, v in series]}


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
        chart["forecast"] = view.forecast.result
    return render(
        request,
        "energy/home.html",
        {"v": view, "chart_json": orjson.dumps(chart).decode(), "reason_of": reason_of},
    )


@router.get("/energy/community/{site_id}", response_class=HTMLResponse)
def community_page(
    request: Request, site_id: IdPath, session: SessionDep, actor: PageActor, day: str = ""
) -> Response:
    """A transformer's load from households and assets, peak, load factor, flows and anomalies."""
    view = service.community_view(session=session, actor=actor, transformer_id=site_id, day=_day(day))
    chart: dict[str, Any] = {name: _points(points) for name, points in view.series.items()}
    chart["limit"] = view.limit_kw
    if view.forecast is not None:
        chart["forecast"] = view.forecast.result
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
