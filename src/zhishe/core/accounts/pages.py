"""Pages to administer organisations and users, and to manage one's API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from zhishe.core.accounts import service
from zhishe.core.accounts.schemas import OrgCreate, TokenCreate, UserCreate, UserUpdate
from zhishe.core.auth import SCOPES, OrgKind, Role, can
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render

router = APIRouter(include_in_schema=False)


def _invalid(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return Invalid(f"{field}: {first.get('msg', 'invalid')}", detail={"field": field})


@router.get("/admin/orgs", response_class=HTMLResponse)
def orgs(request: Request, session: SessionDep, actor: PageActor) -> Response:
    page = service.list_orgs(session=session, actor=actor, limit=500)
    return render(
        request,
        "accounts/orgs.html",
        {
            "orgs": page.items,
            "kinds": list(OrgKind),
            "can_create": can(actor, "org.write"),
        },
    )


@router.post("/admin/orgs", response_class=HTMLResponse)
async def create_org(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        org_in = OrgCreate(
            code=str(form.get("code", "")),
            name_zh=str(form.get("name_zh", "")),
            name_en=str(form.get("name_en", "")),
            kind=str(form.get("kind", "")),
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _invalid(exc) from exc
    org = service.create_org(session=session, actor=actor, org_in=org_in)
    return redirect(f"/admin/orgs/{org.id}")


@router.get("/admin/orgs/{org_id}", response_class=HTMLResponse)
def org_detail(org_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    org = service.read_org(session=session, actor=actor, org_id=org_id)
    users = (
        service.list_users(session=session, actor=actor, org_id=org.id, limit=500).items
        if can(actor, "user.read", org_id=org.id)
        else []
    )
    return render(
        request,
        "accounts/org.html",
        {
            "org": org,
            "users": users,
            "roles": list(Role),
            "can_manage": can(actor, "user.write", org_id=org.id),
        },
    )


@router.post("/admin/orgs/{org_id}/users", response_class=HTMLResponse)
async def create_user(org_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        user_in = UserCreate(
            org_id=org_id,
            username=str(form.get("username", "")),
            display_name=str(form.get("display_name", "")),
            email=str(form.get("email", "")),
            role=str(form.get("role", "")),  # type: ignore[arg-type]
            password=str(form.get("password", "")),
        )
    except ValidationError as exc:
        raise _invalid(exc) from exc
    service.create_user(session=session, actor=actor, user_in=user_in)
    return redirect(f"/admin/orgs/{org_id}")


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def update_user(user_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    active = form.get("is_active")
    user = service.update_user(
        session=session,
        actor=actor,
        user_id=user_id,
        user_in=UserUpdate(
            is_active=(active == "1") if active in {"0", "1"} else None,
            role=str(form["role"]) if form.get("role") else None,
        ),  # type: ignore[arg-type]
    )
    return redirect(f"/admin/orgs/{user.org_id}")


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, session: SessionDep, actor: PageActor) -> Response:
    page = service.list_tokens(session=session, actor=actor, limit=500)
    return render(
        request,
        "accounts/tokens.html",
        {
            "tokens": page.items,
            "scopes": SCOPES,
            "roles": list(Role),
            "created": None,
            "can_org": can(actor, "token.write", org_id=actor.org_id),
        },
    )


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        token_in = TokenCreate(
            name=str(form.get("name", "")),
            scopes=[str(s) for s in form.getlist("scopes")],
            expires_in_days=int(str(form.get("expires_in_days") or 90)),
            for_org=form.get("for_org") == "1",
        )
    except (ValidationError, ValueError) as exc:
        raise (
            _invalid(exc) if isinstance(exc, ValidationError) else Invalid("expires_in_days must be a number")
        ) from exc
    token, secret = service.create_token(session=session, actor=actor, token_in=token_in)
    page = service.list_tokens(session=session, actor=actor, limit=500)
    return render(
        request,
        "accounts/tokens.html",
        {
            "tokens": page.items,
            "scopes": SCOPES,
            "roles": list(Role),
            "created": {"token": token, "secret": secret},
            "can_org": can(actor, "token.write", org_id=actor.org_id),
        },
        status=201,
    )


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(token_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    service.revoke_token(session=session, actor=actor, token_id=token_id)
    return redirect("/tokens")
