"""The MQTT bridge (``zhishe iot mqtt-bridge``): readings published to the broker are stored in the
landing table, and each message is acknowledged (PUBACK) only once its batch is committed.

Topics, under an optional root:

- ``v1.1/Datastreams(<id>)/Observations``: SensorThings MQTT create, an Observation per message
  (``payloads.parse_observation``). The topic carries no sender: whoever the broker lets publish
  here may write any datastream. The generated Mosquitto configuration lets nobody.
- ``devices/<token>/v1/devices/me/telemetry``: ThingsBoard telemetry of the device whose token was
  its MQTT username. A subscriber cannot see a publisher's username, so the broker puts it into the
  topic: EMQX by a per-listener mount point ``devices/${username}/`` (the device publishes to the
  ThingsBoard topic itself), Mosquitto, which cannot mount per username, by an ACL ``pattern`` that
  lets a client publish only under its own username (``zhishe.iot.broker``). The bridge
  authenticates the token (``service.authenticate_device``) and drops what a wrong one sent.
- ``devices/<token>/v1.1/Datastreams(<id>)/Observations``: SensorThings from a device, accepted for
  that device's own datastreams only.

Durability: the bridge subscribes with QoS 1 in a persistent MQTT 5 session (a fixed client id,
clean start off, a session expiry). Messages are collected for up to ``batch_wait`` seconds or
``batch_size`` messages, stored by ``ingest.store`` in one transaction, committed, and only then
acknowledged. A crash before the commit leaves them unacknowledged: the broker delivers them again
to the next session, and the landing table's primary key makes the repeats harmless. Messages that
cannot be stored (not JSON, unknown datastream, wrong token) are acknowledged too, with the reason
logged: dropping them is the answer, and unacknowledged they would come back forever.

Tokens: known ones are remembered by their SHA-256 (never the token) and confirmed against the
database once per batch, in one query, so a rotation or a deactivation takes effect at the next
batch; wrong ones are remembered for ``token_cache_seconds`` so that a device retrying with a bad
token costs no lookups. Logs show at most the first 8 characters of a token.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid, Unauthenticated
from zhishe.core.observability import get_logger
from zhishe.iot import ingest, payloads
from zhishe.iot import service as iot
from zhishe.iot.models import Device

__all__ = [
    "DEVICE_ROOT",
    "TELEMETRY_TOPIC",
    "BatchResult",
    "Bridge",
    "BridgeOptions",
    "BrokerAddress",
    "DeviceCache",
    "Drop",
    "Route",
    "forget_session",
    "redact_topic",
    "route",
    "store_messages",
    "subscriptions",
]

#: Where the broker puts each device's messages: ``devices/<username>/…``.
DEVICE_ROOT = "devices"
#: ThingsBoard's device telemetry topic.
TELEMETRY_TOPIC = "v1/devices/me/telemetry"
#: The most QoS 1 messages the broker may send before the bridge acknowledges (MQTT's maximum).
RECEIVE_MAXIMUM = 65535
_LOGGED_DROPS_PER_BATCH = 20
_log = get_logger(__name__)


# --- where a message comes from ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """What a topic says: the payload kind, the device token (if any) and the datastream (if any)."""

    kind: str  # "observation" | "telemetry"
    token: str | None
    datastream: int | None


def subscriptions(root: str = "", shared: str | None = None) -> list[str]:
    """The topic filters the bridge subscribes to, under ``root``; with ``shared``, as an MQTT 5
    shared subscription of that group (each message goes to one bridge of the group)."""
    share = f"$share/{shared}/" if shared else ""
    return [
        f"{share}{root}v1.1/+/Observations",
        f"{share}{root}{DEVICE_ROOT}/+/{TELEMETRY_TOPIC}",
        f"{share}{root}{DEVICE_ROOT}/+/v1.1/+/Observations",
    ]


def route(topic: str, root: str = "") -> Route | None:
    """The route of a topic the bridge reads, or None when it is not one of them."""
    if not topic.startswith(root):
        return None
    rest = topic[len(root) :]
    token: str | None = None
    if rest.startswith(DEVICE_ROOT + "/"):
        token, _, rest = rest[len(DEVICE_ROOT) + 1 :].partition("/")
        if not token:
            return None
        if rest == TELEMETRY_TOPIC:
            return Route("telemetry", token, None)
    found = payloads.STREAM_TOPIC.match(rest)
    if found is None:
        return None
    return Route("observation", token, int(found.group(1)))


def redact_topic(topic: str, root: str = "") -> str:
    """The topic with the device token cut to its first 8 characters, for logs."""
    head = f"{root}{DEVICE_ROOT}/"
    if not topic.startswith(head):
        return topic
    token, sep, rest = topic[len(head) :].partition("/")
    return f"{head}{token[:8]}…{sep}{rest}"


# --- tokens --------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DeviceCache:
    """Device tokens seen recently, by their SHA-256: the device id, or None for a wrong token.

    Known tokens are confirmed against the database with every batch (one query for all of them:
    still active, token not rotated); wrong ones are remembered for ``ttl`` seconds.
    """

    def __init__(self, *, ttl: float = 30.0, limit: int = 100_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._known: dict[str, tuple[int | None, float]] = {}

    def _remember(self, digest: str, device_id: int | None, now: float) -> None:
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[digest] = (device_id, now + self.ttl)

    def resolve(self, session: Session, tokens: Iterable[str]) -> dict[str, Device | None]:
        """The active device of each token (None when the token is not valid), in ``session``."""
        now = time.monotonic()
        found: dict[str, Device | None] = {}
        confirm: dict[str, int] = {}
        for token in set(tokens):
            digest = _digest(token)
            entry = self._known.get(digest)
            if entry is not None and entry[1] > now:
                if entry[0] is None:
                    found[token] = None
                else:
                    confirm[token] = entry[0]
                continue
            try:
                device: Device | None = iot.authenticate_device(session=session, token=token)
            except Unauthenticated:
                device = None
            self._remember(digest, device.id if device is not None else None, now)
            found[token] = device
        if confirm:
            current = {
                d.id: d for d in session.scalars(select(Device).where(Device.id.in_(set(confirm.values()))))
            }
            for token, device_id in confirm.items():
                device = current.get(device_id)
                if device is None or not device.active or device.token_hash != _digest(token):
                    self._remember(_digest(token), None, now)
                    device = None
                found[token] = device
        return found


# --- one batch -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drop:
    """A message, or one reading of it, that was not stored, and why (the topic is redacted)."""

    topic: str
    reason: str


@dataclass
class BatchResult:
    """What one batch of messages came to."""

    messages: int = 0
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    drops: list[Drop] = field(default_factory=list)


@dataclass
class _Group:
    device: Device | None
    readings: list[ingest.Incoming] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)


def store_messages(
    *,
    session: Session,
    messages: Sequence[tuple[str, bytes]],
    devices: DeviceCache,
    root: str = "",
) -> BatchResult:
    """Read and store a batch of ``(topic, payload)`` messages in ``session``; the caller commits.

    Readings are stored per sender: a device's only for its own datastreams. Everything that is
    not stored is in ``drops`` with its reason.
    """
    result = BatchResult(messages=len(messages))
    routes = [route(topic, root) for topic, _ in messages]
    tokens = {r.token for r in routes if r is not None and r.token is not None}
    known = devices.resolve(session, tokens) if tokens else {}
    groups: dict[int | None, _Group] = {}

    def drop(number: int, reason: str) -> None:
        result.drops.append(Drop(redact_topic(messages[number][0], root), reason))

    for number, ((_topic, body), found) in enumerate(zip(messages, routes, strict=True)):
        if found is None:
            drop(number, "the topic is not one the bridge reads")
            continue
        device = None
        if found.token is not None:
            device = known.get(found.token)
            if device is None:
                drop(
                    number, f"the device token {found.token[:8]}… is not valid (unknown, rotated or inactive)"
                )
                continue
        try:
            if found.datastream is not None:
                readings = payloads.parse_observation(body, found.datastream)
            else:
                readings = payloads.parse_telemetry(body)
        except Invalid as exc:
            drop(number, exc.message)
            continue
        if not readings:
            drop(number, "the message holds no readings")
            continue
        group = groups.setdefault(device.id if device is not None else None, _Group(device))
        group.readings.extend(readings)
        group.origin.extend([number] * len(readings))
    limit = get_settings().iot_max_batch
    for group in groups.values():
        for start in range(0, len(group.readings), limit):
            chunk = [
                ingest.Incoming(i, r.datastream, r.time, r.value, r.key, r.problem)
                for i, r in enumerate(group.readings[start : start + limit])
            ]
            stored = ingest.store(session=session, readings=chunk, device=group.device)
            result.readings += stored.received
            result.stored += stored.stored
            result.duplicates += stored.duplicates
            for rejection in stored.rejected:
                drop(group.origin[start + rejection.index], rejection.reason)
    return result


# --- the broker connection ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how the bridge logs in, from ``mqtt[s]://[user:password@]host[:port]``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Read a broker URL; Invalid names what is wrong with it."""
        shape = "mqtt://[user:password@]host[:port] or mqtts://…"
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise Invalid(
                f"the MQTT URL is not valid ({exc}); use {shape}", detail={"setting": "mqtt_url"}
            ) from exc
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise Invalid(
                f"the MQTT URL must look like {shape}, not {parts.scheme or 'no'} scheme with host {parts.hostname!r}",
                detail={"setting": "mqtt_url"},
            )
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=tls,
        )


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """How the bridge connects, what it reads and how it batches."""

    broker: BrokerAddress
    client_id: str = "zhishe-bridge"
    root: str = ""
    #: The shared-subscription group of several bridges, each with its own client id; None: alone.
    shared: str | None = None
    batch_size: int = 2000
    batch_wait: float = 0.05
    session_expiry: int = 7 * 24 * 3600
    token_cache_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.client_id or len(self.client_id) > 128 or any(c in self.client_id for c in "+#/"):
            raise Invalid(
                f"the client id {self.client_id!r} must be 1-128 characters without '+', '#' or '/'"
            )
        if self.root and (not self.root.endswith("/") or any(c in self.root for c in "+#")):
            raise Invalid(f"the topic root {self.root!r} must end with '/' and hold no '+' or '#'")
        if self.shared is not None and (not self.shared or any(c in self.shared for c in "+#/")):
            raise Invalid(
                f"the shared group {self.shared!r} must be a non-empty name without '+', '#' or '/'"
            )
        if not 1 <= self.batch_size <= RECEIVE_MAXIMUM:
            raise Invalid(f"the batch size must be between 1 and {RECEIVE_MAXIMUM}, not {self.batch_size}")
        if not 0 <= self.batch_wait <= 10:
            raise Invalid(f"the batch wait must be between 0 and 10 seconds, not {self.batch_wait}")
        if self.session_expiry < 1:
            raise Invalid("the session expiry must be at least 1 second: the session must outlive a crash")


@dataclass
class BridgeStats:
    """Counters of a running bridge, and the most recent drops."""

    connections: int = 0
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    batches: int = 0
    recent_drops: deque[Drop] = field(default_factory=lambda: deque(maxlen=1000))


class _Received(NamedTuple):
    """A message as the network thread hands it over (a tuple: this is done for every message)."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


def _client(options: BridgeOptions) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        protocol=paho.MQTTv5,
        manual_ack=True,
    )
    broker = options.broker
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def _connect_properties(expiry: int) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = expiry
    properties.ReceiveMaximum = RECEIVE_MAXIMUM
    return properties


class Bridge:
    """The bridge process's work: one broker connection, batches stored and then acknowledged."""

    def __init__(self, options: BridgeOptions, *, sessions: sessionmaker[Session] | None = None) -> None:
        self.options = options
        self.stats = BridgeStats()
        self.devices = DeviceCache(ttl=options.token_cache_seconds)
        self._sessions = sessions
        self._inbox: queue.SimpleQueue[_Received] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._full = threading.Event()
        #: Bumped on every connect and disconnect: an acknowledgement is sent only on the connection
        #: that delivered the message (packet ids mean nothing on another one).
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._client = _client(options)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # callbacks, on the network thread

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            _log.error("the broker refused the bridge", reason=str(reason), broker=self.options.broker.host)
            return
        with self._ack_lock:
            self._generation += 1
        self.stats.connections += 1
        _log.info(
            "bridge connected",
            client_id=self.options.client_id,
            session_present=bool(getattr(flags, "session_present", False)),
        )
        topics = subscriptions(self.options.root, self.options.shared)
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in topics])

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            _log.error("the broker refused the bridge's subscriptions", reasons=refused)
            return
        _log.info("bridge subscribed", topics=subscriptions(self.options.root, self.options.shared), qos=1)
        self._subscribed.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._ack_lock:
            self._generation += 1
        self._subscribed.clear()
        if not self._stop.is_set():
            _log.warning("bridge disconnected; reconnecting", reason=str(reason))

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = ""
        self._inbox.put(_Received(self._generation, message.mid, message.qos, topic, bytes(message.payload)))
        if self._inbox.qsize() >= self.options.batch_size:
            self._full.set()

    # the batch loop, on the caller's thread

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the bridge is connected and subscribed within ``timeout`` seconds."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Finish the batch in hand (commit, acknowledge) and disconnect; the session stays."""
        self._stop.set()

    def run(self) -> None:
        """Connect, then store and acknowledge batches until ``stop()``."""
        broker = self.options.broker
        sessions = self._sessions or _default_sessions()
        self._client.connect_async(
            broker.host,
            broker.port,
            keepalive=30,
            clean_start=False,
            properties=_connect_properties(self.options.session_expiry),
        )
        self._client.loop_start()
        try:
            while not self._stop.is_set():
                batch = self._collect()
                if batch:
                    self._handle(sessions, batch)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            _log.info("bridge stopped", **_counts(self.stats))

    def _collect(self) -> list[_Received]:
        """The next batch: wait for a first message, then until the batch is full or its time is up.

        The network thread wakes this one once per batch (``_full``), never per message: a handoff
        per message would cost more than the message's whole storage.
        """
        try:
            batch = [self._inbox.get(timeout=0.25)]
        except queue.Empty:
            return []
        size = self.options.batch_size
        self._full.clear()
        if self._inbox.qsize() < size - 1:
            self._full.wait(self.options.batch_wait)
        while len(batch) < size:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, sessions: sessionmaker[Session], batch: list[_Received]) -> None:
        messages = [(m.topic, m.payload) for m in batch]
        delay = 0.5
        while True:
            try:
                result = self._commit(sessions, messages)
                break
            except (OperationalError, InterfaceError) as exc:
                # The database is away or locked: keep the batch, unacknowledged, and try again.
                _log.error("the database refused a batch; retrying", error=str(exc.orig), retry_in=delay)
                if self._stop.wait(delay):
                    return  # unacknowledged: the broker delivers the batch again to the next session
                delay = min(delay * 2, 30.0)
            except Exception as exc:
                _log.error("a batch could not be stored; storing its messages one by one", error=repr(exc))
                result = self._one_by_one(sessions, messages)
                break
        self._acknowledge(batch)
        self._record(result)

    def _commit(self, sessions: sessionmaker[Session], messages: list[tuple[str, bytes]]) -> BatchResult:
        with sessions() as session:
            result = store_messages(
                session=session, messages=messages, devices=self.devices, root=self.options.root
            )
            session.commit()
        return result

    def _one_by_one(self, sessions: sessionmaker[Session], messages: list[tuple[str, bytes]]) -> BatchResult:
        total = BatchResult(messages=len(messages))
        for topic, body in messages:
            try:
                part = self._commit(sessions, [(topic, body)])
            except Exception as exc:
                part = BatchResult(
                    messages=1,
                    drops=[Drop(redact_topic(topic, self.options.root), f"could not be stored: {exc!r}")],
                )
            total.readings += part.readings
            total.stored += part.stored
            total.duplicates += part.duplicates
            total.drops.extend(part.drops)
        return total

    def _acknowledge(self, batch: list[_Received]) -> None:
        with self._ack_lock:
            current = self._generation
            for message in batch:
                if message.qos > 0 and message.generation == current:
                    self._client.ack(message.mid, message.qos)

    def _record(self, result: BatchResult) -> None:
        stats = self.stats
        stats.batches += 1
        stats.messages += result.messages
        stats.stored += result.stored
        stats.duplicates += result.duplicates
        stats.dropped += len(result.drops)
        stats.recent_drops.extend(result.drops)
        for each in result.drops[:_LOGGED_DROPS_PER_BATCH]:
            _log.warning("mqtt reading dropped", topic=each.topic, reason=each.reason)
        if len(result.drops) > _LOGGED_DROPS_PER_BATCH:
            _log.warning("more mqtt readings dropped", more=len(result.drops) - _LOGGED_DROPS_PER_BATCH)
        _log.debug(
            "mqtt batch stored", messages=result.messages, stored=result.stored, duplicates=result.duplicates
        )


def _counts(stats: BridgeStats) -> dict[str, int]:
    return {
        "messages": stats.messages,
        "stored": stats.stored,
        "duplicates": stats.duplicates,
        "dropped": stats.dropped,
        "batches": stats.batches,
    }


def _default_sessions() -> sessionmaker[Session]:
    from zhishe.core.db import get_sessionmaker

    return get_sessionmaker(get_settings().database_url)


def forget_session(options: BridgeOptions, *, timeout: float = 10.0) -> None:
    """End the bridge's persistent session at the broker (messages queued for it are discarded).

    For retiring a bridge id; a running bridge with the same id is disconnected by the broker.
    """
    client = _client(options)
    done = threading.Event()
    failure: list[str] = []

    def connected(c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            failure.append(str(reason))
        c.disconnect()

    def disconnected(*_args: Any) -> None:
        done.set()

    client.on_connect = connected
    client.on_disconnect = disconnected
    properties = _connect_properties(0)
    client.connect(options.broker.host, options.broker.port, clean_start=True, properties=properties)
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise TimeoutError(
                f"the broker at {options.broker.host}:{options.broker.port} did not answer in {timeout} s"
            )
    finally:
        client.loop_stop()
    if failure:
        raise Invalid(f"the broker refused to end the session {options.client_id!r}: {failure[0]}")
