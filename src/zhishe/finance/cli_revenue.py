"""Commands of `zhishe finance` for the revenue streams and the profit model (registered by
``finance/cli.py``): ``profit``, ``costs-import``, ``ads-bill``, ``data-bill`` and ``measures``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid
from zhishe.finance import money

__all__ = ["register"]


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else money.yuan(fen, grouped=True)


@handle_errors
def profit(
    month: str = typer.Option(..., "--month", help="First month, YYYY-MM (platform time)"),
    to: str = typer.Option("", "--to", help="Last month, YYYY-MM (default: the same month)"),
    as_user: str = AS_USER,
) -> None:
    """Show the profit model per month and stream: GMV, take rate, revenue, costs, margin (yuan)."""
    from zhishe.finance import profit as profit_

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        model = profit_.report(session=session, actor=actor, first=month, last=to or None)
        table = Table("month", "stream", "GMV", "take rate", "revenue", "costs", "margin")
        for row in model.rows:
            take = row["take_rate_bps"]
            table.add_row(
                row["month"],
                row["stream"],
                _yuan(row["gmv_fen"]),
                "—" if take is None else f"{take / 100:.2f}%",
                _yuan(row["revenue_fen"]),
                _yuan(row["costs_fen"]),
                _yuan(row["margin_fen"]),
            )
        console.print(table)


@handle_errors
def costs_import(
    path: Path = typer.Argument(..., help="CSV file with the header month,stream,label,amount (yuan)"),
    as_user: str = AS_USER,
) -> None:
    """Import operating costs from a CSV file: every row, or none when any row is bad."""
    from zhishe.finance import costs

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}", detail={"argument": "path"}) from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        imported = costs.import_csv(session=session, actor=actor, data=data, filename=path.name)
        total = sum(c.amount_fen for c in imported)
    console.print(f"{len(imported)} costs imported, {_yuan(total)} yuan in all")


@handle_errors
def ads_bill(as_user: str = AS_USER) -> None:
    """Post what the ad bookings owe so far and have not been billed (safe to repeat)."""
    from zhishe.finance import ads

    with transaction() as session:
        done = ads.bill(session, actor=resolve_actor(session, as_user))
    console.print(f"{done['bookings']} bookings billed, {_yuan(done['billed_fen'])} yuan")


@handle_errors
def data_bill(as_user: str = AS_USER) -> None:
    """Bill the data-subscription months that have begun (safe to repeat)."""
    from zhishe.finance import dataplans

    with transaction() as session:
        done = dataplans.bill(session, actor=resolve_actor(session, as_user))
    console.print(f"{done['subscriptions']} subscriptions billed, {_yuan(done['billed_fen'])} yuan")


@handle_errors
def measures(as_user: str = AS_USER) -> None:
    """Recompute the profit model's figures and publish them as the operator's datasets."""
    from zhishe.finance import measures as measures_

    with transaction() as session:
        versions = measures_.publish(session=session, actor=resolve_actor(session, as_user))
    if not versions:
        console.print("nothing to publish yet")
    for slug, version in versions.items():
        console.print(f"{slug}: version {version}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("profit")(profit)
    app.command("costs-import")(costs_import)
    app.command("ads-bill")(ads_bill)
    app.command("data-bill")(data_bill)
    app.command("measures")(measures)
