"""Injected values for routes, as ``Annotated`` aliases: the settings, a DB session, the actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.auth import Actor
from zhishe.core.config import Settings, get_settings
from zhishe.core.db import MAX_ID, get_sessionmaker
from zhishe.core.errors import Forbidden, Unauthenticated, ZhisheError

__all__ = [
    "MAX_ID",
    "SESSION_COOKIE",
    "CurrentActor",
    "IdPath",
    "IdQuery",
    "OptionalActor",
    "SessionDep",
    "SettingsDep",
    "get_session",
    "request_actor",
]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

SESSION_COOKIE = "zhishe_session"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _settings() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """One session per request: committed when the route succeeds, rolled back when it fails
    (unless the error says its writes record the refusal itself, such as a failed login)."""
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
        session.commit()
    except ZhisheError as exc:
        if exc.keep_writes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: ``scope="function"``: the commit happens when the route returns, before the response is sent.
#: (With the default scope it would happen after, so a client following a redirect, or reading
#: right after a 201, could miss the write, and a failed commit would follow a success answer.)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _resolve(request: Request, session: Session, settings: Settings) -> Actor | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return accounts.authenticate_token(session=session, secret=value.strip())
    cookie = request.cookies.get(SESSION_COOKIE, "")
    web = accounts.resolve_session(session=session, cookie=cookie, session_hours=settings.session_hours)
    if web is None:
        return None
    request.state.csrf_token = web.csrf_token
    if request.method in _UNSAFE and request.url.path.startswith("/api/"):
        sent = request.headers.get("x-csrf-token", "")
        if sent != web.csrf_token:
            raise Forbidden("missing or wrong X-CSRF-Token header for a cookie-authenticated API call")
    return actor_for_user(web.user)


def request_actor(request: Request, session: Session) -> Actor | None:
    """The actor of a request (a bearer token or a web session), for routes that manage their own session."""
    return _resolve(request, session, get_settings())


def optional_actor(request: Request, session: SessionDep, settings: SettingsDep) -> Actor | None:
    """The actor, or None for an anonymous visitor."""
    actor = _resolve(request, session, settings)
    request.state.actor = actor
    return actor


def current_actor(request: Request, session: SessionDep, settings: SettingsDep) -> Actor:
    """The actor; anonymous requests are refused with 401."""
    actor = optional_actor(request, session, settings)
    if actor is None:
        raise Unauthenticated("log in or send 'Authorization: Bearer <token>'")
    return actor


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
