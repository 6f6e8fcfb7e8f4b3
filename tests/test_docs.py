"""Docs stay true: every CLI command and every setting is documented; the README opens right."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from zhishe.cli import GROUPS, app
from zhishe.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _groups() -> dict[str, typer.Typer]:
    """Every command group of ``zhishe``: the domain groups are loaded on first use (``GROUPS``)."""
    return {name: getattr(importlib.import_module(module), attr) for name, (module, attr) in GROUPS.items()}


def _commands(typer_app: typer.Typer, prefix: str = "zhishe") -> list[str]:
    names = []
    for command in typer_app.registered_commands:
        name = command.name or (command.callback.__name__.replace("_", "-") if command.callback else "")
        names.append(f"{prefix} {name.rstrip('-')}")
    groups = {g.name: g.typer_instance for g in typer_app.registered_groups if g.name}
    if typer_app is app:
        groups.update(_groups())
    for name, group in groups.items():
        names += _commands(group, f"{prefix} {name}")
    return names


def test_the_lazy_groups_are_all_listed() -> None:
    assert len(_groups()) == 13
    assert len([c for c in _commands(app) if c.count(" ") >= 2]) > 60  # the groups' own commands


def test_every_cli_command_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [c for c in _commands(app) if f"`{c}" not in text]
    assert missing == []


def test_every_cli_command_has_help():
    for command in app.registered_commands:
        assert command.callback and command.callback.__doc__, command.name
    for name, group in _groups().items():
        assert group.info.help, name
        for command in group.registered_commands:
            assert command.callback and command.callback.__doc__, f"{name} {command.name}"


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"ZHISHE_{name.upper()}" for name in Settings.model_fields if f"`ZHISHE_{name.upper()}`" not in text
    ]
    assert missing == []


def test_readme_opens_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make demo") and block[1].startswith("make test")


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
