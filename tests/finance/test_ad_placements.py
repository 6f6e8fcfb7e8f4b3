"""Ads run where the issue places them: on the resident home page and beside the community's
notices; each view counts one impression, staff pages carry none, and a click goes through the
counting redirect to the merchant's link."""

from __future__ import annotations

from datetime import date

from helpers import login
from services.sworld import ServicesWorld
from zhishe.finance import ads
from zhishe.finance.models import AdBooking


def _run(sw: ServicesWorld, placement: str, headline: str) -> AdBooking:
    slot = ads.create_slot(
        session=sw.session,
        actor=sw.actor("op-admin"),
        code=f"{placement}-slot",
        placement=placement,
        name_zh="广告位",
        day_fen=1_000,
        per_thousand_impressions_fen=500,
        per_click_fen=20,
    )
    booking = ads.book(
        session=sw.session,
        actor=sw.actor("farm-admin"),
        slot_id=slot.id,
        org_id=sw.orgs["farm"].id,
        starts_on=date(2026, 11, 2),
        ends_on=date(2026, 11, 8),
        headline=headline,
        link="https://farm.example/veg",
    )
    sw.session.commit()
    return booking


def test_the_resident_home_page_shows_the_home_ad_and_counts_each_view(sw: ServicesWorld, client) -> None:
    booking = _run(sw, "home", "绿野农场：有机蔬菜周末八折")
    login(client, "res1")
    page = client.get("/")
    assert page.status_code == 200 and "绿野农场：有机蔬菜周末八折" in page.text
    assert f'href="/ads/{booking.id}/click"' in page.text and 'id="resident-home"' in page.text
    client.get("/")
    sw.session.expire_all()
    assert sw.session.get(AdBooking, booking.id).impressions == 2
    click = client.get(f"/ads/{booking.id}/click", follow_redirects=False)
    assert click.status_code in (302, 303, 307) and click.headers["location"] == "https://farm.example/veg"
    sw.session.expire_all()
    assert sw.session.get(AdBooking, booking.id).clicks == 1


def test_staff_home_pages_carry_no_ad(sw: ServicesWorld, client) -> None:
    booking = _run(sw, "home", "绿野农场：有机蔬菜周末八折")
    login(client, "op-steward")
    page = client.get("/")
    assert "绿野农场" not in page.text and 'id="resident-home"' not in page.text
    sw.session.expire_all()
    assert sw.session.get(AdBooking, booking.id).impressions == 0


def test_the_notices_page_shows_the_notices_ad(sw: ServicesWorld, client) -> None:
    booking = _run(sw, "notices", "快修师傅：空调清洗季")
    page = client.get("/participate/incidents")
    assert page.status_code == 200 and "快修师傅：空调清洗季" in page.text
    sw.session.expire_all()
    assert sw.session.get(AdBooking, booking.id).impressions == 1
