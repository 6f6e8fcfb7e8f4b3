"""The what-if panel: the projected monthly revenue if the commission rates, the membership price
or the subsidy level changed, from the activity of the last three months.

The projection is the average of the three months' volumes times the new parameters (every
amount rounded half to even, in integer fen). Its assumptions, shown on the page with it:

- volumes do not react to prices: elasticity is not modelled;
- a category's commission scales with its rate: the commission recorded on its transactions x
  new rate / today's rate (provider contract overrides scale the same way); a category that
  charged nothing is projected as its GMV x the new rate;
- memberships: as many sold per month as on average in the window, at the new price; refunds are
  left out;
- the subsidy level scales the operator's own promotion spending (``Expenses:Promotions:*``);
  10,000 bps is today's level. Government-funded vouchers cost the operator nothing and are
  unchanged;
- advertising, data and energy revenue and the operating costs stay at their three-month average.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Invalid
from zhishe.core.i18n import Message, T
from zhishe.finance.costs import costs_by_month
from zhishe.finance.models import Membership, MembershipPlan
from zhishe.finance.money import half_even
from zhishe.finance.periods import add_month, month_bounds, month_of, parse_month
from zhishe.finance.profit import ledger_by_month
from zhishe.services import stats
from zhishe.services.models import ServiceCategory

__all__ = ["ASSUMPTIONS", "WINDOW", "WhatIf", "parse_params", "project", "run"]

#: Months of activity the projection averages.
WINDOW = 3
_MAX_BPS = 10_000
_MAX_SUBSIDY_BPS = 100_000
ASSUMPTIONS: tuple[Message, ...] = (
    T("Volumes do not react to prices: elasticity is not modelled."),
    T("A category's commission scales with its rate: recorded commission x new rate / today's rate."),
    T("Memberships: as many sold per month as on average in the window, at the new price; refunds left out."),
    T(
        "The subsidy level scales the operator's own promotion spending (10,000 bps = today); government vouchers are unchanged."
    ),
    T("Advertising, data and energy revenue and the operating costs stay at their three-month average."),
)


@dataclass
class WhatIf:
    """The parameters of a projection."""

    #: The last month of the three-month window (default: the month before this one).
    ending: str | None = None
    #: New commission rates by category code, in basis points.
    commission_bps: dict[str, int] = field(default_factory=dict)
    #: A new annual membership fee applied to every plan, in fen.
    membership_fee_fen: int | None = None
    #: The subsidy level in basis points of today's (10,000 = unchanged).
    subsidy_bps: int = _MAX_BPS


def _int(value: object, field_name: str, low: int, high: int) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise Invalid(
            T("{field} must be a whole number from {low} to {high}", field=field_name, low=low, high=high),
            detail={"field": field_name},
        )
    return int(text)


def parse_params(params: Mapping[str, str]) -> WhatIf:
    """Parameters from a query string: ``ending``, ``commission.<category>`` (bps),
    ``membership_fee_fen`` and ``subsidy_bps``; empty values mean unchanged."""
    what = WhatIf()
    for key, value in params.items():
        if value is None or str(value).strip() == "":
            continue
        if key == "ending":
            what.ending = parse_month(value, field="ending")
        elif key.startswith("commission."):
            what.commission_bps[key[len("commission.") :][:64]] = _int(value, key, 0, _MAX_BPS)
        elif key == "membership_fee_fen":
            what.membership_fee_fen = _int(value, key, 0, 10**9)
        elif key == "subsidy_bps":
            what.subsidy_bps = _int(value, key, 0, _MAX_SUBSIDY_BPS)
    return what


def _memberships(session: Session, first: str, last: str) -> dict[int, int]:
    """Memberships sold per plan in the months."""
    start, end = month_bounds(first, last)
    counts: dict[int, int] = {}
    for plan_id in session.scalars(
        select(Membership.plan_id).where(Membership.created_at >= start, Membership.created_at < end)
    ):
        counts[plan_id] = counts.get(plan_id, 0) + 1
    return counts


def project(session: Session, what: WhatIf) -> dict[str, Any]:
    """The projection (a read: no authorisation, no audit)."""
    last = what.ending or add_month(month_of(clock.now()), -1)
    first = add_month(last, -(WINDOW - 1))
    categories = {c.code: c for c in session.scalars(select(ServiceCategory).order_by(ServiceCategory.code))}
    unknown = sorted(set(what.commission_bps) - set(categories))
    if unknown:
        raise Invalid(
            T("there is no category {code}", code=unknown[0]), detail={"field": f"commission.{unknown[0]}"}
        )
    activity = stats.by_category(session, first, last)
    lines: list[dict[str, Any]] = []
    for code in sorted(set(categories) | set(activity)):
        item = activity.get(code, {"gmv_fen": 0, "commission_fen": 0, "bookings": 0})
        current = categories[code].commission_bps if code in categories else 0
        new = what.commission_bps.get(code, current)
        baseline = half_even(item["commission_fen"], WINDOW)
        if current > 0:
            projected = half_even(item["commission_fen"] * new, WINDOW * current)
        else:
            projected = half_even(item["gmv_fen"] * new, WINDOW * _MAX_BPS)
        lines.append(
            {
                "category": code,
                "gmv_fen": half_even(item["gmv_fen"], WINDOW),
                "bookings": half_even(item["bookings"], WINDOW),
                "current_bps": current,
                "new_bps": new,
                "baseline_fen": baseline,
                "projected_fen": projected,
            }
        )
    plans = {p.id: p for p in session.scalars(select(MembershipPlan))}
    sold = _memberships(session, first, last)
    membership_base = half_even(sum(plans[p].annual_fee_fen * n for p, n in sold.items()), WINDOW)
    fee = what.membership_fee_fen
    membership_new = half_even(
        sum((plans[p].annual_fee_fen if fee is None else fee) * n for p, n in sold.items()), WINDOW
    )
    booked = ledger_by_month(session, first, last)
    months = [add_month(first, i) for i in range(WINDOW)]

    def average(stream: str, key: str) -> int:
        return half_even(sum(booked.get((m, stream), {}).get(key, 0) for m in months), WINDOW)

    promotions = average("marketplace", "promotions")
    promotions_new = half_even(
        sum(booked.get((m, "marketplace"), {}).get("promotions", 0) for m in months) * what.subsidy_bps,
        WINDOW * _MAX_BPS,
    )
    operating = half_even(sum(costs_by_month(session, months).values()), WINDOW)
    other_expenses = sum(
        average(s, "expenses") for s in ("membership", "advertising", "data", "energy", "other")
    )
    other_expenses += average("marketplace", "expenses") - promotions
    market_base = sum(int(x["baseline_fen"]) for x in lines)
    market_new = sum(int(x["projected_fen"]) for x in lines)
    streams: dict[str, tuple[int, int]] = {
        "marketplace": (market_base, market_new),
        "membership": (membership_base, membership_new),
        "advertising": (average("advertising", "income"), average("advertising", "income")),
        "data": (average("data", "income"), average("data", "income")),
        "energy": (average("energy", "income"), average("energy", "income")),
    }
    revenue = (sum(b for b, _ in streams.values()), sum(p for _, p in streams.values()))
    costs = (operating + other_expenses + promotions, operating + other_expenses + promotions_new)
    return {
        "window": months,
        "parameters": {
            "commission_bps": what.commission_bps,
            "membership_fee_fen": what.membership_fee_fen,
            "subsidy_bps": what.subsidy_bps,
        },
        "categories": lines,
        "memberships_per_month": {plans[p].code: n / WINDOW for p, n in sold.items()},
        "streams": [
            {"stream": name, "baseline_fen": base, "projected_fen": new}
            for name, (base, new) in streams.items()
        ],
        "promotions": {"baseline_fen": promotions, "projected_fen": promotions_new},
        "revenue": {"baseline_fen": revenue[0], "projected_fen": revenue[1]},
        "costs": {"baseline_fen": costs[0], "projected_fen": costs[1]},
        "margin": {"baseline_fen": revenue[0] - costs[0], "projected_fen": revenue[1] - costs[1]},
        "assumptions": [str(a) for a in ASSUMPTIONS],
    }


def run(*, session: Session, actor: Actor, what: WhatIf) -> dict[str, Any]:
    """The projection for the operator (authorised and audited)."""
    authorize(actor, "finance.read", what="the what-if panel")
    result = project(session, what)
    record(
        session=session,
        actor=actor,
        action="finance.whatif.read",
        object_type="profit_model",
        object_id=f"whatif:{result['window'][-1]}",
        detail=result["parameters"],
    )
    return result
