"""The rules of smart energy for people: tariffs with effective dates, a household's own energy and
cost, and the operator's view of a transformer and the community's assets.

A household's view is for its residents (or the operator, with the household's consent). The
operator's community view builds the transformer's load from its households only as an aggregate
of at least ``MIN_AGGREGATE`` households (``zhishe.iot.reads.aggregate``), plus the community assets
it runs (charging parks, the battery, PV), which are not personal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.i18n import T
from zhishe.energy import tariff as tariffs_
from zhishe.energy.models import Alert, ForecastRun, Tariff
from zhishe.iot import history, reads
from zhishe.iot import service as iot
from zhishe.iot.models import Site

__all__ = [
    "CommunityView",
    "HouseholdView",
    "community_view",
    "create_tariff",
    "household_view",
    "list_tariffs",
    "tariffs_in_force",
]

#: Tariff families by carrier, as stored for an organisation.
CARRIERS = ("electricity", "water", "gas")


# --- tariffs -----------------------------------------------------------------------------------


def create_tariff(
    *,
    session: Session,
    actor: Actor,
    org_id: int,
    family: str,
    carrier: str,
    name: str,
    valid_from: date,
    valid_to: date | None,
    definition: dict[str, Any],
) -> Tariff:
    """Add a tariff to a family; refused when it overlaps another of the family or is malformed."""
    accounts.get_org_or_raise(session=session, org_id=org_id)
    authorize(actor, "iot.manage", org_id=org_id, what="tariffs")
    if carrier not in CARRIERS:
        raise Invalid(T("carrier must be electricity, water or gas"), detail={"field": "carrier"})
    if not family.strip() or not name.strip():
        raise Invalid(T("a tariff needs a family and a name"), detail={"field": "family"})
    if valid_to is not None and valid_to <= valid_from:
        raise Invalid(T("valid_to must be after valid_from"), detail={"field": "valid_to"})
    priced = tariffs_.tariff_from_definition(
        definition, name=name, valid_from=valid_from, valid_to=valid_to, family=family
    )
    others = [
        _priced(t)
        for t in session.scalars(select(Tariff).where(Tariff.org_id == org_id, Tariff.family == family))
    ]
    tariffs_.validate_tariffs([*others, priced])
    row = Tariff(
        org_id=org_id,
        family=family.strip(),
        carrier=carrier,
        name=name.strip(),
        valid_from=valid_from,
        valid_to=valid_to,
        definition=definition,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="energy.tariff.create",
        object_type="energy_tariff",
        object_id=row.id,
        object_org_id=org_id,
        detail={"family": family, "name": name, "valid_from": valid_from.isoformat()},
    )
    return row


def _priced(row: Tariff) -> tariffs_.Tariff:
    return tariffs_.tariff_from_definition(
        row.definition, name=row.name, valid_from=row.valid_from, valid_to=row.valid_to, family=row.family
    )


def list_tariffs(*, session: Session, org_id: int) -> list[Tariff]:
    """An organisation's tariffs by family and start date (tariffs are public prices)."""
    return list(
        session.scalars(
            select(Tariff).where(Tariff.org_id == org_id).order_by(Tariff.family, Tariff.valid_from)
        )
    )


def tariffs_in_force(*, session: Session, org_id: int, carrier: str) -> list[tariffs_.Tariff]:
    """The priced tariffs of the organisation's first family for ``carrier`` (all their dates)."""
    rows = session.scalars(
        select(Tariff)
        .where(Tariff.org_id == org_id, Tariff.carrier == carrier)
        .order_by(Tariff.family, Tariff.valid_from)
    ).all()
    if not rows:
        return []
    family = rows[0].family
    return [_priced(r) for r in rows if r.family == family]


# --- a household -------------------------------------------------------------------------------


@dataclass
class HouseholdView:
    """What a household sees of its own energy on one local day."""

    site: Site
    day: date
    #: (local time label, kW) per 15 minutes of the day, from the electricity counter.
    load: list[tuple[datetime, float]] = field(default_factory=list)
    today_kwh: float = 0.0
    #: (local date, kWh / m³) for the last 30 days, per carrier.
    daily: dict[str, list[tuple[date, float]]] = field(default_factory=dict)
    #: (first day of month, amount) for the last 12 months, per carrier.
    monthly: dict[str, list[tuple[date, float]]] = field(default_factory=dict)
    cost_today: tariffs_.Cost | None = None
    cost_month: tariffs_.Cost | None = None
    tariff_note: str = ""
    #: Yesterday's kWh of similar households: percentiles and where this one falls.
    band: dict[str, Any] | None = None
    alerts: list[Alert] = field(default_factory=list)
    forecast: ForecastRun | None = None


def _local_midnight(day: date) -> datetime:
    tz = get_settings().tz
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _streams(session: Session, site_ids: list[int], device_kind: str, key: str) -> list[int]:
    return iot.stream_ids(session=session, site_ids=site_ids, device_kind=device_kind, key=key)


def _deltas(
    session: Session, streams: list[int], interval: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Consumption per bucket start, summed over ``streams``."""
    return reads.consumption(session=session, streams=streams, interval=interval, start=start, end=end)


def household_view(*, session: Session, actor: Actor, site_id: int, day: date | None = None) -> HouseholdView:
    """A household's energy, water and gas on ``day`` (default today), its cost, band and alerts."""
    site = iot.get_site_or_raise(session=session, site_id=site_id)
    if site.kind != "household":
        raise Invalid(T("this page is for households"), detail={"site": site.code})
    access = iot.site_access(session=session, actor=actor, site=site)
    if not access.detail:
        raise Forbidden(
            T("this household has not consented to showing its own data"), detail={"site": site.code}
        )
    tz = get_settings().tz
    day = day or clock.now().astimezone(tz).date()
    start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
    view = HouseholdView(site=site, day=day)
    electricity = _streams(session, [site.id], "electricity_meter", "energy")
    quarters = _deltas(session, electricity, "15min", start, end)
    view.load = [(t, quarters.get(t, 0.0) * 4) for t in _bucket_starts(start, end)]
    view.today_kwh = sum(quarters.values())
    carriers = {
        "electricity": electricity,
        "water": _streams(session, [site.id], "water_meter", "volume"),
        "gas": _streams(session, [site.id], "gas_meter", "volume"),
    }
    month_start = day.replace(day=1)
    year_ago = (month_start - timedelta(days=335)).replace(day=1)
    for carrier, streams in carriers.items():
        if not streams:
            continue
        days = _deltas(session, streams, "1d", _local_midnight(year_ago), end)
        local = {k.astimezone(tz).date(): v for k, v in days.items()}
        view.daily[carrier] = [
            (d, local.get(d, 0.0)) for d in (day - timedelta(days=i) for i in range(29, -1, -1))
        ]
        months: dict[date, float] = defaultdict(float)
        for d, v in local.items():
            months[d.replace(day=1)] += v
        view.monthly[carrier] = sorted(months.items())
    _price(session, view, site, electricity, day)
    view.band = _band(session, site, day - timedelta(days=1))
    view.alerts = list(
        session.scalars(
            select(Alert)
            .where(Alert.site_id == site.id, Alert.state != "resolved")
            .order_by(Alert.raised_at.desc())
        )
    )
    view.forecast = session.scalars(
        select(ForecastRun).where(ForecastRun.site_id == site.id).order_by(ForecastRun.made_at.desc())
    ).first()
    record(
        session=session,
        actor=actor,
        action="energy.household.read",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
        detail={"day": day.isoformat()},
    )
    return view


def _bucket_starts(start: datetime, end: datetime) -> list[datetime]:
    out = []
    moment = history.bucket_start(start, "15min", get_settings().tz)
    while moment < end:
        out.append(moment)
        moment += timedelta(minutes=15)
    return out


def _price(session: Session, view: HouseholdView, site: Site, streams: list[int], day: date) -> None:
    priced = tariffs_in_force(session=session, org_id=site.org_id, carrier="electricity")
    if not priced or not streams:
        view.tariff_note = "no electricity tariff is configured" if not priced else ""
        return
    tz = get_settings().tz
    start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
    in_force = [t for t in priced if t.in_force(day)]
    if not in_force:
        view.tariff_note = "no electricity tariff is in force on this day"
        return
    cycle_start = in_force[0].cycle_start(day)
    month_start = max(day.replace(day=1), cycle_start)
    before_month = sum(
        _deltas(session, streams, "1d", _local_midnight(cycle_start), _local_midnight(month_start)).values()
    )
    before_today = sum(_deltas(session, streams, "1d", _local_midnight(cycle_start), start).values())
    quarters = sorted(_deltas(session, streams, "15min", start, end).items())
    hours = sorted(_deltas(session, streams, "1h", _local_midnight(month_start), end).items())
    if quarters:
        view.cost_today = tariffs_.cost(
            quarters, priced, tz=tz, interval="15min", used_before=Decimal(str(round(before_today, 6)))
        )
    if hours:
        view.cost_month = tariffs_.cost(
            hours, priced, tz=tz, interval="1h", used_before=Decimal(str(round(before_month, 6)))
        )


def _band(session: Session, site: Site, day: date) -> dict[str, Any] | None:
    """Yesterday's kWh of this household against at least 5 similar ones: anonymous percentiles."""
    others = list(
        session.scalars(select(Site.id).where(Site.org_id == site.org_id, Site.kind == "household"))
    )
    if len(others) < iot.MIN_AGGREGATE:
        return None
    start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
    values: dict[int, float] = {}
    for other in others:
        streams = _streams(session, [other], "electricity_meter", "energy")
        found = _deltas(session, streams, "1d", start, end)
        if found:
            values[other] = sum(found.values())
    if len(values) < iot.MIN_AGGREGATE or site.id not in values:
        return None
    array = np.array(sorted(values.values()))
    mine = values[site.id]
    p10, p25, p50, p75, p90 = (float(x) for x in np.percentile(array, [10, 25, 50, 75, 90]))
    below = float((array < mine).mean() * 100)
    return {
        "day": day,
        "households": len(values),
        "p10": p10,
        "p25": p25,
        "p50": p50,
        "p75": p75,
        "p90": p90,
        "mine": mine,
        "share_below": below,
    }


# --- the community -----------------------------------------------------------------------------


@dataclass
class CommunityView:
    """The operator's view of one transformer on one local day."""

    transformer: Site
    day: date
    limit_kw: float | None
    households: int
    #: (bucket start, kW) per 15 minutes: households (aggregate), EV, battery, PV, and the total.
    series: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    peak_kw: float = 0.0
    peak_at: datetime | None = None
    load_factor: float | None = None
    over_limit: int = 0
    households_hidden: str = ""
    #: Energy flows of the day in kWh: PV made, battery charged and discharged, EV charged, grid.
    flows: dict[str, float] = field(default_factory=dict)
    anomalies: list[Alert] = field(default_factory=list)
    forecast: ForecastRun | None = None


def _asset_power(
    session: Session, site_ids: list[int], device_kind: str, start: datetime, end: datetime
) -> dict[datetime, float]:
    """Average kW per 15 minutes of the ``power`` datastreams of these sites' devices of a kind."""
    streams = _streams(session, site_ids, device_kind, "power")
    return reads.mean_level(session=session, streams=streams, interval="15min", start=start, end=end)


def community_view(
    *, session: Session, actor: Actor, transformer_id: int, day: date | None = None
) -> CommunityView:
    """A transformer's load built up from its households (as an aggregate) and assets on ``day``."""
    transformer = iot.get_site_or_raise(session=session, site_id=transformer_id)
    if transformer.kind != "transformer":
        raise Invalid(T("this page is for transformers"), detail={"site": transformer.code})
    authorize(actor, "iot.read", org_id=transformer.org_id, what=f"site {transformer.code}")
    tz = get_settings().tz
    day = day or clock.now().astimezone(tz).date()
    start, end = _local_midnight(day), _local_midnight(day + timedelta(days=1))
    fed = list(session.scalars(select(Site).where(Site.parent_id == transformer.id)))
    households = [s for s in fed if s.kind == "household"]
    limit = transformer.properties.get("limit_kw")
    view = CommunityView(
        transformer=transformer,
        day=day,
        limit_kw=float(limit) if isinstance(limit, int | float) else None,
        households=len(households),
    )
    buckets = _bucket_starts(start, end)
    home: dict[datetime, float] = {}
    if len(households) >= iot.MIN_AGGREGATE or (households and all(h.detail_consent for h in households)):
        streams = _streams(session, [h.id for h in households], "electricity_meter", "energy")
        home = {k: v * 4 for k, v in _deltas(session, streams, "15min", start, end).items()}
    elif households:
        view.households_hidden = "fewer than 5 households: their load is not shown"
    ids = [s.id for s in fed] + [transformer.id]
    ev = _asset_power(session, ids, "ev_charger", start, end)
    battery = _asset_power(session, ids, "battery", start, end)
    pv = _asset_power(session, ids, "pv_inverter", start, end)
    view.series["households"] = [(b, home.get(b, 0.0)) for b in buckets]
    if ev:
        view.series["ev"] = [(b, ev.get(b, 0.0)) for b in buckets]
    if battery:
        view.series["battery"] = [(b, battery.get(b, 0.0)) for b in buckets]
    if pv:
        view.series["pv"] = [(b, -abs(pv.get(b, 0.0))) for b in buckets]
    total = [
        (b, home.get(b, 0.0) + ev.get(b, 0.0) + battery.get(b, 0.0) - abs(pv.get(b, 0.0))) for b in buckets
    ]
    view.series["total"] = total
    known = [v for b, v in total if b <= clock.now()]
    if known and max(known) > 0:
        view.peak_kw = max(known)
        view.peak_at = next(b for b, v in total if v == view.peak_kw)
        view.load_factor = (sum(known) / len(known)) / view.peak_kw
        if view.limit_kw is not None:
            view.over_limit = sum(1 for v in known if v > view.limit_kw)
    quarter = 0.25
    view.flows = {
        "pv": sum(abs(v) for v in pv.values()) * quarter,
        "battery_charge": sum(v for v in battery.values() if v > 0) * quarter,
        "battery_discharge": -sum(v for v in battery.values() if v < 0) * quarter,
        "ev": sum(ev.values()) * quarter,
        "households": sum(home.values()) * quarter,
        "grid": sum(max(v, 0.0) for _, v in total) * quarter,
    }
    view.anomalies = list(
        session.scalars(
            select(Alert)
            .join(Site, Site.id == Alert.site_id)
            .where(Site.org_id == transformer.org_id, Alert.state != "resolved")
            .order_by(Alert.severity.desc(), Alert.raised_at.desc())
            .limit(10)
        )
    )
    view.forecast = session.scalars(
        select(ForecastRun).where(ForecastRun.site_id == transformer.id).order_by(ForecastRun.made_at.desc())
    ).first()
    record(
        session=session,
        actor=actor,
        action="energy.community.read",
        object_type="iot_site",
        object_id=transformer.id,
        object_org_id=transformer.org_id,
        detail={"day": day.isoformat(), "households": len(households)},
    )
    return view
