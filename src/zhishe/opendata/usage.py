"""Download and API-call counters, kept in memory and written to the database in batches.

Counting a public read must not make it a write: a commit per API call would cost more than the
query (an fsync on SQLite, a round trip and a row lock on PostgreSQL). Counts are added here, under
the day they happened (platform timezone), and written at most every ``FLUSH_SECONDS`` in the
background, after the next read that passes the mark, in a transaction of their own. Readers of
the figures add ``pending()`` to what is stored rather than flushing: their own session may hold
SQLite's write lock, which a flush would wait for. A crash loses at most those seconds of counts;
each worker process keeps its own buffer.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date

from zhishe.core import clock, jobs
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.observability import get_logger

__all__ = ["FLUSH_SECONDS", "Key", "count", "flush", "forget", "pending"]

FLUSH_SECONDS = 5.0
#: (dataset id, day, "downloads" or "api_calls")
Key = tuple[int, date, str]

_lock = threading.Lock()
_pending: Counter[Key] = Counter()
_last = time.monotonic()
_log = get_logger(__name__)


def count(dataset_id: int, *, downloads: int = 0, api_calls: int = 0) -> None:
    """Add to a dataset's counters for today; start a background flush when one is due."""
    day = clock.now().astimezone(get_settings().tz).date()
    with _lock:
        if downloads:
            _pending[(dataset_id, day, "downloads")] += downloads
        if api_calls:
            _pending[(dataset_id, day, "api_calls")] += api_calls
    _flush_if_due()


def _flush_if_due() -> None:
    with _lock:
        due = bool(_pending) and time.monotonic() - _last >= FLUSH_SECONDS
    if due:
        jobs.submit(flush)  # off the request: it may hold the database's write lock until it ends


def pending() -> dict[Key, int]:
    """The counts not written yet (and a background flush started if one is due)."""
    with _lock:
        taken = dict(_pending)
    _flush_if_due()
    return taken


def flush() -> None:
    """Write the pending counts in one transaction (they go back to the buffer if it fails)."""
    global _last
    from zhishe.opendata import service

    with _lock:
        taken = dict(_pending)
        _pending.clear()
        _last = time.monotonic()
    if not taken:
        return
    rows: dict[tuple[int, date], dict[str, int]] = {}
    for (dataset_id, day, kind), n in taken.items():
        rows.setdefault((dataset_id, day), {})[kind] = n
    try:
        with get_sessionmaker(get_settings().database_url).begin() as session:
            for (dataset_id, day), counts in sorted(rows.items()):
                # one savepoint each: the counts of a dataset deleted meanwhile are dropped alone
                with session.begin_nested():
                    service.use(session, dataset_id, day=day, **counts)
    except Exception as exc:
        with _lock:
            _pending.update(taken)
        _log.warning("usage counts not written yet", error=type(exc).__name__)


def forget() -> None:
    """Drop the pending counts (tests: dataset ids restart with each database)."""
    with _lock:
        _pending.clear()
