"""The exchange's background work in the server process: the clock's transitions (grants that
start or expire, overdue requests escalated to the data bureau) and webhook deliveries."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core.observability import get_logger
from zhishe.exchange import service, webhooks

__all__ = ["start"]

_log = get_logger(__name__)


def start(
    maker_factory: Callable[[], sessionmaker[Session]], *, refresh_s: float = 60.0, deliver_s: float = 5.0
) -> Callable[[], None]:
    """Start the refresh loop and the webhook worker on daemon threads; returns a stop function."""
    stop = threading.Event()

    def refresh_loop() -> None:
        while not stop.is_set():
            try:
                with maker_factory().begin() as session:
                    changed = service.refresh(session)
                if changed:
                    _log.info("exchange refreshed", changed=changed)
            except Exception as exc:  # logged, never ends the loop
                _log.error("exchange refresh failed", error=type(exc).__name__, exc_info=exc)
            stop.wait(refresh_s)

    thread = threading.Thread(target=refresh_loop, name="zhishe-exchange-refresh", daemon=True)
    thread.start()
    stop_webhooks = webhooks.start_worker(maker_factory, interval_s=deliver_s)

    def stop_all() -> None:
        stop.set()
        stop_webhooks()
        thread.join(timeout=30.0)

    return stop_all
