"""The exchange tests' world fixture."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.exchange_world import ExchangeWorld


@pytest.fixture()
def xw(world: Any, db: Any, client: Any) -> ExchangeWorld:
    return ExchangeWorld(world, db, client)
