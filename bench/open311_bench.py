"""Open311 benchmark: POST and GET through ``zhishe serve`` under 200 concurrent clients on loopback.

1. a fresh data directory and ``zhishe init``; seeded through the services: two departments, a
   street-lights team, three categories (one with a required string and a single-value list, one
   without attributes, one ``batch``), routing rules, and an api_key with a limit no run reaches;
2. ``zhishe serve`` (uvicorn, ``--workers``) as a subprocess on a free port;
3. the client measured alone: the same requests sent by the same client to a null HTTP server
   that answers at once (the most the client can send, so a server figure near it is the client's);
4. POST ``/open311/v2/requests.json`` (form-encoded, each report different), then GET: single requests
   (``requests/{id}.json``), then list pages (``requests.json?page_size=…&page=…``, a random page
   of the requests just filed) for each ``--page-sizes``. Each phase is bounded by a count
   (``--posts``, ``--gets``) and a time (``--seconds``), whichever comes first, after a warm-up of
   ``--warmup`` requests;
5. the baseline in the same run: ``GET /healthz`` through the same server and clients (the
   framework's floor: a route that reads nothing), and the client alone (3.).

The client is a small asyncio HTTP/1.1 client on raw sockets: ``--clients`` connections (kept
alive, one request in flight each) spread over ``--processes`` processes. Every answer is checked
(201 with a ``service_request_id`` for a POST, 200 with a JSON list for a GET); anything else is an
error. After the POST phase the database must hold exactly as many reports as were answered 201.

Prints per phase: requests, seconds, requests/s, p50/p95/p99 latency and errors, the client's
ceiling, and whether the goals are met (POST ≥ 300/s, GET ≥ 1,500/s, p95 < 200 ms).

    .venv/bin/python bench/open311_bench.py [--quick] [--workers 2] [--clients 200] [--processes 2]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/zhishe_open311_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from bench_env import fresh_postgres, init_platform

CENTRE = (39.9042, 116.4074)
GOALS = {"POST": 300.0, "GET": 1500.0}
P95_GOAL = 0.200


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


def setup(env: dict[str, str]) -> str:
    """``zhishe init`` and the seed; returns the raw api_key."""
    init_platform(env)
    from zhishe.core import clock
    from zhishe.core.accounts import service as accounts
    from zhishe.core.accounts.schemas import OrgCreate
    from zhishe.core.auth import system_actor
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker, reset_engine
    from zhishe.participation import apikeys
    from zhishe.participation.models import Category, CategoryAttribute, RoutingRule, Team

    actor = system_actor("bench")
    with get_sessionmaker(get_settings().database_url).begin() as session:
        city = accounts.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code="bench-city", name_zh="城管局", kind="department"),  # type: ignore[arg-type]
        )
        operator = accounts.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code="bench-op", name_zh="运营公司", kind="operator"),  # type: ignore[arg-type]
        )
        # The categories are configuration, written as the test world writes them.
        now = clock.now()
        lights = Category(
            code="streetlight",
            name_zh="路灯故障",
            name_en="Street light out",
            group="市政设施",
            sla_amount=3,
            sla_unit="days",
            created_at=now,
        )
        leak = Category(
            code="leak", name_zh="漏水", name_en="Water leak", sla_amount=4, sla_unit="hours", created_at=now
        )
        noise = Category(code="noise", name_zh="噪音扰民", name_en="Noise", type="batch", created_at=now)
        session.add_all([lights, leak, noise])
        session.flush()
        session.add_all(
            [
                CategoryAttribute(
                    category_id=lights.id,
                    code="pole_number",
                    datatype="string",
                    order=1,
                    required=True,
                    description="Pole number",
                ),
                CategoryAttribute(
                    category_id=lights.id,
                    code="light_state",
                    datatype="singlevaluelist",
                    order=2,
                    required=True,
                    values=[{"key": "out", "name": "Not lit"}, {"key": "flicker", "name": "Flickering"}],
                ),
            ]
        )
        team = Team(org_id=city.id, name="路灯班", created_at=now)
        session.add(team)
        session.flush()
        session.add_all(
            [
                RoutingRule(category_id=lights.id, org_id=city.id, team_id=team.id),
                RoutingRule(category_id=None, org_id=city.id, priority=1000),
            ]
        )
        _key, raw = apikeys.create_key(
            session=session, actor=actor, org_id=operator.id, name="bench", per_minute=apikeys.MAX_PER_MINUTE
        )
    reset_engine()
    return raw


# --- the client --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One phase for one client process."""

    port: int
    requests: list[bytes]
    expect: int
    connections: int
    begin_at: float
    deadline: float


def post_requests(key: str, count: int, seed: int) -> list[bytes]:
    """``count`` different reports, form-encoded, as whole HTTP/1.1 requests."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        kind = rng.random()
        params: list[tuple[str, str]] = [("api_key", key)]
        if kind < 0.7:
            params += [
                ("service_code", "streetlight"),
                ("attribute[pole_number]", f"P-{rng.randrange(1, 9999)}"),
                ("attribute[light_state]", rng.choice(["out", "flicker"])),
            ]
        else:
            params.append(("service_code", "leak"))
        params += [
            ("lat", f"{CENTRE[0] + rng.uniform(-0.01, 0.01):.6f}"),
            ("long", f"{CENTRE[1] + rng.uniform(-0.01, 0.01):.6f}"),
            ("description", f"bench report {seed}-{number}: 路灯不亮 near gate {rng.randrange(1, 40)}"),
            ("email", f"resident{number}@example.cn"),
        ]
        body = urlencode(params).encode()
        out.append(
            b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
    return out


def get_requests(ids: list[int], count: int, seed: int, page_size: int) -> list[bytes]:
    """``count`` GETs: single requests (``page_size`` 0), or list pages of ``page_size`` records."""
    rng = random.Random(seed)
    pages = max(1, len(ids) // max(1, page_size))
    out = []
    for _ in range(count):
        if page_size:
            path = f"/open311/v2/requests.json?page_size={page_size}&page={rng.randrange(1, pages + 1)}"
        else:
            path = f"/open311/v2/requests/{rng.choice(ids)}.json"
        out.append(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _drive(job: Job) -> dict[str, Any]:
    queue = list(reversed(job.requests))
    latencies: list[float] = []
    errors: list[str] = []
    ids: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", job.port, limit=2**22)
        try:
            while queue and time.monotonic() < job.deadline:
                request = queue.pop()
                t0 = time.perf_counter()
                try:
                    status, body = await _exchange(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", job.port, limit=2**22)
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != job.expect or not body.startswith((b"[", b"{")):
                    errors.append(f"HTTP {status}: {body[:200]!r}")
                elif job.expect == 201:
                    created = orjson.loads(body)[0]
                    if "service_request_id" in created:
                        ids.append(int(created["service_request_id"]))
        finally:
            writer.close()

    while time.monotonic() < job.begin_at:
        await asyncio.sleep(0.001)
    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(job.connections)))
    return {
        "latencies": latencies,
        "errors": errors,
        "ids": ids,
        "started": started,
        "finished": time.monotonic(),
    }


def client_process(job: Job) -> dict[str, Any]:
    """Run one process's share of a phase on its own event loop."""
    return asyncio.run(_drive(job))


def run_phase(
    pool: Any, port: int, requests: list[bytes], expect: int, connections: int, processes: int, seconds: float
) -> dict[str, Any]:
    """Share the requests and connections among the processes; all start together."""
    begin_at = time.monotonic() + 0.5 + len(requests) * 0.00002
    jobs = [
        Job(
            port,
            requests[i::processes],
            expect,
            connections // processes + (i < connections % processes),
            begin_at,
            begin_at + seconds,
        )
        for i in range(processes)
    ]
    parts = pool.map(client_process, jobs)
    latencies = [x for p in parts for x in p["latencies"]]
    return {
        "requests": len(latencies),
        "seconds": max(p["finished"] for p in parts) - min(p["started"] for p in parts),
        "latencies": latencies,
        "errors": [x for p in parts for x in p["errors"]],
        "ids": [x for p in parts for x in p["ids"]],
    }


# --- a null server: the client's ceiling ---------------------------------------------------------------

_NULL_BODY = b'[{"service_request_id":"1","service_notice":null,"account_id":null}]'


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
            status = b"200 OK" if head.startswith(b"GET") else b"201 Created"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(_NULL_BODY)).encode()
                + b"\r\n\r\n"
                + _NULL_BODY
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def null_server(port: int) -> None:
    """An HTTP/1.1 server that answers every request at once with a fixed body."""

    async def main() -> None:
        server = await asyncio.start_server(_null_handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the run -----------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")
    )


def _line(name: str, result: dict[str, Any]) -> str:
    rate = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    lat = result["latencies"]
    return (
        f"{name:<24} {result['requests']:7,} requests in {result['seconds']:6.2f} s = {rate:8,.0f}/s   "
        f"p50 {_pct(lat, 0.5) * 1000:7.1f} ms  p95 {_pct(lat, 0.95) * 1000:7.1f} ms  "
        f"p99 {_pct(lat, 0.99) * 1000:7.1f} ms  errors {len(result['errors'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=12_000, help="most POSTs in the timed phase")
    parser.add_argument("--gets", type=int, default=60_000, help="most GETs in the timed phase")
    parser.add_argument("--seconds", type=float, default=40.0, help="most seconds of each timed phase")
    parser.add_argument("--warmup", type=int, default=1000, help="requests of each warm-up")
    parser.add_argument("--clients", type=int, default=200, help="concurrent connections")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--page-sizes",
        type=int,
        nargs="*",
        default=[10, 50],
        help="page_size of the list pages measured (each its own phase)",
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL URL of a database to recreate")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, 50 clients")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.posts, args.gets, args.seconds, args.warmup, args.clients = 600, 2000, 15.0, 100, 50
    backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    print(
        f"open311 bench: {backend}, {args.clients} clients in {args.processes} process(es), {args.workers} "
        f"server worker(s); at most {args.posts:,} POSTs and {args.gets:,} GETs, {args.seconds:.0f} s a phase; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print("load average (1, 5, 15 min) at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="zhishe-open311-") as tmp:
        work = Path(tmp)
        env = {
            "ZHISHE_DATA_DIR": str(work / "var"),
            "ZHISHE_SECRET_KEY": "bench-secret-key-not-for-production",
            "ZHISHE_LOG_LEVEL": "WARNING",
            "ZHISHE_BACKGROUND_WORKERS": "false",
        }
        if args.database_url:
            fresh_postgres(args.database_url)
            env["ZHISHE_DATABASE_URL"] = args.database_url
        key = setup(env)
        posts = post_requests(key, args.posts + args.warmup, args.seed)
        with ctx.Pool(args.processes) as pool:
            null_port = _free_port()
            null = ctx.Process(target=null_server, args=(null_port,), daemon=True)
            null.start()
            _wait_for(null_port)
            ceiling_post = run_phase(
                pool, null_port, posts[args.warmup :], 201, args.clients, args.processes, args.seconds
            )
            null.terminate()
            port = _free_port()
            log = (work / "server.log").open("wb")
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "zhishe.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            try:
                _wait_for(port)
                warm = run_phase(
                    pool, port, posts[: args.warmup], 201, args.clients, args.processes, args.seconds
                )
                post = run_phase(
                    pool, port, posts[args.warmup :], 201, args.clients, args.processes, args.seconds
                )
                ids = warm["ids"] + post["ids"]
                stored = _count_reports(args.database_url or f"sqlite:///{work / 'var' / 'zhishe.db'}")
                gets = {}
                for size in (0, *args.page_sizes):
                    mix = get_requests(ids, args.gets + args.warmup, args.seed + size, size)
                    run_phase(pool, port, mix[: args.warmup], 200, args.clients, args.processes, args.seconds)
                    gets[size] = run_phase(
                        pool, port, mix[args.warmup :], 200, args.clients, args.processes, args.seconds
                    )
                health = [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"] * args.gets
                floor = run_phase(pool, port, health, 200, args.clients, args.processes, args.seconds)
            finally:
                server.terminate()
                try:
                    server.wait(20)
                except subprocess.TimeoutExpired:
                    server.kill()
                log.close()
                logged = [
                    line
                    for line in (work / "server.log").read_text(errors="replace").splitlines()
                    if '"level": "error"' in line or "Traceback" in line
                ]
            null_port = _free_port()
            null = ctx.Process(target=null_server, args=(null_port,), daemon=True)
            null.start()
            _wait_for(null_port)
            ceiling_get = run_phase(
                pool,
                null_port,
                get_requests(ids, args.gets, args.seed, 0),
                200,
                args.clients,
                args.processes,
                args.seconds,
            )
            null.terminate()
        if args.database_url:
            fresh_postgres(args.database_url, drop_only=True)
    print()
    print(_line("POST requests.json", post))
    for size, result in gets.items():
        print(_line("GET requests/{id}.json" if not size else f"GET page of {size}", result))
    print(_line("baseline GET /healthz", floor))
    print(_line("client alone, POST", ceiling_post))
    print(_line("client alone, GET", ceiling_get))
    answered = len(warm["ids"]) + len(post["ids"])
    print(
        f"reports in the database {stored:,}; answered 201 {answered:,}: {'equal' if stored == answered else 'DIFFERENT'}"
    )
    for name, goal, result in (
        ("POST", GOALS["POST"], post),
        *(("GET", GOALS["GET"], r) for r in gets.values()),
    ):
        rate = result["requests"] / result["seconds"]
        p95 = _pct(result["latencies"], 0.95)
        met = rate >= goal and p95 < P95_GOAL and not result["errors"]
        print(
            f"goal {name}: ≥ {goal:,.0f}/s with p95 < 200 ms and no errors: "
            f"{'met' if met else 'NOT met'} ({rate:,.0f}/s, p95 {p95 * 1000:.0f} ms, {len(result['errors'])} errors)"
        )
        for error in result["errors"][:3]:
            print(f"    error: {error}")
    if logged:
        print(f"the server logged {len(logged)} errors; the first: {logged[0][:600]}")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def _count_reports(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.execute(text("SELECT count(*) FROM participation_requests")).scalar() or 0)
    engine.dispose()
    return count


if __name__ == "__main__":
    main()
