"""Discovery: only active listings of active providers whose radius covers the resident's building,
ranked with every factor shown; search in Chinese by substring with literal wildcards; filters and
keyset paging; a clear error without a location or outside the radius."""

from __future__ import annotations

import pytest

from services.sworld import ServicesWorld
from zhishe.core.errors import Invalid
from zhishe.services import discovery, providers
from zhishe.services.models import ResidentProfile


def _ids(sw: ServicesWorld, user: str = "res1", **filters: object) -> list[int]:
    results = discovery.search(sw.session, actor=sw.actor(user), **filters)  # type: ignore[arg-type]
    return [hit.listing.id for hit in results.items]


def test_a_chinese_query_finds_listings_by_substring(sw: ServicesWorld) -> None:
    cleaning = sw.listing(sw.providers["clean"], "housekeeping")  # 日常保洁
    sw.listing(sw.providers["fix"], "repair", title_zh="水电维修", title_en="Plumbing")
    assert _ids(sw, q="保洁") == [cleaning.id]
    assert _ids(sw, q="洁家 日常") == [cleaning.id]  # every term must match
    assert _ids(sw, q="保洁 维修") == []
    assert _ids(sw, q="CLEANING") == [cleaning.id]


def test_like_wildcards_in_a_query_are_literal(sw: ServicesWorld) -> None:
    sw.listing(sw.providers["clean"], "housekeeping")
    discount = sw.listing(sw.providers["clean"], "housekeeping", title_zh="保洁8折_特惠%")
    assert _ids(sw, q="%") == [discount.id]
    assert _ids(sw, q="_") == [discount.id]
    assert _ids(sw, q="保%洁") == []


def test_only_listings_whose_provider_radius_covers_the_building_are_found(sw: ServicesWorld) -> None:
    near = sw.listing(sw.providers["clean"], "housekeeping")
    sw.listing(sw.providers["far"], "housekeeping")  # 10 km away, 3 km radius
    farm = sw.listing(sw.providers["farm"], "fresh_food", title_zh="有机蔬菜")  # 2 km away, 8 km radius
    assert set(_ids(sw)) == {near.id, farm.id}
    # res-far lives 5 km north: only the farm's 8 km radius reaches there
    assert _ids(sw, "res-far") == [farm.id]


def test_suspended_drafts_and_suspended_providers_are_not_found(sw: ServicesWorld) -> None:
    sw.listing(sw.providers["clean"], "housekeeping", status="draft")
    sw.listing(sw.providers["clean"], "housekeeping", status="suspended")
    repair = sw.listing(sw.providers["fix"], "repair", title_zh="维修")
    assert _ids(sw) == [repair.id]
    providers.suspend(
        sw.session, actor=sw.actor("op-admin"), provider_id=sw.providers["fix"].id, reason="核查"
    )
    assert _ids(sw) == []


def test_each_hit_shows_every_ranking_factor_and_the_score_components(sw: ServicesWorld) -> None:
    sw.providers["clean"].rating_sum, sw.providers["clean"].rating_count = 46, 10
    sw.providers["clean"].response_minutes = 12.0
    sw.listing(sw.providers["clean"], "housekeeping")
    [hit] = discovery.search(sw.session, actor=sw.actor("res1")).items
    factors = hit.factors_json()
    assert 990 <= factors["distance_m"] <= 1010
    assert factors["rating"]["avg"] == 4.6 and factors["rating"]["count"] == 10
    assert factors["response_minutes"] == 12.0
    assert factors["price_fen"] == 10000  # 2 hours minimum at ¥50
    assert set(factors["components"]) == {"distance", "rating", "response", "price"}
    expected = sum(discovery.WEIGHTS[k] * v for k, v in factors["components"].items())
    assert factors["score"] == pytest.approx(expected, abs=1e-3)


def test_sorting_and_filters_by_distance_price_and_rating(sw: ServicesWorld) -> None:
    clean = sw.listing(sw.providers["clean"], "housekeeping")  # 1 km, ¥100
    fix = sw.listing(
        sw.providers["fix"],
        "repair",
        title_zh="维修",
        price_rules={"unit": "visit", "unit_fen": 3000, "min_units": 1, "surcharges": []},
    )  # 2 km, ¥30
    sw.providers["fix"].rating_sum, sw.providers["fix"].rating_count = 50, 10
    sw.session.commit()
    assert _ids(sw, sort="distance") == [clean.id, fix.id]
    assert _ids(sw, sort="price") == [fix.id, clean.id]
    assert _ids(sw, sort="rating") == [fix.id, clean.id]
    assert _ids(sw, max_price_fen=5000) == [fix.id]
    assert _ids(sw, max_distance_m=1500) == [clean.id]
    assert _ids(sw, min_rating=4.5) == [fix.id]
    assert _ids(sw, category="housekeeping") == [clean.id]


def test_keyset_paging_walks_every_hit_once(sw: ServicesWorld) -> None:
    made = [sw.listing(sw.providers["clean"], "housekeeping", title_zh=f"保洁{i}").id for i in range(5)]
    seen: list[int] = []
    after = None
    for _ in range(5):
        page = discovery.search(sw.session, actor=sw.actor("res1"), sort="distance", limit=2, after=after)
        seen += [hit.listing.id for hit in page.items]
        after = page.next
        if after is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    with pytest.raises(Invalid) as caught:
        discovery.search(sw.session, actor=sw.actor("res1"), after="garbage!")
    assert caught.value.detail["parameter"] == "after"


def test_a_resident_without_a_building_is_told_to_set_it(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid) as caught:
        discovery.search(sw.session, actor=sw.actor("op-admin"))
    assert "building" in caught.value.message


def test_location_comes_from_the_profile_else_the_building_area(sw: ServicesWorld) -> None:
    profile = sw.session.get(ResidentProfile, sw.users["res2"].id)
    assert profile is not None
    profile.lat, profile.lon = None, None
    sw.session.commit()
    area = sw.areas["B1"]
    assert discovery.resident_location(sw.session, sw.users["res2"].id) == (area.lat, area.lon)
    assert discovery.resident_location(sw.session, sw.users["op-admin"].id) is None


def test_within_radius_gives_the_distance_or_refuses_outside_the_radius(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    assert 990 <= discovery.within_radius(sw.session, listing, sw.users["res1"].id) <= 1010
    with pytest.raises(Invalid) as caught:
        discovery.within_radius(sw.session, listing, sw.users["res-far"].id)
    assert "outside the provider's service radius" in caught.value.message
    assert caught.value.detail["radius_m"] == 3000


def test_bad_search_parameters_are_named(sw: ServicesWorld) -> None:
    for kwargs, name in (
        ({"sort": "random"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"min_rating": 6.0}, "min_rating"),
        ({"max_price_fen": -1}, "max_price_fen"),
    ):
        with pytest.raises(Invalid) as caught:
            discovery.search(sw.session, actor=sw.actor("res1"), **kwargs)  # type: ignore[arg-type]
        assert caught.value.detail["parameter"] == name
