"""Tables of the operator's finances: the double-entry ledger (accounts, entries, postings), monthly
provider settlements, operating costs, and the revenue streams beside the marketplace: annual
resident memberships, advertising placements, data-service subscriptions and energy-service fees.

Amounts are integer fen (分). A ledger entry's postings always sum to zero per currency, and neither
entries nor postings are ever updated or deleted: a correction is a reversing entry.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "Account",
    "AdBooking",
    "AdSlot",
    "CostEntry",
    "DataPlan",
    "DataSubscription",
    "EnergyCharge",
    "Entry",
    "Membership",
    "MembershipPlan",
    "Posting",
    "Settlement",
]


# --- the ledger -----------------------------------------------------------------------------------


class Account(Base):
    """A ledger account, named the Beancount way: ``Assets:Wallets:U42``, ``Income:Commission``.

    ``balance_fen`` is the running sum of its postings, moved by the same statement that adds a
    posting, so that a wallet's balance can be checked and locked without summing its history."""

    __tablename__ = "finance_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: Assets | Liabilities | Income | Expenses | Equity (the first part of ``name``).
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: Who the account belongs to, when anyone: user | provider | org | programme.
    owner_type: Mapped[str] = mapped_column(String(16), default="")
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Entry(Base):
    """A balanced journal entry: a booking captured, a refund, a membership fee..."""

    __tablename__ = "finance_entries"
    __table_args__ = (Index("ix_finance_entries_ref", "ref_type", "ref_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: What happened, e.g. ``capture``, ``refund``, ``deposit_hold``, ``membership_fee``, ``reversal``.
    kind: Mapped[str] = mapped_column(String(32), index=True)
    #: The revenue stream it belongs to: marketplace, membership, advertising, data, energy, wallet, other.
    stream: Mapped[str] = mapped_column(String(16), default="marketplace")
    memo: Mapped[str] = mapped_column(String(500), default="")
    #: The object it records, e.g. ``("transaction", 17)``.
    ref_type: Mapped[str] = mapped_column(String(32), default="")
    ref_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The provider whose settlement it counts in, if any.
    provider_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("finance_entries.id"), nullable=True, unique=True
    )
    actor: Mapped[str] = mapped_column(String(100), default="")


class Posting(Base):
    """One leg of an entry: a signed amount on one account (debit positive, credit negative)."""

    __tablename__ = "finance_postings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("finance_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("finance_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")


class Settlement(Base):
    """A provider's monthly settlement statement, computed from the ledger."""

    __tablename__ = "finance_settlements"
    __table_args__ = (UniqueConstraint("provider_id", "month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(Integer, index=True)
    #: ``2026-11``
    month: Mapped[str] = mapped_column(String(7), index=True)
    gross_fen: Mapped[int] = mapped_column(BigInteger)
    commission_fen: Mapped[int] = mapped_column(BigInteger)
    subsidies_fen: Mapped[int] = mapped_column(BigInteger)
    refunds_fen: Mapped[int] = mapped_column(BigInteger)
    net_payable_fen: Mapped[int] = mapped_column(BigInteger)
    #: The change in the provider's payable account over the month; ``net_payable_fen`` minus this is
    #: the reconciliation difference, which must be zero.
    ledger_movement_fen: Mapped[int] = mapped_column(BigInteger)
    entries: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What the provider collected itself at the service (cash, offline) and so keeps out of the
    #: payable: ``net_payable_fen = gross - commission - refunds - collected``.
    collected_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class CostEntry(Base):
    """An operating cost of a month and stream, entered or imported by the operator."""

    __tablename__ = "finance_costs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    stream: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- other revenue streams ------------------------------------------------------------------------


class MembershipPlan(Base):
    """The annual resident membership: a yearly fee for priority booking and a discount."""

    __tablename__ = "finance_membership_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    annual_fee_fen: Mapped[int] = mapped_column(BigInteger)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    #: Hours before everyone else that members may book newly opened slots.
    priority_hours: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Membership(Base):
    """One resident's membership for a year."""

    __tablename__ = "finance_memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("finance_membership_plans.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    #: active | cancelled
    state: Mapped[str] = mapped_column(String(16), default="active")
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AdSlot(Base):
    """A place an advertisement can appear: the resident home page or notices."""

    __tablename__ = "finance_ad_slots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    #: home | notices
    placement: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    day_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    per_thousand_impressions_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    per_click_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class AdBooking(Base):
    """A local merchant's booking of an ad slot for a date range, with what it showed and earned."""

    __tablename__ = "finance_ad_bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("finance_ad_slots.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    headline: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(500), default="")
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    #: How many impressions and clicks have been billed so far.
    billed_impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: booked | cancelled
    state: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataPlan(Base):
    """A data-service plan: a monthly fee for a higher open-data API quota."""

    __tablename__ = "finance_data_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    monthly_fee_fen: Mapped[int] = mapped_column(BigInteger)
    #: Requests per minute the subscribed app tokens may make.
    per_minute: Mapped[int] = mapped_column(Integer)
    #: Requests per day.
    per_day: Mapped[int] = mapped_column(Integer)


class DataSubscription(Base):
    """An enterprise's subscription to a data plan, applied to its open-data app tokens."""

    __tablename__ = "finance_data_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("finance_data_plans.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    #: Months paid for so far; the subscription runs until ``starts_on`` plus this many months.
    months_paid: Mapped[int] = mapped_column(Integer, default=0)
    #: active | cancelled
    state: Mapped[str] = mapped_column(String(16), default="active")
    #: Which app tokens (open-data ``AppToken`` ids) get the plan's quota.
    app_token_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EnergyCharge(Base):
    """An energy-service fee or payout posted to the ledger: an EV charging session billed at the
    tariff in force plus a service fee, or a demand-response incentive paid to a household."""

    __tablename__ = "finance_energy_charges"
    __table_args__ = (UniqueConstraint("kind", "source_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ev_charging | dr_incentive
    kind: Mapped[str] = mapped_column(String(16))
    #: The energy capability's own id of the session or event (idempotency key).
    source_ref: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    kwh_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    energy_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    service_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
