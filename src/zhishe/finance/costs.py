"""Operating costs of the operator, per month and stream.

A cost is entered one by one or imported from a CSV file with the columns ``month, stream, label,
amount`` (amount in yuan with at most two decimals, e.g. ``1234.50``). An import is all or
nothing: every bad row is named with its row number and nothing is written if any row is bad.
Each cost posts ``Dr Expenses:Operating:<Stream>`` ``Cr Assets:Bank`` in the same transaction.
The profit model counts a cost in the month it is entered for, not the day it was posted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from charset_normalizer import from_bytes
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.models import CostEntry
from zhishe.finance.money import check_fen, parse_yuan
from zhishe.finance.periods import parse_month

__all__ = [
    "COST_STREAMS",
    "CostRow",
    "create",
    "import_csv",
    "list_costs",
]

#: Streams a cost may be booked under (the profit model's streams, plus overheads).
COST_STREAMS = ("marketplace", "membership", "advertising", "data", "energy", "other")
#: Most rows one CSV import may carry.
MAX_ROWS = 10_000


# --- costs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostRow:
    """One checked cost, ready to post."""

    month: str
    stream: str
    label: str
    amount_fen: int


def _check(month: object, stream: object, label: object, amount_fen: int) -> CostRow:
    checked_month = parse_month(month)
    name = str(stream or "").strip()
    if name not in COST_STREAMS:
        raise Invalid(
            T("stream must be one of {values}", values=", ".join(COST_STREAMS)), detail={"field": "stream"}
        )
    text = str(label or "").strip()
    if not text or len(text) > 200:
        raise Invalid(T("label must have 1 to 200 characters"), detail={"field": "label"})
    return CostRow(checked_month, name, text, check_fen(amount_fen))


def _post(session: Session, actor: Actor, row: CostRow) -> CostEntry:
    cost = CostEntry(
        month=row.month, stream=row.stream, label=row.label, amount_fen=row.amount_fen, created_at=clock.now()
    )
    session.add(cost)
    session.flush()  # the cost's id goes on the entry: entries are never changed once posted
    entry = ledger.post(
        session,
        kind="operating_cost",
        stream=row.stream,
        lines=[
            (f"Expenses:Operating:{row.stream.capitalize()}", row.amount_fen),
            ("Assets:Bank", -row.amount_fen),
        ],
        memo=f"{row.month} {row.label}",
        ref_type="cost",
        ref_id=cost.id,
        actor=actor,
    )
    cost.entry_id = entry.id
    return cost


def create(
    *, session: Session, actor: Actor, month: str, stream: str, label: str, amount_fen: int
) -> CostEntry:
    """Enter one operating cost and post it."""
    authorize(actor, "finance.manage", what="operating costs")
    row = _check(month, stream, label, amount_fen)
    cost = _post(session, actor, row)
    record(
        session=session,
        actor=actor,
        action="finance.cost.create",
        object_type="finance_cost",
        object_id=cost.id,
        detail={"month": row.month, "stream": row.stream, "amount_fen": row.amount_fen},
    )
    return cost


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
        if best is None:
            raise Invalid(T("the file is not text in a known encoding"), detail={"field": "file"}) from None
        return str(best)


def parse_csv(data: bytes) -> list[CostRow]:
    """The rows of a cost CSV, all checked; Invalid listing every bad row if any is bad."""
    reader = csv.reader(io.StringIO(_decode(data)))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise Invalid(T("the file is empty"), detail={"field": "file"})
    header = [h.strip().lower() for h in rows[0]]
    if header[:4] != ["month", "stream", "label", "amount"]:
        raise Invalid(
            T("the first row must be the header month,stream,label,amount"),
            detail={"row": 1, "field": "file"},
        )
    if len(rows) - 1 > MAX_ROWS:
        raise Invalid(T("at most {n} rows may be imported at once", n=MAX_ROWS), detail={"field": "file"})
    checked: list[CostRow] = []
    errors: list[dict[str, object]] = []
    for number, cells in enumerate(rows[1:], start=2):
        cells = [*cells, "", "", "", ""][:4]
        try:
            checked.append(_check(cells[0], cells[1], cells[2], parse_yuan(cells[3])))
        except Invalid as exc:
            errors.append({"row": number, "field": exc.detail.get("field", ""), "message": str(exc)})
    if errors:
        first = errors[0]
        raise Invalid(
            T(
                "{n} bad rows; nothing was imported. Row {row}: {message}",
                n=len(errors),
                row=first["row"],
                message=first["message"],
            ),
            detail={"errors": errors[:100]},
        )
    if not checked:
        raise Invalid(T("the file has no cost rows"), detail={"field": "file"})
    return checked


def import_csv(*, session: Session, actor: Actor, data: bytes, filename: str = "") -> list[CostEntry]:
    """Import costs from a CSV file: all rows, or none when any row is bad."""
    authorize(actor, "finance.manage", what="operating costs")
    rows = parse_csv(data)
    costs = [_post(session, actor, row) for row in rows]
    record(
        session=session,
        actor=actor,
        action="finance.cost.import",
        object_type="finance_cost",
        object_id=costs[0].id,
        detail={
            "rows": len(costs),
            "filename": filename[:200],
            "total_fen": sum(c.amount_fen for c in costs),
        },
    )
    return costs


def list_costs(
    *, session: Session, actor: Actor, month: str | None = None, limit: int = 500
) -> list[CostEntry]:
    """Operating costs, newest first (of one month when given)."""
    authorize(actor, "finance.read", what="operating costs")
    query = select(CostEntry).order_by(CostEntry.id.desc()).limit(min(max(limit, 1), 5000))
    if month:
        query = query.where(CostEntry.month == parse_month(month))
    rows = list(session.scalars(query))
    record(
        session=session,
        actor=actor,
        action="finance.cost.read",
        object_type="finance_cost",
        object_id=month or "*",
        detail={"rows": len(rows)},
    )
    return rows


def costs_by_month(session: Session, months: list[str]) -> dict[tuple[str, str], int]:
    """Operating costs per ``(month, stream)`` (a read for the profit model; no authorisation)."""
    totals: dict[tuple[str, str], int] = {}
    if not months:
        return totals
    rows = session.execute(
        select(CostEntry.month, CostEntry.stream, CostEntry.amount_fen).where(CostEntry.month.in_(months))
    ).all()
    for month, stream, amount in rows:
        totals[(month, stream)] = totals.get((month, stream), 0) + int(amount)
    return totals
