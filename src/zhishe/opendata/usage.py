"""Download and API-call counters, kept in memory and written to the database in batches.

Counting a public read must not make it a write: a commit per API call would cost more than the
query (an fsync on SQLite, a round trip and a row lock on PostgreSQL). Counts are added here and
flushed at most every ``FLUSH_SECONDS`` in the background, after the next read that passes the mark,
in a transaction of their own; readers of the figures call ``flush`` first. A crash loses at most those seconds of
counts; each worker process keeps its own buffer.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from zhishe.core import jobs
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.observability import get_logger

__all__ = ["FLUSH_SECONDS", "count", "flush"]

FLUSH_SECONDS = 5.0

_lock = threading.Lock()
_pending: Counter[tuple[int, str]] = Counter()
_last = time.monotonic()
_log = get_logger(__name__)


def count(dataset_id: int, *, downloads: int = 0, api_calls: int = 0) -> None:
    """Add to a dataset's counters; flush when the last flush is older than ``FLUSH_SECONDS``."""
    global _last
    with _lock:
        if downloads:
            _pending[(dataset_id, "downloads")] += downloads
        if api_calls:
            _pending[(dataset_id, "api_calls")] += api_calls
        due = time.monotonic() - _last >= FLUSH_SECONDS
    if due:
        jobs.submit(flush)  # off the request: it may hold the database's write lock until it ends


def flush() -> None:
    """Write the pending counts (today, in the platform timezone) in one transaction."""
    global _last
    from zhishe.opendata import service

    with _lock:
        taken = dict(_pending)
        _pending.clear()
        _last = time.monotonic()
    if not taken:
        return
    by_dataset: dict[int, dict[str, int]] = {}
    for (dataset_id, kind), n in taken.items():
        by_dataset.setdefault(dataset_id, {})[kind] = n
    try:
        with get_sessionmaker(get_settings().database_url).begin() as session:
            for dataset_id, counts in sorted(by_dataset.items()):
                service.use(session, dataset_id, **counts)
    except Exception as exc:  # the counts go back, to be written by the next flush
        with _lock:
            _pending.update(taken)
        _log.warning("usage counts not written yet", error=type(exc).__name__)
