"""Fifty residents booking the last place of a slot at the same moment: exactly one booking; every
other resident gets a clear "fully booked" answer with the slot's waitlist. Real threads, each with
its own database session (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from services.orders_kit import cleaning, slot_in
from services.sworld import B1, ServicesWorld
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.errors import Conflict
from zhishe.services import transactions
from zhishe.services.models import ResidentProfile, Slot, Transaction

RESIDENTS = 50


def _residents(sw: ServicesWorld, world: Any) -> list[Actor]:
    actors = []
    for index in range(RESIDENTS):
        user = world.user(f"rush{index:02d}", sw.orgs["cc"], role="resident")
        sw.session.add(
            ResidentProfile(user_id=user.id, area_id=sw.areas["B1"].id, lat=B1[0], lon=B1[1], tags=[])
        )
        actors.append(actor_for_user(user))
    sw.session.commit()
    return actors


def test_fifty_residents_racing_for_the_last_place_make_exactly_one_booking(
    sw: ServicesWorld, world: Any
) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing, capacity=3)
    slot.booked = 2  # one place left
    sw.session.commit()
    actors = _residents(sw, world)
    maker = get_sessionmaker(get_settings().database_url)
    start = threading.Barrier(RESIDENTS)

    def attempt(actor: Actor) -> str:
        with maker() as session:
            start.wait()
            try:
                transactions.book(session, actor=actor, listing_id=listing.id, slot_id=slot.id, quantity=2)
                session.commit()
                return "booked"
            except Conflict as exc:
                session.rollback()
                assert exc.detail["waitlist"].endswith(f"/slots/{slot.id}/waitlist")
                return str(exc)

    with ThreadPoolExecutor(max_workers=RESIDENTS) as pool:
        answers = list(pool.map(attempt, actors))

    assert answers.count("booked") == 1
    assert all("fully booked" in a for a in answers if a != "booked")
    sw.session.expire_all()
    assert sw.session.get(Slot, slot.id).booked == 3  # type: ignore[union-attr]
    assert sw.session.scalar(select(func.count(Transaction.id)).where(Transaction.slot_id == slot.id)) == 1
