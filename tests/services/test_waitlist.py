"""The waitlist of a full slot: joining, and the backfill of a freed place (members first)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services.orders_kit import act, book, cleaning, fund, slot_in
from services.sworld import FAR_5KM, MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Invalid
from zhishe.core.notifications.models import Notification
from zhishe.finance.models import Membership, MembershipPlan
from zhishe.services import engine, transactions
from zhishe.services.models import ResidentProfile, Transaction, WaitlistEntry


def _full(sw: ServicesWorld) -> tuple[Transaction, int]:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    fund(sw, "res1")
    txn = book(sw, "res1", listing, slot)
    return txn, slot.id


def _join(sw: ServicesWorld, who: str, slot_id: int) -> WaitlistEntry:
    entry = transactions.join_waitlist(sw.session, actor=sw.actor(who), slot_id=slot_id, quantity=2)
    sw.session.commit()
    return entry


def test_only_a_full_slot_takes_a_waitlist(sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    with pytest.raises(Conflict, match="still has free places"):
        transactions.join_waitlist(sw.session, actor=sw.actor("res2"), slot_id=slot.id)


def test_joining_twice_keeps_one_place_in_the_queue(sw: ServicesWorld) -> None:
    _, slot_id = _full(sw)
    first = _join(sw, "res2", slot_id)
    again = _join(sw, "res2", slot_id)
    assert first.id == again.id and again.state == "waiting"


def test_a_freed_place_books_the_first_waiting_resident_and_tells_them(sw: ServicesWorld) -> None:
    txn, slot_id = _full(sw)
    _join(sw, "res2", slot_id)
    clock.set_clock(lambda: MONDAY + timedelta(minutes=1))
    _join(sw, "res3", slot_id)
    act(sw, "res1", txn, "cancel")
    entry = sw.session.scalar(select(WaitlistEntry).where(WaitlistEntry.user_id == sw.users["res2"].id))
    assert entry is not None and entry.state == "booked" and entry.transaction_id is not None
    backfilled = sw.session.get(Transaction, entry.transaction_id)
    assert backfilled is not None
    assert backfilled.resident_user_id == sw.users["res2"].id and backfilled.state == "pending_payment"
    assert backfilled.price_fen == 10_000 and backfilled.slot_id == slot_id
    note = sw.session.scalar(
        select(Notification).where(
            Notification.user_id == sw.users["res2"].id, Notification.kind == "services.waitlist"
        )
    )
    assert note is not None
    waiting = sw.session.scalar(select(WaitlistEntry).where(WaitlistEntry.user_id == sw.users["res3"].id))
    assert waiting is not None and waiting.state == "waiting"


def test_an_expired_payment_backfills_the_next_in_line(sw: ServicesWorld) -> None:
    _, slot_id = _full(sw)
    _join(sw, "res2", slot_id)
    assert engine.run_timers(sw.session, MONDAY + timedelta(minutes=15)) >= 1
    entry = sw.session.scalar(select(WaitlistEntry).where(WaitlistEntry.user_id == sw.users["res2"].id))
    assert entry is not None and entry.state == "booked"


def test_members_are_served_first(sw: ServicesWorld) -> None:
    txn, slot_id = _full(sw)
    _join(sw, "res2", slot_id)
    clock.set_clock(lambda: MONDAY + timedelta(minutes=1))
    _join(sw, "res3", slot_id)
    plan = MembershipPlan(
        code="gold", name_zh="金卡", annual_fee_fen=19_900, discount_bps=0, priority_hours=24
    )
    sw.session.add(plan)
    sw.session.flush()
    sw.session.add(
        Membership(
            plan_id=plan.id,
            user_id=sw.users["res3"].id,
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            fee_fen=19_900,
            created_at=MONDAY,
        )
    )
    sw.session.commit()
    act(sw, "res1", txn, "cancel")
    states = {
        e.user_id: e.state
        for e in sw.session.scalars(select(WaitlistEntry).where(WaitlistEntry.slot_id == slot_id))
    }
    assert states == {sw.users["res3"].id: "booked", sw.users["res2"].id: "waiting"}


def test_joining_from_outside_the_service_radius_is_refused(sw: ServicesWorld) -> None:
    _, slot_id = _full(sw)
    with pytest.raises(Invalid, match="outside the provider's service radius"):
        _join(sw, "res-far", slot_id)


def test_a_waiting_resident_who_can_no_longer_be_served_is_skipped(sw: ServicesWorld) -> None:
    txn, slot_id = _full(sw)
    _join(sw, "res2", slot_id)
    clock.set_clock(lambda: MONDAY + timedelta(minutes=1))
    _join(sw, "res3", slot_id)
    moved = sw.session.get(ResidentProfile, sw.users["res2"].id)
    assert moved is not None
    moved.lat, moved.lon = FAR_5KM  # moved away meanwhile
    sw.session.commit()
    act(sw, "res1", txn, "cancel")
    states = {
        e.user_id: e.state
        for e in sw.session.scalars(select(WaitlistEntry).where(WaitlistEntry.slot_id == slot_id))
    }
    assert states == {sw.users["res2"].id: "waiting", sw.users["res3"].id: "booked"}
