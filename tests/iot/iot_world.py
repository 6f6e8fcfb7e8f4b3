"""The IoT tests' world: an operator running six households fed by one transformer, each household
with an electricity meter, a water meter and a motion sensor, and a resident in each of two of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from helpers import bearer
from zhishe.core.accounts.service import actor_for_user
from zhishe.iot import service as iot
from zhishe.iot.models import Datastream, Device, Site

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A Monday, 2026-11-02 00:00 in Shanghai.
DAY = datetime(2026, 11, 2, tzinfo=SHANGHAI)


@dataclass
class IotWorld:
    """Handles on the IoT world's rows, tokens and headers."""

    session: Session
    operator: Any
    steward: Any
    residents: list[Any]
    transformer: Site
    households: list[Site]
    devices: dict[str, Device] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    staff_headers: dict[str, str] = field(default_factory=dict)
    resident_headers: list[dict[str, str]] = field(default_factory=list)

    def stream(self, device: str, key: str) -> Datastream:
        """The datastream ``key`` of device ``device``."""
        found = next(
            s
            for s in iot.datastreams_of(session=self.session, device_id=self.devices[device].id)
            if s.key == key
        )
        return found


def build(world: Any) -> IotWorld:
    """Create the world through the service, as an operator steward would."""
    session = world.session
    operator = world.org("op", kind="operator", name="运营公司")
    steward = world.user("op-steward", operator, role="steward")
    residents = [world.user(f"resident{i}", operator, role="resident") for i in range(2)]
    actor = actor_for_user(steward)
    transformer = iot.create_site(
        session=session,
        actor=actor,
        code="T1",
        kind="transformer",
        name="1号变压器",
        properties={"limit_kw": 400},
    )
    households = [
        iot.create_site(
            session=session,
            actor=actor,
            code=f"H{i}",
            kind="household",
            name=f"1-{i}01",
            parent_id=transformer.id,
        )
        for i in range(1, 7)
    ]
    w = IotWorld(session, operator, steward, residents, transformer, households)
    for i, household in enumerate(households, start=1):
        for kind, room in (
            ("electricity_meter", ""),
            ("water_meter", "kitchen"),
            ("motion_sensor", "kitchen"),
        ):
            code = f"H{i}-{kind.split('_')[0]}"
            new = iot.create_device(
                session=session, actor=actor, site_id=household.id, code=code, kind=kind, room=room
            )
            w.devices[code] = new.device
            w.tokens[code] = new.token
    for resident, household in zip(residents, households, strict=False):
        iot.add_member(session=session, actor=actor, site_id=household.id, user_id=resident.id)
    session.commit()
    w.staff_headers = bearer(session, steward)
    w.resident_headers = [bearer(session, r, ["iot:read", "iot:write"]) for r in residents]
    return w


@pytest.fixture()
def iw(world: Any) -> IotWorld:
    return build(world)
