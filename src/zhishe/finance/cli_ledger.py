"""Commands of `zhishe finance` (registered by ``finance/cli.py``): settlements, exports, the trial
balance and payouts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid

__all__ = ["register"]


def settle(
    month: str = typer.Option(..., "--month", help="The month to settle, like 2026-11 (platform timezone)."),
    as_user: str = AS_USER,
) -> None:
    """Compute and store every provider's settlement statement of a month, and show them."""
    from zhishe.finance import money, settlement

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        rows = settlement.run(session, actor=actor, month=month)
        table = Table(
            "provider",
            "gross",
            "commission",
            "subsidies",
            "refunds",
            "collected",
            "net payable",
            "difference",
        )
        for r in rows:
            table.add_row(
                str(r.provider_id),
                *(
                    money.yuan(v)
                    for v in (
                        r.gross_fen,
                        r.commission_fen,
                        r.subsidies_fen,
                        r.refunds_fen,
                        r.collected_fen,
                        r.net_payable_fen,
                        r.net_payable_fen - r.ledger_movement_fen,
                    )
                ),
            )
        console.print(table)
        unreconciled = sum(1 for r in rows if r.net_payable_fen != r.ledger_movement_fen)
        console.print(f"{len(rows)} statements for {month}; {unreconciled} with a reconciliation difference")


def export_ledger(
    fmt: str = typer.Option("beancount", "--format", help="beancount or csv."),
    out: Path = typer.Option(..., "--out", help="The file to write."),
    start: str = typer.Option(None, "--from", help="First day to include, like 2026-11-01."),
    end: str = typer.Option(None, "--to", help="Last day to include, like 2026-11-30."),
    as_user: str = AS_USER,
) -> None:
    """Export the ledger as Beancount text or CSV (one row per posting), streamed to a file."""
    from sqlalchemy import func, select

    from zhishe.finance import export
    from zhishe.finance.models import Entry

    if fmt not in ("beancount", "csv"):
        raise Invalid("--format must be beancount or csv", detail={"option": "--format"})
    begin, finish = export.parse_range(start, end)
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        query = select(func.count(Entry.id))
        if begin is not None:
            query = query.where(Entry.posted_at >= begin)
        if finish is not None:
            query = query.where(Entry.posted_at < finish)
        total = int(session.scalar(query) or 0)
        maker = export.beancount if fmt == "beancount" else export.csv_rows
        with Progress(console=console) as progress, out.open("w", encoding="utf-8", newline="") as handle:
            task = progress.add_task(f"exporting {total} entries", total=total or 1)
            for chunk in maker(
                session, actor=actor, start=begin, end=finish, progress=lambda n: progress.advance(task, n)
            ):
                handle.write(chunk)
            progress.update(task, completed=total or 1)
        console.print(f"{total} entries written to {out}")


def trial_balance(as_user: str = AS_USER) -> None:
    """Debit and credit balances per currency; each total must be zero."""
    from zhishe.finance import ledger, money

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("currency", "debits", "credits", "total")
        result = ledger.trial_balance(session, actor=actor)
        for currency, row in result.items():
            table.add_row(
                currency,
                money.yuan(row["debits_fen"]),
                money.yuan(row["credits_fen"]),
                money.yuan(row["total_fen"]),
            )
        console.print(table)
        if any(row["total_fen"] for row in result.values()):
            console.print("[red]the ledger does not balance[/red]")
            raise typer.Exit(1)
        console.print("balanced")


def payout(
    provider_id: int = typer.Argument(..., help="The provider's id."),
    amount_fen: int = typer.Argument(..., help="The amount in fen."),
    memo: str = typer.Option("", "--memo", help="A note such as the bank transfer number."),
    as_user: str = AS_USER,
) -> None:
    """Record a payment to a provider: Dr its payable, Cr the bank."""
    from zhishe.finance import settlement

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        entry = settlement.payout(
            session, actor=actor, provider_id=provider_id, amount_fen=amount_fen, memo=memo
        )
        console.print(f"payout posted as entry {entry.id}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("settle")(handle_errors(settle))
    app.command("export")(handle_errors(export_ledger))
    app.command("trial-balance")(handle_errors(trial_balance))
    app.command("payout")(handle_errors(payout))
