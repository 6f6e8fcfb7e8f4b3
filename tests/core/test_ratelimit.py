"""Rate limits: GCRA in memory (fake clock) and in the real Redis, failing open when Redis is down."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import require_service
from zhishe.core import ratelimit
from zhishe.core.errors import RateLimited
from zhishe.core.ratelimit import Decision, MemoryLimiter, RedisLimiter, enforce, limiter_from_url, redact_url

REDIS_URL = os.environ.get("ZHISHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeClock:
    """Seconds that only move when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _run(
    limiter: Any, clock: FakeClock, key: str, limit: int, window: float, waits: list[float]
) -> list[Decision]:
    decisions = []
    for wait in waits:
        clock.now += wait
        decisions.append(limiter.hit(key, limit, window))
    return decisions


# --- memory ---------------------------------------------------------------------------------------


def test_a_burst_of_limit_hits_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)

    decisions = _run(limiter, clock, "ip:1", 3, 3.0, [0, 0, 0, 0, 0.5, 0.5, 0, 1.0])

    assert [(d.allowed, d.remaining, d.retry_after) for d in decisions] == [
        (True, 2, 0.0),
        (True, 1, 0.0),
        (True, 0, 0.0),
        (False, 0, 1.0),
        (False, 0, 0.5),
        (True, 0, 0.0),  # one interval (window / limit = 1 s) after the burst
        (False, 0, 1.0),
        (True, 0, 0.0),
    ]
    assert [d.reset for d in decisions[:4]] == [1.0, 2.0, 3.0, 3.0]


def test_waiting_retry_after_is_always_enough() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    for _ in range(7):
        limiter.hit("k", 7, 60.0)

    refused = limiter.hit("k", 7, 60.0)
    clock.now += refused.retry_after * 0.999
    assert not limiter.hit("k", 7, 60.0).allowed
    clock.now = 1000.0 + refused.retry_after

    assert not refused.allowed and refused.retry_after == pytest.approx(60 / 7)
    assert limiter.hit("k", 7, 60.0).allowed


def test_a_quiet_key_is_back_to_a_full_burst_after_reset_seconds() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    last = _run(limiter, clock, "k", 5, 10.0, [0] * 5)[-1]

    clock.now += last.reset

    assert limiter.hit("k", 5, 10.0).remaining == 4


def test_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)

    assert limiter.hit("a", 1, 60).allowed
    assert not limiter.hit("a", 1, 60).allowed
    assert limiter.hit("b", 1, 60).allowed


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    window=st.sampled_from([1.0, 3.0, 60.0, 0.25]),
    waits=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=120),
)
def test_gcra_never_lets_more_than_a_burst_plus_the_rate_through(
    limit: int, window: float, waits: list[float]
) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    allowed_at: list[float] = []
    for wait in waits:
        clock.now += wait
        decision = limiter.hit("k", limit, window)
        if decision.allowed:
            allowed_at.append(clock.now)
            assert decision.retry_after == 0 and 0 <= decision.remaining < limit
        else:
            assert decision.retry_after > 0 and decision.remaining == 0
            clock.now += decision.retry_after  # honouring retry_after always works
            assert limiter.hit("k", limit, window).allowed
            allowed_at.append(clock.now)
    interval = window / limit
    for i, start in enumerate(allowed_at):
        for j in range(i, len(allowed_at)):
            assert j - i + 1 <= limit + (allowed_at[j] - start) / interval + 1e-6


def test_memory_limiter_is_thread_safe() -> None:
    limiter = MemoryLimiter(FakeClock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        results = [limiter.hit("shared", 100, 60).allowed for _ in range(500)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 100


def test_keys_back_to_a_full_burst_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryLimiter, "SWEEP_EVERY", 10)
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    for n in range(9):
        limiter.hit(f"visitor:{n}", 10, 1.0)
    assert len(limiter) == 9

    clock.now += 5
    limiter.hit("late", 10, 1.0)

    assert len(limiter) == 1


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_limits_are_refused(limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        MemoryLimiter().hit("k", limit, window)


def test_enforce_raises_rate_limited_with_retry_after_in_whole_seconds() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)

    assert enforce(limiter, "k", 2, 3.0).remaining == 1
    enforce(limiter, "k", 2, 3.0)
    with pytest.raises(RateLimited, match="try again in 2 seconds") as caught:
        enforce(limiter, "k", 2, 3.0)

    assert caught.value.detail == {"retry_after": 2, "limit": 2, "window_seconds": 3.0}
    assert caught.value.status_code == 429


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "memory://"])
def test_memory_is_the_default(url: str | None) -> None:
    assert isinstance(limiter_from_url(url), MemoryLimiter)


def test_a_redis_url_gives_a_redis_limiter_without_connecting() -> None:
    assert isinstance(limiter_from_url("redis://:pw@127.0.0.1:1/0"), RedisLimiter)


def test_an_unknown_scheme_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported rate-limit URL") as caught:
        limiter_from_url("http://user:hunter2@example.com/")

    assert "hunter2" not in str(caught.value)


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@redis.internal:6380/2") == "redis://:***@redis.internal:6380/2"
    assert redact_url("rediss://app:s3cret@redis.internal/0") == "rediss://app:***@redis.internal/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# --- Redis down: fail open ------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def test_an_unreachable_redis_fails_open_with_one_warning_and_no_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(ratelimit, "_log", recorder)
    limiter = RedisLimiter("redis://:s3cret-pw@127.0.0.1:1/0", timeout_s=0.2)

    decisions = [limiter.hit("k", 1, 60) for _ in range(3)]

    assert all(d.allowed for d in decisions)
    assert len(recorder.events) == 1  # at most one warning a minute
    event, fields = recorder.events[0]
    assert event == "ratelimit.redis_unavailable"
    assert fields["url"] == "redis://:***@127.0.0.1:1/0"
    assert "s3cret-pw" not in repr(recorder.events)


# --- Redis (integration) ----------------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        available, reason = True, ""
    except redis.RedisError as exc:
        available, reason = False, f"{redact_url(REDIS_URL)}: {exc}"
    require_service("Redis", available, reason)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A random key prefix; every key under it is deleted afterwards."""
    chosen = f"zhishe-test:{uuid.uuid4().hex}:"
    yield chosen
    keys = list(redis_client.scan_iter(match=chosen + "*"))
    if keys:
        redis_client.delete(*keys)


@pytest.mark.integration
def test_redis_makes_the_same_decisions_as_memory(prefix: str) -> None:
    waits = [0, 0, 0, 0, 0.4, 0.6, 0.3, 2.5, 0, 0, 0, 0, 10, 0.001, 0.999]
    memory_clock, redis_clock = FakeClock(), FakeClock()
    memory = MemoryLimiter(memory_clock)
    in_redis = RedisLimiter(REDIS_URL, prefix=prefix, clock=redis_clock)

    expected = _run(memory, memory_clock, "k", 4, 4.0, waits)
    got = _run(in_redis, redis_clock, "k", 4, 4.0, waits)

    assert [(d.allowed, d.remaining) for d in got] == [(d.allowed, d.remaining) for d in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.retry_after == pytest.approx(theirs.retry_after, abs=1e-5)
        assert mine.reset == pytest.approx(theirs.reset, abs=1e-5)


@pytest.mark.integration
def test_redis_waiting_retry_after_is_enough(prefix: str) -> None:
    clock = FakeClock()
    limiter = RedisLimiter(REDIS_URL, prefix=prefix, clock=clock)
    for _ in range(3):
        assert limiter.hit("k", 3, 7.0).allowed

    refused = limiter.hit("k", 3, 7.0)
    clock.now += refused.retry_after

    assert not refused.allowed and refused.retry_after == pytest.approx(7 / 3, abs=1e-5)
    assert limiter.hit("k", 3, 7.0).allowed


@pytest.mark.integration
def test_redis_uses_its_own_clock_and_the_prefix_with_an_expiry(prefix: str, redis_client: Any) -> None:
    limiter = RedisLimiter(REDIS_URL, prefix=prefix)

    decisions = [limiter.hit("ip:10.0.0.1", 5, 60) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 11 < decisions[-1].retry_after <= 12  # one interval (12 s), less the time the hits took
    ttl_ms = redis_client.pttl(prefix + "ip:10.0.0.1")
    assert 59_000 < ttl_ms <= 60_000


@pytest.mark.integration
def test_redis_counts_atomically_across_clients(prefix: str) -> None:
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = RedisLimiter(REDIS_URL, prefix=prefix)
        results = [limiter.hit("shared", 50, 60).allowed for _ in range(40)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 50
