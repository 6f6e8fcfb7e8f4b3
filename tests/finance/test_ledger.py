"""The ledger is append-only (database triggers refuse UPDATE and DELETE of entries and postings),
corrections are reversing entries with a reason, and the whole ledger sums to zero."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.moneykit import assert_zero_sum, entries
from services.sworld import ServicesWorld
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


@pytest.fixture()
def append_only(sw: ServicesWorld) -> Iterator[None]:
    """The ledger as migrated: the append-only triggers of migration 0008 are in place."""
    yield
    sw.session.rollback()


def _entry(sw: ServicesWorld) -> int:
    entry = ledger.post(
        sw.session,
        kind="top_up",
        stream="wallet",
        lines=[("Assets:Bank", 500), (ledger.wallet(sw.users["res1"].id), -500)],
    )
    sw.session.commit()
    return entry.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE finance_postings SET amount_fen = amount_fen + 1",
        "DELETE FROM finance_postings",
        "UPDATE finance_entries SET memo = 'changed'",
        "DELETE FROM finance_entries",
    ],
)
def test_entries_and_postings_cannot_be_changed_or_deleted(
    sw: ServicesWorld, append_only: None, statement: str
) -> None:
    _entry(sw)
    with pytest.raises(DBAPIError, match="never changed or deleted"):
        sw.session.execute(text(statement))
    sw.session.rollback()
    assert entries(sw.session) == 1


def test_posting_still_works_under_the_triggers(sw: ServicesWorld, append_only: None) -> None:
    entry_id = _entry(sw)
    ledger.reverse_entry(
        sw.session, actor=sw.actor("op-admin"), entry_id=entry_id, reason="typed the wrong amount"
    )
    sw.session.commit()
    assert ledger.balance(sw.session, "Assets:Bank") == 0


def test_a_correction_is_a_reversing_entry_with_a_reason(sw: ServicesWorld) -> None:
    s = sw.session
    entry_id = _entry(sw)
    with pytest.raises(Invalid) as raised:
        ledger.reverse_entry(s, actor=sw.actor("op-admin"), entry_id=entry_id, reason=" ")
    assert raised.value.detail["field"] == "reason"
    with pytest.raises(Forbidden):
        ledger.reverse_entry(s, actor=sw.actor("op-analyst"), entry_id=entry_id, reason="no")
    reversal = ledger.reverse_entry(
        s, actor=sw.actor("op-admin"), entry_id=entry_id, reason="duplicate top-up"
    )
    s.commit()
    assert reversal.reverses_id == entry_id and "duplicate top-up" in reversal.memo
    legs = ledger.postings_of(s, [entry_id, reversal.id])
    assert sorted(a for _, a, _ in legs[reversal.id]) == sorted(-a for _, a, _ in legs[entry_id])
    with pytest.raises(Conflict):
        ledger.reverse_entry(s, actor=sw.actor("op-admin"), entry_id=entry_id, reason="again")


def test_trial_balance_is_zero_per_currency(sw: ServicesWorld) -> None:
    _entry(sw)
    balance = ledger.trial_balance(sw.session, actor=sw.actor("op-analyst"))
    assert balance == {"CNY": {"debits_fen": 500, "credits_fen": -500, "total_fen": 0}}


def test_entries_list_by_keyset_pages_and_filters(sw: ServicesWorld) -> None:
    for _ in range(3):
        _entry(sw)
    actor = sw.actor("op-analyst")
    first = ledger.list_entries(sw.session, actor=actor, limit=2)
    assert len(first.items) == 2 and first.next
    second = ledger.list_entries(sw.session, actor=actor, limit=2, after=first.next)
    assert [e.id for e in second.items] == [1]
    assert len(ledger.list_entries(sw.session, actor=actor, account_name="Assets:Bank").items) == 3
    assert ledger.list_entries(sw.session, actor=actor, kind="capture").items == []
    with pytest.raises(Forbidden):
        ledger.list_entries(sw.session, actor=sw.actor("res1"))
