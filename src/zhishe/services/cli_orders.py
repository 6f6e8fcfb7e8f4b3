"""Commands of `zhishe services` (registered by ``services/cli.py``): the marketplace's orders, its
timers (payment expiry, auto-decline, review windows) and its declared processes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, err_console, handle_errors, resolve_actor, transaction
from zhishe.finance.money import yuan_label

__all__ = ["register"]


def orders(
    state: str = typer.Option(None, "--state", help="Only orders in this state (e.g. booked, requested)"),
    provider: bool = typer.Option(
        False, "--provider", help="The orders of the --as user's provider organisation"
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="How many orders to show, newest first"),
    as_user: str = AS_USER,
) -> None:
    """List orders, newest first: every order (the operator), or a provider's with --provider."""
    from zhishe.services import engine, transactions

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        if provider:
            page = transactions.list_orders(session, actor=actor, as_provider=True, state=state, limit=limit)
        else:
            page = transactions.list_all(session, actor=actor, state=state, limit=limit)
        table = Table("id", "process", "state", "status", "listing", "resident", "price", "timer")
        for txn in page.items:
            process = engine.get_process(txn.process)
            table.add_row(
                str(txn.id),
                txn.process,
                txn.state,
                process.fhir_status(txn.state),
                str(txn.listing_id),
                str(txn.resident_user_id),
                yuan_label(txn.price_fen),
                f"{txn.timer_transition} {txn.timer_at:%Y-%m-%d %H:%M}" if txn.timer_at else "-",
            )
        console.print(table)


def timers() -> None:
    """Fire every due timer now (payment expiry, auto-decline, review windows) and print what fired."""
    from zhishe.core.cli_support import maker
    from zhishe.services import engine

    fired: list[tuple[int, str, str]] = []
    with maker()() as session:
        count = engine.run_timers(session, fired_log=fired)
    for transaction_id, transition, state in fired:
        console.print(f"order {transaction_id}: {transition} → {state}")
    console.print(f"{count} timers fired")


def processes(
    directory: Path = typer.Option(None, "--dir", help="Validate the process files of this folder instead"),
) -> None:
    """List the declared processes and validate them; exits 1 naming the first invalid file."""
    from zhishe.services import engine

    try:
        found = engine.load_processes(directory, reload=True)
    except engine.ProcessError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    table = Table("process", "title", "initial", "states", "finals", "transitions", "timers", "file")
    for process in found.values():
        timers_ = sorted({t.name for t in process.transitions if t.is_timer})
        table.add_row(
            process.name,
            process.title_zh,
            process.initial,
            str(len(process.states)),
            ", ".join(sorted(process.finals)),
            str(len({t.name for t in process.transitions})),
            ", ".join(timers_) or "-",
            process.source,
        )
    console.print(table)
    console.print(f"{len(found)} processes valid")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("orders")(handle_errors(orders))
    app.command("timers")(handle_errors(timers))
    app.command("processes")(handle_errors(processes))
