"""What the benchmarks share: a throwaway ``var/`` with its environment, on a fresh SQLite database or
on a PostgreSQL database that is recreated before the run and dropped after it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fresh_postgres", "init_platform", "throwaway_var"]


def fresh_postgres(url: str, *, drop_only: bool = False) -> None:
    """Drop the database named in ``url`` and, unless ``drop_only``, create it empty again."""
    from sqlalchemy import create_engine, text

    if drop_only:  # the run's own pooled connections go first
        from zhishe.core.db import reset_engine

        reset_engine()
    base, _, name = url.rpartition("/")
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop_only:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


@contextmanager
def throwaway_var(prefix: str, database_url: str = "") -> Iterator[Path]:
    """Point the platform at a temporary ``var/`` (background work off, quiet logs) and, when
    ``database_url`` names PostgreSQL, at that database recreated; yield the data directory."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        env = {
            "ZHISHE_DATA_DIR": str(Path(tmp) / "var"),
            "ZHISHE_LOG_LEVEL": "WARNING",
            "ZHISHE_SECRET_KEY": "bench-secret",
            "ZHISHE_BACKGROUND_WORKERS": "false",
        }
        if database_url:
            fresh_postgres(database_url)
            env["ZHISHE_DATABASE_URL"] = database_url
        os.environ.update(env)
        try:
            yield Path(env["ZHISHE_DATA_DIR"])
        finally:
            if database_url:
                fresh_postgres(database_url, drop_only=True)


def init_platform(env: dict[str, str]) -> None:
    """``zhishe init`` in a process of its own with ``env``, then this process pointed at the same
    settings, with fresh engines and every cross-domain hook installed."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "zhishe.cli", "init"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    os.environ.update(env)
    import zhishe.tables  # noqa: F401 - every table, for the foreign keys
    from zhishe import hooks
    from zhishe.core.config import reset_settings
    from zhishe.core.db import reset_engine

    reset_settings()
    reset_engine()
    hooks.install()
