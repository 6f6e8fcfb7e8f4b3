"""IoT HTTP ingestion benchmark: readings/s through ``zhishe serve`` against raw Delta appends.

Per database back end (SQLite by default, PostgreSQL with ``--database-url``):

1. a fresh data directory, ``zhishe init``; ``--households`` simulated households provisioned
   through ``zhishe.iot.simulate.provision`` (four devices each, device tokens); a platform
   administrator's API token for reading back;
2. realistic readings from ``zhishe.iot.simulate.generate`` (one-minute meters, events) for the
   days before now, grouped per device into batches of exactly ``--batch`` readings (a device
   sends only its own datastreams), encoded to JSON before any timing;
3. ``zhishe serve`` (uvicorn, one worker unless ``--workers``) as a subprocess on a free port;
4. the client measured alone: the same batches posted by the same client processes to a null
   HTTP server that reads each body and answers at once (the most the client can send);
5. one warm-up run, then ``--runs`` runs of ``--readings`` readings, each batch posted once by one
   of ``--clients`` processes (httpx, one kept-alive connection each). Every batch's answer must say
   ``stored: <batch>``. Every ``--check-every``-th batch is read back through
   ``GET /api/v1/iot/datastreams/{id}/series?interval=raw`` right after its answer: the time from
   sending to seeing every reading there is the "send to queryable" latency;
6. the baseline in the same run: the same readings appended straight to a Delta table with
   ``deltalake.write_deltalake`` (the lake's schema, partitioning and writer settings), in batches
   of ``--batch`` rows (one commit each), and once as one append of a run's rows.

Prints per-run throughput, the median, latency percentiles, the client's ceiling and the ratios.

    .venv/bin/python bench/iot_http_bench.py [--runs 5] [--readings 200000] [--clients 3]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/zhishe_iot_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from bench_env import fresh_postgres, init_platform


@dataclass(frozen=True)
class Batch:
    """One request body, its device token, and what to read back to see it stored."""

    token: str
    body: bytes
    count: int
    check_stream: int
    check_from: str
    check_to: str
    check_count: int


# --- set-up ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def setup(work: Path, env: dict[str, str], households: int, seed: int) -> tuple[list[Any], str]:
    """`zhishe init`, the provisioned households and an administrator's read token."""
    init_platform(env)
    from zhishe.core.accounts import service as accounts
    from zhishe.core.accounts.schemas import OrgCreate, TokenCreate, UserCreate
    from zhishe.core.auth import system_actor
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker, reset_engine
    from zhishe.iot.simulate import provision

    actor = system_actor("bench")
    with get_sessionmaker(get_settings().database_url).begin() as session:
        operator = accounts.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code="bench-op", name_zh="运营", kind="operator"),  # type: ignore[arg-type]
        )
        bureau = accounts.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code="bench-bureau", name_zh="数据局", kind="data_bureau"),  # type: ignore[arg-type]
        )
        admin = accounts.create_user(
            session=session,
            actor=actor,
            user_in=UserCreate(
                username="bench-admin", role="admin", org_id=bureau.id, password="bench-password-1"
            ),  # type: ignore[arg-type]
        )
        _, secret = accounts.create_token(
            session=session,
            actor=accounts.actor_for_user(admin),
            token_in=TokenCreate(name="bench", scopes=["iot:read"]),
        )
        t0 = time.perf_counter()
        roster = provision(session=session, actor=actor, households=households, org_id=operator.id, seed=seed)
    print(
        f"  provisioned {households} households ({households * 4} devices) in {time.perf_counter() - t0:.1f} s"
    )
    reset_engine()
    return roster, secret


def make_batches(roster: list[Any], *, batch: int, needed: int, seed: int, check_every: int,
                 tz: Any) -> tuple[list[Batch], pa.Table]:  # fmt: skip
    """Full batches of one device's readings from the simulator, and the same rows for the lake."""
    from zhishe.iot.simulate import generate

    per_day = len(roster) * 4 * 1440
    days = max(1, math.ceil(needed * 1.5 / per_day))
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    t0 = time.perf_counter()
    by_device: dict[str, list[tuple[int, datetime, float]]] = defaultdict(list)
    tokens: dict[str, str] = {}
    kinds = {"energy": "cumulative", "volume": "cumulative", "power": "instantaneous", "flow": "instantaneous",
             "motion": "event", "door": "event"}  # fmt: skip
    total = 0
    for r in generate(households=len(roster), start=start, end=end, seed=seed, step=60, tz=tz):
        device = roster[r.household].devices[r.device]
        by_device[device.code].append((device.streams[r.key], r.time, r.value))
        tokens[device.code] = device.token
        total += 1
    print(f"  simulated {total:,} readings ({days} days) in {time.perf_counter() - t0:.1f} s")
    stream_kind = {s: kinds[k] for h in roster for d in h.devices.values() for k, s in d.streams.items()}
    full: list[tuple[str, list[tuple[int, datetime, float]]]] = []
    for code, rows in by_device.items():
        full += [(tokens[code], rows[i : i + batch]) for i in range(0, len(rows) - batch + 1, batch)]
    # Interleave devices (a real feed is many devices at once), deterministically.
    full.sort(key=lambda item: (item[1][0][1], item[1][0][0]))
    if len(full) * batch < needed:
        raise RuntimeError(f"only {len(full) * batch:,} readings in full batches; {needed:,} needed")
    full = full[: math.ceil(needed / batch)]
    batches = []
    for number, (token, rows) in enumerate(full):
        body = orjson.dumps([{"datastream": s, "time": t.isoformat(), "value": v} for s, t, v in rows])
        stream = rows[0][0]
        mine = [t for s, t, _ in rows if s == stream]
        batches.append(
            Batch(token, body, len(rows), stream if number % check_every == 0 else 0,
                  min(mine).isoformat(), (max(mine) + timedelta(seconds=1)).isoformat(), len(mine))
        )  # fmt: skip
    flat = [row for _, rows in full for row in rows]
    times = pa.array([t for _, t, _ in flat], pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {
            "id": pa.array(range(1, len(flat) + 1), pa.int64()),
            "datastream_id": pa.array([s for s, _, _ in flat], pa.int64()),
            "time": times,
            "value": pa.array([v for _, _, v in flat], pa.float64()),
            "kind": pa.array([stream_kind[s] for s, _, _ in flat], pa.string()),
            "day": pc.strftime(times, format="%Y-%m-%d"),
        }
    )
    return batches, table


# --- clients ---------------------------------------------------------------------------------------


def client_work(
    port: int, batches: list[Batch], read_token: str, begin_at: float, expect: int = 200
) -> dict[str, Any]:
    """Post each batch on one kept-alive connection; read back the checked ones through the API.

    With ``expect`` 401 the batches carry a wrong token: the server reads, parses and refuses them."""
    latencies: list[float] = []
    queryable: list[float] = []
    errors: list[str] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0) as client:
        client.get("/healthz")
        while time.monotonic() < begin_at:
            time.sleep(0.001)
        started = time.monotonic()
        for b in batches:
            t0 = time.perf_counter()
            answer = client.post(
                "/api/v1/iot/readings",
                content=b.body,
                headers={"Authorization": f"Bearer {b.token}", "Content-Type": "application/json"},
            )
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            if answer.status_code == expect != 200:
                continue
            if answer.status_code != 200:
                errors.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
                continue
            body = orjson.loads(answer.content)
            if body.get("stored") != b.count:
                errors.append(f"stored {body.get('stored')} of {b.count}: {str(body)[:200]}")
            if b.check_stream:
                seen = client.get(
                    f"/api/v1/iot/datastreams/{b.check_stream}/series",
                    params={"from": b.check_from, "to": b.check_to, "interval": "raw"},
                    headers={"Authorization": f"Bearer {read_token}"},
                )
                points = len(seen.json().get("points", [])) if seen.status_code == 200 else -1
                if points != b.check_count:
                    errors.append(f"read back {points} of {b.check_count} readings (HTTP {seen.status_code})")
                else:
                    queryable.append(time.perf_counter() - t0)
        finished = time.monotonic()
    return {"latencies": latencies, "queryable": queryable, "errors": errors, "started": started,
            "finished": finished}  # fmt: skip


def run_clients(pool: ProcessPoolExecutor, port: int, batches: list[Batch], clients: int,
                read_token: str, expect: int = 200) -> dict[str, Any]:  # fmt: skip
    """Share the batches round-robin among the client processes; all start together."""
    begin_at = time.monotonic() + 1.0 + len(batches) * 0.0005  # after the bodies reach the processes
    futures = [
        pool.submit(client_work, port, batches[i::clients], read_token, begin_at, expect)
        for i in range(clients)
    ]
    parts = [f.result() for f in futures]
    wall = max(p["finished"] for p in parts) - min(p["started"] for p in parts)
    return {
        "readings": sum(b.count for b in batches),
        "seconds": wall,
        "latencies": [x for p in parts for x in p["latencies"]],
        "queryable": [x for p in parts for x in p["queryable"]],
        "errors": [x for p in parts for x in p["errors"]],
    }


# --- a null server: the client's ceiling -----------------------------------------------------------

_NULL_ANSWER = b'{"received":1000,"stored":1000,"duplicates":0,"rejected":[]}'


async def _null_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            body = b'{"status":"ok"}' if head.startswith(b"GET") else _NULL_ANSWER
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def null_server(port: int) -> None:
    """An HTTP/1.1 server that reads each request whole and answers a fixed "stored" at once."""

    async def main() -> None:
        server = await asyncio.start_server(_null_handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the baseline: raw Delta appends ---------------------------------------------------------------


def baseline(work: Path, table: pa.Table, batch: int) -> tuple[float, float]:
    """Rows/s appending ``table`` to a fresh Delta table in ``batch``-row commits, and in one commit."""
    from deltalake import write_deltalake

    from zhishe.catalog.lake._table import writer_properties

    target = work / f"baseline-{time.monotonic_ns()}"
    props = writer_properties()
    write_deltalake(str(target), table.slice(0, batch), mode="append", partition_by=["kind", "day"],
                    writer_properties=props)  # fmt: skip
    t0 = time.perf_counter()
    for offset in range(batch, table.num_rows, batch):
        write_deltalake(str(target), table.slice(offset, batch), mode="append", partition_by=["kind", "day"],
                        writer_properties=props)  # fmt: skip
    batched = (table.num_rows - batch) / (time.perf_counter() - t0)
    shutil.rmtree(target, ignore_errors=True)
    target = work / f"baseline-one-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    write_deltalake(str(target), table, mode="append", partition_by=["kind", "day"], writer_properties=props)
    whole = table.num_rows / (time.perf_counter() - t0)
    shutil.rmtree(target, ignore_errors=True)
    return batched, whole


# --- the run ---------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--readings", type=int, default=200_000, help="readings per run")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--check-every", type=int, default=5, help="read back every n-th batch")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL of a database to recreate")
    parser.add_argument("--no-background", action="store_true", help="without the flush to the lake")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    print(f"iot http bench: {backend}, {args.runs} runs x {args.readings:,} readings in batches of {args.batch}, "
          f"{args.clients} client processes, {args.workers} server worker(s), background flush "
          f"{'off' if args.no_background else 'on'}; {os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    print("load average (1, 5, 15 min) at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="zhishe-iot-http-") as tmp:
        work = Path(tmp)
        env = {
            "ZHISHE_DATA_DIR": str(work / "var"),
            "ZHISHE_SECRET_KEY": "bench-secret-key-not-for-production",
            "ZHISHE_LOG_LEVEL": "WARNING",
            "ZHISHE_BACKGROUND_WORKERS": "false" if args.no_background else "true",
        }
        if args.database_url:
            fresh_postgres(args.database_url)
            env["ZHISHE_DATABASE_URL"] = args.database_url
        roster, read_token = setup(work, env, args.households, args.seed)
        from zhishe.core.config import get_settings

        needed = args.readings * (args.runs + 1)
        batches, table = make_batches(roster, batch=args.batch, needed=needed, seed=args.seed,
                                      check_every=args.check_every, tz=get_settings().tz)  # fmt: skip
        per_run = args.readings // args.batch
        runs = [batches[i * per_run : (i + 1) * per_run] for i in range(args.runs + 1)]
        rows = [table.slice(i * args.readings, args.readings) for i in range(args.runs + 1)]
        print(f"  {len(batches):,} batches of {args.batch} ({len(batches[0].body) / 1024:.0f} KiB each)")
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(args.clients, mp_context=ctx) as pool:
            null_port = _free_port()
            null = ctx.Process(target=null_server, args=(null_port,), daemon=True)
            null.start()
            _wait_for(null_port)
            ceiling = run_clients(pool, null_port, runs[1], args.clients, "null")
            null.terminate()
            print(f"  client alone (null server): {ceiling['readings'] / ceiling['seconds']:,.0f} readings/s")

            port = _free_port()
            log = (work / "server.log").open("wb")
            server = subprocess.Popen(
                [sys.executable, "-m", "zhishe.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", str(args.workers)],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )  # fmt: skip
            try:
                _wait_for(port)
                wrong = [replace(b, token="zhishe_dev_" + "x" * 32) for b in runs[0]]
                refused = run_clients(pool, port, wrong, args.clients, read_token, expect=401)
                print(f"  the same batches with a wrong token (read, parsed, refused): "
                      f"{refused['readings'] / refused['seconds']:,.0f} readings/s, p50 "
                      f"{_ms(_pct(refused['latencies'], 0.5))}")  # fmt: skip
                warm = run_clients(pool, port, runs[0], args.clients, read_token)
                print(
                    f"  warm-up: {warm['readings'] / warm['seconds']:,.0f} readings/s, errors {len(warm['errors'])}"
                )
                results = []
                bases = []
                for number in range(1, args.runs + 1):
                    result = run_clients(pool, port, runs[number], args.clients, read_token)
                    base, whole = baseline(work, rows[number], args.batch)
                    results.append(result)
                    bases.append((base, whole))
                    print(f"  run {number}: {result['readings'] / result['seconds']:9,.0f} readings/s "
                          f"({result['seconds']:.2f} s), p99 request {_ms(_pct(result['latencies'], 0.99))}, "
                          f"errors {len(result['errors'])}; baseline {base:9,.0f} rows/s in {args.batch}-row "
                          f"appends, {whole:10,.0f} rows/s in one", flush=True)  # fmt: skip
                    for error in result["errors"][:3]:
                        print(f"    error: {error}")
            finally:
                server.terminate()
                try:
                    server.wait(20)
                except subprocess.TimeoutExpired:
                    server.kill()
                log.close()
                errors = [line for line in (work / "server.log").read_text(errors="replace").splitlines()
                          if '"level": "error"' in line or "Traceback" in line]  # fmt: skip
                if errors:
                    print(f"  the server logged {len(errors)} errors; the first: {errors[0][:600]}")
        if args.database_url:
            fresh_postgres(args.database_url, drop_only=True)
    report(results, bases, ceiling, args.batch)
    print(
        f"server floor (wrong token: body read, parsed, refused): {refused['readings'] / refused['seconds']:,.0f} readings/s"
    )
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def report(results: list[dict[str, Any]], bases: list[tuple[float, float]], ceiling: dict[str, Any],
           batch: int) -> None:  # fmt: skip
    """The medians, the percentiles over every run's requests, and the ratios."""
    rates = [r["readings"] / r["seconds"] for r in results]
    latencies = [x for r in results for x in r["latencies"]]
    queryable = [x for r in results for x in r["queryable"]]
    base = statistics.median(b for b, _ in bases)
    whole = statistics.median(w for _, w in bases)
    ours = statistics.median(rates)
    client = ceiling["readings"] / ceiling["seconds"]
    print()
    print(f"HTTP ingestion, median of {len(rates)} runs: {ours:,.0f} readings/s "
          f"(runs {min(rates):,.0f} to {max(rates):,.0f}); goal 50,000: {'met' if ours >= 50_000 else 'NOT met'}")  # fmt: skip
    print(f"request latency ({len(latencies)} requests of {batch}): p50 {_ms(_pct(latencies, 0.5))}  "
          f"p95 {_ms(_pct(latencies, 0.95))}  p99 {_ms(_pct(latencies, 0.99))}")  # fmt: skip
    print(f"send to queryable ({len(queryable)} batches read back): p50 {_ms(_pct(queryable, 0.5))}  "
          f"p95 {_ms(_pct(queryable, 0.95))}  p99 {_ms(_pct(queryable, 0.99))}")  # fmt: skip
    print(f"errors: {sum(len(r['errors']) for r in results)}")
    print(f"client alone (null server): {client:,.0f} readings/s = {client / ours:.1f}x the server's rate")
    print(
        f"baseline write_deltalake, {batch}-row appends: {base:,.0f} rows/s; ratio http/baseline {ours / base:.2f}"
    )
    print(
        f"baseline write_deltalake, one append per run: {whole:,.0f} rows/s; ratio http/baseline {ours / whole:.3f}"
    )


if __name__ == "__main__":
    main()
