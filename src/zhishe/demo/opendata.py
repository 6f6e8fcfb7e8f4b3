"""The demo community's area list and open data, made through the platform's own services: the
area tree, open datasets with policies, published releases (plain, k-anonymous and
differentially private), a public data request and a problem report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core.accounts.models import User
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.areas import service as areas
from zhishe.core.auth import Actor, system_actor
from zhishe.demo.model import Community
from zhishe.demo.people import CENTRE
from zhishe.opendata import datarequests, service, stats

__all__ = ["DEMO_POLICIES", "area_rows", "seed_opendata"]


def area_rows(community: Community) -> list[areas.AreaRow]:
    """District, subdistrict, community, the buildings and their units."""
    rows = [
        areas.AreaRow("D01", "", "district", "示范区", "Demonstration District"),
        areas.AreaRow("S01", "D01", "subdistrict", "阳光街道", "Sunshine Subdistrict"),
        areas.AreaRow("C01", "S01", "community", "阳光社区", "Sunshine Community", CENTRE[0], CENTRE[1]),
    ]
    for b in community.buildings:
        rows.append(areas.AreaRow(b.id, "C01", "building", b.name_zh, b.name_en, b.lat, b.lon))
        for unit in range(1, b.units + 1):
            rows.append(
                areas.AreaRow(
                    f"{b.id}-U{unit}",
                    b.id,
                    "unit",
                    f"{b.name_zh}{unit}单元",
                    f"{b.name_en}, Unit {unit}",
                    b.lat,
                    b.lon,
                )
            )
    return rows


#: Open datasets of the demo: (slug, owner's steward, settings). Public data is released as it is;
#: the household register through k-anonymity; clinic visits as differentially private counts.
DEMO_POLICIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "air-quality-hourly",
        "env.steward",
        {
            "order_by": ["observed_at"],
            "chart": {"kind": "line", "x": "observed_at", "y": "pm25"},
            "featured": True,
        },
    ),
    ("buildings", "land.steward", {"order_by": ["building_id"], "featured": True}),
    (
        "population-by-building",
        "committee.steward",
        {"order_by": ["building_id"], "chart": {"kind": "bar", "x": "building_id", "y": "residents"}},
    ),
    ("street-light-faults", "city.steward", {"order_by": ["reported_at"]}),
    (
        "waste-collection",
        "city.steward",
        {"order_by": ["collection_date"], "chart": {"kind": "bar", "x": "station_id", "y": "kitchen_kg"}},
    ),
    (
        "household-register",
        "police.steward",
        {
            "policy": {
                "columns": {
                    "household_id": "pseudonymise",
                    "building_id": "keep",
                    "unit": "drop",
                    "floor": "drop",
                    "room": "drop",
                    "household_size": "keep",
                    "head_name": "drop",
                    "head_gender": "keep",
                    "head_birth_year": "keep",
                    "head_phone": "drop",
                    "has_elderly": "keep",
                    "registered_on": {"rule": "generalise", "method": "date", "unit": "year"},
                    "receives_subsidy": "keep",
                },
                "model": {
                    "type": "k_anonymity",
                    "k": 5,
                    "quasi_identifiers": [
                        "building_id",
                        "head_gender",
                        "head_birth_year",
                        "household_size",
                        "has_elderly",
                    ],
                    "sensitive": ["receives_subsidy"],
                    "l": 2,
                },
            },
            "order_by": ["building_id"],
        },
    ),
    (
        "clinic-visits-daily",
        "clinic-east.steward",
        {
            "policy": {
                "columns": {"visit_date": {"rule": "generalise", "method": "date", "unit": "month"}},
                "model": {
                    "type": "dp",
                    "epsilon": 0.5,
                    "dimensions": ["visit_date", "syndrome_group"],
                    "measures": [{"kind": "sum", "column": "visits", "lower": 0, "upper": 20}],
                    "dimension_values": {
                        "visit_date": [f"{2025 + (10 + i) // 12}-{(10 + i) % 12 + 1:02d}" for i in range(12)],
                        "syndrome_group": ["ili", "respiratory", "gastro", "rash"],
                    },
                },
            },
            "dp_budget": 2.0,
        },
    ),
]


def _actor(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    return actor_for_user(user) if user is not None else system_actor("demo")


def seed_opendata(sessions: sessionmaker[Session], community: Community) -> None:
    """Load the area list, open the demo's open datasets and publish their first releases."""
    with sessions.begin() as session:
        areas.import_rows(session=session, actor=system_actor("demo"), rows=area_rows(community))
    for slug, username, settings in DEMO_POLICIES:
        with sessions.begin() as session:
            actor = _actor(session, username)
            service.configure(session=session, actor=system_actor("demo"), dataset=slug, **settings)
            draft = service.draft_release(session=session, actor=actor, dataset=slug)
            service.publish_release(
                session=session, actor=actor, release_id=draft.id, note="首次开放 / first release"
            )
    with sessions.begin() as session:
        datarequests.file_request(
            session=session,
            title="小区停车位实时空余数",
            description="希望按停车场开放每小时空余车位数，方便居民找车位。",
            purpose="开发找车位小程序",
        )
        service.report_problem(
            session=session,
            slug="air-quality-hourly",
            kind="missing_period",
            problem="部分小时没有监测数据。",
            period="2026-10",
        )
    with sessions() as session:  # publishing figures commits as it goes
        stats.publish(session=session, actor=system_actor("demo"))
        session.commit()
