"""Residents' marketplace profiles: the building a resident lives in, and the facts vouchers read.

A resident sets their own building (or unit) of the area list; the profile's ``lat``/``lon`` are
copied from that area (or, for a unit drawn without a position, from the nearest ancestor that has
one), so distances and service radii are measured from it. A resident who already told the platform
where they live when filing reports need not say it again: ``ensure`` creates the profile from that
residence. Birth year and tags (``low_income``…) decide voucher eligibility, so only the operator's
staff set them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.areas import service as areas
from zhishe.core.areas.models import Area
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.participation import service as participation
from zhishe.services.models import ResidentProfile

__all__ = [
    "HOME_LEVELS",
    "TAGS",
    "Choice",
    "choices",
    "ensure",
    "get",
    "set_building",
    "set_facts",
]

#: The levels of area a resident may live in.
HOME_LEVELS = ("building", "unit")
#: The facts an operator may record about a resident for voucher eligibility.
TAGS = ("low_income", "disabled", "veteran", "living_alone")
_OLDEST_BIRTH_YEAR = 1900
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Choice:
    """A community and the buildings and units in it, as (area id, label) pairs."""

    community: str
    homes: list[tuple[int, str]]


def _user_id_of(actor: Actor) -> int:
    if actor.user_id is None:
        raise Forbidden(T("only a signed-in resident has a profile"))
    return actor.user_id


def _position(session: Session, area: Area) -> tuple[float, float] | None:
    """The area's lat/lon, else its nearest ancestor's."""
    node: Area | None = area
    for _ in range(_MAX_DEPTH):
        if node is None:
            return None
        if node.lat is not None and node.lon is not None:
            return (node.lat, node.lon)
        node = session.get(Area, node.parent_id) if node.parent_id is not None else None
    return None


def _home_area(session: Session, area_id: int | None, area_code: str | None) -> Area:
    """The building or unit named by id or code; Invalid (naming the field) otherwise."""
    if (area_id is None) == (area_code is None):
        raise Invalid(T("give either area_id or area_code"), detail={"field": "area_id"})
    field = "area_code" if area_code is not None else "area_id"
    try:
        area = (
            areas.get_or_raise(session=session, code=area_code)
            if area_code is not None
            else session.get(Area, area_id)
        )
    except NotFound:
        area = None
    if area is None:
        raise Invalid(
            T("there is no area {area}", area=area_code if area_code is not None else area_id),
            detail={"field": field},
        )
    if area.level not in HOME_LEVELS:
        raise Invalid(
            T("{name} is not a building or unit: choose the building you live in", name=area.name_zh),
            detail={"field": field, "level": area.level},
        )
    return area


def ensure(session: Session, user_id: int) -> ResidentProfile | None:
    """The resident's profile; when they have none but told the platform where they live (a
    participation residence in a building or unit with a position), one is created from it."""
    profile = session.get(ResidentProfile, user_id)
    if profile is not None:
        return profile
    area_id = participation.residence_area_id(session, user_id)
    area = session.get(Area, area_id) if area_id is not None else None
    if area is None or area.level not in HOME_LEVELS:
        return None
    position = _position(session, area)
    if position is None:
        return None
    profile = ResidentProfile(user_id=user_id, area_id=area.id, lat=position[0], lon=position[1], tags=[])
    session.add(profile)
    session.flush()
    record(
        session=session,
        actor=None,
        action="services.profile.from_residence",
        object_type="user",
        object_id=user_id,
        detail={"area": area.code},
    )
    return profile


def get(session: Session, *, actor: Actor) -> ResidentProfile | None:
    """The actor's own profile (created from their residence when they have none), or None."""
    authorize(actor, "services.browse")
    return ensure(session, _user_id_of(actor))


def set_building(
    session: Session, *, actor: Actor, area_id: int | None = None, area_code: str | None = None
) -> ResidentProfile:
    """Set the building or unit the actor lives in (by id or code); distances are measured from it."""
    authorize(actor, "services.book")
    user_id = _user_id_of(actor)
    area = _home_area(session, area_id, area_code)
    position = _position(session, area)
    if position is None:
        raise Invalid(
            T("{name} has no position on the map yet; ask the operator to add it", name=area.name_zh),
            detail={"field": "area_code" if area_code is not None else "area_id"},
        )
    profile = session.get(ResidentProfile, user_id)
    before = None
    if profile is None:
        profile = ResidentProfile(user_id=user_id, tags=[])
        session.add(profile)
    else:
        before = profile.area_id
    profile.area_id, profile.lat, profile.lon = area.id, position[0], position[1]
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.profile.set_building",
        object_type="user",
        object_id=user_id,
        detail={"area": area.code, "area_id": area.id, "before_area_id": before},
    )
    return profile


def _check_birth_year(birth_year: object) -> int | None:
    this_year = clock.now().astimezone(get_settings().tz).year
    if birth_year is None:
        return None
    if (
        isinstance(birth_year, bool)
        or not isinstance(birth_year, int)
        or not _OLDEST_BIRTH_YEAR <= birth_year <= this_year
    ):
        raise Invalid(
            T("birth_year must be a year from {low} to {high}", low=_OLDEST_BIRTH_YEAR, high=this_year),
            detail={"field": "birth_year"},
        )
    return birth_year


def _check_tags(tags: object) -> list[str]:
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise Invalid(T("tags must be a list of words"), detail={"field": "tags"})
    unknown = sorted({tag for tag in tags if tag not in TAGS})
    if unknown:
        raise Invalid(
            T(
                "unknown tag(s) {tags}; allowed: {allowed}",
                tags=", ".join(unknown)[:200],
                allowed=", ".join(TAGS),
            ),
            detail={"field": "tags"},
        )
    return sorted(set(tags))


def set_facts(
    session: Session, *, actor: Actor, user_id: int, birth_year: int | None, tags: Sequence[str]
) -> ResidentProfile:
    """Record a resident's birth year and tags, which voucher eligibility reads (operator staff)."""
    authorize(actor, "services.operate")
    year = _check_birth_year(birth_year)
    clean = _check_tags(tags)
    accounts.get_user_or_raise(session=session, user_id=user_id)
    profile = ensure(session, user_id)
    if profile is None:
        profile = ResidentProfile(user_id=user_id, tags=[])
        session.add(profile)
    before = {"birth_year": profile.birth_year, "tags": list(profile.tags or [])}
    profile.birth_year, profile.tags = year, clean
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.profile.set_facts",
        object_type="user",
        object_id=user_id,
        detail={"before": before, "after": {"birth_year": year, "tags": clean}},
    )
    return profile


def choices(session: Session, language: str) -> list[Choice]:
    """Every building and unit in code order, grouped by community and labelled in ``language``
    (a unit after its building's name)."""
    everything = areas.list_areas(session=session)
    by_id = {area.id: area for area in everything}
    groups: dict[int | None, Choice] = {}
    for area in everything:
        if area.level not in HOME_LEVELS:
            continue
        chain = _ancestors(area, by_id)
        community = next((a for a in chain if a.level == "community"), None)
        key = community.id if community else None
        if key not in groups:
            groups[key] = Choice(community.name(language) if community else "", [])
        building = next((a for a in chain if a.level == "building"), None)
        label = area.name(language)
        if area.level == "unit" and building is not None:
            label = f"{building.name(language)} · {label}"
        groups[key].homes.append((area.id, label))
    return list(groups.values())


def _ancestors(area: Area, by_id: dict[int, Area]) -> list[Area]:
    chain: list[Area] = []
    node = by_id.get(area.parent_id) if area.parent_id is not None else None
    while node is not None and len(chain) < _MAX_DEPTH:
        chain.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return chain
