"""The operator's profit model: per month (platform timezone) and per stream — marketplace,
membership, advertising, data, energy, and ``other`` for overheads — what was sold, earned and
spent, with the marketplace figures beside it.

Definitions (all integer fen):

- ``revenue_fen``: the credits to ``Income:*`` accounts of the stream's entries posted in the
  month, net of the contra accounts ``Income:Refunds:*`` (and of reversals).
- ``gmv_fen``: for the marketplace, the captured prices of the month's transactions
  (``services.stats``); for the other streams, their gross sales: the credits to ``Income:*``
  before refunds.
- ``take_rate_bps``: marketplace revenue / GMV, in basis points rounded half to even (None for the
  other streams, which keep all they sell).
- ``costs_fen``: the operating costs entered for the month and stream, plus the stream's own
  expenses posted in the month (``Expenses:*`` other than ``Expenses:Operating:*``: promotions,
  demand-response incentives).
- ``margin_fen`` = revenue − costs (the contribution margin).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance.costs import costs_by_month
from zhishe.finance.models import Account, Entry, Posting
from zhishe.finance.money import half_even
from zhishe.finance.periods import month_bounds, months_between, parse_month
from zhishe.services import stats

__all__ = ["MAX_MONTHS", "STREAMS", "ProfitReport", "compute", "ledger_by_month", "report", "row_of"]

STREAMS = ("marketplace", "membership", "advertising", "data", "energy", "other")
#: Longest range one report covers.
MAX_MONTHS = 36


@dataclass
class ProfitReport:
    """The profit model over a range of months."""

    first: str
    last: str
    months: list[str]
    #: One row per month and stream: month, stream, gmv_fen, revenue_fen, costs_fen, margin_fen, take_rate_bps.
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Per month: the same figures summed over the streams.
    totals: list[dict[str, Any]] = field(default_factory=list)
    #: Per month: the marketplace figures (``services.stats.MonthStats.as_dict``).
    marketplace: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "from": self.first,
            "to": self.last,
            "months": self.months,
            "rows": self.rows,
            "totals": self.totals,
            "marketplace": self.marketplace,
        }

    def row(self, month: str, stream: str) -> dict[str, Any]:
        """The row of one month and stream."""
        return next(r for r in self.rows if r["month"] == month and r["stream"] == stream)


def ledger_by_month(session: Session, first: str, last: str) -> dict[tuple[str, str], dict[str, int]]:
    """Per ``(month, stream)``: ``income`` (net credits to Income, positive), ``gross`` (credits to
    Income before refunds), ``refunds``, ``expenses`` (Expenses other than operating costs) and
    ``promotions`` (``Expenses:Promotions:*``), from the postings of the months."""
    start, end = month_bounds(first, last)
    tz = get_settings().tz
    rows = session.execute(
        select(Entry.posted_at, Entry.stream, Account.name, Posting.amount_fen)
        .join(Posting, Posting.entry_id == Entry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            Entry.posted_at >= start,
            Entry.posted_at < end,
            Account.kind.in_(("Income", "Expenses")),
        )
    ).all()
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"income": 0, "gross": 0, "refunds": 0, "expenses": 0, "promotions": 0}
    )
    for posted_at, stream, name, amount in rows:
        item = out[(posted_at.astimezone(tz).strftime("%Y-%m"), stream)]
        amount = int(amount)
        if name.startswith("Income:"):
            item["income"] -= amount
            if name.startswith("Income:Refunds:"):
                item["refunds"] += amount
            else:
                item["gross"] -= amount
        elif not name.startswith("Expenses:Operating:"):
            item["expenses"] += amount
            if name.startswith("Expenses:Promotions:"):
                item["promotions"] += amount
    return dict(out)


def row_of(month: str, stream: str, gmv: int, revenue: int, costs: int) -> dict[str, Any]:
    """One row of the model."""
    take = half_even(revenue * 10_000, gmv) if stream == "marketplace" and gmv > 0 else None
    return {
        "month": month,
        "stream": stream,
        "gmv_fen": gmv,
        "revenue_fen": revenue,
        "costs_fen": costs,
        "margin_fen": revenue - costs,
        "take_rate_bps": take,
    }


def _range(first: str | None, last: str | None) -> tuple[str, str]:
    a = parse_month(first, field="from")
    b = parse_month(last or a, field="to")
    if b < a:
        raise Invalid(T("to must not be before from"), detail={"field": "to"})
    if len(months_between(a, b)) > MAX_MONTHS:
        raise Invalid(T("at most {n} months at a time", n=MAX_MONTHS), detail={"field": "to"})
    return a, b


def compute(session: Session, first: str, last: str | None = None) -> ProfitReport:
    """The profit model of the months ``first`` to ``last`` (a read: no authorisation, no audit)."""
    first, last = _range(first, last)
    months = months_between(first, last)
    booked = ledger_by_month(session, first, last)
    costs = costs_by_month(session, months)
    market = stats.monthly(session, first, last)
    report = ProfitReport(first=first, last=last, months=months)
    for month in months:
        total = {"gmv_fen": 0, "revenue_fen": 0, "costs_fen": 0}
        for stream in STREAMS:
            item = booked.get((month, stream), {})
            revenue = item.get("income", 0)
            gmv = market[month].gmv_fen if stream == "marketplace" else item.get("gross", 0)
            spent = costs.get((month, stream), 0) + item.get("expenses", 0)
            report.rows.append(row_of(month, stream, gmv, revenue, spent))
            total["gmv_fen"] += gmv
            total["revenue_fen"] += revenue
            total["costs_fen"] += spent
        report.totals.append(
            {"month": month, **total, "margin_fen": total["revenue_fen"] - total["costs_fen"]}
        )
        report.marketplace.append(market[month].as_dict())
    return report


def report(*, session: Session, actor: Actor, first: str | None, last: str | None = None) -> ProfitReport:
    """The profit model for the operator (a read of finance data: authorised and audited)."""
    authorize(actor, "finance.read", what="the profit model")
    result = compute(session, first or "", last)
    record(
        session=session,
        actor=actor,
        action="finance.profit.read",
        object_type="profit_model",
        object_id=f"{result.first}..{result.last}",
    )
    return result
