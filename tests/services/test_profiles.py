"""Residents' marketplace profiles: choosing one's building (service, API, page), the operator's
facts for vouchers, and the profile made from a residence the resident already gave."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import bearer, csrf_of, login
from services.sworld import B1, ServicesWorld
from zhishe.core.areas.models import Area
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Forbidden, Invalid
from zhishe.participation.models import Residence
from zhishe.services import discovery, profiles
from zhishe.services.models import ResidentProfile

RW = ["services:read", "services:write"]


@pytest.fixture()
def app(app: Any) -> Any:
    """The application with the profile routes included (until the application wires them)."""
    from zhishe.services import api_profile, pages_profile

    paths = {getattr(route, "path", "") for route in app.routes}
    if "/services/profile" not in paths:
        app.include_router(api_profile.router)
        app.include_router(pages_profile.router)
    return app


@pytest.fixture()
def newcomer(sw: ServicesWorld, world: Any) -> Any:
    """A resident with no profile, and a unit of building B1 drawn without a position."""
    unit = Area(code="C1-B1-U2", level="unit", parent_id=sw.areas["B1"].id, name_zh="2单元", name_en="Unit 2")
    sw.session.add(unit)
    sw.session.commit()
    sw.areas["U2"] = unit
    sw.users["res-new"] = world.user("res-new", sw.orgs["cc"], role="resident")
    return sw.users["res-new"]


def _audits(sw: ServicesWorld, action: str) -> int:
    return (
        sw.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))
        or 0
    )


# --- service --------------------------------------------------------------------------------------


def test_setting_a_building_copies_its_position_and_is_audited(sw: ServicesWorld, newcomer: Any) -> None:
    actor = sw.actor("res-new")
    assert discovery.resident_location(sw.session, newcomer.id) is None
    profile = profiles.set_building(sw.session, actor=actor, area_code="C1-B1")
    assert (profile.area_id, profile.lat, profile.lon) == (sw.areas["B1"].id, *B1)
    assert discovery.resident_location(sw.session, newcomer.id) == B1
    assert _audits(sw, "services.profile.set_building") == 1


def test_a_unit_without_a_position_is_measured_from_its_building(sw: ServicesWorld, newcomer: Any) -> None:
    profile = profiles.set_building(sw.session, actor=sw.actor("res-new"), area_id=sw.areas["U2"].id)
    assert profile.area_id == sw.areas["U2"].id and (profile.lat, profile.lon) == B1


@pytest.mark.parametrize(
    ("how", "field"),
    [({"area_id": 999_999}, "area_id"), ({"area_code": "NOPE"}, "area_code"), ({}, "area_id")],
)
def test_an_unknown_area_is_refused_and_nothing_is_written(
    sw: ServicesWorld, newcomer: Any, how: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        profiles.set_building(sw.session, actor=sw.actor("res-new"), **how)
    assert refused.value.detail["field"] == field
    assert sw.session.get(ResidentProfile, newcomer.id) is None


def test_a_community_is_not_a_home(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid) as refused:
        profiles.set_building(sw.session, actor=sw.actor("res1"), area_code="C1")
    assert refused.value.detail == {"field": "area_code", "level": "community"}
    assert sw.session.get(ResidentProfile, sw.users["res1"].id).area_id == sw.areas["B1"].id  # type: ignore[union-attr]
    assert _audits(sw, "services.profile.set_building") == 0


def test_ensure_makes_the_profile_from_the_residence_the_resident_gave(
    sw: ServicesWorld, newcomer: Any
) -> None:
    assert profiles.ensure(sw.session, newcomer.id) is None
    sw.session.add(Residence(user_id=newcomer.id, area_id=sw.areas["U2"].id))
    sw.session.flush()
    profile = profiles.ensure(sw.session, newcomer.id)
    assert profile is not None and profile.area_id == sw.areas["U2"].id and (profile.lat, profile.lon) == B1
    assert discovery.resident_location(sw.session, newcomer.id) == B1
    assert profiles.ensure(sw.session, newcomer.id) is profile
    assert _audits(sw, "services.profile.from_residence") == 1


def test_a_residence_in_a_community_makes_no_profile(sw: ServicesWorld, newcomer: Any) -> None:
    sw.session.add(Residence(user_id=newcomer.id, area_id=sw.areas["C1"].id))
    sw.session.flush()
    assert profiles.ensure(sw.session, newcomer.id) is None
    assert sw.session.get(ResidentProfile, newcomer.id) is None


def test_the_operator_records_facts_and_they_are_audited(sw: ServicesWorld, newcomer: Any) -> None:
    profile = profiles.set_facts(
        sw.session,
        actor=sw.actor("op-steward"),
        user_id=newcomer.id,
        birth_year=1950,
        tags=["veteran", "low_income", "veteran"],
    )
    assert (profile.birth_year, profile.tags, profile.area_id) == (1950, ["low_income", "veteran"], None)
    assert _audits(sw, "services.profile.set_facts") == 1


@pytest.mark.parametrize(
    ("birth_year", "tags", "field"),
    [
        (1899, [], "birth_year"),
        (2027, [], "birth_year"),
        (True, [], "birth_year"),
        (1950, ["rich"], "tags"),
        (1950, ["Low_Income"], "tags"),
        (1950, "low_income", "tags"),
    ],
)
def test_bad_facts_are_refused_naming_the_field(
    sw: ServicesWorld, birth_year: Any, tags: Any, field: str
) -> None:
    res2 = sw.users["res2"].id
    with pytest.raises(Invalid) as refused:
        profiles.set_facts(
            sw.session, actor=sw.actor("op-admin"), user_id=res2, birth_year=birth_year, tags=tags
        )
    assert refused.value.detail["field"] == field
    profile = sw.session.get(ResidentProfile, res2)
    assert profile is not None and (profile.birth_year, profile.tags) == (None, ["low_income"])


@pytest.mark.parametrize("who", ["res1", "clean-admin", "op-analyst"])
def test_only_operator_staff_may_set_facts(sw: ServicesWorld, who: str) -> None:
    with pytest.raises(Forbidden):
        profiles.set_facts(
            sw.session, actor=sw.actor(who), user_id=sw.users[who].id, birth_year=1930, tags=[]
        )
    assert _audits(sw, "services.profile.set_facts") == 0


def test_choices_group_buildings_and_units_by_community(sw: ServicesWorld, newcomer: Any) -> None:
    groups = {group.community: group.homes for group in profiles.choices(sw.session, "zh-CN")}
    assert groups["幸福社区"] == [(sw.areas["B1"].id, "1号楼"), (sw.areas["U2"].id, "1号楼 · 2单元")]
    assert groups[""] == [(sw.areas["FAR"].id, "远郊9号楼")]


# --- API ------------------------------------------------------------------------------------------


def test_a_resident_sets_and_reads_their_building_over_the_api(
    sw: ServicesWorld, newcomer: Any, client: Any
) -> None:
    headers = bearer(sw.session, newcomer, RW)
    assert client.get("/api/v1/services/profile", headers=headers).json()["area"] is None
    put = client.put("/api/v1/services/profile", json={"area_code": "C1-B1"}, headers=headers)
    assert put.status_code == 200 and put.json()["area"]["code"] == "C1-B1"
    put = client.put("/api/v1/services/profile", json={"area_id": sw.areas["U2"].id}, headers=headers)
    got = client.get("/api/v1/services/profile", headers=headers).json()
    assert got["area"]["code"] == "C1-B1-U2" and (got["lat"], got["lon"]) == B1 and got["tags"] == []


def test_the_api_refuses_a_community_and_an_unknown_area(sw: ServicesWorld, client: Any) -> None:
    headers = bearer(sw.session, sw.users["res1"], RW)
    for body in (
        {"area_code": "C1"},
        {"area_id": 999_999},
        {"area_code": "C1-B1", "area_id": sw.areas["B1"].id},
    ):
        answer = client.put("/api/v1/services/profile", json=body, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["type"]
    sw.session.expire_all()
    assert sw.session.get(ResidentProfile, sw.users["res1"].id).area_id == sw.areas["B1"].id  # type: ignore[union-attr]


def test_a_read_only_token_cannot_change_the_building(sw: ServicesWorld, client: Any) -> None:
    headers = bearer(sw.session, sw.users["res1"], ["services:read"])
    answer = client.put("/api/v1/services/profile", json={"area_code": "C9-B1"}, headers=headers)
    assert answer.status_code == 403


def test_facts_over_the_api_operator_yes_resident_no(sw: ServicesWorld, client: Any) -> None:
    res3 = sw.users["res3"].id
    body = {"birth_year": 1948, "tags": ["living_alone"]}
    mine = client.put(
        f"/api/v1/services/residents/{res3}/facts",
        json=body,
        headers=bearer(sw.session, sw.users["res3"], RW),
    )
    assert mine.status_code == 403
    sw.session.expire_all()
    assert sw.session.get(ResidentProfile, res3).tags == []  # type: ignore[union-attr]
    ok = client.put(
        f"/api/v1/services/residents/{res3}/facts",
        json=body,
        headers=bearer(sw.session, sw.users["op-dispatcher"], RW),
    )
    assert ok.status_code == 200 and ok.json()["birth_year"] == 1948 and ok.json()["tags"] == ["living_alone"]
    bad = client.put(
        f"/api/v1/services/residents/{res3}/facts",
        json={"birth_year": 1800, "tags": []},
        headers=bearer(sw.session, sw.users["op-dispatcher"], RW),
    )
    assert bad.status_code == 422 and bad.json()["error"]["detail"]["field"] == "birth_year"


# --- page -----------------------------------------------------------------------------------------


def test_the_page_lists_homes_by_community_and_saves_then_goes_back(
    sw: ServicesWorld, newcomer: Any, client: Any
) -> None:
    login(client, "res-new")
    page = client.get("/services/profile?next=/services/search?q=x")
    assert page.status_code == 200 and 'name="viewport"' in page.text
    assert '<optgroup label="幸福社区">' in page.text and "1号楼 · 2单元" in page.text
    assert 'name="next" value="/services/search?q=x"' in page.text
    token = csrf_of(client, "/services/profile")
    saved = client.post(
        "/services/profile",
        data={"area_id": str(sw.areas["B1"].id), "next": "/services/search?q=x", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/services/search?q=x"
    page = client.get("/services/profile")
    assert 'id="current-area">1号楼<' in page.text


@pytest.mark.parametrize("evil", ["//evil.example", "https://evil.example/", "/\\evil.example", "evil"])
def test_an_offsite_next_is_ignored(sw: ServicesWorld, client: Any, evil: str) -> None:
    login(client, "res1")
    assert "evil" not in client.get(f"/services/profile?next={evil}").text
    saved = client.post(
        "/services/profile",
        data={
            "area_id": str(sw.areas["FAR"].id),
            "next": evil,
            "csrf_token": csrf_of(client, "/services/profile"),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/services/profile?saved=1"


def test_the_page_refuses_a_community_and_a_missing_token(sw: ServicesWorld, client: Any) -> None:
    login(client, "res1")
    client.cookies.set("zhishe_lang", "en")
    token = csrf_of(client, "/services/profile")
    refused = client.post("/services/profile", data={"area_id": str(sw.areas["C1"].id), "csrf_token": token})
    assert refused.status_code == 422 and "is not a building or unit" in refused.text
    empty = client.post("/services/profile", data={"area_id": "", "csrf_token": token})
    assert empty.status_code == 422 and "choose the building you live in" in empty.text
    forged = client.post("/services/profile", data={"area_id": str(sw.areas["FAR"].id)})
    assert forged.status_code == 403
    sw.session.expire_all()
    assert sw.session.get(ResidentProfile, sw.users["res1"].id).area_id == sw.areas["B1"].id  # type: ignore[union-attr]
