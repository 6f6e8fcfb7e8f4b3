"""Operating costs of the operator, per month and stream, and the small money and month helpers
the revenue streams share.

A cost is entered one by one or imported from a CSV file with the columns ``month, stream, label,
amount`` (amount in yuan with at most two decimals, e.g. ``1234.50``). An import is all or
nothing: every bad row is named with its row number and nothing is written if any row is bad.
Each cost posts ``Dr Expenses:Operating:<Stream>`` ``Cr Assets:Bank`` in the same transaction.
The profit model counts a cost in the month it is entered for, not the day it was posted.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from charset_normalizer import from_bytes
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.models import CostEntry

__all__ = [
    "COST_STREAMS",
    "CostRow",
    "add_month",
    "create",
    "half_even",
    "import_csv",
    "list_costs",
    "local_day",
    "month_bounds",
    "month_of",
    "months_between",
    "parse_month",
    "parse_yuan",
]

#: Streams a cost may be booked under (the profit model's streams, plus overheads).
COST_STREAMS = ("marketplace", "membership", "advertising", "data", "energy", "other")
_YUAN = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
#: Most rows one CSV import may carry.
MAX_ROWS = 10_000


# --- shared helpers --------------------------------------------------------------------------------


def half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, in integers only (no floats)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def local_day(moment: datetime) -> date:
    """The date of ``moment`` in the platform timezone."""
    return moment.astimezone(get_settings().tz).date()


def month_of(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment`` in the platform timezone."""
    return moment.astimezone(get_settings().tz).strftime("%Y-%m")


def parse_month(text: object, *, field: str = "month") -> str:
    """A ``YYYY-MM`` month, checked; Invalid naming ``field`` otherwise."""
    value = str(text or "").strip()
    found = _MONTH.fullmatch(value)
    if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2999:
        raise Invalid(
            T("{field} must be a month written YYYY-MM, not {value}", field=field, value=repr(value)[:40]),
            detail={"field": field},
        )
    return value


def add_month(month: str, n: int = 1) -> str:
    """The month ``n`` months after ``month`` (``n`` may be negative)."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive (at most 120)."""
    months: list[str] = []
    month = first
    while month <= last and len(months) < 120:
        months.append(month)
        month = add_month(month)
    return months


def month_bounds(first: str, last: str | None = None) -> tuple[datetime, datetime]:
    """The UTC instants where ``first`` starts and ``last`` (default ``first``) ends, local time."""
    tz = get_settings().tz
    end_month = add_month(last or first)
    start = datetime.combine(date(int(first[:4]), int(first[5:7]), 1), time(0), tzinfo=tz)
    end = datetime.combine(date(int(end_month[:4]), int(end_month[5:7]), 1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_yuan(text: object, *, field: str = "amount") -> int:
    """A positive amount in yuan with at most two decimals (``"12.5"``) as fen; Invalid otherwise."""
    value = str(text if text is not None else "").strip().replace(",", "")
    found = _YUAN.fullmatch(value)
    if not found:
        raise Invalid(
            T(
                "{field} must be a positive amount in yuan with at most two decimals, not {value}",
                field=field,
                value=repr(value)[:40],
            ),
            detail={"field": field},
        )
    fen = int(found.group(1)) * 100 + int((found.group(2) or "0").ljust(2, "0"))
    if fen <= 0 or fen > ledger.MAX_FEN:
        raise Invalid(T("{field} must be more than zero", field=field), detail={"field": field})
    return fen


def check_fen(value: object, *, field: str = "amount_fen", allow_zero: bool = False) -> int:
    """A whole, positive number of fen (a bool, a float or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(T("{field} must be a whole number of fen", field=field), detail={"field": field})
    if value < 0 or (value == 0 and not allow_zero) or value > ledger.MAX_FEN:
        raise Invalid(T("{field} must be more than zero", field=field), detail={"field": field})
    return value


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
