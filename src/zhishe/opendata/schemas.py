"""Shapes of the open-data API: open settings, releases with their risk report, the portal's
dataset view, data requests and app tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AppTokenCreated",
    "AppTokenIn",
    "AppTokenRead",
    "DataRequestIn",
    "DataRequestRead",
    "DatasetHit",
    "DraftIn",
    "OpenSettingsIn",
    "OpenSettingsRead",
    "ProblemIn",
    "ProblemRead",
    "PublicDatasetRead",
    "PublishIn",
    "ReleaseRead",
    "RequestAnswerIn",
    "RequestDeclineIn",
    "RequestRouteIn",
    "SearchPage",
    "SqlIn",
]


class OpenSettingsIn(BaseModel):
    """How a dataset is opened; every field is optional and only what is given changes."""

    model_config = ConfigDict(extra="forbid")

    policy: dict[str, Any] | None = Field(
        None, description="The de-identification policy (see the API guide)"
    )
    cadence: str | None = Field(None, max_length=16)
    featured: bool | None = None
    order_by: list[str] | None = Field(None, max_length=8)
    chart: dict[str, Any] | None = None
    dp_budget: float | None = Field(None, gt=0, le=100)


class OpenSettingsRead(BaseModel):
    """A dataset's open-data settings."""

    model_config = ConfigDict(from_attributes=True)

    policy: dict[str, Any]
    cadence: str
    featured: bool
    order_by: list[str]
    chart: dict[str, Any]
    dp_budget: float
    dp_spent: float
    latest_release: int | None
    last_published_at: datetime | None


class DraftIn(BaseModel):
    """Draft a release from a version (latest when absent), optionally with another policy."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=0, le=2**31 - 1)
    policy: dict[str, Any] | None = None


class PublishIn(BaseModel):
    """Publish a draft; a definition change needs a note."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=4000)


class ReleaseRead(BaseModel):
    """A release or draft, with its risk report and changelog entry."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset: str = ""
    number: int | None
    state: str
    source_version: int
    model: str
    policy: dict[str, Any]
    risk: dict[str, Any]
    columns: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    definition_changed: bool
    note: str
    row_count: int
    epsilon: float | None
    temporal_start: str
    temporal_end: str
    created_at: datetime
    published_at: datetime | None
    url: str = ""


class DatasetHit(BaseModel):
    """One open dataset in a search result."""

    slug: str
    title: str
    description: str
    theme: str
    publisher: str
    cadence: str
    formats: list[str]
    latest_release: int
    published_at: datetime | None
    overdue_days: int
    url: str


class SearchPage(BaseModel):
    """Search results with facet counts."""

    total: int
    items: list[DatasetHit]
    facets: dict[str, dict[str, int]]


class PublicDatasetRead(BaseModel):
    """An open dataset on the portal: metadata, schema, releases, timeliness and usage."""

    slug: str
    title: str
    title_zh: str
    title_en: str
    description: str
    theme: str
    keywords: list[str]
    publisher: str
    licence: str
    cadence: str
    overdue_days: int
    missing_periods: list[str]
    missing_count: int
    downloads: int
    api_calls: int
    columns: list[dict[str, Any]]
    releases: list[ReleaseRead]
    links: dict[str, str]


class ProblemIn(BaseModel):
    """A problem with open data, reported by anyone."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["value", "missing_period", "definition"] = "value"
    problem: str = Field(..., min_length=1, max_length=4000)
    column: str = Field("", max_length=100)
    period: str = Field("", max_length=40)
    contact: str = Field("", max_length=254)
    release: int | None = Field(None, ge=1, le=2**31 - 1)


class ProblemRead(BaseModel):
    """The data issue opened for a reported problem."""

    issue: int
    state: str
    message: str


class DataRequestIn(BaseModel):
    """A request for data that is not open yet."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., min_length=1, max_length=200)
    description: str = Field(..., min_length=1, max_length=4000)
    purpose: str = Field("", max_length=4000)
    contact: str = Field("", max_length=254)
    owner_org_id: int | None = Field(None, ge=1, le=2**31 - 1)
    dataset: str | None = Field(None, max_length=100)


class DataRequestRead(BaseModel):
    """A data request as the public sees it (the contact only for the owner)."""

    id: int
    title: str
    description: str
    purpose: str
    owner: str
    owner_org_id: int
    state: str
    supporters: int
    created_at: datetime
    due_at: datetime
    overdue: bool
    closed_at: datetime | None
    reason: str
    answer: str | None = None
    contact: str = ""


class RequestAnswerIn(BaseModel):
    """Answer a request with a published release."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(..., min_length=1, max_length=100)
    release: int | None = Field(None, ge=1, le=2**31 - 1)


class RequestDeclineIn(BaseModel):
    """Decline a request, with a public reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(..., min_length=1, max_length=4000)


class RequestRouteIn(BaseModel):
    """Send a request to another owner."""

    model_config = ConfigDict(extra="forbid")

    owner_org_id: int = Field(..., ge=1, le=2**31 - 1)


class AppTokenIn(BaseModel):
    """Register an application."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)


class AppTokenRead(BaseModel):
    """An app token, without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class AppTokenCreated(AppTokenRead):
    """A new app token: the secret is shown this once."""

    token: str


class SqlIn(BaseModel):
    """A query for the SQL endpoint."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        ..., min_length=1, max_length=32768, description='One SELECT; datasets as "slug" or "slug@N"'
    )
    rows: int | str | None = Field(None, description="Row cap (default 1,000, at most 50,000)")
