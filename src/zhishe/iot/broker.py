"""The Mosquitto configuration for device ingestion (``zhishe iot mosquitto-config``).

Devices log in ThingsBoard's way, with their token as the MQTT username and no password. Two facts
of Mosquitto 2.0 (checked against the real broker by ``tests/iot/test_broker_config.py``) shape the
configuration:

- ``mount_point`` is a fixed string: ``devices/%u/`` is not filled in per client, so Mosquitto
  cannot put the username into the topic the way EMQX's ``mountpoint = "devices/${username}/"``
  does. Devices therefore publish under ``devices/<token>/`` themselves, and an ACL ``pattern``
  with ``%u`` lets each connection publish only under its own username.
- A password file cannot admit a username without a password, and the platform keeps only a
  SHA-256 of each token. So the broker does not check device tokens: the device listener admits
  any username (a client without one gets no topic at all), and the bridge authenticates every
  token it reads from a topic. The broker's ACL keeps a device from publishing under another
  token; the bridge keeps it from writing another device's datastreams.

The bridge logs in on a second listener (loopback by default) with a password whose PBKDF2-SHA512
hash (Mosquitto's ``$7$`` format, as ``mosquitto_passwd`` writes it) is in the password file, and
may only read the device topics. No file written here holds a device token, so nothing needs to be
regenerated when a token is rotated; after changing the bridge's password, re-run the command and
reload the broker with ``kill -HUP``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from zhishe.core.errors import Invalid
from zhishe.iot.mqtt import DEVICE_ROOT, TELEMETRY_TOPIC

__all__ = [
    "MosquittoFiles",
    "check_mosquitto_hash",
    "mosquitto_hash",
    "write_mosquitto_config",
    "write_private",
]

#: PBKDF2 rounds of ``mosquitto_passwd`` 2.0 (its default for ``$7$`` hashes).
_ITERATIONS = 101
_SALT_BYTES = 12


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """A password hash in Mosquitto's ``$7$`` format: PBKDF2-HMAC-SHA512, as ``mosquitto_passwd``."""
    if not password:
        raise Invalid("a broker password must not be empty (Mosquitto refuses empty passwords)")
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (ours or ``mosquitto_passwd``'s)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(mine, digest)


@dataclass(frozen=True, slots=True)
class MosquittoFiles:
    """The files written, and the bridge's broker URL (holding its password when it was generated)."""

    config: Path
    password_file: Path
    device_acl: Path
    bridge_acl: Path
    bridge_url: str


def _write(path: Path, text: str, mode: int) -> None:
    """Write a file whole, then rename it into place, so a reloading broker never reads half of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner may read (mode 0600), whole or not at all."""
    _write(path, text, 0o600)
    return path


def _check_name(value: str, what: str) -> str:
    if not value or any(c.isspace() or c in "+#/:" for c in value):
        raise Invalid(f"{what} {value!r} must be non-empty, without spaces or any of + # / :")
    return value


def _check_port(value: int, what: str) -> int:
    if not 1 <= value <= 65535:
        raise Invalid(f"{what} must be between 1 and 65535, not {value}")
    return value


def write_mosquitto_config(
    *,
    out: Path,
    bridge_password: str,
    bridge_username: str = "zhishe-bridge",
    bind: str = "0.0.0.0",  # noqa: S104 - devices connect from the network
    port: int = 1883,
    bridge_bind: str = "127.0.0.1",
    bridge_port: int = 1884,
    root: str = "",
    data_dir: Path | None = None,
    max_queued_messages: int = 1_000_000,
    max_packet_bytes: int = 1024 * 1024,
) -> MosquittoFiles:
    """Write ``mosquitto.conf``, the bridge's password file and the two ACL files into ``out``.

    ``root`` is the bridge's topic root; ``data_dir`` is where the broker persists sessions and
    queued messages (default ``out/data``).
    """
    _check_name(bridge_username, "the bridge's username")
    _check_port(port, "the device port")
    _check_port(bridge_port, "the bridge port")
    if port == bridge_port and bind == bridge_bind:
        raise Invalid(f"the device and bridge listeners cannot both be {bind}:{port}")
    if root and (not root.endswith("/") or any(c in root for c in "+#")):
        raise Invalid(f"the topic root {root!r} must end with '/' and hold no '+' or '#'")
    if max_queued_messages < 1000:
        raise Invalid(
            f"max_queued_messages of {max_queued_messages} is too small to ride out a bridge restart"
        )
    if max_packet_bytes < 1024:
        raise Invalid(f"max_packet_bytes of {max_packet_bytes} is too small for a telemetry message")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    data = (data_dir or out / "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    files = MosquittoFiles(
        config=out / "mosquitto.conf",
        password_file=out / "bridge.passwd",
        device_acl=out / "devices.acl",
        bridge_acl=out / "bridge.acl",
        bridge_url=f"mqtt://{bridge_username}:{bridge_password}@{bridge_bind}:{bridge_port}",
    )
    devices = f"{root}{DEVICE_ROOT}"
    _write(files.password_file, f"{bridge_username}:{mosquitto_hash(bridge_password)}\n", 0o600)
    _write(
        files.device_acl,
        "# Devices: a connection may publish only under its own username (its token), and read nothing.\n"
        "# A client without a username matches no line: it can neither publish nor subscribe.\n"
        f"pattern write {devices}/%u/{TELEMETRY_TOPIC}\n"
        f"pattern write {devices}/%u/v1.1/+/Observations\n",
        0o644,
    )
    _write(
        files.bridge_acl,
        "# The bridge reads the device topics and the SensorThings create topic; it publishes nothing.\n"
        f"user {bridge_username}\n"
        f"topic read {devices}/#\n"
        f"topic read {root}v1.1/#\n",
        0o644,
    )
    _write(
        files.config,
        "# Generated by `zhishe iot mosquitto-config`. Re-run it to regenerate; reload with kill -HUP.\n"
        "per_listener_settings true\n"
        "persistence true\n"
        f"persistence_location {data}/\n"
        "autosave_interval 60\n"
        "# Messages held for the bridge while it restarts or catches up (the default of 1000 would\n"
        "# drop readings that publishers already had acknowledged).\n"
        f"max_queued_messages {max_queued_messages}\n"
        f"max_packet_size {max_packet_bytes}\n"
        "# Connection lines would show device tokens (their usernames): keep them out of the log.\n"
        "connection_messages false\n"
        "log_type error\n"
        "log_type warning\n"
        "\n"
        "# Devices: token as username, no password; each confined to its own topics by devices.acl.\n"
        f"listener {port} {bind}\n"
        "allow_anonymous true\n"
        f"acl_file {files.device_acl}\n"
        "\n"
        "# The bridge: password login only.\n"
        f"listener {bridge_port} {bridge_bind}\n"
        "allow_anonymous false\n"
        f"password_file {files.password_file}\n"
        f"acl_file {files.bridge_acl}\n",
        0o644,
    )
    return files
