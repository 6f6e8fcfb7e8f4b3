"""Exports of the ledger for accountants: Beancount text and CSV, streamed in batches so that a
ledger of millions of entries never sits in memory.

Beancount: an ``option`` line, an ``open`` directive per account (its open date in the platform
timezone and its currency), then each entry as a transaction::

    2026-11-02 * "P3" "capture of transaction 17"
      entry_id: 42
      ref: "transaction:17"
      Liabilities:Escrow           100.00 CNY
      Liabilities:Payables:P3      -85.00 CNY
      Income:Commission            -15.00 CNY

Amounts are yuan with two decimals, made from integer fen without floats. Beancount allows only
letters, digits and ``-`` in an account's parts, so ``_`` is written as ``-``.

CSV: one row per posting, with the entry's fields repeated and the amount in fen and in yuan.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance.models import Account, Entry, Posting
from zhishe.finance.money import yuan
from zhishe.finance.periods import local_day

__all__ = ["CSV_COLUMNS", "beancount", "beancount_chunks", "csv_chunks", "csv_rows", "parse_range"]

CSV_COLUMNS = (
    "entry_id",
    "posted_at",
    "date",
    "kind",
    "stream",
    "memo",
    "ref_type",
    "ref_id",
    "provider_id",
    "reverses_id",
    "account",
    "amount_fen",
    "amount",
    "currency",
)
_BATCH = 2000


def parse_range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to`` dates (inclusive, platform timezone) as instants [start, end)."""
    tz = get_settings().tz
    bounds: list[datetime | None] = []
    for name, value, extra in (("from", start, 0), ("to", end, 1)):
        if not value:
            bounds.append(None)
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise Invalid(
                T("{field} must be a date like 2026-11-01", field=name), detail={"field": name}
            ) from None
        bounds.append(datetime.combine(day + timedelta(days=extra), time(0), tzinfo=tz))
    if bounds[0] and bounds[1] and bounds[1] <= bounds[0]:
        raise Invalid(T("to must not be before from"), detail={"field": "to"})
    return bounds[0], bounds[1]


def _account(name: str) -> str:
    return name.replace("_", "-")


def _quoted(text: str) -> str:
    clean = " ".join(text.replace("\\", "/").replace('"', "'").split())
    return f'"{clean}"'


def _batches(
    session: Session, start: datetime | None, end: datetime | None
) -> Iterator[list[tuple[Entry, list[tuple[str, int, str]]]]]:
    """Entries with their postings (account, fen, currency), in id order, a batch at a time."""
    last = 0
    while True:
        query = select(Entry).where(Entry.id > last)
        if start is not None:
            query = query.where(Entry.posted_at >= start)
        if end is not None:
            query = query.where(Entry.posted_at < end)
        entries = list(session.scalars(query.order_by(Entry.id).limit(_BATCH)))
        if not entries:
            return
        ids = [e.id for e in entries]
        legs: dict[int, list[tuple[str, int, str]]] = {i: [] for i in ids}
        rows = session.execute(
            select(Posting.entry_id, Account.name, Posting.amount_fen, Posting.currency)
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.entry_id.in_(ids))
            .order_by(Posting.entry_id, Posting.id)
        )
        for entry_id, name, amount, currency in rows:
            legs[entry_id].append((name, int(amount), currency))
        yield [(e, legs[e.id]) for e in entries]
        last = ids[-1]
        session.expunge_all()


def _audit(session: Session, actor: Actor, fmt: str, start: datetime | None, end: datetime | None) -> None:
    authorize(actor, "finance.read")
    record(
        session=session,
        actor=actor,
        action="finance.export",
        object_type="finance_ledger",
        object_id=fmt,
        detail={"from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
    )


def beancount(
    session: Session,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The ledger as Beancount text, a chunk at a time (authorised and audited at the call; the
    chunks are read as they are consumed)."""
    _audit(session, actor, "beancount", start, end)
    return beancount_chunks(session, start, end, progress)


def beancount_chunks(
    session: Session, start: datetime | None, end: datetime | None, progress: Callable[[int], None] | None
) -> Iterator[str]:
    """The Beancount text in chunks (no authorisation: call ``beancount`` for that)."""
    yield 'option "title" "Zhishe ledger"\noption "operating_currency" "CNY"\n\n'
    opens = session.execute(select(Account.name, Account.currency, Account.opened_at).order_by(Account.name))
    lines = [
        f"{local_day(opened).isoformat()} open {_account(name)} {currency}"
        for name, currency, opened in opens
    ]
    yield "\n".join(lines) + "\n\n"
    for batch in _batches(session, start, end):
        out = io.StringIO()
        for entry, legs in batch:
            payee = f"P{entry.provider_id}" if entry.provider_id else entry.stream
            out.write(
                f"{local_day(entry.posted_at).isoformat()} * {_quoted(payee)} {_quoted(entry.memo or entry.kind)}\n"
            )
            out.write(f"  entry_id: {entry.id}\n")
            out.write(f"  kind: {_quoted(entry.kind)}\n")
            ref = f"{entry.ref_type}:{entry.ref_id}" if entry.ref_type else ""
            out.write(f"  ref: {_quoted(ref)}\n")
            for name, amount, currency in legs:
                out.write(f"  {_account(name)}  {yuan(amount)} {currency}\n")
            out.write("\n")
        if progress is not None:
            progress(len(batch))
        yield out.getvalue()


def csv_rows(
    session: Session,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The ledger as CSV, one row per posting, a chunk at a time (authorised and audited at the
    call; the chunks are read as they are consumed)."""
    _audit(session, actor, "csv", start, end)
    return csv_chunks(session, start, end, progress)


def csv_chunks(
    session: Session, start: datetime | None, end: datetime | None, progress: Callable[[int], None] | None
) -> Iterator[str]:
    """The CSV text in chunks (no authorisation: call ``csv_rows`` for that)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    for batch in _batches(session, start, end):
        out = io.StringIO()
        writer = csv.writer(out)
        for entry, legs in batch:
            for name, amount, currency in legs:
                writer.writerow(
                    [
                        entry.id,
                        entry.posted_at.isoformat(),
                        local_day(entry.posted_at).isoformat(),
                        entry.kind,
                        entry.stream,
                        entry.memo,
                        entry.ref_type,
                        "" if entry.ref_id is None else entry.ref_id,
                        "" if entry.provider_id is None else entry.provider_id,
                        "" if entry.reverses_id is None else entry.reverses_id,
                        name,
                        amount,
                        yuan(amount),
                        currency,
                    ]
                )
        if progress is not None:
            progress(len(batch))
        yield out.getvalue()
