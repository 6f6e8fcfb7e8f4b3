"""Who is in the demo: organisations, their users, the buildings and the households living there."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Literal

from zhishe.core.auth import OrgKind, Role
from zhishe.demo._util import rng_for
from zhishe.demo.model import Building, DemoUser, Household, Organisation
from zhishe.demo.names import masked_phone, person_name

__all__ = [
    "CENTRE",
    "DEMO_PASSWORD",
    "build_buildings",
    "build_households",
    "build_organisations",
    "build_users",
    "resident_surnames",
    "steward_contact",
]

#: The one password of every demo login. Demo deployments only: never a real installation.
DEMO_PASSWORD = "zhishe-demo-2026"  # noqa: S105 - a published demo credential, by design

#: Centre of the (fictional) Sunshine Community, WGS 84.
CENTRE = (39.9000, 116.4100)

_EMAIL_DOMAIN = "demo.zhishe.example"

_ADMIN = ("admin", Role.ADMIN)
_STEWARD = ("steward", Role.STEWARD)
_ANALYST = ("analyst", Role.ANALYST)
_DISPATCHER = ("dispatcher", Role.DISPATCHER)
# code, name_zh, name_en, kind, username prefix, staff as (username suffix, role)
# fmt: off
_ORGS: tuple[tuple[str, str, str, OrgKind, str, tuple[tuple[str, Role], ...]], ...] = (
    ("bureau", "东城区大数据管理局", "Dongcheng District Big Data Bureau",
     OrgKind.DATA_BUREAU, "bureau", (_ADMIN, _STEWARD, _ANALYST)),
    ("dept-land", "东城区自然资源局", "Dongcheng District Natural Resources Bureau",
     OrgKind.DEPARTMENT, "land", (_ADMIN, _STEWARD, _ANALYST)),
    ("dept-env", "东城区生态环境局", "Dongcheng District Ecology and Environment Bureau",
     OrgKind.DEPARTMENT, "env", (_ADMIN, _STEWARD, _ANALYST)),
    ("dept-water", "东城区水务局", "Dongcheng District Water Affairs Bureau",
     OrgKind.DEPARTMENT, "water", (_ADMIN, _STEWARD, _ANALYST, _DISPATCHER)),
    ("dept-transport", "东城区交通局", "Dongcheng District Transport Bureau",
     OrgKind.DEPARTMENT, "transport", (_ADMIN, _STEWARD, _ANALYST)),
    ("dept-city", "东城区城市管理委员会", "Dongcheng District City Management Commission",
     OrgKind.DEPARTMENT, "city", (_ADMIN, _STEWARD, _ANALYST, _DISPATCHER)),
    ("dept-police", "东城区公安分局", "Dongcheng District Public Security Sub-bureau",
     OrgKind.DEPARTMENT, "police", (_ADMIN, _STEWARD, _DISPATCHER)),
    ("operator", "阳光智慧社区运营有限公司", "Sunshine Smart Community Operations Co., Ltd.",
     OrgKind.OPERATOR, "operator", (_ADMIN, _STEWARD, _ANALYST, _DISPATCHER)),
    ("clinic-east", "阳光社区卫生服务中心", "Sunshine Community Health Service Centre (East)",
     OrgKind.CLINIC, "clinic-east", (_ADMIN, _STEWARD, ("staff", Role.DISPATCHER))),
    ("clinic-west", "阳光社区卫生服务站（西区）", "Sunshine Community Health Station (West)",
     OrgKind.CLINIC, "clinic-west", (_ADMIN, ("staff", Role.DISPATCHER))),
    ("provider-care", "安康居家养老服务中心", "Ankang Home Elderly Care Services",
     OrgKind.SERVICE_PROVIDER, "provider-care", (_ADMIN, ("staff", Role.PROVIDER_STAFF))),
    ("provider-home", "邻里家政维修服务部", "Neighbourly Housekeeping and Repairs",
     OrgKind.SERVICE_PROVIDER, "provider-home", (_ADMIN, ("staff", Role.PROVIDER_STAFF))),
    ("provider-fresh", "鲜邻生鲜超市", "FreshNeighbour Grocery",
     OrgKind.SERVICE_PROVIDER, "provider-fresh", (_ADMIN, ("staff", Role.PROVIDER_STAFF))),
    ("committee", "阳光社区居民委员会", "Sunshine Community Residents' Committee",
     OrgKind.COMMUNITY_COMMITTEE, "committee", (_ADMIN, _STEWARD, _DISPATCHER)),
    ("developer", "开放城市应用工作室", "Open City Apps Studio",
     OrgKind.PUBLIC_DEVELOPER, "developer", (_ADMIN,)),
)
# fmt: on

#: Surnames (character, pinyin) of the resident logins; each names one real demo household.
# fmt: off
_RESIDENTS: tuple[tuple[str, str], ...] = (
    ("张", "zhang"), ("王", "wang"), ("李", "li"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"),
)
# fmt: on


def build_organisations() -> tuple[Organisation, ...]:
    """The fifteen organisations of the demo, bureau first.

    There is no health department among the six: health is served by the two clinics.
    """
    return tuple(Organisation(code, zh, en, kind) for code, zh, en, kind, _, _ in _ORGS)


def steward_contact(org_code: str) -> str:
    """The e-mail address of the data steward (or, failing one, the admin) of ``org_code``."""
    for code, _, _, _, prefix, staff in _ORGS:
        if code == org_code:
            suffix = "steward" if any(s == "steward" for s, _ in staff) else "admin"
            return f"{prefix}.{suffix}@{_EMAIL_DOMAIN}"
    raise KeyError(f"no demo organisation {org_code!r}")


def resident_surnames(households: int) -> list[str]:
    """Surnames of the resident logins that ``households`` households can hold (at most ten)."""
    return [zh for zh, _ in _RESIDENTS[: min(len(_RESIDENTS), households)]]


def build_users(
    seed: int, households: tuple[Household, ...], resident_ids: list[str]
) -> tuple[DemoUser, ...]:
    """Staff for every organisation, then one resident login per household in ``resident_ids``."""
    rng = rng_for(seed, "users")
    users: list[DemoUser] = []
    for code, _, _, _, prefix, staff in _ORGS:
        for suffix, role in staff:
            gender: Literal["M", "F"] = "F" if rng.random() < 0.5 else "M"
            name = person_name(rng, rng.randint(1968, 1998), gender)
            username = f"{prefix}.{suffix}"
            users.append(DemoUser(username, name, code, role, f"{username}@{_EMAIL_DOMAIN}"))
    by_id = {h.id: h for h in households}
    for (_, pinyin), household_id in zip(_RESIDENTS, resident_ids, strict=False):
        head = by_id[household_id]
        username = f"resident.{pinyin}"
        users.append(
            DemoUser(
                username,
                head.head_name,
                "committee",
                Role.RESIDENT,
                f"{username}@{_EMAIL_DOMAIN}",
                household_id,
            )
        )
    return tuple(users)


# (floors, units, flats per landing, first year built, last year built) for walk-ups, slabs, towers
_BUILDING_TYPES = ((6, 3, 2, 1984, 1996), (11, 2, 3, 1998, 2008), (24, 2, 4, 2009, 2016))
# Building type by position on the 5 x 5 site plan: old walk-ups in the west, towers in the east.
_SITE_PLAN = (
    (0, 0, 1, 1, 2),
    (0, 0, 1, 2, 2),
    (0, 0, 1, 1, 2),
    (0, 1, 1, 2, 2),
    (0, 0, 1, 2, 2),
)


def build_buildings(seed: int, households: int) -> tuple[Building, ...]:
    """Twenty-five buildings on a 5 x 5 plan about 100 m apart, big enough for ``households``."""
    if households < 1:
        raise ValueError(f"households must be at least 1, got {households}")
    rng = rng_for(seed, "buildings")
    kinds = [kind for row in _SITE_PLAN for kind in row]
    base = sum(_BUILDING_TYPES[k][0] * _BUILDING_TYPES[k][1] * _BUILDING_TYPES[k][2] for k in kinds)
    # Keep occupancy at or below about 90 %: more flats per landing for a bigger demo.
    scale = max(1, math.ceil(households / (0.9 * base)))
    buildings: list[Building] = []
    for r, row in enumerate(_SITE_PLAN):
        for c, kind in enumerate(row):
            floors, units, flats, first, last = _BUILDING_TYPES[kind]
            number = r * 5 + c + 1
            lat = CENTRE[0] + (2 - r) * 0.0009 + rng.uniform(-0.00012, 0.00012)
            lon = CENTRE[1] + (c - 2) * 0.0012 + rng.uniform(-0.00015, 0.00015)
            buildings.append(
                Building(
                    id=f"B{number:02d}",
                    name_zh=f"阳光社区{number}号楼",
                    name_en=f"Sunshine Community Building {number}",
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    floors=floors,
                    units=units,
                    flats_per_landing=flats * scale,
                    year_built=rng.randint(first, last),
                )
            )
    return tuple(buildings)


# Age of the head of household: (youngest, oldest, weight). An old inner-city community.
_HEAD_AGES = ((24, 34, 0.14), (35, 44, 0.19), (45, 59, 0.30), (60, 74, 0.26), (75, 93, 0.11))
_SIZES = ((1, 0.17), (2, 0.33), (3, 0.28), (4, 0.14), (5, 0.08))


def build_households(
    seed: int, buildings: tuple[Building, ...], count: int, today: date, forced_surnames: list[str]
) -> tuple[tuple[Household, ...], list[str]]:
    """``count`` households in randomly chosen flats, ids in address order.

    The first households drawn get ``forced_surnames`` for their heads so that each resident
    login names a real household; their ids are returned in the same order.
    """
    rng = rng_for(seed, "households")
    flats = [
        (b, unit, floor, door)
        for b in buildings
        for unit in range(1, b.units + 1)
        for floor in range(1, b.floors + 1)
        for door in range(1, b.flats_per_landing + 1)
    ]
    if count > len(flats):
        raise ValueError(f"households={count} does not fit in {len(flats)} flats")
    chosen = sorted(rng.sample(range(len(flats)), count))
    forced_at = rng.sample(range(count), len(forced_surnames))
    forced = dict(zip(forced_at, forced_surnames, strict=True))
    width = max(4, len(str(count)))
    result: list[Household] = []
    for index, flat_no in enumerate(chosen):
        building, unit, floor, door = flats[flat_no]
        result.append(
            _household(rng, f"H{index + 1:0{width}d}", building, unit, floor, door, today, forced.get(index))
        )
    return tuple(result), [result[i].id for i in forced_at]


def _household(
    rng: random.Random,
    household_id: str,
    building: Building,
    unit: int,
    floor: int,
    door: int,
    today: date,
    surname: str | None,
) -> Household:
    low, high, _ = rng.choices(_HEAD_AGES, weights=[w for _, _, w in _HEAD_AGES])[0]
    head_age = rng.randint(low, high)
    size = rng.choices([s for s, _ in _SIZES], weights=[w for _, w in _SIZES])[0]
    if head_age < 30 and size > 3:
        size = 3
    head_birth = today.year - head_age
    gender: Literal["M", "F"] = "M" if rng.random() < 0.58 else "F"
    elderly: list[int] = []
    children = 0
    free = size - 1  # members other than the head
    if head_age >= 60:
        elderly.append(head_birth)
        if free and rng.random() < 0.8:  # a spouse of about the same age
            elderly.append(min(today.year - 60, head_birth + rng.randint(-4, 4)))
            free -= 1
        if free and rng.random() < 0.35:  # a grandchild
            children, free = 1, free - 1
    else:
        if free and head_age <= 50 and rng.random() < 0.8:
            children = min(free, 1 if rng.random() < 0.7 else 2)
            free -= children
        if free and head_age >= 35 and rng.random() < 0.45:  # a parent who lives with them
            elderly.append(min(today.year - 60, head_birth - rng.randint(22, 32)))
            free -= 1
    earliest = max(building.year_built, head_birth + 20)
    span = max(0, (today - timedelta(days=30) - date(earliest, 1, 1)).days)
    registered = date(earliest, 1, 1) + timedelta(days=rng.randint(0, span))
    subsidy_chance = 0.09 if (size == 1 and elderly) else 0.025
    return Household(
        id=household_id,
        building_id=building.id,
        unit=unit,
        floor=floor,
        room=f"{unit}-{floor}{door:02d}",
        size=size,
        head_name=person_name(rng, head_birth, gender, surname),
        head_gender=gender,
        head_birth_year=head_birth,
        phone_masked=masked_phone(rng),
        children_0_14=children,
        elderly_birth_years=tuple(elderly),
        registered_on=registered,
        receives_subsidy=rng.random() < subsidy_chance,
    )
