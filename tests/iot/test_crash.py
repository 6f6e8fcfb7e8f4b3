"""Crash tests: the bridge and the server are real processes, killed with SIGKILL in the middle of a
stream of readings and started again; every reading whose sender got an acknowledgement is then
stored exactly once.

For MQTT the acknowledgement is the broker's PUBACK to the publisher, and the end-to-end guarantee
comes from the bridge's persistent session: what the bridge had not acknowledged (its own PUBACK
comes only after the commit) is delivered again to the restarted bridge. The broker runs the
generated configuration, as a deployment does; the system broker's default of 1000 queued
messages per session would drop readings while the bridge is down.

For HTTP the acknowledgement is a 2xx answer; a batch that got none is sent again, which is safe
because repeats are idempotent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from iot.iot_world import IotWorld
from iot.test_broker_config import free_port, require_mosquitto, throwaway_broker, wait_for
from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.iot.models import Reading

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DEVICES = ("H1-electricity", "H2-electricity", "H3-electricity")


def _stored(stream_ids: list[int]) -> dict[int, dict[datetime, float]]:
    with get_sessionmaker(get_settings().database_url)() as session:
        rows = session.execute(
            select(Reading.datastream_id, Reading.time, Reading.value).where(
                Reading.datastream_id.in_(stream_ids)
            )
        )
        found: dict[int, dict[datetime, float]] = {i: {} for i in stream_ids}
        for stream, moment, value in rows:
            found[stream][moment] = value
        return found


def _count(stream_ids: list[int]) -> int:
    with get_sessionmaker(get_settings().database_url)() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Reading).where(Reading.datastream_id.in_(stream_ids))
            )
            or 0
        )


@dataclass
class Process:
    """A ``zhishe`` command running as a child process, its output collected line by line."""

    args: list[str]
    env: dict[str, str]
    cwd: Path
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zhishe.cli", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stream = self.process.stdout
        assert stream is not None
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()
        return self

    def wait_for_line(self, words: str, timeout: float = 20) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"zhishe {' '.join(self.args)} exited: {''.join(self.lines)[-3000:]}")
            return any(words in line for line in self.lines)

        wait_for(seen, timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


@contextmanager
def zhishe(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[Process]:
    process = Process(args, env, cwd).start()
    try:
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(10)


def _env(settings_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **settings_env, "ZHISHE_LOG_LEVEL": "INFO", **extra}


# --- MQTT ---------------------------------------------------------------------------------------


@dataclass
class Publisher:
    """One device publishing SensorThings observations with QoS 1, remembering the broker's answers."""

    port: int
    token: str
    stream_id: int
    base: datetime
    sent: list[tuple[datetime, float, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"crash-pub-{uuid.uuid4().hex[:10]}")
        self.client.username_pw_set(self.token)
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def publish(self, count: int) -> None:
        topic = f"devices/{self.token}/v1.1/Datastreams({self.stream_id})/Observations"
        for _ in range(count):
            n = len(self.sent)
            moment = self.base + timedelta(milliseconds=n)
            value = float(n) + 0.25
            body = orjson.dumps({"phenomenonTime": moment.isoformat(), "result": value})
            self.sent.append((moment, value, self.client.publish(topic, body, qos=1)))

    def acknowledged(self) -> dict[datetime, float]:
        for _, _, info in self.sent:
            info.wait_for_publish(10)
        return {moment: value for moment, value, info in self.sent if info.is_published()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_reading_the_broker_acknowledged_is_stored_once_across_a_bridge_sigkill(
    iw: IotWorld, tmp_path: Path, settings_env: dict[str, str]
) -> None:
    require_mosquitto()
    base = clock.now().replace(microsecond=0) - timedelta(hours=1)
    streams = [iw.stream(code, "power").id for code in DEVICES]
    bridge_args = [
        "iot",
        "mqtt-bridge",
        "--client-id",
        f"zhishe-crash-{uuid.uuid4().hex[:10]}",
        "--batch-ms",
        "100",
    ]
    wrong = "zhishe_dev_" + "q" * 32
    with throwaway_broker(tmp_path / "broker") as broker:
        env = _env(settings_env, ZHISHE_MQTT_URL=broker.bridge_url)
        publishers = [
            Publisher(broker.port, iw.tokens[c], s, base) for c, s in zip(DEVICES, streams, strict=True)
        ]
        try:
            with zhishe(bridge_args, env, tmp_path) as first:
                first.wait_for_line("bridge subscribed")
                stranger = Publisher(broker.port, wrong, streams[0], base)
                stranger.publish(1)
                stranger.acknowledged()
                stranger.close()
                first.wait_for_line("mqtt reading dropped")
                for each in publishers:
                    each.publish(300)
                wait_for(lambda: _count(streams) >= 100)
                first.kill()  # in the middle: hundreds published, some stored, a batch likely in hand
                stored_at_kill = _count(streams)
            for each in publishers:
                each.publish(300)  # while no bridge runs: the broker keeps them for the session
            with zhishe(bridge_args, env, tmp_path) as second:
                second.wait_for_line("bridge subscribed")
                for each in publishers:
                    each.publish(300)
                acknowledged = {s: p.acknowledged() for s, p in zip(streams, publishers, strict=True)}
                total = sum(len(a) for a in acknowledged.values())
                wait_for(lambda: _count(streams) >= total, timeout=30)
                assert second.terminate() == 0
        finally:
            for each in publishers:
                each.close()
    stored = _stored(streams)
    for stream in streams:
        assert stored[stream] == acknowledged[stream]  # none lost, no other value, each (stream, time) once
    assert total == 2700 and stored_at_kill < total
    logs = "".join(first.lines + second.lines)
    assert "mqtt reading dropped" in logs and "zhishe_d…" in logs
    assert wrong not in logs and not any(iw.tokens[c] in logs for c in DEVICES)


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Sender:
    """One device sending batches over HTTP from its own thread, each until it gets a 2xx."""

    token: str
    stream_id: int
    base: datetime
    batches: int
    server_up: threading.Event
    url: str
    answered: list[list[dict[str, Any]]] = field(default_factory=list)
    retries: int = 0
    duplicates: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=10) as http:
                for number in range(self.batches):
                    batch = [
                        {
                            "datastream": self.stream_id,
                            "time": (self.base + timedelta(seconds=number * 25 + i)).isoformat(),
                            "value": number * 25 + i + 0.5,
                        }
                        for i in range(25)
                    ]
                    self._send(http, batch)
        except BaseException as exc:
            self.error = exc

    def _send(self, http: httpx.Client, batch: list[dict[str, Any]]) -> None:
        for _attempt in range(50):
            self.server_up.wait(30)
            try:
                answer = http.post(
                    f"{self.url}/api/v1/iot/readings",
                    content=orjson.dumps(batch),
                    headers={"Authorization": f"Bearer {self.token}"},
                )
            except httpx.TransportError:
                self.retries += 1
                continue
            if 200 <= answer.status_code < 300:
                self.answered.append(batch)
                self.duplicates += answer.json()["duplicates"]
                return
            if answer.status_code < 500:
                raise AssertionError(f"batch refused: {answer.status_code} {answer.text}")
            self.retries += 1
        raise AssertionError("a batch got no answer in 50 attempts")


def test_every_reading_of_an_answered_http_batch_is_stored_once_across_a_server_sigkill(
    iw: IotWorld, tmp_path: Path, settings_env: dict[str, str]
) -> None:
    base = clock.now().replace(microsecond=0) - timedelta(hours=2)
    streams = [iw.stream(code, "power").id for code in DEVICES]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(settings_env)
    server_args = ["serve", "--port", str(port)]
    up = threading.Event()
    senders = [Sender(iw.tokens[c], s, base, 40, up, url) for c, s in zip(DEVICES, streams, strict=True)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in senders]

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    with zhishe(server_args, env, tmp_path) as first:
        wait_for(healthy, timeout=30, every=0.05)
        up.set()
        for thread in threads:
            thread.start()
        wait_for(lambda: all(len(s.answered) >= 5 for s in senders), timeout=30)
        up.clear()
        first.kill()  # requests in flight get no answer; their senders send them again
    answered_before_restart = sum(len(s.answered) for s in senders)
    with zhishe(server_args, env, tmp_path) as second:
        wait_for(healthy, timeout=30, every=0.05)
        up.set()
        for thread in threads:
            thread.join(60)
        second.terminate()
    assert [s.error for s in senders] == [None, None, None]
    stored = _stored(streams)
    for sender in senders:
        expected = {datetime.fromisoformat(r["time"]): r["value"] for b in sender.answered for r in b}
        assert len(sender.answered) == 40 and len(expected) == 1000
        assert stored[sender.stream_id] == expected
    assert answered_before_restart < 120
