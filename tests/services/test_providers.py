"""Categories and provider profiles: the operator keeps categories, standing and commissions; a
provider organisation keeps its own profile; and ``check_can_sell`` answers at the moment it is asked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.sworld import B1, FAR_5KM, MONDAY, NEAR_1KM, ServicesWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.services import providers
from zhishe.services.models import Provider


def _audits(sw: ServicesWorld, action: str) -> int:
    return sw.session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def test_operator_creates_and_updates_a_category_and_residents_cannot(sw: ServicesWorld) -> None:
    category = providers.create_category(
        sw.session,
        actor=sw.actor("op-steward"),
        data={
            "code": "pet_care",
            "name_zh": "宠物照护",
            "name_en": "Pet care",
            "commission_bps": 1200,
            "licence_kinds": ["pet"],
        },
    )
    assert (category.code, category.commission_bps, category.licence_kinds) == ("pet_care", 1200, ["pet"])
    providers.update_category(
        sw.session, actor=sw.actor("op-admin"), code="pet_care", data={"commission_bps": 900}
    )
    assert category.commission_bps == 900
    assert _audits(sw, "services.category.create") == 1 and _audits(sw, "services.category.update") == 1
    with pytest.raises(Forbidden):
        providers.create_category(sw.session, actor=sw.actor("res1"), data={"code": "x_y", "name_zh": "x"})
    with pytest.raises(Invalid) as caught:
        providers.update_category(
            sw.session, actor=sw.actor("op-admin"), code="pet_care", data={"commission_bps": 10_001}
        )
    assert caught.value.detail["field"] == "commission_bps"
    with pytest.raises(Conflict):
        providers.create_category(
            sw.session, actor=sw.actor("op-admin"), data={"code": "pet_care", "name_zh": "重复"}
        )


def _new_provider_org(sw: ServicesWorld, world: Any) -> None:
    sw.orgs["new"] = world.org("newco", kind="service_provider", name="新家政")
    sw.users["new-admin"] = world.user("new-admin", sw.orgs["new"], role="admin")


def test_a_provider_organisation_creates_its_profile_with_the_default_radius(
    sw: ServicesWorld, world: Any
) -> None:
    _new_provider_org(sw, world)
    provider = providers.create(
        sw.session,
        actor=sw.actor("new-admin"),
        data={
            "name_zh": "新家政",
            "lat": NEAR_1KM[0],
            "lon": NEAR_1KM[1],
            "categories": ["housekeeping"],
            "phone": "+86 10-1234",
        },
    )
    assert provider.org_id == sw.orgs["new"].id and provider.radius_m == 3000 and provider.status == "active"
    assert _audits(sw, "services.provider.create") == 1
    with pytest.raises(Conflict):
        providers.create(
            sw.session,
            actor=sw.actor("new-admin"),
            data={"name_zh": "again", "lat": 1, "lon": 1, "categories": ["repair"]},
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lat": 91}, "lat"),
        ({"lon": -181}, "lon"),
        ({"lat": "north"}, "lat"),
        ({"radius_m": 99}, "radius_m"),
        ({"radius_m": 50_001}, "radius_m"),
        ({"radius_m": 2.5}, "radius_m"),
        ({"categories": ["time_travel"]}, "categories"),
        ({"categories": []}, "categories"),
        ({"name_zh": ""}, "name_zh"),
        ({"phone": "call me"}, "phone"),
    ],
)
def test_bad_profile_fields_are_refused_by_name_and_nothing_changes(
    sw: ServicesWorld, change: dict[str, object], field: str
) -> None:
    provider = sw.providers["clean"]
    before = (provider.lat, provider.lon, provider.radius_m, list(provider.categories), provider.name_zh)
    with pytest.raises(Invalid) as caught:
        providers.update(sw.session, actor=sw.actor("clean-admin"), provider_id=provider.id, data=change)
    sw.session.rollback()
    assert caught.value.detail["field"] == field
    fresh = sw.session.get(Provider, provider.id)
    assert fresh is not None
    assert (fresh.lat, fresh.lon, fresh.radius_m, list(fresh.categories), fresh.name_zh) == before


def test_another_providers_staff_cannot_edit_a_profile(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        providers.update(
            sw.session,
            actor=sw.actor("fix-admin"),
            provider_id=sw.providers["clean"].id,
            data={"radius_m": 5000},
        )


def test_operator_suspends_and_reinstates_with_a_reason_and_the_provider_is_told(sw: ServicesWorld) -> None:
    from zhishe.core.notifications.models import Notification

    provider = sw.providers["clean"]
    listing = sw.listing(provider, "housekeeping")
    with pytest.raises(Invalid):
        providers.suspend(sw.session, actor=sw.actor("op-steward"), provider_id=provider.id, reason=" ")
    providers.suspend(sw.session, actor=sw.actor("op-steward"), provider_id=provider.id, reason="投诉核查中")
    assert provider.status == "suspended"
    with pytest.raises(Conflict) as caught:
        providers.check_can_sell(sw.session, listing)
    assert "suspended" in caught.value.message
    providers.reinstate(sw.session, actor=sw.actor("op-steward"), provider_id=provider.id, reason="核查完毕")
    providers.check_can_sell(sw.session, listing)
    assert _audits(sw, "services.provider.suspend") == 1 and _audits(sw, "services.provider.reinstate") == 1
    told = sw.session.scalar(
        select(func.count()).where(
            Notification.user_id == sw.users["clean-admin"].id, Notification.kind == "services.provider"
        )
    )
    assert told == 2
    with pytest.raises(Forbidden):
        providers.suspend(sw.session, actor=sw.actor("clean-admin"), provider_id=provider.id, reason="self")


def test_contract_commission_overrides_are_validated_and_used(sw: ServicesWorld) -> None:
    provider = sw.providers["clean"]
    with pytest.raises(Invalid) as caught:
        providers.set_commissions(
            sw.session,
            actor=sw.actor("op-admin"),
            provider_id=provider.id,
            overrides={"housekeeping": 10_001},
        )
    assert caught.value.detail["field"] == "commission_overrides.housekeeping"
    with pytest.raises(Invalid):
        providers.set_commissions(
            sw.session, actor=sw.actor("op-admin"), provider_id=provider.id, overrides={"nope": 100}
        )
    providers.set_commissions(
        sw.session, actor=sw.actor("op-admin"), provider_id=provider.id, overrides={"housekeeping": 700}
    )
    assert providers.commission_bps(sw.session, provider, "housekeeping") == 700
    assert providers.commission_bps(sw.session, provider, "elderly_visit") == 800  # category default
    assert _audits(sw, "services.provider.commissions") == 1


def test_distance_is_haversine_in_whole_metres(sw: ServicesWorld) -> None:
    provider = sw.providers["clean"]  # about 1 km north of B1
    assert 990 <= providers.distance_m(provider, *B1) <= 1010
    assert 3990 <= providers.distance_m(provider, *FAR_5KM) <= 4010
    assert providers.distance_m(provider, *NEAR_1KM) == 0


def test_check_can_sell_sees_a_lapsed_licence_before_any_sweep(sw: ServicesWorld) -> None:
    provider = sw.providers["clean"]
    listing = sw.listing(provider, "housekeeping")
    providers.check_can_sell(sw.session, listing)
    with clock.frozen(MONDAY + timedelta(days=367)), pytest.raises(Conflict) as caught:
        providers.check_can_sell(sw.session, listing)
    assert caught.value.detail["missing_licences"] == ["housekeeping"]
    assert listing.status == "active"  # nothing was changed by the question


def test_check_can_sell_refuses_a_listing_that_is_not_active_or_lacks_a_licence(sw: ServicesWorld) -> None:
    draft = sw.listing(sw.providers["clean"], "housekeeping", status="draft")
    with pytest.raises(Conflict):
        providers.check_can_sell(sw.session, draft)
    # the repair shop holds no food licence at all
    fix = sw.providers["fix"]
    fix.categories = ["repair", "fresh_food"]
    food = sw.listing(fix, "fresh_food", title_zh="蔬菜")
    with pytest.raises(Conflict) as caught:
        providers.check_can_sell(sw.session, food)
    assert caught.value.detail["missing_licences"] == ["food"]
