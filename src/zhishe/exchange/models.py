"""Tables of the exchange: sharing requests, grants, the working-day calendar, subscriptions and
webhook deliveries, data issues with their threads, and derived datasets with their lineage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "DataIssue",
    "DataIssueEvent",
    "DerivedDataset",
    "Grant",
    "GrantUse",
    "Holiday",
    "LineageEdge",
    "ShareRequest",
    "Subscription",
    "WebhookDelivery",
]


class Holiday(Base):
    """A day of the working-day calendar that differs from the Monday-to-Friday week: a public
    holiday (``is_workday`` false) or a weekend day worked in exchange (调休上班, true)."""

    __tablename__ = "exchange_holidays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    is_workday: Mapped[bool] = mapped_column(Boolean, default=False)


class ShareRequest(Base):
    """An apply-reply request for another organisation's dataset, and the owner's answer."""

    __tablename__ = "exchange_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    requester_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    requester_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requester: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    row_filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    min_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    starts_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True, default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_by: Mapped[str] = mapped_column(String(100), default="")
    answered_for_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    narrowed: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class Grant(Base):
    """What an approved request allows: columns, rows, versions and a period. Checked on every read."""

    __tablename__ = "exchange_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_requests.id", ondelete="CASCADE"), unique=True
    )
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    grantee_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    purpose: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    row_filter: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    min_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mode: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(100), default="")
    revoke_reason: Mapped[str] = mapped_column(Text, default="")


class Subscription(Base):
    """A grantee's wish to hear of new versions: in the app always, by signed webhook if given."""

    __tablename__ = "exchange_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("exchange_grants.id", ondelete="CASCADE"), unique=True)
    webhook_url: Mapped[str] = mapped_column(String(1000), default="")
    secret: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    """One event on its way to a subscriber's webhook, with every attempt's outcome."""

    __tablename__ = "exchange_webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DataIssue(Base):
    """A problem found in a dataset version by one of its readers, on its way to a fixed version."""

    __tablename__ = "exchange_data_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    key_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    column: Mapped[str] = mapped_column(String(100), default="")
    problem: Mapped[str] = mapped_column(Text)
    suggested_value: Mapped[str] = mapped_column(Text, default="")
    period: Mapped[str] = mapped_column(String(40), default="")
    reporter: Mapped[str] = mapped_column(String(100))
    reporter_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reporter_org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reporter_contact: Mapped[str] = mapped_column(String(254), default="")
    state: Mapped[str] = mapped_column(String(16), index=True, default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fixed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DataIssueEvent(Base):
    """One entry of a data issue's thread: a comment, or a change of state with its reason."""

    __tablename__ = "exchange_data_issue_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_data_issues.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # comment | state
    state: Mapped[str] = mapped_column(String(16), default="")
    body: Mapped[str] = mapped_column(Text, default="")


class DerivedDataset(Base):
    """A dataset materialised from a SELECT over granted views, and the versions it was built from."""

    __tablename__ = "exchange_derived"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), unique=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    sql: Mapped[str] = mapped_column(Text)
    sources: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # view name -> source dataset id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    is_stale: Mapped[bool] = mapped_column(Boolean, default=False)


class LineageEdge(Base):
    """A derived dataset's version was built from a source dataset's version."""

    __tablename__ = "exchange_lineage"
    __table_args__ = (UniqueConstraint("derived_dataset_id", "derived_version", "source_dataset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    derived_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    derived_version: Mapped[int] = mapped_column(Integer)
    source_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    source_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GrantUse(Base):
    """One read through a grant: who, which version, which columns, how many rows, by which channel."""

    __tablename__ = "exchange_grant_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("exchange_grants.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    rows: Mapped[int] = mapped_column(Integer, default=0)
