"""Shortcuts of the order tests: money in a resident's wallet, a listing with a slot, a paid booking,
and the ledger's invariants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from services.sworld import MONDAY, ServicesWorld
from zhishe.finance import ledger
from zhishe.finance.models import Entry
from zhishe.services import transactions, wallet
from zhishe.services.models import Listing, Slot, Transaction


def fund(sw: ServicesWorld, who: str, fen: int = 100_000) -> None:
    """Put ``fen`` into ``who``'s wallet at the service desk."""
    wallet.top_up(
        session=sw.session, actor=sw.actor("op-admin"), user_id=sw.users[who].id, amount_fen=fen, via="bank"
    )
    sw.session.commit()


def wallet_of(sw: ServicesWorld, who: str) -> int:
    """What ``who`` has in their wallet, in fen (the ledger keeps it as a credit)."""
    return -ledger.balance(sw.session, ledger.wallet(sw.users[who].id))


def entries(sw: ServicesWorld) -> int:
    """How many ledger entries there are."""
    return int(sw.session.scalar(select(func.count(Entry.id))) or 0)


def balanced(sw: ServicesWorld) -> bool:
    """Whether every currency's postings sum to zero."""
    return all(total == 0 for total in ledger.totals_by_currency(sw.session).values())


def cleaning(sw: ServicesWorld, process: str = "instant_booking", **extra: Any) -> Listing:
    """A housekeeping listing of the near provider (¥50 an hour, at least 2 hours)."""
    return sw.listing(sw.providers["clean"], "housekeeping", process, **extra)


def slot_in(sw: ServicesWorld, listing: Listing, hours: float = 72, *, capacity: int = 1) -> Slot:
    """A slot of ``listing`` starting ``hours`` after MONDAY."""
    return sw.slot(listing, MONDAY + timedelta(hours=hours), capacity=capacity)


def book(
    sw: ServicesWorld, who: str, listing: Listing, slot: Slot | None = None, **extra: Any
) -> Transaction:
    """``who`` books ``listing`` (two hours), committed."""
    txn = transactions.book(
        sw.session,
        actor=sw.actor(who),
        listing_id=listing.id,
        slot_id=slot.id if slot else None,
        quantity=2,
        **extra,
    )
    sw.session.commit()
    return txn


def paid(
    sw: ServicesWorld, who: str = "res1", *, hours: float = 72, method: str = "wallet"
) -> tuple[Transaction, Slot]:
    """A booking of a fresh cleaning slot by ``who``, paid with ``method`` (the wallet funded)."""
    listing = cleaning(sw)
    slot = slot_in(sw, listing, hours)
    if method == "wallet":
        fund(sw, who)
    txn = book(sw, who, listing, slot)
    transactions.pay(sw.session, actor=sw.actor(who), transaction_id=txn.id, method=method)
    sw.session.commit()
    return txn, slot


def act(sw: ServicesWorld, who: str, txn: Transaction, transition: str, **params: Any) -> Transaction:
    """``who`` takes ``transition`` on ``txn``, committed."""
    done = transactions.act(
        sw.session, actor=sw.actor(who), transaction_id=txn.id, transition=transition, params=params
    )
    sw.session.commit()
    return done
