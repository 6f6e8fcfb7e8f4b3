"""Login and logout pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zhishe.core.accounts import service as accounts
from zhishe.core.deps import SESSION_COOKIE, OptionalActor, SessionDep, SettingsDep
from zhishe.core.errors import RateLimited, Unauthenticated
from zhishe.core.i18n import gettext as _
from zhishe.core.web.shell import check_csrf, redirect, render

router = APIRouter(include_in_schema=False)


def _safe_next(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, actor: OptionalActor, next: str = "/") -> Response:
    if actor is not None:
        return redirect(_safe_next(next))
    return render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await request.form()
    check_csrf(request, form)
    username = str(form.get("username", ""))
    next_url = _safe_next(form.get("next"))
    try:
        result = accounts.login(
            session=session,
            username=username,
            password=str(form.get("password", "")),
            address=request.client.host if request.client else "",
            max_failures=settings.login_max_failures,
            window_minutes=settings.login_window_minutes,
            session_hours=settings.session_hours,
        )
    except RateLimited:
        session.commit()
        message = _("Too many failed attempts for this account. Try again later.")
        return render(
            request, "login.html", {"message": message, "username": username, "next": next_url}, status=429
        )
    except Unauthenticated:
        session.commit()
        message = _("Wrong username or password.")
        return render(
            request, "login.html", {"message": message, "username": username, "next": next_url}, status=401
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        result.cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=settings.session_hours * 3600,
        path="/",
    )
    if result.user.language:
        response.set_cookie("zhishe_lang", result.user.language, samesite="lax", path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, actor: OptionalActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    accounts.logout(session=session, cookie=request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
