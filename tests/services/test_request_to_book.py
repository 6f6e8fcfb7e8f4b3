"""Request to book: the provider accepts or declines, a silent provider declines on its own after the
listing's accept_hours, and answers count in the provider's response time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.orders_kit import act, balanced, book, cleaning, fund, slot_in, wallet_of
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Forbidden
from zhishe.services import engine, transactions
from zhishe.services.models import Provider, Slot


def _requested(sw: ServicesWorld, **settings: object) -> tuple[object, Slot]:
    listing = cleaning(sw, "request_to_book", settings=dict(settings))
    slot = slot_in(sw, listing)
    return book(sw, "res1", listing, slot), slot


def test_a_request_waits_for_the_provider_and_holds_the_place(sw: ServicesWorld) -> None:
    txn, slot = _requested(sw)
    assert txn.state == "requested"  # type: ignore[attr-defined]
    assert txn.timer_transition == "auto_decline"  # type: ignore[attr-defined]
    assert txn.timer_at == MONDAY + timedelta(hours=24)  # type: ignore[attr-defined]
    sw.session.refresh(slot)
    assert slot.booked == 1


def test_accepted_then_paid_then_delivered(sw: ServicesWorld) -> None:
    txn, _ = _requested(sw)
    fund(sw, "res1")
    clock.set_clock(lambda: MONDAY + timedelta(minutes=30))
    accepted = act(sw, "clean-staff", txn, "accept")  # type: ignore[arg-type]
    assert accepted.state == "accepted" and accepted.timer_transition == "expire"
    transactions.pay(sw.session, actor=sw.actor("res1"), transaction_id=accepted.id, method="wallet")
    sw.session.commit()
    assert accepted.state == "booked" and wallet_of(sw, "res1") == 90_000
    delivered = act(sw, "clean-staff", accepted, "deliver")
    assert delivered.state == "delivered" and delivered.captured_fen == 10_000
    assert balanced(sw)


def test_a_resident_cannot_accept_their_own_request(sw: ServicesWorld) -> None:
    txn, _ = _requested(sw)
    with pytest.raises(Forbidden):
        act(sw, "res1", txn, "accept")  # type: ignore[arg-type]


def test_declining_frees_the_place(sw: ServicesWorld) -> None:
    txn, slot = _requested(sw)
    declined = act(sw, "clean-admin", txn, "decline", reason="fully booked that day")  # type: ignore[arg-type]
    assert declined.state == "declined"
    sw.session.refresh(slot)
    assert slot.booked == 0
    events = transactions.events_of(sw.session, declined)
    assert events[-1].detail["reason"] == "fully booked that day"


def test_a_silent_provider_declines_on_its_own_after_accept_hours(sw: ServicesWorld) -> None:
    txn, slot = _requested(sw, accept_hours=2)
    assert txn.timer_at == MONDAY + timedelta(hours=2)  # type: ignore[attr-defined]
    assert engine.run_timers(sw.session, MONDAY + timedelta(hours=1)) == 0
    assert engine.run_timers(sw.session, MONDAY + timedelta(hours=2)) == 1
    sw.session.refresh(txn)
    sw.session.refresh(slot)
    assert txn.state == "declined" and slot.booked == 0  # type: ignore[attr-defined]


def test_the_provider_response_time_is_the_median_of_first_answers(sw: ServicesWorld) -> None:
    first, _ = _requested(sw)
    second, _ = _requested(sw)
    third, _ = _requested(sw)
    for minutes, txn, transition in ((10, first, "accept"), (30, second, "decline"), (90, third, "accept")):
        clock.set_clock(lambda m=minutes: MONDAY + timedelta(minutes=m))
        act(sw, "clean-staff", txn, transition)  # type: ignore[arg-type]
    provider = sw.session.get(Provider, sw.providers["clean"].id)
    assert provider is not None
    sw.session.refresh(provider)
    assert provider.response_minutes == 30.0
