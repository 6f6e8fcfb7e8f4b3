"""Regenerate requirements.lock and requirements-dev.lock from the .in files (dev-only script)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {
    "requirements": "# Pinned run-time dependencies (the closure of requirements.in). Regenerate with `make lock`.\n",
    "requirements-dev": "# Pinned test and lint tools (the closure of requirements-dev.in). Regenerate with `make lock`.\n"
    "-r requirements.lock\n",
}


def resolve(name: str) -> list[str]:
    """Pinned name==version lines of the closure of ``name``.in."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "-r",
                str(ROOT / f"{name}.in"),
            ],
            check=True,
        )
        data = json.loads(report.read_text())
    return sorted(f"{i['metadata']['name'].lower()}=={i['metadata']['version']}" for i in data["install"])


def main() -> None:
    runtime = resolve("requirements")
    (ROOT / "requirements.lock").write_text(HEADERS["requirements"] + "\n".join(runtime) + "\n")
    base = {line.split("==")[0] for line in runtime}
    dev = [line for line in resolve("requirements-dev") if line.split("==")[0] not in base]
    (ROOT / "requirements-dev.lock").write_text(HEADERS["requirements-dev"] + "\n".join(dev) + "\n")


if __name__ == "__main__":
    main()
