"""The open-data tests' world fixture."""

from __future__ import annotations

from typing import Any

import pytest

from opendata.open_world import OpenWorld


@pytest.fixture()
def ow(world: Any, db: Any, client: Any) -> OpenWorld:
    return OpenWorld(world, db, client)
