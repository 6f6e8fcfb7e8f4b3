"""Exchange benchmark: what reading through a grant costs.

On a generated dataset (default 5,000,000 rows x 12 columns), the same filtered query, about 1 % of
the rows and 6 of the 12 columns, is run through THE read function twice per round:

- by the owner, with the filter and the projection written in the query;
- by a grantee, whose grant carries the row filter and the column projection (the query names
  neither), so the grant lookup, the scope check and the combined filter are all in the path.

Each read returns the first page of 10,000 rows and the total count of matching rows, audited like
any read. The rounds alternate which side goes first. Then the granted view is exported to Parquet.

    .venv/bin/python bench/exchange_bench.py [--rows 5000000] [--rounds 15]

Prints medians and p95 of both, the ratio, and the export time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DISTRICTS = [f"街道{i:02d}" for i in range(100)]  # one district is 1 % of the rows
CATEGORIES = ["路灯", "垃圾", "噪音", "漏水", "停车", "绿化"]
SELECTED = ["district", "category", "ts", "m1", "count", "ok"]


def generate(path: Path, rows: int, seed: int = 11) -> None:
    """The benchmark table as Parquet (12 columns, districts round-robin so each is 1 %)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    writer: pq.ParquetWriter | None = None
    step = 500_000
    for first in range(0, rows, step):
        n = min(step, rows - first)
        ids = range(first, first + n)
        ts = [start + timedelta(seconds=7 * i) for i in ids]
        batch = pa.table(
            {
                "id": pa.array(ids, type=pa.int64()),
                "district": pa.array([DISTRICTS[i % len(DISTRICTS)] for i in ids]),
                "category": pa.array([CATEGORIES[rng.randrange(6)] for _ in ids]),
                "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
                "day": pa.array([t.date() for t in ts], type=pa.date32()),
                "m1": pa.array([rng.uniform(0, 100) for _ in ids]),
                "m2": pa.array([rng.gauss(50, 10) for _ in ids]),
                "count": pa.array([rng.randrange(1000) for _ in ids], type=pa.int64()),
                "ok": pa.array([rng.random() < 0.5 for _ in ids]),
                "code": pa.array([f"C{rng.randrange(10000):05d}" for _ in ids]),
                "score": pa.array([rng.randrange(-50, 50) for _ in ids], type=pa.int64()),
                "note": pa.array([f"note {i % 97}" for i in ids]),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch, row_group_size=step)
    if writer is not None:
        writer.close()


def _setup(workdir: Path, rows: int) -> tuple[int, int]:
    os.environ.update(
        {
            "ZHISHE_DATA_DIR": str(workdir / "var"),
            "ZHISHE_LOG_LEVEL": "WARNING",
            "ZHISHE_SECRET_KEY": "bench-secret",
        }
    )
    from sqlalchemy import select

    from zhishe import hooks
    from zhishe.catalog import flows
    from zhishe.catalog.schemas import ColumnIn, DatasetCreate
    from zhishe.catalog.service import create_dataset
    from zhishe.core.accounts.models import Organisation, User
    from zhishe.core.auth import hash_password, system_actor
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.migrate import upgrade
    from zhishe.exchange import service as exchange
    from zhishe.exchange.schemas import RequestIn

    hooks.install()
    settings = get_settings()
    upgrade(settings.database_url)
    maker = get_sessionmaker(settings.database_url)
    now = datetime.now(UTC)
    with maker.begin() as session:
        owner = Organisation(code="owner", name_zh="数据所有部门", kind="department", created_at=now)
        grantee = Organisation(code="grantee", name_zh="申请部门", kind="department", created_at=now)
        session.add_all([owner, grantee])
        session.flush()
        secret = hash_password("bench-password")
        for name, org in (("owner.steward", owner), ("grantee.steward", grantee)):
            session.add(
                User(username=name, org_id=org.id, role="steward", password_hash=secret, created_at=now)
            )
        session.flush()
        types = {
            "id": "integer", "district": "string", "category": "string", "ts": "datetime", "day": "date",
            "m1": "decimal", "m2": "decimal", "count": "integer", "ok": "boolean", "code": "string",
            "score": "integer", "note": "string",
        }  # fmt: skip
        create_dataset(
            session=session,
            actor=system_actor("bench"),
            dataset_in=DatasetCreate(
                slug="bench",
                title_zh="基准",
                owner_org_id=owner.id,
                sharing_class="conditional",
                columns=[ColumnIn(name=n, type=t, is_key=n == "id") for n, t in types.items()],  # type: ignore[arg-type]
            ),
        )
    source = workdir / "bench.parquet"
    generate(source, rows)
    from zhishe.core.accounts.service import actor_for_user

    with maker() as session:
        owner_user = session.scalar(select(User).where(User.username == "owner.steward"))
        grantee_user = session.scalar(select(User).where(User.username == "grantee.steward"))
        assert owner_user is not None and grantee_user is not None
        owner_actor, grantee_actor = actor_for_user(owner_user), actor_for_user(grantee_user)
    started = time.perf_counter()
    report = flows.import_path(maker=maker, actor=owner_actor, dataset="bench", path=source, move=True)
    print(f"imported {rows:,} rows as version {report.version} in {time.perf_counter() - started:.1f} s")
    with maker.begin() as session:
        request = exchange.create_request(
            session=session,
            actor=grantee_actor,
            data=RequestIn(
                dataset="bench",
                purpose="benchmark",
                legal_basis="benchmark",
                columns=SELECTED,
                row_filter={"column": "district", "op": "=", "value": DISTRICTS[42]},
                starts_on=date.today(),
                expires_on=date.today() + timedelta(days=30),
                mode="export",
                submit=True,
            ),
        )
        request_id = request.id
    with maker.begin() as session:
        exchange.approve(session=session, actor=owner_actor, request_id=request_id)
    return owner_user.id, grantee_user.id


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhishe-exchange-bench-") as tmp:
        workdir = Path(tmp)
        owner_id, grantee_id = _setup(workdir, args.rows)
        from zhishe.catalog import reads
        from zhishe.core.accounts.models import User
        from zhishe.core.accounts.service import actor_for_user
        from zhishe.core.config import get_settings
        from zhishe.core.db import get_sessionmaker

        maker = get_sessionmaker(get_settings().database_url)
        with maker() as session:
            owner = actor_for_user(session.get(User, owner_id))  # type: ignore[arg-type]
            grantee = actor_for_user(session.get(User, grantee_id))  # type: ignore[arg-type]
        where = {"column": "district", "op": "=", "value": DISTRICTS[42]}

        def direct() -> None:
            with maker.begin() as session:
                page = reads.read_rows(
                    session=session,
                    actor=owner,
                    dataset="bench",
                    select=SELECTED,
                    where=where,
                    limit=10000,
                    with_total=True,
                )
                assert page.total == args.rows // 100 and page.rows.num_rows == min(10000, page.total)

        def granted() -> None:
            with maker.begin() as session:
                page = reads.read_rows(
                    session=session, actor=grantee, dataset="bench", limit=10000, with_total=True
                )
                assert page.rows.column_names == SELECTED and page.total == args.rows // 100, (
                    page.rows.column_names,
                    page.total,
                )

        direct(), granted()  # warm both paths once
        owner_times: list[float] = []
        grant_times: list[float] = []
        for i in range(args.rounds):
            pair = [(owner_times, direct), (grant_times, granted)]
            for times, fn in pair if i % 2 == 0 else reversed(pair):
                times.append(_timed(fn))

        def q(values: list[float], p: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

        out = workdir / "granted.parquet"

        def export() -> None:
            with maker.begin() as session:
                reads.export_rows(session=session, actor=grantee, dataset="bench", fmt="parquet", dest=out)

        export_times = [_timed(export) for _ in range(5)]
        o50, g50 = statistics.median(owner_times), statistics.median(grant_times)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, {platform.platform()}"
        )
        print(
            f"rows: {args.rows:,}; query: 1 % of rows ({args.rows // 100:,}), 6 of 12 columns, first page of 10,000 + total"
        )
        print(
            f"owner, filter in the query:   p50 {o50 * 1000:7.1f} ms   p95 {q(owner_times, 0.95) * 1000:7.1f} ms"
        )
        print(
            f"grantee, filter in the grant: p50 {g50 * 1000:7.1f} ms   p95 {q(grant_times, 0.95) * 1000:7.1f} ms"
        )
        print(f"grant overhead at the median: {100 * (g50 / o50 - 1):+.1f} % (goal: at most +10 %)")
        print(
            f"export of the granted view to Parquet ({pq.read_metadata(out).num_rows:,} rows): median {statistics.median(export_times):.2f} s"
        )


if __name__ == "__main__":
    main()
