"""`zhishe org`, `zhishe user` and `zhishe token`: manage identities from the server's shell."""

from __future__ import annotations

import typer
from rich.table import Table

from zhishe.core.accounts import service
from zhishe.core.accounts.schemas import OrgCreate, TokenCreate, UserCreate, UserUpdate
from zhishe.core.accounts.service import actor_for_user, get_org_by_code
from zhishe.core.auth import SCOPES, OrgKind, Role
from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import NotFound

org_app = typer.Typer(help="Organisations: list and create.", no_args_is_help=True)
user_app = typer.Typer(
    help="Users: list, create, change role, password or active flag.", no_args_is_help=True
)
token_app = typer.Typer(help="API tokens: create (shown once), list and revoke.", no_args_is_help=True)


@org_app.command("list")
@handle_errors
def org_list(as_user: str = AS_USER) -> None:
    """List organisations."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "code", "kind", "name")
        for org in service.list_orgs(session=session, actor=actor, limit=10000).items:
            table.add_row(str(org.id), org.code, org.kind, f"{org.name_zh} / {org.name_en}")
        console.print(table)


@org_app.command("create")
@handle_errors
def org_create(
    code: str = typer.Argument(..., help="Short stable name, e.g. dept-env"),
    name_zh: str = typer.Option(..., "--name-zh", help="Chinese name"),
    kind: OrgKind = typer.Option(..., help="Kind of organisation"),
    name_en: str = typer.Option("", "--name-en", help="English name"),
    as_user: str = AS_USER,
) -> None:
    """Create an organisation."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        org = service.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code=code, name_zh=name_zh, name_en=name_en, kind=kind),
        )
        console.print(f"created organisation {org.id} ({org.code})")


@user_app.command("list")
@handle_errors
def user_list(org: str = typer.Option(None, help="Organisation code"), as_user: str = AS_USER) -> None:
    """List users."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        org_id = None
        if org:
            found = get_org_by_code(session=session, code=org)
            if found is None:
                raise NotFound(f"no organisation with code {org!r}")
            org_id = found.id
        table = Table("id", "username", "org", "role", "active", "name")
        for user in service.list_users(session=session, actor=actor, org_id=org_id, limit=100000).items:
            table.add_row(
                str(user.id),
                user.username,
                user.org.code,
                user.role,
                "yes" if user.is_active else "no",
                user.display_name,
            )
        console.print(table)


@user_app.command("create")
@handle_errors
def user_create(
    username: str = typer.Argument(...),
    org: str = typer.Option(..., help="Organisation code"),
    role: Role = typer.Option(..., help="Role in the organisation"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters"
    ),
    display_name: str = typer.Option("", "--name", help="Display name"),
    as_user: str = AS_USER,
) -> None:
    """Create a user."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        found = get_org_by_code(session=session, code=org)
        if found is None:
            raise NotFound(f"no organisation with code {org!r}")
        user = service.create_user(
            session=session,
            actor=actor,
            user_in=UserCreate(
                username=username, org_id=found.id, role=role, password=password, display_name=display_name
            ),
        )
        console.print(f"created user {user.id} ({user.username}, {user.role} of {org})")


@user_app.command("set")
@handle_errors
def user_set(
    username: str = typer.Argument(...),
    role: Role = typer.Option(None, help="New role"),
    active: bool = typer.Option(None, "--active/--inactive", help="Activate or deactivate"),
    password: bool = typer.Option(False, "--password", help="Prompt for a new password"),
    as_user: str = AS_USER,
) -> None:
    """Change a user's role, active flag or password."""
    new_password = (
        typer.prompt("New password", hide_input=True, confirmation_prompt=True) if password else None
    )
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        user = service.get_user_by_username(session=session, username=username)
        if user is None:
            raise NotFound(f"no user called {username!r}")
        service.update_user(
            session=session,
            actor=actor,
            user_id=user.id,
            user_in=UserUpdate(role=role, is_active=active, password=new_password),
        )
        console.print(f"updated {username}")


@token_app.command("create")
@handle_errors
def token_create(
    user: str = typer.Option(..., help="The user the token belongs to (or whose organisation, with --org)"),
    name: str = typer.Option(..., help="What the token is for"),
    scope: list[str] = typer.Option(["catalog:read"], help=f"Scopes: {', '.join(SCOPES)}"),
    days: int = typer.Option(90, help="Days until it expires (1-730)"),
    org: bool = typer.Option(False, "--org", help="An organisation token, not tied to the user"),
) -> None:
    """Create an API token; the secret is printed once."""
    with transaction() as session:
        found = service.get_user_by_username(session=session, username=user)
        if found is None:
            raise NotFound(f"no user called {user!r}")
        actor = actor_for_user(found)
        token, secret = service.create_token(
            session=session,
            actor=actor,
            token_in=TokenCreate(name=name, scopes=scope, expires_in_days=days, for_org=org),
        )
        console.print(
            f"token {token.id} expires {token.expires_at.isoformat()}; copy it now, it is not shown again:"
        )
        typer.echo(secret)


@token_app.command("list")
@handle_errors
def token_list(as_user: str = AS_USER) -> None:
    """List tokens (never their secrets)."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "name", "prefix", "org", "user", "scopes", "expires", "state")
        for t in service.list_tokens(session=session, actor=actor, limit=100000).items:
            table.add_row(
                str(t.id),
                t.name,
                t.prefix,
                t.org.code,
                t.user.username if t.user else "(org)",
                ",".join(t.scopes),
                t.expires_at.date().isoformat(),
                "revoked" if t.revoked_at else "active",
            )
        console.print(table)


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: int = typer.Argument(...), as_user: str = AS_USER) -> None:
    """Revoke a token."""
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        service.revoke_token(session=session, actor=actor, token_id=token_id)
        console.print(f"revoked token {token_id}")
