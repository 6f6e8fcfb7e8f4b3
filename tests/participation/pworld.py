"""The participation tests' world: a community of two buildings, a city-management department with a
street-lights team, a water department with a repair team, the operator's grid worker, the data
bureau, three residents of the community committee (res1 and res2 living in building B1,
res3 in B2), four report categories covering every Open311
attribute datatype, routing rules, and an Open311 api_key of the operator's phone app.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor
from zhishe.participation.models import (
    ApiKey,
    Category,
    CategoryAttribute,
    Residence,
    RoutingRule,
    Team,
    TeamMember,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Monday 2026-11-02 10:00 in Shanghai: a working day, inside working hours.
MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
#: The raw Open311 api_key of the operator's phone app.
API_KEY = "zhishe_311_test_key_0123456789abcdef"
#: Building B1's position; B2 is about 300 m east of it.
B1 = (39.9042, 116.4074)
B2 = (39.9042, 116.4109)


@dataclass
class ParticipationWorld:
    """Handles on the world's rows."""

    session: Session
    users: dict[str, Any] = field(default_factory=dict)
    orgs: dict[str, Any] = field(default_factory=dict)
    areas: dict[str, Area] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    api_key: ApiKey | None = None

    def actor(self, username: str) -> Actor:
        """The actor of user ``username``."""
        return actor_for_user(self.users[username])


def area(
    session: Session, code: str, level: str, parent: Area | None, name: str, lat: float, lon: float
) -> Area:
    """An area of the address list, flushed (shared by the test worlds)."""
    row = Area(
        code=code,
        level=level,
        parent_id=parent.id if parent else None,
        name_zh=name,
        name_en=code,
        lat=lat,
        lon=lon,
    )
    session.add(row)
    session.flush()
    return row


def _category(session: Session, code: str, name_zh: str, name_en: str, **extra: Any) -> Category:
    category = Category(code=code, name_zh=name_zh, name_en=name_en, created_at=clock.now(), **extra)
    session.add(category)
    session.flush()
    return category


def _attribute(
    session: Session, category: Category, code: str, datatype: str, order: int, **extra: Any
) -> None:
    session.add(
        CategoryAttribute(category_id=category.id, code=code, datatype=datatype, order=order, **extra)
    )


def build(world: Any) -> ParticipationWorld:
    """Create the world (directly in the tables: it is the fixture, not the feature under test)."""
    session = world.session
    w = ParticipationWorld(session=session)
    w.orgs["bureau"] = world.org("bureau", kind="data_bureau", name="数据局")
    w.orgs["city"] = world.org("city", kind="department", name="城管局")
    w.orgs["water"] = world.org("water", kind="department", name="水务局")
    w.orgs["op"] = world.org("op", kind="operator", name="运营公司")
    w.orgs["cc"] = world.org("cc", kind="community_committee", name="社区居委会")
    for name, org, role in (
        ("bureau-admin", "bureau", "admin"),
        ("bureau-dispatcher", "bureau", "dispatcher"),
        ("city-head", "city", "admin"),
        ("city-lead", "city", "dispatcher"),
        ("city-worker", "city", "analyst"),
        ("water-head", "water", "admin"),
        ("water-worker", "water", "dispatcher"),
        ("op-dispatcher", "op", "dispatcher"),
        ("grid1", "op", "analyst"),
        ("res1", "cc", "resident"),
        ("res2", "cc", "resident"),
        ("res3", "cc", "resident"),
    ):
        w.users[name] = world.user(name, w.orgs[org], role=role)

    district = area(session, "D1", "district", None, "朝阳区", 39.92, 116.44)
    community = area(session, "C1", "community", district, "幸福社区", 39.9042, 116.409)
    w.areas["C1"] = community
    w.areas["B1"] = area(session, "C1-B1", "building", community, "1号楼", *B1)
    w.areas["B2"] = area(session, "C1-B2", "building", community, "2号楼", *B2)
    w.areas["B1-U1"] = area(session, "C1-B1-U1", "unit", w.areas["B1"], "1号楼1单元", *B1)

    lights = _category(
        session,
        "streetlight",
        "路灯故障",
        "Street light out",
        description_zh="路灯不亮、闪烁或白天常亮",
        description_en="A street light that is out, flickers or stays on by day",
        group="市政设施",
        keywords="lighting,路灯",
        sla_amount=3,
        sla_unit="days",
    )
    _attribute(session, lights, "pole_number", "string", 1, required=True, description="Pole number")
    _attribute(
        session,
        lights,
        "light_state",
        "singlevaluelist",
        2,
        required=True,
        description="What is wrong with the light?",
        values=[
            {"key": "out", "name": "Not lit"},
            {"key": "flicker", "name": "Flickering"},
            {"key": "day", "name": "On by day"},
        ],
    )
    _attribute(
        session,
        lights,
        "safety_note",
        "string",
        3,
        variable=False,
        description="Do not touch fallen wires; call 95598.",
    )
    garbage = _category(
        session,
        "garbage",
        "垃圾满溢",
        "Overflowing garbage",
        group="市容环境",
        sla_amount=8,
        sla_unit="hours",
    )
    _attribute(
        session,
        garbage,
        "bin_type",
        "multivaluelist",
        1,
        required=True,
        description="Which bins?",
        values=[
            {"key": "kitchen", "name": "Kitchen waste"},
            {"key": "recyclable", "name": "Recyclable"},
            {"key": "other", "name": "Other waste"},
        ],
    )
    leak = _category(session, "leak", "漏水", "Water leak", group="供水", sla_amount=4, sla_unit="hours")
    _attribute(session, leak, "flow", "number", 1, required=False, description="Litres a minute, roughly")
    noise = _category(
        session, "noise", "噪音扰民", "Noise", group="市容环境", sla_amount=5, sla_unit="days", type="batch"
    )
    _attribute(session, noise, "noticed_at", "datetime", 1, required=True, description="When did it start?")
    _attribute(session, noise, "details", "text", 2, description="Anything else")
    w.categories = {"streetlight": lights, "garbage": garbage, "leak": leak, "noise": noise}

    lights_team = Team(
        org_id=w.orgs["city"].id, name="路灯班", lead_user_id=w.users["city-lead"].id, created_at=clock.now()
    )
    repair_team = Team(
        org_id=w.orgs["water"].id,
        name="抢修班",
        lead_user_id=w.users["water-worker"].id,
        created_at=clock.now(),
    )
    session.add_all([lights_team, repair_team])
    session.flush()
    session.add_all(
        [
            TeamMember(team_id=lights_team.id, user_id=w.users["city-worker"].id),
            TeamMember(team_id=lights_team.id, user_id=w.users["city-lead"].id),
            TeamMember(team_id=repair_team.id, user_id=w.users["water-worker"].id),
        ]
    )
    w.teams = {"lights": lights_team, "repair": repair_team}
    session.add_all(
        [
            RoutingRule(category_id=lights.id, org_id=w.orgs["city"].id, team_id=lights_team.id),
            RoutingRule(category_id=leak.id, org_id=w.orgs["water"].id, team_id=repair_team.id),
            RoutingRule(
                category_id=garbage.id,
                area_id=w.areas["B1"].id,
                org_id=w.orgs["op"].id,
                assignee_user_id=w.users["grid1"].id,
            ),
            RoutingRule(category_id=garbage.id, org_id=w.orgs["city"].id),
            RoutingRule(category_id=None, org_id=w.orgs["city"].id, priority=1000),
        ]
    )
    session.add_all(
        [
            Residence(user_id=w.users["res1"].id, area_id=w.areas["B1-U1"].id),
            Residence(user_id=w.users["res2"].id, area_id=w.areas["B1"].id),
            Residence(user_id=w.users["res3"].id, area_id=w.areas["B2"].id),
        ]
    )
    w.api_key = ApiKey(
        org_id=w.orgs["op"].id,
        name="phone app",
        key_hash=hashlib.sha256(API_KEY.encode()).hexdigest(),
        prefix=API_KEY[:12],
        per_minute=60,
        created_at=clock.now(),
    )
    session.add(w.api_key)
    session.commit()
    return w
