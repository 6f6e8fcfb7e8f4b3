"""App tokens of public developers: registered on the developer page, sent as ``X-App-Token``.

A token identifies an application, so that it gets its own, higher rate limit; it grants no access
to anything that is not public. It is shown once; only its SHA-256 is kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.opendata.models import AppToken

__all__ = [
    "MAX_TOKENS",
    "Quota",
    "create",
    "list_mine",
    "org_of_tokens",
    "quota_of",
    "register_quota_finder",
    "resolve",
    "revoke",
]

#: A token's own quota: ``(calls per minute, calls per day)``.
Quota = tuple[int, int]
QuotaFinder = Callable[[Session, int], Quota | None]
_quota_finders: list[QuotaFinder] = []

MAX_TOKENS = 20
_PREFIX = "zat_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def create(*, session: Session, actor: Actor, name: str) -> tuple[AppToken, str]:
    """Register an application; returns the token row and the secret (shown once)."""
    authorize(actor, "opendata.develop")
    assert actor.user_id is not None  # opendata.develop needs a user
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid(T("give the application a name of 1 to 100 characters"), detail={"field": "name"})
    live = list_mine(session=session, actor=actor)
    if len(live) >= MAX_TOKENS:
        raise Invalid(
            T("you have {n} app tokens; revoke one before adding another", n=len(live)),
            detail={"field": "name"},
        )
    secret = _PREFIX + secrets.token_urlsafe(24)
    token = AppToken(
        user_id=actor.user_id,
        name=name,
        prefix=secret[:10],
        token_hash=_digest(secret),
        created_at=clock.now(),
    )
    session.add(token)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="opendata.app_token.create",
        object_type="app_token",
        object_id=token.id,
        object_org_id=actor.org_id,
        detail={"name": name, "prefix": token.prefix},
    )
    return token, secret


def list_mine(*, session: Session, actor: Actor) -> list[AppToken]:
    """The actor's live app tokens, newest first."""
    authorize(actor, "opendata.develop")
    return list(
        session.scalars(
            select(AppToken)
            .where(AppToken.user_id == actor.user_id, AppToken.revoked_at.is_(None))
            .order_by(AppToken.id.desc())
        )
    )


def revoke(*, session: Session, actor: Actor, token_id: int) -> AppToken:
    """Revoke one of the actor's tokens at once."""
    authorize(actor, "opendata.develop")
    token = session.get(AppToken, token_id)
    if token is None or token.user_id != actor.user_id or token.revoked_at is not None:
        raise NotFound(T("you have no live app token with the id {id}", id=token_id))
    token.revoked_at = clock.now()
    record(
        session=session,
        actor=actor,
        action="opendata.app_token.revoke",
        object_type="app_token",
        object_id=token.id,
        object_org_id=actor.org_id,
    )
    return token


def resolve(*, session: Session, secret: str) -> AppToken:
    """The live token with this secret; Forbidden (naming the header) when there is none."""
    if not secret.startswith(_PREFIX) or len(secret) > 100:
        raise Forbidden(T("X-App-Token is not a valid app token"), detail={"header": "X-App-Token"})
    token = session.scalar(select(AppToken).where(AppToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None:
        raise Forbidden(T("X-App-Token is unknown or revoked"), detail={"header": "X-App-Token"})
    now = clock.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now  # at most one write a minute per token
    return token


def register_quota_finder(finder: QuotaFinder) -> None:
    """Let ``finder(session, token_id)`` grant a token a quota of its own (a paid data plan)."""
    if finder not in _quota_finders:
        _quota_finders.append(finder)


def quota_of(session: Session, token_id: int) -> Quota | None:
    """The highest quota any finder grants the token, or None for the default limit."""
    found = [q for q in (finder(session, token_id) for finder in _quota_finders) if q is not None]
    return max(found) if found else None


def org_of_tokens(*, session: Session, token_ids: list[int]) -> dict[int, int]:
    """The organisation of each live token's owner, by token id (unknown or revoked tokens left out)."""
    if not token_ids:
        return {}
    rows = session.execute(
        select(AppToken.id, User.org_id)
        .join(User, User.id == AppToken.user_id)
        .where(AppToken.id.in_(token_ids), AppToken.revoked_at.is_(None))
    ).all()
    return {int(token_id): int(org_id) for token_id, org_id in rows if org_id is not None}
