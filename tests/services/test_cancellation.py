"""Cancellation and no-show follow the listing's policy: free until 24 h before, 50 % inside it,
100 % on a no-show; a provider's cancellation returns everything."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.orders_kit import act, balanced, entries, paid, wallet_of
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict
from zhishe.finance import ledger
from zhishe.services import engine, transactions
from zhishe.services.models import Listing


def test_cancelling_before_the_free_window_ends_costs_nothing(sw: ServicesWorld) -> None:
    txn, slot = paid(sw, hours=72)
    assert transactions.cancellation_fee(sw.session, txn) == 0
    done = act(sw, "res1", txn, "cancel")
    assert done.state == "cancelled" and done.captured_fen == 0
    assert wallet_of(sw, "res1") == 100_000
    sw.session.refresh(slot)
    assert slot.booked == 0
    assert balanced(sw)


def test_cancelling_inside_24_hours_keeps_half_for_the_provider(sw: ServicesWorld) -> None:
    txn, _ = paid(sw, hours=30)
    clock.set_clock(lambda: MONDAY + timedelta(hours=10))  # 20 hours before the slot
    assert transactions.cancellation_fee(sw.session, txn) == 5_000
    done = act(sw, "res1", txn, "cancel")
    assert done.state == "cancelled" and done.captured_fen == 5_000
    assert wallet_of(sw, "res1") == 95_000
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert ledger.balance(sw.session, ledger.provider_payable(txn.provider_id)) == -(5_000 - 750)
    assert balanced(sw)


def test_a_provider_cancelling_refunds_everything(sw: ServicesWorld) -> None:
    txn, _ = paid(sw, hours=30)
    clock.set_clock(lambda: MONDAY + timedelta(hours=10))
    done = act(sw, "clean-admin", txn, "cancel")
    assert done.state == "cancelled" and done.captured_fen == 0
    assert wallet_of(sw, "res1") == 100_000
    assert balanced(sw)


def test_a_no_show_cannot_be_reported_before_the_slot_starts(sw: ServicesWorld) -> None:
    txn, _ = paid(sw, hours=30)
    before = entries(sw)
    assert "no_show" not in {o.transition.name for o in engine.available(txn, sw.actor("clean-admin"))}
    with pytest.raises(Conflict, match="only after the slot has started"):
        act(sw, "clean-admin", txn, "no_show")
    sw.session.rollback()
    assert entries(sw) == before


def test_a_no_show_charges_the_whole_price(sw: ServicesWorld) -> None:
    txn, slot = paid(sw, hours=30)
    clock.set_clock(lambda: MONDAY + timedelta(hours=31))
    done = act(sw, "clean-admin", txn, "no_show")
    assert done.state == "no_show" and done.captured_fen == 10_000
    assert wallet_of(sw, "res1") == 90_000
    sw.session.refresh(slot)
    assert slot.booked == 1  # the place was used up
    assert balanced(sw)


def test_pay_at_service_bookings_have_no_fee_to_keep(sw: ServicesWorld) -> None:
    txn, _ = paid(sw, hours=30, method="pay_at_service")
    clock.set_clock(lambda: MONDAY + timedelta(hours=10))
    assert transactions.cancellation_fee(sw.session, txn) == 0
    done = act(sw, "res1", txn, "cancel")
    assert done.state == "cancelled" and done.captured_fen == 0
    assert balanced(sw)


def test_a_custom_policy_is_read_from_the_listing(sw: ServicesWorld) -> None:
    txn, _ = paid(sw, hours=30)
    listing = sw.session.get(Listing, txn.listing_id)
    assert listing is not None
    listing.cancellation_policy = {"free_until_hours": 48, "late_fee_bps": 2000, "no_show_fee_bps": 10000}
    sw.session.commit()
    assert transactions.cancellation_fee(sw.session, txn) == 2_000
