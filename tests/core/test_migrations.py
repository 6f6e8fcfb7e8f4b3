"""One Alembic tree: it builds an empty database, finds no drift, and keeps data on upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from zhishe.core.migrate import head_revision, upgrade
from zhishe.tables import Base


def test_empty_database_upgrades_to_head_without_drift(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    before, after = upgrade(url)
    assert before is None and after == head_revision(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_upgrading_again_keeps_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (code, name_zh, name_en, kind, is_active, created_at) "
                "VALUES ('kept', '保留', 'kept', 'department', 1, '2026-01-01 00:00:00')"
            )
        )
    before, after = upgrade(url)
    assert before == after
    with engine.connect() as connection:
        assert connection.execute(text("SELECT code FROM organisations")).scalar_one() == "kept"


def test_configured_database_is_at_head_without_drift(db, settings_env):
    url = settings_env["ZHISHE_DATABASE_URL"]
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head_revision(url)
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
