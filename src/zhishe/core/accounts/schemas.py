"""Shapes of organisations, users and API tokens on the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zhishe.core.auth import OrgKind, Role
from zhishe.core.db import MAX_ID

__all__ = [
    "OrgCreate",
    "OrgPage",
    "OrgRead",
    "OrgUpdate",
    "TokenCreate",
    "TokenCreated",
    "TokenPage",
    "TokenRead",
    "UserCreate",
    "UserPage",
    "UserRead",
    "UserUpdate",
]

_SLUG = r"^[a-z0-9][a-z0-9._-]{1,63}$"


class OrgBase(BaseModel):
    code: str = Field(pattern=_SLUG, description="Stable short name, e.g. dept-env")
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    kind: OrgKind


class OrgCreate(OrgBase):
    pass


class OrgUpdate(BaseModel):
    name_zh: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    is_active: bool | None = None


class OrgRead(OrgBase):
    model_config = ConfigDict(from_attributes=True)
    id: int
    is_active: bool
    created_at: datetime


class OrgPage(BaseModel):
    items: list[OrgRead]
    next: str | None = None


class UserBase(BaseModel):
    username: str = Field(pattern=_SLUG)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=254)
    role: Role


class UserCreate(UserBase):
    org_id: int = Field(ge=1, le=MAX_ID)
    password: str = Field(min_length=8, max_length=256)


class UserUpdate(BaseModel):
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254)
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=256)


class UserRead(UserBase):
    model_config = ConfigDict(from_attributes=True)
    id: int
    org_id: int
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class UserPage(BaseModel):
    items: list[UserRead]
    next: str | None = None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    expires_in_days: int = Field(90, ge=1, le=730)
    for_org: bool = Field(False, description="An organisation token instead of a personal one")
    role: Role | None = Field(None, description="Role an organisation token acts with (at most your own)")


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    user_id: int | None
    org_id: int
    role: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret, shown this once only")


class TokenPage(BaseModel):
    items: list[TokenRead]
    next: str | None = None
