"""Fixtures of the participation tests: the world ``pw`` (see ``pworld.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from participation.pworld import ParticipationWorld, build


@pytest.fixture()
def pw(world: Any) -> ParticipationWorld:
    """The participation world, built on an empty database."""
    return build(world)
