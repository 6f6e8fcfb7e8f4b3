"""Signed webhook delivery with retries, against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from zhishe.catalog.models import Dataset
from zhishe.core import clock
from zhishe.core.config import Settings, get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.exchange import webhooks
from zhishe.exchange.models import Grant, ShareRequest, Subscription, WebhookDelivery

SECRET = "test-webhook-secret"
START = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
PAYLOAD: dict[str, Any] = {
    "event": "dataset.version",
    "dataset": {"id": 1, "slug": "air"},
    "version": 3,
    "summary": {"note": "东四站补录", "rows_inserted": 12},
}


# ---------------------------------------------------------------- the receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """A real HTTP server that answers from a script (the last answer repeats) and records requests."""

    answers: list[int]
    hold: threading.Event | None = None
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivery_ids(self) -> list[int]:
        return [int(r.headers["X-Zhishe-Delivery"]) for r in self.requests]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        ok = webhooks.verify(SECRET, handler.headers.get("X-Zhishe-Signature", ""), body)
        with self.lock:
            self.requests.append(Received(handler.path, dict(handler.headers.items()), body, ok))
            answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        self.arrived.set()
        if self.hold is not None:
            self.hold.wait(10)
        reply = b"boom " * 300 if answer >= 500 else b"ok"
        handler.send_response(answer)
        if answer in (301, 302, 303, 307, 308):
            handler.send_header("Location", f"http://127.0.0.1:{self.port}/elsewhere")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(*answers: int, hold: threading.Event | None = None) -> Receiver:
        state = Receiver(list(answers) or [200], hold=hold)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                state.handle(self)

            def do_GET(self) -> None:
                state.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        state.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the world


class Clock:
    def __init__(self) -> None:
        self.at = START
        clock.set_clock(lambda: self.at)

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@pytest.fixture()
def now(db: Session) -> Clock:
    return Clock()


@pytest.fixture()
def maker(db: Session) -> sessionmaker[Session]:
    maker_: sessionmaker[Session] = get_sessionmaker(get_settings().database_url)
    return maker_


@pytest.fixture()
def subscribe(world: Any, db: Session, now: Clock) -> Callable[[str], Subscription]:
    """A subscription grant of the water bureau to the environment bureau's dataset, per call."""
    env = world.org("env")
    water = world.org("water")
    dataset = Dataset(
        slug="air",
        title_zh="空气质量",
        owner_org_id=env.id,
        sharing_class="conditional",
        created_at=now.at,
        updated_at=now.at,
    )
    db.add(dataset)
    db.commit()

    def make(url: str, *, active: bool = True) -> Subscription:
        request = ShareRequest(
            dataset_id=dataset.id,
            owner_org_id=env.id,
            requester_org_id=water.id,
            requester="water.steward",
            starts_on=date(2026, 9, 18),
            expires_on=date(2026, 12, 31),
            mode="subscription",
            state="approved",
            created_at=now.at,
            updated_at=now.at,
        )
        db.add(request)
        db.flush()
        grant = Grant(
            request_id=request.id,
            dataset_id=dataset.id,
            owner_org_id=env.id,
            grantee_org_id=water.id,
            mode="subscription",
            starts_at=now.at,
            expires_at=now.at + timedelta(days=90),
            created_at=now.at,
        )
        db.add(grant)
        db.flush()
        subscription = Subscription(
            grant_id=grant.id, webhook_url=url, secret=SECRET, created_at=now.at, is_active=active
        )
        db.add(subscription)
        db.commit()
        return subscription

    return make


def queue(db: Session, subscription: Subscription, payload: dict[str, Any] | None = None) -> int:
    delivery = webhooks.enqueue(
        db, subscription_id=subscription.id, event="dataset.version", payload=payload or PAYLOAD
    )
    db.commit()
    return int(delivery.id)


def reload(db: Session, delivery_id: int) -> WebhookDelivery:
    db.commit()
    db.expire_all()
    delivery = db.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    return delivery


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def no_private(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production default: webhooks to internal addresses are refused."""
    settings = Settings(webhook_allow_private=False)
    monkeypatch.setattr(webhooks, "get_settings", lambda: settings)


# ---------------------------------------------------------------- signatures


def test_signature_header_is_timestamp_and_hmac_of_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert webhooks.sign("s3cret", 1_700_000_000, body) == f"t=1700000000,v1={expected}"


def test_verify_refuses_tampering_wrong_secret_stale_and_malformed_headers() -> None:
    body = webhooks.canonical_body(PAYLOAD)
    at = 1_700_000_000
    header = webhooks.sign(SECRET, at, body)
    assert webhooks.verify(SECRET, header, body, now=at + 299)
    assert webhooks.verify(SECRET, header, body, now=datetime.fromtimestamp(at, UTC))
    assert not webhooks.verify(SECRET, header, body + b" ", now=at)
    assert not webhooks.verify("other-secret", header, body, now=at)
    assert not webhooks.verify(SECRET, header, body, now=at + 301)
    assert not webhooks.verify(SECRET, header, body, now=at - 301)
    assert webhooks.verify(SECRET, header, body, now=at + 3000, tolerance_s=3600)
    for bad in ("", "garbage", f"t=x,v1={header.split('v1=')[1]}", f"t={at}", "v1=abc", f"t={at},v1=zz"):
        assert not webhooks.verify(SECRET, bad, body, now=at)
    # a second v1 (a subscriber's old secret during a change) may be the matching one
    assert webhooks.verify(SECRET, f"t={at},v1={'0' * 64},{header.split(',')[1]}", body, now=at)


def test_new_secret_is_long_and_unique() -> None:
    secrets = {webhooks.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)


def test_backoff_grows_threefold_from_ten_seconds_and_is_capped_at_six_hours() -> None:
    assert [webhooks.backoff(n).total_seconds() for n in range(1, 7)] == [10, 30, 90, 270, 810, 2430]
    assert webhooks.backoff(8) == timedelta(hours=6)  # 10 × 3^7 s would be over 6 hours
    assert webhooks.backoff(20) == timedelta(hours=6)


# ---------------------------------------------------------------- delivery


def test_delivery_posts_the_canonical_body_with_a_valid_signature(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200)
    delivery_id = queue(db, subscribe(target.url))
    pending = reload(db, delivery_id)
    assert (pending.status, pending.attempts, pending.next_attempt_at) == ("pending", 0, START)

    assert webhooks.deliver_due(maker) == 1

    [request] = target.requests
    assert request.path == "/hook"
    assert (
        request.body
        == json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    )
    assert "东四站补录".encode() in request.body
    assert request.signature_ok
    assert request.headers["X-Zhishe-Signature"] == webhooks.sign(
        SECRET, int(START.timestamp()), request.body
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Zhishe-Webhook/1"
    assert request.headers["X-Zhishe-Event"] == "dataset.version"
    assert request.headers["X-Zhishe-Delivery"] == str(delivery_id)
    delivered = reload(db, delivery_id)
    assert delivered.status == "delivered"
    assert (delivered.attempts, delivered.last_status, delivered.delivered_at) == (1, 200, START)
    assert delivered.next_attempt_at is None
    assert webhooks.deliver_due(maker) == 0


def test_a_500_is_retried_after_ten_seconds_and_then_delivered(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(500, 200)
    delivery_id = queue(db, subscribe(target.url))

    assert webhooks.deliver_due(maker) == 1
    failed_once = reload(db, delivery_id)
    assert (failed_once.status, failed_once.attempts, failed_once.last_status) == ("pending", 1, 500)
    assert failed_once.last_error.startswith("HTTP 500")
    assert len(failed_once.last_error) <= 500
    assert failed_once.next_attempt_at == START + timedelta(seconds=10)

    now.advance(timedelta(seconds=9))
    assert webhooks.deliver_due(maker) == 0  # not due yet
    now.advance(timedelta(seconds=1))
    assert webhooks.deliver_due(maker) == 1

    delivered = reload(db, delivery_id)
    assert (delivered.status, delivered.attempts, delivered.last_status) == ("delivered", 2, 200)
    assert delivered.delivered_at == START + timedelta(seconds=10)
    assert target.delivery_ids() == [delivery_id, delivery_id]
    assert all(r.signature_ok for r in target.requests)
    assert target.requests[0].body == target.requests[1].body


def test_always_failing_receiver_is_given_up_after_max_attempts(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(500)
    delivery_id = queue(db, subscribe(target.url))
    max_attempts = get_settings().webhook_max_attempts
    waits = []
    for attempt in range(1, max_attempts + 1):
        assert webhooks.deliver_due(maker) == 1
        delivery = reload(db, delivery_id)
        assert delivery.attempts == attempt
        if attempt < max_attempts:
            assert delivery.status == "pending" and delivery.next_attempt_at is not None
            waits.append((delivery.next_attempt_at - now.at).total_seconds())
            now.at = delivery.next_attempt_at
    assert waits == [10 * 3**n for n in range(max_attempts - 1)]
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", max_attempts, 500)
    assert delivery.next_attempt_at is None and delivery.delivered_at is None
    now.advance(timedelta(days=2))
    assert webhooks.deliver_due(maker) == 0
    assert len(target.requests) == max_attempts


def test_receiver_that_is_down_records_a_connection_error(
    db: Session, maker: sessionmaker[Session], now: Clock, subscribe: Any
) -> None:
    delivery_id = queue(db, subscribe(f"http://127.0.0.1:{closed_port()}/hook"))
    assert webhooks.deliver_due(maker, timeout_s=2) == 1
    delivery = reload(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, None)
    assert delivery.last_error.startswith("connection failed")
    assert delivery.next_attempt_at == START + timedelta(seconds=10)


def test_slow_receiver_times_out_and_is_retried(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200, hold=threading.Event())  # answers only when the test lets it
    delivery_id = queue(db, subscribe(target.url))
    assert webhooks.deliver_due(maker, timeout_s=0.3) == 1
    delivery = reload(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, None)
    assert delivery.last_error.startswith("timed out after 0.3 s")
    assert len(target.requests) == 1


def test_redirect_is_not_followed_and_counts_as_a_failure(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(302)
    delivery_id = queue(db, subscribe(target.url))
    assert webhooks.deliver_due(maker) == 1
    delivery = reload(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 302)
    assert "redirects are not followed" in delivery.last_error
    assert [r.path for r in target.requests] == ["/hook"]


def test_inactive_subscription_fails_its_delivery_without_a_request(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200)
    delivery_id = queue(db, subscribe(target.url, active=False))
    assert webhooks.deliver_due(maker) == 1
    delivery = reload(db, delivery_id)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "no longer active" in delivery.last_error
    assert target.requests == []


def test_url_refused_at_delivery_time_fails_the_delivery_with_the_reason(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any, no_private: None
) -> None:
    target = receiver(200)
    delivery_id = queue(db, subscribe(target.url))  # accepted earlier; now the address is refused
    assert webhooks.deliver_due(maker) == 1
    delivery = reload(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 1, None)
    assert "loopback address 127.0.0.1" in delivery.last_error
    assert target.requests == []


def test_two_workers_at_once_send_each_delivery_exactly_once(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200)
    subscription = subscribe(target.url)
    ids = [queue(db, subscription, {**PAYLOAD, "version": n}) for n in range(20)]
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait(5)
            counts.append(webhooks.deliver_due(maker))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(counts) == 20
    assert sorted(target.delivery_ids()) == ids
    for delivery_id in ids:
        delivery = reload(db, delivery_id)
        assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_retry_now_puts_a_failed_delivery_back_in_the_queue(
    db: Session,
    maker: sessionmaker[Session],
    now: Clock,
    receiver: Any,
    subscribe: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(webhook_max_attempts=1)
    monkeypatch.setattr(webhooks, "get_settings", lambda: settings)
    target = receiver(500, 200)
    delivery_id = queue(db, subscribe(target.url))
    assert webhooks.deliver_due(maker) == 1
    assert reload(db, delivery_id).status == "failed"

    now.advance(timedelta(hours=1))
    retried = webhooks.retry_now(db, delivery_id=delivery_id)
    assert (retried.status, retried.attempts, retried.next_attempt_at) == ("pending", 0, now.at)
    db.commit()
    with pytest.raises(Conflict):
        webhooks.retry_now(db, delivery_id=delivery_id)  # only a failed one
    with pytest.raises(NotFound):
        webhooks.retry_now(db, delivery_id=delivery_id + 1000)

    assert webhooks.deliver_due(maker) == 1
    delivered = reload(db, delivery_id)
    assert (delivered.status, delivered.attempts, delivered.last_status) == ("delivered", 1, 200)
    with pytest.raises(Conflict):
        webhooks.retry_now(db, delivery_id=delivery_id)


def test_deliveries_are_sent_oldest_first_up_to_the_limit(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200)
    subscription = subscribe(target.url)
    first = queue(db, subscription)
    now.advance(timedelta(seconds=1))
    second = queue(db, subscription)
    now.advance(timedelta(seconds=1))
    assert webhooks.deliver_due(maker, limit=1) == 1
    assert webhooks.deliver_due(maker, limit=5) == 1
    assert target.delivery_ids() == [first, second]


def test_enqueue_refuses_an_empty_event_name(db: Session, subscribe: Any) -> None:
    subscription = subscribe("https://example.org/hook")
    with pytest.raises(Invalid):
        webhooks.enqueue(db, subscription_id=subscription.id, event="", payload={})


def test_worker_delivers_survives_errors_and_stops(
    db: Session, maker: sessionmaker[Session], now: Clock, receiver: Any, subscribe: Any
) -> None:
    target = receiver(200)
    delivery_id = queue(db, subscribe(target.url))
    calls = []

    def factory() -> sessionmaker[Session]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database not ready")
        return maker

    stop = webhooks.start_worker(factory, interval_s=0.05)
    try:
        assert target.arrived.wait(10), "the worker never delivered"
    finally:
        stop()
    assert not any(t.name == "zhishe-webhooks" and t.is_alive() for t in threading.enumerate())
    assert target.delivery_ids() == [delivery_id]
    assert reload(db, delivery_id).status == "delivered"


# ---------------------------------------------------------------- URL checks


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.org/hook", "http:// or https://"),
        ("example.org/hook", "http:// or https://"),
        ("https://user:pass@example.org/hook", "user name or password"),
        ("https://token@example.org/hook", "user name or password"),
        ("http:///hook", "no host"),
        ("https://example.org/" + "a" * 1000, "at most 1000"),
        ("https://example.org/a b", "spaces"),
        ("https://example.org:99999/hook", "malformed"),
    ],
)
def test_check_url_refuses_malformed_urls(url: str, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        webhooks.check_url(url)
    assert says in refused.value.message
    assert refused.value.detail == {"field": "webhook_url"}


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://100.64.0.1/hook", "non-public"),
    ],
)
def test_check_url_refuses_internal_addresses_unless_allowed(url: str, kind: str, no_private: None) -> None:
    with pytest.raises(Invalid) as refused:
        webhooks.check_url(url)
    assert f"the {kind} address" in refused.value.message
    assert refused.value.detail == {"field": "webhook_url"}


def test_check_url_allows_internal_addresses_when_the_setting_says_so() -> None:
    assert get_settings().webhook_allow_private  # the suite's default
    assert webhooks.check_url("http://127.0.0.1:8000/hook") == "http://127.0.0.1:8000/hook"


def test_check_url_checks_every_address_a_name_resolves_to(
    monkeypatch: pytest.MonkeyPatch, no_private: None
) -> None:
    answers: dict[str, list[str]] = {
        "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
        "mixed.example": ["93.184.216.34", "10.0.0.7"],
    }

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", fake_getaddrinfo)
    assert webhooks.check_url("https://public.example/hook") == "https://public.example/hook"
    with pytest.raises(Invalid, match=r"private address 10\.0\.0\.7"):
        webhooks.check_url("https://mixed.example/hook")
    with pytest.raises(Invalid, match="cannot be resolved"):
        webhooks.check_url("https://nowhere.example/hook")


def test_check_url_accepts_public_addresses(no_private: None) -> None:
    for url in ("https://93.184.216.34:8443/hook?x=1", "http://[2606:4700::1111]/hook"):
        assert webhooks.check_url(url) == url


def test_the_server_worker_refreshes_deadlines_by_itself(db, world):
    """The background worker of `zhishe serve` escalates an overdue request without anyone asking."""
    import time
    from datetime import UTC, datetime, timedelta

    from zhishe.core import clock as platform_clock
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.exchange import worker
    from zhishe.exchange.models import ShareRequest

    owner = world.org("owner")
    asker = world.org("asker")
    from zhishe.catalog.models import Dataset

    now = datetime.now(UTC)
    ds = Dataset(
        slug="w",
        title_zh="w",
        owner_org_id=owner.id,
        sharing_class="conditional",
        created_at=now,
        updated_at=now,
    )
    db.add(ds)
    db.flush()
    request = ShareRequest(
        dataset_id=ds.id, owner_org_id=owner.id, requester_org_id=asker.id, requester="x", columns=["a"],
        starts_on=now.date(), expires_on=now.date(), mode="query", state="submitted", created_at=now,
        updated_at=now, submitted_at=now - timedelta(days=10), due_at=now - timedelta(days=1),
    )  # fmt: skip
    db.add(request)
    db.commit()
    platform_clock.set_clock(None)
    stop = worker.start(lambda: get_sessionmaker(get_settings().database_url), refresh_s=0.2, deliver_s=0.2)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            db.expire_all()
            if db.get(ShareRequest, request.id).escalated_at is not None:
                break
            time.sleep(0.1)
    finally:
        stop()
    assert db.get(ShareRequest, request.id).escalated_at is not None
