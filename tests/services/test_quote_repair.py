"""Quote-based repair: the provider visits and quotes (the only price a person gives), the resident
accepts and pays into escrow, the work is done and paid out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.orders_kit import act, balanced, entries, fund, wallet_of
from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Forbidden, Invalid
from zhishe.finance import ledger
from zhishe.services import engine, transactions
from zhishe.services.models import Transaction

LINES = [{"label": "更换水龙头", "amount_fen": 8_000}, {"label": "上门费", "amount_fen": 2_000}]


def _requested(sw: ServicesWorld) -> Transaction:
    listing = sw.listing(
        sw.providers["fix"],
        "repair",
        "quote_repair",
        title_zh="水电维修",
        title_en="Plumbing",
        availability="none",
    )
    txn = transactions.book(sw.session, actor=sw.actor("res1"), listing_id=listing.id, note="厨房水龙头漏水")
    sw.session.commit()
    return txn


def test_a_repair_is_visited_quoted_accepted_worked_and_completed(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    assert txn.state == "requested" and txn.price_fen == 0
    visit = (MONDAY + timedelta(days=1)).isoformat()
    act(sw, "fix-admin", txn, "schedule_visit", visit_at=visit)
    assert txn.state == "visit_scheduled" and txn.options["visit_at"] == visit
    act(sw, "fix-admin", txn, "quote", lines=LINES)
    assert txn.state == "quoted" and txn.price_fen == 10_000 and txn.commission_fen == 1_200
    fund(sw, "res1")
    transactions.pay(sw.session, actor=sw.actor("res1"), transaction_id=txn.id, method="wallet")
    sw.session.commit()
    assert txn.state == "accepted" and wallet_of(sw, "res1") == 90_000
    act(sw, "fix-admin", txn, "start_work")
    done = act(sw, "fix-admin", txn, "complete")
    assert done.state == "completed" and done.captured_fen == 10_000
    assert ledger.balance(sw.session, ledger.provider_payable(txn.provider_id)) == -8_800
    assert balanced(sw)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ("¥100", "lines"),
        ([{"label": "x", "amount_fen": -1}], "lines[0].amount_fen"),
        ([{"label": "x", "amount_fen": 10.5}], "lines[0].amount_fen"),
        ([{"label": "", "amount_fen": 100}], "lines[0].label"),
        ([{"label": "x", "amount_fen": 10_000_001}], "lines"),
        ([{"label": "x", "amount_fen": 0}], "lines"),
    ],
)
def test_a_bad_quote_is_refused_by_name_and_changes_nothing(
    sw: ServicesWorld, lines: Any, field: str
) -> None:
    txn = _requested(sw)
    with pytest.raises(Invalid) as caught:
        act(sw, "fix-admin", txn, "quote", lines=lines)
    assert caught.value.detail["field"] == field
    sw.session.rollback()
    fresh = sw.session.get(Transaction, txn.id)
    assert fresh is not None and fresh.state == "requested" and fresh.price_fen == 0


def test_the_resident_cannot_set_the_price(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    with pytest.raises(Forbidden):
        act(sw, "res1", txn, "quote", lines=[{"label": "cheap", "amount_fen": 1}])


def test_a_visit_in_the_past_is_refused(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    with pytest.raises(Invalid) as caught:
        act(sw, "fix-admin", txn, "schedule_visit", visit_at=(MONDAY - timedelta(hours=1)).isoformat())
    assert caught.value.detail["field"] == "visit_at"


def test_the_resident_may_withdraw_a_quote_and_nothing_is_posted(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    act(sw, "fix-admin", txn, "quote", lines=LINES)
    before = entries(sw)
    act(sw, "res1", txn, "withdraw")
    assert txn.state == "withdrawn" and entries(sw) == before


def test_an_unanswered_quote_lapses_after_seven_days(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    act(sw, "fix-admin", txn, "quote", lines=LINES)
    assert engine.run_timers(sw.session, MONDAY + timedelta(days=7)) == 1
    sw.session.refresh(txn)
    assert txn.state == "withdrawn"


def test_cancelling_an_accepted_quote_returns_the_money(sw: ServicesWorld) -> None:
    txn = _requested(sw)
    act(sw, "fix-admin", txn, "quote", lines=LINES)
    fund(sw, "res1")
    transactions.pay(sw.session, actor=sw.actor("res1"), transaction_id=txn.id, method="wallet")
    sw.session.commit()
    act(sw, "fix-admin", txn, "cancel")
    assert txn.state == "cancelled" and wallet_of(sw, "res1") == 100_000
    assert balanced(sw)
