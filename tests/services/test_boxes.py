"""Membership boxes (会员预售): plans from the listing's settings, prepaid into escrow; each delivery
pays the provider that period's share; a mid-plan cancel refunds the boxes not delivered, pro rata
to the fen; pausing moves the deliveries and the end later; hostile inputs are refused with
nothing posted."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.specialkit import assert_balanced, entries, fund, held
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.finance import ledger
from zhishe.services import boxes
from zhishe.services.models import BoxDelivery, Listing, Transaction

START_FEN = 500_000
#: ¥88.33 a box: 26 boxes less 5 % make a price that does not split evenly.
BOX_FEN = 8_833
PLANS = {
    "month": {"periods": 4, "every_days": 7},
    "half_year": {"periods": 26, "every_days": 7, "discount_bps": 500},
    "year": {"periods": 52, "every_days": 7, "discount_bps": 1000},
}


@pytest.fixture()
def listing(sw: ServicesWorld) -> Listing:
    """The farm's weekly vegetable box; res1 and res2 hold ¥5,000."""
    fund(sw, ("res1", "res2"), START_FEN)
    return sw.listing(
        sw.providers["farm"],
        "fresh_food",
        "membership_box",
        title_zh="有机蔬菜周箱",
        title_en="Organic vegetable box",
        price_rules={"unit": "box", "unit_fen": BOX_FEN, "min_units": 1, "surcharges": []},
        settings={"plans": PLANS},
        availability="none",
    )


def _subscribe(
    sw: ServicesWorld, listing: Listing, plan: str = "month", name: str = "res1", **extra: Any
) -> Transaction:
    params: dict[str, Any] = {"method": "wallet"}
    params.update(extra)
    txn, _ = boxes.subscribe(sw.session, actor=sw.actor(name), listing_id=listing.id, plan=plan, **params)
    sw.session.commit()
    return txn


def _deliver(sw: ServicesWorld, txn: Transaction, count: int) -> None:
    for delivery in sw.session.scalars(
        select(BoxDelivery)
        .where(BoxDelivery.transaction_id == txn.id, BoxDelivery.state == "due")
        .order_by(BoxDelivery.period_index)
        .limit(count)
    ).all():
        boxes.mark_delivered(sw.session, actor=sw.actor("farm-admin"), delivery_id=delivery.id)
        sw.session.commit()  # --- the arithmetic ----------------------------------------------------------------------------------


@given(total=st.integers(min_value=0, max_value=10**10), parts=st.integers(min_value=1, max_value=366))
def test_shares_always_add_up_to_the_total_and_differ_by_at_most_one_fen(total: int, parts: int) -> None:
    shares = boxes.split_evenly(total, parts)
    assert sum(shares) == total and len(shares) == parts
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


def test_the_plan_discount_rounds_half_to_even() -> None:
    assert boxes.discounted(10_050, 500) == (9_548, 502)  # 502.5 -> 502
    assert boxes.discounted(10_070, 500) == (9_566, 504)  # 503.5 -> 504
    assert boxes.discounted(1_000, 0) == (1_000, 0)


def test_resuming_moves_deliveries_by_whole_periods() -> None:
    paused, next_due = date(2026, 11, 5), date(2026, 11, 10)
    assert boxes.resume_shift_days(next_due, paused, date(2026, 11, 9), 7) == 0
    assert boxes.resume_shift_days(next_due, paused, date(2026, 11, 11), 7) == 7
    assert boxes.resume_shift_days(next_due, paused, date(2026, 11, 20), 7) == 14
    assert boxes.resume_shift_days(None, paused, date(2026, 11, 20), 7) == 0


@pytest.mark.parametrize(
    ("plans", "field"),
    [
        (None, "settings.plans"),
        ({}, "settings.plans"),
        ({"month": {"periods": 0, "every_days": 7}}, "settings.plans.month.periods"),
        ({"month": {"periods": 4, "every_days": "7"}}, "settings.plans.month.every_days"),
        (
            {"month": {"periods": 4, "every_days": 7, "discount_bps": 20_000}},
            "settings.plans.month.discount_bps",
        ),
        ({"month": [4, 7]}, "settings.plans.month"),
        ({"weekly": {"periods": 4, "every_days": 7}}, "settings.plans.weekly"),
    ],
)
def test_bad_plans_are_refused_naming_the_field(plans: Any, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        boxes.plans_of({"plans": plans} if plans is not None else {})
    assert caught.value.detail["field"] == field


# --- subscribing and delivering ----------------------------------------------------------------------


def test_subscribing_prepays_the_plan_into_escrow_and_schedules_every_delivery(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _subscribe(sw, listing, "month")
    assert txn.state == "active" and txn.price_fen == 4 * BOX_FEN
    view = boxes.get_subscription(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    assert [d.due_on for d in view.deliveries] == [
        date(2026, 11, 3) + timedelta(days=7 * i) for i in range(4)
    ]
    assert ledger.balance(sw.session, ledger.escrow_of()) == -4 * BOX_FEN
    assert held(sw) == START_FEN - 4 * BOX_FEN
    assert_balanced(sw)


def test_each_delivery_pays_the_provider_only_that_periods_share_and_the_last_completes(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _subscribe(sw, listing, "month")
    payable = ledger.provider_payable(sw.providers["farm"].id)
    _deliver(sw, txn, 1)
    assert txn.captured_fen == BOX_FEN
    assert -ledger.balance(sw.session, payable) == BOX_FEN - 883  # 10 % commission, half to even
    _deliver(sw, txn, 3)
    sw.session.refresh(txn)
    assert txn.state == "completed" and txn.captured_fen == txn.price_fen
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert (
        -ledger.balance(sw.session, payable) + -ledger.balance(sw.session, "Income:Commission")
        == txn.price_fen
    )
    assert_balanced(sw)


def test_a_mid_plan_cancel_refunds_the_undelivered_boxes_pro_rata_to_the_fen(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _subscribe(sw, listing, "half_year")
    price = 26 * BOX_FEN - 11_483  # 229,658 less 5 % (11,482.9 rounds to 11,483)
    assert txn.price_fen == price == 218_175
    _deliver(sw, txn, 3)
    clock.set_clock(lambda: MONDAY + timedelta(days=18))
    preview = boxes.cancel_preview(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    shares = boxes.split_evenly(price, 26)
    assert shares[:9] == [8_392] * 9 and shares[9:] == [8_391] * 17
    assert preview["delivered_fen"] == 3 * 8_392
    assert preview["refund_fen"] == price - 3 * 8_392
    assert preview["refund_fen"] + preview["delivered_fen"] == price
    boxes.cancel(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.commit()
    sw.session.refresh(txn)
    assert txn.state == "cancelled"
    assert held(sw) == START_FEN - 3 * 8_392
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert txn.captured_fen + preview["refund_fen"] == price
    states = sw.session.scalars(select(BoxDelivery.state).where(BoxDelivery.transaction_id == txn.id)).all()
    assert states.count("delivered") == 3 and states.count("cancelled") == 23
    assert_balanced(sw)


def test_pausing_skips_the_periods_in_the_pause_and_extends_the_end(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _subscribe(sw, listing, "month")
    _deliver(sw, txn, 1)
    clock.set_clock(lambda: MONDAY + timedelta(days=3))  # Thursday 5 November
    boxes.pause(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.commit()
    with pytest.raises(Conflict):
        _deliver(sw, txn, 1)
    sw.session.rollback()
    clock.set_clock(lambda: MONDAY + timedelta(days=18))  # Friday 20 November
    boxes.resume(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.commit()
    view = boxes.get_subscription(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    assert txn.state == "active"
    assert [d.due_on for d in view.deliveries] == [
        date(2026, 11, 3),
        date(2026, 11, 24),
        date(2026, 12, 1),
        date(2026, 12, 8),
    ]
    assert view.ends_on == date(2026, 12, 8)
    assert len(view.deliveries) == 4 and txn.price_fen == 4 * BOX_FEN
    assert_balanced(sw)


def test_pausing_a_cancelled_box_is_refused_with_nothing_posted(sw: ServicesWorld, listing: Listing) -> None:
    txn = _subscribe(sw, listing, "month")
    boxes.cancel(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.commit()
    before = entries(sw)
    with pytest.raises(Conflict, match="cannot pause"):
        boxes.pause(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.rollback()
    assert entries(sw) == before and held(sw) == START_FEN
    assert_balanced(sw)


def test_only_the_resident_may_pause_and_only_the_provider_may_deliver(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _subscribe(sw, listing, "month")
    with pytest.raises(NotFound):
        boxes.pause(sw.session, actor=sw.actor("res2"), transaction_id=txn.id)
    sw.session.rollback()
    delivery = sw.session.scalar(select(BoxDelivery).where(BoxDelivery.transaction_id == txn.id).limit(1))
    assert delivery is not None
    with pytest.raises(Forbidden):
        boxes.mark_delivered(sw.session, actor=sw.actor("res1"), delivery_id=delivery.id)
    sw.session.rollback()
    assert txn.captured_fen == 0
    assert_balanced(sw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": -2}, "quantity"),
        ({"method": "pay_at_service"}, "method"),
        ({"plan": "fortnight"}, "plan"),
    ],
)
def test_hostile_subscriptions_are_refused_with_nothing_posted(
    sw: ServicesWorld, listing: Listing, change: dict[str, Any], field: str
) -> None:
    before = entries(sw)
    plan = change.pop("plan", "month")
    with pytest.raises(Invalid) as caught:
        _subscribe(sw, listing, plan, **change)
    sw.session.rollback()
    assert caught.value.detail["field"] == field
    assert entries(sw) == before
    assert sw.session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert_balanced(sw)


def test_a_plan_the_listing_does_not_offer_is_refused(sw: ServicesWorld, listing: Listing) -> None:
    listing.settings = {"plans": {"month": PLANS["month"]}}
    sw.session.commit()
    with pytest.raises(Invalid) as caught:
        _subscribe(sw, listing, "year")
    sw.session.rollback()
    assert caught.value.detail["field"] == "plan"
    assert_balanced(sw)


def test_a_client_sent_price_is_ignored(sw: ServicesWorld, listing: Listing) -> None:
    txn = _subscribe(sw, listing, "month", options={"price_fen": 1, "discount_fen": 99_999})
    assert txn.price_fen == 4 * BOX_FEN
    assert held(sw) == START_FEN - 4 * BOX_FEN
    assert_balanced(sw)
