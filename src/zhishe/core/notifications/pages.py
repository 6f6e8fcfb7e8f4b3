"""The notifications page: the user's own notifications, newest first, and "mark all read"."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from zhishe.core.deps import SessionDep
from zhishe.core.notifications import service
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, session: SessionDep, actor: PageActor, after: str = "") -> Response:
    page = service.list_for(session=session, actor=actor, after=after or None, limit=50)
    return render(request, "notifications/list.html", {"items": page.items, "next": page.next})


@router.post("/notifications/read", response_class=HTMLResponse)
async def read_all(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    service.mark_read(session=session, actor=actor)
    return redirect("/notifications")
