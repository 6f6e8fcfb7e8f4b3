"""`zhishe opendata` and `zhishe areas` end to end against the test database: every command once,
and bad input as one clean line with a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from opendata.open_world import REGISTER_POLICY, SHANGHAI, OpenWorld
from zhishe.cli import app
from zhishe.core.areas.models import Area
from zhishe.opendata import usage

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_counts_from_other_tests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Usage counts wait in a per-process buffer keyed by dataset id, and ids restart with each
    test's database: counts another test left in the buffer must not show on this test's datasets."""
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 1e9)
    usage.forget()
    yield
    usage.forget()


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    if code:  # one clean line (Rich wraps it at the terminal's width)
        assert "Traceback" not in result.output
        assert result.output.startswith("error:")
        return " ".join(result.output.split())
    return result.output


def as_json(output: str) -> Any:
    start = min(i for i in (output.find("{"), output.find("[")) if i >= 0)
    return json.loads(output[start:])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_draft_publish_discard_and_releases(ow: OpenWorld, tmp_path: Path) -> None:
    ow.air(hours=3)
    policy = write(tmp_path, "policy.json", json.dumps({"columns": {"reporter_phone": "drop"}}))
    shown = as_json(
        zs(
            "opendata", "settings", "air", "--policy", str(policy), "--cadence", "hourly",
            "--order-by", "observed_at, station", "--budget", "3", "--as", "env.steward",
        )
    )  # fmt: skip
    assert shown["policy"]["columns"] == {"reporter_phone": {"rule": "drop"}}
    assert shown["cadence"] == "hourly" and shown["order_by"] == ["observed_at", "station"]
    assert shown["dp_budget"] == 3.0
    again = as_json(zs("opendata", "settings", "air", "--as", "env.steward"))  # show, unchanged
    assert again == shown

    draft = as_json(zs("opendata", "draft", "air", "--as", "env.steward"))
    assert draft["state"] == "draft" and draft["number"] is None and draft["row_count"] == 9
    published = as_json(zs("opendata", "publish", str(draft["id"]), "--as", "env.steward"))
    assert published["number"] == 1 and published["state"] == "published"
    assert published["url"] == "/opendata/datasets/air/releases/1"
    assert ow.query().json()["total"] == 9

    other = as_json(zs("opendata", "draft", "air", "--version", "0", "--as", "env.steward"))
    assert "discarded" in zs("opendata", "discard", str(other["id"]), "--as", "env.steward")
    assert ow.client.get("/api/v1/opendata/datasets/air/drafts", headers=ow.h("env.steward")).json() == []
    assert "only drafts" in zs("opendata", "discard", str(draft["id"]), "--as", "env.steward", code=1)

    narrower = write(
        tmp_path, "narrow.json", json.dumps({"columns": {"reporter_phone": "drop", "aqi": "drop"}})
    )
    changed = as_json(zs("opendata", "draft", "air", "--policy", str(narrower), "--as", "env.steward"))
    assert changed["definition_changed"] is True
    assert "note" in zs("opendata", "publish", str(changed["id"]), "--as", "env.steward", code=1)
    zs("opendata", "publish", str(changed["id"]), "--note", "去掉 AQI", "--as", "env.steward")

    listed = zs("opendata", "releases", "air")
    lines = [line for line in listed.splitlines() if line.strip().startswith(("│ 1 ", "│ 2 ", "┃", "│"))]
    assert any("去掉 AQI" in line for line in lines) and "k_anonymity" not in listed
    assert "none" in listed and "yes" in listed


def test_the_cli_refuses_what_the_api_refuses(ow: OpenWorld, tmp_path: Path) -> None:
    ow.air(hours=2)
    assert "does not exist" in zs("opendata", "settings", "nope", "--as", "env.steward", code=1)
    assert "nope" in zs("opendata", "draft", "nope", "--as", "env.steward", code=1)
    assert "no open dataset is called nope" in zs("opendata", "releases", "nope", code=1)
    assert "no open dataset" in zs("opendata", "download", "air", "-o", str(tmp_path / "x.csv"), code=1)

    broken = write(tmp_path, "broken.json", "{not json")
    out = zs("opendata", "settings", "air", "--policy", str(broken), "--as", "env.steward", code=1)
    assert "--policy" in out and "not a readable JSON file" in out
    listed = write(tmp_path, "list.json", "[1, 2]")
    assert "must hold a JSON object" in zs("opendata", "draft", "air", "--policy", str(listed), code=1)
    missing = zs("opendata", "settings", "air", "--policy", str(tmp_path / "absent.json"), code=1)
    assert "No such file or directory" in missing and "--policy" in missing
    unhandled = write(tmp_path, "unhandled.json", json.dumps({"columns": {}}))
    assert "reporter_phone" in zs(
        "opendata", "draft", "air", "--policy", str(unhandled), "--as", "env.steward", code=1
    )
    assert "cadence must be one of" in zs("opendata", "settings", "air", "--cadence", "sometimes", code=1)
    assert "publish its open data" in zs("opendata", "draft", "air", "--as", "water.steward", code=1)
    assert "no active user" in zs("opendata", "draft", "air", "--as", "ghost", code=1)
    assert "no release has the id 999" in zs("opendata", "publish", "999", code=1)
    # nothing was changed by the refusals
    settings = ow.client.get("/api/v1/opendata/datasets/air/settings", headers=ow.h("env.steward")).json()
    assert settings["policy"] == {} and settings["cadence"] == "hourly"


def test_download_writes_a_csv_with_a_bom(ow: OpenWorld, tmp_path: Path) -> None:
    ow.open_air(hours=2)
    target = tmp_path / "air.csv"
    said = zs("opendata", "download", "air", "-o", str(target), "--bom")
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert f"wrote {len(raw):,} bytes" in said
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 6 and "reporter_phone" not in rows[0]
    assert {r["station"] for r in rows} == {"东四", "天坛", "奥体中心"}
    api = ow.client.get("/opendata/api/v1/datasets/air/download.csv", params={"bom": "true"}).content
    assert raw == api

    plain = tmp_path / "plain.csv"
    zs("opendata", "download", "air", "-o", str(plain), "--release", "1")
    assert plain.read_bytes() == raw[3:]
    as_json_file = tmp_path / "air.json"
    zs("opendata", "download", "air", "-o", str(as_json_file), "--format", "json")
    assert len(json.loads(as_json_file.read_text(encoding="utf-8"))) == 6
    assert "unknown format" in zs("opendata", "download", "air", "-o", str(plain), "--format", "doc", code=1)
    assert "has no release 7" in zs("opendata", "download", "air", "-o", str(plain), "--release", "7", code=1)
    # the command line is no public download: it is not counted
    assert ow.client.get("/opendata/api/v1/datasets/air").json()["downloads"] == 1


def test_check_finds_an_overdue_dataset_once(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    assert "0 dataset(s) newly overdue" in zs("opendata", "check")
    ow.at(datetime(2026, 9, 18, 11, 30, tzinfo=SHANGHAI))  # an hourly dataset, 90 minutes on
    assert "1 dataset(s) newly overdue: air" in zs("opendata", "check")
    assert "0 dataset(s) newly overdue" in zs("opendata", "check")


def test_stats_prints_and_publishes_the_figures(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    figures = as_json(zs("opendata", "stats"))
    assert figures["datasets_opened"] == 1 and figures["releases"] == 1
    assert figures["per_month"][0]["month"] == "2026-09"
    refused = zs("opendata", "stats", "--publish", "--as", "env.steward", code=1)
    assert "data bureau" in refused
    published = zs("opendata", "stats", "--publish", "--as", "bureau.admin")
    written = as_json(published[published.rindex("{") :])
    assert set(written) == {"opendata-releases-per-month", "opendata-usage-per-month", "opendata-requests"}
    rows = ow.client.get(
        "/api/v1/datasets/opendata-releases-per-month/rows", headers=ow.h("bureau.admin")
    ).json()
    assert rows["rows"][0]["releases"] == 1


def test_requests_and_answer_from_the_command_line(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    filed = [
        ow.client.post(
            "/opendata/api/v1/requests",
            json={"title": f"请求{n}", "description": "d", "owner_org_id": ow.env.id, "contact": "x@y.cn"},
        ).json()
        for n in range(3)
    ]
    listed = zs("opendata", "requests")
    assert all(f"请求{n}" in listed for n in range(3)) and "x@y.cn" not in listed
    # the last day to answer, in Shanghai: Thursday 24 September (the deadline is 25th 00:00)
    assert listed.count("2026-09-24") == 3 and "2026-09-25" not in listed
    assert "请求" not in zs("opendata", "requests", "--state", "overdue")
    assert "state must be one of" in zs("opendata", "requests", "--state", "lost", code=1)

    first, second, third = (f["id"] for f in filed)
    assert f"request {first} is answered" in zs(
        "opendata", "answer", str(first), "--dataset", "air", "--as", "env.steward"
    )
    assert f"request {second} is declined" in zs(
        "opendata", "answer", str(second), "--decline", "暂无此数据", "--as", "env.admin"
    )
    assert "either --dataset" in zs("opendata", "answer", str(third), "--as", "env.steward", code=1)
    assert "either --dataset" in zs(
        "opendata", "answer", str(third), "--dataset", "air", "--decline", "x", "--as", "env.steward", code=1
    )
    assert "owning organisation" in zs(
        "opendata", "answer", str(third), "--dataset", "air", "--as", "water.steward", code=1
    )
    assert "already answered" in zs("opendata", "answer", str(first), "--decline", "x", code=1)
    assert "no data request has the number 999" in zs("opendata", "answer", "999", "--decline", "x", code=1)

    ow.at(datetime(2026, 10, 1, 9, 0, tzinfo=SHANGHAI))
    overdue = zs("opendata", "requests", "--state", "overdue")
    assert "请求2" in overdue and "请求0" not in overdue and "请求1" not in overdue
    states = {r["id"]: r["state"] for r in ow.client.get("/opendata/api/v1/requests").json()}
    assert states == {first: "answered", second: "declined", third: "open"}


AREAS = """code,parent,level,name_zh,name_en,lat,lon
D1,,district,东城区,Dongcheng,39.93,116.42
S1,D1,subdistrict,东四街道,Dongsi,,
C1,S1,community,东四社区,,39.93,116.42
B01,C1,building,1号楼,Building 1,,
B02,C1,building,2号楼,Building 2,,
"""


def test_areas_import_and_list(ow: OpenWorld, tmp_path: Path) -> None:
    path = write(tmp_path, "areas.csv", AREAS)
    assert "5 area(s) created, 0 updated" in zs("areas", "import", str(path))
    listed = zs("areas", "list")
    for code in ("D1", "S1", "C1", "B01", "B02"):
        assert code in listed
    assert "39.930000" in listed
    buildings = zs("areas", "list", "--level", "building")
    assert "1号楼" in buildings and "东四社区" not in buildings
    under = zs("areas", "list", "--parent", "S1")
    assert "C1" in under and "B01" not in under
    assert "0 area(s) created, 5 updated" in zs("areas", "import", str(path))  # idempotent

    ow.db.rollback()
    stored = {a.code: a for a in ow.db.scalars(select(Area))}
    assert stored["B01"].parent_id == stored["C1"].id and stored["D1"].parent_id is None
    assert stored["C1"].lat == 39.93 and stored["S1"].lat is None

    # bad files are refused as a whole, naming the line
    bad = write(tmp_path, "bad.csv", AREAS + "B03,C1,building,3号楼,,95,\n")
    assert "line 7" in zs("areas", "import", str(bad), code=1)
    orphan = write(tmp_path, "orphan.csv", "code,parent,level,name_zh\nU1,X9,unit,1单元\n")
    assert "parent 'X9' is unknown" in zs("areas", "import", str(orphan), code=1)
    upside = write(tmp_path, "upside.csv", "code,parent,level,name_zh\nD2,B01,district,西城区\n")
    assert "cannot sit under" in zs("areas", "import", str(upside), code=1)
    headless = write(tmp_path, "headless.csv", "code,name\nX,Y\n")
    assert "lacks the column(s) parent, level, name_zh" in zs("areas", "import", str(headless), code=1)
    assert "cannot read" in zs("areas", "import", str(tmp_path / "absent.csv"), code=1)
    assert "level must be one of" in zs("areas", "list", "--level", "street", code=1)
    assert "no area has the code Z9" in zs("areas", "list", "--parent", "Z9", code=1)
    # an area given a narrower level may not end up under or level with its stored children
    relevelled = write(tmp_path, "relevel.csv", "code,parent,level,name_zh\nC1,S1,unit,东四社区\n")
    assert "area B01 (building) cannot sit under C1 (unit)" in zs("areas", "import", str(relevelled), code=1)
    # nor under one of its own descendants (a cycle)
    cycle = write(tmp_path, "cycle.csv", "code,parent,level,name_zh\nS1,B02,unit,东四街道\n")
    assert "cannot sit under" in zs("areas", "import", str(cycle), code=1)
    ow.db.rollback()
    assert len(ow.db.scalars(select(Area)).all()) == 5
    assert {a.code: a.level for a in ow.db.scalars(select(Area))}["C1"] == "community"
    # the public API reads the same list
    api = ow.client.get("/api/v1/areas", params={"parent": "C1"}).json()
    assert [(a["code"], a["parent"]) for a in api] == [("B01", "C1"), ("B02", "C1")]


def test_a_k_anonymous_release_from_the_command_line(ow: OpenWorld, tmp_path: Path) -> None:
    ow.register(households=40)
    policy = write(tmp_path, "register.json", json.dumps(REGISTER_POLICY))
    zs("opendata", "settings", "register", "--policy", str(policy), "--as", "police.steward")
    draft = as_json(zs("opendata", "draft", "register", "--as", "police.steward"))
    assert draft["risk"]["meets_policy"] is True and draft["risk"]["smallest_class"] >= 5
    zs("opendata", "publish", str(draft["id"]), "--as", "police.steward")
    target = tmp_path / "register.csv"
    zs("opendata", "download", "register", "-o", str(target))
    import pyarrow as pa

    from opendata.privacy.pycanon_check import assert_k_anonymous

    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 40
    assert_k_anonymous(
        pa.Table.from_pylist(rows),
        ["building_id", "head_gender", "head_birth_year", "household_size"],
        5,
        sensitive=["receives_subsidy"],
        l=2,
    )
