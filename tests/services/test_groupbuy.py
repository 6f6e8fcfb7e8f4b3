"""Group buys (拼团): a group that forms charges every member in one database transaction; a group
that misses its deadline gives every member their money back in full, and the ledger shows it;
duplicate joins, paying at the service, bad quantities and client-sent prices are refused or
ignored with nothing posted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.specialkit import assert_balanced, fund, held
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Invalid
from zhishe.finance import ledger
from zhishe.finance.models import Entry
from zhishe.services import engine, groupbuy
from zhishe.services.models import GroupBuy, Listing, StockBatch, Transaction

START_FEN = 50_000
PRICE_FEN = 3_000
#: The group-buy category's commission is 800 bps: 240 fen of each 3,000 fen place.
COMMISSION_FEN = 240
UNIT = {"unit": "unit", "unit_fen": PRICE_FEN, "min_units": 1, "surcharges": []}


@pytest.fixture()
def listing(sw: ServicesWorld) -> Listing:
    """A farm's group buy of a box of oranges: 3 members within 24 hours; res1..res5 hold ¥500."""
    fund(sw, ("res1", "res2", "res3", "res4", "res5"), START_FEN)
    return sw.listing(
        sw.providers["farm"],
        "group_buy",
        "group_buy",
        title_zh="赣南脐橙拼团",
        title_en="Navel oranges group buy",
        price_rules=dict(UNIT),
        settings={"group_min": 3, "group_hours": 24},
        availability="none",
    )


def _join(sw: ServicesWorld, listing: Listing, name: str, **extra: Any) -> Transaction:
    params: dict[str, Any] = {"method": "wallet", "quantity": 1}
    params.update(extra)
    txn, _ = groupbuy.join(sw.session, actor=sw.actor(name), listing_id=listing.id, **params)
    sw.session.commit()
    return txn


def _entries(sw: ServicesWorld, kind: str | None = None) -> int:
    query = select(func.count()).select_from(Entry)
    if kind:
        query = query.where(Entry.kind == kind)
    return int(sw.session.scalar(query) or 0)


def test_members_wait_in_escrow_until_the_group_is_big_enough(sw: ServicesWorld, listing: Listing) -> None:
    first = _join(sw, listing, "res1")
    second = _join(sw, listing, "res2")
    assert first.state == second.state == "joined"
    assert first.group_id == second.group_id
    group = sw.session.get(GroupBuy, first.group_id)
    assert group is not None and group.members == 2 and group.state == "forming"
    assert group.deadline == MONDAY + timedelta(hours=24)
    assert ledger.balance(sw.session, ledger.escrow_of()) == -2 * PRICE_FEN
    assert held(sw, "res1") == START_FEN - PRICE_FEN
    assert first.timer_transition == "fail" and first.timer_at == group.deadline
    assert_balanced(sw)


def test_a_formed_group_charges_every_member(sw: ServicesWorld, listing: Listing) -> None:
    members = [_join(sw, listing, name) for name in ("res1", "res2", "res3")]
    sw.session.expire_all()
    assert [sw.session.get(Transaction, m.id).state for m in members] == ["formed"] * 3  # type: ignore[union-attr]
    group = sw.session.get(GroupBuy, members[0].group_id)
    assert group is not None and group.state == "formed" and group.members == 3
    assert all(sw.session.get(Transaction, m.id).captured_fen == PRICE_FEN for m in members)  # type: ignore[union-attr]
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    payable = ledger.provider_payable(sw.providers["farm"].id)
    assert -ledger.balance(sw.session, payable) == 3 * (PRICE_FEN - COMMISSION_FEN)
    assert -ledger.balance(sw.session, "Income:Commission") == 3 * COMMISSION_FEN
    assert _entries(sw, "capture") == 3
    for name in ("res1", "res2", "res3"):
        assert held(sw, name) == START_FEN - PRICE_FEN
    assert_balanced(sw)


def test_a_formed_group_keeps_taking_members_until_its_deadline_then_a_new_group_opens(
    sw: ServicesWorld, listing: Listing
) -> None:
    for name in ("res1", "res2", "res3"):
        _join(sw, listing, name)
    late = _join(sw, listing, "res4")
    assert late.state == "formed" and late.captured_fen == PRICE_FEN
    group = sw.session.get(GroupBuy, late.group_id)
    assert group is not None and group.members == 4
    clock.set_clock(lambda: MONDAY + timedelta(hours=25))
    after = _join(sw, listing, "res5")
    assert after.group_id != late.group_id and after.state == "joined"
    assert_balanced(sw)


def test_a_failed_group_refunds_everyone_in_full_and_the_ledger_shows_it(
    sw: ServicesWorld, listing: Listing
) -> None:
    first = _join(sw, listing, "res1")
    _join(sw, listing, "res2")
    assert held(sw, "res1") == START_FEN - PRICE_FEN
    outcome = groupbuy.sweep(sw.session, MONDAY + timedelta(hours=24, minutes=1))
    assert outcome == {"groups_failed": 1, "members_refunded": 2}
    sw.session.expire_all()
    group = sw.session.get(GroupBuy, first.group_id)
    assert group is not None and group.state == "failed"
    states = sw.session.scalars(select(Transaction.state).where(Transaction.group_id == group.id)).all()
    assert states == ["failed", "failed"]
    assert held(sw, "res1") == START_FEN and held(sw, "res2") == START_FEN
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert _entries(sw, "hold") == 2 and _entries(sw, "release") == 2 and _entries(sw, "capture") == 0
    assert groupbuy.sweep(sw.session, MONDAY + timedelta(hours=25)) == {
        "groups_failed": 0,
        "members_refunded": 0,
    }
    assert_balanced(sw)


def test_the_engine_timers_also_fail_a_group_at_its_deadline(sw: ServicesWorld, listing: Listing) -> None:
    _join(sw, listing, "res1")
    _join(sw, listing, "res2")
    assert engine.run_timers(sw.session, MONDAY + timedelta(hours=23)) == 0
    assert engine.run_timers(sw.session, MONDAY + timedelta(hours=24)) == 2
    assert held(sw, "res1") == START_FEN and held(sw, "res2") == START_FEN
    assert ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert_balanced(sw)


def test_joining_a_closed_group_after_its_deadline_opens_a_new_one(
    sw: ServicesWorld, listing: Listing
) -> None:
    first = _join(sw, listing, "res1")
    clock.set_clock(lambda: MONDAY + timedelta(hours=30))
    again = _join(sw, listing, "res1")
    assert again.group_id != first.group_id
    assert_balanced(sw)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"method": "pay_at_service"}, Invalid),
        ({"quantity": -1}, Invalid),
        ({"quantity": 0}, Invalid),
        ({"method": "bitcoin"}, Invalid),
    ],
)
def test_hostile_joins_are_refused_with_nothing_posted(
    sw: ServicesWorld, listing: Listing, change: dict[str, Any], error: type[Exception]
) -> None:
    before = _entries(sw)
    with pytest.raises(error) as caught:
        _join(sw, listing, "res1", **change)
    sw.session.rollback()
    assert caught.value.detail["field"] in {"method", "quantity"}  # type: ignore[attr-defined]
    assert _entries(sw) == before
    assert sw.session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert sw.session.scalar(select(func.count()).select_from(GroupBuy)) == 0
    assert_balanced(sw)


def test_joining_twice_is_refused_and_nothing_is_posted(sw: ServicesWorld, listing: Listing) -> None:
    _join(sw, listing, "res1")
    before = _entries(sw)
    with pytest.raises(Conflict, match="already joined"):
        _join(sw, listing, "res1")
    sw.session.rollback()
    assert _entries(sw) == before
    assert held(sw, "res1") == START_FEN - PRICE_FEN
    assert sw.session.scalar(select(GroupBuy.members)) == 1
    assert_balanced(sw)


def test_a_client_sent_price_is_ignored(sw: ServicesWorld, listing: Listing) -> None:
    txn = _join(sw, listing, "res1", options={"price_fen": 1, "commission_bps": 0, "total_fen": 1})
    assert txn.price_fen == PRICE_FEN
    assert "price_fen" not in txn.options
    assert held(sw, "res1") == START_FEN - PRICE_FEN
    assert_balanced(sw)


def test_a_wallet_too_small_is_refused_with_nothing_posted(sw: ServicesWorld, listing: Listing) -> None:
    before = _entries(sw)
    with pytest.raises(Conflict, match="not enough balance"):
        _join(sw, listing, "res1", quantity=20)
    sw.session.rollback()
    assert _entries(sw) == before
    assert sw.session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert_balanced(sw)


def test_stock_is_taken_on_joining_and_returned_when_the_group_fails(
    sw: ServicesWorld, listing: Listing
) -> None:
    listing.availability = "stock"
    sw.session.commit()
    batch = sw.batch(listing, 2)
    _join(sw, listing, "res1")
    _join(sw, listing, "res2")
    with pytest.raises(Conflict, match="sold out"):
        _join(sw, listing, "res3")
    sw.session.rollback()
    sw.session.refresh(batch)
    assert batch.remaining == 0
    groupbuy.sweep(sw.session, MONDAY + timedelta(days=2))
    sw.session.expire_all()
    assert sw.session.get(StockBatch, batch.id).remaining == 2  # type: ignore[union-attr]
    assert_balanced(sw)


def test_a_listing_without_group_settings_is_refused_naming_the_setting(
    sw: ServicesWorld, listing: Listing
) -> None:
    listing.settings = {"group_min": 1, "group_hours": 24}
    sw.session.commit()
    with pytest.raises(Invalid) as caught:
        _join(sw, listing, "res1")
    sw.session.rollback()
    assert caught.value.detail["field"] == "settings.group_min"
    assert_balanced(sw)


def test_the_group_view_shows_progress_and_the_viewers_place(sw: ServicesWorld, listing: Listing) -> None:
    txn = _join(sw, listing, "res1")
    clock.set_clock(lambda: MONDAY + timedelta(hours=2))
    view = groupbuy.get_group(sw.session, actor=sw.actor("res1"), group_id=txn.group_id or 0)
    data = view.as_json()
    assert data["members"] == 1 and data["min_size"] == 3 and data["missing"] == 2
    assert data["seconds_left"] == 22 * 3600 and data["open"] is True
    assert data["my_order_id"] == txn.id
    other = groupbuy.get_group(sw.session, actor=sw.actor("res2"), group_id=txn.group_id or 0)
    assert other.my_order is None
    assert_balanced(sw)
