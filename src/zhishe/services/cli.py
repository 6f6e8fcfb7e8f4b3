"""`zhishe services`: the marketplace's providers, listings, orders, timers, wallets and vouchers."""

from __future__ import annotations

import typer

from zhishe.services import cli_catalog, cli_money, cli_orders

services_app = typer.Typer(
    help="Community services marketplace: providers, listings, orders, timers, wallets and vouchers.",
    no_args_is_help=True,
)

__all__ = ["services_app"]

for _module in (cli_catalog, cli_orders, cli_money):
    _module.register(services_app)
