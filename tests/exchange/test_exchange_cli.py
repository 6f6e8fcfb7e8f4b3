"""`zhishe exchange` end to end: request, queue, narrow, grants, usage, revoke, calendar."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from zhishe.cli import app

runner = CliRunner()


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _json(output: str) -> dict:
    return json.loads(output[output.index("{") :])


def test_request_answer_read_and_revoke_from_the_command_line(xw, tmp_path):
    filed = _json(
        zs(
            "exchange",
            "request",
            "air",
            "--purpose",
            "防汛调度",
            "--legal-basis",
            "共享管理办法第十条",
            "--columns",
            "station,day,pm25,aqi",
            "--from",
            "2026-09-18",
            "--until",
            "2026-12-31",
            "--mode",
            "export",
            "--as",
            "water.steward",
        )
    )
    assert filed["state"] == "submitted"
    queue = zs("exchange", "list", "--box", "incoming", "--as", "env.steward")
    assert "防汛调度" in queue
    narrowed = _json(
        zs(
            "exchange",
            "narrow",
            str(filed["id"]),
            "--reason",
            "只提供东四",
            "--where",
            '{"column": "station", "op": "=", "value": "东四"}',
            "--columns",
            "station,day,pm25",
            "--as",
            "env.steward",
        )
    )
    assert narrowed["state"] == "active" and narrowed["narrowed"] is True
    assert "export" in zs("exchange", "grants", "--as", "water.analyst")

    out = tmp_path / "air.csv"
    zs("dataset", "export", "air", "-o", str(out), "--as", "water.analyst")
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["station", "day", "pm25"]
    assert [r[0] for r in rows[1:]] == ["东四", "东四"]

    usage = zs("exchange", "usage", "air", "--as", "env.steward")
    assert "防汛调度" in usage

    refused = zs("exchange", "revoke", str(filed["id"]), "--reason", "", "--as", "env.steward", code=1)
    assert "reason" in refused
    zs("exchange", "revoke", str(filed["id"]), "--reason", "结束", "--as", "env.steward")
    denied = zs("dataset", "export", "air", "-o", str(out), "--as", "water.analyst", code=1)
    assert "approved request" in denied


def test_bad_input_is_a_clear_error(xw):
    bad_where = zs(
        "exchange",
        "request",
        "air",
        "--purpose",
        "x",
        "--legal-basis",
        "y",
        "--columns",
        "station",
        "--from",
        "2026-09-18",
        "--until",
        "2026-12-31",
        "--where",
        "{not json",
        "--as",
        "water.steward",
        code=1,
    )
    assert "--where" in bad_where
    assert "not a date" in zs("exchange", "calendar", "--holiday", "2026-13-40", code=1)


def test_the_calendar_ships_the_statutory_holidays_and_can_be_edited(xw):
    shown = zs("exchange", "calendar", "--year", "2026")
    assert "国庆节" in shown and "2026-10-10" in shown
    edited = zs("exchange", "calendar", "--year", "2026", "--holiday", "2026-12-31", "--name", "区级调休")
    assert "区级调休" in edited
    assert "区级调休" not in zs("exchange", "calendar", "--year", "2026", "--remove", "2026-12-31")
    refused = zs("exchange", "calendar", "--holiday", "2026-12-30", "--as", "env.steward", code=1)
    assert "calendar" in refused


def test_issues_derived_datasets_and_the_dashboard_from_the_command_line(xw):
    xw.granted(mode="query")
    assert "air" in zs("exchange", "views", "--as", "water.steward")
    made = zs(
        "exchange", "derive", "air-cli", "--sql", "SELECT count(*) AS n FROM air", "--title", "计数", "--as", "water.steward"
    )  # fmt: skip
    assert "air-cli" in made
    assert '"upstream"' in zs("exchange", "lineage", "air-cli", "--as", "water.steward")
    refused = zs(
        "exchange", "derive", "x-x", "--sql", "ATTACH 'x'", "--title", "x", "--as", "water.steward", code=1
    )
    assert "ATTACH" in refused
    filed = zs(
        "exchange", "issue", "air", "--problem", "值有误", "--key", "station=东四", "--key", "day=2026-01-02",
        "--column", "pm25", "--as", "water.analyst",
    )  # fmt: skip
    assert "filed" in filed
    assert "值有误" in zs("exchange", "issues", "--as", "env.steward")
    assert "not column=value" in zs("exchange", "issue", "air", "--problem", "x", "--key", "bad", code=1)
    figures = zs("exchange", "dashboard", "--as", "bureau.admin")
    assert '"requests_by_state"' in figures
    assert "0 delivery attempt(s)" in zs("exchange", "deliver")
    assert "version 1" in zs("exchange", "refresh-derived", "air-cli", "--as", "water.steward")
