"""Tables of the community services marketplace (the 3-km life circle): categories, providers and
their licences, listings with price rules, slots and stock, transactions run by declared processes,
their event log, group buys, membership-box deliveries, waitlists, reviews, disputes, residents'
service profiles, vouchers and payments.

Money is always an integer number of fen (分, 1/100 yuan) and rates are integer basis points
(1/10,000), so that no amount is ever rounded twice. The ledger itself lives in ``finance``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "BoxDelivery",
    "Dispute",
    "GatewayCallback",
    "GroupBuy",
    "Licence",
    "Listing",
    "ListingPhoto",
    "Payment",
    "Provider",
    "ResidentProfile",
    "Review",
    "ServiceCategory",
    "Slot",
    "StockBatch",
    "Transaction",
    "TransactionEvent",
    "Voucher",
    "VoucherProgramme",
    "WaitlistEntry",
    "WalletTopUp",
]


# --- categories, providers, licences ---------------------------------------------------------------


class ServiceCategory(Base):
    """A kind of service or goods (housekeeping, repairs, fresh food...), with its default commission."""

    __tablename__ = "services_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    #: The operator's commission in basis points (1,500 = 15 %), unless a provider's contract overrides it.
    commission_bps: Mapped[int] = mapped_column(Integer, default=1000)
    #: Licence kinds a provider must hold, valid, to list in this category (e.g. ``["food"]``).
    licence_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def name(self, language: str) -> str:
        """The name in ``language``, falling back to Chinese."""
        return (self.name_en if language == "en" else self.name_zh) or self.name_zh


class Provider(Base):
    """A service-provider organisation's marketplace profile: where it works and on what terms."""

    __tablename__ = "services_providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    #: The service area: a base location and a radius (3 km by default).
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[int] = mapped_column(Integer, default=3000)
    #: Category codes the provider works in.
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Contract overrides of the commission: ``{category_code: basis_points}``.
    commission_overrides: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: active | suspended (by the operator).
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Kept up to date from reviews and responses, for ranking.
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Median minutes from a request to the provider's first answer (accept, decline or quote).
    response_minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def name(self, language: str) -> str:
        """The name in ``language``, falling back to Chinese."""
        return (self.name_en if language == "en" else self.name_zh) or self.name_zh


class Licence(Base):
    """A licence or certificate a provider uploaded (housekeeping, medical, food), with its expiry."""

    __tablename__ = "services_licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("services_providers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(100), default="")
    filename: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    content: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    #: When the 30-day reminder went out (once per licence).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- listings, availability -----------------------------------------------------------------------


class Listing(Base):
    """Something a provider offers, run by one declared process (``process``)."""

    __tablename__ = "services_listings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("services_providers.id"), index=True)
    category_code: Mapped[str] = mapped_column(String(64), index=True)
    #: The process that runs its transactions: instant_booking, request_to_book, quote_repair,
    #: group_buy, membership_box, neighbour_rental.
    process: Mapped[str] = mapped_column(String(32))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    #: How the price is computed on the server: ``{"unit": "hour"|"unit"|"visit"|"box"|"day",
    #: "unit_fen": int, "min_units": int, "surcharges": [{"code", "name_zh", "name_en", "kind":
    #: "fixed"|"percent", "amount": int (fen or basis points), "when": "always"|"option"|"weekend"|"evening"}]}``.
    price_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: ``{"free_until_hours": 24, "late_fee_bps": 5000, "no_show_fee_bps": 10000}``.
    cancellation_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Process settings: ``{"group_min": 5, "group_deadline": iso, "periods": {"month": fen...},
    #: "deposit_fen": int, "accept_hours": 24, ...}``.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: slots (bookable time slots with capacity) | stock (goods by batch) | none.
    availability: Mapped[str] = mapped_column(String(8), default="slots")
    #: draft | active | suspended (licence lapsed, or by the operator) | withdrawn.
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    suspended_reason: Mapped[str] = mapped_column(String(200), default="")
    #: Lower-cased title, description, category and provider names, for search in Chinese and English.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def title(self, language: str) -> str:
        """The title in ``language``, falling back to Chinese."""
        return (self.title_en if language == "en" else self.title_zh) or self.title_zh

    def description(self, language: str) -> str:
        """The description in ``language``, falling back to Chinese."""
        return (self.description_en if language == "en" else self.description_zh) or self.description_zh


class ListingPhoto(Base):
    """A photo of a listing (cleaned of EXIF data like report photos)."""

    __tablename__ = "services_listing_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        ForeignKey("services_listings.id", ondelete="CASCADE"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Slot(Base):
    """A bookable time slot of a listing. ``booked`` never exceeds ``capacity``: it only moves by a
    conditional update (``booked < capacity``), so that two residents cannot take the last place."""

    __tablename__ = "services_slots"
    __table_args__ = (Index("ix_services_slots_listing_start", "listing_id", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("services_listings.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class StockBatch(Base):
    """A batch of goods (a harvest of vegetables, a lot of boxes), sold until ``remaining`` is 0."""

    __tablename__ = "services_stock_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        ForeignKey("services_listings.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    available_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    best_before: Mapped[date | None] = mapped_column(Date, nullable=True)


# --- transactions ---------------------------------------------------------------------------------


class Transaction(Base):
    """One run of a listing's process for one resident: a booking, an order, a group-buy place, a box
    subscription or a rental. ``state`` is a state of the declared process; a pending timer (payment
    expiry, auto-decline, group deadline, review window) sits in ``timer_at``/``timer_transition``."""

    __tablename__ = "services_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process: Mapped[str] = mapped_column(String(32))
    listing_id: Mapped[int] = mapped_column(ForeignKey("services_listings.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("services_providers.id"), index=True)
    resident_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    state_entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The earliest timer armed by the current state, and the transition it fires.
    timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    timer_transition: Mapped[str] = mapped_column(String(32), default="")
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("services_slots.id"), nullable=True, index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("services_stock_batches.id"), nullable=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("services_group_buys.id"), nullable=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    #: The resident's choices that the price rules read (options picked, hours, box period...).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The server-computed quote: lines, total, commission, subsidy.
    quote: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    subsidy_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    deposit_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    captured_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: pay_at_service | wallet | voucher | gateway (a voucher may be combined with another method).
    payment_method: Mapped[str] = mapped_column(String(16), default="")
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("services_vouchers.id"), nullable=True)
    #: Distance in metres from the resident's building to the provider when booked.
    distance_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TransactionEvent(Base):
    """One step of a transaction: the transition taken, by whom, and what its actions did."""

    __tablename__ = "services_transaction_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("services_transactions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    transition: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    #: resident | provider | operator | timer
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class GroupBuy(Base):
    """A group buy (拼团) of a listing: forms when ``members`` reaches ``min_size`` by ``deadline``."""

    __tablename__ = "services_group_buys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("services_listings.id"), index=True)
    min_size: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    members: Mapped[int] = mapped_column(Integer, default=0)
    #: forming | formed | failed
    state: Mapped[str] = mapped_column(String(16), default="forming")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BoxDelivery(Base):
    """One period's delivery of a membership box (会员预售)."""

    __tablename__ = "services_box_deliveries"
    __table_args__ = (UniqueConstraint("transaction_id", "period_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("services_transactions.id", ondelete="CASCADE"))
    period_index: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    #: due | delivered | skipped (paused) | cancelled
    state: Mapped[str] = mapped_column(String(16), default="due")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WaitlistEntry(Base):
    """A resident waiting for a place in a full slot; the first one is booked when a place frees."""

    __tablename__ = "services_waitlist"
    __table_args__ = (UniqueConstraint("slot_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("services_slots.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: waiting | booked | left
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("services_transactions.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Review(Base):
    """One side's review of a transaction. Blind: ``published_at`` is set only when both sides have
    reviewed, or when the review window closes."""

    __tablename__ = "services_reviews"
    __table_args__ = (UniqueConstraint("transaction_id", "side"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("services_transactions.id", ondelete="CASCADE"))
    #: resident (reviews the provider) | provider (reviews the resident)
    side: Mapped[str] = mapped_column(String(16))
    author_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class Dispute(Base):
    """A complaint or dispute about a transaction: a participation work order when that capability
    is installed (``request_id``), otherwise worked in the operator's dispute queue by ``due_at``."""

    __tablename__ = "services_disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("services_transactions.id"), index=True)
    opened_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    #: Amount claimed from the deposit or the price, in fen.
    claim_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: open | resolved
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
    awarded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ResidentProfile(Base):
    """What the marketplace knows of a resident: the building they live in (for distances) and the
    facts voucher eligibility rules read (birth year, tags such as ``low_income``)."""

    __tablename__ = "services_resident_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)


# --- money ----------------------------------------------------------------------------------------


class VoucherProgramme(Base):
    """A voucher or subsidy scheme: who funds it, who is eligible, how much, for what, until when."""

    __tablename__ = "services_voucher_programmes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    #: government_subsidy | operator_promotion
    kind: Mapped[str] = mapped_column(String(32))
    #: The ledger account that pays for it (e.g. ``Liabilities:Subsidy:ElderlyCare``).
    funding_account: Mapped[str] = mapped_column(String(200))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    #: monthly (one voucher per eligible resident per month) | once
    period: Mapped[str] = mapped_column(String(16), default="monthly")
    #: ``{"min_age": 60, "tags_any": ["low_income"], "area_codes": [...]}``; all given keys must hold.
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Category codes it may pay for (empty: any).
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Voucher(Base):
    """One resident's voucher of a programme for one period; used once, by one transaction."""

    __tablename__ = "services_vouchers"
    __table_args__ = (UniqueConstraint("programme_id", "user_id", "period_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("services_voucher_programmes.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: ``2026-11`` for a monthly voucher, ``once`` otherwise.
    period_key: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: issued | used | expired
    state: Mapped[str] = mapped_column(String(16), default="issued")
    used_transaction_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    used_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Payment(Base):
    """Money moving for a transaction through one payment method."""

    __tablename__ = "services_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("services_transactions.id"), index=True)
    #: pay_at_service | wallet | voucher | gateway
    method: Mapped[str] = mapped_column(String(16))
    #: hold | capture | refund | release
    kind: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    #: pending (waiting for a gateway callback or the provider's confirmation) | done | failed
    state: Mapped[str] = mapped_column(String(16), default="done")
    #: The gateway's reference (out_trade_no) for gateway payments.
    reference: Mapped[str] = mapped_column(String(64), default="", index=True)
    #: The ledger entry that recorded it.
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GatewayCallback(Base):
    """Every callback an online payment gateway made, verified or not (kept for disputes)."""

    __tablename__ = "services_gateway_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reference: Mapped[str] = mapped_column(String(64), default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")


class WalletTopUp(Base):
    """Money a resident put into their wallet: at the service desk (bank transfer or cash, entered
    by operator staff) or through the online gateway (pending until its signed callback)."""

    __tablename__ = "services_wallet_topups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    #: bank | cash | gateway
    via: Mapped[str] = mapped_column(String(16))
    #: pending (waiting for the gateway) | done | failed
    state: Mapped[str] = mapped_column(String(16), default="done")
    #: The gateway's reference (out_trade_no) for gateway top-ups.
    reference: Mapped[str] = mapped_column(String(64), default="", index=True)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
