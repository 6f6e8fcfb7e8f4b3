"""The exchange's reactions to catalog events, cheap when there is nothing to do.

A new version matters to the exchange only if the dataset has a subscription grant or a derived
dataset built from it. That is checked with two indexed lookups before the exchange's service (and
its models and schemas) is imported, so that an import into a dataset nobody subscribes to does not
pay for loading the exchange.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

__all__ = ["version_created"]

_INTERESTED = text(
    "SELECT 1 FROM exchange_grants WHERE dataset_id = :d AND mode = 'subscription' AND revoked_at IS NULL "
    "UNION ALL SELECT 1 FROM exchange_lineage WHERE source_dataset_id = :d LIMIT 1"
)


def version_created(event: Any, session: Any) -> None:
    """A version was committed: tell subscribers and derived datasets' owners, if there are any."""
    if session.execute(_INTERESTED, {"d": int(event.payload["dataset_id"])}).first() is None:
        return
    from zhishe.exchange import service

    service.version_created(event, session)
