"""The household simulator: realistic readings of electricity and water meters, a kitchen motion
sensor and a front-door sensor per household, with faults injected on purpose.

- ``generate`` is pure (``zhishe.iot.loadshape``, re-exported here): it yields the readings of a
  time range in time order, the same for the same arguments. Electricity follows the weekly shape
  of real demand data, scaled per household, with autocorrelated multiplicative noise; power is
  the mean over the interval before each reading, and the energy counter rises by exactly that
  power times the interval. Water flow comes from events (flushes, washing, showers, cooking,
  dishes, laundry), zero most of the night; flow is likewise the mean over the interval and the
  volume counter its integral. Motion and door events follow the household's daily routine.
- ``plan_faults`` draws faults from the seed (a leak, a counter reset, an inactive resident); a run
  reports the faults it injected, so that their detection can be checked.
- ``provision`` creates the households and their devices through ``zhishe.iot.service``;
  ``save_roster``/``load_roster`` keep the tokens for later runs.
- ``run`` sends live to a running server (HTTP batches with device tokens) or to the broker (MQTT,
  SensorThings topics, QoS 1), at simulated time "now" or replaying a past span faster.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.iot import service as iot
from zhishe.iot.loadshape import METER_STREAMS, Fault, SimulatedReading, generate, plan_faults

__all__ = [
    "DEVICES",
    "Fault",
    "RunResult",
    "SimDevice",
    "SimHousehold",
    "SimulatedReading",
    "generate",
    "load_roster",
    "plan_faults",
    "provision",
    "run",
    "save_roster",
    "step_for",
]

#: The devices of a simulated household, with the room each is in.
DEVICES = {
    "electricity_meter": "",
    "water_meter": "kitchen",
    "motion_sensor": "kitchen",
    "door_sensor": "front door",
}
#: Where devices publish by default: the device listener of ``zhishe iot mosquitto-config``.
_DEVICE_BROKER = "mqtt://127.0.0.1:1883"


# --- provisioning and rosters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimDevice:
    """A provisioned device of a simulated household: its token and its datastreams by key."""

    kind: str
    device_id: int
    code: str
    token: str
    streams: dict[str, int]


@dataclass(frozen=True, slots=True)
class SimHousehold:
    """A provisioned household: number ``index`` of the simulation, its site and its devices by kind."""

    index: int
    site_id: int
    code: str
    devices: dict[str, SimDevice]


def provision(
    *,
    session: Session,
    actor: Actor,
    households: int,
    org_id: int | None = None,
    seed: int = 0,
    parent_id: int | None = None,
) -> list[SimHousehold]:
    """Create ``households`` household sites (codes ``sim<seed>-00001``…) with an electricity meter,
    a water meter, a kitchen motion sensor and a front-door sensor each, through the IoT service
    (authorised and audited as ``actor``); the caller commits. Returns the tokens, shown once."""
    if households < 1:
        raise Invalid("provision at least one household", detail={"field": "households"})
    made: list[SimHousehold] = []
    for index in range(households):
        code = f"sim{seed}-{index + 1:05d}"
        site = iot.create_site(
            session=session,
            actor=actor,
            code=code,
            kind="household",
            name=f"模拟住户 {index + 1}",
            org_id=org_id,
            parent_id=parent_id,
            properties={"simulated": True, "seed": seed, "index": index},
        )
        devices: dict[str, SimDevice] = {}
        for kind, room in DEVICES.items():
            new = iot.create_device(
                session=session,
                actor=actor,
                site_id=site.id,
                code=f"{code}-{kind.split('_')[0]}",
                kind=kind,
                room=room,
            )
            streams = {s.key: s.id for s in iot.datastreams_of(session=session, device_id=new.device.id)}
            devices[kind] = SimDevice(kind, new.device.id, new.device.code, new.token, streams)
        made.append(SimHousehold(index, site.id, code, devices))
    return made


def save_roster(path: Path, households: Sequence[SimHousehold]) -> None:
    """Write the households and their device tokens to ``path`` (readable by the owner only)."""
    data = orjson.dumps([asdict(h) for h in households], option=orjson.OPT_INDENT_2)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when the file was already there
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def load_roster(path: Path) -> list[SimHousehold]:
    """The households written by ``save_roster``."""
    try:
        data = orjson.loads(path.read_bytes())
        return [
            SimHousehold(
                int(h["index"]),
                int(h["site_id"]),
                str(h["code"]),
                {kind: SimDevice(**d) for kind, d in h["devices"].items()},
            )
            for h in data
        ]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise Invalid(f"{path} is not a roster of simulated households: {exc}") from exc


# --- live sending ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What a live run sent and what the receiver said."""

    via: str
    start: datetime
    end: datetime
    step: int
    faults: list[Fault]
    sent: int = 0
    #: HTTP: stored by the server; MQTT: acknowledged by the broker (PUBACK).
    acknowledged: int = 0
    duplicates: int = 0
    rejected: int = 0
    requests: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "via": self.via,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "step_seconds": self.step,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "requests": self.requests,
            "failed": self.failed,
            "errors": self.errors[:20],
            "seconds": round(self.seconds, 3),
            "rate": round(self.sent / self.seconds, 1) if self.seconds else None,
            "faults": [f.as_dict() for f in self.faults],
        }


def step_for(*, households: int, rate: float, speed: float = 1.0) -> int:
    """The meter step (simulated seconds) at which ``households`` send ``rate`` readings per second.

    Four meter readings per household per step make nearly all the traffic; events add about one
    reading per household per ten minutes.
    """
    if rate <= 0:
        raise Invalid(f"the rate must be positive, not {rate}", detail={"field": "rate"})
    step = round(METER_STREAMS * households * speed / rate)
    if step < 1:
        raise Invalid(
            f"{households} households send at most {METER_STREAMS * households * speed:g} readings per "
            f"second at speed {speed:g}; simulate more households for a rate of {rate:g}",
            detail={"field": "rate"},
        )
    return min(step, 3600)


class _Http:
    """Per-device batches to ``POST /api/v1/iot/readings``, sent when full or when they have waited."""

    def __init__(
        self, client: httpx.Client, result: RunResult, *, batch: int, linger: float, threads: int
    ) -> None:
        self.client, self.result, self.batch, self.linger = client, result, batch, linger
        self.buffers: dict[str, tuple[float, str, list[dict[str, Any]]]] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.slots = threading.BoundedSemaphore(max(threads * 2, 1))

    def add(self, device: SimDevice, stream: int, moment: datetime, value: float) -> None:
        _, _, rows = self.buffers.setdefault(device.code, (time.monotonic(), device.token, []))
        rows.append({"datastream": stream, "time": moment.isoformat(), "value": value})
        if len(rows) >= self.batch:
            self._send(self.buffers.pop(device.code)[1:])

    def tick(self) -> None:
        limit = time.monotonic() - self.linger
        for code in [c for c, (since, _, _) in self.buffers.items() if since <= limit]:
            self._send(self.buffers.pop(code)[1:])

    def _send(self, item: tuple[str, list[dict[str, Any]]]) -> None:
        if self.pool is None:
            self._post(*item)
            return
        self.slots.acquire()
        future = self.pool.submit(self._post, *item)
        future.add_done_callback(self._done)

    def _done(self, _: Future[None]) -> None:
        self.slots.release()

    def _post(self, token: str, rows: list[dict[str, Any]]) -> None:
        try:
            answer = self.client.post(
                "/api/v1/iot/readings",
                content=orjson.dumps(rows),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            body = answer.json() if answer.status_code == 200 else None
            problem = None if body is not None else f"HTTP {answer.status_code}: {answer.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            body, problem = None, f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.result.requests += 1
            self.result.sent += len(rows)
            if body is None:
                self.result.failed += len(rows)
                if len(self.result.errors) < 20:
                    self.result.errors.append(problem or "no answer")
                return
            self.result.acknowledged += int(body["stored"])
            self.result.duplicates += int(body["duplicates"])
            self.result.rejected += len(body["rejected"])
            self.result.errors += [
                r["reason"] for r in body["rejected"][: max(0, 20 - len(self.result.errors))]
            ]

    def close(self) -> None:
        for code in list(self.buffers):
            self._send(self.buffers.pop(code)[1:])
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class _Mqtt:
    """Each device on a connection of its own, logged in with its token as the username (as
    ThingsBoard devices do), publishing one SensorThings Observation per message at QoS 1 to
    ``<prefix>v1.1/Datastreams(<id>)/Observations``. The prefix defaults to ``devices/{token}/``,
    where the generated Mosquitto configuration confines a device; with EMQX's mount point it is
    empty. A reading counts as acknowledged when its PUBACK arrives."""

    def __init__(self, url: str, result: RunResult, *, prefix: str, inflight: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise Invalid(
                f"the broker URL must start with mqtt:// or mqtts://, not {url!r}", detail={"field": "url"}
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.tls = ssl.create_default_context() if parts.scheme == "mqtts" else None
        try:
            socket.create_connection((self.host, self.port), timeout=5).close()
        except OSError as exc:
            raise Invalid(
                f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}", detail={"field": "url"}
            ) from exc
        self.result, self.prefix = result, prefix
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(inflight)
        self.pending: set[Future[None]] = set()
        self.clients: dict[str, asyncio.Task[Any]] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zhishe-sim-mqtt", daemon=True)
        self.thread.start()

    async def _connect(self, device: SimDevice) -> Any:
        import aiomqtt

        client = aiomqtt.Client(
            self.host,
            self.port,
            username=device.token,
            identifier=f"zhishe-sim-{device.code}-{secrets.token_hex(3)}",
            tls_context=self.tls,
            max_inflight_messages=100,
        )
        await client.__aenter__()
        return client

    async def _publish(self, device: SimDevice, topic: str, payload: bytes) -> None:
        task = self.clients.get(device.code)
        if task is None:
            task = self.clients[device.code] = asyncio.ensure_future(self._connect(device))
        client = await task
        await client.publish(topic, payload, qos=1, timeout=60)

    def add(self, device: SimDevice, stream: int, moment: datetime, value: float) -> None:
        topic = f"{self.prefix.format(token=device.token)}v1.1/Datastreams({stream})/Observations"
        payload = orjson.dumps({"phenomenonTime": moment.isoformat(), "result": value})
        self.slots.acquire()
        future = asyncio.run_coroutine_threadsafe(self._publish(device, topic, payload), self.loop)
        with self.lock:
            self.result.sent += 1
            self.result.requests += 1
            self.pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self.slots.release()
        problem = future.exception()
        with self.lock:
            self.pending.discard(future)
            if problem is None:
                self.result.acknowledged += 1
            else:
                self.result.failed += 1
                if len(self.result.errors) < 20:
                    self.result.errors.append(f"MQTT: {type(problem).__name__}: {problem}")

    def tick(self) -> None:
        return

    def close(self) -> None:
        with self.lock:
            pending = list(self.pending)
        wait(pending, timeout=90)

        async def disconnect() -> None:
            for task in self.clients.values():
                if task.done() and task.exception() is None:
                    await task.result().__aexit__(None, None, None)

        try:
            asyncio.run_coroutine_threadsafe(disconnect(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def run(
    *,
    households: Sequence[SimHousehold],
    rate: float,
    via: str = "http",
    url: str | None = None,
    duration: float | None = None,
    seed: int = 0,
    faults: Sequence[Fault] | dict[str, int] = (),
    start: datetime | None = None,
    speed: float = 1.0,
    step: int | None = None,
    batch: int = 1000,
    linger: float = 1.0,
    threads: int = 4,
    client: httpx.Client | None = None,
    mqtt_prefix: str = "devices/{token}/",
    stop: threading.Event | None = None,
    progress: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Send the households' readings live and return what was sent and acknowledged.

    Simulated time starts at ``start`` (default: now) and runs ``speed`` times as fast as the wall
    clock (``math.inf``: without waiting) for ``duration`` simulated seconds (default: until ``stop``
    is set). The meter step follows from ``rate`` (``step_for``) unless given. ``faults`` is either
    a list of faults or counts ``{"leaks": n, "resets": n, "inactive": n}`` drawn from the seed.
    Over HTTP (``url``: the server, default ``http://127.0.0.1:8000``, or ``client``) each device
    sends its own batches of up to ``batch`` readings with its token, when full or ``linger``
    seconds after their first reading, on ``threads`` connections. Over MQTT (``url``: the device
    listener of the broker, default ``mqtt://127.0.0.1:1883``) each device connects with its token
    as the username and each reading is one message under ``mqtt_prefix`` (see ``_Mqtt``), with
    up to ``batch`` messages awaiting their PUBACK. The devices must exist (``provision``).
    """
    if via not in ("http", "mqtt"):
        raise Invalid(f"send via http or mqtt, not {via!r}", detail={"field": "via"})
    if not households:
        raise Invalid("there are no provisioned households to simulate", detail={"field": "households"})
    if not 1 <= batch <= get_settings().iot_max_batch:
        raise Invalid(f"a batch holds 1 to {get_settings().iot_max_batch} readings, not {batch}")
    if not speed > 0:
        raise Invalid(f"the speed must be positive, not {speed}", detail={"field": "speed"})
    now = clock.now()
    begin = start or now
    if begin.tzinfo is None:
        raise Invalid("the start must be timezone-aware", detail={"field": "start"})
    if duration is not None and duration <= 0:
        raise Invalid(f"the duration must be positive, not {duration}", detail={"field": "duration"})
    finish = begin + timedelta(seconds=duration) if duration is not None else begin + timedelta(days=3650)
    if speed > 1 and (
        duration is None or finish > now + timedelta(seconds=get_settings().iot_future_seconds)
    ):
        raise Invalid(
            "a replay faster than real time needs a past start and a duration that ends by now",
            detail={"field": "speed"},
        )
    if step is None:
        if math.isinf(speed):
            raise Invalid("without waiting (infinite speed) give the meter step", detail={"field": "step"})
        step = step_for(households=len(households), rate=rate, speed=speed)
    if isinstance(faults, dict):
        faults = plan_faults(
            households=len(households),
            start=begin,
            end=min(finish, begin + timedelta(days=7)),
            seed=seed,
            leaks=int(faults.get("leaks", 0)),
            resets=int(faults.get("resets", 0)),
            inactive=int(faults.get("inactive", 0)),
        )
    result = RunResult(via=via, start=begin, end=finish, step=step, faults=list(faults))
    by_index = {h.index: h for h in households}
    if sorted(by_index) != list(range(len(households))):
        raise Invalid("the households must be numbered 0 to N-1, as provision numbers them")
    for household in households:
        missing = [kind for kind in DEVICES if kind not in household.devices]
        if missing:
            raise Invalid(f"household {household.code} has no {', '.join(missing)}: provision it again")
    sender: _Http | _Mqtt
    own_client = None
    if via == "http":
        if client is None:
            own_client = client = httpx.Client(
                base_url=url or "http://127.0.0.1:8000",
                timeout=60.0,
                limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
            )
        sender = _Http(client, result, batch=batch, linger=linger, threads=threads)
    else:
        sender = _Mqtt(url or _DEVICE_BROKER, result, prefix=mqtt_prefix, inflight=max(batch, 1))
    waiter = stop or threading.Event()
    wall = time.monotonic()
    last_beat = wall

    def beat() -> None:  # send what has waited long enough, and say how far the run is
        nonlocal last_beat
        last_beat = time.monotonic()
        sender.tick()
        if progress is not None:
            result.seconds = last_beat - wall
            progress(result)

    try:
        for reading in generate(
            households=len(households), start=begin, end=finish, seed=seed, step=step, faults=result.faults
        ):
            if not math.isinf(speed):
                due = wall + (reading.time - begin).total_seconds() / speed
                while (left := due - time.monotonic()) > 0 and not waiter.is_set():
                    waiter.wait(min(left, 0.2))
                    beat()
            if waiter.is_set():
                break
            device = by_index[reading.household].devices[reading.device]
            sender.add(device, device.streams[reading.key], reading.time, reading.value)
            if time.monotonic() - last_beat > 0.2:
                beat()
        if not math.isinf(speed) and duration is not None:  # a timed run lasts its whole span
            end_at = wall + duration / speed
            while (left := end_at - time.monotonic()) > 0 and not waiter.is_set():
                waiter.wait(min(left, 0.2))
                beat()
    finally:
        sender.close()
        if own_client is not None:
            own_client.close()
        result.seconds = time.monotonic() - wall
    return result
