"""The generated Mosquitto configuration, checked on real brokers started from it: the bridge logs
in with the password hashed here, each device publishes only under its own username, anonymous
clients get nothing, a reload applies a regenerated file, and Mosquitto's mount point is a fixed
string (the reason devices publish under ``devices/<token>/`` themselves).

Also the home of the helpers the other MQTT tests share: a throwaway broker and test clients.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from helpers import require_service
from zhishe.cli import app
from zhishe.core.errors import Invalid
from zhishe.iot.broker import check_mosquitto_hash, mosquitto_hash, write_mosquitto_config

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
TELEMETRY = "v1/devices/me/telemetry"


# --- helpers shared by the MQTT tests ----------------------------------------------------------


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_mosquitto() -> None:
    """Skip (fail under CI=true) unless the broker at 127.0.0.1:1883 and the mosquitto binary are there."""
    require_service("Mosquitto", _listening(1883), "no MQTT broker listening at 127.0.0.1:1883")
    require_service(
        "Mosquitto", Path(MOSQUITTO).exists(), f"no mosquitto binary at {MOSQUITTO} for throwaway brokers"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Any, timeout: float = 15.0, every: float = 0.02) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(every)


@dataclass
class ThrowawayBroker:
    """A mosquitto started from a generated configuration, on free ports, with its own data."""

    directory: Path
    port: int
    bridge_port: int
    bridge_password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def bridge_url(self) -> str:
        return f"mqtt://zhishe-bridge:{self.bridge_password}@127.0.0.1:{self.bridge_port}"

    def start(self) -> None:
        conf = self.directory / "mosquitto.conf"
        if os.geteuid() == 0 and "\nuser root\n" not in conf.read_text():
            # Started as root, mosquitto would drop to the mosquitto user, which cannot enter the
            # test's private temporary directory; a deployment chowns the files to that user instead.
            with conf.open("a") as handle:
                handle.write("user root\n")
        log = self.directory / "mosquitto.log"
        with log.open("ab") as handle:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=handle, stderr=handle)

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"mosquitto exited: {log.read_text()}")
            return _listening(self.port) and _listening(self.bridge_port)

        wait_for(up, timeout=10)

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def throwaway_broker(
    directory: Path, *, root: str = "", password: str = "bridge-password-1"
) -> Iterator[ThrowawayBroker]:
    """A real broker running the generated configuration; stopped (and its data gone) afterwards."""
    broker = ThrowawayBroker(directory, free_port(), free_port(), password)
    write_mosquitto_config(
        out=directory,
        bridge_password=password,
        port=broker.port,
        bind="127.0.0.1",
        bridge_port=broker.bridge_port,
        root=root,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class MqttProbe:
    """A paho client that records what it receives and the broker's answer to each publish."""

    client: paho.Client
    connack: list[Any] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    pubacks: dict[int, Any] = field(default_factory=dict)
    subacks: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes, *, wait: bool = True) -> Any:
        """Publish with QoS 1; with ``wait``, the PUBACK's reason (MQTT 5) or True (3.1.1)."""
        info = self.client.publish(topic, payload, qos=1)
        if not wait:
            return info
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for {topic}"
        with self.lock:
            return self.pubacks.get(info.mid, True)

    def subscribe(self, topic: str) -> Any:
        self.client.subscribe(topic, qos=1)
        return wait_for(lambda: self.subacks[-1] if self.subacks else None, timeout=20)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def mqtt_client(
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    v5: bool = True,
    client_id: str = "",
) -> Iterator[MqttProbe]:
    """A connected test client (or one whose refusal is in ``connack``)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5 if v5 else paho.MQTTv311
    )
    client.max_inflight_messages_set(1000)
    if username is not None:
        client.username_pw_set(username, password)
    found = MqttProbe(client)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        found.connack.append(reason)

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with found.lock:
            found.pubacks[mid] = reason

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        found.received.append((message.topic, message.payload))

    def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        found.subacks.append(reasons)

    client.on_connect, client.on_publish, client.on_message, client.on_subscribe = (
        on_connect,
        on_publish,
        on_message,
        on_subscribe,
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(lambda: found.connack, timeout=20)
    try:
        yield found
    finally:
        found.close()


# --- the password hash -------------------------------------------------------------------------


def test_the_hash_matches_mosquitto_passwd_both_ways(tmp_path: Path) -> None:
    require_service("mosquitto_passwd", Path(MOSQUITTO_PASSWD).exists(), f"no {MOSQUITTO_PASSWD}")
    passwd = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(passwd), "bob", "s3cret pw"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$101$")
    assert check_mosquitto_hash("s3cret pw", theirs)
    assert not check_mosquitto_hash("s3cret pw ", theirs)
    import base64

    salt = base64.b64decode(theirs.split("$")[3])
    assert mosquitto_hash("s3cret pw", salt=salt) == theirs
    mine = mosquitto_hash("s3cret pw")
    assert mine != mosquitto_hash("s3cret pw")  # a fresh salt each time
    assert check_mosquitto_hash("s3cret pw", mine) and not check_mosquitto_hash("other", mine)


def test_an_empty_password_or_a_broken_hash_is_refused() -> None:
    with pytest.raises(Invalid, match="empty"):
        mosquitto_hash("")
    assert not check_mosquitto_hash("x", "$6$abc$def")
    assert not check_mosquitto_hash("x", "$7$101$not base64!$zz")


# --- the generated configuration on a real broker -------------------------------------------


def test_the_bridge_logs_in_with_the_generated_password_and_no_other(tmp_path: Path) -> None:
    require_mosquitto()
    with throwaway_broker(tmp_path) as broker:
        with mqtt_client(broker.bridge_port, username="zhishe-bridge", password="bridge-password-1") as good:
            assert not good.connack[0].is_failure
        with mqtt_client(broker.bridge_port, username="zhishe-bridge", password="guess") as bad:
            assert bad.connack[0].is_failure and "authori" in str(bad.connack[0]).lower()
        with mqtt_client(broker.bridge_port) as anonymous:
            assert anonymous.connack[0].is_failure


def test_a_device_publishes_only_under_its_own_username(tmp_path: Path) -> None:
    require_mosquitto()
    with (
        throwaway_broker(tmp_path) as broker,
        mqtt_client(broker.bridge_port, username="zhishe-bridge", password="bridge-password-1") as reader,
    ):
        reader.subscribe("devices/#")
        reader.subscribe("v1.1/#")
        with mqtt_client(broker.port, username="zhishe_dev_A") as device:
            assert not device.connack[0].is_failure  # the broker does not know tokens: the bridge checks them
            own = device.publish(f"devices/zhishe_dev_A/{TELEMETRY}", b'{"power": 1}')
            spoof = device.publish(f"devices/zhishe_dev_B/{TELEMETRY}", b'{"power": 2}')
            plain = device.publish("v1.1/Datastreams(5)/Observations", b'{"result": 3}')
            stream = device.publish("devices/zhishe_dev_A/v1.1/Datastreams(5)/Observations", b'{"result": 4}')
        with mqtt_client(broker.port) as anonymous:
            anonymous_publish = anonymous.publish(f"devices/%u/{TELEMETRY}", b'{"power": 5}')
        wait_for(lambda: len(reader.received) >= 2, timeout=20)
        # a marker published after everything else: once it arrives, nothing else is on its way
        with mqtt_client(broker.port, username="zhishe_dev_A") as device:
            device.publish(f"devices/zhishe_dev_A/{TELEMETRY}", b"marker")
        wait_for(lambda: any(p == b"marker" for _, p in reader.received), timeout=20)
    assert not own.is_failure and not stream.is_failure
    assert spoof.is_failure and plain.is_failure and anonymous_publish.is_failure
    assert "authori" in str(spoof).lower()
    assert reader.received == [
        (f"devices/zhishe_dev_A/{TELEMETRY}", b'{"power": 1}'),
        ("devices/zhishe_dev_A/v1.1/Datastreams(5)/Observations", b'{"result": 4}'),
        (f"devices/zhishe_dev_A/{TELEMETRY}", b"marker"),
    ]


def test_devices_and_anonymous_clients_cannot_read_device_topics(tmp_path: Path) -> None:
    require_mosquitto()
    with (
        throwaway_broker(tmp_path) as broker,
        mqtt_client(broker.port, username="zhishe_dev_A") as device,
        mqtt_client(broker.port) as anonymous,
    ):
        device.subscribe("devices/#")
        anonymous.subscribe("#")
        with mqtt_client(broker.port, username="zhishe_dev_B") as other:
            other.publish(f"devices/zhishe_dev_B/{TELEMETRY}", b'{"power": 1}')
        with mqtt_client(
            broker.bridge_port, username="zhishe-bridge", password="bridge-password-1"
        ) as reader:
            reader.subscribe("devices/#")
            with mqtt_client(broker.port, username="zhishe_dev_B") as other:
                other.publish(f"devices/zhishe_dev_B/{TELEMETRY}", b"marker")
            wait_for(lambda: reader.received, timeout=20)
    # Mosquitto grants the subscriptions and checks each delivery: the bridge user got the marker;
    # the device and the anonymous client, subscribed through both publishes, got nothing.
    assert [p for _, p in reader.received] == [b"marker"]
    assert device.received == [] and anonymous.received == []


def test_mosquitto_does_not_fill_in_the_username_of_a_mount_point(tmp_path: Path) -> None:
    """Why devices publish under devices/<token>/ themselves: Mosquitto 2.0 has no per-client mount."""
    require_mosquitto()
    port, reader_port = free_port(), free_port()
    conf = tmp_path / "mount.conf"
    conf.write_text(
        "per_listener_settings true\n"
        f"listener {port} 127.0.0.1\nmount_point devices/%u/\nallow_anonymous true\n"
        f"listener {reader_port} 127.0.0.1\nallow_anonymous true\n"
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _listening(port) and _listening(reader_port), timeout=10)
        with mqtt_client(reader_port) as reader:
            reader.subscribe("#")
            with mqtt_client(port, username="alice") as device:
                device.publish(TELEMETRY, b"hello")
            wait_for(lambda: reader.received, timeout=20)
    finally:
        process.terminate()
        process.wait(10)
    assert reader.received == [(f"devices/%u/{TELEMETRY}", b"hello")]


def test_a_reload_applies_a_regenerated_password(tmp_path: Path) -> None:
    require_mosquitto()
    with throwaway_broker(tmp_path, password="first-password") as broker:
        write_mosquitto_config(
            out=tmp_path,
            bridge_password="second-password",
            port=broker.port,
            bind="127.0.0.1",
            bridge_port=broker.bridge_port,
        )
        broker.reload()

        def second_works() -> bool:
            with mqtt_client(
                broker.bridge_port, username="zhishe-bridge", password="second-password"
            ) as client:
                return not client.connack[0].is_failure

        wait_for(second_works, timeout=10, every=0.1)
        with mqtt_client(broker.bridge_port, username="zhishe-bridge", password="first-password") as old:
            assert old.connack[0].is_failure


def test_the_files_with_secrets_are_private_and_the_acl_names_no_token(tmp_path: Path) -> None:
    files = write_mosquitto_config(out=tmp_path / "conf", bridge_password="pw-1", root="site-a/")
    assert stat.S_IMODE(files.password_file.stat().st_mode) == 0o600
    assert files.password_file.read_text().startswith("zhishe-bridge:$7$101$")
    assert "pattern write site-a/devices/%u/v1/devices/me/telemetry" in files.device_acl.read_text()
    assert "topic read site-a/devices/#" in files.bridge_acl.read_text()
    config = files.config.read_text()
    for line in (
        "allow_anonymous false",
        "per_listener_settings true",
        "connection_messages false",
        "max_queued_messages 1000000",
    ):
        assert line in config
    assert not any(p.name.startswith(".") for p in files.config.parent.iterdir())  # no temporary left over


def test_bad_options_are_refused_naming_the_option(tmp_path: Path) -> None:
    cases = [
        ({"port": 1884, "bridge_port": 1884, "bind": "127.0.0.1"}, "cannot both be"),
        ({"port": 0}, "device port"),
        ({"bridge_username": "a b"}, "username"),
        ({"root": "no-slash"}, "topic root"),
        ({"max_queued_messages": 10}, "max_queued_messages"),
    ]
    for options, words in cases:
        with pytest.raises(Invalid, match=words):
            write_mosquitto_config(out=tmp_path, bridge_password="pw", **options)


def test_the_command_writes_a_configuration_and_a_private_bridge_url(tmp_path: Path) -> None:
    require_mosquitto()
    out = tmp_path / "broker"
    port, bridge_port = free_port(), free_port()
    result = CliRunner().invoke(
        app,
        [
            "iot",
            "mosquitto-config",
            "--out",
            str(out),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--bridge-port",
            str(bridge_port),
        ],
    )
    assert result.exit_code == 0, result.output
    env = out / "bridge.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    url = env.read_text().strip().removeprefix("ZHISHE_MQTT_URL=")
    password = url.split("zhishe-bridge:", 1)[1].split("@", 1)[0]
    assert password not in result.output
    broker = ThrowawayBroker(out, port, bridge_port, password)
    broker.start()
    try:
        with mqtt_client(bridge_port, username="zhishe-bridge", password=password) as bridge:
            assert not bridge.connack[0].is_failure
    finally:
        broker.stop()
    assert os.path.isdir(out / "data")
