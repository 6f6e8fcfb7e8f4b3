"""The audit page: events filtered by user, organisation, object and time."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from zhishe.core.audit import service
from zhishe.core.auth import can
from zhishe.core.config import get_settings
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.pagination import is_number
from zhishe.core.web.shell import PageActor, render

router = APIRouter(include_in_schema=False)


def _when(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{name}: {value!r} is not a date or datetime", detail={"parameter": name}) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=get_settings().tz)


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    user: str = "",
    org_id: str = "",
    object_type: str = "",
    object_id: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    after: str = "",
) -> Response:
    if org_id and not is_number(org_id):
        raise Invalid("org_id must be a number", detail={"parameter": "org_id"})
    page = service.list_events(
        session=session,
        actor=actor,
        user=user or None,
        org_id=int(org_id) if org_id else None,
        object_type=object_type or None,
        object_id=object_id or None,
        action=action or None,
        since=_when(since, "since"),
        until=_when(until, "until"),
        after=after or None,
        limit=100,
    )
    verify = (
        service.verify(session=session, actor=actor)
        if can(actor, "audit.verify") and request.query_params.get("verify")
        else None
    )
    filters = {
        "user": user,
        "org_id": org_id,
        "object_type": object_type,
        "object_id": object_id,
        "action": action,
        "since": since,
        "until": until,
    }
    return render(
        request,
        "audit/events.html",
        {
            "events": page.items,
            "next": page.next,
            "filters": filters,
            "verify": verify,
            "can_verify": can(actor, "audit.verify"),
        },
    )
