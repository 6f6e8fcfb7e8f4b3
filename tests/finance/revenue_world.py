"""Helpers of the revenue-stream tests, on top of the marketplace world ``sw``: funding a wallet,
a past transaction with its ledger entry, a tariff, and the zero-sum check of the ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.sworld import ServicesWorld
from zhishe.core import clock
from zhishe.energy.models import Tariff
from zhishe.finance import ledger
from zhishe.finance.models import Entry
from zhishe.services.models import Listing, Transaction


def fund(session: Session, user_id: int, fen: int) -> None:
    """Put ``fen`` in a resident's wallet (a bank top-up)."""
    ledger.post(
        session,
        kind="top_up",
        stream="wallet",
        lines=[("Assets:Bank", fen), (ledger.wallet(user_id), -fen)],
    )
    session.commit()


def entries(session: Session) -> int:
    """How many ledger entries there are."""
    return int(session.scalar(select(func.count(Entry.id))) or 0)


def balanced(session: Session) -> bool:
    """Whether every currency's postings sum to zero."""
    return all(total == 0 for total in ledger.totals_by_currency(session).values())


def transaction(
    sw: ServicesWorld,
    listing: Listing,
    resident: str,
    at: datetime,
    *,
    captured_fen: int = 0,
    commission_fen: int = 0,
    subsidy_fen: int = 0,
    state: str = "completed",
    distance_m: int | None = 1000,
    post: bool = True,
) -> Transaction:
    """A past transaction of ``listing`` for ``resident``, created at ``at``; with ``post``, its
    capture posted to the ledger at ``at`` (commission to Income:Commission, the rest to the
    provider)."""
    txn = Transaction(
        process=listing.process,
        listing_id=listing.id,
        provider_id=listing.provider_id,
        resident_user_id=sw.users[resident].id,
        state=state,
        state_entered_at=at,
        quantity=1,
        options={},
        quote={},
        price_fen=captured_fen,
        commission_fen=commission_fen,
        subsidy_fen=subsidy_fen,
        captured_fen=captured_fen,
        distance_m=distance_m,
        created_at=at,
        updated_at=at,
    )
    sw.session.add(txn)
    sw.session.flush()
    if post and captured_fen:
        ledger.post(
            sw.session,
            kind="capture",
            stream="marketplace",
            lines=[
                ("Assets:Bank", captured_fen),
                (ledger.provider_payable(listing.provider_id), -(captured_fen - commission_fen)),
                ("Income:Commission", -commission_fen),
            ],
            ref_type="transaction",
            ref_id=txn.id,
            provider_id=listing.provider_id,
            at=at,
        )
    sw.session.commit()
    return txn


def tariff(sw: ServicesWorld, *, flat: str = "0.50", valley: str = "0.30") -> Tariff:
    """An electricity tariff of the operator from 2026-01-01: valley 23:00-07:00, flat otherwise."""
    row = Tariff(
        org_id=sw.orgs["op"].id,
        family="residential",
        carrier="electricity",
        name="居民电价",
        valid_from=date(2026, 1, 1),
        valid_to=None,
        definition={
            "prices": {"flat": flat, "valley": valley},
            "schedules": [{"windows": [["flat", "07:00", "23:00"], ["valley", "23:00", "07:00"]]}],
            "tiers": [],
            "tier_mode": "surcharge",
            "cycle": "year",
        },
        created_at=clock.now(),
    )
    sw.session.add(row)
    sw.session.commit()
    return row


def days(n: int) -> timedelta:
    """``n`` days."""
    return timedelta(days=n)


def as_dict(row: Any) -> dict[str, Any]:
    """A row's columns as a dict."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}
