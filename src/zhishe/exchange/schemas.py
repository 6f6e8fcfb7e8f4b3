"""Shapes of sharing requests, answers, grants, subscriptions and usage on the API."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhishe.core.db import MAX_ID

__all__ = [
    "AccessMode",
    "GrantPage",
    "GrantRead",
    "NarrowIn",
    "ReasonIn",
    "ReassignIn",
    "RequestIn",
    "RequestPage",
    "RequestRead",
    "RequestState",
    "SubscriptionIn",
    "SubscriptionRead",
    "UsageRow",
]


class AccessMode(StrEnum):
    """How the granted data may be used."""

    QUERY = "query"
    EXPORT = "export"
    SUBSCRIPTION = "subscription"


class RequestState(StrEnum):
    """The states of an apply-reply request."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    NARROWED = "narrowed"  # approved with a narrower scope
    REJECTED = "rejected"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class RequestIn(BaseModel):
    """A request for another organisation's dataset."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=100, description="Dataset id or slug.")
    purpose: str = Field(min_length=1, max_length=4000)
    legal_basis: str = Field(min_length=1, max_length=4000)
    columns: list[str] = Field(min_length=1, max_length=500)
    row_filter: dict[str, Any] | None = Field(
        None, description='A structured row filter, e.g. {"column": "district", "op": "=", "value": "东城"}.'
    )
    min_version: int | None = Field(None, ge=0, le=MAX_ID, description="Only versions from this one on.")
    starts_on: date
    expires_on: date
    mode: AccessMode
    submit: bool = Field(False, description="Submit at once instead of keeping a draft.")


class NarrowIn(BaseModel):
    """An approval with a narrower scope: fewer columns, fewer rows, later versions or a shorter period."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)
    columns: list[str] | None = Field(None, min_length=1, max_length=500)
    row_filter: dict[str, Any] | None = Field(None, description="Added to the requested filter (AND).")
    min_version: int | None = Field(None, ge=0, le=MAX_ID)
    starts_on: date | None = None
    expires_on: date | None = None


class ReasonIn(BaseModel):
    """A reason, required to reject or revoke."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)


class ReassignIn(BaseModel):
    """The data bureau hands an overdue request to a named steward of the owner."""

    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(
        min_length=1, max_length=64, description="Username of a steward or admin of the owner."
    )
    reason: str = Field("", max_length=4000)


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset_id: int
    owner_org_id: int
    requester_org_id: int
    requester: str
    purpose: str
    legal_basis: str
    columns: list[str]
    row_filter: dict[str, Any] | None
    min_version: int | None
    starts_on: date
    expires_on: date
    mode: str
    state: str
    created_at: datetime
    submitted_at: datetime | None
    due_at: datetime | None
    overdue: bool = False
    escalated_at: datetime | None
    answered_at: datetime | None
    answered_by: str
    answered_for_owner: bool
    narrowed: bool
    reason: str
    grant_id: int | None = None


class RequestPage(BaseModel):
    items: list[RequestRead]
    next: str | None = None


class GrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    request_id: int
    dataset_id: int
    owner_org_id: int
    grantee_org_id: int
    purpose: str
    columns: list[str]
    row_filter: dict[str, Any] | None
    min_version: int | None
    mode: str
    starts_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str
    active: bool = False


class GrantPage(BaseModel):
    items: list[GrantRead]
    next: str | None = None


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: str = Field("", max_length=1000, description="Empty: in-app notifications only.")


class SubscriptionRead(BaseModel):
    id: int
    grant_id: int
    webhook_url: str
    secret: str | None = Field(None, description="Shown once, when the webhook is set.")
    is_active: bool


class UsageRow(BaseModel):
    grant_id: int
    org_id: int | None
    purpose: str
    reads: int
    rows: int
    last_read_at: datetime | None


class IssueIn(BaseModel):
    """A problem found in a dataset version."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=100)
    kind: str = Field(description="value (a wrong value), missing_period or definition (a question)")
    problem: str = Field(min_length=1, max_length=4000)
    version: int | None = Field(None, ge=0, le=MAX_ID)
    key_values: dict[str, str | int | float | bool] | None = Field(
        None, description="The affected row's key values"
    )
    column: str = Field("", max_length=100)
    suggested_value: str = Field("", max_length=4000)
    period: str = Field("", max_length=40)


class TriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str = Field(description="accepted, rejected or needs_info")
    reason: str = Field("", max_length=4000)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=4000)


class FixIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=MAX_ID, description="The version that fixes the issue")
    note: str = Field("", max_length=4000)


class EditIn(BaseModel):
    """Correct one cell: the issue's row and column unless others are named."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=4000, description="The corrected value; empty for null")
    reason: str = Field(min_length=1, max_length=4000)
    key_values: dict[str, str | int | float | bool] | None = None
    column: str | None = Field(None, max_length=100)


class IssueEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    kind: str
    state: str
    body: str


class IssueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset_id: int
    owner_org_id: int
    version: int | None
    kind: str
    key_values: dict[str, Any]
    column: str
    problem: str
    suggested_value: str
    period: str
    reporter: str
    reporter_contact: str = Field(
        "", description="A public reporter's contact (only the owner can read issues)"
    )
    state: str
    created_at: datetime
    updated_at: datetime
    fixed_version: int | None
    fixed_at: datetime | None
    thread: list[IssueEventRead] = []


class IssuePage(BaseModel):
    items: list[IssueRead]
    next: str | None = None


class DerivedIn(BaseModel):
    """A derived dataset: one SELECT over your granted views."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,99}$")
    title_zh: str = Field(min_length=1, max_length=300)
    title_en: str = Field("", max_length=300)
    sql: str = Field(
        min_length=1, max_length=200_000, description="DuckDB SELECT over the views of GET /exchange/views"
    )
