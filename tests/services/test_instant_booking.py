"""Instant booking end to end: priced on the server, paid into escrow, delivered and captured, and the
hostile cases refused with nothing written."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from services.orders_kit import act, balanced, book, cleaning, entries, fund, paid, slot_in, wallet_of
from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.finance import ledger
from zhishe.services import transactions
from zhishe.services.models import Licence, Slot, Transaction


def _count(sw: ServicesWorld) -> int:
    return int(sw.session.scalar(select(func.count(Transaction.id))) or 0)


def test_a_paid_booking_holds_the_price_in_escrow_and_delivery_pays_the_provider(sw: ServicesWorld) -> None:
    txn, _ = paid(sw)
    assert txn.state == "booked" and txn.payment_method == "wallet"
    assert txn.price_fen == 10_000 and txn.distance_m is not None and 900 < txn.distance_m < 1100
    assert wallet_of(sw, "res1") == 90_000
    assert ledger.balance(sw.session, ledger.escrow_of()) == -10_000
    assert txn.timer_at is None  # nothing expires once paid
    done = act(sw, "clean-staff", txn, "deliver")
    assert done.state == "delivered" and done.captured_fen == 10_000
    assert done.timer_transition == "close_reviews"
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    commission = 1_500  # housekeeping's 15 %
    assert ledger.balance(sw.session, ledger.provider_payable(txn.provider_id)) == -(10_000 - commission)
    assert balanced(sw)


def test_the_price_comes_from_the_listing_and_a_client_price_is_ignored(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    txn = book(sw, "res1", listing, slot, options={"price_fen": 1, "fee_fen": 0, "commission_bps": 0})
    assert txn.price_fen == 10_000
    assert "price_fen" not in txn.options and "commission_bps" not in txn.options
    assert txn.commission_fen == 1_500


def test_a_weekend_slot_carries_the_weekend_surcharge(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    saturday = sw.slot(listing, MONDAY + timedelta(days=5))
    txn = book(sw, "res1", listing, saturday)
    assert txn.price_fen == 12_000


@pytest.mark.parametrize("quantity", [-1, 0, 1.5, "two", True])
def test_a_bad_quantity_is_refused_by_name_and_nothing_is_written(
    sw: ServicesWorld, quantity: object
) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    with pytest.raises(Invalid) as caught:
        transactions.book(
            sw.session, actor=sw.actor("res1"), listing_id=listing.id, slot_id=slot.id, quantity=quantity
        )
    assert caught.value.detail["field"] == "quantity"
    sw.session.rollback()
    assert _count(sw) == 0 and sw.session.get(Slot, slot.id).booked == 0  # type: ignore[union-attr]


def test_booking_outside_the_service_radius_is_refused_and_nothing_is_written(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    with pytest.raises(Invalid, match="outside the provider's service radius"):
        transactions.book(
            sw.session, actor=sw.actor("res-far"), listing_id=listing.id, slot_id=slot.id, quantity=2
        )
    sw.session.rollback()
    assert _count(sw) == 0 and sw.session.get(Slot, slot.id).booked == 0  # type: ignore[union-attr]


def test_a_lapsed_licence_stops_booking(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    for licence in sw.session.scalars(select(Licence).where(Licence.provider_id == listing.provider_id)):
        licence.expires_on = date(2026, 10, 1)
    sw.session.commit()
    with pytest.raises(Conflict, match="licence"):
        transactions.book(
            sw.session, actor=sw.actor("res1"), listing_id=listing.id, slot_id=slot.id, quantity=2
        )
    sw.session.rollback()
    assert _count(sw) == 0


def test_a_full_slot_answers_fully_booked_with_its_waitlist(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    book(sw, "res1", listing, slot)
    with pytest.raises(Conflict, match="fully booked") as caught:
        book(sw, "res2", listing, slot)
    assert caught.value.detail["waitlist"] == f"/api/v1/services/slots/{slot.id}/waitlist"
    sw.session.rollback()
    assert _count(sw) == 1


def test_a_slot_of_another_listing_or_none_at_all_is_refused(sw: ServicesWorld) -> None:
    listing, other = cleaning(sw), cleaning(sw)
    slot = slot_in(sw, other)
    with pytest.raises(Invalid) as caught:
        book(sw, "res1", listing, slot)
    assert caught.value.detail["field"] == "slot_id"
    sw.session.rollback()
    with pytest.raises(Invalid, match="choose a slot"):
        book(sw, "res1", listing)


def test_paying_without_enough_in_the_wallet_posts_nothing(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    fund(sw, "res1", 5_000)
    txn = book(sw, "res1", listing, slot)
    before = entries(sw)
    with pytest.raises(Conflict, match="not enough balance"):
        transactions.pay(sw.session, actor=sw.actor("res1"), transaction_id=txn.id, method="wallet")
    sw.session.rollback()
    assert entries(sw) == before and sw.session.get(Transaction, txn.id).state == "pending_payment"  # type: ignore[union-attr]
    assert wallet_of(sw, "res1") == 5_000


def test_someone_elses_order_does_not_exist_for_them(sw: ServicesWorld) -> None:
    txn, _ = paid(sw)
    for stranger in ("res2", "fix-admin"):
        with pytest.raises(NotFound):
            transactions.act(sw.session, actor=sw.actor(stranger), transaction_id=txn.id, transition="cancel")
    with pytest.raises(NotFound):
        transactions.pay(sw.session, actor=sw.actor("res2"), transaction_id=txn.id, method="wallet")


def test_stock_goods_take_from_a_batch_and_give_back_on_expiry(sw: ServicesWorld) -> None:
    farm = sw.providers["farm"]
    listing = sw.listing(
        farm,
        "fresh_food",
        availability="stock",
        price_rules={"unit": "box", "unit_fen": 8800, "min_units": 1, "surcharges": []},
    )
    batch = sw.batch(listing, 3)
    txn = transactions.book(sw.session, actor=sw.actor("res1"), listing_id=listing.id, quantity=2)
    sw.session.commit()
    assert txn.batch_id == batch.id and txn.price_fen == 17_600
    sw.session.refresh(batch)
    assert batch.remaining == 1
    with pytest.raises(Conflict, match="sold out"):
        transactions.book(sw.session, actor=sw.actor("res2"), listing_id=listing.id, quantity=2)
    sw.session.rollback()
    from zhishe.services import engine

    assert engine.run_timers(sw.session, MONDAY + timedelta(minutes=16)) == 1
    sw.session.refresh(batch)
    assert batch.remaining == 3
