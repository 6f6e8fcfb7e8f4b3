"""Residents' prepaid wallets: ``Liabilities:Wallets:U<user>`` in the ledger, whose credit balance
is the money the operator holds for the resident.

Money comes in by a top-up: at the service desk (a bank transfer or cash, entered by the operator's
staff: Dr ``Assets:Bank`` or ``Assets:Cash``, Cr the wallet) or through the online gateway by the
resident (pending until the gateway's signed callback: Dr ``Assets:Gateway``, Cr the wallet). It
goes out when the resident pays (``payments.hold``), and comes back on release or refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.pagination import Page, decode_after, encode_after
from zhishe.finance import ledger
from zhishe.finance.models import Account, Entry, Posting
from zhishe.services.models import WalletTopUp

__all__ = ["VIAS", "HistoryLine", "balance", "confirm_top_up", "history", "top_up"]

#: How money reaches a wallet, and the account it comes from.
VIAS = {"bank": "Assets:Bank", "cash": "Assets:Cash", "gateway": "Assets:Gateway"}
#: The largest single top-up (¥50,000).
MAX_TOP_UP_FEN = 5_000_000


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One movement of a wallet: positive money in, negative money out."""

    posting_id: int
    entry_id: int
    at: datetime
    kind: str
    memo: str
    amount_fen: int


def _may_see(actor: Actor, user_id: int) -> None:
    if actor.user_id == user_id:
        authorize(actor, "services.browse")
        return
    if can(actor, "services.operate") or can(actor, "finance.read"):
        return
    raise Forbidden(T("you may see only your own wallet"), detail={"user": user_id})


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(T("there is no user {id}", id=user_id), detail={"field": "user_id"})
    return user


def balance(*, session: Session, actor: Actor, user_id: int) -> int:
    """The wallet balance of ``user_id`` in fen (audited)."""
    _may_see(actor, user_id)
    record(
        session=session,
        actor=actor,
        action="services.wallet.read",
        object_type="user",
        object_id=user_id,
    )
    return -ledger.balance(session, ledger.wallet(user_id))


def history(
    *, session: Session, actor: Actor, user_id: int, after: str | None = None, limit: int = 50
) -> Page[HistoryLine]:
    """The wallet's movements, newest first, by keyset pages (audited)."""
    _may_see(actor, user_id)
    limit = max(1, min(limit, 200))
    query = (
        select(Posting.id, Posting.entry_id, Entry.posted_at, Entry.kind, Entry.memo, Posting.amount_fen)
        .join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.name == ledger.wallet(user_id))
    )
    cursor = decode_after(after)
    if cursor is not None:
        query = query.where(Posting.id < int(cursor))
    rows = session.execute(query.order_by(Posting.id.desc()).limit(limit + 1)).all()
    lines = [HistoryLine(r[0], r[1], r[2], r[3], r[4], -int(r[5])) for r in rows[:limit]]
    record(
        session=session, actor=actor, action="services.wallet.history", object_type="user", object_id=user_id
    )
    return Page(items=lines, next=encode_after(lines[-1].posting_id) if len(rows) > limit else None)


def top_up(*, session: Session, actor: Actor, user_id: int, amount_fen: int, via: str) -> WalletTopUp:
    """Put money into ``user_id``'s wallet: ``bank``/``cash`` at the service desk (operator staff,
    posted at once) or ``gateway`` (the resident, pending until the gateway's callback)."""
    if via not in VIAS:
        raise Invalid(T("via must be one of {values}", values=", ".join(VIAS)), detail={"field": "via"})
    if (
        isinstance(amount_fen, bool)
        or not isinstance(amount_fen, int)
        or not 0 < amount_fen <= MAX_TOP_UP_FEN
    ):
        raise Invalid(
            T("amount_fen must be a whole number of fen between 1 and {most}", most=MAX_TOP_UP_FEN),
            detail={"field": "amount_fen"},
        )
    _user(session, user_id)
    if via == "gateway":
        if actor.user_id != user_id:
            raise Forbidden(T("only the resident may top up through the gateway"), detail={"field": "via"})
        authorize(actor, "services.book")
    else:
        authorize(actor, "services.operate")
    row = WalletTopUp(
        user_id=user_id,
        amount_fen=amount_fen,
        via=via,
        state="pending" if via == "gateway" else "done",
        created_by=actor.username[:100],
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    if via == "gateway":
        from zhishe.services import gateway

        row.reference = gateway.new_reference("T")
    else:
        confirm_top_up(session, row, actor=actor)
    record(
        session=session,
        actor=actor,
        action="services.wallet.top_up",
        object_type="user",
        object_id=user_id,
        detail={"amount_fen": amount_fen, "via": via, "top_up": row.id},
    )
    session.flush()
    return row


def confirm_top_up(session: Session, row: WalletTopUp, *, actor: Actor | None) -> None:
    """Post a top-up whose money has arrived: Dr the source, Cr the wallet."""
    entry = ledger.post(
        session,
        kind="top_up",
        stream="wallet",
        lines=[(VIAS[row.via], row.amount_fen), (ledger.wallet(row.user_id), -row.amount_fen)],
        memo=f"wallet top-up via {row.via}",
        ref_type="wallet_top_up",
        ref_id=row.id,
        actor=actor,
    )
    row.entry_id = entry.id
    row.state = "done"


def get_top_up(session: Session, reference: str) -> WalletTopUp | None:
    """The top-up with gateway reference ``reference``, if any."""
    if not reference:
        return None
    return session.scalar(select(WalletTopUp).where(WalletTopUp.reference == reference))
