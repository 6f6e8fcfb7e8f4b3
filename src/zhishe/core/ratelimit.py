"""Rate limits: a `RateLimiter` counts hits per key, in process memory or in Redis.

Both back ends implement GCRA, the generic cell rate algorithm: "`limit` hits per `window_s`
seconds" becomes one hit every ``T = window_s / limit`` seconds with a burst of up to `limit`.
Each key keeps a single number, its theoretical arrival time (TAT); a hit at ``now`` is allowed
when ``max(TAT, now) + T - window_s <= now`` and then moves TAT on by ``T``. That is O(1) in time
and memory per key and behaves like a token bucket of `limit` tokens refilled one every ``T``:
a fresh key takes a burst of `limit` hits, then one hit per ``T``; over any span of ``d``
seconds at most ``limit + d / T`` hits get through (so at most ``2 * limit - 1`` in one window
right after a burst, and ``limit`` per window in the long run). A fixed-window counter has the
same worst case at its window edges; an exact sliding log would cost O(limit) memory per key.

A `Decision` says whether the hit is allowed, how many more would be allowed right now
(`remaining`), how long to wait before the next one would be (`retry_after`, 0 when allowed; the
value for a ``Retry-After`` header, rounded up), and when the key is back to a full burst (`reset`).

- `MemoryLimiter` (``memory://``): a dict under a lock, for one process; expired keys are swept
  now and then. The clock is injectable, so tests move time without sleeping.
- `RedisLimiter` (``redis://`` or ``rediss://``): the same algorithm in one Lua script, atomic
  across API workers, using the Redis server's clock (so workers' clocks need not agree); keys
  ``<prefix><key>`` expire when they are back to a full burst.

If Redis cannot be reached, the limiter **fails open**: the hit is allowed, and a warning is logged
(at most once a minute, without the URL's password). A rate limit protects capacity, and refusing
every request while Redis is down would turn a Redis outage into a full outage of the API.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from zhishe.core.errors import RateLimited
from zhishe.core.observability import get_logger

__all__ = [
    "Decision",
    "MemoryLimiter",
    "RateLimiter",
    "RedisLimiter",
    "enforce",
    "limiter_from_url",
    "redact_url",
]

_log = get_logger("zhishe.ratelimit")
#: Slack for floating-point rounding: a hit this close to its allowed time is allowed.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit."""

    allowed: bool
    #: Hits that would still be allowed right now, after this one.
    remaining: int
    #: Seconds until a hit would be allowed (0 when this one was).
    retry_after: float
    #: Seconds until the key is back to a full burst of `limit` hits.
    reset: float


class RateLimiter(Protocol):
    """Counts hits per key: `limit` hits per `window_s` seconds, in bursts of up to `limit`."""

    def hit(self, key: str, limit: int, window_s: float) -> Decision:
        """Record one hit on `key` if allowed and say whether it was."""
        ...


def _check(limit: int, window_s: float) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not window_s > 0:
        raise ValueError("window_s must be positive")


def _ceil_us(seconds: float) -> float:
    """Seconds rounded up to the microsecond, so that waiting that long is always enough."""
    return math.ceil(max(0.0, seconds) * 1_000_000 - 1e-6) / 1_000_000


def _gcra(tat: float | None, now: float, limit: int, window: float) -> tuple[Decision, float | None]:
    """One GCRA step: the decision and the new TAT (None when the hit is refused)."""
    interval = window / limit
    start = now if tat is None or tat < now else tat
    new_tat = start + interval
    allow_at = new_tat - window
    if allow_at - now > _EPSILON:
        return Decision(False, 0, _ceil_us(allow_at - now), _ceil_us(start - now)), None
    remaining = math.floor((window - (new_tat - now)) / interval + _EPSILON)
    return Decision(True, max(0, remaining), 0.0, _ceil_us(new_tat - now)), new_tat


class MemoryLimiter:
    """GCRA in process memory, thread-safe; `clock` returns seconds (monotonic by default)."""

    #: Hits between sweeps of keys that are back to a full burst.
    SWEEP_EVERY = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._hits = 0

    def hit(self, key: str, limit: int, window_s: float) -> Decision:
        """Record one hit on `key` if allowed and say whether it was."""
        _check(limit, window_s)
        with self._lock:
            now = self._clock()
            decision, new_tat = _gcra(self._tat.get(key), now, limit, window_s)
            if new_tat is not None:
                self._tat[key] = new_tat
            self._hits += 1
            if self._hits % self.SWEEP_EVERY == 0:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            return decision

    def __len__(self) -> int:
        """Keys currently tracked (for tests and metrics)."""
        return len(self._tat)


# Keys: KEYS[1]. Arguments: limit, window (µs), now (µs, or -1 for the server's clock).
# Returns {allowed, remaining, retry_after_us, reset_us}; Lua numbers become integers in replies.
_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at - now > 0.001 then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', ttl_ms)
local remaining = math.floor((window - (new_tat - now)) / interval + 1e-9)
if remaining < 0 then
  remaining = 0
end
return {1, remaining, 0, math.ceil(new_tat - now)}
"""


def redact_url(url: str) -> str:
    """`url` with any password replaced by ``***`` (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class RedisLimiter:
    """GCRA in Redis, atomic per key through a Lua script; fails open when Redis is unreachable.

    `clock` (seconds) replaces the Redis server's clock, for tests; leave it None in production.
    """

    #: Seconds between two warnings about an unreachable Redis.
    WARN_EVERY = 60.0

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "zhishe:rl:",
        timeout_s: float = 0.5,
        clock: Callable[[], float] | None = None,
        client: Any = None,
    ) -> None:
        import redis

        self._url = redact_url(url)
        self._prefix = prefix
        self._clock = clock
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._client.register_script(_LUA)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._warned_at: float | None = None

    def hit(self, key: str, limit: int, window_s: float) -> Decision:
        """Record one hit on `key` if allowed and say whether it was."""
        _check(limit, window_s)
        window_us = max(1, round(window_s * 1_000_000))
        now_us = -1 if self._clock is None else round(self._clock() * 1_000_000)
        try:
            reply = self._script(keys=[self._prefix + key], args=[limit, window_us, now_us])
        except self._errors as exc:
            self._warn(exc)
            return Decision(True, limit - 1, 0.0, 0.0)
        allowed, remaining, retry_us, reset_us = (int(v) for v in reply)
        return Decision(bool(allowed), remaining, retry_us / 1_000_000, max(0, reset_us) / 1_000_000)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < self.WARN_EVERY:
            return
        self._warned_at = now
        _log.warning(
            "ratelimit.redis_unavailable",
            url=self._url,
            error=str(exc),
            error_type=type(exc).__name__,
            policy="fail open: hits are allowed until Redis is back",
        )


def limiter_from_url(url: str | None) -> RateLimiter:
    """The limiter for a ``rate_limit_url`` setting: memory when empty or ``memory://``, else Redis."""
    if not url or url.strip() in ("memory://", "memory:"):
        return MemoryLimiter()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisLimiter(url)
    raise ValueError(f"unsupported rate-limit URL {redact_url(url)!r}; use memory:// or redis://host:port/db")


def enforce(limiter: RateLimiter, key: str, limit: int, window_s: float) -> Decision:
    """Hit `key` and raise `RateLimited` (with ``retry_after`` seconds, rounded up) when refused."""
    decision = limiter.hit(key, limit, window_s)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after))
        raise RateLimited(
            f"too many requests; try again in {wait} seconds",
            detail={"retry_after": wait, "limit": limit, "window_seconds": window_s},
        )
    return decision
