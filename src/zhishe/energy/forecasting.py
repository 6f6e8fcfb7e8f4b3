"""Day-ahead forecasts of households, transformers and the community, made from the readings'
rollups and kept as ``ForecastRun`` rows.

A series is the mean demand in kW per half hour (48 a day, the granularity the forecasting models
are tuned for), from the electricity counters' 15-minute consumption over the last 91 days:

- a household: its own meters;
- a transformer: the households it feeds, summed (only when there are at least ``MIN_AGGREGATE``
  of them, as for any operator view), plus its charging parks' chargers;
- the community (an organisation): all of its households.

``zhishe.energy.forecast`` fits MSTL and AutoETS beside the seasonal-naive baselines, backtests
them and uses the best per series; the run keeps the forecast, the intervals, the baselines and
the backtest. The worker refreshes every household's and transformer's forecast each night, with
``forecast_many`` on every core; a page or the API can ask for one now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.energy import forecast as forecaster
from zhishe.energy.models import ForecastRun
from zhishe.iot import history, reads
from zhishe.iot import service as iot
from zhishe.iot.models import Site

__all__ = ["HISTORY_DAYS", "Series", "latest", "refresh_all", "run_for_site", "series_of"]

HISTORY_DAYS = 91
_HALF_HOUR = timedelta(minutes=30)


@dataclass(frozen=True)
class Series:
    """Half-hourly mean demand (kW) of a site, oldest first; NaN where nothing was recorded."""

    site: Site
    times: list[datetime]
    kw: np.ndarray[Any, np.dtype[np.float64]]


def _household_streams(session: Session, site_ids: list[int]) -> list[int]:
    return iot.stream_ids(session=session, site_ids=site_ids, device_kind="electricity_meter", key="energy")


def series_of(session: Session, site: Site, *, end: datetime | None = None) -> Series:
    """The site's half-hourly demand over the last ``HISTORY_DAYS`` days up to ``end`` (default now)."""
    tz = get_settings().tz
    end = history.bucket_start(end or clock.now(), "1h", tz)
    if (end.astimezone(tz).minute // 30) == 0 and clock.now() - end >= _HALF_HOUR:
        end += _HALF_HOUR
    start = end - timedelta(days=HISTORY_DAYS)
    if site.kind == "household":
        sites = [site.id]
    elif site.kind == "transformer":
        households = list(
            session.scalars(select(Site).where(Site.parent_id == site.id, Site.kind == "household"))
        )
        if len(households) < iot.MIN_AGGREGATE and not (
            households and all(h.detail_consent for h in households)
        ):
            raise Forbidden(
                T("a transformer forecast needs at least {n} households behind it", n=iot.MIN_AGGREGATE),
                detail={"households": len(households)},
            )
        parks = [
            s.id
            for s in session.scalars(
                select(Site).where(Site.parent_id == site.id, Site.kind == "charging_park")
            )
        ]
        sites = [h.id for h in households] + parks
    else:
        raise Invalid(T("forecasts are made for households and transformers"), detail={"site": site.code})
    streams = _household_streams(session, sites)
    if site.kind == "transformer":
        streams += iot.stream_ids(session=session, site_ids=sites, device_kind="ev_charger", key="energy")
    count = int((end - start) / _HALF_HOUR)
    times = [start + i * _HALF_HOUR for i in range(count)]
    kw = np.full(count, np.nan)
    for moment, kwh in reads.consumption(
        session=session, streams=streams, interval="15min", start=start, end=end
    ).items():
        i = int((moment - start) / _HALF_HOUR)
        if 0 <= i < count:
            kw[i] = (0.0 if np.isnan(kw[i]) else kw[i]) + kwh * 2  # kWh per half hour → kW
    first = int(np.argmax(~np.isnan(kw))) if np.any(~np.isnan(kw)) else count
    return Series(site=site, times=times[first:], kw=kw[first:])


def _store(session: Session, site: Site, made: forecaster.Forecast) -> ForecastRun:
    run = ForecastRun(
        site_id=site.id, key="power", made_at=clock.now(), model=made.model, result=made.to_dict()
    )
    session.add(run)
    session.flush()
    return run


def _site_for(session: Session, actor: Actor, site_id: int, action: str) -> Site:
    """The site, if ``actor`` may see its forecasts: a household with detail, else ``action`` on it."""
    site = iot.get_site_or_raise(session=session, site_id=site_id)
    if site.kind == "household":
        if not iot.site_access(session=session, actor=actor, site=site).detail:
            raise Forbidden(
                T("this household has not consented to showing its own data"), detail={"site": site.code}
            )
    else:
        authorize(actor, action, org_id=site.org_id, what=f"site {site.code}")
    return site


def run_for_site(*, session: Session, actor: Actor, site_id: int) -> ForecastRun:
    """Forecast the next day of a household (its residents, or the operator with consent) or a
    transformer (the operator), backtesting the models to choose one."""
    site = _site_for(session, actor, site_id, "iot.operate")
    series = series_of(session, site)
    made = forecaster.forecast(series.times, series.kw)
    run = _store(session, site, made)
    record(
        session=session,
        actor=actor,
        action="energy.forecast.run",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
        detail={"model": made.model},
    )
    return run


def latest(*, session: Session, actor: Actor, site_id: int) -> ForecastRun:
    """The site's latest forecast, as the actor may see it."""
    site = _site_for(session, actor, site_id, "iot.read")
    run = session.scalars(
        select(ForecastRun)
        .where(ForecastRun.site_id == site.id)
        .order_by(ForecastRun.made_at.desc(), ForecastRun.id.desc())
    ).first()
    if run is None:
        raise NotFound(
            T("no forecast has been made for {site} yet", site=site.code), detail={"site": site.code}
        )
    record(
        session=session,
        actor=actor,
        action="energy.forecast.read",
        object_type="iot_site",
        object_id=site.id,
        object_org_id=site.org_id,
    )
    return run


def refresh_all(*, session: Session, org_id: int | None = None) -> dict[str, Any]:
    """Forecast every household and transformer with enough history (the nightly job)."""
    query = select(Site).where(Site.kind.in_(("household", "transformer"))).order_by(Site.id)
    if org_id is not None:
        query = query.where(Site.org_id == org_id)
    wanted: dict[str, tuple[Site, Series]] = {}
    skipped: dict[str, str] = {}
    for site in session.scalars(query).all():
        try:
            series = series_of(session, site)
        except (Forbidden, Invalid) as exc:
            skipped[site.code] = exc.message
            continue
        if len(series.times) < forecaster.MIN_HISTORY_DAYS * 48:
            skipped[site.code] = f"only {len(series.times) / 48:.1f} days of history"
            continue
        wanted[site.code] = (site, series)
    made: dict[str, forecaster.Forecast] = {}
    batch = {code: (series.times, series.kw) for code, (_site, series) in wanted.items()}
    for _attempt in range(2):
        if not batch:
            break
        try:
            made = forecaster.forecast_many(batch)
            break
        except Invalid as exc:  # a series the checks refuse: leave it (and only it) out, once
            refused = dict(exc.detail.get("refused", {})) if isinstance(exc.detail, dict) else {}
            if not refused:
                raise
            skipped.update({str(k): str(v) for k, v in refused.items()})
            batch = {k: v for k, v in batch.items() if k not in refused}
    for code, result in made.items():
        _store(session, wanted[code][0], result)
    record(
        session=session,
        actor=None,
        action="energy.forecast.refresh",
        object_type="organisation",
        object_id=org_id or 0,
        detail={"forecast": len(made), "skipped": len(skipped)},
    )
    return {"forecast": sorted(made), "skipped": skipped}
