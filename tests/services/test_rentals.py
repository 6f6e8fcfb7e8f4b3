"""Neighbour rentals: booking holds the rent and the deposit; the owner is paid the rent at the
handover; a clean return gives the deposit back in full; after a damage dispute the operator keeps
part of it for the owner and the renter gets the rest; settling more than the deposit is refused
with nothing posted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from services.specialkit import assert_balanced, entries, fund, held, neighbour
from services.sworld import ServicesWorld
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger
from zhishe.services import rentals
from zhishe.services.models import Dispute, Listing, Provider, Transaction
from zhishe.services.payments import DEPOSITS

START_FEN = 300_000
DAY_FEN = 6_000
DEPOSIT_FEN = 100_000
#: Three days' rent and the rental category's 5 % commission on it.
RENT_FEN = 3 * DAY_FEN
COMMISSION_FEN = 900


@pytest.fixture()
def listing(sw: ServicesWorld, world: Any) -> Listing:
    """res5's neighbour Wang rents out a parking space (as a one-person provider organisation) at
    ¥60 a day against a ¥1,000 deposit; res1 holds ¥3,000."""
    owner = neighbour(sw, world)
    fund(sw, ("res1",), START_FEN)
    return sw.listing(
        owner,
        "rental",
        "neighbour_rental",
        title_zh="地下车位B-12出租",
        title_en="Parking space B-12",
        price_rules={"unit": "day", "unit_fen": DAY_FEN, "min_units": 1, "surcharges": []},
        settings={"deposit_fen": DEPOSIT_FEN},
        availability="none",
    )


def _rent(sw: ServicesWorld, listing: Listing, **extra: Any) -> Transaction:
    params: dict[str, Any] = {"quantity": 3}
    params.update(extra)
    txn = rentals.rent(sw.session, actor=sw.actor("res1"), listing_id=listing.id, **params)
    sw.session.commit()
    return txn


def _owner(sw: ServicesWorld) -> int:
    provider: Provider = sw.providers["wang"]
    return -ledger.balance(sw.session, ledger.provider_payable(provider.id))


def _handed_over(sw: ServicesWorld, listing: Listing) -> Transaction:
    txn = _rent(sw, listing)
    rentals.handover(sw.session, actor=sw.actor("wang"), transaction_id=txn.id)
    sw.session.commit()
    return txn


def test_renting_holds_the_rent_in_escrow_and_the_deposit_apart(sw: ServicesWorld, listing: Listing) -> None:
    txn = _rent(sw, listing)
    assert txn.state == "booked" and txn.price_fen == RENT_FEN and txn.deposit_fen == DEPOSIT_FEN
    assert held(sw) == START_FEN - RENT_FEN - DEPOSIT_FEN
    assert ledger.balance(sw.session, ledger.escrow_of()) == -RENT_FEN
    assert ledger.balance(sw.session, DEPOSITS) == -DEPOSIT_FEN
    assert_balanced(sw)


def test_a_clean_return_releases_the_deposit_in_full(sw: ServicesWorld, listing: Listing) -> None:
    txn = _handed_over(sw, listing)
    assert txn.state == "in_use" and _owner(sw) == RENT_FEN - COMMISSION_FEN
    rentals.return_item(sw.session, actor=sw.actor("wang"), transaction_id=txn.id)
    sw.session.commit()
    assert txn.state == "returned" and txn.deposit_fen == 0
    assert held(sw) == START_FEN - RENT_FEN
    assert ledger.balance(sw.session, DEPOSITS) == 0 and ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert _owner(sw) == RENT_FEN - COMMISSION_FEN
    assert_balanced(sw)


def test_a_dispute_releases_the_deposit_in_part(sw: ServicesWorld, listing: Listing) -> None:
    txn = _handed_over(sw, listing)
    found = rentals.dispute(
        sw.session, actor=sw.actor("wang"), transaction_id=txn.id, reason="车位地锁被撞坏", claim_fen=40_000
    )
    sw.session.commit()
    assert txn.state == "disputed" and found.claim_fen == 40_000 and found.state == "open"
    keep = 30_000
    rentals.settle(sw.session, actor=sw.actor("op-dispatcher"), transaction_id=txn.id, keep_fen=keep)
    sw.session.commit()
    assert txn.state == "settled"
    assert held(sw) == START_FEN - RENT_FEN - keep  # the renter got deposit − keep back
    assert _owner(sw) == RENT_FEN - COMMISSION_FEN + keep  # the owner got keep
    assert ledger.balance(sw.session, DEPOSITS) == 0
    sw.session.refresh(found)
    assert found.state == "resolved" and found.awarded_fen == 0
    assert_balanced(sw)


def test_settling_more_than_the_deposit_is_refused_and_nothing_is_posted(
    sw: ServicesWorld, listing: Listing
) -> None:
    txn = _handed_over(sw, listing)
    rentals.dispute(
        sw.session, actor=sw.actor("wang"), transaction_id=txn.id, reason="划痕", claim_fen=10_000
    )
    sw.session.commit()
    before = entries(sw)
    for keep in (DEPOSIT_FEN + 1, -5, "100"):
        with pytest.raises(Invalid) as caught:
            rentals.settle(sw.session, actor=sw.actor("op-dispatcher"), transaction_id=txn.id, keep_fen=keep)
        sw.session.rollback()
        assert caught.value.detail["field"] == "keep_fen"
    sw.session.refresh(txn)
    assert entries(sw) == before and txn.state == "disputed" and txn.deposit_fen == DEPOSIT_FEN
    assert ledger.balance(sw.session, DEPOSITS) == -DEPOSIT_FEN
    assert_balanced(sw)


def test_only_the_operator_settles_and_only_the_owner_hands_over(sw: ServicesWorld, listing: Listing) -> None:
    txn = _rent(sw, listing)
    with pytest.raises(Forbidden):
        rentals.handover(sw.session, actor=sw.actor("res1"), transaction_id=txn.id)
    sw.session.rollback()
    rentals.handover(sw.session, actor=sw.actor("wang"), transaction_id=txn.id)
    rentals.dispute(sw.session, actor=sw.actor("wang"), transaction_id=txn.id, reason="damage", claim_fen=1)
    sw.session.commit()
    with pytest.raises(Forbidden):
        rentals.settle(sw.session, actor=sw.actor("wang"), transaction_id=txn.id, keep_fen=1)
    sw.session.rollback()
    assert_balanced(sw)


def test_a_claim_beyond_the_deposit_is_refused(sw: ServicesWorld, listing: Listing) -> None:
    txn = _handed_over(sw, listing)
    with pytest.raises(Invalid) as caught:
        rentals.dispute(
            sw.session, actor=sw.actor("wang"), transaction_id=txn.id, reason="x", claim_fen=DEPOSIT_FEN + 1
        )
    sw.session.rollback()
    assert caught.value.detail["field"] == "claim_fen"
    assert sw.session.scalar(select(func.count()).select_from(Dispute)) == 0
    assert_balanced(sw)


def test_cancelling_before_the_handover_gives_everything_back(sw: ServicesWorld, listing: Listing) -> None:
    from zhishe.services import transactions

    txn = _rent(sw, listing)
    transactions.act(sw.session, actor=sw.actor("res1"), transaction_id=txn.id, transition="cancel")
    sw.session.commit()
    assert txn.state == "cancelled" and held(sw) == START_FEN
    assert ledger.balance(sw.session, DEPOSITS) == 0 and ledger.balance(sw.session, ledger.escrow_of()) == 0
    assert_balanced(sw)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": -1}, "quantity"),
        ({"method": "pay_at_service"}, "method"),
        ({"method": "gateway"}, "method"),
    ],
)
def test_hostile_rentals_are_refused_with_nothing_posted(
    sw: ServicesWorld, listing: Listing, change: dict[str, Any], field: str
) -> None:
    before = entries(sw)
    with pytest.raises(Invalid) as caught:
        _rent(sw, listing, **change)
    sw.session.rollback()
    assert caught.value.detail["field"] == field
    assert entries(sw) == before and sw.session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert_balanced(sw)


def test_a_deposit_the_wallet_cannot_cover_is_refused_with_nothing_posted(
    sw: ServicesWorld, listing: Listing
) -> None:
    listing.settings = {"deposit_fen": START_FEN}
    sw.session.commit()
    before = entries(sw)
    with pytest.raises(Conflict, match="not enough balance"):
        _rent(sw, listing)
    sw.session.rollback()
    assert entries(sw) == before and held(sw) == START_FEN
    assert_balanced(sw)


def test_a_client_sent_price_or_deposit_is_ignored(sw: ServicesWorld, listing: Listing) -> None:
    txn = _rent(sw, listing, options={"price_fen": 1, "deposit_fen": 1, "fee_fen": 0})
    assert txn.price_fen == RENT_FEN and txn.deposit_fen == DEPOSIT_FEN
    assert_balanced(sw)


def test_a_bad_deposit_setting_is_refused_naming_it(sw: ServicesWorld, listing: Listing) -> None:
    listing.settings = {"deposit_fen": "lots"}
    sw.session.commit()
    with pytest.raises(Invalid) as caught:
        _rent(sw, listing)
    sw.session.rollback()
    assert caught.value.detail["field"] == "settings.deposit_fen"
