"""The resident's profile page: choose the building or unit you live in (phone-first)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor
from zhishe.core.context import current_language
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.i18n import T, localize
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.services import profiles

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_PATH = "/services/profile"


def safe_next(value: object) -> str:
    """``value`` when it is a path on this site (one leading ``/``), else an empty string."""
    text = value if isinstance(value, str) else ""
    if not text.startswith("/") or text.startswith("//") or "\\" in text or len(text) > 2000:
        return ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return ""
    parts = urlsplit(text)
    return text if not parts.scheme and not parts.netloc else ""


def _page(
    request: Request, session: Session, actor: Actor, next_url: str, *, error: str = "", status: int = 200
) -> Response:
    profile = profiles.get(session, actor=actor)
    current = session.get(Area, profile.area_id) if profile and profile.area_id is not None else None
    return render(
        request,
        "services/profile_page.html",
        {
            "current": current,
            "choices": profiles.choices(session, current_language.get()),
            "next_url": next_url,
            "error": error,
            "saved": request.query_params.get("saved") == "1",
        },
        status=status,
    )


@router.get(_PATH)
def profile_page(request: Request, session: SessionDep, actor: PageActor, next: str = "") -> Response:
    """The building the resident lives in, and the form to change it."""
    return _page(request, session, actor, safe_next(next))


@router.post(_PATH)
async def save_profile(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Save the chosen building, then go back where the resident came from."""
    form = await request.form()
    check_csrf(request, form)
    next_url = safe_next(form.get("next"))
    try:
        raw = str(form.get("area_id") or "").strip()
        if not raw.isdigit() or len(raw) > 10:
            raise Invalid(T("choose the building you live in"), detail={"field": "area_id"})
        profiles.set_building(session, actor=actor, area_id=int(raw))
    except ZhisheError as exc:
        session.rollback()
        return _page(request, session, actor, next_url, error=localize(exc.message), status=exc.status_code)
    return redirect(next_url or f"{_PATH}?saved=1")
