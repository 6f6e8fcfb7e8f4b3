"""Bookings as FHIR R4 Appointments keep R4's invariants: start and end together (app-2), and both
present unless the appointment is proposed, cancelled or on a waitlist (app-3) — goods from stock
included; every participant has a status."""

from __future__ import annotations

from datetime import timedelta

from services.sworld import MONDAY, ServicesWorld
from zhishe.services import fhir, transactions


def _check_r4(resource: dict) -> None:
    assert resource["resourceType"] == "Appointment" and isinstance(resource["id"], str)
    assert ("start" in resource) == ("end" in resource)
    if resource["status"] not in ("proposed", "cancelled", "waitlist"):
        assert "start" in resource
    assert all(p.get("status") for p in resource["participant"])


def test_a_slot_booking_has_the_slot_as_its_time(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    slot = sw.slot(listing, MONDAY + timedelta(days=1))
    txn = transactions.book(
        sw.session, actor=sw.actor("res1"), listing_id=listing.id, slot_id=slot.id, quantity=2
    )
    resource = fhir.appointment(txn)
    _check_r4(resource)
    assert resource["status"] == "pending" and resource["minutesDuration"] == 120


def test_goods_from_stock_still_carry_a_start_and_an_end(sw: ServicesWorld) -> None:
    listing = sw.listing(
        sw.providers["farm"],
        "fresh_food",
        title_zh="有机蔬菜",
        price_rules={"unit": "box", "unit_fen": 3900, "min_units": 1, "surcharges": []},
        availability="stock",
    )
    batch = sw.batch(listing, 10)
    txn = transactions.book(
        sw.session, actor=sw.actor("res1"), listing_id=listing.id, batch_id=batch.id, quantity=1
    )
    resource = fhir.appointment(txn)
    _check_r4(resource)
    assert resource["start"] == resource["end"] and "minutesDuration" not in resource
