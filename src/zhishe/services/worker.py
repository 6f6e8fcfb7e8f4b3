"""The marketplace's and the operator's background work in the server process, once a minute: fire
due process timers (payment expiry, auto-decline, review windows, group deadlines), remind providers of
expiring licences and suspend what a lapsed licence no longer allows, issue and expire vouchers, and
bill advertising and data plans.

Each sweep runs in a session of its own and is committed on its own, so that one failing sweep does
not hold back the others; sweeps that work order by order commit each order themselves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock, jobs
from zhishe.core.observability import get_logger
from zhishe.finance import ads, dataplans
from zhishe.services import engine, groupbuy, licences, vouchers

__all__ = ["SWEEPS", "start", "sweep_once"]

_log = get_logger(__name__)

#: Every periodic job, by name: ``fn(session, now) -> dict`` of counts.
SWEEPS: dict[str, Callable[[Session, datetime], dict[str, Any]]] = {
    "timers": engine.sweep,
    "groups": groupbuy.sweep,
    "licences": licences.sweep,
    "vouchers": vouchers.sweep,
    "ads": ads.sweep,
    "data plans": dataplans.sweep,
}


def sweep_once(maker: sessionmaker[Session], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Run every sweep once as of ``now``, each in its own committed session; what each did, or its
    error."""
    moment = now or clock.now()
    results: dict[str, dict[str, Any]] = {}
    for name, sweep in SWEEPS.items():
        with maker() as session:
            try:
                results[name] = sweep(session, moment)
                session.commit()
            except Exception as exc:  # one failing sweep must not stop the others; it is logged
                session.rollback()
                results[name] = {"error": str(exc)}
                _log.warning("services sweep failed", sweep=name, error=str(exc))
    return results


def start(maker_factory: Callable[[], sessionmaker[Session]]) -> Callable[[], None]:
    """Start the sweep loop; returns a function that stops it."""

    def run() -> None:
        result = sweep_once(maker_factory())
        busy = {name: counts for name, counts in result.items() if any(counts.values())}
        if busy:
            _log.info("services sweep", **{name.replace(" ", "_"): counts for name, counts in busy.items()})

    return jobs.every("services-sweep", 60.0, run)
