"""Property tests over the shipped processes: any sequence of actions by anybody and of timer advances
never reaches an undeclared state, never leaves a timer armed on a final state, never overbooks or
underbooks a slot, and never unbalances the ledger (every currency's postings sum to zero)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.orders_kit import balanced, fund
from services.specialkit import neighbour
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import ZhisheError
from zhishe.services import boxes, engine, groupbuy, rentals, reviews, transactions
from zhishe.services.models import Slot, Transaction

ADVANCES = (
    timedelta(minutes=1),
    timedelta(minutes=16),
    timedelta(hours=20),
    timedelta(hours=30),
    timedelta(days=8),
)
_BACKWARD = {"cancel", "withdraw", "decline", "no_show"}
METHODS = ("wallet", "wallet", "pay_at_service", "bitcoin")

#: A step: what kind (acting and paying more often than time passing), by whom, and a number that
#: picks the transition, the rating or the method.
step = st.tuples(
    st.sampled_from(("act", "act", "act", "act", "pay", "pay", "advance", "review", "review", "join")),
    st.sampled_from(("res1", "res1", "provider", "provider", "res2", "op-admin")),
    st.integers(min_value=0, max_value=40),
)


def _params(name: str, now: datetime) -> dict[str, Any]:
    return {
        "lines": [{"label": "人工", "amount_fen": 6_000}],
        "visit_at": (now + timedelta(days=1)).isoformat(),
        "reason": name,
        "method": "wallet",
    }


class _Run:
    """One transaction driven step by step."""

    def __init__(self, sw: ServicesWorld, process: str, world: Any) -> None:
        self.sw = sw
        self.now = MONDAY
        clock.set_clock(lambda: self.now)
        self.slot_id: int | None = None
        self.listing_id = 0
        fund(sw, "res1", 200_000)
        fund(sw, "res2", 200_000)
        session, res1 = sw.session, sw.actor("res1")
        box = {"unit": "box", "unit_fen": 3_900, "min_units": 1, "surcharges": []}
        if process == "quote_repair":
            self.provider = "fix-admin"
            listing = sw.listing(sw.providers["fix"], "repair", process, availability="none")
            self.txn = transactions.book(session, actor=res1, listing_id=listing.id, quantity=2)
        elif process == "group_buy":
            self.provider = "farm-admin"
            listing = sw.listing(
                sw.providers["farm"],
                "group_buy",
                process,
                price_rules=box,
                settings={"group_min": 2, "group_hours": 24},
                availability="stock",
            )
            sw.batch(listing, 50)
            self.txn, _ = groupbuy.join(session, actor=res1, listing_id=listing.id, method="wallet")
        elif process == "membership_box":
            self.provider = "farm-admin"
            listing = sw.listing(
                sw.providers["farm"],
                "fresh_food",
                process,
                price_rules=box,
                settings={"plans": {"month": {"periods": 4, "every_days": 7}}},
                availability="none",
            )
            self.txn, _ = boxes.subscribe(
                session, actor=res1, listing_id=listing.id, plan="month", method="wallet"
            )
        elif process == "neighbour_rental":
            self.provider = "wang"
            listing = sw.listing(
                sw.providers.get("wang") or neighbour(sw, world),
                "rental",
                process,
                price_rules={"unit": "day", "unit_fen": 2_000, "min_units": 1, "surcharges": []},
                settings={"deposit_fen": 50_000},
                availability="none",
                cancellation_policy={},
            )
            self.txn = rentals.rent(session, actor=res1, listing_id=listing.id, quantity=2, method="wallet")
        else:
            self.provider = "clean-staff"
            listing = sw.listing(sw.providers["clean"], "housekeeping", process)
            self.slot_id = sw.slot(listing, MONDAY + timedelta(hours=30)).id
            self.txn = transactions.book(
                session, actor=res1, listing_id=listing.id, slot_id=self.slot_id, quantity=2
            )
        sw.session.commit()
        self.listing_id = listing.id
        self.group = process == "group_buy"
        self.process = engine.get_process(process)
        self.names = sorted({t.name for t in self.process.transitions})

    def who(self, party: str) -> str:
        return self.provider if party == "provider" else party

    def do(self, kind: str, *args: Any) -> None:
        session = self.sw.session
        try:
            if kind == "advance":
                self.now = self.now + ADVANCES[args[1] % len(ADVANCES)]
                engine.run_timers(session, self.now)
                return
            actor = self.sw.actor(self.who(args[0]))
            if kind == "join":
                if self.group:  # a neighbour joins the same group (forming it at the minimum)
                    groupbuy.join(
                        session, actor=self.sw.actor("res2"), listing_id=self.listing_id, method="wallet"
                    )
            elif kind == "act":
                # mostly what the party may do now, sometimes anything at all
                offered = sorted(
                    (o.transition.name for o in engine.available(self.txn, actor, session=session)),
                    key=lambda n: n in _BACKWARD,
                )
                if args[1] < 20:
                    if not offered or offered[0] in _BACKWARD:
                        return  # no way forward for this party now
                    name = offered[0]
                else:
                    pool = offered if offered and args[1] < 32 else self.names
                    name = pool[args[1] % len(pool)]
                transactions.act(
                    session,
                    actor=actor,
                    transaction_id=self.txn.id,
                    transition=name,
                    params=_params(name, self.now),
                )
            elif kind == "pay":
                method = METHODS[args[1] % len(METHODS)]
                transactions.pay(session, actor=actor, transaction_id=self.txn.id, method=method)
            else:
                reviews.submit(session, actor=actor, transaction_id=self.txn.id, rating=args[1] % 7, text="")
            session.commit()
        except ZhisheError:
            session.rollback()

    def check(self) -> None:
        session = self.sw.session
        txn = session.get(Transaction, self.txn.id, populate_existing=True)
        assert txn is not None
        assert txn.state in self.process.states
        if txn.state in self.process.finals:
            assert txn.timer_at is None
        assert 0 <= txn.refunded_fen <= txn.captured_fen <= txn.price_fen
        if self.slot_id is not None:
            slot = session.get(Slot, self.slot_id, populate_existing=True)
            assert slot is not None and 0 <= slot.booked <= slot.capacity
        assert balanced(self.sw)


@pytest.mark.parametrize(
    "process",
    ["instant_booking", "request_to_book", "quote_repair", "group_buy", "membership_box", "neighbour_rental"],
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_random_steps_keep_the_process_and_the_ledger_sound(
    sw: ServicesWorld, world: Any, process: str, steps: list[tuple[Any, ...]]
) -> None:
    run = _Run(sw, process, world)
    for kind, *args in steps:
        run.do(kind, *args)
        run.check()
