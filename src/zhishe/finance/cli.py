"""`zhishe finance`: the ledger, settlements, exports, revenue streams and the profit model."""

from __future__ import annotations

import typer

from zhishe.finance import cli_ledger, cli_revenue

finance_app = typer.Typer(
    help="Operator finance: the ledger, settlements, exports, revenue streams and the profit model.",
    no_args_is_help=True,
)

__all__ = ["finance_app"]

for _module in (cli_ledger, cli_revenue):
    _module.register(finance_app)
