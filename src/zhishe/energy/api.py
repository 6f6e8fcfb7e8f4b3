"""JSON routes of smart energy under ``/api/v1/energy``: tariffs, a household's energy and cost, the
community view of a transformer, and the alert queue. Demand response and EV charging are in
``api_flex.py``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.energy import alerts as alerts_
from zhishe.energy import service
from zhishe.energy.models import Alert, ForecastRun, Tariff
from zhishe.energy.pages import reason_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/energy", tags=["energy"])


class TariffCreate(BaseModel):
    """A tariff to add to a family."""

    org_id: int = Field(ge=1, le=2**62)
    family: str = Field(min_length=1, max_length=64)
    carrier: str = Field("electricity", description="electricity, water or gas")
    name: str = Field(min_length=1, max_length=200)
    valid_from: date
    valid_to: date | None = None
    definition: dict[str, Any] = Field(
        description="prices per period, schedules of windows [period, 'HH:MM', 'HH:MM'] by day type and months, "
        "tiers [{up_to, amount}], tier_mode (surcharge|replace), cycle (month|year), cycle_start_month"
    )


class TariffRead(BaseModel):
    """A stored tariff."""

    id: int
    org_id: int
    family: str
    carrier: str
    name: str
    valid_from: date
    valid_to: date | None
    definition: dict[str, Any]


class AlertRead(BaseModel):
    """An alert, with its reason in words."""

    id: int
    site_id: int
    datastream_id: int | None
    kind: str
    subject: str
    severity: str
    state: str
    started_at: datetime
    ended_at: datetime | None
    reason: str
    reason_template: str
    params: dict[str, Any]
    raised_at: datetime
    acknowledged_by: str
    resolved_by: str
    note: str


class AlertAction(BaseModel):
    """A note with an acknowledge or resolve."""

    note: str = Field("", max_length=2000)


def _tariff(row: Tariff) -> TariffRead:
    return TariffRead(
        id=row.id,
        org_id=row.org_id,
        family=row.family,
        carrier=row.carrier,
        name=row.name,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        definition=row.definition,
    )


def _alert(row: Alert) -> AlertRead:
    return AlertRead(
        id=row.id,
        site_id=row.site_id,
        datastream_id=row.datastream_id,
        kind=row.kind,
        subject=row.subject,
        severity=row.severity,
        state=row.state,
        started_at=row.started_at,
        ended_at=row.ended_at,
        reason=reason_of(row),
        reason_template=row.reason,
        params=row.params,
        raised_at=row.raised_at,
        acknowledged_by=row.acknowledged_by,
        resolved_by=row.resolved_by,
        note=row.note,
    )


@router.get("/tariffs", response_model=list[TariffRead])
def list_tariffs(
    session: SessionDep, actor: CurrentActor, org_id: Annotated[int, Query(ge=1, le=2**62)]
) -> list[TariffRead]:
    """An organisation's tariffs (public prices)."""
    return [_tariff(t) for t in service.list_tariffs(session=session, org_id=org_id)]


@router.post("/tariffs", response_model=TariffRead, status_code=201)
def create_tariff(tariff_in: TariffCreate, session: SessionDep, actor: CurrentActor) -> TariffRead:
    """Add a tariff; refused when malformed or overlapping another of its family."""
    return _tariff(service.create_tariff(session=session, actor=actor, **tariff_in.model_dump()))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@router.get("/households/{site_id}")
def household(
    site_id: IdPath, session: SessionDep, actor: CurrentActor, day: date | None = None
) -> dict[str, Any]:
    """A household's energy on a day: load curve, daily and monthly use, cost, band and alerts."""
    v = service.household_view(session=session, actor=actor, site_id=site_id, day=day)
    cost = v.cost_today
    return {
        "site": v.site.id,
        "day": v.day.isoformat(),
        "load_kw": [{"time": t.isoformat(), "kw": round(x, 4)} for t, x in v.load],
        "today_kwh": round(v.today_kwh, 4),
        "daily": {
            k: [{"day": d.isoformat(), "amount": round(x, 4)} for d, x in rows] for k, rows in v.daily.items()
        },
        "monthly": {
            k: [{"month": d.isoformat()[:7], "amount": round(x, 4)} for d, x in rows]
            for k, rows in v.monthly.items()
        },
        "cost_today": None
        if cost is None
        else {
            "total": _money(cost.total),
            "currency": cost.currency,
            "kwh": str(cost.kwh),
            "lines": [
                {
                    "tariff": line.tariff,
                    "period": line.period,
                    "tier": line.tier,
                    "unit_price": str(line.unit_price),
                    "kwh": str(line.kwh),
                    "amount": str(line.amount),
                }
                for line in cost.lines
            ],
        },
        "cost_month": None
        if v.cost_month is None
        else {"total": _money(v.cost_month.total), "kwh": str(v.cost_month.kwh)},
        "tariff_note": v.tariff_note,
        "band": None
        if v.band is None
        else {k: (x.isoformat() if isinstance(x, date) else x) for k, x in v.band.items()},
        "alerts": [_alert(a).model_dump(mode="json") for a in v.alerts],
    }


@router.get("/community/{site_id}")
def community(
    site_id: IdPath, session: SessionDep, actor: CurrentActor, day: date | None = None
) -> dict[str, Any]:
    """A transformer's load from its households (aggregate) and assets, with peak and load factor."""
    v = service.community_view(session=session, actor=actor, transformer_id=site_id, day=day)
    return {
        "transformer": v.transformer.id,
        "day": v.day.isoformat(),
        "limit_kw": v.limit_kw,
        "households": v.households,
        "households_hidden": v.households_hidden,
        "peak_kw": round(v.peak_kw, 4),
        "peak_at": v.peak_at.isoformat() if v.peak_at else None,
        "load_factor": None if v.load_factor is None else round(v.load_factor, 4),
        "quarters_over_limit": v.over_limit,
        "series": {
            k: [{"time": t.isoformat(), "kw": round(x, 4)} for t, x in rows] for k, rows in v.series.items()
        },
        "flows_kwh": {k: round(x, 4) for k, x in v.flows.items()},
        "anomalies": [_alert(a).model_dump(mode="json") for a in v.anomalies],
    }


@router.get("/alerts", response_model=list[AlertRead])
def list_alerts(
    session: SessionDep,
    actor: CurrentActor,
    state: Annotated[str | None, Query(max_length=16)] = None,
    site_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertRead]:
    """Alerts you may see, newest first."""
    return [
        _alert(a)
        for a in alerts_.list_alerts(session=session, actor=actor, state=state, site_id=site_id, limit=limit)
    ]


@router.get("/alerts/{alert_id}", response_model=AlertRead)
def read_alert(alert_id: IdPath, session: SessionDep, actor: CurrentActor) -> AlertRead:
    """One alert."""
    return _alert(alerts_.read_alert(session=session, actor=actor, alert_id=alert_id))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge(alert_id: IdPath, body: AlertAction, session: SessionDep, actor: CurrentActor) -> AlertRead:
    """Say the alert is being handled."""
    return _alert(alerts_.acknowledge(session=session, actor=actor, alert_id=alert_id, note=body.note))


@router.post("/alerts/{alert_id}/resolve", response_model=AlertRead)
def resolve(alert_id: IdPath, body: AlertAction, session: SessionDep, actor: CurrentActor) -> AlertRead:
    """Close the alert with a note."""
    return _alert(alerts_.resolve(session=session, actor=actor, alert_id=alert_id, note=body.note))


@router.post("/forecasts/{site_id}", status_code=201)
def run_forecast(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Forecast the next day of a household or transformer now (models backtested, the best used)."""
    from zhishe.energy import forecasting

    return _forecast(forecasting.run_for_site(session=session, actor=actor, site_id=site_id))


@router.get("/forecasts/{site_id}")
def latest_forecast(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The latest day-ahead forecast of a household or transformer, with its baselines and backtest."""
    from zhishe.energy import forecasting

    return _forecast(forecasting.latest(session=session, actor=actor, site_id=site_id))


def _forecast(run: ForecastRun) -> dict[str, Any]:
    """A forecast run as JSON: its id, site, time and model, then the forecast itself."""
    return {
        "id": run.id,
        "site_id": run.site_id,
        "made_at": run.made_at.isoformat(),
        "model": run.model,
    } | run.result
