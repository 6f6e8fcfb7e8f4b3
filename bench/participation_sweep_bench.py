"""Escalation sweep benchmark: the SLA and escalation sweep over a large backlog of open work orders.

On a fresh database (SQLite in a temporary data directory by default; PostgreSQL with
``--database-url``, which is dropped and recreated), migrated with ``zhishe.core.migrate.upgrade``:

1. a city of ``--departments`` departments (three teams each, with leads, two heads each), a data
   bureau and three street offices; four categories (4 and 8 working hours, 3 and 5 working days);
2. ``--orders`` open work orders bulk-inserted in chunks: filed over the 20 calendar days before the
   sweep (recent days more: exponentially, a mean of four days back), between 07:00 and 22:00; states spread over new/assigned/accepted/in progress/reopened, 5 %
   waiting (clock paused, unscheduled); each with its SLA deadline on the working-day calendar and
   the escalation rung it would have reached if the sweep had last run ``gap`` minutes earlier;
3. for each ``--gaps`` value (minutes since the last sweep; 60 is a sweep missed for an hour, 1440 a
   day's catch-up), ``--runs`` timed sweeps at the same instant, each rolled back so every run starts
   from the same state, then one more that commits (the full cost, transaction included), then an
   empty sweep at the same instant (the steady-state cost once nothing is due).

Baselines measured in the same run: selecting only the due rows' ids through the index (the floor
of any sweep), reading every open order (what a sweep without the index would pay), and
``reschedule_all`` recomputing every open order's next rung (``--reschedule``).

    .venv/bin/python bench/participation_sweep_bench.py [--orders 1000000] [--runs 3]
        [--gaps 60,1440] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/zhishe_sweep_bench]

Prints the machine, medians, rows/s and the rung counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench_env import throwaway_var

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The sweep instant: Wednesday 18 November 2026, 15:00 in Shanghai (a working day).
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=SHANGHAI).astimezone(UTC)
CATEGORIES = [  # code, SLA amount, unit, share of the orders
    ("leak", 4, "hours", 0.2),
    ("garbage", 8, "hours", 0.3),
    ("streetlight", 3, "days", 0.3),
    ("noise", 5, "days", 0.2),
]
STATES = [("new", 0.05), ("assigned", 0.25), ("accepted", 0.15), ("in_progress", 0.45), ("reopened", 0.05)]
WAITING_SHARE = 0.05
CHUNK = 20_000


def _world(session: Any, departments: int) -> tuple[dict[str, int], list[tuple[int, list[int]]]]:
    """Organisations, people, teams and categories; returns category ids and (org, team ids) pairs."""
    from zhishe.core.accounts.models import Organisation, User
    from zhishe.participation.models import Category, Team

    now = datetime.now(UTC)

    def org(code: str, kind: str) -> int:
        row = Organisation(code=code, name_zh=code, name_en=code, kind=kind, created_at=now)
        session.add(row)
        session.flush()
        return row.id

    def user(name: str, org_id: int, role: str) -> int:
        row = User(
            username=name, org_id=org_id, role=role, password_hash="-", display_name=name, created_at=now
        )
        session.add(row)
        session.flush()
        return row.id

    bureau = org("bureau", "data_bureau")
    user("bureau-admin", bureau, "admin")
    user("bureau-dispatcher", bureau, "dispatcher")
    for i in range(3):
        user(f"street{i}-head", org(f"street{i}", "community_committee"), "admin")
    owners: list[tuple[int, list[int]]] = []
    for d in range(departments):
        dept = org(f"dept{d}", "department")
        for h in range(2):
            user(f"dept{d}-head{h}", dept, "admin")
        teams = []
        for t in range(3):
            lead = user(f"dept{d}-lead{t}", dept, "dispatcher")
            team = Team(org_id=dept, name=f"team {d}.{t}", lead_user_id=lead, created_at=now)
            session.add(team)
            session.flush()
            teams.append(team.id)
        owners.append((dept, teams))
    categories = {}
    for code, amount, unit, _share in CATEGORIES:
        row = Category(
            code=code, name_zh=code, name_en=code, sla_amount=amount, sla_unit=unit, created_at=now
        )
        session.add(row)
        session.flush()
        categories[code] = row.id
    return categories, owners


def _orders(
    session: Any,
    count: int,
    categories: dict[str, int],
    owners: list[tuple[int, list[int]]],
    last_sweep: datetime,
    seed: int = 7,
) -> float:
    """Bulk-insert ``count`` open orders, escalated as of ``last_sweep``; returns the seconds taken."""
    from sqlalchemy import insert

    from zhishe.participation import escalation
    from zhishe.participation.models import Request
    from zhishe.participation.sla import WorkCalendar

    rng = random.Random(seed)
    calendar = WorkCalendar.load(session)
    codes = [c[0] for c in CATEGORIES]
    weights = [c[3] for c in CATEGORIES]
    sla_of = {c[0]: (c[1], c[2]) for c in CATEGORIES}
    states, state_weights = [s for s, _ in STATES], [w for _, w in STATES]
    first_day = (NOW - timedelta(days=19)).astimezone(SHANGHAI).replace(hour=0, minute=0, second=0)
    # Rung times depend only on the category and the filing minute: computed once per pair.
    memo: dict[tuple[str, datetime], tuple[datetime, tuple[datetime, datetime, datetime]]] = {}

    def plan(code: str, requested: datetime) -> tuple[datetime, tuple[datetime, datetime, datetime]]:
        key = (code, requested)
        if key not in memo:
            amount, unit = sla_of[code]
            expected = calendar.deadline(requested, amount, unit)
            span = amount * 3600.0 if unit == "hours" else calendar.working_seconds(requested, expected)
            memo[key] = (expected, escalation.rung_times(calendar, requested, expected, span))
        return memo[key]

    table = Request.__table__
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for i in range(count):
        code = rng.choices(codes, weights)[0]
        while True:  # filed in the 20 days before the sweep, recent days more, between 07:00 and 22:00
            back = min(int(rng.expovariate(1 / 4)), 19)
            local = first_day + timedelta(days=19 - back, minutes=rng.randrange(7 * 60, 22 * 60))
            requested = local.astimezone(UTC)
            if requested < NOW:
                break
        expected, rungs = plan(code, requested)
        dept, teams = owners[rng.randrange(len(owners))]
        waiting = rng.random() < WAITING_SHARE
        level = sum(1 for t in rungs if t <= last_sweep)
        rows.append(
            {
                "category_id": categories[code],
                "state": "waiting" if waiting else rng.choices(states, state_weights)[0],
                "wait_reason": "parts" if waiting else "",
                "description": "benchmark order",
                "answers": {},
                "token": f"bench{i:012d}",
                "channel": "web",
                "org_id": dept,
                "team_id": teams[rng.randrange(len(teams))],
                "requested_at": requested,
                "updated_at": requested,
                "expected_at": expected,
                "paused_at": requested + timedelta(minutes=30) if waiting else None,
                "escalation_level": level,
                "next_escalation_at": None if waiting or level >= 3 else rungs[level],
            }
        )
        if len(rows) == CHUNK:
            session.execute(insert(table), rows)
            rows = []
    if rows:
        session.execute(insert(table), rows)
    return time.perf_counter() - started


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gaps", default="5,60", help="minutes since the last sweep, comma-separated")
    parser.add_argument("--departments", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5000, help="rows per sweep batch")
    parser.add_argument("--reschedule", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL of a database to recreate")
    args = parser.parse_args()
    gaps = [int(g) for g in args.gaps.split(",") if g.strip()]
    backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{platform.platform()}; database: {backend}"
    )
    with throwaway_var("zhishe-sweep-bench-", args.database_url):
        _run(args, gaps, backend)


def _run(args: argparse.Namespace, gaps: list[int], backend: str) -> None:
    from sqlalchemy import func, select, text

    import zhishe.tables  # noqa: F401 - every table, for the foreign keys
    from zhishe import hooks
    from zhishe.core import clock
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.migrate import upgrade
    from zhishe.participation import escalation
    from zhishe.participation.models import Request

    hooks.install()
    settings = get_settings()
    upgrade(settings.database_url)
    maker = get_sessionmaker(settings.database_url)
    clock.set_clock(lambda: NOW)
    with maker.begin() as session:
        categories, owners = _world(session, args.departments)
        seconds = _orders(session, args.orders, categories, owners, NOW - timedelta(minutes=gaps[0]))
    with maker.begin() as session:
        session.execute(text("ANALYZE"))
    print(
        f"orders: {args.orders:,} open ({WAITING_SHARE:.0%} waiting), {args.departments} departments; "
        f"inserted in {seconds:.1f} s ({args.orders / seconds:,.0f} rows/s)"
    )
    open_states = ["new", "assigned", "accepted", "in_progress", "reopened", "waiting"]

    for index, gap in enumerate(gaps):
        last_sweep = NOW - timedelta(minutes=gap)
        if index:  # put every order back at the rung it had reached at the last sweep
            with maker.begin() as session:
                _orders_reset(session, last_sweep)
        with maker() as session:
            due = session.scalar(select(func.count()).where(Request.next_escalation_at <= NOW)) or 0
            by_level = dict(
                session.execute(
                    select(Request.escalation_level, func.count()).group_by(Request.escalation_level)
                ).all()
            )
        print(
            f"\n-- {gap} min since the last sweep: {due:,} of {args.orders:,} orders due "
            f"({due / args.orders:.1%}); levels before: {dict(sorted(by_level.items()))}"
        )

        def select_due() -> int:
            with maker() as session:
                return len(session.scalars(select(Request.id).where(Request.next_escalation_at <= NOW)).all())

        def scan_open() -> int:
            with maker() as session:
                query = select(
                    Request.id, Request.requested_at, Request.expected_at, Request.escalation_level
                )
                return len(session.execute(query.where(Request.state.in_(open_states))).all())

        floor = statistics.median(_timed(select_due)[0] for _ in range(args.runs))
        scan = statistics.median(_timed(scan_open)[0] for _ in range(args.runs))
        times: list[float] = []
        result = None
        for _ in range(args.runs):
            with maker() as session:
                elapsed, result = _timed(lambda: escalation.sweep(session=session, now=NOW, batch=args.batch))
                session.rollback()
            times.append(elapsed)
        with maker() as session:

            def committed() -> Any:
                swept = escalation.sweep(session=session, now=NOW, batch=args.batch)
                session.commit()
                return swept

            full, result = _timed(committed)
            empty, nothing = _timed(lambda: escalation.sweep(session=session, now=NOW, batch=args.batch))
            session.commit()
        assert result is not None and result.examined == due, (result, due)
        assert nothing.examined == 0
        median = statistics.median(times)
        print(
            f"sweep, rolled back: median {median:.2f} s of {args.runs} ({', '.join(f'{t:.2f}' for t in times)})"
        )
        print(
            f"  {due / median:,.0f} due rows/s ({args.orders / median:,.0f} open orders/s of backlog covered)"
        )
        print(
            f"  escalated {result.escalated:,} orders; rungs reached {result.rungs}; cleared {result.cleared:,}"
        )
        print(f"  notifications: {result.notified:,}")
        print(f"sweep with commit: {full:.2f} s; a second sweep at the same instant: {empty * 1000:.1f} ms")
        print(
            f"baseline, due ids through the index: {floor * 1000:.1f} ms; reading every open order: {scan:.2f} s"
        )

    if args.reschedule:
        with maker() as session:
            elapsed, rows = _timed(lambda: escalation.reschedule_all(session=session, batch=args.batch))
            session.rollback()
        print(
            f"\nreschedule_all (every open order's next rung recomputed): {elapsed:.2f} s, {rows / elapsed:,.0f} rows/s"
        )
    with maker() as session:
        open_left = session.scalar(select(func.count()).where(Request.next_escalation_at.is_not(None))) or 0
    print(f"({backend}; still scheduled at the end: {open_left:,})")
    clock.set_clock(None)


def _orders_reset(session: Any, last_sweep: datetime) -> None:
    """Undo the committed sweep: every order back at the rung it had reached at ``last_sweep``."""
    from sqlalchemy import delete, select, update

    from zhishe.core.notifications.models import Notification
    from zhishe.participation import escalation
    from zhishe.participation.models import Category, Request, RequestUpdate
    from zhishe.participation.sla import WorkCalendar

    calendar = WorkCalendar.load(session)
    sla_of = {c.id: (c.sla_amount, c.sla_unit) for c in session.scalars(select(Category))}
    memo: dict[tuple[int, datetime], tuple[datetime, datetime, datetime]] = {}
    session.execute(delete(RequestUpdate))
    session.execute(delete(Notification))
    last_id = 0
    while True:
        rows = session.execute(
            select(Request.id, Request.category_id, Request.requested_at, Request.expected_at, Request.state)
            .where(Request.id > last_id)
            .order_by(Request.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        changes = []
        for row in rows:
            key = (row.category_id, row.requested_at)
            if key not in memo:
                amount, unit = sla_of[row.category_id]
                span = (
                    amount * 3600.0
                    if unit == "hours"
                    else calendar.working_seconds(row.requested_at, row.expected_at)
                )
                memo[key] = escalation.rung_times(calendar, row.requested_at, row.expected_at, span)
            rungs = memo[key]
            level = sum(1 for t in rungs if t <= last_sweep)
            waiting = row.state == "waiting"
            changes.append(
                {
                    "id": row.id,
                    "escalation_level": level,
                    "next_escalation_at": None if waiting or level >= 3 else rungs[level],
                }
            )
        session.execute(update(Request), changes)


if __name__ == "__main__":
    main()
