"""The audit hash chain: every change appends an event; tampering is found and named."""

from __future__ import annotations

import itertools

from sqlalchemy import select, text
from typer.testing import CliRunner

from helpers import bearer, login
from zhishe.cli import app as cli_app
from zhishe.core.audit.models import AuditEvent
from zhishe.core.audit.service import verify
from zhishe.core.auth import system_actor


def _make_events(world, client) -> None:
    bureau = world.org("bureau", kind="data_bureau")
    world.user("bureau.admin", bureau, role="admin")
    assert login(client, "bureau.admin", "wrong-password").status_code == 401
    assert login(client, "bureau.admin").status_code == 303


def test_events_form_an_intact_chain(client, world, db):
    _make_events(world, client)
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert len(events) >= 2
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
    result = verify(session=db, actor=system_actor())
    assert result.ok and result.count == len(events)


def test_editing_one_row_breaks_verify_naming_that_event(client, world, db):
    _make_events(world, client)
    target = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
    db.execute(
        text("UPDATE audit_events SET detail = :d WHERE id = :i"), {"d": '{"forged": true}', "i": target.id}
    )
    db.commit()
    result = verify(session=db, actor=system_actor())
    assert not result.ok
    assert result.broken_at == target.id
    assert f"event {target.id}" in result.reason
    runner = CliRunner()
    out = runner.invoke(cli_app, ["audit", "verify"])
    assert out.exit_code == 1
    assert f"broken at event {target.id}" in out.output


def test_deleting_a_row_is_found(client, world, db):
    _make_events(world, client)
    db.execute(text("DELETE FROM audit_events WHERE id = 1"))
    db.commit()
    result = verify(session=db, actor=system_actor())
    assert not result.ok and result.broken_at == 1 and "missing" in result.reason


def test_cli_verify_reports_the_count_when_intact(client, world, db):
    _make_events(world, client)
    count = len(db.scalars(select(AuditEvent)).all())
    out = CliRunner().invoke(cli_app, ["audit", "verify"])
    assert out.exit_code == 0, out.output
    assert f"intact: {count} events" in out.output


def test_audit_api_filters_by_user_and_action(client, world, db):
    _make_events(world, client)
    admin = db.scalar(select(__import__("zhishe.core.accounts.models", fromlist=["User"]).User))
    headers = bearer(db, admin)
    body = client.get("/api/v1/audit/events", params={"action": "auth.login_failed"}, headers=headers).json()
    assert body["items"] and all(e["action"] == "auth.login_failed" for e in body["items"])
    body = client.get("/api/v1/audit/events", params={"user": "bureau.admin"}, headers=headers).json()
    assert body["items"] and all(e["actor"] == "bureau.admin" for e in body["items"])
    assert client.get("/api/v1/audit/verify", headers=headers).json()["ok"] is True


def test_naive_since_is_refused_with_the_parameter_named(client, world, db):
    _make_events(world, client)
    admin = db.scalar(select(__import__("zhishe.core.accounts.models", fromlist=["User"]).User))
    response = client.get(
        "/api/v1/audit/events", params={"since": "2026-01-01T00:00:00"}, headers=bearer(db, admin)
    )
    assert response.status_code == 422
    assert "since" in response.json()["error"]["message"]


def test_steward_sees_only_events_on_their_own_organisations_objects(client, world, db):
    env = world.org("dept-env")
    water = world.org("dept-water")
    steward = world.user("env.steward", env)
    other = world.user("water.steward", water)
    from zhishe.core.accounts.service import actor_for_user
    from zhishe.core.audit.service import list_events, record

    record(
        session=db,
        actor=actor_for_user(other),
        action="dataset.read",
        object_type="dataset",
        object_id=9,
        object_org_id=water.id,
    )
    record(
        session=db,
        actor=actor_for_user(other),
        action="dataset.read",
        object_type="dataset",
        object_id=3,
        object_org_id=env.id,
    )
    db.commit()
    seen = list_events(session=db, actor=actor_for_user(steward)).items
    assert [e.object_org_id for e in seen] == [env.id]
