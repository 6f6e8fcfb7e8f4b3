"""The `zhishe` command end to end: init, organisations, users, tokens, datasets."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
from typer.testing import CliRunner

from zhishe.cli import app

runner = CliRunner()


def zs(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_from_organisation_to_exported_versions(db, tmp_path):
    assert "database already at revision" in zs("init")
    zs(
        "org",
        "create",
        "dept-env",
        "--name-zh",
        "生态环境局",
        "--kind",
        "department",
        "--name-en",
        "Environment",
    )
    zs(
        "user",
        "create",
        "env.steward",
        "--org",
        "dept-env",
        "--role",
        "steward",
        "--password",
        "long-enough-1",
    )
    assert "env.steward" in zs("user", "list", "--org", "dept-env")
    out = zs("token", "create", "--user", "env.steward", "--name", "etl", "--scope", "catalog:read")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("zs_") and secret not in zs("token", "list")

    meta = tmp_path / "meta.json"
    meta.write_text(
        json.dumps(
            {
                "slug": "air",
                "title_zh": "空气",
                "sharing_class": "unconditional",
                "owner_org_id": 1,
                "columns": [
                    {"name": "station", "type": "string", "is_key": True},
                    {"name": "pm25", "type": "decimal"},
                ],
            }
        )
    )
    zs("dataset", "create", str(meta), "--as", "env.steward")
    first = tmp_path / "v0.csv"
    first.write_text("station,pm25\nA,1.5\nB,2.5\n")
    assert "version 0: 2 rows written" in zs(
        "dataset", "import", str(first), "--dataset", "air", "--note", "first"
    )
    second = tmp_path / "v1.csv"
    second.write_text("station,pm25\nB,3.5\nC,4.5\n")
    assert "version 1" in zs("dataset", "import", str(second), "--dataset", "air", "--mode", "upsert")
    versions = zs("dataset", "versions", "air")
    assert "upsert" in versions and "first" in versions
    diff = json.loads(zs("dataset", "diff", "air", "--from", "0", "--to", "1"))
    assert (diff["added"], diff["removed"], diff["changed"]) == (1, 0, 1)
    out_file = tmp_path / "air.parquet"
    assert "wrote 2 rows" in zs(
        "dataset", "export", "air", "-o", str(out_file), "--format", "parquet", "--version", "0"
    )
    assert pq.read_table(out_file).num_rows == 2
    assert '"slug": "air"' in zs("dataset", "show", "air")
    assert "intact" in zs("audit", "verify")


def test_cli_import_refusal_exits_1_and_names_the_bad_value(db, tmp_path):
    zs("org", "create", "dept-env", "--name-zh", "生态环境局", "--kind", "department")
    meta = tmp_path / "meta.json"
    meta.write_text(
        json.dumps(
            {
                "slug": "air",
                "title_zh": "空气",
                "sharing_class": "unconditional",
                "owner_org_id": 1,
                "columns": [{"name": "n", "type": "integer"}],
            }
        )
    )
    zs("dataset", "create", str(meta))
    bad = tmp_path / "bad.csv"
    bad.write_text("n\n1\nx\n3\n")
    result = runner.invoke(app, ["dataset", "import", str(bad), "--dataset", "air"])
    assert result.exit_code == 1
    assert "row 2, column n" in result.output and "nothing was imported" in result.output
    skipped = runner.invoke(app, ["dataset", "import", str(bad), "--dataset", "air", "--skip-bad-rows"])
    assert skipped.exit_code == 0 and "1 rejected" in skipped.output


def test_cli_errors_are_one_clear_line(db):
    result = runner.invoke(app, ["dataset", "show", "nope"])
    assert result.exit_code == 1 and "error: dataset nope does not exist" in result.output
    result = runner.invoke(app, ["org", "create", "x", "--name-zh", "x", "--kind", "planet"])
    assert result.exit_code == 2


def test_help_lists_every_group_and_every_dataset_command():
    top = zs("--help")
    for group in ("org", "user", "token", "dataset", "audit", "exchange", "init", "serve", "demo"):
        assert group in top
    dataset = zs("dataset", "--help")
    for command in ("list", "show", "create", "import", "versions", "diff", "export"):
        assert command in dataset
    assert "--skip-bad-rows" in zs("dataset", "import", "--help")


def test_the_import_command_loads_no_web_query_or_diff_code():
    # `zhishe dataset import` starts a new process each time: what it imports is its start-up cost
    code = (
        "import sys\n"
        "import zhishe.cli, zhishe.catalog.flows\n"
        "heavy = ('fastapi', 'uvicorn', 'jinja2', 'duckdb', 'sqlglot', 'openpyxl', 'pyarrow.parquet',\n"
        "         'zhishe.app', 'zhishe.catalog.api', 'zhishe.catalog.reads', 'zhishe.catalog.lake.diffing')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_error_messages_keep_their_brackets(db, tmp_path):
    """A refusal naming a pattern such as [a-z0-9] is printed whole, not read as console markup."""
    metadata = tmp_path / "bad.json"
    metadata.write_text('{"slug": "x", "title_zh": "x", "sharing_class": "unconditional"}', encoding="utf-8")
    result = runner.invoke(app, ["dataset", "create", str(metadata)])
    assert result.exit_code == 1
    assert "[a-z0-9]" in result.output


_EVERY_FORMAT = r"""
import json, sys
from pathlib import Path
from zhishe.cli import app

work = Path(sys.argv[1])
def zs(*args):
    app(list(args), standalone_mode=False)

zs("init")
zs("org", "create", "bureau", "--name-zh", "数据局", "--kind", "data_bureau")
meta = work / "meta.json"
meta.write_text(json.dumps({"slug": "air", "title_zh": "空气", "sharing_class": "unconditional",
    "owner_org_id": 1, "columns": [{"name": "station", "type": "string"}, {"name": "pm25", "type": "decimal"},
    {"name": "day", "type": "date"}]}))
zs("dataset", "create", str(meta))
for name in ("a.csv", "b.xlsx", "c.json", "d.ndjson", "e.parquet"):
    zs("dataset", "import", str(work / name), "--dataset", "air")
print(json.dumps({"pandas": "pandas" in sys.modules}))
"""


def test_every_format_imports_in_a_command_process_without_pandas(tmp_path):
    """`zhishe dataset import` keeps pandas out of its process (pyarrow would load it for nothing);
    every format still imports, so no path of the command needs it."""
    import datetime
    import os

    import openpyxl
    import pyarrow as pa

    (tmp_path / "a.csv").write_text(
        "station,pm25,day\n东城,35.5,2026-01-01\n西城,,2026-01-02\n", encoding="utf-8"
    )
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["station", "pm25", "day"])
    sheet.append(["朝阳", 12.0, "2026-01-03"])
    book.save(tmp_path / "b.xlsx")
    (tmp_path / "c.json").write_text(json.dumps([{"station": "海淀", "pm25": 8.25, "day": "2026-01-04"}]))
    (tmp_path / "d.ndjson").write_text(json.dumps({"station": "丰台", "pm25": 9, "day": "2026-01-05"}) + "\n")
    day = pa.array([datetime.date(2026, 1, 6)], pa.date32())
    pq.write_table(pa.table({"station": ["通州"], "pm25": [1.5], "day": day}), tmp_path / "e.parquet")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZHISHE_")},
        "ZHISHE_DATA_DIR": str(tmp_path / "var"),
    }
    out = subprocess.run(
        [sys.executable, "-c", _EVERY_FORMAT, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "version 4: 1 rows written" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"pandas": False}
