"""IoT's background work in the server process: copy new readings to the lake history and update
the rollups every ``iot_flush_seconds``; prune the database and the lake past their windows, and
compact the lake's small files, every hour."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import jobs
from zhishe.core.config import get_settings
from zhishe.core.observability import get_logger
from zhishe.iot import history

__all__ = ["start"]

_log = get_logger(__name__)


def start(maker_factory: Callable[[], sessionmaker[Session]]) -> Callable[[], None]:
    """Start the flush loop and the hourly housekeeping; returns a function that stops both."""

    def flush() -> None:
        session = maker_factory()()
        try:
            result = history.flush(session=session)
        finally:
            session.close()
        if result.rows or result.recovered:
            _log.info(
                "readings flushed to the lake",
                rows=result.rows,
                repeats=result.repeats,
                recovered=result.recovered,
            )

    def housekeeping() -> None:
        session = maker_factory()()
        try:
            removed = history.prune(session=session)
        finally:
            session.close()
        compacted = history.compact()
        _log.info("iot housekeeping", pruned=removed, files_compacted=compacted)

    stops = [
        jobs.every("iot-flush", get_settings().iot_flush_seconds, flush),
        jobs.every("iot-housekeeping", 3600.0, housekeeping),
    ]

    def stop() -> None:
        for each in stops:
            each()

    return stop
