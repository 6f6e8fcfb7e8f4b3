"""The marketplace tests' world: the operator and the data bureau, four provider organisations
(housekeeping and repairs near the community, a farm, and one 10 km away), residents of building B1
and one who lives 5 km away, a public developer, service categories, and factories for providers,
licences, listings and slots. Rows are created directly in the tables: this is the fixture, not the
feature under test.

Time starts at ``MONDAY`` (2026-11-02 10:00, Shanghai); tests move it with ``zhishe.core.clock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from participation.pworld import area
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor
from zhishe.services.models import (
    Licence,
    Listing,
    Provider,
    ResidentProfile,
    ServiceCategory,
    Slot,
    StockBatch,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Monday 2026-11-02 10:00 in Shanghai.
MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
#: Building B1 (where res1..res5 live) and the near providers' bases (about 1 km and 2 km away).
B1 = (39.9042, 116.4074)
NEAR_1KM = (39.9132, 116.4074)
NEAR_2KM = (39.9222, 116.4074)
#: About 5 km and 10 km north of B1.
FAR_5KM = (39.9492, 116.4074)
FAR_10KM = (39.9942, 116.4074)

#: The default price rules of a housekeeping listing: ¥50 an hour, at least 2 hours, +¥20 on weekends.
HOURLY = {
    "unit": "hour",
    "unit_fen": 5000,
    "min_units": 2,
    "surcharges": [
        {
            "code": "weekend",
            "name_zh": "周末",
            "name_en": "Weekend",
            "kind": "fixed",
            "amount": 2000,
            "when": "weekend",
        }
    ],
}
#: The default cancellation policy: free until 24 h before, 50 % inside 24 h, 100 % on no-show.
POLICY = {"free_until_hours": 24, "late_fee_bps": 5000, "no_show_fee_bps": 10000}


@dataclass
class ServicesWorld:
    """Handles on the world's rows, and factories for more."""

    session: Session
    users: dict[str, Any] = field(default_factory=dict)
    orgs: dict[str, Any] = field(default_factory=dict)
    areas: dict[str, Area] = field(default_factory=dict)
    categories: dict[str, ServiceCategory] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)

    def actor(self, username: str) -> Actor:
        """The actor of user ``username``."""
        return actor_for_user(self.users[username])

    def provider(
        self,
        key: str,
        org_key: str,
        at: tuple[float, float],
        categories: list[str],
        *,
        radius_m: int = 3000,
        licences: dict[str, date] | None = None,
        **extra: Any,
    ) -> Provider:
        """A provider profile for organisation ``org_key``, with valid licences (kind -> expiry)."""
        org = self.orgs[org_key]
        provider = Provider(
            org_id=org.id,
            name_zh=org.name_zh,
            name_en=org.name_en,
            lat=at[0],
            lon=at[1],
            radius_m=radius_m,
            categories=categories,
            created_at=clock.now(),
            **extra,
        )
        self.session.add(provider)
        self.session.flush()
        for kind, expires in (licences or {}).items():
            self.licence(provider, kind, expires)
        self.providers[key] = provider
        self.session.commit()
        return provider

    def licence(self, provider: Provider, kind: str, expires_on: date) -> Licence:
        """A licence of ``provider`` expiring on ``expires_on``."""
        licence = Licence(
            provider_id=provider.id,
            kind=kind,
            number=f"{kind.upper()}-{provider.id:04d}",
            filename=f"{kind}.pdf",
            content_type="application/pdf",
            content=b"%PDF-1.4 test licence",
            expires_on=expires_on,
            uploaded_at=clock.now(),
        )
        self.session.add(licence)
        self.session.commit()
        return licence

    def listing(
        self,
        provider: Provider,
        category: str,
        process: str = "instant_booking",
        *,
        title_zh: str = "日常保洁",
        title_en: str = "Home cleaning",
        price_rules: dict[str, Any] | None = None,
        cancellation_policy: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        availability: str = "slots",
        status: str = "active",
    ) -> Listing:
        """An active listing of ``provider``."""
        now = clock.now()
        listing = Listing(
            provider_id=provider.id,
            category_code=category,
            process=process,
            title_zh=title_zh,
            title_en=title_en,
            description_zh=f"{title_zh}，专业可靠",
            description_en=f"{title_en}, reliable and professional",
            price_rules=price_rules if price_rules is not None else dict(HOURLY),
            cancellation_policy=cancellation_policy if cancellation_policy is not None else dict(POLICY),
            settings=settings or {},
            availability=availability,
            status=status,
            search_text=f"{title_zh} {title_en} {category} {provider.name_zh}".lower(),
            created_at=now,
            updated_at=now,
        )
        self.session.add(listing)
        self.session.commit()
        return listing

    def slot(self, listing: Listing, starts_at: datetime, *, hours: int = 2, capacity: int = 1) -> Slot:
        """A slot of ``listing`` starting at ``starts_at``."""
        slot = Slot(
            listing_id=listing.id,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=hours),
            capacity=capacity,
            booked=0,
        )
        self.session.add(slot)
        self.session.commit()
        return slot

    def batch(self, listing: Listing, quantity: int, label: str = "第1批") -> StockBatch:
        """A stock batch of ``quantity`` units of ``listing``."""
        batch = StockBatch(listing_id=listing.id, label=label, quantity=quantity, remaining=quantity)
        self.session.add(batch)
        self.session.commit()
        return batch


def build(world: Any) -> ServicesWorld:
    """Create the world on an empty database, with the clock frozen at ``MONDAY``."""
    clock.set_clock(lambda: MONDAY)
    session = world.session
    w = ServicesWorld(session=session)
    for key, kind, name in (
        ("op", "operator", "智社运营公司"),
        ("bureau", "data_bureau", "数据局"),
        ("clean", "service_provider", "洁家家政"),
        ("fix", "service_provider", "快修维修"),
        ("farm", "service_provider", "绿野农场"),
        ("far", "service_provider", "远方家政"),
        ("cc", "community_committee", "幸福社区居委会"),
        ("dev", "public_developer", "数智科技"),
    ):
        w.orgs[key] = world.org(key, kind=kind, name=name)
    for name, org, role in (
        ("op-admin", "op", "admin"),
        ("op-steward", "op", "steward"),
        ("op-dispatcher", "op", "dispatcher"),
        ("op-analyst", "op", "analyst"),
        ("bureau-admin", "bureau", "admin"),
        ("clean-admin", "clean", "admin"),
        ("clean-staff", "clean", "provider_staff"),
        ("fix-admin", "fix", "admin"),
        ("farm-admin", "farm", "admin"),
        ("far-admin", "far", "admin"),
        ("dev-admin", "dev", "admin"),
        ("res1", "cc", "resident"),
        ("res2", "cc", "resident"),
        ("res3", "cc", "resident"),
        ("res4", "cc", "resident"),
        ("res5", "cc", "resident"),
        ("res-far", "cc", "resident"),
    ):
        w.users[name] = world.user(name, w.orgs[org], role=role)

    district = area(session, "D1", "district", None, "朝阳区", 39.92, 116.44)
    community = area(session, "C1", "community", district, "幸福社区", 39.9042, 116.409)
    w.areas["C1"] = community
    w.areas["B1"] = area(session, "C1-B1", "building", community, "1号楼", *B1)
    w.areas["FAR"] = area(session, "C9-B1", "building", district, "远郊9号楼", *FAR_5KM)
    for name in ("res1", "res2", "res3", "res4", "res5"):
        session.add(
            ResidentProfile(user_id=w.users[name].id, area_id=w.areas["B1"].id, lat=B1[0], lon=B1[1], tags=[])
        )
    session.add(
        ResidentProfile(
            user_id=w.users["res-far"].id, area_id=w.areas["FAR"].id, lat=FAR_5KM[0], lon=FAR_5KM[1], tags=[]
        )
    )
    # res1 is 72 and eligible for the elderly-care voucher; res2 has a low-income tag
    session.get(ResidentProfile, w.users["res1"].id).birth_year = 1954  # type: ignore[union-attr]
    session.get(ResidentProfile, w.users["res2"].id).tags = ["low_income"]  # type: ignore[union-attr]

    for code, zh, en, bps, kinds in (
        ("housekeeping", "家政保洁", "Housekeeping", 1500, ["housekeeping"]),
        ("repair", "维修", "Repairs", 1200, []),
        ("elderly_visit", "上门助老", "Elderly home visits", 800, ["medical"]),
        ("fresh_food", "生鲜直供", "Fresh food from farms", 1000, ["food"]),
        ("group_buy", "社区团购", "Group buying", 800, ["food"]),
        ("rental", "邻里租借", "Neighbour rentals", 500, []),
    ):
        category = ServiceCategory(code=code, name_zh=zh, name_en=en, commission_bps=bps, licence_kinds=kinds)
        session.add(category)
        w.categories[code] = category
    session.commit()

    year_ahead = (MONDAY + timedelta(days=365)).date()
    w.provider(
        "clean",
        "clean",
        NEAR_1KM,
        ["housekeeping", "elderly_visit"],
        licences={"housekeeping": year_ahead, "medical": year_ahead},
    )
    w.provider("fix", "fix", NEAR_2KM, ["repair"])
    w.provider(
        "farm", "farm", NEAR_2KM, ["fresh_food", "group_buy"], radius_m=8000, licences={"food": year_ahead}
    )
    w.provider("far", "far", FAR_10KM, ["housekeeping"], licences={"housekeeping": year_ahead})
    return w
