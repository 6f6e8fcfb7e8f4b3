"""Tables of the catalog: datasets, their columns, versions, definition changes and import jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhishe.core.db import Base, UTCDateTime

__all__ = ["Dataset", "DatasetColumn", "DatasetVersion", "DefinitionChange", "ImportJob"]


class Dataset(Base):
    """A dataset's metadata (DCAT-AP 3 fields) and its sharing class."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title_zh: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300), default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    theme: Mapped[str] = mapped_column(String(64), default="", index=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    licence: Mapped[str] = mapped_column(String(100), default="")
    accrual_periodicity: Mapped[str] = mapped_column(String(32), default="irregular", index=True)
    temporal_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    temporal_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    spatial: Mapped[str] = mapped_column(String(300), default="")
    sharing_class: Mapped[str] = mapped_column(String(16), index=True)
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    sharing_conditions: Mapped[str] = mapped_column(Text, default="")
    time_column: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    next_row_id: Mapped[int] = mapped_column(Integer, default=0)
    latest_period: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    overdue_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    columns: Mapped[list[DatasetColumn]] = relationship(
        order_by="DatasetColumn.position", cascade="all, delete-orphan", lazy="selectin"
    )

    def title(self, language: str) -> str:
        """The title in ``language``, falling back to Chinese."""
        return (self.title_en if language == "en" else self.title_zh) or self.title_zh

    def description(self, language: str) -> str:
        """The description in ``language``, falling back to Chinese."""
        return (self.description_en if language == "en" else self.description_zh) or self.description_zh


class DatasetColumn(Base):
    """One typed, classified column of a dataset's schema."""

    __tablename__ = "dataset_columns"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(50), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    is_key: Mapped[bool] = mapped_column(Boolean, default=False)
    classification: Mapped[str] = mapped_column(String(16), default="internal")


class DatasetVersion(Base):
    """One committed version: who, when, how, with what result."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mode: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    source_name: Mapped[str] = mapped_column(String(300), default="")
    source_format: Mapped[str] = mapped_column(String(16), default="")
    source_encoding: Mapped[str] = mapped_column(String(32), default="")
    rows_in_file: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rows_inserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_deleted: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reject_file: Mapped[str | None] = mapped_column(String(300), nullable=True)


class DefinitionChange(Base):
    """A change of a column's declared type, unit, description, classification or key flag."""

    __tablename__ = "definition_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    after_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    column: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[str] = mapped_column(Text, default="")
    new: Mapped[str] = mapped_column(Text, default="")


class ImportJob(Base):
    """An upload on its way to becoming a version: staged, running, done or failed."""

    __tablename__ = "import_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="staged")
    stage: Mapped[str] = mapped_column(String(32), default="")
    progress: Mapped[float] = mapped_column(default=0.0)
    filename: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(Integer, default=0)
    format: Mapped[str] = mapped_column(String(16), default="")
    encoding: Mapped[str] = mapped_column(String(32), default="")
    mode: Mapped[str] = mapped_column(String(16), default="append")
    skip_bad_rows: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
