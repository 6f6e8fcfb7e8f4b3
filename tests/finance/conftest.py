"""Fixtures of the marketplace tests: the world ``sw`` (see ``sworld.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from services.sworld import ServicesWorld, build


@pytest.fixture()
def sw(world: Any) -> ServicesWorld:
    """The marketplace world, built on an empty database with the clock at MONDAY."""
    return build(world)
