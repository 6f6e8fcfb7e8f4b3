"""JSON route of the area list (public: building and street names are public knowledge)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from zhishe.core.areas import service
from zhishe.core.deps import SessionDep

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


class AreaRead(BaseModel):
    """One area."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    level: str
    name_zh: str
    name_en: str
    parent: str | None = None
    lat: float | None
    lon: float | None


@router.get("", response_model=list[AreaRead])
def list_areas(
    session: SessionDep,
    level: Annotated[str | None, Query(max_length=16)] = None,
    parent: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AreaRead]:
    """Areas in code order, optionally of one level or directly under one parent."""
    found = service.list_areas(session=session, level=level, parent=parent)
    codes = {a.id: a.code for a in service.list_areas(session=session)} if found else {}
    return [
        AreaRead.model_validate(a).model_copy(
            update={"parent": codes.get(a.parent_id) if a.parent_id else None}
        )
        for a in found
    ]
