"""The exchange's background work in the server process: the clock's transitions (grants that
start or expire, overdue requests escalated to the data bureau) and webhook deliveries."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import jobs
from zhishe.core.observability import get_logger
from zhishe.exchange import service, webhooks

__all__ = ["start"]

_log = get_logger(__name__)


def start(
    maker_factory: Callable[[], sessionmaker[Session]], *, refresh_s: float = 60.0, deliver_s: float = 5.0
) -> Callable[[], None]:
    """Start the refresh loop and the webhook worker on daemon threads; returns a stop function."""

    def refresh() -> None:
        with maker_factory().begin() as session:
            changed = service.refresh(session)
        if changed:
            _log.info("exchange refreshed", changed=changed)

    stop_refresh = jobs.every("exchange-refresh", refresh_s, refresh)
    stop_webhooks = webhooks.start_worker(maker_factory, interval_s=deliver_s)

    def stop_all() -> None:
        stop_refresh()
        stop_webhooks()

    return stop_all
