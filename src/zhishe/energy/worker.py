"""Energy's background work in the server process: the detectors every five minutes, and the
day-ahead forecasts once a day (the first check after 01:00 local time that finds none made today)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock, jobs
from zhishe.core.config import get_settings
from zhishe.core.observability import get_logger
from zhishe.energy import detection, forecasting
from zhishe.energy.models import ForecastRun

__all__ = ["forecast_if_due", "start"]

_log = get_logger(__name__)


def forecast_if_due(session: Session) -> bool:
    """Refresh every forecast if it is past 01:00 local time and none was made today; whether it ran."""
    tz = get_settings().tz
    now = clock.now().astimezone(tz)
    if now.time() < time(1):
        return False
    midnight = datetime.combine(now.date(), time(0), tzinfo=tz)
    made = session.scalar(
        select(func.count()).select_from(ForecastRun).where(ForecastRun.made_at >= midnight)
    )
    if made:
        return False
    result = forecasting.refresh_all(session=session)
    session.commit()
    _log.info("forecasts refreshed", forecast=len(result["forecast"]), skipped=len(result["skipped"]))
    return True


def start(maker_factory: Callable[[], sessionmaker[Session]]) -> Callable[[], None]:
    """Start the detector and forecast loops; returns a function that stops both."""

    def detect() -> None:
        with maker_factory().begin() as session:
            result = detection.run(session=session)
        if result.raised:
            _log.info("energy alerts raised", raised=result.raised)

    def forecast() -> None:
        session = maker_factory()()
        try:
            forecast_if_due(session)
        finally:
            session.close()

    stops = [jobs.every("energy-detect", 300.0, detect), jobs.every("energy-forecast", 600.0, forecast)]

    def stop() -> None:
        for each in stops:
            each()

    return stop
