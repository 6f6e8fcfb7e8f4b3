"""The ``zhishe`` command: one Typer sub-app per domain, plus init, serve and demo."""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from zhishe.core.cli_support import console, handle_errors, keep_loaded

#: Each domain's command group: its name, and the module and Typer app that define it. A group is
#: imported only when a command of it runs (or help lists it): ``zhishe dataset import`` starts a
#: process each time, and loading every domain's models and services first would cost it a second.
GROUPS: dict[str, tuple[str, str]] = {
    "org": ("zhishe.core.accounts.cli", "org_app"),
    "user": ("zhishe.core.accounts.cli", "user_app"),
    "token": ("zhishe.core.accounts.cli", "token_app"),
    "dataset": ("zhishe.catalog.cli", "dataset_app"),
    "audit": ("zhishe.core.audit.cli", "audit_app"),
    "exchange": ("zhishe.exchange.cli", "exchange_app"),
    "opendata": ("zhishe.opendata.cli", "opendata_app"),
    "areas": ("zhishe.opendata.cli", "areas_app"),
    "iot": ("zhishe.iot.cli", "iot_app"),
    "energy": ("zhishe.energy.cli", "energy_app"),
    "participation": ("zhishe.participation.cli", "participation_app"),
    "services": ("zhishe.services.cli", "services_app"),
    "finance": ("zhishe.finance.cli", "finance_app"),
}


class _Commands(TyperGroup):
    """The top-level command: its own commands, and the domain groups imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *GROUPS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in GROUPS:
            return super().get_command(ctx, cmd_name)
        module, attribute = GROUPS[cmd_name]
        sub: Any = getattr(importlib.import_module(module), attribute)
        command = typer.main.get_group(sub)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="zhishe",
    help="Zhishe (智社): the open smart-community platform. Settings come from ZHISHE_* variables and .env.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Commands,
)


@app.command()
@handle_errors
def init() -> None:
    """Create or upgrade the database and the data directory (keeps existing data)."""
    from zhishe.core.config import get_settings
    from zhishe.core.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    if "://" not in settings.lake_uri:
        from pathlib import Path

        Path(settings.lake_uri).mkdir(parents=True, exist_ok=True)
    settings.secret()
    before, after = upgrade(settings.database_url)
    if before == after:
        console.print(f"database already at revision {after}")
    else:
        console.print(f"database upgraded from {before or 'empty'} to {after}")
    console.print(f"data directory: {settings.data_dir.resolve()}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes (use PostgreSQL for more than one)"),
    reload: bool = typer.Option(False, help="Reload on code changes (development)"),
) -> None:
    """Serve the web pages and the API."""
    import uvicorn

    from zhishe.core.config import get_settings

    settings = get_settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        console.print(
            "[yellow]note:[/] several workers on SQLite serialise writes; PostgreSQL is recommended"
        )
    uvicorn.run(
        "zhishe.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        access_log=False,
    )


@app.command()
@handle_errors
def demo(
    seed: int = typer.Option(2026, help="Seed of the generated community (same seed, same community)"),
    households: int = typer.Option(2000, help="Number of households"),
) -> None:
    """Load the deterministic demo community (organisations, users, datasets) and print the logins."""
    from zhishe.demo.load import load_demo

    load_demo(seed=seed, households=households)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    finally:
        # The process ends here: spare its shutdown the full garbage collections over every
        # object still alive (a quarter of a second on each run). What was written is committed.
        keep_loaded()


if __name__ == "__main__":
    main()
