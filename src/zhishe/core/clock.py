"""An injectable clock: all code asks ``now()`` here, so tests can move time without sleeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = ["frozen", "now", "set_clock"]

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores the real one)."""
    global _clock
    _clock = clock or (lambda: datetime.now(UTC))


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze the clock at ``at`` for the duration of a block."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    previous = _clock
    set_clock(lambda: at)
    try:
        yield
    finally:
        set_clock(previous)
