"""Import benchmark: a generated 1,000,000-row x 12-column CSV through `zhishe dataset import`,
against the near-physical baseline pyarrow.csv.read_csv + deltalake.write_deltalake on the same file,
plus the p50/p95 latency of preview pages 1 and 100 through the API.

    .venv/bin/python bench/import_bench.py [--rows 1000000] [--runs 3]

Prints medians and the ratio against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLUMNS = [
    {"name": "id", "type": "integer", "is_key": True},
    {"name": "district", "type": "string"},
    {"name": "category", "type": "string"},
    {"name": "ts", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "m1", "type": "decimal"},
    {"name": "m2", "type": "decimal"},
    {"name": "count", "type": "integer"},
    {"name": "ok", "type": "boolean"},
    {"name": "code", "type": "string"},
    {"name": "score", "type": "integer"},
    {"name": "note", "type": "string"},
]
DISTRICTS = ["东城", "西城", "朝阳", "海淀", "丰台", "石景山", "通州", "顺义"]
CATEGORIES = ["路灯", "垃圾", "噪音", "漏水", "停车", "绿化"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write the benchmark CSV (UTF-8, header, 12 mixed-type columns)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(c["name"] for c in COLUMNS) + "\n")
        chunk = []
        for i in range(rows):
            ts = start + timedelta(seconds=37 * i)
            chunk.append(
                f"{i},{DISTRICTS[i % 8]},{CATEGORIES[rng.randrange(6)]},{ts.isoformat()},{ts.date().isoformat()},"
                f"{rng.uniform(0, 100):.3f},{rng.gauss(50, 10):.2f},{rng.randrange(1000)},"
                f"{'true' if rng.random() < 0.5 else 'false'},C{rng.randrange(10000):05d},{rng.randrange(-50, 50)},"
                f"note {i % 97}\n"
            )
            if len(chunk) == 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return (seconds, peak RSS in MiB of the child, stdout)."""
    runner = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "sys.stderr.write(p.stderr[-2000:])\n"
        "print(p.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(p.stdout)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", runner, *cmd], env=env, capture_output=True, text=True, check=True
    )
    first, _, rest = out.stdout.partition("\n")
    code, seconds, rss_kb = first.split()
    if code != "0":
        raise RuntimeError(f"{cmd} failed: {out.stderr[-2000:]}")
    return float(seconds), int(rss_kb) / 1024, rest


BASELINE = """
import sys, pyarrow.csv as pc, deltalake
table = pc.read_csv(sys.argv[1])
deltalake.write_deltalake(sys.argv[2], table, mode="overwrite")
print(table.num_rows)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_latencies(env: dict[str, str], data: Path, token: str, requests: int = 30) -> dict[str, list[float]]:
    """Median-friendly samples of the latency of preview pages 1 and 100 through the API."""
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "zhishe"), "serve", "--port", str(port)],
        env=env,
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/api/v1/datasets/bench/rows"
        after = None
        for _ in range(99):
            after = httpx.get(
                url, params={"limit": 50, **({"after": after} if after else {})}, headers=headers, timeout=60
            ).json()["next"]
        samples: dict[str, list[float]] = {"page 1": [], "page 100": []}
        for _ in range(requests):
            for name, params in (("page 1", {"limit": 50}), ("page 100", {"limit": 50, "after": after})):
                t = time.perf_counter()
                response = httpx.get(url, params=params, headers=headers, timeout=60)
                samples[name].append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200 and len(response.json()["rows"]) == 50
        return samples
    finally:
        server.terminate()
        server.wait(timeout=20)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhishe-bench-"))
    try:
        csv = work / "bench.csv"
        t = time.perf_counter()
        generate(csv, args.rows)
        print(
            f"generated {args.rows:,} rows x 12 columns, {csv.stat().st_size / 2**20:.0f} MiB "
            f"in {time.perf_counter() - t:.1f} s"
        )
        zs, base = [], []
        token = ""
        for run in range(args.runs):
            data = work / f"var{run}"
            env = {**os.environ, "ZHISHE_DATA_DIR": str(data), "ZHISHE_LOG_LEVEL": "WARNING"}
            env.pop("ZHISHE_DATABASE_URL", None)
            env.pop("ZHISHE_LAKE_URI", None)
            subprocess.run([str(BIN / "zhishe"), "init"], env=env, check=True, capture_output=True)
            meta = work / "meta.json"
            meta.write_text(
                json.dumps(
                    {
                        "slug": "bench",
                        "title_zh": "基准",
                        "sharing_class": "unconditional",
                        "owner_org_id": 1,
                        "columns": COLUMNS,
                    }
                )
            )
            subprocess.run(
                [
                    str(BIN / "zhishe"),
                    "org",
                    "create",
                    "bench-org",
                    "--name-zh",
                    "基准机构",
                    "--kind",
                    "data_bureau",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [str(BIN / "zhishe"), "dataset", "create", str(meta)],
                env=env,
                check=True,
                capture_output=True,
            )
            seconds, rss, _ = measured(
                [str(BIN / "zhishe"), "dataset", "import", str(csv), "--dataset", "bench"], env
            )
            zs.append((seconds, rss))
            b_seconds, b_rss, _ = measured(
                [sys.executable, "-c", BASELINE, str(csv), str(work / f"base{run}")], env
            )
            base.append((b_seconds, b_rss))
            print(
                f"run {run + 1}: zhishe import {seconds:.2f} s ({args.rows / seconds:,.0f} rows/s, peak {rss:.0f} MiB)"
                f" | baseline {b_seconds:.2f} s ({args.rows / b_seconds:,.0f} rows/s, peak {b_rss:.0f} MiB)"
            )
            if run == args.runs - 1:
                subprocess.run(
                    [
                        str(BIN / "zhishe"),
                        "user",
                        "create",
                        "bench.admin",
                        "--org",
                        "bench-org",
                        "--role",
                        "admin",
                        "--password",
                        "bench-password-1",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                out = subprocess.run(
                    [
                        str(BIN / "zhishe"),
                        "token",
                        "create",
                        "--user",
                        "bench.admin",
                        "--name",
                        "bench",
                        "--scope",
                        "catalog:read",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                token = out.stdout.strip().splitlines()[-1]
                latencies = page_latencies(env, data, token)
        z_med = statistics.median(s for s, _ in zs)
        b_med = statistics.median(s for s, _ in base)
        print()
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}"
        )
        print(
            f"zhishe dataset import (with validation): median {z_med:.2f} s = {args.rows / z_med:,.0f} rows/s, "
            f"peak memory {max(r for _, r in zs):.0f} MiB"
        )
        print(
            f"baseline read_csv + write_deltalake:     median {b_med:.2f} s = {args.rows / b_med:,.0f} rows/s, "
            f"peak memory {max(r for _, r in base):.0f} MiB"
        )
        print(f"throughput ratio zhishe / baseline: {b_med / z_med:.2f} (goal >= 0.50)")
        for name, values in latencies.items():
            print(
                f"API preview {name} (50 rows): p50 {pct(values, 0.5):.1f} ms, p95 {pct(values, 0.95):.1f} ms "
                f"over {len(values)} requests"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
