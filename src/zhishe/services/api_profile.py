"""JSON routes of residents' marketplace profiles under /api/v1/services: one's own building, and
the facts (birth year, tags) the operator records for voucher eligibility."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from zhishe.core.areas.models import Area
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.services import profiles
from zhishe.services.models import ResidentProfile

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])


class ProfileUpdate(BaseModel):
    """Where the resident lives: a building or unit, by code or by id (exactly one)."""

    area_code: str | None = Field(default=None, min_length=1, max_length=64)
    area_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class FactsUpdate(BaseModel):
    """A resident's facts for voucher eligibility; they replace the ones recorded."""

    birth_year: int | None = None
    tags: list[str] = Field(default_factory=list, max_length=len(profiles.TAGS))


def profile_json(session: Session, profile: ResidentProfile | None, user_id: int | None) -> dict[str, Any]:
    """A profile as JSON (every field null when the resident has none yet)."""
    area = session.get(Area, profile.area_id) if profile and profile.area_id is not None else None
    return {
        "user_id": user_id,
        "area": (
            {
                "id": area.id,
                "code": area.code,
                "level": area.level,
                "name_zh": area.name_zh,
                "name_en": area.name_en,
            }
            if area
            else None
        ),
        "lat": profile.lat if profile else None,
        "lon": profile.lon if profile else None,
        "birth_year": profile.birth_year if profile else None,
        "tags": list(profile.tags or []) if profile else [],
    }


@router.get("/profile")
def get_profile(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The caller's own profile."""
    profile = profiles.get(session, actor=actor)
    return profile_json(session, profile, actor.user_id)


@router.put("/profile")
def put_profile(body: ProfileUpdate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Set the building or unit the caller lives in."""
    profile = profiles.set_building(session, actor=actor, area_id=body.area_id, area_code=body.area_code)
    return profile_json(session, profile, actor.user_id)


@router.put("/residents/{user_id}/facts")
def put_facts(user_id: IdPath, body: FactsUpdate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Record a resident's birth year and tags (the operator's staff)."""
    profile = profiles.set_facts(
        session, actor=actor, user_id=user_id, birth_year=body.birth_year, tags=body.tags
    )
    return profile_json(session, profile, user_id)
