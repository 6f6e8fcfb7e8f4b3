"""The ``zhishe`` command: one Typer sub-app per domain, plus init, serve and demo."""

from __future__ import annotations

import typer

from zhishe.catalog.cli import dataset_app
from zhishe.core.accounts.cli import org_app, token_app, user_app
from zhishe.core.audit.cli import audit_app
from zhishe.core.cli_support import console, handle_errors, keep_loaded
from zhishe.energy.cli import energy_app
from zhishe.exchange.cli import exchange_app
from zhishe.finance.cli import finance_app
from zhishe.iot.cli import iot_app
from zhishe.opendata.cli import areas_app, opendata_app
from zhishe.participation.cli import participation_app
from zhishe.services.cli import services_app

app = typer.Typer(
    name="zhishe",
    help="Zhishe (智社): the open smart-community platform. Settings come from ZHISHE_* variables and .env.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(dataset_app, name="dataset")
app.add_typer(audit_app, name="audit")
app.add_typer(exchange_app, name="exchange")
app.add_typer(opendata_app, name="opendata")
app.add_typer(areas_app, name="areas")
app.add_typer(iot_app, name="iot")
app.add_typer(energy_app, name="energy")
app.add_typer(participation_app, name="participation")
app.add_typer(services_app, name="services")
app.add_typer(finance_app, name="finance")


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
