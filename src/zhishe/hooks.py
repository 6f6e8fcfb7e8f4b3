"""Wiring between domains, done once at start-up by the app, the CLI and the tests: the catalog's
read function learns of the exchange's grants, and version events reach their subscribers."""

from __future__ import annotations

__all__ = ["install"]

_installed = False


def install() -> None:
    """Register every cross-domain hook (idempotent)."""
    global _installed
    if _installed:
        return
    from zhishe.catalog import access
    from zhishe.core import events
    from zhishe.exchange import service as exchange

    access.register_grant_finder(exchange.find_grants)
    access.register_use_recorder(exchange.record_use)
    events.subscribe("catalog.version_created", exchange.version_created)
    _installed = True
