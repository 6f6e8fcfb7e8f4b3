"""Monthly settlement statements per provider, computed from the ledger, and payouts.

For provider ``P`` and a month (its boundaries in the platform timezone), over the entries posted in
it (a reversal counts under the kind of the entry it reverses, with its opposite amounts):

- **gross**: the prices captured for P's transactions (credits to P's payable plus the commission in
  ``capture`` entries), plus deposits kept for P after a dispute (``deposit_settle``);
- **commission**: the ``Income:Commission`` credited by those captures;
- **subsidies**: the part of gross paid by vouchers (debits on ``Liabilities:Subsidy:*`` and
  ``Expenses:Promotions:*`` in captures, less what refunds gave back to those funds): information,
  already inside gross;
- **refunds**: what refunds took back from P (the refund less the commission returned with it);
- **collected**: cash P took itself at the service (``collected`` entries), which it already holds;
- **net payable** = gross - commission - refunds - collected.

The **ledger movement** is the change of ``Liabilities:Payables:P<id>`` over the month from every
posting on that account (credit positive), leaving out payouts, which pay earlier months. The
statement stores both; their difference must be zero, and is non-zero only if something moved
P's payable outside the flows above. Paying a provider out posts Dr payable Cr ``Assets:Bank``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.models import Account, Entry, Posting, Settlement
from zhishe.finance.periods import month_bounds, parse_month

__all__ = [
    "Statement",
    "compute",
    "list_payouts",
    "list_settlements",
    "payout",
    "run",
]

_PAYABLE_PREFIX = "Liabilities:Payables:P"


@dataclass(slots=True)
class Statement:
    """One provider's figures for one month, in fen."""

    provider_id: int
    month: str
    gross_fen: int = 0
    commission_fen: int = 0
    subsidies_fen: int = 0
    refunds_fen: int = 0
    collected_fen: int = 0
    ledger_movement_fen: int = 0
    entries: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def net_payable_fen(self) -> int:
        """Gross - commission - refunds - collected."""
        return self.gross_fen - self.commission_fen - self.refunds_fen - self.collected_fen

    @property
    def difference_fen(self) -> int:
        """Net payable minus the ledger movement: zero when the statement reconciles."""
        return self.net_payable_fen - self.ledger_movement_fen


def compute(session: Session, month: str, *, provider_id: int | None = None) -> list[Statement]:
    """Every provider's statement for ``month`` (or just ``provider_id``'s), from the ledger."""
    start, end = month_bounds(parse_month(month))
    original = aliased(Entry)
    kind = func.coalesce(original.kind, Entry.kind)
    # sums by provider, entry kind and account; the few accounts are classed afterwards, so that no
    # pattern is matched per posting
    query = (
        select(Entry.provider_id, kind, Posting.account_id, func.sum(Posting.amount_fen))
        .join(Posting, Posting.entry_id == Entry.id)
        .outerjoin(original, original.id == Entry.reverses_id)
        .where(Entry.posted_at >= start, Entry.posted_at < end, Entry.provider_id.is_not(None))
        .group_by(Entry.provider_id, kind, Posting.account_id)
    )
    if provider_id is not None:
        query = query.where(Entry.provider_id == provider_id)
    rows = session.execute(query).all()
    accounts = {
        a.id: a for a in session.scalars(select(Account).where(Account.id.in_({row[2] for row in rows})))
    }
    sums: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for pid, entry_kind, account_id, total in rows:
        if pid is None:
            continue
        sums[pid][(str(entry_kind), _class_of(accounts[account_id], pid))] += int(total or 0)
    statements: dict[int, Statement] = {}
    for pid, got in sums.items():
        s = Statement(provider_id=pid, month=month)
        s.commission_fen = -got[("capture", "commission")]
        s.gross_fen = -got[("capture", "payable")] + s.commission_fen - got[("deposit_settle", "payable")]
        s.subsidies_fen = got[("capture", "fund")] + got[("refund", "fund")]
        s.refunds_fen = got[("refund", "payable")]
        s.collected_fen = got[("collected", "payable")]
        s.by_kind = {k: -v for (k, c), v in got.items() if c == "payable"}
        statements[pid] = s
    for pid, movement in _movements(session, start, end, provider_id).items():
        statements.setdefault(pid, Statement(provider_id=pid, month=month)).ledger_movement_fen = movement
    counts = select(Entry.provider_id, func.count(Entry.id)).where(
        Entry.posted_at >= start, Entry.posted_at < end, Entry.provider_id.is_not(None)
    )
    if provider_id is not None:
        counts = counts.where(Entry.provider_id == provider_id)
    for pid, count in session.execute(counts.group_by(Entry.provider_id)):
        if pid is not None and pid in statements:
            statements[pid].entries = int(count)
    return [statements[pid] for pid in sorted(statements)]


def _class_of(account: Account, provider_id: int) -> str:
    """How a settlement counts a posting to ``account`` in an entry of ``provider_id``."""
    if (
        account.owner_type == "provider"
        and account.owner_id == provider_id
        and account.name.startswith(_PAYABLE_PREFIX)
    ):
        return "payable"
    if account.name == "Income:Commission":
        return "commission"
    if account.name.startswith(("Liabilities:Subsidy:", "Expenses:Promotions:")):
        return "fund"
    return "other"


def _movements(session: Session, start: datetime, end: datetime, provider_id: int | None) -> dict[int, int]:
    """Credit movement of every provider payable over [start, end), payouts left out."""
    original = aliased(Entry)
    kind = func.coalesce(original.kind, Entry.kind)
    query = (
        select(Account.owner_id, func.sum(Posting.amount_fen))
        .join(Posting, Posting.account_id == Account.id)
        .join(Entry, Entry.id == Posting.entry_id)
        .outerjoin(original, original.id == Entry.reverses_id)
        .where(
            Account.owner_type == "provider",
            Account.name.like(f"{_PAYABLE_PREFIX}%"),
            Entry.posted_at >= start,
            Entry.posted_at < end,
            kind != "payout",
        )
        .group_by(Account.owner_id)
    )
    if provider_id is not None:
        query = query.where(Account.owner_id == provider_id)
    return {int(pid): -int(total or 0) for pid, total in session.execute(query) if pid is not None}


def _provider_org(session: Session, provider_id: int) -> int | None:
    from zhishe.services import payments

    return payments.provider_org_id(session, provider_id)


def run(session: Session, *, actor: Actor, month: str) -> list[Settlement]:
    """Compute and store every provider's statement for ``month`` (replacing earlier runs)."""
    authorize(actor, "finance.manage")
    month = parse_month(month)
    rows: list[Settlement] = []
    now = clock.now()
    for statement in compute(session, month):
        row = session.scalar(
            select(Settlement).where(
                Settlement.provider_id == statement.provider_id, Settlement.month == month
            )
        )
        if row is None:
            row = Settlement(provider_id=statement.provider_id, month=month)
            session.add(row)
        row.gross_fen = statement.gross_fen
        row.commission_fen = statement.commission_fen
        row.subsidies_fen = statement.subsidies_fen
        row.refunds_fen = statement.refunds_fen
        row.collected_fen = statement.collected_fen
        row.net_payable_fen = statement.net_payable_fen
        row.ledger_movement_fen = statement.ledger_movement_fen
        row.entries = statement.entries
        row.computed_at = now
        rows.append(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="finance.settlement.run",
        object_type="finance_settlement",
        object_id=month,
        detail={
            "providers": len(rows),
            "differences": sum(1 for r in rows if r.net_payable_fen != r.ledger_movement_fen),
        },
    )
    return rows


def list_settlements(
    session: Session, *, actor: Actor, month: str | None = None, provider_id: int | None = None
) -> list[Settlement]:
    """Stored statements: all of them for the operator, its own for a provider's administrator."""
    if not can(actor, "finance.read"):
        own = _own_provider(session, actor)
        if own is None or (provider_id is not None and provider_id != own):
            raise Forbidden(
                T("only the operator or this provider's administrators may see its statements"),
                detail={"action": "finance.statement"},
            )
        authorize(actor, "finance.statement", org_id=actor.org_id)
        provider_id = own
    query = select(Settlement)
    if month:
        query = query.where(Settlement.month == parse_month(month))
    if provider_id is not None:
        query = query.where(Settlement.provider_id == provider_id)
    record(
        session=session,
        actor=actor,
        action="finance.settlement.read",
        object_type="finance_settlement",
        object_id=month or "*",
        detail={"provider": provider_id},
    )
    return list(session.scalars(query.order_by(Settlement.month.desc(), Settlement.provider_id)))


def _own_provider(session: Session, actor: Actor) -> int | None:
    from zhishe.services import payments

    if actor.org_id is None:
        return None
    return payments.provider_of_org(session, actor.org_id)


def payout(session: Session, *, actor: Actor, provider_id: int, amount_fen: int, memo: str = "") -> Entry:
    """Pay a provider what it is owed: Dr its payable, Cr ``Assets:Bank``. The payable may not go
    below zero (the operator pays out no more than it owes)."""
    authorize(actor, "finance.manage")
    if (
        isinstance(amount_fen, bool)
        or not isinstance(amount_fen, int)
        or not 0 < amount_fen <= ledger.MAX_FEN
    ):
        raise Invalid(T("amount_fen must be a positive whole number of fen"), detail={"field": "amount_fen"})
    if _provider_org(session, provider_id) is None:
        raise Invalid(T("there is no provider {id}", id=provider_id), detail={"field": "provider_id"})
    payable = ledger.provider_payable(provider_id)
    entry = ledger.post(
        session,
        kind="payout",
        lines=[(payable, amount_fen), ("Assets:Bank", -amount_fen)],
        memo=(memo or f"payout to provider {provider_id}")[:500],
        ref_type="provider",
        ref_id=provider_id,
        provider_id=provider_id,
        actor=actor,
        no_overdraft=[payable],
    )
    record(
        session=session,
        actor=actor,
        action="finance.payout",
        object_type="provider",
        object_id=provider_id,
        detail={"amount_fen": amount_fen, "entry": entry.id},
    )
    return entry


def list_payouts(
    session: Session, *, actor: Actor, provider_id: int | None = None
) -> list[tuple[Entry, int]]:
    """Payouts (newest first) with their amounts, for the operator (audited)."""
    authorize(actor, "finance.read")
    query = (
        select(Entry, Posting.amount_fen)
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Entry.kind == "payout", Account.name.like(f"{_PAYABLE_PREFIX}%"))
    )
    if provider_id is not None:
        query = query.where(Entry.provider_id == provider_id)
    record(
        session=session, actor=actor, action="finance.payout.list", object_type="finance_entry", object_id="*"
    )
    return [
        (entry, int(amount)) for entry, amount in session.execute(query.order_by(Entry.id.desc()).limit(500))
    ]
