"""Marketplace figures per month (platform timezone), read-only, for the operator's profit model.

A transaction counts in the month it was created. Per month:

- ``bookings``: transactions created; ``gmv_fen``: their captured amounts (``captured_fen``, the
  prices actually paid, cancellation fees included), before refunds; ``refunded_fen`` beside it;
- ``commission_fen``: the commission recorded on them; ``subsidy_fen``: vouchers and subsidies used;
- ``active_residents`` / ``active_providers``: distinct residents and providers with a transaction;
- ``bookings_per_resident`` = bookings / active residents;
- ``repeat_rate`` = residents with at least two transactions / active residents;
- ``within_3km_share``: of the transactions whose distance is known, the share at most 3,000 m
  from the resident's building;
- ``cancellation_rate`` / ``no_show_rate``: transactions now in a final state named
  ``cancelled*`` / ``no_show``, over bookings.

Rates are floats rounded to four places (they are ratios, not money); money stays integer fen.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.finance.periods import month_bounds, month_of, months_between
from zhishe.services.models import Listing, Transaction

__all__ = ["WITHIN_M", "MonthStats", "by_category", "is_cancelled", "is_no_show", "monthly"]

#: The life circle: a transaction "within 3 km" is at most this far from the resident's building.
WITHIN_M = 3000


def is_cancelled(state: str) -> bool:
    """Whether a process state is a cancellation (``cancelled``, ``cancelled_by_provider``...)."""
    return state.startswith("cancelled")


def is_no_show(state: str) -> bool:
    """Whether a process state is a no-show."""
    return state == "no_show"


@dataclass
class MonthStats:
    """The marketplace figures of one month."""

    month: str
    bookings: int = 0
    gmv_fen: int = 0
    refunded_fen: int = 0
    commission_fen: int = 0
    subsidy_fen: int = 0
    active_residents: int = 0
    active_providers: int = 0
    bookings_per_resident: float | None = None
    repeat_rate: float | None = None
    within_3km_share: float | None = None
    cancellation_rate: float | None = None
    no_show_rate: float | None = None
    _residents: dict[int, int] = field(default_factory=dict, repr=False)
    _providers: set[int] = field(default_factory=set, repr=False)
    _with_distance: int = 0
    _within: int = 0
    _cancelled: int = 0
    _no_show: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The public figures as a dict."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rows(session: Session, first: str, last: str) -> list[Any]:
    start, end = month_bounds(first, last)
    return list(
        session.execute(
            select(
                Transaction.created_at,
                Transaction.resident_user_id,
                Transaction.provider_id,
                Transaction.state,
                Transaction.captured_fen,
                Transaction.refunded_fen,
                Transaction.commission_fen,
                Transaction.subsidy_fen,
                Transaction.distance_m,
                Listing.category_code,
            )
            .join(Listing, Listing.id == Transaction.listing_id)
            .where(Transaction.created_at >= start, Transaction.created_at < end)
        ).all()
    )


def monthly(session: Session, first: str, last: str) -> dict[str, MonthStats]:
    """The figures of every month from ``first`` to ``last`` (``YYYY-MM``), months without
    transactions included with zeros."""
    out = {key: MonthStats(month=key) for key in months_between(first, last, most=240)}
    for row in _rows(session, first, last):
        stats = out.get(month_of(row.created_at))
        if stats is None:
            continue
        stats.bookings += 1
        stats.gmv_fen += int(row.captured_fen or 0)
        stats.refunded_fen += int(row.refunded_fen or 0)
        stats.commission_fen += int(row.commission_fen or 0)
        stats.subsidy_fen += int(row.subsidy_fen or 0)
        stats._residents[row.resident_user_id] = stats._residents.get(row.resident_user_id, 0) + 1
        stats._providers.add(row.provider_id)
        if row.distance_m is not None:
            stats._with_distance += 1
            stats._within += row.distance_m <= WITHIN_M
        stats._cancelled += is_cancelled(row.state)
        stats._no_show += is_no_show(row.state)
    for stats in out.values():
        residents = len(stats._residents)
        stats.active_residents = residents
        stats.active_providers = len(stats._providers)
        stats.bookings_per_resident = round(stats.bookings / residents, 4) if residents else None
        stats.repeat_rate = _ratio(sum(1 for n in stats._residents.values() if n >= 2), residents)
        stats.within_3km_share = _ratio(stats._within, stats._with_distance)
        stats.cancellation_rate = _ratio(stats._cancelled, stats.bookings)
        stats.no_show_rate = _ratio(stats._no_show, stats.bookings)
    return out


def by_category(session: Session, first: str, last: str) -> dict[str, dict[str, int]]:
    """Per category over the months ``first`` to ``last``: ``{"gmv_fen", "commission_fen",
    "bookings"}`` (the activity the what-if panel projects from)."""
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: {"gmv_fen": 0, "commission_fen": 0, "bookings": 0}
    )
    for row in _rows(session, first, last):
        item = totals[row.category_code]
        item["gmv_fen"] += int(row.captured_fen or 0)
        item["commission_fen"] += int(row.commission_fen or 0)
        item["bookings"] += 1
    return dict(totals)
