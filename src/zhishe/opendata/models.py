"""Tables of open data: a dataset's open settings, its releases, usage counters, app tokens and
the public's data requests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = ["AppToken", "DataRequest", "DataRequestSupport", "OpenDataset", "Release", "UsageDay"]


class OpenDataset(Base):
    """How a catalog dataset is opened: its de-identification policy, cadence and DP budget."""

    __tablename__ = "opendata_datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), unique=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cadence: Mapped[str] = mapped_column(String(16), default="irregular")
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    order_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    chart: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dp_budget: Mapped[float] = mapped_column(Float, default=1.0)
    dp_spent: Mapped[float] = mapped_column(Float, default=0.0)
    latest_release: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Release(Base):
    """A snapshot of a dataset version through a policy: a draft until published, then immutable."""

    __tablename__ = "opendata_releases"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    source_version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(16))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    risk: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    definition_changed: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    store_key: Mapped[str] = mapped_column(String(100))
    order_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    temporal_start: Mapped[str] = mapped_column(String(40), default="")
    temporal_end: Mapped[str] = mapped_column(String(40), default="")
    freshness: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_by: Mapped[str] = mapped_column(String(100), default="")


class UsageDay(Base):
    """Downloads and API calls of one dataset on one day."""

    __tablename__ = "opendata_usage"
    __table_args__ = (UniqueConstraint("dataset_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)


class AppToken(Base):
    """A developer's application token, sent as ``X-App-Token``; only its hash is kept."""

    __tablename__ = "opendata_app_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DataRequest(Base):
    """The public asking for data that is not open yet; answered by a release or a public reason."""

    __tablename__ = "opendata_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(254), default="")
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    supporters: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str] = mapped_column(String(100), default="")
    release_id: Mapped[int | None] = mapped_column(ForeignKey("opendata_releases.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class DataRequestSupport(Base):
    """One supporter of a data request, known only by a keyed hash (no address is stored)."""

    __tablename__ = "opendata_request_supports"
    __table_args__ = (UniqueConstraint("request_id", "supporter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("opendata_requests.id", ondelete="CASCADE"), index=True
    )
    supporter: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
