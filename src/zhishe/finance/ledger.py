"""The double-entry ledger: every money movement is one balanced entry, posted in the caller's
transaction, never edited; a correction is a reversing entry.

Accounts are named the Beancount way and created on first use. The chart:

- ``Assets:Bank``: the operator's bank account (top-ups, subsidy funding, fees paid by transfer).
- ``Assets:Gateway``: money the online payment gateway has collected for the operator.
- ``Assets:Receivable:Merchants:O<org>``: what a merchant or enterprise owes (ads, data plans).
- ``Liabilities:Wallets:U<user>``: a resident's prepaid wallet (a credit balance is money held for them).
- ``Liabilities:Escrow``: payments held for transactions not yet delivered.
- ``Liabilities:Deposits``: rental deposits held.
- ``Liabilities:Payables:P<provider>``: what the operator owes a provider.
- ``Liabilities:Subsidy:<PROGRAMME>``: a government subsidy fund held for residents' vouchers.
- ``Income:Commission``, ``Income:Refunds:Commission`` (contra), ``Income:Membership``,
  ``Income:Advertising``, ``Income:DataServices``, ``Income:Energy:Charging``, ``Income:Energy:Service``.
- ``Expenses:Promotions:<PROGRAMME>``, ``Expenses:Energy:DemandResponse``, ``Expenses:Operating:<stream>``.

Signs: a posting's amount is positive for a debit and negative for a credit, so that an entry's
postings sum to zero and so does the whole ledger, per currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.auth import Actor
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance.models import Account, Entry, Posting

__all__ = [
    "APPEND_ONLY_DDL",
    "APPEND_ONLY_DROP",
    "KINDS",
    "STREAMS",
    "Line",
    "account",
    "balance",
    "balances",
    "escrow_of",
    "get_entry",
    "list_accounts",
    "list_entries",
    "post",
    "postings_of",
    "provider_payable",
    "reverse",
    "reverse_entry",
    "rowcount",
    "totals_by_currency",
    "trial_balance",
    "wallet",
]

KINDS = ("Assets", "Liabilities", "Income", "Expenses", "Equity")
#: Revenue streams entries are counted under on the profit-model page.
STREAMS = ("marketplace", "membership", "advertising", "data", "energy", "wallet", "other")
#: A posting to make: ``(account name, signed amount in fen)``.
Line = tuple[str, int]
#: Largest amount one posting may carry (¥10 billion): far beyond any community transaction.
MAX_FEN = 10**12


def wallet(user_id: int) -> str:
    """The name of a resident's wallet account."""
    return f"Liabilities:Wallets:U{user_id}"


def provider_payable(provider_id: int) -> str:
    """The name of what the operator owes a provider."""
    return f"Liabilities:Payables:P{provider_id}"


def escrow_of() -> str:
    """The account that holds payments for undelivered transactions."""
    return "Liabilities:Escrow"


def _kind(name: str) -> str:
    parts = name.split(":")
    if parts[0] not in KINDS or len(parts) < 2 or not all(parts) or len(name) > 200:
        raise Invalid(
            T(
                "account name {name} must look like Kind:Part, with Kind one of {kinds}",
                name=repr(name),
                kinds=", ".join(KINDS),
            ),
            detail={"account": name},
        )
    for part in parts[1:]:
        if not (part[0].isupper() or part[0].isdigit()) or not all(c.isalnum() or c in "-_" for c in part):
            raise Invalid(
                T(
                    "each part of account name {name} must start with a capital or digit and hold only letters, digits, - and _",
                    name=repr(name),
                ),
                detail={"account": name},
            )
    return parts[0]


def _owner(name: str) -> tuple[str, int | None]:
    last = name.rsplit(":", 1)[-1]
    prefixes = {"U": "user", "P": "provider", "O": "org"}
    if len(last) > 1 and last[0] in prefixes and last[1:].isdigit():
        return prefixes[last[0]], int(last[1:])
    return "", None


def account(session: Session, name: str, *, currency: str = "CNY") -> Account:
    """The account called ``name``, created on first use (safe against a concurrent creation)."""
    found = session.scalar(select(Account).where(Account.name == name))
    if found is not None:
        return found
    kind = _kind(name)
    owner_type, owner_id = _owner(name)
    values = dict(
        name=name,
        kind=kind,
        currency=currency,
        owner_type=owner_type,
        owner_id=owner_id,
        balance_fen=0,
        opened_at=clock.now(),
    )
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            postgresql.insert(Account).values(**values).on_conflict_do_nothing(index_elements=["name"])
        )
    elif dialect == "sqlite":
        session.execute(
            sqlite.insert(Account).values(**values).on_conflict_do_nothing(index_elements=["name"])
        )
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        session.execute(insert(Account).values(**values))
    created = session.scalar(select(Account).where(Account.name == name))
    assert created is not None
    return created


def rowcount(result: Any) -> int:
    """How many rows an UPDATE or DELETE statement's result touched."""
    return int(getattr(result, "rowcount", 0) or 0)


def _normal_sign(kind: str) -> int:
    """+1 for accounts that normally carry a debit balance, -1 for credit-balance accounts."""
    return 1 if kind in ("Assets", "Expenses") else -1


def post(
    session: Session,
    *,
    kind: str,
    lines: Sequence[Line],
    stream: str = "marketplace",
    memo: str = "",
    ref_type: str = "",
    ref_id: int | None = None,
    provider_id: int | None = None,
    actor: Actor | None = None,
    currency: str = "CNY",
    at: datetime | None = None,
    no_overdraft: Collection[str] = (),
    reverses_id: int | None = None,
) -> Entry:
    """Post one balanced entry inside the caller's transaction and return it.

    ``lines`` are ``(account, amount)`` with debits positive and credits negative; lines on the same
    account are merged, and lines that net to zero are dropped. The lines must sum to zero. Accounts
    named in ``no_overdraft`` may not cross zero against their normal side (a wallet cannot go below
    empty): the check and the change are one conditional UPDATE, so concurrent spends cannot both
    pass. Any failure raises before anything is written, or inside the caller's transaction so that
    its rollback undoes every leg."""
    if stream not in STREAMS:
        raise Invalid(
            T("stream must be one of {values}", values=", ".join(STREAMS)), detail={"stream": stream}
        )
    merged: dict[str, int] = defaultdict(int)
    for name, amount in lines:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise Invalid(T("ledger amounts are whole fen"), detail={"account": name, "amount": repr(amount)})
        if abs(amount) > MAX_FEN:
            raise Invalid(T("amount {amount} is too large", amount=amount), detail={"account": name})
        _kind(name)
        merged[name] += amount
    legs = [(name, amount) for name, amount in merged.items() if amount != 0]
    total = sum(amount for _, amount in legs)
    if total != 0:
        raise Invalid(
            T("an entry must balance: its postings sum to {total} fen", total=total),
            detail={"lines": [list(line) for line in lines]},
        )
    if not legs:
        raise Invalid(T("an entry needs at least one non-zero posting"), detail={"kind": kind})
    entry = Entry(
        posted_at=at or clock.now(),
        kind=kind[:32],
        stream=stream,
        memo=memo[:500],
        ref_type=ref_type[:32],
        ref_id=ref_id,
        provider_id=provider_id,
        reverses_id=reverses_id,
        actor=(actor.username if actor else "system")[:100],
    )
    session.add(entry)
    session.flush()
    names = sorted(name for name, _ in legs)
    accounts = {a.name: a for a in session.scalars(select(Account).where(Account.name.in_(names)))}
    for name in names:
        if name not in accounts:
            accounts[name] = account(session, name, currency=currency)
    guarded = set(no_overdraft)
    postings = []
    # a fixed order of account updates, so that two entries touching the same accounts cannot deadlock
    for name, amount in sorted(legs):
        acct = accounts[name]
        if acct.currency != currency:
            raise Invalid(
                T("account {name} is kept in {currency}", name=name, currency=acct.currency),
                detail={"account": name},
            )
        change = update(Account).where(Account.id == acct.id).values(balance_fen=Account.balance_fen + amount)
        if name in guarded:
            sign = _normal_sign(acct.kind)
            change = change.where(sign * (Account.balance_fen + amount) >= 0)
        if rowcount(session.execute(change.execution_options(synchronize_session=False))) != 1:
            raise Conflict(
                T("not enough balance in {name}", name=name), detail={"account": name, "amount_fen": amount}
            )
        postings.append(
            {"entry_id": entry.id, "account_id": acct.id, "amount_fen": amount, "currency": currency}
        )
    session.execute(insert(Posting), postings)
    for acct in accounts.values():  # balances were moved in SQL: forget the stale copies
        session.expire(acct, ["balance_fen"])
    return entry


def reverse(session: Session, *, entry_id: int, actor: Actor | None = None, memo: str = "") -> Entry:
    """A reversing entry for ``entry_id``: the same postings with opposite signs. An entry is reversed
    at most once, and a reversal itself is not reversed again (post a new entry instead)."""
    original = session.get(Entry, entry_id)
    if original is None:
        raise NotFound(T("there is no ledger entry {id}", id=entry_id), detail={"entry": entry_id})
    if original.reverses_id is not None:
        raise Conflict(T("entry {id} is itself a reversal", id=entry_id), detail={"entry": entry_id})
    if session.scalar(select(Entry.id).where(Entry.reverses_id == entry_id)) is not None:
        raise Conflict(T("entry {id} has already been reversed", id=entry_id), detail={"entry": entry_id})
    rows = session.execute(
        select(Account.name, Posting.amount_fen, Posting.currency)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id == entry_id)
    ).all()
    return post(
        session,
        kind="reversal",
        stream=original.stream,
        lines=[(name, -amount) for name, amount, _ in rows],
        memo=memo or f"reversal of entry {entry_id}",
        ref_type=original.ref_type,
        ref_id=original.ref_id,
        provider_id=original.provider_id,
        actor=actor,
        currency=rows[0][2] if rows else "CNY",
        reverses_id=entry_id,
    )


def balance(session: Session, name: str) -> int:
    """The balance of account ``name`` in fen (0 for an account never used)."""
    value = session.scalar(select(Account.balance_fen).where(Account.name == name))
    return int(value or 0)


def balances(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Balances of several accounts at once."""
    wanted = list(names)
    rows = session.execute(select(Account.name, Account.balance_fen).where(Account.name.in_(wanted))).all()
    found = {name: int(value) for name, value in rows}
    return {name: found.get(name, 0) for name in wanted}


def totals_by_currency(session: Session) -> dict[str, int]:
    """The sum of every posting per currency: zero for each, or the ledger is broken."""
    rows = session.execute(
        select(Posting.currency, func.sum(Posting.amount_fen)).group_by(Posting.currency)
    ).all()
    return {currency: int(total or 0) for currency, total in rows}


# --- append-only tables ---------------------------------------------------------------------------

#: Triggers that refuse UPDATE and DELETE on entries and postings, per dialect (created by the
#: migration; TRUNCATE, which only a test database reset uses, is not covered).
APPEND_ONLY_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": tuple(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} rows are never changed or deleted'); END"
        for table in ("finance_entries", "finance_postings")
        for verb in ("UPDATE", "DELETE")
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION finance_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% rows are never changed or deleted', TG_TABLE_NAME; END $$",
        *(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION finance_append_only()"
            for table in ("finance_entries", "finance_postings")
        ),
    ),
}
#: What removes them again (a downgrade).
APPEND_ONLY_DROP: dict[str, tuple[str, ...]] = {
    "sqlite": tuple(
        f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}"
        for table in ("finance_entries", "finance_postings")
        for verb in ("UPDATE", "DELETE")
    ),
    "postgresql": (
        "DROP TRIGGER IF EXISTS finance_entries_append_only ON finance_entries",
        "DROP TRIGGER IF EXISTS finance_postings_append_only ON finance_postings",
        "DROP FUNCTION IF EXISTS finance_append_only()",
    ),
}


# --- reading the ledger, and corrections (authorised and audited) ---------------------------------


def _audit_read(session: Session, actor: Actor, what: str, object_id: str | int = "*") -> None:
    from zhishe.core.audit.service import record
    from zhishe.core.auth import authorize

    authorize(actor, "finance.read")
    record(
        session=session,
        actor=actor,
        action=f"finance.{what}.read",
        object_type="finance_ledger",
        object_id=object_id,
    )


def list_accounts(session: Session, *, actor: Actor) -> list[Account]:
    """Every account with its balance, by name (operator's staff; audited)."""
    _audit_read(session, actor, "accounts")
    return list(session.scalars(select(Account).order_by(Account.name)))


def trial_balance(session: Session, *, actor: Actor) -> dict[str, dict[str, int]]:
    """Per currency: the sum of debit balances, of credit balances, and their total (zero when
    the ledger is sound), from the accounts' running balances."""
    _audit_read(session, actor, "trial_balance")
    result: dict[str, dict[str, int]] = {}
    for currency, amount in session.execute(select(Account.currency, Account.balance_fen)):
        row = result.setdefault(currency, {"debits_fen": 0, "credits_fen": 0, "total_fen": 0})
        row["debits_fen" if amount > 0 else "credits_fen"] += int(amount)
        row["total_fen"] += int(amount)
    return result


def list_entries(
    session: Session,
    *,
    actor: Actor,
    after: str | None = None,
    limit: int = 50,
    kind: str | None = None,
    account_name: str | None = None,
    provider_id: int | None = None,
    ref_type: str | None = None,
    ref_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """Entries, newest first, by keyset pages, filtered (operator's staff; audited)."""
    from zhishe.core.pagination import keyset_page

    _audit_read(session, actor, "entries")
    query = select(Entry)
    if kind:
        query = query.where(Entry.kind == kind)
    if provider_id is not None:
        query = query.where(Entry.provider_id == provider_id)
    if ref_type:
        query = query.where(Entry.ref_type == ref_type)
    if ref_id is not None:
        query = query.where(Entry.ref_id == ref_id)
    if start is not None:
        query = query.where(Entry.posted_at >= start)
    if end is not None:
        query = query.where(Entry.posted_at < end)
    if account_name:
        query = query.where(
            Entry.id.in_(
                select(Posting.entry_id)
                .join(Account, Account.id == Posting.account_id)
                .where(Account.name == account_name)
            )
        )
    return keyset_page(
        session, query, Entry.id, after=after, limit=max(1, min(limit, 500)), newest_first=True
    )


def postings_of(session: Session, entry_ids: Sequence[int]) -> dict[int, list[tuple[str, int, str]]]:
    """The postings (account, amount, currency) of each entry."""
    found: dict[int, list[tuple[str, int, str]]] = {i: [] for i in entry_ids}
    if not entry_ids:
        return found
    rows = session.execute(
        select(Posting.entry_id, Account.name, Posting.amount_fen, Posting.currency)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id.in_(list(entry_ids)))
        .order_by(Posting.entry_id, Posting.id)
    )
    for entry_id, name, amount, currency in rows:
        found[entry_id].append((name, int(amount), currency))
    return found


def get_entry(session: Session, *, actor: Actor, entry_id: int) -> Entry:
    """One entry (operator's staff; audited)."""
    _audit_read(session, actor, "entry", entry_id)
    entry = session.get(Entry, entry_id)
    if entry is None:
        raise NotFound(T("there is no ledger entry {id}", id=entry_id), detail={"entry": entry_id})
    return entry


def reverse_entry(session: Session, *, actor: Actor, entry_id: int, reason: str) -> Entry:
    """Correct an entry by posting its reversal (operator's finance staff, with a reason; audited)."""
    from zhishe.core.audit.service import record
    from zhishe.core.auth import authorize

    authorize(actor, "finance.manage")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(T("give a reason for the correction"), detail={"field": "reason"})
    reversal = reverse(
        session, entry_id=entry_id, actor=actor, memo=f"reversal of entry {entry_id}: {reason}"[:500]
    )
    record(
        session=session,
        actor=actor,
        action="finance.entry.reverse",
        object_type="finance_entry",
        object_id=entry_id,
        detail={"reason": reason[:500], "reversal": reversal.id},
    )
    return reversal
