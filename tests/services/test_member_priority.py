"""Priority booking for members: a slot opens to everyone 14 days before its start (or the listing's
``booking_window_days``), and to members of the annual membership their plan's priority hours
earlier; a slot not yet open is refused with the moment it opens, and nothing is taken."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Conflict
from zhishe.finance import memberships
from zhishe.services import transactions
from zhishe.services.models import Slot, Transaction


def _member(sw: ServicesWorld, username: str, priority_hours: int = 168) -> None:
    plan = memberships.create_plan(
        session=sw.session,
        actor=sw.actor("op-admin"),
        code="annual",
        name_zh="阳光会员",
        annual_fee_fen=9900,
        discount_bps=0,
        priority_hours=priority_hours,
    )
    memberships.buy(
        session=sw.session,
        actor=sw.actor("op-admin"),
        plan_id=plan.id,
        user_id=sw.users[username].id,
        method="desk",
    )
    sw.session.commit()


def _book(sw: ServicesWorld, username: str, slot: Slot) -> Transaction:
    txn = transactions.book(
        sw.session, actor=sw.actor(username), listing_id=slot.listing_id, slot_id=slot.id, quantity=2
    )
    sw.session.commit()
    return txn


def test_a_slot_beyond_the_window_is_refused_with_its_opening_time_and_nothing_is_taken(
    sw: ServicesWorld,
) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    slot = sw.slot(listing, MONDAY + timedelta(days=20))
    with pytest.raises(Conflict) as refused:
        _book(sw, "res2", slot)
    sw.session.rollback()
    assert datetime.fromisoformat(refused.value.detail["opens_at"]) == slot.starts_at - timedelta(days=14)
    assert "members" in str(refused.value.message)
    sw.session.refresh(slot)
    assert slot.booked == 0 and sw.session.query(Transaction).count() == 0


def test_members_book_their_priority_hours_earlier_than_everyone_else(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    _member(sw, "res1", priority_hours=168)
    early = sw.slot(listing, MONDAY + timedelta(days=20))
    too_early = sw.slot(listing, MONDAY + timedelta(days=22))
    assert _book(sw, "res1", early).state == "pending_payment"
    with pytest.raises(Conflict):
        _book(sw, "res1", too_early)
    sw.session.rollback()
    with pytest.raises(Conflict):
        _book(sw, "res2", sw.slot(listing, MONDAY + timedelta(days=15)))


def test_a_listing_may_open_its_slots_further_ahead(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping", settings={"booking_window_days": 30})
    assert _book(sw, "res2", sw.slot(listing, MONDAY + timedelta(days=20))).state == "pending_payment"
