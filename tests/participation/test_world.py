"""The participation world builds: every later test stands on it."""

from __future__ import annotations

from sqlalchemy import func, select

from participation.pworld import ParticipationWorld
from zhishe.participation.models import CategoryAttribute


def test_world_has_every_open311_datatype(pw: ParticipationWorld) -> None:
    kinds = set(pw.session.scalars(select(CategoryAttribute.datatype)))
    assert kinds == {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
    assert pw.session.scalar(select(func.count()).select_from(CategoryAttribute)) == 7
