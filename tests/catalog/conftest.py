"""The catalog tests' world fixture."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_world import CatalogWorld


@pytest.fixture()
def cw(world: Any, db: Any, client: Any) -> CatalogWorld:
    return CatalogWorld(world, db, client)
