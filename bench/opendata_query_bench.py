"""Open-data query engine benchmark: our release store vs raw DuckDB on Parquet vs Datasette.

Generates a seeded dataset (default 10,000,000 rows x 12 columns: ts, district (12 values), category
(20 values), m1..m9), then in the same run times four queries three or four ways:

- (a) ``engine``: ``soql.compile_query`` + the release store on the release built from the rows
  (sorted by ts, numbered by ``_row``), including the SoQL compilation, as the service runs it: a
  page that is a range of positions is read from the release's rows file (``read_rows``), any
  other query runs in DuckDB (``execute``); ``engine-sql`` is the same with every query in DuckDB;
- (b) ``duckdb``: raw DuckDB on one unsorted Parquet file of the same rows;
- (c) ``datasette``: Datasette over SQLite (indexes on district and ts) in a throwaway venv, through
  its JSON API (``?sql=``);
- (d) ``http``: the whole platform: the rows imported as a dataset version, released through the
  service (model none, ordered by ts) and queried through ``zhishe serve``'s open-data API
  (``/opendata/api/v1/datasets/bench/query.json``) on one kept-alive HTTP connection, JSON parsed.

(c) and (d) run with both servers up, their rounds alternating (``run_alternating``), so that load
from other work on the machine falls on both alike.

The goal is (d) faster than (c) on every query and within 2x of (b).

Queries (``QUERIES``): a selective filter, a group-by, the first page ordered by ts, and page 1,000
by keyset. Prints p50 and p95 over ``--rounds`` runs, and the ratios.

    .venv/bin/python bench/opendata_query_bench.py [--rows 10000000] [--rounds 15] [--no-datasette]
        [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from zhishe.opendata.soql import compile_query
from zhishe.opendata.store import ReleaseStore

DISTRICTS = [f"街道{i:02d}" for i in range(12)]
CATEGORIES = [f"类别{i:02d}" for i in range(20)]
COLUMNS = {"ts": "datetime", "district": "string", "category": "string"} | {
    f"m{i}": "decimal" for i in range(1, 10)
}
PAGE = 100
PAGE_NO = 1_000  # the keyset page timed: rows (PAGE_NO - 1) * PAGE onwards


@dataclass(frozen=True)
class Query:
    """One benchmark query, written for each engine."""

    name: str
    soql: dict[str, str]
    duckdb_sql: str  # over the view `raw`; `?` parameters from `args`
    sqlite_sql: str  # Datasette ?sql=; `:name` parameters from `args`
    keyset: bool = False


def queries(district: str, category: str) -> list[Query]:
    """The four queries, in one place for every engine (including a later HTTP one)."""
    return [
        Query(
            "selective filter",
            {
                "$where": f"district = '{district}' AND category = '{category}' AND m1 > 90",
                "$limit": str(PAGE),
            },
            f"SELECT * FROM raw WHERE district = '{district}' AND category = '{category}' AND m1 > 90 LIMIT {PAGE}",
            f"select * from data where district = '{district}' and category = '{category}' and m1 > 90 "
            f"limit {PAGE}",
        ),
        Query(
            "group by district",
            {"$select": "district, count(*) AS n, sum(m1) AS s", "$group": "district"},
            "SELECT district, count(*) AS n, sum(m1) AS s FROM raw GROUP BY district",
            "select district, count(*) as n, sum(m1) as s from data group by district",
        ),
        Query(
            "order by ts, first page",
            {"$order": "ts", "$limit": str(PAGE)},
            f"SELECT * FROM raw ORDER BY ts LIMIT {PAGE}",
            f"select * from data order by ts limit {PAGE}",
        ),
        Query(
            f"order by ts, page {PAGE_NO:,} (keyset)",
            {"$order": "ts", "$limit": str(PAGE)},
            f"SELECT * FROM raw WHERE ts > ? ORDER BY ts LIMIT {PAGE}",
            f"select * from data where ts > :t order by ts limit {PAGE}",
            keyset=True,
        ),
    ]


def generate(rows: int, seed: int = 7) -> pa.Table:
    """The benchmark rows: ts spread over 2025 in random order, 12 districts, 20 categories, m1..m9."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "us")
    ts = start + rng.integers(0, 365 * 86_400 * 1_000_000, rows).astype("timedelta64[us]")
    cols: dict[str, Any] = {
        "ts": pa.array(ts).cast(pa.timestamp("us", tz="UTC")),
        "district": pa.DictionaryArray.from_arrays(
            rng.integers(0, len(DISTRICTS), rows).astype(np.int8), DISTRICTS
        ).cast(pa.string()),
        "category": pa.DictionaryArray.from_arrays(
            rng.integers(0, len(CATEGORIES), rows).astype(np.int8), CATEGORIES
        ).cast(pa.string()),
        "m1": rng.random(rows) * 100,
    }
    for i in range(2, 10):
        cols[f"m{i}"] = rng.normal(50, 10, rows).round(3)
    return pa.table(cols)


def run_queries(
    name: str, fn: Callable[[Query], Any], qs: list[Query], rounds: int
) -> dict[str, list[float]]:
    """Time `fn` on each query: one warm-up, then `rounds` runs; seconds per run, by query name."""
    out: dict[str, list[float]] = {}
    for q in qs:
        fn(q)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn(q)
            times.append(time.perf_counter() - t0)
        out[q.name] = times
        print(f"  {name:10s} {q.name:32s} p50 {_ms(statistics.median(times))}", flush=True)
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --- (a) our engine --------------------------------------------------------------------------------


def engine_runner(
    store: ReleaseStore, key: str, sort_key: list[str], *, by_position: bool = True
) -> Callable[[Query], Any]:
    """Run a query through compile_query + the release store, as the service does (pages that are
    a range of positions from the rows file unless `by_position` is false)."""
    tokens: dict[str, str] = {}

    def token_for(q: Query) -> str:
        if q.name not in tokens:  # the token a client holds after reading page PAGE_NO - 1
            before = compile_query(
                {**q.soql, "$offset": str((PAGE_NO - 1) * PAGE - 1), "$limit": "1"}, COLUMNS
            )
            last = store.execute({"data": key}, before.sql, before.params, timeout=60, max_rows=1)
            tokens[q.name] = before.next_token(last.to_pylist()[0])
        return tokens[q.name]

    def run(q: Query) -> pa.Table:
        compiled = compile_query(q.soql, COLUMNS, after=token_for(q) if q.keyset else None, sort_key=sort_key)
        span = compiled.row_range if by_position else None
        result = (
            store.read_rows(key, first=span.first, count=span.count, columns=span.columns)
            if span is not None
            else None
        )
        if result is None:
            result = store.execute(
                {"data": key}, compiled.sql, compiled.params, timeout=30, max_rows=compiled.fetch_rows
            )
        return compiled.page(result).rows

    return run


# --- (b) raw DuckDB on Parquet ---------------------------------------------------------------------


def duckdb_runner(parquet: Path, keyset_ts: Any) -> Callable[[Query], Any]:
    """Run a query with plain DuckDB on the unsorted Parquet file."""
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet('{parquet}')")

    def run(q: Query) -> pa.Table:
        args = [keyset_ts] if q.keyset else []
        return con.cursor().sql(q.duckdb_sql, params=args).to_arrow_table()

    return run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    """Wait (up to 30 s) until a server listens on `port`."""
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)


# --- (c) Datasette ---------------------------------------------------------------------------------


def datasette_setup(
    work: Path, table: pa.Table, cache: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """A venv with datasette + sqlite-utils, the rows in SQLite with indexes, and a running server.

    With `cache`, the venv and the SQLite file are kept there and reused by later runs with as many
    rows (the rows are seeded, so they are the same rows): loading 10M rows takes sqlite-utils
    about half an hour on a busy machine.
    """
    home = cache if cache is not None else work
    home.mkdir(parents=True, exist_ok=True)
    venv = home / "venv"
    t0 = time.perf_counter()
    if not (venv / "bin" / "datasette").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "datasette", "sqlite-utils"]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install datasette failed: {done.stderr[-2000:]}")
    print(f"  datasette venv ready in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    folder = home / f"rows-{table.num_rows}"
    folder.mkdir(exist_ok=True)
    db = folder / "bench.db"
    loaded = folder / "loaded"
    if loaded.exists():
        print(f"  SQLite file of an earlier run reused: {db}", flush=True)
    else:
        db.unlink(missing_ok=True)
        csv_path = work / "data.csv"
        ts_text = pc.strftime(table.column("ts").cast(pa.timestamp("us")), format="%Y-%m-%dT%H:%M:%S")
        text_table = table.set_column(0, "ts", ts_text)
        pacsv.write_csv(text_table, csv_path)
        utils = str(venv / "bin" / "sqlite-utils")
        subprocess.run([utils, "insert", str(db), "data", str(csv_path), "--csv"], check=True)
        subprocess.run([utils, "create-index", str(db), "data", "district"], check=True)
        subprocess.run([utils, "create-index", str(db), "data", "ts"], check=True)
        csv_path.unlink()
        loaded.touch()
        print(f"  SQLite loaded and indexed in {time.perf_counter() - t0:.1f} s", flush=True)
    port = _free_port()
    server = subprocess.Popen(
        [
            str(venv / "bin" / "datasette"), "serve", "-i", str(db), "--host", "127.0.0.1", "--port", str(port),
            "--setting", "sql_time_limit_ms", "120000", "--setting", "default_cache_ttl", "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(port)
    return server, port


def _fetch(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    """GET `path` on a kept-alive connection, connecting again once if the server closed it (as
    uvicorn does after 5 idle seconds, e.g. while the other server answers a slow query)."""
    for attempt in (1, 2):
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def datasette_runner(port: int, keyset_ts: str) -> Callable[[Query], Any]:
    """Run a query through Datasette's JSON API on one kept-alive HTTP connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def run(q: Query) -> list[Any]:
        params = {"sql": q.sqlite_sql, "_shape": "array"}
        if q.keyset:
            params["t"] = keyset_ts
        status, body = _fetch(conn, "/bench.json?" + urllib.parse.urlencode(params))
        if status != 200:
            raise RuntimeError(f"datasette said {status}: {body[:300]!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    return run


# --- (d) the platform through its HTTP API ---------------------------------------------------------


def platform_setup(work: Path, parquet: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A fresh data directory with the rows as a released open dataset, and `zhishe serve` on it."""
    env = {
        "ZHISHE_DATA_DIR": str(work / "zhishe"),
        "ZHISHE_SECRET_KEY": "bench-secret-key-not-for-production",
        "ZHISHE_OPENDATA_RATE_ANONYMOUS": "1000000000",
        "ZHISHE_BACKGROUND_WORKERS": "false",
        "ZHISHE_LOG_LEVEL": "WARNING",
        "ZHISHE_OPENDATA_QUERY_TIMEOUT": "30",
    }
    os.environ.update(env)
    from zhishe import hooks
    from zhishe.catalog import flows
    from zhishe.catalog import service as catalog
    from zhishe.catalog.schemas import ColumnIn, DatasetCreate
    from zhishe.core.accounts import service as accounts
    from zhishe.core.accounts.schemas import OrgCreate
    from zhishe.core.auth import system_actor
    from zhishe.core.config import get_settings, reset_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.migrate import upgrade
    from zhishe.opendata import service as opendata

    reset_settings()
    hooks.install()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    actor = system_actor("bench")
    maker = get_sessionmaker(settings.database_url)
    t0 = time.perf_counter()
    with maker.begin() as session:
        org = accounts.create_org(
            session=session,
            actor=actor,
            org_in=OrgCreate(code="bench", name_zh="基准", name_en="Bench", kind="department"),  # type: ignore[arg-type]
        )
        types = {"datetime": "datetime", "string": "string", "decimal": "decimal"}
        catalog.create_dataset(
            session=session,
            actor=actor,
            dataset_in=DatasetCreate(
                slug="bench",
                title_zh="基准数据",
                owner_org_id=org.id,
                sharing_class="unconditional",
                accrual_periodicity="irregular",
                time_column="ts",
                columns=[
                    ColumnIn(name=n, type=types[t], classification="public") for n, t in COLUMNS.items()
                ],  # type: ignore[arg-type]
            ),
        )
    report = flows.import_path(
        maker=maker, actor=actor, dataset="bench", path=parquet, mode="append", note="bench"
    )
    if report.status != "done":
        raise RuntimeError(f"import failed: {report.message}")
    print(f"  imported as a dataset version in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    with maker.begin() as session:
        opendata.configure(session=session, actor=actor, dataset="bench", order_by=["ts"])
        draft = opendata.draft_release(session=session, actor=actor, dataset="bench")
        opendata.publish_release(session=session, actor=actor, release_id=draft.id)
    print(f"  released through the privacy gate in {time.perf_counter() - t0:.1f} s", flush=True)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "zhishe.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(port)
    return server, port


def http_runner(port: int) -> Callable[[Query], Any]:
    """Run a query through the open-data API on one kept-alive HTTP connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    path = "/opendata/api/v1/datasets/bench/query.json?"

    def get(params: dict[str, str]) -> dict[str, Any]:
        status, body = _fetch(conn, path + urllib.parse.urlencode(params))
        if status != 200:
            raise RuntimeError(f"zhishe said {status}: {body[:300]!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    tokens: dict[str, str] = {}

    def run(q: Query) -> list[Any]:
        params = dict(q.soql)
        if q.keyset:
            if q.name not in tokens:  # the token a client holds after reading page PAGE_NO - 1
                before = get({**q.soql, "$offset": str((PAGE_NO - 1) * PAGE - 1), "$limit": "1"})
                tokens[q.name] = before["next"]
            params["$next"] = tokens[q.name]
        return get(params)["rows"]  # type: ignore[no-any-return]

    return run


# --- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-datasette", action="store_true", help="skip (c), e.g. without network")
    parser.add_argument("--no-http", action="store_true", help="skip (d), the platform through HTTP")
    parser.add_argument(
        "--cache-dir", type=Path, help="keep Datasette's venv and SQLite file here and reuse them"
    )
    args = parser.parse_args()
    print(f"opendata query bench: {args.rows:,} rows, {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, DuckDB {duckdb.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="zhishe-odq-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        table = generate(args.rows)
        parquet = work / "raw.parquet"
        pq.write_table(table, parquet)
        print(f"  generated + Parquet in {time.perf_counter() - t0:.1f} s", flush=True)
        store = ReleaseStore(work / "store", threads=2)
        info = store.build("bench", parquet, order_by=["ts"])
        print(
            f"  release built in {info.seconds:.1f} s ({info.bytes / 1e6:.0f} MB, rows file "
            f"{info.rows_file_bytes / 1e6:.0f} MB)",
            flush=True,
        )
        sorted_ts = pc.sort_indices(table.column("ts"))
        keyset_ts = table.column("ts")[sorted_ts[(PAGE_NO - 1) * PAGE - 1].as_py()].as_py()
        qs = queries(DISTRICTS[3], CATEGORIES[7])
        results = {
            "engine": run_queries("engine", engine_runner(store, "bench", info.order_by), qs, args.rounds)
        }
        results["engine-sql"] = run_queries(
            "engine-sql", engine_runner(store, "bench", info.order_by, by_position=False), qs, args.rounds
        )
        results["duckdb"] = run_queries("duckdb", duckdb_runner(parquet, keyset_ts), qs, args.rounds)
        servers: list[subprocess.Popen[bytes]] = []
        runners: dict[str, Callable[[Query], Any]] = {}
        try:
            if not args.no_http:
                zhishe_server, zhishe_port = platform_setup(work, parquet)
                servers.append(zhishe_server)
                runners["http"] = http_runner(zhishe_port)
            if not args.no_datasette:
                server, port = datasette_setup(work, table, args.cache_dir)
                servers.append(server)
                runners["datasette"] = datasette_runner(port, keyset_ts.strftime("%Y-%m-%dT%H:%M:%S"))
            # Both servers are up: their rounds alternate, so both meet the same load on the machine.
            results.update(run_alternating(runners, qs, args.rounds))
        finally:
            for running in servers:
                running.terminate()
                running.wait(10)
        report(results, qs)


def run_alternating(
    runners: dict[str, Callable[[Query], Any]], qs: list[Query], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Like ``run_queries`` for several runners at once: per query, one warm-up each, then `rounds`
    rounds in which each runner runs once, the order turning round by round."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in runners}
    names = list(runners)
    for q in qs:
        for name in names:
            runners[name](q)
        times: dict[str, list[float]] = {name: [] for name in names}
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                t0 = time.perf_counter()
                runners[name](q)
                times[name].append(time.perf_counter() - t0)
        for name in names:
            out[name][q.name] = times[name]
            print(f"  {name:10s} {q.name:32s} p50 {_ms(statistics.median(times[name]))}", flush=True)
    return out


def report(results: dict[str, dict[str, list[float]]], qs: list[Query]) -> None:
    """Print p50/p95 per engine and the engine's ratios to the others."""
    names = list(results)
    print()
    print(f"{'query':34s}" + "".join(f"{n + ' p50':>14s}{n + ' p95':>14s}" for n in names)
          + "".join(f"{'vs ' + n:>14s}" for n in names if n != "engine"))  # fmt: skip
    for q in qs:
        line = f"{q.name:34s}"
        for n in names:
            line += f"{_ms(statistics.median(results[n][q.name])):>14s}{_ms(_p95(results[n][q.name])):>14s}"
        ours = statistics.median(results["engine"][q.name])
        for n in names:
            if n != "engine":
                line += f"{ours / statistics.median(results[n][q.name]):13.2f}x"
        print(line)
    print("(ratio = engine p50 / other p50: below 1 means the engine is faster)")
    if "http" in results:
        print()
        others = [n for n in ("datasette", "duckdb") if n in results]
        print(f"{'query':34s}" + "".join(f"{'http vs ' + n:>20s}" for n in others))
        for q in qs:
            ours = statistics.median(results["http"][q.name])
            print(
                f"{q.name:34s}"
                + "".join(f"{ours / statistics.median(results[n][q.name]):19.2f}x" for n in others)
            )
        print("(goal: below 1 against datasette, at most 2 against duckdb)")


if __name__ == "__main__":
    main()
