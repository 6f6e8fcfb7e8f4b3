"""Readings in over HTTP: the simple batch, NDJSON and ThingsBoard telemetry, with per-reading
reasons for what is refused and nothing lost of the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from iot.iot_world import DAY, IotWorld
from zhishe.core import clock
from zhishe.iot.models import Latest, Reading


def _count(iw: IotWorld, stream_id: int | None = None) -> int:
    query = select(func.count()).select_from(Reading)
    if stream_id is not None:
        query = query.where(Reading.datastream_id == stream_id)
    iw.session.expire_all()
    return int(iw.session.scalar(query) or 0)


def _post(client: Any, body: Any, headers: dict[str, str], **kw: Any) -> Any:
    return client.post("/api/v1/iot/readings", content=orjson.dumps(body), headers=headers, **kw)


def test_batch_with_a_device_token_is_stored_and_acknowledged(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    body = [
        {"datastream": power.id, "time": (DAY + timedelta(minutes=i)).isoformat(), "value": 0.5 + i}
        for i in range(10)
    ]
    with clock.frozen(DAY + timedelta(hours=1)):
        answer = _post(client, body, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 10, "stored": 10, "duplicates": 0, "rejected": []}
    assert _count(iw, power.id) == 10
    latest = iw.session.get(Latest, power.id)
    assert latest is not None and latest.value == 9.5


def test_mixed_batch_keeps_the_good_readings_and_names_each_bad_one(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    other = iw.stream("H2-electricity", "power")
    t = DAY.isoformat()
    body = [
        {"datastream": power.id, "time": t, "value": 1.0},
        {"datastream": power.id, "time": (DAY + timedelta(minutes=1)).isoformat(), "value": "NaN"},
        {"datastream": 999999, "time": t, "value": 1.0},
        {"datastream": power.id, "time": "yesterday", "value": 1.0},
        {"datastream": power.id, "time": (DAY + timedelta(days=30)).isoformat(), "value": 1.0},
        {"datastream": power.id, "time": (DAY + timedelta(minutes=2)).isoformat(), "value": [1]},
        {"datastream": other.id, "time": t, "value": 1.0},
        "not an object",
        {"datastream": power.id, "time": (DAY + timedelta(minutes=3)).isoformat()},
        {"datastream": power.id, "time": (DAY + timedelta(minutes=4)).isoformat(), "value": 2.5},
    ]
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    with clock.frozen(DAY + timedelta(hours=1)):
        answer = _post(client, body, headers)
    assert answer.status_code == 200
    result = answer.json()
    assert result["stored"] == 2
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7, 8}
    assert "finite" in reasons[1]
    assert "does not belong to this device" in reasons[2]
    assert "ISO 8601" in reasons[3]
    assert "future" in reasons[4]
    assert "number" in reasons[5]
    assert "does not belong to this device" in reasons[6]  # another household's datastream
    assert "object" in reasons[7]
    assert "missing value" in reasons[8]
    assert _count(iw, power.id) == 2 and _count(iw, other.id) == 0


def test_repeats_are_idempotent_and_the_first_value_stays(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    reading = {"datastream": power.id, "time": DAY.isoformat(), "value": 1.0}
    with clock.frozen(DAY + timedelta(hours=1)):
        first = _post(client, [reading], headers).json()
        flood = _post(client, [reading | {"value": 7.0}] * 500, headers).json()
    assert first["stored"] == 1
    assert flood == {"received": 500, "stored": 0, "duplicates": 500, "rejected": []}
    assert _count(iw, power.id) == 1
    iw.session.expire_all()
    assert iw.session.scalar(select(Reading.value)) == 1.0


def test_late_and_out_of_order_readings_are_accepted_and_latest_only_moves_forward(
    client: Any, iw: IotWorld
) -> None:
    power = iw.stream("H1-electricity", "power")
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    with clock.frozen(DAY + timedelta(days=3)):
        assert (
            _post(
                client,
                [{"datastream": power.id, "time": (DAY + timedelta(days=2)).isoformat(), "value": 5}],
                headers,
            ).json()["stored"]
            == 1
        )
        late = [
            {"datastream": power.id, "time": (DAY + timedelta(hours=h)).isoformat(), "value": h}
            for h in (5, 1, 3)
        ]
        assert _post(client, late, headers).json()["stored"] == 3
    iw.session.expire_all()
    latest = iw.session.get(Latest, power.id)
    assert latest is not None and latest.value == 5 and latest.time == DAY + timedelta(days=2)


def test_a_staff_token_may_send_for_its_organisations_sites_only(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H3-electricity", "power")
    body = [{"datastream": power.id, "time": DAY.isoformat(), "value": 1}]
    with clock.frozen(DAY + timedelta(hours=1)):
        staff = _post(client, body, iw.staff_headers).json()
        resident = _post(client, body, iw.resident_headers[0]).json()
    assert staff["stored"] == 1
    assert resident["stored"] == 0 and "may not send" in resident["rejected"][0]["reason"]


def test_wrong_or_missing_tokens_are_refused(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    body = [{"datastream": power.id, "time": DAY.isoformat(), "value": 1}]
    assert _post(client, body, {"Authorization": "Bearer zhishe_dev_wrong"}).status_code == 401
    assert _post(client, body, {}).status_code == 401
    assert client.post("/api/v1/iot/telemetry/zhishe_dev_nope", content=b'{"power": 1}').status_code == 401
    assert _count(iw) == 0


def test_a_batch_over_the_limit_is_refused_whole_with_the_limit_named(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    body = [
        {"datastream": power.id, "time": (DAY + timedelta(seconds=i)).isoformat(), "value": 1}
        for i in range(10_001)
    ]
    answer = _post(client, body, headers)
    assert answer.status_code == 413
    assert "10000" in answer.json()["error"]["message"].replace(",", "")
    assert _count(iw) == 0


def test_malformed_json_is_refused_naming_the_problem(client: Any, iw: IotWorld) -> None:
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    answer = client.post("/api/v1/iot/readings", content=b"[{", headers=headers)
    assert answer.status_code == 422 and "JSON" in answer.json()["error"]["message"]


def test_ndjson_lines_are_read_one_by_one(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    lines = [
        orjson.dumps({"datastream": power.id, "time": (DAY + timedelta(minutes=i)).isoformat(), "value": i})
        for i in range(3)
    ]
    body = b"\n".join([lines[0], b"{broken", lines[1], lines[2]]) + b"\n"
    headers = {
        "Authorization": f"Bearer {iw.tokens['H1-electricity']}",
        "Content-Type": "application/x-ndjson",
    }
    with clock.frozen(DAY + timedelta(hours=1)):
        result = client.post("/api/v1/iot/readings", content=body, headers=headers).json()
    assert result["stored"] == 3 and [r["index"] for r in result["rejected"]] == [1]


def test_thingsboard_telemetry_maps_keys_to_the_devices_datastreams(client: Any, iw: IotWorld) -> None:
    token = iw.tokens["H2-electricity"]
    ts = int(DAY.timestamp() * 1000)
    body = [
        {"ts": ts, "values": {"power": 1.5, "energy": 100.25}},
        {"ts": ts + 60_000, "values": {"power": 1.7, "volts": 230}},
    ]
    with clock.frozen(DAY + timedelta(hours=1)):
        result = client.post(f"/api/v1/iot/telemetry/{token}", content=orjson.dumps(body)).json()
    assert result["stored"] == 3
    assert result["rejected"] == [
        {"index": 3, "reason": "this device has no datastream with the key 'volts'", "datastream": "volts"}
    ]
    energy = iw.stream("H2-electricity", "energy")
    iw.session.expire_all()
    assert iw.session.get(Latest, energy.id).value == 100.25  # type: ignore[union-attr]


def test_a_rotated_token_stops_working_at_once(client: Any, iw: IotWorld) -> None:
    device = iw.devices["H1-electricity"]
    old = iw.tokens["H1-electricity"]
    rotated = client.post(f"/api/v1/iot/devices/{device.id}/rotate-token", headers=iw.staff_headers)
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    with clock.frozen(DAY + timedelta(hours=1)):
        assert client.post(f"/api/v1/iot/telemetry/{old}", content=b'{"power": 1}').status_code == 401
        assert (
            client.post(
                f"/api/v1/iot/telemetry/{new}",
                content=orjson.dumps({"ts": int(DAY.timestamp() * 1000), "values": {"power": 1}}),
            ).json()["stored"]
            == 1
        )
