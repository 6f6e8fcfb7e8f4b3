"""A small in-process event bus: domains publish facts, handlers registered at start-up react.

Handlers run synchronously inside the publisher's transaction, so a failing handler rolls the
whole change back rather than leaving half of it written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "clear", "publish", "subscribe"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a dotted name and a JSON-able payload."""

    name: str
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Event, Any], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(name: str, handler: Handler) -> None:
    """Call ``handler(event, session)`` whenever an event called ``name`` is published."""
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def publish(event: Event, session: Any) -> None:
    """Deliver ``event`` to its handlers, in registration order."""
    for handler in list(_handlers.get(event.name, ())):
        handler(event, session)


def clear() -> None:
    """Forget every handler (tests)."""
    _handlers.clear()
