"""Advertising: slots, bookings without overlap, safe links, serving and clicks counted, and
idempotent billing to the merchant's receivable."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from finance.revenue_world import balanced, entries
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ads, ledger
from zhishe.finance.models import AdBooking, AdSlot


def slot(sw: ServicesWorld) -> AdSlot:
    created = ads.create_slot(
        session=sw.session,
        actor=sw.actor("op-admin"),
        code="home-top",
        placement="home",
        name_zh="首页横幅",
        day_fen=1_000,
        per_thousand_impressions_fen=500,
        per_click_fen=20,
    )
    sw.session.commit()
    return created


def booking(
    sw: ServicesWorld, s: AdSlot, start: date, end: date, actor: str = "farm-admin", **extra: str
) -> AdBooking:
    made = ads.book(
        session=sw.session,
        actor=sw.actor(actor),
        slot_id=s.id,
        org_id=sw.orgs["farm"].id,
        starts_on=start,
        ends_on=end,
        headline="新鲜蔬菜直送",
        link=extra.get("link", "https://farm.example/veg"),
    )
    sw.session.commit()
    return made


def test_serving_counts_impressions_and_billing_posts_days_impressions_and_clicks_once(
    sw: ServicesWorld,
) -> None:
    s = slot(sw)
    b = booking(sw, s, date(2026, 11, 2), date(2026, 11, 8))
    for _ in range(1_500):
        assert ads.serve(sw.session, "home") is not None
    for _ in range(3):
        assert ads.click(sw.session, b.id) == "https://farm.example/veg"
    sw.session.commit()
    assert ads.serve(sw.session, "notices") is None
    with clock.frozen(MONDAY + timedelta(days=1)):  # two days begun
        done = ads.bill(sw.session)
        sw.session.commit()
    # 2 days x 1000 + 1500 impressions x 500/1000 + 3 clicks x 20
    assert done == {"bookings": 1, "billed_fen": 2_000 + 750 + 60}
    receivable = ads.receivable(sw.orgs["farm"].id)
    assert ledger.balance(sw.session, receivable) == 2_810
    assert ledger.balance(sw.session, "Income:Advertising") == -2_810
    before = entries(sw.session)
    with clock.frozen(MONDAY + timedelta(days=1)):
        assert ads.bill(sw.session) == {"bookings": 0, "billed_fen": 0}  # nothing new: nothing posted
    assert entries(sw.session) == before
    with clock.frozen(MONDAY + timedelta(days=30)):  # the whole week, long after
        ads.bill(sw.session)
        sw.session.commit()
    assert ledger.balance(sw.session, receivable) == 7_000 + 750 + 60
    sw.session.refresh(b)
    assert (b.billed_impressions, b.billed_clicks, b.billed_fen) == (1_500, 3, 7_810)
    assert balanced(sw.session)


def test_an_overlapping_booking_of_the_same_slot_is_a_clear_conflict(sw: ServicesWorld) -> None:
    s = slot(sw)
    booking(sw, s, date(2026, 11, 10), date(2026, 11, 20))
    with pytest.raises(Conflict) as refused:
        booking(sw, s, date(2026, 11, 20), date(2026, 11, 25), actor="op-steward")
    assert "2026-11-10" in str(refused.value)
    sw.session.rollback()
    booking(sw, s, date(2026, 11, 21), date(2026, 11, 25), actor="op-steward")  # the day after is free
    assert len(ads.list_bookings(session=sw.session, actor=sw.actor("op-analyst"))) == 2
    assert entries(sw.session) == 0


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.example", "ftp://x.example"],
)
def test_a_link_that_is_not_http_or_https_is_refused(sw: ServicesWorld, link: str) -> None:
    s = slot(sw)
    with pytest.raises(Invalid) as refused:
        booking(sw, s, date(2026, 11, 2), date(2026, 11, 3), link=link)
    assert refused.value.detail["field"] == "link"
    sw.session.rollback()
    assert sw.session.query(AdBooking).count() == 0


def test_only_the_merchant_admin_or_the_operator_books_for_a_merchant(sw: ServicesWorld) -> None:
    s = slot(sw)
    for who in ("clean-admin", "res1", "op-analyst"):
        with pytest.raises(Forbidden):
            booking(sw, s, date(2026, 11, 2), date(2026, 11, 3), actor=who)


def test_dates_out_of_order_or_in_the_past_are_refused(sw: ServicesWorld) -> None:
    s = slot(sw)
    with pytest.raises(Invalid):
        booking(sw, s, date(2026, 11, 5), date(2026, 11, 3))
    with pytest.raises(Invalid):
        booking(sw, s, date(2026, 10, 5), date(2026, 11, 3))


def test_cancelling_bills_what_ran_and_frees_the_rest(sw: ServicesWorld) -> None:
    s = slot(sw)
    b = booking(sw, s, date(2026, 11, 2), date(2026, 11, 30))
    ads.cancel_booking(session=sw.session, actor=sw.actor("farm-admin"), booking_id=b.id)
    sw.session.commit()
    assert ledger.balance(sw.session, ads.receivable(sw.orgs["farm"].id)) == 1_000
    assert ads.serve(sw.session, "home") is None
    booking(sw, s, date(2026, 11, 3), date(2026, 11, 30), actor="op-admin")
    assert balanced(sw.session)
