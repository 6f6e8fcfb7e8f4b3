"""Signed webhook delivery, with retries, for the exchange's subscriptions to new versions.

A delivery is queued in the caller's transaction (``enqueue``) and sent later by a worker
(``deliver_due``, run every few seconds by ``start_worker``). Each request is a POST of the canonical
JSON payload, signed with the subscription's secret::

    X-Zhishe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>

Subscribers check it with ``verify`` (or the same three lines in their own language) and should
refuse a timestamp older than a few minutes. A 2xx answer delivers; anything else is retried with
exponential backoff (10 s, 30 s, 90 s, ... capped at 6 hours) until ``webhook_max_attempts``
attempts have failed. Redirects are never followed.

Several workers may run at once: a delivery is claimed by a conditional UPDATE on its ``attempts``
(one winner, on SQLite and PostgreSQL alike) that also moves ``next_attempt_at`` past the request's
lease, so no delivery is sent twice. The HTTP request itself runs outside any database transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.observability import get_logger
from zhishe.exchange.models import Subscription, WebhookDelivery

__all__ = [
    "MAX_URL_LENGTH",
    "USER_AGENT",
    "backoff",
    "canonical_body",
    "check_url",
    "deliver_due",
    "enqueue",
    "new_secret",
    "retry_now",
    "sign",
    "start_worker",
    "verify",
]

MAX_URL_LENGTH = 1000
USER_AGENT = "Zhishe-Webhook/1"
#: First retry delay; each further one is three times the previous, up to ``_MAX_DELAY``.
_FIRST_DELAY = timedelta(seconds=10)
_MAX_DELAY = timedelta(hours=6)
#: How long a claimed delivery stays invisible to other workers while its request runs. Longer than
#: any request can take, so a slow request is never sent a second time; after a crashed worker the
#: delivery is picked up again once the lease has passed.
_LEASE = timedelta(minutes=10)
#: Longest last_error kept, and the longest part of a response body quoted in it.
_MAX_ERROR = 500
_MAX_QUOTED_BODY = 200

_log = get_logger("zhishe.exchange.webhooks")


# ---------------------------------------------------------------- URLs


@dataclass(frozen=True)
class _Refusal:
    message: str
    #: A DNS failure may pass; a forbidden address or a malformed URL does not.
    temporary: bool = False


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``address`` unfit for a webhook, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _address_problem(embedded)
    for flag, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(address, flag):
            return name
    if not address.is_global:
        return "non-public"
    return None


def _resolve(host: str, port: int) -> list[str] | _Refusal:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return _Refusal(
            T("webhook host {host} cannot be resolved ({error})", host=host, error=exc), temporary=True
        )
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        return _Refusal(T("webhook host {host} has no address", host=host), temporary=True)
    return addresses


def _refusal(url: str) -> _Refusal | None:
    """Why ``url`` may not receive webhooks, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return _Refusal(
            T(
                "the webhook URL is {n} characters long; at most {limit} are allowed",
                n=len(url),
                limit=MAX_URL_LENGTH,
            )
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return _Refusal(T("the webhook URL is malformed: {error}", error=exc))
    if parts.scheme not in ("http", "https"):
        return _Refusal(
            T("the webhook URL must start with http:// or https://, not {scheme}", scheme=parts.scheme or "-")
        )
    host = parts.hostname
    if not host:
        return _Refusal(T("the webhook URL has no host"))
    if parts.username is not None or parts.password is not None:
        return _Refusal(T("the webhook URL must not contain a user name or password"))
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return _Refusal(T("the webhook URL must not contain spaces or control characters"))
    if get_settings().webhook_allow_private:
        return None
    try:
        addresses: list[str] | _Refusal = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = _resolve(host, port or (443 if parts.scheme == "https" else 80))
    if isinstance(addresses, _Refusal):
        return addresses
    for text in addresses:
        problem = _address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
        if problem is not None:
            return _Refusal(
                T(
                    "webhook host {host} resolves to the {kind} address {address}; only public addresses are allowed",
                    host=host,
                    kind=problem,
                    address=text,
                )
            )
    return None


def check_url(url: str) -> str:
    """Check a webhook URL and return it: http(s), a host, no credentials, at most 1000 characters,
    and (unless ``webhook_allow_private``) only public addresses for every address the host has."""
    refusal = _refusal(url)
    if refusal is not None:
        raise Invalid(refusal.message, detail={"field": "webhook_url"})
    return url


# ---------------------------------------------------------------- signatures


def new_secret() -> str:
    """A new signing secret for a subscription."""
    return secrets.token_urlsafe(32)


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The bytes that are sent and signed: compact, key-sorted JSON in UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Zhishe-Signature`` header value: ``t=<timestamp>,v1=<hex HMAC-SHA256>`` of
    ``f"{timestamp}." + body`` keyed with the subscription's secret."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: datetime | float | None = None,
) -> bool:
    """True when ``header`` is a valid signature of ``body`` with ``secret`` made within
    ``tolerance_s`` seconds of ``now`` (default: the platform clock). Any ``v1`` entry may match,
    so a subscriber can accept during a change of secret."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = clock.now() if now is None else now
    seconds = current.timestamp() if isinstance(current, datetime) else float(current)
    if abs(seconds - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    matched = False
    for candidate in candidates:  # compare every one, so timing says nothing about which matched
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    return matched


# ---------------------------------------------------------------- the queue


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 10 s × 3^(attempts−1), at most 6 hours."""
    delay = _FIRST_DELAY
    for _ in range(max(attempts, 1) - 1):
        delay *= 3
        if delay >= _MAX_DELAY:
            return _MAX_DELAY
    return min(delay, _MAX_DELAY)


def enqueue(
    session: Session, *, subscription_id: int, event: str, payload: dict[str, Any]
) -> WebhookDelivery:
    """Queue ``payload`` for the subscription's webhook, due at once, in the caller's transaction."""
    if not event or len(event) > 64:
        raise Invalid(T("a webhook event name has 1 to 64 characters"), detail={"field": "event"})
    canonical_body(payload)  # refuses what cannot be sent (TypeError) before anything is queued
    now = clock.now()
    delivery = WebhookDelivery(
        subscription_id=subscription_id,
        event=event,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        last_error="",
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


def retry_now(session: Session, *, delivery_id: int) -> WebhookDelivery:
    """Put a failed delivery back in the queue, due at once with its attempts reset (the
    subscriber's "retry" button; the caller authorises)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(
            T("webhook delivery #{id} does not exist", id=delivery_id), detail={"delivery": delivery_id}
        )
    if delivery.status != "failed":
        raise Conflict(
            T(
                "webhook delivery #{id} is {status}; only a failed delivery can be retried",
                id=delivery_id,
                status=delivery.status,
            ),
            detail={"status": delivery.status},
        )
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = clock.now()
    delivery.delivered_at = None
    session.flush()
    return delivery


# ---------------------------------------------------------------- delivery


@dataclass(frozen=True)
class _Job:
    """What a claimed delivery needs outside the database."""

    id: int
    subscription_id: int
    event: str
    payload: dict[str, Any]
    attempts: int  # including the one being made
    url: str
    secret: str
    active: bool


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status: int | None = None
    error: str = ""
    final: bool = False  # no point retrying


def _due_candidates(maker: sessionmaker[Session], limit: int) -> list[tuple[int, int]]:
    with maker.begin() as session:
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.attempts)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= clock.now())
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        ).all()
    return [(int(row[0]), int(row[1])) for row in rows]


def _claim(maker: sessionmaker[Session], delivery_id: int, attempts: int) -> _Job | None:
    """Take one delivery for this worker, or None when another worker was first."""
    now = clock.now()
    with maker.begin() as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == attempts,
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(attempts=attempts + 1, next_attempt_at=now + _LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None
        row = session.execute(
            select(WebhookDelivery, Subscription)
            .join(Subscription, Subscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id == delivery_id)
        ).one()
        delivery, subscription = row[0], row[1]
        return _Job(
            id=delivery.id,
            subscription_id=subscription.id,
            event=delivery.event,
            payload=dict(delivery.payload or {}),
            attempts=attempts + 1,
            url=subscription.webhook_url,
            secret=subscription.secret,
            active=subscription.is_active,
        )


def _short(text: str, limit: int = _MAX_ERROR) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _send(client: httpx.Client, job: _Job, timeout_s: float) -> _Outcome:
    """Make the one HTTP request of an attempt (no database work here)."""
    if not job.active:
        return _Outcome(False, error="the subscription is no longer active", final=True)
    if not job.url:
        return _Outcome(False, error="the subscription has no webhook URL", final=True)
    refusal = _refusal(job.url)
    if refusal is not None:
        return _Outcome(False, error=refusal.message, final=not refusal.temporary)
    body = canonical_body(job.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Zhishe-Event": job.event,
        "X-Zhishe-Delivery": str(job.id),
        "X-Zhishe-Signature": sign(job.secret, int(clock.now().timestamp()), body),
    }
    try:
        with client.stream("POST", job.url, content=body, headers=headers) as response:
            status = response.status_code
            if 200 <= status < 300:
                return _Outcome(True, status=status)
            if response.is_redirect:
                return _Outcome(False, status=status, error=f"HTTP {status}: redirects are not followed")
            quoted = b""
            for chunk in response.iter_bytes():
                quoted += chunk
                if len(quoted) >= _MAX_QUOTED_BODY * 4:
                    break
        text = _short(quoted.decode("utf-8", "replace"), _MAX_QUOTED_BODY)
        reason = response.reason_phrase or ""
        error = f"HTTP {status} {reason}".strip() + (f": {text}" if text else "")
        return _Outcome(False, status=status, error=_short(error))
    except httpx.TimeoutException as exc:
        return _Outcome(False, error=f"timed out after {timeout_s:g} s ({type(exc).__name__})")
    except httpx.ConnectError as exc:
        return _Outcome(False, error=_short(f"connection failed: {exc}"))
    except httpx.HTTPError as exc:
        return _Outcome(False, error=_short(f"{type(exc).__name__}: {exc}"))


def _record(maker: sessionmaker[Session], job: _Job, outcome: _Outcome) -> str:
    """Store an attempt's outcome; returns the delivery's new status."""
    now = clock.now()
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": _short(outcome.error)}
    if outcome.delivered:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None, last_error="")
    elif outcome.final or job.attempts >= get_settings().webhook_max_attempts:
        values.update(status="failed", next_attempt_at=None)
    else:
        values.update(status="pending", next_attempt_at=now + backoff(job.attempts))
    with maker.begin() as session:
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == job.id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == job.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return str(values["status"])


def _deliver_due(
    maker: sessionmaker[Session], *, limit: int, timeout_s: float, stop: threading.Event | None
) -> int:
    attempted = 0
    candidates = _due_candidates(maker, limit)
    if not candidates:
        return 0
    timeout = httpx.Timeout(timeout_s)
    # trust_env=False: no proxy from the environment and no ~/.netrc credentials sent to subscribers.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for delivery_id, attempts in candidates:
            if stop is not None and stop.is_set():
                break
            job = _claim(maker, delivery_id, attempts)
            if job is None:
                continue
            attempted += 1
            try:
                outcome = _send(client, job, timeout_s)
            except Exception as exc:  # a bug here must not leave the delivery leased and silent
                _log.error("webhook send failed unexpectedly", delivery=job.id, exc_info=exc)
                outcome = _Outcome(False, error=f"internal error ({type(exc).__name__})")
            status = _record(maker, job, outcome)
            _log.info(
                "webhook attempt",
                delivery=job.id,
                subscription=job.subscription_id,
                attempt=job.attempts,
                http_status=outcome.status,
                status=status,
            )
    return attempted


def deliver_due(maker: sessionmaker[Session], *, limit: int = 100, timeout_s: float = 10.0) -> int:
    """Send up to ``limit`` due deliveries, oldest first, each claimed and recorded in its own short
    transaction; returns how many were attempted. Safe to run in several workers at once."""
    return _deliver_due(maker, limit=limit, timeout_s=timeout_s, stop=None)


def start_worker(
    maker_factory: Callable[[], sessionmaker[Session]], *, interval_s: float = 5.0
) -> Callable[[], None]:
    """Run ``deliver_due`` every ``interval_s`` seconds on a daemon thread; returns the function
    that stops it. Errors are logged and never end the thread."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            busy = False
            try:
                limit = 100
                busy = _deliver_due(maker_factory(), limit=limit, timeout_s=10.0, stop=stop) >= limit
            except Exception as exc:
                _log.error("webhook worker round failed", error=type(exc).__name__, exc_info=exc)
            if not busy:
                stop.wait(interval_s)

    thread = threading.Thread(target=run, name="zhishe-webhooks", daemon=True)
    thread.start()

    def stop_worker() -> None:
        stop.set()
        thread.join(timeout=30.0)

    return stop_worker
