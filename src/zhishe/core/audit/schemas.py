"""Shapes of audit events on the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["AuditEventPage", "AuditEventRead", "VerifyRead"]


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    occurred_at: datetime
    actor: str
    actor_user_id: int | None
    org_id: int | None
    action: str
    object_type: str
    object_id: str
    object_org_id: int | None
    request_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    @field_validator("detail", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        import json

        return json.loads(value) if isinstance(value, str) else value


class AuditEventPage(BaseModel):
    items: list[AuditEventRead]
    next: str | None = None


class VerifyRead(BaseModel):
    ok: bool
    count: int
    broken_at: int | None = None
    reason: str = ""
