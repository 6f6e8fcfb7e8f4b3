"""Participation wired into the platform: the event bus declares incidents from outbreak alerts,
the `zhishe participation` commands work end to end, and one sweep runs every background job."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from participation.pworld import B1, MONDAY, ParticipationWorld
from zhishe.cli import app
from zhishe.core import clock, events
from zhishe.hooks import install
from zhishe.participation import service, worker
from zhishe.participation.models import Category, Incident, Request

runner = CliRunner()


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output and result.output.startswith("error:")
    return " ".join(result.output.split())


def test_an_outbreak_alert_on_the_bus_declares_an_incident(pw: ParticipationWorld) -> None:
    install()
    events.publish(
        events.Event(
            "health.outbreak_alert",
            {
                "area_code": "C1",
                "title": "流感样病例聚集",
                "description": "7 天内 12 例",
                "severity": 2,
                "disease": "ILI",
            },
        ),
        pw.session,
    )
    incident = pw.session.scalar(select(Incident))
    assert incident is not None
    assert (incident.kind, incident.source, incident.area_id) == ("outbreak", "event", pw.areas["C1"].id)


def test_the_participation_commands(pw: ParticipationWorld, tmp_path: Path) -> None:
    spec = [
        {
            "service_code": "tree",
            "service_name": "树木倒伏",
            "sla_amount": 1,
            "sla_unit": "days",
            "attributes": [{"code": "size", "datatype": "number", "required": True, "order": 1}],
        }
    ]
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    assert "1 categories loaded: tree" in zs("participation", "categories-load", str(path))
    assert pw.session.scalar(select(Category.name_zh).where(Category.code == "tree")) == "树木倒伏"
    listing = zs("participation", "categories")
    assert "streetlight" in listing and "tree" in listing
    path.write_text('[{"service_code": "bad code!", "service_name": "x"}]', encoding="utf-8")
    assert "service_code" in zs("participation", "categories-load", str(path), code=1)
    key = zs("participation", "api-key", "--org", "op", "--name", "小程序", "--per-minute", "30")
    assert "zhishe_311_" in key and "30/min" in key
    assert "error:" in zs("participation", "api-key", "--org", "nobody", "--name", "x", code=1)

    clock.set_clock(lambda: MONDAY)
    request = service.submit(
        session=pw.session,
        actor=pw.actor("res1"),
        category_code="streetlight",
        description="灯坏了",
        lat=B1[0],
        lon=B1[1],
        answers={"pole_number": "P1", "light_state": "out"},
    )
    pw.session.commit()
    clock.set_clock(None)
    queue = zs("participation", "queue", "--as", "city-worker")
    assert str(request.id) in queue and "assigned" in queue
    assert "error:" in zs("participation", "queue", "--as", "res1", code=1)
    late = (MONDAY + timedelta(days=10)).isoformat()
    swept = zs("participation", "sweep", "--at", late)
    assert "escalated orders: 1" in swept
    assert "error:" in zs("participation", "sweep", "--at", "2026-11-10T10:00:00", code=1)
    assert "participation-requests: version" in zs("participation", "measures", "--as", "bureau-admin")
    assert "error:" in zs("participation", "measures", "--as", "city-head", code=1)


def test_one_sweep_runs_every_job(pw: ParticipationWorld) -> None:
    clock.set_clock(lambda: MONDAY)
    request = service.submit(
        session=pw.session,
        actor=pw.actor("res1"),
        category_code="streetlight",
        description="灯坏了",
        lat=B1[0],
        lon=B1[1],
        answers={"pole_number": "P1", "light_state": "out"},
    )
    service.act(session=pw.session, actor=pw.actor("city-worker"), request_id=request.id, action="resolve")
    clock.set_clock(None)
    result = worker.sweep_once(pw.session, MONDAY + timedelta(days=15))
    assert set(result) == {
        "escalated orders",
        "incident reminders",
        "incident proposals",
        "late suggestions",
        "closed unconfirmed",
    }
    assert result["closed unconfirmed"] == 1
    assert pw.session.get(Request, request.id).state == "closed"  # type: ignore[union-attr]
