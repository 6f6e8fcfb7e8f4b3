"""The lake package loads its modules on first use, and every public name still resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

from zhishe.catalog import lake


def test_every_public_name_resolves_to_its_module_object() -> None:
    for name in lake.__all__:
        value = getattr(lake, name)
        module = lake._LAZY.get(name)
        if module is not None:
            assert value is getattr(importlib.import_module(f"zhishe.catalog.lake.{module}"), name)
        assert name in dir(lake)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        lake.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected an AttributeError")


def test_writing_needs_neither_duckdb_nor_sqlglot() -> None:
    code = (
        "import sys\n"
        "from zhishe.catalog import lake\n"
        "lake.write_version, lake.table_exists, lake.LakeConflictError\n"
        "print(sorted(m for m in ('duckdb', 'sqlglot', 'zhishe.catalog.lake.query') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
