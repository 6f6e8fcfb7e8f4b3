"""Open311 ``api_key``s: an organisation's clients (a phone app, a mini-program, the call centre)
post reports with one.

A key is shown once, when it is made (``zhishe_311_`` and 32 random URL-safe characters); only its
SHA-256 is kept, so a lookup by hash finds it and nothing can be read back. Administrators of the
organisation, and platform administrators, make, list and revoke its keys (token scopes
``accounts:write`` and ``accounts:read``, as for API tokens); each of these is audited.

Each key may post ``per_minute`` requests a minute (default ``ZHISHE_OPEN311_PER_MINUTE``), counted
by the platform's rate limiter (``zhishe.core.ratelimit``: in process memory, or in Redis when
``ZHISHE_RATE_LIMIT_URL`` names it, so that every API worker shares the count). Past it the answer
is 429 with ``Retry-After``. Reads of Open311 are public and not limited per key.

JSON routes (a login or a token): ``POST /api/v1/participation/api-keys`` ``{org_id, name,
per_minute?}`` (201, the key shown once), ``GET …/api-keys?org_id=`` and ``DELETE …/api-keys/{id}``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.db import MAX_ID
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.ratelimit import RateLimiter, enforce, limiter_from_url
from zhishe.participation.models import ApiKey

__all__ = [
    "KEY_PREFIX",
    "MAX_PER_MINUTE",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "check_rate",
    "create_key",
    "digest",
    "limiter",
    "list_keys",
    "reset_limits",
    "revoke_key",
    "router",
    "verify",
]

KEY_PREFIX = "zhishe_311_"
#: The most requests a minute a key may be given.
MAX_PER_MINUTE = 1_000_000
#: Seconds of the window ``per_minute`` counts in.
_WINDOW = 60.0
_MAX_RAW = 200

_limiters: dict[str, RateLimiter] = {}


def digest(raw: str) -> str:
    """The SHA-256 (hex) a key is stored as."""
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def create_key(
    *, session: Session, actor: Actor, org_id: int, name: str, per_minute: int | None = None
) -> tuple[ApiKey, str]:
    """Make a key for an organisation's client; returns the row and the raw key (shown once)."""
    authorize(actor, "token.write", org_id=org_id, what="open311_api_key")
    accounts.get_org_or_raise(session=session, org_id=org_id)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise Invalid(T("give the key a name of 1 to 200 characters"), detail={"field": "name"})
    if per_minute is None:
        per_minute = get_settings().open311_per_minute
    if (
        isinstance(per_minute, bool)
        or not isinstance(per_minute, int)
        or not 1 <= per_minute <= MAX_PER_MINUTE
    ):
        raise Invalid(
            T("per_minute must be a whole number from 1 to {most}", most=MAX_PER_MINUTE),
            detail={"field": "per_minute"},
        )
    raw = KEY_PREFIX + secrets.token_urlsafe(24)
    key = ApiKey(
        org_id=org_id,
        name=name,
        key_hash=digest(raw),
        prefix=raw[:16],
        per_minute=per_minute,
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="participation.api_key.create",
        object_type="participation_api_key",
        object_id=key.id,
        object_org_id=org_id,
        detail={"name": name, "prefix": key.prefix, "per_minute": per_minute},
    )
    return key, raw


def list_keys(*, session: Session, actor: Actor, org_id: int) -> list[ApiKey]:
    """An organisation's keys, live and revoked, newest first (never the keys themselves)."""
    authorize(actor, "token.read", org_id=org_id, what="open311_api_key")
    accounts.get_org_or_raise(session=session, org_id=org_id)
    keys = list(session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id.desc())))
    record(
        session=session,
        actor=actor,
        action="participation.api_key.list",
        object_type="organisation",
        object_id=org_id,
        object_org_id=org_id,
        detail={"count": len(keys)},
    )
    return keys


def revoke_key(*, session: Session, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key at once: the next request with it is refused."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(T("no Open311 api_key with the id {id}", id=key_id), detail={"key_id": key_id})
    authorize(actor, "token.write", org_id=key.org_id, what="open311_api_key")
    if key.revoked_at is not None:
        raise Conflict(T("the api_key {id} is already revoked", id=key_id), detail={"key_id": key_id})
    key.revoked_at = clock.now()
    record(
        session=session,
        actor=actor,
        action="participation.api_key.revoke",
        object_type="participation_api_key",
        object_id=key.id,
        object_org_id=key.org_id,
        detail={"prefix": key.prefix},
    )
    return key


def verify(*, session: Session, raw: str) -> ApiKey:
    """The live key ``raw`` is; ``Forbidden`` naming ``api_key`` when it is missing, unknown or revoked."""
    raw = (raw or "").strip()
    if not raw:
        raise Forbidden(T("api_key is required to post a service request"), detail={"parameter": "api_key"})
    key = None
    if len(raw) <= _MAX_RAW:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest(raw)))
    if key is None or key.revoked_at is not None:
        raise Forbidden(T("api_key is unknown or revoked"), detail={"parameter": "api_key"})
    return key


def limiter() -> RateLimiter:
    """This process's limiter of Open311 posts (in memory, or Redis when configured)."""
    url = get_settings().rate_limit_url
    found = _limiters.get(url)
    if found is None:
        found = _limiters[url] = limiter_from_url(url)
    return found


def reset_limits(replacement: RateLimiter | None = None) -> None:
    """Forget every count (or count with ``replacement`` from now on): for tests and benchmarks."""
    _limiters.clear()
    if replacement is not None:
        _limiters[get_settings().rate_limit_url] = replacement


def check_rate(key: ApiKey) -> None:
    """Count one post with ``key``; ``RateLimited`` (429) past its ``per_minute``."""
    enforce(limiter(), f"open311:key:{key.id}", max(1, key.per_minute), _WINDOW)


# --- JSON routes ---------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1/participation/api-keys", tags=["participation"])


class ApiKeyCreate(BaseModel):
    """A key to make for an organisation's client."""

    org_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=200)
    per_minute: int | None = Field(None, ge=1, le=MAX_PER_MINUTE)


class ApiKeyRead(BaseModel):
    """A stored key (never the key itself)."""

    model_config = {"from_attributes": True}

    id: int
    org_id: int
    name: str
    prefix: str
    per_minute: int
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """A new key, with the raw ``api_key``: shown this once."""

    api_key: str


@router.post("", response_model=ApiKeyCreated, status_code=201)
def create_api_key(data: ApiKeyCreate, session: SessionDep, actor: CurrentActor) -> ApiKeyCreated:
    """Make an Open311 api_key for an organisation; the key is shown once."""
    key, raw = create_key(
        session=session, actor=actor, org_id=data.org_id, name=data.name, per_minute=data.per_minute
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), api_key=raw)


@router.get("", response_model=list[ApiKeyRead])
def list_api_keys(
    session: SessionDep, actor: CurrentActor, org_id: int = Query(ge=1, le=MAX_ID)
) -> list[ApiKey]:
    """An organisation's Open311 api_keys, newest first."""
    return list_keys(session=session, actor=actor, org_id=org_id)


@router.delete("/{key_id}", status_code=204)
def revoke_api_key(key_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """Revoke an Open311 api_key at once."""
    revoke_key(session=session, actor=actor, key_id=key_id)
    return Response(status_code=204)
