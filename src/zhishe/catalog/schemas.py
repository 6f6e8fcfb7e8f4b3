"""Shapes of datasets, columns, versions, imports and row pages on the API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zhishe.catalog.types import Classification, ColumnSpec, ColumnType
from zhishe.core.db import MAX_ID

__all__ = [
    "CADENCES",
    "ColumnIn",
    "ColumnRead",
    "DatasetCreate",
    "DatasetPage",
    "DatasetRead",
    "DatasetUpdate",
    "DefinitionChangeRead",
    "ImportReport",
    "ImportRun",
    "QueryIn",
    "RowsPage",
    "SharingClass",
    "VersionRead",
]

_SLUG = r"^[a-z0-9][a-z0-9-]{1,99}$"
_COLUMN = r"^[^\x00-\x1f\"`]{1,100}$"

#: DCAT accrualPeriodicity values, as short names of the EU frequency vocabulary.
CADENCES = (
    "continuous",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "annual",
    "irregular",
    "never",
)


class SharingClass(StrEnum):
    """共享类别 (sharing classes)."""

    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


class ColumnIn(BaseModel):
    name: str = Field(pattern=_COLUMN)
    type: ColumnType
    unit: str = Field("", max_length=50)
    description: str = Field("", max_length=2000)
    is_key: bool = False
    classification: Classification = Classification.INTERNAL

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.strip() != value or value.startswith("_"):
            raise ValueError("a column name may not start with '_' or have surrounding spaces")
        return value

    @classmethod
    def from_spec(cls, spec: ColumnSpec) -> ColumnIn:
        """The API shape of a column spec."""
        return cls(
            name=spec.name,
            type=spec.type,
            unit=spec.unit,
            description=spec.description,
            is_key=spec.is_key,
            classification=spec.classification,
        )

    def to_spec(self) -> ColumnSpec:
        """The column spec the import pipeline and the lake use."""
        return ColumnSpec(
            name=self.name,
            type=self.type,
            unit=self.unit,
            description=self.description,
            is_key=self.is_key,
            classification=self.classification,
        )


class ColumnRead(ColumnIn):
    model_config = ConfigDict(from_attributes=True)
    position: int


class DatasetBase(BaseModel):
    title_zh: str = Field(min_length=1, max_length=300)
    title_en: str = Field("", max_length=300)
    description_zh: str = Field("", max_length=20000)
    description_en: str = Field("", max_length=20000)
    theme: str = Field("", max_length=64)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    contact_name: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=254)
    licence: str = Field("", max_length=100)
    accrual_periodicity: Literal[
        "continuous", "hourly", "daily", "weekly", "monthly", "quarterly", "annual", "irregular", "never"
    ] = "irregular"
    temporal_start: date | None = None
    temporal_end: date | None = None
    spatial: str = Field("", max_length=300)
    sharing_class: SharingClass
    legal_basis: str = Field("", max_length=5000)
    sharing_conditions: str = Field("", max_length=5000, description="Conditions of 有条件共享 datasets")
    time_column: str | None = None
    source: str = Field("", max_length=5000)


class DatasetCreate(DatasetBase):
    slug: str = Field(pattern=_SLUG, description="Stable short name used in URLs")
    owner_org_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Defaults to the creator's organisation"
    )
    columns: list[ColumnIn] = Field(default_factory=list, description="Leave empty to infer on first import")

    @model_validator(mode="after")
    def _rules(self) -> DatasetCreate:
        _check_common(self)
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column name(s): {', '.join(dupes)}")
        if self.time_column and self.columns and self.time_column not in names:
            raise ValueError(f"time_column {self.time_column!r} is not one of the columns")
        return self


def _check_common(model: DatasetBase | DatasetUpdate) -> None:
    if (
        getattr(model, "sharing_class", None) == SharingClass.NOT_SHARED
        and not (model.legal_basis or "").strip()
    ):
        raise ValueError("a dataset that is not shared (不予共享) needs a legal basis")
    start, end = getattr(model, "temporal_start", None), getattr(model, "temporal_end", None)
    if start and end and end < start:
        raise ValueError("temporal_end is before temporal_start")


class DatasetUpdate(BaseModel):
    """A partial change of metadata and/or column definitions (each column change is recorded)."""

    title_zh: str | None = Field(None, min_length=1, max_length=300)
    title_en: str | None = Field(None, max_length=300)
    description_zh: str | None = Field(None, max_length=20000)
    description_en: str | None = Field(None, max_length=20000)
    theme: str | None = Field(None, max_length=64)
    keywords: list[str] | None = Field(None, max_length=50)
    contact_name: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=254)
    licence: str | None = Field(None, max_length=100)
    accrual_periodicity: (
        Literal[
            "continuous", "hourly", "daily", "weekly", "monthly", "quarterly", "annual", "irregular", "never"
        ]
        | None
    ) = None
    temporal_start: date | None = None
    temporal_end: date | None = None
    spatial: str | None = Field(None, max_length=300)
    sharing_class: SharingClass | None = None
    legal_basis: str | None = Field(None, max_length=5000)
    sharing_conditions: str | None = Field(None, max_length=5000)
    time_column: str | None = None
    source: str | None = Field(None, max_length=5000)
    columns: list[ColumnIn] | None = None


class DatasetRead(DatasetBase):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    owner_org_id: int
    created_at: datetime
    updated_at: datetime
    current_version: int | None
    row_count: int
    latest_period: datetime | None = None
    overdue: bool = False
    columns: list[ColumnRead] = Field(default_factory=list)
    restricted: bool = Field(False, description="True when only title, owner and legal basis may be shown")


class DatasetPage(BaseModel):
    items: list[DatasetRead]
    next: str | None = None
    facets: dict[str, dict[str, int]] = Field(default_factory=dict)


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    created_at: datetime
    actor: str
    mode: str
    note: str
    source_name: str
    source_format: str
    source_encoding: str
    rows_in_file: int
    rows_rejected: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    row_count: int
    has_reject_file: bool = False


class DefinitionChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    after_version: int | None
    changed_at: datetime
    actor: str
    column: str
    field: str
    old: str
    new: str


class IssueRead(BaseModel):
    row: int | None
    column: str | None
    value: str | None
    reason: str


class ImportReport(BaseModel):
    """What an import did, or why it changed nothing."""

    job_id: str
    status: Literal["done", "failed", "running", "staged"]
    dataset_id: int
    version: int | None = None
    mode: str
    format: str = ""
    encoding: str = ""
    rows_in_file: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    rows_unchanged: int = 0
    committed: bool = True
    issue_count: int = 0
    issues: list[IssueRead] = Field(default_factory=list)
    issues_by_column: dict[str, int] = Field(default_factory=dict)
    message: str = ""
    reject_file: bool = False
    progress: float = 0.0
    stage: str = ""


class ImportRun(BaseModel):
    """Confirm a staged upload: how to import it and, on a first import, the corrected columns."""

    mode: Literal["append", "replace", "upsert"] = "append"
    skip_bad_rows: bool = False
    note: str = Field("", max_length=2000)
    columns: list[ColumnIn] | None = None


class QueryIn(BaseModel):
    """A structured read: projection, filter, order, keyset paging and version."""

    version: int | None = Field(None, ge=0, le=MAX_ID)
    select: list[str] | None = None
    where: dict[str, Any] | None = Field(
        None, description='e.g. {"column": "district", "op": "=", "value": "东城"}'
    )
    order: list[tuple[str, Literal["asc", "desc"]]] | None = None
    after: str | None = None
    limit: int = Field(50, ge=1, le=10000)
    with_total: bool = False


class RowsPage(BaseModel):
    dataset_id: int
    version: int
    columns: list[str]
    rows: list[dict[str, Any]]
    next: str | None = None
    total: int | None = None
