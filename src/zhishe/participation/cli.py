"""`zhishe participation`: report categories, Open311 api_keys, the work-order queue, the sweeps
(escalation, reminders, clusters, suggestion deadlines, unconfirmed fixes) and the measures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, org_id_of, resolve_actor, transaction
from zhishe.core.errors import Invalid

participation_app = typer.Typer(
    help="Participation: report categories, Open311 keys, work orders, sweeps and measures.",
    no_args_is_help=True,
)

__all__ = ["participation_app"]


@participation_app.command("categories-load")
@handle_errors
def categories_load(
    path: Path = typer.Argument(
        ..., help="JSON file: a list of Open311-shaped service definitions with SLAs"
    ),
    as_user: str = AS_USER,
) -> None:
    """Create or replace report categories and their questions from a file; all or nothing."""
    from zhishe.participation import admin

    try:
        specs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(f"cannot read the categories file: {exc}", detail={"argument": "path"}) from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        loaded = admin.load_categories(session=session, actor=actor, specs=specs)
        console.print(f"{len(loaded)} categories loaded: {', '.join(c.code for c in loaded)}")


@participation_app.command("categories")
@handle_errors
def categories() -> None:
    """List the report categories with their SLAs."""
    from zhishe.participation import service

    with transaction() as session:
        table = Table("code", "name", "group", "type", "SLA", "questions")
        for category in service.list_categories(session=session, active_only=False):
            questions = service.attributes_of(session=session, category_id=category.id)
            table.add_row(
                category.code,
                category.name_zh,
                category.group,
                category.type,
                f"{category.sla_amount} working {category.sla_unit}",
                str(len(questions)),
            )
        console.print(table)


@participation_app.command("api-key")
@handle_errors
def api_key(
    org: str = typer.Option(..., help="Code of the organisation whose client the key is for"),
    name: str = typer.Option(..., help="What the key is for, e.g. 'WeChat mini-program'"),
    per_minute: int = typer.Option(None, help="Reports a minute the key may post (default: the setting)"),
    as_user: str = AS_USER,
) -> None:
    """Create an Open311 api_key; it is shown once."""
    from zhishe.participation import apikeys

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        org_id = org_id_of(session, org)
        assert org_id is not None
        key, raw = apikeys.create_key(
            session=session, actor=actor, org_id=org_id, name=name, per_minute=per_minute
        )
        console.print(f"api_key {key.id} ({key.name}, {key.per_minute}/min): {raw}")
        console.print("[yellow]Shown once: store it in the client now.[/yellow]")


@participation_app.command("queue")
@handle_errors
def queue(
    org: str = typer.Option(None, help="Organisation code (default: the acting user's)"),
    state: str = typer.Option("open", help="A state, or 'open' for every open one"),
    overdue: bool = typer.Option(False, "--overdue", help="Only orders past their deadline"),
    limit: int = typer.Option(50, min=1, max=500),
    as_user: str = AS_USER,
) -> None:
    """List work orders of an organisation."""
    from zhishe.participation import escalation, service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        page = service.queue(
            session=session,
            actor=actor,
            org_id=org_id_of(session, org),
            state=state or None,
            overdue=True if overdue else None,
            limit=limit,
        )
        table = Table("id", "state", "deadline", "level", "overdue", "description")
        for request in page.items:
            table.add_row(
                str(request.id),
                request.state + (f" ({request.wait_reason})" if request.wait_reason else ""),
                request.expected_at.isoformat() if request.expected_at else "",
                str(request.escalation_level),
                "yes" if escalation.overdue_badge(request) else "",
                request.description[:40],
            )
        console.print(table)


@participation_app.command("sweep")
@handle_errors
def sweep(
    at: str = typer.Option(None, help="Sweep as of this time (ISO 8601 with offset); default now"),
) -> None:
    """Escalate orders, remind incident task owners, propose incidents from clusters, chase late
    suggestion responses and close unconfirmed fixes (the server does it every minute)."""
    from zhishe.participation import worker

    now = datetime.fromisoformat(at) if at else None
    if now is not None and now.tzinfo is None:
        raise Invalid("--at needs a timezone offset", detail={"option": "--at"})
    with transaction() as session:
        result = worker.sweep_once(session, now)
    for name, count in result.items():
        console.print(f"{name}: {count}")


@participation_app.command("measures")
@handle_errors
def measures(as_user: str = AS_USER) -> None:
    """Recompute the participation measures and publish them as the data bureau's datasets."""
    from zhishe.participation import measures as measures_

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        versions = measures_.publish(session=session, actor=actor)
    for slug, version in versions.items():
        console.print(f"{slug}: version {version}")
