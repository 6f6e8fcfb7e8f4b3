"""Wiring between domains, done once at start-up by the app, the CLI and the tests: the catalog's
read function learns of the exchange's grants, version events reach their subscribers, and
incident-worthy events (an outbreak alert) declare incidents.

The exchange's service is imported only when one of its hooks first needs it: a command that never
reads through a grant, or commits a version nobody subscribes to, does not pay for loading it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

_installed = False
_EXCHANGE = "zhishe.exchange.service"


def _exchange(name: str) -> Callable[..., Any]:
    """A function that calls ``zhishe.exchange.service.<name>``, importing it on first use."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(_EXCHANGE), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"exchange.{name}"
    return call


#: Events that declare an emergency incident (``zhishe.participation.incidents``).
_INCIDENT_EVENTS = ("health.outbreak_alert", "participation.declare_incident")


def _incident_event(event: Any, session: Any) -> None:
    importlib.import_module("zhishe.participation.incidents").on_event(event, session)


def install() -> None:
    """Register every cross-domain hook (idempotent)."""
    global _installed
    if _installed:
        return
    from zhishe.catalog import access
    from zhishe.core import events
    from zhishe.exchange import triggers

    access.register_grant_finder(_exchange("find_grants"))
    access.register_use_recorder(_exchange("record_use"))
    events.subscribe("catalog.version_created", triggers.version_created)
    for name in _INCIDENT_EVENTS:
        events.subscribe(name, _incident_event)
    _installed = True
