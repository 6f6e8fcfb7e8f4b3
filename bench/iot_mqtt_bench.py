"""MQTT ingestion benchmark: readings through a real Mosquitto to the bridge, until queryable.

Set-up, in a fresh data directory (SQLite, or the database ZHISHE_DATABASE_URL names): P households
each with an electricity meter; a throwaway ``mosquitto`` started from the files
``write_mosquitto_config`` generates (as ``zhishe iot mosquitto-config`` does), on free ports; the
bridge ``zhishe iot mqtt-bridge`` as its own process.

Each round, P publisher processes (one MQTT connection each, username = the device's token, QoS 1)
publish N/P SensorThings observations each, one reading per message, to
``devices/<token>/v1.1/Datastreams(<id>)/Observations``, as fast as they can (``--rate 0``) or at a
fixed total rate. The publishers are paho-mqtt (``--publisher paho``) or Mosquitto's own C client
(``--publisher mosquitto_pub``, reading one message per line), which leaves more of the two cores to
the broker and the bridge. A poller reads ``iot_latest`` every 5 ms: since each publisher sends in
order and the broker keeps that order, a reading is queryable from the first poll whose latest
time for its datastream has reached it.

Figures: sustained messages/s = N / (last reading queryable - first publish); latency from the
publish call to queryable, p50 and p99. Baseline in the same run: appending the same rows
(datastream, time, value, received_at) to a Delta table with ``deltalake.write_deltalake`` in
50,000-row batches; the ratio of the two rates is printed. Medians over ``--rounds``.

    .venv/bin/python bench/iot_mqtt_bench.py [--messages 100000] [--publishers 4] [--rounds 3]
        [--publisher paho|mosquitto_pub] [--rate 0] [--batch-size 5000] [--batch-ms 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def _cpu(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _setup(workdir: Path, publishers: int) -> list[tuple[str, int]]:
    """The database and P devices; their (token, power datastream id)."""
    os.environ.update(
        {
            "ZHISHE_DATA_DIR": str(workdir / "var"),
            "ZHISHE_LOG_LEVEL": "WARNING",
            "ZHISHE_SECRET_KEY": "bench-secret",
            "ZHISHE_BACKGROUND_WORKERS": "false",
        }
    )
    from zhishe import hooks
    from zhishe.core.accounts.models import Organisation
    from zhishe.core.auth import system_actor
    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.core.migrate import upgrade
    from zhishe.iot import service as iot

    hooks.install()
    settings = get_settings()
    upgrade(settings.database_url)
    actor = system_actor("bench")
    devices: list[tuple[str, int]] = []
    with get_sessionmaker(settings.database_url).begin() as session:
        operator = Organisation(code="op", name_zh="运营公司", kind="operator", created_at=datetime.now(UTC))
        session.add(operator)
        session.flush()
        for i in range(publishers):
            site = iot.create_site(
                session=session, actor=actor, code=f"H{i}", kind="household", name=f"H{i}", org_id=operator.id
            )
            new = iot.create_device(
                session=session, actor=actor, site_id=site.id, code=f"H{i}-meter", kind="electricity_meter"
            )
            power = next(
                s for s in iot.datastreams_of(session=session, device_id=new.device.id) if s.key == "power"
            )
            devices.append((new.token, power.id))
    return devices


def _payloads(stream_start: datetime, first: int, count: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "phenomenonTime": (stream_start + timedelta(milliseconds=k)).isoformat(),
                "result": k % 1000 + 0.5,
            }
        )
        for k in range(first, first + count)
    ]


def _paho_publisher(port: int, token: str, topic: str, bodies: list[bytes], rate: float, out: Any) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{token[-8:]}")
    client.username_pw_set(token)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    sent = np.empty(len(bodies))
    start = time.monotonic()
    infos = []
    for k, body in enumerate(bodies):
        if rate:
            wait = start + k / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sent[k] = time.monotonic()
        infos.append(client.publish(topic, body, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    acked = sum(info.is_published() for info in infos)
    client.disconnect()
    client.loop_stop()
    out.send((sent, acked))


def _c_publisher(port: int, token: str, topic: str, bodies: list[bytes], rate: float, out: Any) -> None:
    process = subprocess.Popen(
        [
            MOSQUITTO_PUB,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-u",
            token,
            "-q",
            "1",
            "-M",
            "1000",
            "-t",
            topic,
            "-l",
        ],
        stdin=subprocess.PIPE,
    )
    assert process.stdin is not None
    sent = np.empty(len(bodies))
    start = time.monotonic()
    for k, body in enumerate(bodies):
        if rate:
            wait = start + k / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sent[k] = time.monotonic()
        process.stdin.write(body + b"\n")
        if rate:
            process.stdin.flush()
    process.stdin.close()
    code = process.wait(120)
    out.send((sent, len(bodies) if code == 0 else 0))


def _round(
    *, port: int, devices: list[tuple[str, int]], messages: int, start: datetime, publisher: str, rate: float
) -> dict[str, float]:
    from sqlalchemy import select

    from zhishe.core.config import get_settings
    from zhishe.core.db import get_sessionmaker
    from zhishe.iot.models import Latest

    maker = get_sessionmaker(get_settings().database_url)
    per = messages // len(devices)
    target = {stream: start + timedelta(milliseconds=per - 1) for _, stream in devices}
    streams = [stream for _, stream in devices]
    visible: dict[int, list[tuple[float, datetime]]] = {s: [] for s in streams}
    done = threading.Event()

    def poll() -> None:
        with maker() as session:
            while not done.is_set():
                now = time.monotonic()
                rows = session.execute(
                    select(Latest.datastream_id, Latest.time).where(Latest.datastream_id.in_(streams))
                ).all()
                session.rollback()
                for stream, moment in rows:
                    seen = visible[stream]
                    if not seen or moment > seen[-1][1]:
                        seen.append((now, moment))
                if all(visible[s] and visible[s][-1][1] >= target[s] for s in streams):
                    done.set()
                    return
                time.sleep(0.005)

    target_fn = _paho_publisher if publisher == "paho" else _c_publisher
    pipes, processes = [], []
    for token, stream in devices:
        bodies = _payloads(start, 0, per)
        topic = f"devices/{token}/v1.1/Datastreams({stream})/Observations"
        mine, theirs = mp.Pipe(duplex=False)
        pipes.append(mine)
        processes.append(
            mp.Process(
                target=target_fn,
                args=(port, token, topic, bodies, rate / len(devices) if rate else 0.0, theirs),
            )
        )
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    for process in processes:
        process.start()
    results = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    if not done.wait(300):
        raise SystemExit("not every reading became queryable within 300 s")
    latencies: list[np.ndarray] = []
    first_sent = min(float(sent[0]) for sent, _ in results)
    last_visible = max(visible[s][-1][0] for s in streams)
    for (sent, _acked), (_token, stream) in zip(results, devices, strict=True):
        seen_at = np.array([t for t, _ in visible[stream]])
        seen_upto = np.array([(m - start) / timedelta(milliseconds=1) for _, m in visible[stream]])
        index = np.searchsorted(seen_upto, np.arange(per), side="left")
        latencies.append(seen_at[index] - sent)
    every = np.concatenate(latencies)
    return {
        "rate": per * len(devices) / (last_visible - first_sent),
        "p50": float(np.percentile(every, 50)) * 1000,
        "p99": float(np.percentile(every, 99)) * 1000,
        "acked": float(sum(acked for _, acked in results)),
    }


def _delta_baseline(workdir: Path, devices: list[tuple[str, int]], messages: int, start: datetime) -> float:
    import pyarrow as pa
    from deltalake import write_deltalake

    per = messages // len(devices)
    stamps = np.datetime64(start.replace(tzinfo=None), "us") + np.arange(per) * np.timedelta64(1, "ms")
    table = pa.table(
        {
            "datastream_id": pa.array(np.repeat([s for _, s in devices], per), type=pa.int64()),
            "time": pa.array(np.tile(stamps, len(devices)), type=pa.timestamp("us", tz="UTC")),
            "value": pa.array(np.tile(np.arange(per) % 1000 + 0.5, len(devices))),
            "received_at": pa.array(np.tile(stamps, len(devices)), type=pa.timestamp("us", tz="UTC")),
        }
    )
    target = workdir / f"delta-{time.monotonic_ns()}"
    began = time.perf_counter()
    for offset in range(0, table.num_rows, 50_000):
        write_deltalake(str(target), table.slice(offset, 50_000), mode="append")
    return table.num_rows / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publisher", choices=("paho", "mosquitto_pub"), default="paho")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="total messages/s offered (0: as fast as possible)"
    )
    parser.add_argument(
        "--bridges", type=int, default=1, help="bridge processes (more than one share the topics)"
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=float, default=50.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="zhishe-mqtt-bench-"))
    devices = _setup(workdir, args.publishers)
    from zhishe.iot.broker import write_mosquitto_config

    port, bridge_port = _free_port(), _free_port()
    files = write_mosquitto_config(
        out=workdir / "broker",
        bridge_password="bench-bridge",
        port=port,
        bind="127.0.0.1",
        bridge_port=bridge_port,
    )
    if (
        os.geteuid() == 0
    ):  # as root mosquitto would switch to a user that cannot enter the temporary directory
        with files.config.open("a") as handle:
            handle.write("user root\n")
    broker = subprocess.Popen([MOSQUITTO, "-c", str(files.config)], stderr=subprocess.DEVNULL)
    _wait(lambda: _listening(port) and _listening(bridge_port), "mosquitto")
    env = {**os.environ, "ZHISHE_MQTT_URL": files.bridge_url, "ZHISHE_LOG_LEVEL": "INFO"}
    share = ["--shared", "bench"] if args.bridges > 1 else []
    bridges, logs = [], []
    for number in range(args.bridges):
        bridge = subprocess.Popen(
            [sys.executable, "-m", "zhishe.cli", "iot", "mqtt-bridge", "--client-id", "bench-bridge",
             "--suffix", f"-{number}", *share, "--batch-size", str(args.batch_size), "--batch-ms", str(args.batch_ms)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: list[str] = []
        assert bridge.stderr is not None
        threading.Thread(
            target=lambda s=bridge.stderr, o=lines: o.extend(iter(s.readline, "")), daemon=True
        ).start()
        bridges.append(bridge)
        logs.append(lines)
    for lines in logs:
        _wait(
            lambda lines=lines: any("bridge subscribed" in line for line in lines), "the bridges to subscribe"
        )
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; {args.messages:,} messages"
        f" from {args.publishers} {args.publisher} publishers, rate {args.rate or 'max'}; bridge batches"
        f" {args.batch_size} / {args.batch_ms} ms; database {os.environ.get('ZHISHE_DATABASE_URL') or 'SQLite'}"
    )
    rounds: list[dict[str, float]] = []
    baselines: list[float] = []
    try:
        day = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
        for number in range(args.rounds):
            start = day + timedelta(minutes=20 * number)
            before = [_cpu(p.pid) for p in (*bridges, broker)]
            found = _round(
                port=port,
                devices=devices,
                messages=args.messages,
                start=start,
                publisher=args.publisher,
                rate=args.rate,
            )
            spent = [_cpu(p.pid) - b for p, b in zip((*bridges, broker), before, strict=True)]
            found["bridge_us"] = sum(spent[:-1]) / args.messages * 1e6
            found["broker_us"] = spent[-1] / args.messages * 1e6
            baseline = _delta_baseline(workdir, devices, args.messages, start)
            rounds.append(found)
            baselines.append(baseline)
            print(
                f"round {number + 1}: {found['rate']:,.0f} msg/s through the bridge, latency p50 {found['p50']:.0f} ms"
                f" p99 {found['p99']:.0f} ms, {found['acked']:,.0f} acknowledged; CPU per message: bridge"
                f" {found['bridge_us']:.0f} us, broker {found['broker_us']:.0f} us; Delta append {baseline:,.0f} rows/s"
            )
    finally:
        for bridge in bridges:
            bridge.terminate()
            bridge.wait(30)
        broker.terminate()
        broker.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
    rate = statistics.median(r["rate"] for r in rounds)
    delta = statistics.median(baselines)
    bridge_us = statistics.median(r["bridge_us"] for r in rounds)
    print(
        f"median CPU per message: bridge {bridge_us:.0f} us (one core: {1e6 / bridge_us:,.0f} msg/s),"
        f" broker {statistics.median(r['broker_us'] for r in rounds):.0f} us; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"median: {rate:,.0f} msg/s sustained (goal 10,000), latency p50 {statistics.median(r['p50'] for r in rounds):.0f} ms,"
        f" p99 {statistics.median(r['p99'] for r in rounds):.0f} ms; Delta append baseline {delta:,.0f} rows/s;"
        f" bridge / baseline = {rate / delta:.3f}"
    )


if __name__ == "__main__":
    main()
