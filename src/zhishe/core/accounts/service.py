"""Organisations, users, API tokens, web logins and their throttling.

All rules live here; the pages, the API and the CLI call these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import ApiToken, LoginAttempt, Organisation, User, WebSession
from zhishe.core.accounts.schemas import OrgCreate, OrgUpdate, TokenCreate, UserCreate, UserUpdate
from zhishe.core.audit.service import record
from zhishe.core.auth import SCOPES, Actor, OrgKind, Role, authorize, hash_password, verify_password
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthenticated
from zhishe.core.pagination import Page, keyset_page

__all__ = [
    "actor_for_user",
    "authenticate_token",
    "create_org",
    "create_token",
    "create_user",
    "first_org_of_kind",
    "get_org_or_raise",
    "get_user_or_raise",
    "list_orgs",
    "list_tokens",
    "list_users",
    "login",
    "logout",
    "read_org",
    "read_user",
    "resolve_session",
    "revoke_token",
    "update_org",
    "update_user",
]

TOKEN_PREFIX = "zs"  # noqa: S105 - a label, not a secret


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def actor_for_user(user: User, *, via: str = "web") -> Actor:
    """The actor a logged-in user acts as."""
    return Actor(
        user_id=user.id,
        username=user.username,
        org_id=user.org_id,
        org_kind=user.org.kind,
        role=user.role,
        via=via,
    )


# ---------------------------------------------------------------- organisations


def get_org_or_raise(*, session: Session, org_id: int) -> Organisation:
    """The organisation, or NotFound."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist", detail={"org_id": org_id})
    return org


def read_org(*, session: Session, actor: Actor, org_id: int) -> Organisation:
    """One organisation, if the actor may see it."""
    org = get_org_or_raise(session=session, org_id=org_id)
    if not (actor.is_staff or actor.is_platform_admin or org.id == actor.org_id):
        raise NotFound(f"organisation {org_id} does not exist", detail={"org_id": org_id})
    authorize(actor, "org.read", org_id=org.id)
    return org


def get_org_by_code(*, session: Session, code: str) -> Organisation | None:
    """The organisation with this code, if any."""
    return session.scalar(select(Organisation).where(Organisation.code == code))


def first_org_of_kind(*, session: Session, kind: str) -> Organisation | None:
    """The oldest organisation of ``kind`` (the data bureau, the operator...), or None."""
    return session.scalar(
        select(Organisation).where(Organisation.kind == kind).order_by(Organisation.id).limit(1)
    )


def list_orgs(
    *, session: Session, actor: Actor, kind: str | None = None, after: str | None = None, limit: int = 100
) -> Page[Organisation]:
    """Organisations the actor may see (staff see all; others their own)."""
    authorize(actor, "org.read", org_id=actor.org_id)
    query = select(Organisation)
    if not actor.is_staff and not actor.is_platform_admin:
        query = query.where(Organisation.id == actor.org_id)
    if kind:
        query = query.where(Organisation.kind == kind)
    return keyset_page(session, query, Organisation.id, after=after, limit=limit)


def create_org(*, session: Session, actor: Actor, org_in: OrgCreate) -> Organisation:
    """Create an organisation (platform admins only)."""
    authorize(actor, "org.write")
    if get_org_by_code(session=session, code=org_in.code) is not None:
        raise Conflict(f"an organisation with code {org_in.code!r} exists", detail={"field": "code"})
    org = Organisation(**org_in.model_dump(), is_active=True, created_at=clock.now())
    session.add(org)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="org.create",
        object_type="organisation",
        object_id=org.id,
        object_org_id=org.id,
        detail={"code": org.code, "kind": org.kind},
    )
    return org


def update_org(*, session: Session, actor: Actor, org_id: int, org_in: OrgUpdate) -> Organisation:
    """Rename, or (de)activate, an organisation."""
    org = get_org_or_raise(session=session, org_id=org_id)
    authorize(actor, "org.write", org_id=org.id)
    changes = org_in.model_dump(exclude_none=True)
    for key, value in changes.items():
        setattr(org, key, value)
    record(
        session=session,
        actor=actor,
        action="org.update",
        object_type="organisation",
        object_id=org.id,
        object_org_id=org.id,
        detail=changes,
    )
    return org


# ---------------------------------------------------------------- users


def get_user_or_raise(*, session: Session, user_id: int) -> User:
    """The user, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", detail={"user_id": user_id})
    return user


def read_user(*, session: Session, actor: Actor, user_id: int) -> User:
    """One user: oneself, or a user the actor administers."""
    user = get_user_or_raise(session=session, user_id=user_id)
    if user.id != actor.user_id:
        authorize(actor, "user.read", org_id=user.org_id, what=f"user {user_id}")
        record(
            session=session,
            actor=actor,
            action="user.read",
            object_type="user",
            object_id=user.id,
            object_org_id=user.org_id,
        )
    return user


def get_user_by_username(*, session: Session, username: str) -> User | None:
    """The user with this login name, if any."""
    return session.scalar(select(User).where(User.username == username))


def list_users(
    *, session: Session, actor: Actor, org_id: int | None = None, after: str | None = None, limit: int = 100
) -> Page[User]:
    """Users the actor may manage: all for platform admins, their own organisation's for org admins."""
    if actor.is_platform_admin:
        authorize(actor, "user.read")
    else:
        authorize(actor, "user.read", org_id=actor.org_id)
        org_id = actor.org_id
    query = select(User)
    if org_id is not None:
        query = query.where(User.org_id == org_id)
    page = keyset_page(session, query, User.id, after=after, limit=limit)
    record(
        session=session,
        actor=actor,
        action="user.list",
        object_type="organisation",
        object_id=org_id if org_id is not None else "all",
        object_org_id=org_id,
        detail={"count": len(page.items)},
    )
    return page


def create_user(*, session: Session, actor: Actor, user_in: UserCreate) -> User:
    """Create a user in an organisation; nobody hands out a role above their own."""
    org = get_org_or_raise(session=session, org_id=user_in.org_id)
    authorize(actor, "user.write", org_id=org.id, what=f"in organisation {org.code}")
    if not actor.is_platform_admin and not actor.outranks_or_equals(user_in.role):
        raise Forbidden(f"you may not give the role {user_in.role}", detail={"field": "role"})
    _check_role_fits_org(user_in.role, org.kind)
    if get_user_by_username(session=session, username=user_in.username) is not None:
        raise Conflict(f"the username {user_in.username!r} is taken", detail={"field": "username"})
    user = User(
        username=user_in.username,
        display_name=user_in.display_name,
        email=user_in.email,
        role=user_in.role,
        org_id=org.id,
        password_hash=hash_password(user_in.password),
        is_active=True,
        created_at=clock.now(),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the username {user_in.username!r} is taken", detail={"field": "username"}) from exc
    session.refresh(user)
    record(
        session=session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        object_org_id=org.id,
        detail={"username": user.username, "role": user.role},
    )
    return user


def _check_role_fits_org(role: str, kind: str) -> None:
    if role == Role.RESIDENT and kind != OrgKind.COMMUNITY_COMMITTEE:
        raise Invalid("residents belong to a community committee organisation", detail={"field": "role"})
    if role == Role.PROVIDER_STAFF and kind != OrgKind.SERVICE_PROVIDER:
        raise Invalid("provider staff belong to a service provider organisation", detail={"field": "role"})


def update_user(*, session: Session, actor: Actor, user_id: int, user_in: UserUpdate) -> User:
    """Change a user's name, role, password or active flag."""
    user = get_user_or_raise(session=session, user_id=user_id)
    authorize(actor, "user.write", org_id=user.org_id, what=f"user {user.username}")
    changes = user_in.model_dump(exclude_none=True)
    if "role" in changes:
        if not actor.is_platform_admin and not actor.outranks_or_equals(changes["role"]):
            raise Forbidden(f"you may not give the role {changes['role']}", detail={"field": "role"})
        _check_role_fits_org(changes["role"], user.org.kind)
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        changes["password"] = "changed"  # noqa: S105 - audit note, not a password
    for key, value in changes.items():
        if key != "password":
            setattr(user, key, value)
    if changes.get("is_active") is False:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    record(
        session=session,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user.id,
        object_org_id=user.org_id,
        detail=changes,
    )
    return user


# ---------------------------------------------------------------- web login


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login: the user and the cookie value (shown to nobody else)."""

    user: User
    cookie: str
    csrf_token: str


def _recent_failures(session: Session, username: str, window_minutes: int) -> int:
    since = clock.now() - timedelta(minutes=window_minutes)
    return (
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(
                LoginAttempt.username == username, LoginAttempt.at >= since, LoginAttempt.success.is_(False)
            )
        )
        or 0
    )


def login(
    *,
    session: Session,
    username: str,
    password: str,
    address: str = "",
    max_failures: int = 5,
    window_minutes: int = 15,
    session_hours: int = 12,
) -> LoginResult:
    """Check a password and open a web session; throttle after repeated failures on one account."""
    username = username.strip()[:64]
    if _recent_failures(session, username, window_minutes) >= max_failures:
        record(
            session=session, actor=None, action="auth.login_throttled", object_type="user", object_id=username
        )
        raise RateLimited(
            f"too many failed logins for this account; try again later (after {window_minutes} minutes)",
            detail={"retry_after_minutes": window_minutes},
            keep_writes=True,
        )
    user = get_user_by_username(session=session, username=username)
    ok = user is not None and user.is_active and verify_password(password, user.password_hash)
    session.add(LoginAttempt(username=username, at=clock.now(), success=ok, address=address[:64]))
    if not ok or user is None:
        record(
            session=session,
            actor=None,
            action="auth.login_failed",
            object_type="user",
            object_id=username,
            object_org_id=user.org_id if user else None,
        )
        raise Unauthenticated("wrong username or password", keep_writes=True)
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        WebSession(
            id=_sha256(cookie),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=session_hours),
        )
    )
    user.last_login_at = now
    record(
        session=session,
        actor=actor_for_user(user),
        action="auth.login",
        object_type="user",
        object_id=user.id,
        object_org_id=user.org_id,
    )
    return LoginResult(user=user, cookie=cookie, csrf_token=csrf)


def resolve_session(*, session: Session, cookie: str, session_hours: int = 12) -> WebSession | None:
    """The live web session behind a cookie, sliding its expiry; None if unknown or expired."""
    if not cookie or len(cookie) > 128:
        return None
    web = session.get(WebSession, _sha256(cookie))
    now = clock.now()
    if web is None or web.expires_at <= now or not web.user.is_active:
        return None
    if web.expires_at - now < timedelta(hours=session_hours) - timedelta(minutes=5):
        web.expires_at = now + timedelta(hours=session_hours)
    return web


def logout(*, session: Session, cookie: str) -> None:
    """End the web session behind a cookie."""
    web = session.get(WebSession, _sha256(cookie)) if cookie else None
    if web is not None:
        record(
            session=session,
            actor=actor_for_user(web.user),
            action="auth.logout",
            object_type="user",
            object_id=web.user_id,
            object_org_id=web.user.org_id,
        )
        session.delete(web)


# ---------------------------------------------------------------- API tokens


def create_token(*, session: Session, actor: Actor, token_in: TokenCreate) -> tuple[ApiToken, str]:
    """Issue a token for the actor (or their organisation); return it with the secret, shown once."""
    if actor.user_id is None or actor.org_id is None:
        raise Forbidden("tokens belong to a user; log in as one", detail={})
    if actor.via == "token":
        raise Forbidden("a token cannot create tokens; log in", detail={})
    unknown = sorted(set(token_in.scopes) - set(SCOPES))
    if unknown:
        raise Invalid(
            f"unknown scope(s): {', '.join(unknown)}", detail={"field": "scopes", "allowed": sorted(SCOPES)}
        )
    role = token_in.role or actor.role
    if token_in.for_org:
        authorize(actor, "token.write", org_id=actor.org_id, what="an organisation token")
    if not actor.outranks_or_equals(role):
        raise Forbidden(
            f"a token may not act with a role above yours ({actor.role})", detail={"field": "role"}
        )
    secret = f"{TOKEN_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    prefix = secret.split("_")[1]
    now = clock.now()
    token = ApiToken(
        name=token_in.name,
        prefix=prefix,
        token_hash=_sha256(secret),
        user_id=None if token_in.for_org else actor.user_id,
        org_id=actor.org_id,
        role=role,
        scopes=sorted(set(token_in.scopes)),
        created_by_id=actor.user_id,
        created_at=now,
        expires_at=now + timedelta(days=token_in.expires_in_days),
    )
    session.add(token)
    session.flush()
    session.refresh(token)
    record(
        session=session,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=token.id,
        object_org_id=actor.org_id,
        detail={"name": token.name, "scopes": token.scopes, "org": token_in.for_org},
    )
    return token, secret


def list_tokens(
    *, session: Session, actor: Actor, after: str | None = None, limit: int = 100
) -> Page[ApiToken]:
    """The actor's own tokens, plus their organisation's when they administer it."""
    query = select(ApiToken)
    if actor.is_platform_admin:
        pass
    elif actor.role == Role.ADMIN:
        query = query.where(ApiToken.org_id == actor.org_id)
    else:
        query = query.where(ApiToken.user_id == actor.user_id)
    return keyset_page(session, query, ApiToken.id, after=after, limit=limit)


def revoke_token(*, session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token: its owner, an admin of its organisation, or a platform admin may."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} does not exist", detail={"token_id": token_id})
    if token.user_id != actor.user_id or token.user_id is None:
        authorize(actor, "token.write", org_id=token.org_id, what=f"token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        record(
            session=session,
            actor=actor,
            action="token.revoke",
            object_type="api_token",
            object_id=token.id,
            object_org_id=token.org_id,
        )
    return token


def authenticate_token(*, session: Session, secret: str) -> Actor:
    """The actor behind a bearer token, or Unauthenticated (unknown, expired or revoked)."""
    if not secret.startswith(f"{TOKEN_PREFIX}_") or len(secret) > 200:
        raise Unauthenticated("invalid API token")
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(secret)))
    if token is None or not hmac.compare_digest(token.token_hash, _sha256(secret)):
        raise Unauthenticated("invalid API token")
    now = clock.now()
    if token.revoked_at is not None:
        raise Unauthenticated("this API token was revoked")
    if token.expires_at <= now:
        raise Unauthenticated("this API token has expired")
    if token.user is not None and not token.user.is_active:
        raise Unauthenticated("the user of this API token is deactivated")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return Actor(
        user_id=token.user_id,
        username=token.user.username if token.user else f"org-token:{token.prefix}",
        org_id=token.org_id,
        org_kind=token.org.kind,
        role=token.role,
        via="token",
        scopes=frozenset(token.scopes),
        token_id=token.id,
    )
