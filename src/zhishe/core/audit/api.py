"""JSON routes of the audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from zhishe.core.audit import service
from zhishe.core.audit.schemas import AuditEventPage, AuditEventRead, VerifyRead
from zhishe.core.deps import CurrentActor, IdQuery, SessionDep
from zhishe.core.web.links import link_next

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/events", response_model=AuditEventPage)
def list_events(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    user: str | None = None,
    org_id: IdQuery = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditEventPage:
    """Audit events, newest first, filtered by user, organisation, object, action and time."""
    page = service.list_events(
        session=session,
        actor=actor,
        user=user,
        org_id=org_id,
        object_type=object_type,
        object_id=object_id,
        action=action,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    link_next(response, page.next)
    return AuditEventPage(items=[AuditEventRead.model_validate(e) for e in page.items], next=page.next)


@router.get("/verify", response_model=VerifyRead)
def verify(session: SessionDep, actor: CurrentActor) -> VerifyRead:
    """Walk the hash chain and report whether it is intact."""
    result = service.verify(session=session, actor=actor)
    return VerifyRead(ok=result.ok, count=result.count, broken_at=result.broken_at, reason=result.reason)
