"""Test fixtures: one database per test run (SQLite by default, PostgreSQL when
ZHISHE_DATABASE_URL names it), emptied before each test; a fresh lake per test; factories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

os.environ.setdefault("ZHISHE_ENVIRONMENT", "test")
os.environ.setdefault("ZHISHE_LOG_LEVEL", "WARNING")

from helpers import PASSWORD
from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.auth import hash_password
from zhishe.core.config import get_settings, reset_settings
from zhishe.core.db import get_sessionmaker, reset_engine
from zhishe.hooks import install as install_hooks
from zhishe.tables import Base

install_hooks()

_HASH = hash_password(PASSWORD)


def _postgres_url() -> str | None:
    url = os.environ.get("ZHISHE_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def _fresh_postgres(url: str) -> str:
    """Recreate the test database named in ``url`` so every run starts empty."""
    base, _, name = url.rpartition("/")
    name = name.split("?")[0] or "zhishe_test"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # one database per xdist worker
        name = f"{name}_{worker}"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def settings_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("zhishe-var")
    url = _postgres_url()
    url = _fresh_postgres(url) if url else f"sqlite:///{data_dir / 'zhishe.db'}"
    env = {
        "ZHISHE_DATA_DIR": str(data_dir),
        "ZHISHE_DATABASE_URL": url,
        "ZHISHE_LAKE_URI": str(data_dir / "lake"),
        "ZHISHE_SECRET_KEY": "test-secret-key-not-for-production",
        "ZHISHE_MAX_UPLOAD_MB": "64",
        "ZHISHE_WEBHOOK_ALLOW_PRIVATE": "true",
        "ZHISHE_BACKGROUND_WORKERS": "false",
        "ZHISHE_OPENDATA_RATE_ANONYMOUS": "1000000",
        "ZHISHE_OPENDATA_RATE_TOKEN": "1000000",
    }
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_settings()
    reset_engine()
    from zhishe.core.migrate import upgrade

    upgrade(url)
    yield env
    reset_engine()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


def _has_sqlite_sequence(session: Session) -> bool:
    return bool(
        session.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")).scalar()
    )


@pytest.fixture()
def db(settings_env: dict[str, str]) -> Iterator[Session]:
    """An empty database (every table emptied), an empty lake, and a session on it."""
    settings = get_settings()
    maker = get_sessionmaker(settings.database_url)
    with maker.begin() as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            from zhishe.finance.ledger import APPEND_ONLY_DDL, APPEND_ONLY_DROP

            for statement in APPEND_ONLY_DROP["sqlite"]:  # the ledger refuses deletes: lift it to empty it
                session.execute(text(statement))
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
            for statement in APPEND_ONLY_DDL["sqlite"]:
                session.execute(text(statement))
            if _has_sqlite_sequence(session):
                session.execute(text("DELETE FROM sqlite_sequence"))
        from zhishe.core.audit.service import ensure_head

        ensure_head(session)
    shutil.rmtree(settings.lake_uri, ignore_errors=True)
    Path(settings.lake_uri).mkdir(parents=True, exist_ok=True)
    from zhishe.opendata import service as opendata

    opendata.forget_store()  # release ids restart with the database: drop cached connections and files
    from zhishe.opendata import queries, usage

    usage.forget()
    queries.forget_totals()
    shutil.rmtree(settings.opendata_dir, ignore_errors=True)
    session = maker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        clock.set_clock(None)


class World:
    """Factories for a small world of organisations and users."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def org(self, code: str, kind: str = "department", name: str | None = None) -> Organisation:
        org = Organisation(code=code, name_zh=name or code, name_en=code, kind=kind, created_at=clock.now())
        self.session.add(org)
        self.session.commit()
        return org

    def user(self, username: str, org: Organisation, role: str = "steward", **extra: Any) -> User:
        user = User(
            username=username,
            org_id=org.id,
            role=role,
            password_hash=_HASH,
            display_name=username,
            created_at=clock.now(),
            **extra,
        )
        self.session.add(user)
        self.session.commit()
        return user


@pytest.fixture()
def world(db: Session) -> World:
    return World(db)


@pytest.fixture()
def app(settings_env: dict[str, str]) -> Any:
    from zhishe.app import create_app

    return create_app()


@pytest.fixture()
def client(app: Any, db: Session) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _every_k_anonymous_release_is_checked_by_pycanon(request: pytest.FixtureRequest) -> Iterator[None]:
    """After any test that made open-data releases, every k-anonymous one it produced (draft or
    published) is read back from its serving copy and checked by the independent pycanon."""
    yield
    if "db" not in request.fixturenames:
        return
    from sqlalchemy import select

    from opendata.privacy.pycanon_check import assert_k_anonymous
    from zhishe.opendata import service
    from zhishe.opendata.models import Release

    with get_sessionmaker(get_settings().database_url)() as session:
        releases = list(session.scalars(select(Release).where(Release.model == "k_anonymity")))
    store = service.release_store()
    for release in releases:
        model = release.policy.get("model") or {}
        if not release.risk.get("meets_policy") or not store.exists(release.store_key):
            continue
        table = store.execute(
            {"data": release.store_key}, "SELECT * FROM data", timeout=60, max_rows=10**7, include_row=False
        )
        assert_k_anonymous(
            table, model["quasi_identifiers"], model["k"], model.get("sensitive") or (), model.get("l")
        )
