"""Open data's background work in the server process: the timeliness check that finds open
datasets whose next release is late and tells their owners."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import jobs
from zhishe.core.observability import get_logger
from zhishe.opendata import portal

__all__ = ["start"]

_log = get_logger(__name__)


def start(
    maker_factory: Callable[[], sessionmaker[Session]], *, interval_s: float = 600.0
) -> Callable[[], None]:
    """Check timeliness now and every ``interval_s`` seconds; returns a stop function."""

    def check() -> None:
        with maker_factory().begin() as session:
            late = portal.check_timeliness(session)
        if late:
            _log.info("open datasets overdue", datasets=late)

    return jobs.every("opendata-timeliness", interval_s, check)
