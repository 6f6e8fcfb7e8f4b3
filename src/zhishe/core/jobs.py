"""In-process background work (the embedded default): a small thread pool.

Work submitted here keeps the request's context (request id, language) and logs its failures.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from zhishe.core.observability import get_logger

__all__ = ["shutdown", "submit"]

_pool: ThreadPoolExecutor | None = None
_log = get_logger("zhishe.jobs")


def submit(fn: Callable[..., Any], /, **kwargs: Any) -> Future[Any]:
    """Run ``fn(**kwargs)`` in the background, in a copy of the current context."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zhishe-job")
    context = contextvars.copy_context()

    def run() -> Any:
        try:
            return context.run(fn, **kwargs)
        except Exception as exc:
            _log.error(
                "background job failed", job=getattr(fn, "__name__", "job"), error=repr(exc), exc_info=exc
            )
            raise

    return _pool.submit(run)


def shutdown() -> None:
    """Wait for running jobs and stop the pool."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
