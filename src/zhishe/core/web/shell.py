"""Rendering pages: the Jinja2 environment, CSRF tokens, the language, and the page-actor guard."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.deps import optional_actor
from zhishe.core.errors import Forbidden, ZhisheError
from zhishe.core.i18n import LANGUAGES, gettext, localize, localize_stored, ngettext
from zhishe.core.vocabulary import REASON_PHRASES

__all__ = ["CSRF_COOKIE", "LoginRequired", "PageActor", "check_csrf", "register_templates", "render"]

CSRF_COOKIE = "zhishe_csrf"
_ROOT = Path(__file__).resolve().parents[2]
_template_dirs: list[Path] = [Path(__file__).parent / "templates"]
_env: Environment | None = None


def register_templates(directory: Path) -> None:
    """Add a domain's templates folder (called once per domain at start-up)."""
    global _env
    if directory not in _template_dirs:
        _template_dirs.append(directory)
        _env = None


def _format_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(get_settings().tz).strftime(fmt)


def _format_value(value: object) -> str:
    """A profile or cell value for display: ISO datetimes with an offset in the platform timezone."""
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T" and value[-6] in "+-":
        try:
            return _format_dt(datetime.fromisoformat(value), "%Y-%m-%d %H:%M")
        except ValueError:
            return value
    return "" if value is None else str(value)


def _reason(text: str | None) -> str:
    """An import report's reason ("'abc' is not an integer") with its phrase in the page's language."""
    if not text:
        return ""
    for phrase in REASON_PHRASES:
        if text.endswith(phrase):
            return text[: len(text) - len(phrase)] + gettext(phrase)
    return text


def _format_int(value: int | float | None) -> str:
    return "" if value is None else f"{value:,}"


def environment() -> Environment:
    """The shared Jinja2 environment (autoescaping on)."""
    global _env
    if _env is None:
        env = Environment(
            loader=FileSystemLoader([str(d) for d in _template_dirs]),
            autoescape=select_autoescape(["html", "xml"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals.update(
            _=gettext,
            ngettext=ngettext,
            localize=localize,
            localize_stored=localize_stored,
            LANGUAGES=LANGUAGES,
        )
        env.filters.update(
            dt=_format_dt,
            num=_format_int,
            value=_format_value,
            reason=_reason,
            urlquote=lambda s: quote(str(s), safe=""),
        )
        _env = env
    return _env


class LoginRequired(Exception):
    """A page needs a logged-in user; the handler redirects to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page_actor(request: Request, actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    """The logged-in actor of a page, or a redirect to the login page."""
    if actor is None:
        raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


def csrf_token(request: Request) -> str:
    """The CSRF token to embed in this page's forms."""
    token = getattr(request.state, "csrf_token", None)
    if token:
        return str(token)
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = token
    return str(token)


def check_csrf(request: Request, form: FormData) -> None:
    """Refuse a form post whose CSRF token is missing or wrong."""
    sent = form.get("csrf_token")
    expected = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, str(expected)):
        raise Forbidden("the form's security token is missing or expired; reload the page and try again")


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """Render a page with the common context (actor, language, CSRF token, translations)."""
    ctx: dict[str, Any] = {
        "request": request,
        "actor": getattr(request.state, "actor", None),
        "lang": current_language.get(),
        "csrf_token": csrf_token(request),
        "path": request.url.path,
        "query": request.url.query,
    }
    ctx["unread"] = _unread(ctx["actor"])
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status)
    new_cookie = getattr(request.state, "new_csrf_cookie", None)
    if new_cookie:
        response.set_cookie(
            CSRF_COOKIE, new_cookie, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
    return response


def _unread(actor: Actor | None) -> int:
    """How many unread notifications the page's user has (shown in the menu)."""
    if actor is None or actor.user_id is None:
        return 0
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.notifications.service import unread_count

    with get_sessionmaker(get_settings().database_url)() as session:
        return unread_count(session=session, actor=actor)


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect after a form post."""
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, exc: ZhisheError) -> HTMLResponse:
    """An error shown as a page, in the visitor's language."""
    return render(request, "error.html", {"error": exc}, status=exc.status_code)
