"""Booking benchmark: 1,000 concurrent booking attempts on 100 slots, with zero overbooking.

    .venv/bin/python bench/booking_bench.py [--attempts 1000] [--slots 100] [--capacity 1]
        [--threads 50] [--residents 200]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/zhishe_booking_bench]

Runs on a temporary SQLite database by default (WAL, as the server), or on the PostgreSQL database
named by ``--database-url`` (dropped and recreated), migrated with ``zhishe.core.migrate.upgrade``.

1. A world is seeded directly in the tables: a housekeeping provider 1 km from a building, its
   licence, an active instant-booking listing, and ``--residents`` residents of the building.
2. Each run opens ``--slots`` fresh slots of ``--capacity`` places, then ``--threads`` threads, each
   with its own database session, make ``--attempts`` attempts in all: a random resident books a
   random slot through ``transactions.book`` (the full path: sellable check, service radius, server
   pricing, the conditional slot update, the transaction, its event and the audit chain), and
   commits; "fully booked" is the other answer. Per attempt latency is measured from the call to
   the commit.
3. After each run the database is checked: no slot has more bookings than places, every slot's
   ``booked`` equals its transactions, and the number of bookings equals min(attempts, places).
4. **Baseline**, in the same run, same threads: the bare conditional ``UPDATE services_slots SET
   booked = booked + 1 WHERE id = :id AND booked < capacity`` and a commit (the floor the check
   against overbooking costs).

Prints, per back end: the machine, then the median of 3 runs of throughput (attempts/s), p50 and p95
latency, bookings made and overbooked slots; and the baseline's throughput and p95.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench_env import throwaway_var

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
B1 = (39.9042, 116.4074)
NEAR_1KM = (39.9132, 116.4074)


def _seed(maker: Any, residents: int) -> tuple[int, list[int]]:
    """The provider, its listing and the residents; returns the listing id and the user ids."""
    from zhishe.core.accounts.models import Organisation, User
    from zhishe.core.areas.models import Area
    from zhishe.core.audit.service import ensure_head
    from zhishe.services.models import Licence, Listing, Provider, ResidentProfile, ServiceCategory

    with maker() as session:
        ensure_head(session)
        shop = Organisation(
            code="shop", name_zh="洁家家政", name_en="shop", kind="service_provider", created_at=NOW
        )
        community = Organisation(
            code="cc", name_zh="社区", name_en="cc", kind="community_committee", created_at=NOW
        )
        session.add_all([shop, community])
        session.flush()
        building = Area(code="B1", level="building", name_zh="1号楼", name_en="B1", lat=B1[0], lon=B1[1])
        session.add(building)
        session.add(
            ServiceCategory(
                code="housekeeping", name_zh="家政", commission_bps=1500, licence_kinds=["housekeeping"]
            )
        )
        provider = Provider(
            org_id=shop.id,
            name_zh="洁家家政",
            lat=NEAR_1KM[0],
            lon=NEAR_1KM[1],
            categories=["housekeeping"],
            created_at=NOW,
        )
        session.add(provider)
        session.flush()
        session.add(
            Licence(
                provider_id=provider.id, kind="housekeeping", expires_on=date(2027, 12, 31), uploaded_at=NOW
            )
        )
        listing = Listing(
            provider_id=provider.id,
            category_code="housekeeping",
            process="instant_booking",
            title_zh="日常保洁",
            price_rules={"unit": "hour", "unit_fen": 5000, "min_units": 2, "surcharges": []},
            cancellation_policy={"free_until_hours": 24, "late_fee_bps": 5000, "no_show_fee_bps": 10000},
            availability="slots",
            status="active",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(listing)
        session.flush()
        users = []
        for index in range(residents):
            user = User(
                username=f"r{index:04d}",
                org_id=community.id,
                role="resident",
                password_hash="-",
                display_name=f"r{index}",
                created_at=NOW,
            )
            session.add(user)
            session.flush()
            session.add(ResidentProfile(user_id=user.id, area_id=building.id, lat=B1[0], lon=B1[1], tags=[]))
            users.append(user.id)
        session.commit()
        return listing.id, users


def _slots(maker: Any, listing_id: int, count: int, capacity: int, run: int) -> list[int]:
    from zhishe.services.models import Slot

    with maker() as session:
        rows = [
            Slot(
                listing_id=listing_id,
                starts_at=NOW + timedelta(days=2 + run, minutes=30 * i),
                ends_at=NOW + timedelta(days=2 + run, minutes=30 * i + 120),
                capacity=capacity,
                booked=0,
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.commit()
        return [s.id for s in rows]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _attempts(threads: int, attempts: int, work: Any) -> tuple[float, list[float], int]:
    """Run ``work(i) -> bool`` ``attempts`` times on ``threads`` threads; (seconds, latencies, successes)."""
    latencies: list[float] = []
    lock = threading.Lock()
    booked = 0

    def one(i: int) -> None:
        nonlocal booked
        began = time.perf_counter()
        ok = work(i)
        spent = time.perf_counter() - began
        with lock:
            latencies.append(spent)
            booked += int(ok)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(attempts)))
    return time.perf_counter() - began, latencies, booked


def _run_booking(
    maker: Any, args: argparse.Namespace, listing_id: int, users: list[int], run: int
) -> dict[str, float]:
    from sqlalchemy import func, select

    from zhishe.core.accounts.models import User
    from zhishe.core.accounts.service import actor_for_user
    from zhishe.core.errors import Conflict
    from zhishe.services import transactions
    from zhishe.services.models import Slot, Transaction

    slots = _slots(maker, listing_id, args.slots, args.capacity, run)
    with maker() as session:
        actors = [actor_for_user(u) for u in session.scalars(select(User).where(User.id.in_(users)))]
    rng = random.Random(run)
    plan = [(rng.choice(actors), rng.choice(slots)) for _ in range(args.attempts)]

    def work(i: int) -> bool:
        actor, slot_id = plan[i]
        with maker() as session:
            try:
                transactions.book(session, actor=actor, listing_id=listing_id, slot_id=slot_id, quantity=2)
                session.commit()
                return True
            except Conflict:
                session.rollback()
                return False

    seconds, latencies, booked = _attempts(args.threads, args.attempts, work)
    with maker() as session:
        counts = dict(
            session.execute(
                select(Transaction.slot_id, func.count(Transaction.id))
                .where(Transaction.slot_id.in_(slots))
                .group_by(Transaction.slot_id)
            ).all()
        )
        over = 0
        for slot in session.scalars(select(Slot).where(Slot.id.in_(slots))):
            if slot.booked > slot.capacity or counts.get(slot.id, 0) != slot.booked:
                over += 1
    return {
        "rate": args.attempts / seconds,
        "p50": _p(latencies, 0.50),
        "p95": _p(latencies, 0.95),
        "booked": booked,
        "overbooked": over,
        "db_bookings": sum(counts.values()),
    }


def _run_baseline(maker: Any, args: argparse.Namespace, listing_id: int, run: int) -> dict[str, float]:
    from sqlalchemy import text

    slots = _slots(maker, listing_id, args.slots, args.capacity, 100 + run)
    rng = random.Random(run)
    plan = [rng.choice(slots) for _ in range(args.attempts)]

    def work(i: int) -> bool:
        with maker() as session:
            changed = session.execute(
                text("UPDATE services_slots SET booked = booked + 1 WHERE id = :id AND booked < capacity"),
                {"id": plan[i]},
            ).rowcount
            session.commit()
            return bool(changed)

    seconds, latencies, _ = _attempts(args.threads, args.attempts, work)
    return {"rate": args.attempts / seconds, "p95": _p(latencies, 0.95)}


def _run(args: argparse.Namespace) -> None:
    import zhishe.tables  # noqa: F401 - every table, for the foreign keys
    from zhishe.core import clock
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    maker = get_sessionmaker(settings.database_url)
    clock.set_clock(lambda: NOW)
    listing_id, users = _seed(maker, args.residents)
    runs = [_run_booking(maker, args, listing_id, users, run) for run in range(3)]
    places = args.slots * args.capacity
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(
        f"booking: {args.attempts:,} attempts on {args.slots} slots × {args.capacity} place(s), {args.threads} threads, "
        f"median of 3: {median['rate']:,.0f} attempts/s, p50 {median['p50'] * 1000:.0f} ms, p95 {median['p95'] * 1000:.0f} ms"
    )
    print(
        "  bookings per run: "
        + ", ".join(f"{int(r['booked'])} answered / {int(r['db_bookings'])} in the database" for r in runs)
        + f" (places: {places}); overbooked or miscounted slots: {sum(int(r['overbooked']) for r in runs)}"
    )
    base = [_run_baseline(maker, args, listing_id, run) for run in range(3)]
    print(
        f"baseline (bare conditional UPDATE + commit, same threads), median of 3: "
        f"{statistics.median(b['rate'] for b in base):,.0f} attempts/s, p95 {statistics.median(b['p95'] for b in base) * 1000:.0f} ms"
    )


def main() -> None:
    """Parse the options, set up the database and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL of a database to recreate")
    args = parser.parse_args()
    backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    print(
        f"machine: {platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores), "
        f"Python {sys.version.split()[0]}; database: {backend}"
    )
    with throwaway_var("zhishe-booking-bench-", args.database_url):
        _run(args)


if __name__ == "__main__":
    main()
