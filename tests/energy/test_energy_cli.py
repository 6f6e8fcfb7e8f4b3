"""`zhishe energy` commands end to end: a tariff from a file, the detectors, the alert queue and a
charging plan; bad input as one clean line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from energy.test_views import TARIFF
from iot.iot_world import DAY, IotWorld
from zhishe.cli import app
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.iot import service as iot

runner = CliRunner()


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_tariff_detect_alerts_and_charging_plan_from_the_command_line(iw: IotWorld, tmp_path: Path) -> None:
    definition = tmp_path / "tariff.json"
    definition.write_text(json.dumps(TARIFF))
    out = zs(
        "energy",
        "tariff-add",
        str(definition),
        "--org",
        "op",
        "--family",
        "res",
        "--name",
        "2026",
        "--from",
        "2026-01-01",
        "--as",
        "op-steward",
    )
    assert "res/2026 from 2026-01-01" in out
    assert "overlap" in zs(
        "energy",
        "tariff-add",
        str(definition),
        "--org",
        "op",
        "--family",
        "res",
        "--name",
        "B",
        "--from",
        "2026-03-01",
        "--as",
        "op-steward",
        code=1,
    )
    assert "no organisation" in zs(
        "energy",
        "tariff-add",
        str(definition),
        "--org",
        "nope",
        "--family",
        "x",
        "--name",
        "x",
        "--from",
        "2026-01-01",
        code=1,
    )
    with clock.frozen(DAY + timedelta(hours=12)):
        assert "6 households checked" in zs("energy", "detect")
        assert "timezone" in zs("energy", "detect", "--at", "2026-11-02T10:00", code=1)
        zs("energy", "alerts", "--as", "op-steward")
        park = iot.create_site(
            session=iw.session,
            actor=actor_for_user(iw.steward),
            code="P1",
            kind="charging_park",
            name="充电站",
            parent_id=iw.transformer.id,
        )
        iw.session.commit()
        planned = zs("energy", "charging-plan", park.code, "--as", "op-steward")
    assert "to 0 cars" in planned and "limit 400.0 kW" in planned
