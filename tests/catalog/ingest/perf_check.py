"""Import throughput check (not a pytest test): `load` versus pyarrow.csv.read_csv on one file.

Generates a 1,000,000-row x 12-column UTF-8 CSV of mixed types in /tmp (once), then times
  * pyarrow.csv.read_csv (type inference, no validation) and the same plus write_deltalake;
  * zhishe's `load` (detection, validation, typed table) and the same plus write_deltalake;
and prints the ratio of throughputs (the goal: the import reaches at least 50 % of the baseline),
plus the peak resident memory of the load, and the time of a load of the same file with one bad
value added (the fast path declines and the whole file is validated as text).

    .venv/bin/python tests/catalog/ingest/perf_check.py [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from zhishe.catalog.ingest import load
from zhishe.catalog.types import ColumnSpec, ColumnType

COLUMNS = [
    ColumnSpec("id", ColumnType.INTEGER),
    ColumnSpec("count", ColumnType.INTEGER),
    ColumnSpec("floor", ColumnType.INTEGER),
    ColumnSpec("price", ColumnType.DECIMAL),
    ColumnSpec("ratio", ColumnType.DECIMAL),
    ColumnSpec("day", ColumnType.DATE),
    ColumnSpec("reported_at", ColumnType.DATETIME),
    ColumnSpec("updated_at", ColumnType.DATETIME),
    ColumnSpec("active", ColumnType.BOOLEAN),
    ColumnSpec("name", ColumnType.STRING),
    ColumnSpec("street", ColumnType.STRING),
    ColumnSpec("note", ColumnType.STRING),
]


def generate(path: Path, rows: int) -> None:
    """Write the benchmark CSV with vectorised pyarrow (a few seconds)."""

    def ints(low: int, high: int, seed: int) -> pa.Array:
        scaled = pc.add(pc.multiply(pc.random(rows, initializer=seed), high - low), low)
        return pc.cast(pc.floor(scaled), pa.int64())

    def choice(options: list[str], seed: int) -> pa.Array:
        return pc.take(pa.array(options), ints(0, len(options), seed))

    seconds = (1_577_836_800, 1_677_836_800)
    table = pa.table(
        {
            "id": pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), rows)),
            "count": ints(-1000, 100_000, 1),
            "floor": ints(1, 40, 2),
            "price": pc.round(pc.multiply(pc.random(rows, initializer=3), 10_000), 2),
            "ratio": pc.random(rows, initializer=4),
            "day": pc.cast(pc.cast(ints(18_262, 20_262, 5), pa.int32()), pa.date32()),
            "reported_at": pc.cast(ints(*seconds, 6), pa.timestamp("s")),
            "updated_at": pc.cast(ints(*seconds, 7), pa.timestamp("s")),
            "active": pc.less(pc.random(rows, initializer=8), 0.5),
            "name": pc.binary_join_element_wise("居民", pc.cast(ints(0, 10**7, 9), pa.string()), ""),
            "street": choice(["朝阳路", "建国门外大街", "Main St", "长安街"], 10),
            "note": choice(["", "ok", "需要回访", "hello world"], 11),
        }
    )
    pacsv.write_csv(table, path)


def timed(actions: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """Best and median wall-clock seconds of each action; runs are interleaved, so that a busy
    machine slows all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"zhishe-perf-{args.rows}.csv"
    if not path.exists():
        child = multiprocessing.get_context("spawn").Process(target=generate, args=(path, args.rows))
        child.start()
        child.join()
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({args.rows:,} rows x {len(COLUMNS)} columns, {size_mb:.0f} MB)")

    from deltalake import write_deltalake

    lake = Path(tempfile.mkdtemp(prefix="zhishe-perf-lake-"))

    def write(table: pa.Table) -> None:
        shutil.rmtree(lake, ignore_errors=True)
        write_deltalake(str(lake), table)

    result = load(path, COLUMNS, timezone="Asia/Shanghai")
    assert result.issue_count == 0 and result.table.num_rows == args.rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    dirty = path.with_name(path.stem + "-one-bad-row.csv")
    if not dirty.exists():
        shutil.copyfile(path, dirty)
        with dirty.open("a", encoding="utf-8") as f:
            f.write(
                "0,not a number,1,1.5,0.5,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,true,x,y,z\n"
            )
    results = timed(
        {
            "read": lambda: pacsv.read_csv(path),
            "load": lambda: load(path, COLUMNS, timezone="Asia/Shanghai"),
            "read_write": lambda: write(pacsv.read_csv(path)),
            "load_write": lambda: write(load(path, COLUMNS, timezone="Asia/Shanghai").table),
            "dirty": lambda: load(dirty, COLUMNS, timezone="Asia/Shanghai"),
        },
        args.repeat,
    )
    read_s, load_s, read_write_s, load_write_s, dirty_s = (
        results[k] for k in ("read", "load", "read_write", "load_write", "dirty")
    )
    shutil.rmtree(lake, ignore_errors=True)

    print(f"pyarrow.csv.read_csv              best {read_s[0]:.3f} s  median {read_s[1]:.3f} s")
    print(f"ingest.load                       best {load_s[0]:.3f} s  median {load_s[1]:.3f} s")
    print(f"read_csv + write_deltalake        best {read_write_s[0]:.3f} s  median {read_write_s[1]:.3f} s")
    print(f"load + write_deltalake            best {load_write_s[0]:.3f} s  median {load_write_s[1]:.3f} s")
    print(f"ingest.load, one bad value (full check)   best {dirty_s[0]:.3f} s  median {dirty_s[1]:.3f} s")
    print(f"load throughput vs read_csv:                 {read_s[0] / load_s[0]:.0%}")
    print(
        f"import throughput vs read_csv + delta write: {read_write_s[0] / load_write_s[0]:.0%} (goal >= 50 %)"
    )
    print(f"peak resident memory after the first load:   {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
