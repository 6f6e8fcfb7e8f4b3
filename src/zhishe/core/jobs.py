"""In-process background work (the embedded default): a small thread pool.

Work submitted here keeps the request's context (request id, language) and logs its failures.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from zhishe.core.observability import get_logger

__all__ = ["every", "shutdown", "submit", "submit_now"]

T = TypeVar("T")
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


def submit_now(fn: Callable[..., T], /, **kwargs: Any) -> Future[T]:
    """Run ``fn(**kwargs)`` on its own thread at once (work that the caller will wait for, so it
    must not queue behind the background pool)."""
    future: Future[T] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(fn, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="zhishe-now", daemon=True).start()
    return future


def shutdown() -> None:
    """Wait for running jobs and stop the pool."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def every(name: str, interval_s: float, work: Callable[[], Any]) -> Callable[[], None]:
    """Run ``work()`` now and then every ``interval_s`` seconds on a daemon thread, logging (never
    raising) its failures; returns a function that stops the loop and waits for it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                work()
            except Exception as exc:  # logged, never ends the loop
                _log.error("periodic work failed", job=name, error=type(exc).__name__, exc_info=exc)
            stop.wait(interval_s)

    thread = threading.Thread(target=loop, name=f"zhishe-{name}", daemon=True)
    thread.start()

    def stop_loop() -> None:
        stop.set()
        thread.join(timeout=30.0)

    return stop_loop
