"""JSON routes for organisations, users, tokens and the current identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from zhishe.core.accounts import service
from zhishe.core.accounts.schemas import (
    OrgCreate,
    OrgPage,
    OrgRead,
    OrgUpdate,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
    UserCreate,
    UserPage,
    UserRead,
    UserUpdate,
)
from zhishe.core.deps import CurrentActor, IdPath, IdQuery, SessionDep
from zhishe.core.web.links import link_next

router = APIRouter(prefix="/api/v1", tags=["accounts"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/me")
def me(actor: CurrentActor) -> dict[str, object]:
    """Who the caller is, as the platform sees them."""
    return {
        "user_id": actor.user_id,
        "username": actor.username,
        "org_id": actor.org_id,
        "org_kind": actor.org_kind,
        "role": actor.role,
        "via": actor.via,
        "scopes": sorted(actor.scopes) if actor.scopes is not None else None,
    }


@router.get("/orgs", response_model=OrgPage)
def list_orgs(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    kind: str | None = None,
    after: str | None = None,
    limit: Limit = 100,
) -> OrgPage:
    page = service.list_orgs(session=session, actor=actor, kind=kind, after=after, limit=limit)
    link_next(response, page.next)
    return OrgPage(items=[OrgRead.model_validate(o) for o in page.items], next=page.next)


@router.post("/orgs", response_model=OrgRead, status_code=201)
def create_org(org_in: OrgCreate, session: SessionDep, actor: CurrentActor) -> OrgRead:
    return OrgRead.model_validate(service.create_org(session=session, actor=actor, org_in=org_in))


@router.get("/orgs/{org_id}", response_model=OrgRead)
def get_org(org_id: IdPath, session: SessionDep, actor: CurrentActor) -> OrgRead:
    return OrgRead.model_validate(service.read_org(session=session, actor=actor, org_id=org_id))


@router.patch("/orgs/{org_id}", response_model=OrgRead)
def update_org(org_id: IdPath, org_in: OrgUpdate, session: SessionDep, actor: CurrentActor) -> OrgRead:
    return OrgRead.model_validate(
        service.update_org(session=session, actor=actor, org_id=org_id, org_in=org_in)
    )


@router.get("/users", response_model=UserPage)
def list_users(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    org_id: IdQuery = None,
    after: str | None = None,
    limit: Limit = 100,
) -> UserPage:
    page = service.list_users(session=session, actor=actor, org_id=org_id, after=after, limit=limit)
    link_next(response, page.next)
    return UserPage(items=[UserRead.model_validate(u) for u in page.items], next=page.next)


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(user_in: UserCreate, session: SessionDep, actor: CurrentActor) -> UserRead:
    return UserRead.model_validate(service.create_user(session=session, actor=actor, user_in=user_in))


@router.get("/users/{user_id}", response_model=UserRead)
def get_user(user_id: IdPath, session: SessionDep, actor: CurrentActor) -> UserRead:
    return UserRead.model_validate(service.read_user(session=session, actor=actor, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: IdPath, user_in: UserUpdate, session: SessionDep, actor: CurrentActor) -> UserRead:
    return UserRead.model_validate(
        service.update_user(session=session, actor=actor, user_id=user_id, user_in=user_in)
    )


@router.get("/tokens", response_model=TokenPage)
def list_tokens(
    session: SessionDep, actor: CurrentActor, response: Response, after: str | None = None, limit: Limit = 100
) -> TokenPage:
    page = service.list_tokens(session=session, actor=actor, after=after, limit=limit)
    link_next(response, page.next)
    return TokenPage(items=[TokenRead.model_validate(t) for t in page.items], next=page.next)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(token_in: TokenCreate, session: SessionDep, actor: CurrentActor) -> TokenCreated:
    token, secret = service.create_token(session=session, actor=actor, token_in=token_in)
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(token_id: IdPath, session: SessionDep, actor: CurrentActor) -> TokenRead:
    return TokenRead.model_validate(service.revoke_token(session=session, actor=actor, token_id=token_id))
