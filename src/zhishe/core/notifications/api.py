"""JSON routes of notifications: list your own, count the unread, mark them read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, SessionDep
from zhishe.core.i18n import localize_stored
from zhishe.core.notifications import service
from zhishe.core.web.links import link_next

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationRead(BaseModel):
    id: int
    kind: str
    message: str
    link: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationRead]
    unread: int
    next: str | None = None


class MarkRead(BaseModel):
    ids: list[Annotated[int, Field(ge=1)]] | None = Field(None, max_length=1000, description="None: all")


def _read(n: Any) -> NotificationRead:
    return NotificationRead(
        id=n.id,
        kind=n.kind,
        message=localize_stored(n.message),
        link=n.link,
        created_at=n.created_at,
        read_at=n.read_at,
    )


@router.get("", response_model=NotificationPage)
def list_notifications(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    unread: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    """Your notifications, newest first, in the request's language."""
    page = service.list_for(session=session, actor=actor, unread_only=unread, after=after, limit=limit)
    link_next(response, page.next, {"unread": unread or None, "limit": limit})
    return NotificationPage(
        items=[_read(n) for n in page.items],
        unread=service.unread_count(session=session, actor=actor),
        next=page.next,
    )


@router.post("/read")
def mark_read(data: MarkRead, session: SessionDep, actor: CurrentActor) -> dict[str, int]:
    """Mark the given notifications (or all of yours) read."""
    return {"marked": service.mark_read(session=session, actor=actor, ids=data.ids)}
