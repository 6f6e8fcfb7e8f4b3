"""`zhishe audit`: verify the hash chain."""

from __future__ import annotations

import typer

from zhishe.core.audit import service
from zhishe.core.cli_support import AS_USER, console, err_console, handle_errors, resolve_actor, transaction

audit_app = typer.Typer(help="The audit chain.", no_args_is_help=True)


@audit_app.command("verify")
@handle_errors
def verify(as_user: str = AS_USER) -> None:
    """Walk the audit chain; say it is intact (with the count) or which event breaks it. Exit 1 if broken."""
    with transaction() as session:
        result = service.verify(session=session, actor=resolve_actor(session, as_user))
    if result.ok:
        console.print(f"audit chain intact: {result.count} events")
        return
    err_console.print(f"[bold red]audit chain broken at event {result.broken_at}:[/] {result.reason}")
    raise typer.Exit(1)
