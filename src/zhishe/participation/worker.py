"""Participation's background work in the server process: once a minute, escalate orders whose
next rung fell due, remind incident task owners, propose incidents from clusters of reports, chase
suggestion responses that became late, and close fixes the resident left unconfirmed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock, jobs
from zhishe.core.observability import get_logger
from zhishe.participation import escalation, incidents, service, suggestions

__all__ = ["start", "sweep_once"]

_log = get_logger(__name__)


def sweep_once(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Every sweep once, as of ``now``; counts of what each did (the caller commits)."""
    now = now or clock.now()
    escalated = escalation.sweep(session=session, now=now)
    return {
        "escalated orders": escalated.escalated,
        "incident reminders": len(incidents.remind(session=session, now=now)),
        "incident proposals": len(incidents.detect_clusters(session=session, now=now)),
        "late suggestions": len(suggestions.sweep(session=session, now=now)),
        "closed unconfirmed": service.close_unconfirmed(session=session, now=now),
    }


def start(maker_factory: Callable[[], sessionmaker[Session]]) -> Callable[[], None]:
    """Start the sweep loop; returns a function that stops it."""

    def sweep() -> None:
        with maker_factory().begin() as session:
            result = sweep_once(session)
        if any(result.values()):
            _log.info("participation sweep", **{k.replace(" ", "_"): v for k, v in result.items()})

    return jobs.every("participation-sweep", 60.0, sweep)
