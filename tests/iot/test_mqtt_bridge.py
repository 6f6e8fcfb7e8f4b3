"""The MQTT bridge on real brokers: SensorThings observations and ThingsBoard telemetry stored,
hostile messages dropped with their reasons (and acknowledged, so they never come back), rotated
tokens refused at the next batch; and, without a broker, the topic routes and batch storage."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from iot.iot_world import IotWorld
from iot.test_broker_config import mqtt_client, require_mosquitto, throwaway_broker, wait_for
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.iot import service as iot
from zhishe.iot.models import Reading
from zhishe.iot.mqtt import (
    Bridge,
    BridgeOptions,
    BrokerAddress,
    DeviceCache,
    Route,
    forget_session,
    redact_topic,
    route,
    store_messages,
    subscriptions,
)

TELEMETRY = "v1/devices/me/telemetry"


def _base() -> datetime:
    """A recent time, different in every run, so runs sharing the system broker never collide."""
    return clock.now().replace(microsecond=0) - timedelta(minutes=30, milliseconds=uuid.uuid4().int % 1000)


def _values(stream_id: int, times: list[datetime]) -> dict[datetime, float]:
    with get_sessionmaker(get_settings().database_url)() as session:
        rows = session.execute(
            select(Reading.time, Reading.value).where(
                Reading.datastream_id == stream_id, Reading.time.in_(times)
            )
        )
        return {t: v for t, v in rows}


@contextmanager
def running_bridge(
    url: str, *, client_id: str | None = None, root: str = "", forget: bool = True, shared: str | None = None
) -> Iterator[Bridge]:
    """The bridge in a thread of this process, connected and subscribed; its session ended after."""
    options = BridgeOptions(
        broker=BrokerAddress.parse(url),
        client_id=client_id or f"zhishe-test-{uuid.uuid4().hex[:12]}",
        root=root,
        shared=shared,
        batch_wait=0.02,
        session_expiry=300,  # a session left behind by an interrupted run does not linger
    )
    bridge = Bridge(options)
    thread = threading.Thread(target=bridge.run, name="test-bridge", daemon=True)
    thread.start()
    try:
        assert bridge.wait_subscribed(10), "the bridge did not subscribe within 10 s"
        yield bridge
    finally:
        bridge.stop()
        thread.join(10)
        if forget:
            forget_session(options)


def _observation(moment: datetime, result: Any) -> bytes:
    return orjson.dumps({"phenomenonTime": moment.isoformat(), "result": result})


# --- through the brokers ------------------------------------------------------------------------


def test_an_observation_published_with_qos1_on_the_sensorthings_topic_is_stored(
    iw: IotWorld, client: Any
) -> None:
    require_mosquitto()
    power = iw.stream("H1-electricity", "power")
    times = [_base() + timedelta(seconds=i) for i in range(3)]
    with running_bridge("mqtt://127.0.0.1:1883"), mqtt_client(1883) as publisher:
        for i, moment in enumerate(times):
            answer = publisher.publish(
                f"v1.1/Datastreams({power.id})/Observations", _observation(moment, 1.5 + i)
            )
            assert not answer.is_failure
        stored = wait_for(lambda: (found := _values(power.id, times)) and len(found) == 3 and found)
    assert stored == {times[0]: 1.5, times[1]: 2.5, times[2]: 3.5}
    # ... and read back through the SensorThings API, as the resident of the household.
    page = client.get(
        f"/sensorthings/v1.1/Datastreams({power.id})/Observations",
        params={"$orderby": "phenomenonTime", "$select": "result,phenomenonTime"},
        headers=iw.resident_headers[0],
    )
    assert page.status_code == 200, page.text
    assert [o["result"] for o in page.json()["value"]] == [1.5, 2.5, 3.5]


def test_thingsboard_telemetry_is_stored_for_the_device_whose_token_is_its_username(
    iw: IotWorld, tmp_path: Path
) -> None:
    require_mosquitto()
    token = iw.tokens["H2-electricity"]
    power, energy = iw.stream("H2-electricity", "power"), iw.stream("H2-electricity", "energy")
    moment = _base()
    body = {"ts": int(moment.timestamp() * 1000), "values": {"power": 2.25, "energy": 120.5}}
    with throwaway_broker(tmp_path) as broker, running_bridge(broker.bridge_url):
        with mqtt_client(broker.port, username=token, v5=False) as device:  # no password, as ThingsBoard
            assert not device.publish(f"devices/{token}/{TELEMETRY}", orjson.dumps(body)).is_failure
        wait_for(lambda: _values(power.id, [moment]) and _values(energy.id, [moment]))
    assert _values(power.id, [moment]) == {moment: 2.25}
    assert _values(energy.id, [moment]) == {moment: 120.5}


def test_hostile_messages_are_dropped_with_a_reason_acknowledged_and_good_ones_stored(
    iw: IotWorld, tmp_path: Path
) -> None:
    require_mosquitto()
    token, other_token = iw.tokens["H1-electricity"], iw.tokens["H2-electricity"]
    wrong = "zhishe_dev_" + "w" * 32
    power, other_power = iw.stream("H1-electricity", "power"), iw.stream("H2-electricity", "power")
    base = _base()
    t = [base + timedelta(seconds=i) for i in range(6)]
    bridge_id = f"zhishe-test-{uuid.uuid4().hex[:12]}"
    own_stream = f"devices/{token}/v1.1/Datastreams({power.id})/Observations"
    with throwaway_broker(tmp_path) as broker:
        with running_bridge(broker.bridge_url, client_id=bridge_id, forget=False) as bridge:
            with mqtt_client(broker.port, username=token) as device:
                device.publish(
                    f"devices/{token}/{TELEMETRY}",
                    orjson.dumps({"ts": int(t[0].timestamp() * 1000), "values": {"power": 1.0}}),
                )
                device.publish(f"devices/{token}/{TELEMETRY}", b"{not json")
                device.publish(own_stream, b"\xff\xfe")
                device.publish(
                    f"devices/{token}/v1.1/Datastreams({other_power.id})/Observations",
                    _observation(t[1], 9.0),
                )
                device.publish(own_stream, _observation(t[2], "NaN"))
                device.publish(own_stream, _observation(t[3], 4.0))
            with mqtt_client(broker.port, username=wrong) as stranger:
                stranger.publish(
                    f"devices/{wrong}/v1.1/Datastreams({power.id})/Observations", _observation(t[4], 5.0)
                )
            wait_for(lambda: bridge.stats.messages >= 7)
            drops = list(bridge.stats.recent_drops)
        # The same session again: nothing of the above comes back; only the marker sent now arrives.
        with running_bridge(broker.bridge_url, client_id=bridge_id) as again:
            with mqtt_client(broker.port, username=token) as device:
                device.publish(own_stream, _observation(t[5], 6.0))
            wait_for(lambda: again.stats.stored >= 1)
            assert again.stats.messages == 1
    assert _values(power.id, t) == {t[0]: 1.0, t[3]: 4.0, t[5]: 6.0}
    assert _values(other_power.id, t) == {}
    reasons = [d.reason for d in drops]
    assert any("not valid JSON" in r for r in reasons)
    assert sum("not valid JSON" in r for r in reasons) == 2
    assert any(f"datastream {other_power.id} does not belong to this device" in r for r in reasons)
    assert any("finite" in r for r in reasons)
    assert any("zhishe_d… is not valid" in r for r in reasons)
    assert all(
        tok not in d.topic and tok not in d.reason for d in drops for tok in (token, other_token, wrong)
    )
    assert bridge.stats.dropped == len(drops) == 5


def test_a_rotated_token_is_refused_from_the_next_batch(iw: IotWorld, tmp_path: Path) -> None:
    require_mosquitto()
    device_id = iw.devices["H3-electricity"].id
    old = iw.tokens["H3-electricity"]
    power = iw.stream("H3-electricity", "power")
    t = [_base() + timedelta(seconds=i) for i in range(3)]
    with throwaway_broker(tmp_path) as broker, running_bridge(broker.bridge_url) as bridge:
        with mqtt_client(broker.port, username=old) as device:
            device.publish(
                f"devices/{old}/v1.1/Datastreams({power.id})/Observations", _observation(t[0], 1.0)
            )
        wait_for(lambda: _values(power.id, t))
        new = iot.rotate_token(
            session=iw.session, actor=actor_for_user(iw.steward), device_id=device_id
        ).token
        iw.session.commit()
        with mqtt_client(broker.port, username=old) as device:
            device.publish(
                f"devices/{old}/v1.1/Datastreams({power.id})/Observations", _observation(t[1], 2.0)
            )
        with mqtt_client(broker.port, username=new) as device:
            device.publish(
                f"devices/{new}/v1.1/Datastreams({power.id})/Observations", _observation(t[2], 3.0)
            )
        wait_for(lambda: len(_values(power.id, t)) == 2 and bridge.stats.dropped >= 1)
    assert _values(power.id, t) == {t[0]: 1.0, t[2]: 3.0}
    assert "is not valid" in bridge.stats.recent_drops[0].reason


def test_bridges_sharing_the_topics_store_each_message_once_between_them(
    iw: IotWorld, tmp_path: Path
) -> None:
    require_mosquitto()
    token = iw.tokens["H5-electricity"]
    power = iw.stream("H5-electricity", "power")
    t = [_base() + timedelta(seconds=i) for i in range(40)]
    topic = f"devices/{token}/v1.1/Datastreams({power.id})/Observations"
    with (
        throwaway_broker(tmp_path) as broker,
        running_bridge(broker.bridge_url, shared="zhishe") as one,
        running_bridge(broker.bridge_url, shared="zhishe") as two,
        mqtt_client(broker.port, username=token) as device,
    ):
        for i, moment in enumerate(t):
            device.publish(topic, _observation(moment, float(i)))
        wait_for(lambda: one.stats.messages + two.stats.messages >= 40)
    assert _values(power.id, t) == {moment: float(i) for i, moment in enumerate(t)}
    assert one.stats.messages + two.stats.messages == 40 and one.stats.messages > 0 and two.stats.messages > 0


# --- without a broker ---------------------------------------------------------------------------


def test_topics_route_to_their_sender_and_stream_and_others_to_nothing() -> None:
    assert route("v1.1/Datastreams(12)/Observations") == Route("observation", None, 12)
    assert route(f"devices/zhishe_dev_abc/{TELEMETRY}") == Route("telemetry", "zhishe_dev_abc", None)
    assert route("devices/tok/v1.1/Datastreams(7)/Observations") == Route("observation", "tok", 7)
    assert route("site/v1.1/Datastreams(7)/Observations", "site/") == Route("observation", None, 7)
    for topic in (
        "v1.1/Datastreams(x)/Observations",
        "devices//v1/devices/me/telemetry",
        TELEMETRY,
        "devices/tok/other",
    ):
        assert route(topic) is None, topic
    assert route("v1.1/Datastreams(7)/Observations", "site/") is None
    assert redact_topic(f"devices/zhishe_dev_abcdef/{TELEMETRY}") == f"devices/zhishe_d…/{TELEMETRY}"
    assert subscriptions("r/", "g")[1] == f"$share/g/r/devices/+/{TELEMETRY}"


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_topic_routes_or_is_refused_without_an_error(topic: str) -> None:
    found = route(topic)
    if found is not None and found.token is not None:
        assert topic.startswith(f"devices/{found.token}/") and "/" not in found.token


def test_repeats_within_a_batch_and_across_batches_are_stored_once(iw: IotWorld) -> None:
    power = iw.stream("H4-electricity", "power")
    moment = _base()
    topic = f"v1.1/Datastreams({power.id})/Observations"
    cache = DeviceCache()
    first = store_messages(
        session=iw.session, messages=[(topic, _observation(moment, 1.0))] * 3, devices=cache
    )
    iw.session.commit()
    again = store_messages(session=iw.session, messages=[(topic, _observation(moment, 7.0))], devices=cache)
    iw.session.commit()
    assert (first.stored, first.duplicates, again.stored, again.duplicates) == (1, 2, 0, 1)
    assert _values(power.id, [moment]) == {moment: 1.0}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    topic=st.sampled_from(["v1.1/Datastreams(1)/Observations", "devices/zhishe_dev_x/" + TELEMETRY, "x/y"]),
    body=st.one_of(
        st.binary(max_size=60),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(orjson.dumps),
    ),
)
def test_any_payload_is_stored_or_dropped_with_a_reason_never_an_error(
    iw: IotWorld, topic: str, body: bytes
) -> None:
    result = store_messages(session=iw.session, messages=[(topic, body)], devices=DeviceCache())
    iw.session.rollback()
    assert result.stored + result.duplicates + len(result.drops) >= 1
    assert all(d.reason for d in result.drops)
