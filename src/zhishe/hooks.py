"""Wiring between domains, done once at start-up by the app, the CLI and the tests: the catalog's
read function learns of the exchange's grants, version events reach their subscribers,
incident-worthy events (an outbreak alert) declare incidents, and energy events (a closed charging
session, a demand-response incentive) post fees and payouts to the operator's ledger, and paid
data plans raise the open-data quota of their app tokens.

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


#: Events of the energy capability that post fees and payouts to the operator's ledger.
_ENERGY_FEE_EVENTS = ("energy.charging_session_closed", "energy.dr_incentive_due")


def _energy_fee_event(event: Any, session: Any) -> None:
    importlib.import_module("zhishe.finance.energyfees").on_event(event, session)


def _data_plan_quota(session: Any, token_id: int) -> Any:
    """The open-data quota a paid data plan gives an app token (``finance.dataplans``)."""
    return importlib.import_module("zhishe.finance.dataplans").token_quota(session, token_id)


def install() -> None:
    """Register every cross-domain hook (idempotent)."""
    global _installed
    if _installed:
        return
    from zhishe.catalog import access
    from zhishe.core import events
    from zhishe.exchange import triggers
    from zhishe.opendata import apptokens

    access.register_grant_finder(_exchange("find_grants"))
    access.register_use_recorder(_exchange("record_use"))
    events.subscribe("catalog.version_created", triggers.version_created)
    for name in _INCIDENT_EVENTS:
        events.subscribe(name, _incident_event)
    for name in _ENERGY_FEE_EVENTS:
        events.subscribe(name, _energy_fee_event)
    apptokens.register_quota_finder(_data_plan_quota)
    _installed = True
