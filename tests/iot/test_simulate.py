"""The household simulator: the real data's weekly shape, consistent counters, a quiet night but for a
leak, routines and an inactive resident, determinism, and live sending over HTTP and MQTT."""

from __future__ import annotations

import socket
import stat
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from sqlalchemy import func, select

from helpers import require_service
from iot.iot_world import DAY, SHANGHAI, IotWorld
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.errors import Invalid
from zhishe.demo.taylor import read_taylor
from zhishe.iot.loadshape import profile_at, weekly_profile
from zhishe.iot.models import Latest, Reading
from zhishe.iot.simulate import (
    Fault,
    SimDevice,
    SimHousehold,
    SimulatedReading,
    generate,
    load_roster,
    plan_faults,
    provision,
    run,
    save_roster,
    step_for,
)

#: 2026-11-09, a Monday in Shanghai (the week after the IoT world's day).
MONDAY = DAY + timedelta(days=7)


def _by_series(rows: list[SimulatedReading]) -> dict[tuple[int, str], tuple[list[datetime], np.ndarray]]:
    """(household, key) → its times and values, in order."""
    found: dict[tuple[int, str], list[tuple[datetime, float]]] = defaultdict(list)
    for r in rows:
        found[(r.household, r.key)].append((r.time, r.value))
    return {k: ([t for t, _ in v], np.asarray([x for _, x in v])) for k, v in found.items()}


def _data_week() -> np.ndarray:
    """The raw demand as 12 weeks × 7 days × 48 half hours (the file starts on a Monday at 00:00)."""
    values = read_taylor()
    assert values[0][0].astimezone(ZoneInfo("Europe/London")) == datetime(
        2000, 6, 5, tzinfo=ZoneInfo("Europe/London")
    )
    return np.asarray([v for _, v in values]).reshape(12, 7, 48)


# --- the shape ---------------------------------------------------------------------------------


def test_the_weekly_profile_is_the_mean_week_of_the_real_demand_data() -> None:
    week = _data_week().mean(axis=0)
    profile = weekly_profile()
    assert profile.shape == (336,)
    assert profile.mean() == pytest.approx(1.0)
    assert np.allclose(profile.reshape(7, 48), week / week.mean())
    weekdays = profile.reshape(7, 48)[:5]
    # The data's weekday evening peak (17:00) over its night trough (04:30) is about 1.62.
    evening, trough = weekdays[:, 34].mean(), weekdays[:, :12].mean(axis=0).min()
    assert evening / trough == pytest.approx(1.62, abs=0.01)
    # Weekend demand is about 17 % below weekday demand in the data.
    assert profile[240:].mean() / profile[:240].mean() == pytest.approx(0.83, abs=0.01)


def test_the_profile_is_interpolated_between_half_hour_centres() -> None:
    profile = weekly_profile()
    centres = np.arange(336) * 1800.0 + 900.0
    assert np.allclose(profile_at(centres), profile)
    assert profile_at(np.asarray([1800.0]))[0] == pytest.approx((profile[0] + profile[1]) / 2)
    # Sunday 23:59 runs on into Monday 00:00 (the week wraps round).
    assert profile_at(np.asarray([7 * 86_400.0]))[0] == pytest.approx((profile[-1] + profile[0]) / 2)


def test_the_households_together_follow_the_real_weekly_shape() -> None:
    rows = generate(
        households=120, start=MONDAY, end=MONDAY + timedelta(days=14), seed=5, step=1800, tz=SHANGHAI
    )
    total: dict[int, float] = defaultdict(float)
    for r in rows:
        if r.key == "power":
            local = r.time.astimezone(SHANGHAI)
            total[local.weekday() * 48 + local.hour * 2 + local.minute // 30] += r.value
    simulated = np.asarray([total[slot] for slot in range(336)])
    simulated /= simulated.mean()
    # Readings at the end of each half hour sit between two half-hour centres of the profile.
    expected = profile_at(np.arange(336) * 1800.0)
    assert np.corrcoef(simulated, expected)[0, 1] > 0.97
    weekdays = simulated.reshape(7, 48)[:5]
    data = expected.reshape(7, 48)[:5]
    ratio = weekdays[:, 34].mean() / weekdays[:, :12].mean(axis=0).min()
    assert ratio == pytest.approx(data[:, 34].mean() / data[:, :12].mean(axis=0).min(), rel=0.08)
    assert simulated[240:].mean() / simulated[:240].mean() == pytest.approx(0.83, abs=0.04)


# --- counters ----------------------------------------------------------------------------------


def test_counters_never_decrease_except_at_the_injected_reset() -> None:
    end = MONDAY + timedelta(days=3)
    faults = plan_faults(households=6, start=MONDAY, end=end, seed=2, resets=1, tz=SHANGHAI)
    (reset,) = faults
    assert reset.kind == "counter_reset" and MONDAY <= reset.start < end
    local_hour = reset.start.astimezone(SHANGHAI).hour
    assert 10 <= local_hour < 16  # mid-day
    series = _by_series(
        list(generate(households=6, start=MONDAY, end=end, seed=2, step=300, faults=faults, tz=SHANGHAI))
    )
    for household in range(6):
        for key in ("energy", "volume"):
            times, values = series[(household, key)]
            falls = [i + 1 for i in np.flatnonzero(np.diff(values) < 0)]
            if household == reset.household and key == "energy":
                assert len(falls) == 1
                at = falls[0]
                assert times[at] - timedelta(seconds=300) < reset.start <= times[at]
                assert values[at] == 0.0 and values[at - 1] > 100
                assert values[-1] > 0  # counting again from 0
            else:
                assert falls == [], (household, key)


def test_energy_increments_equal_the_integral_of_power_and_volume_that_of_flow() -> None:
    step = 60
    series = _by_series(
        list(
            generate(
                households=8, start=MONDAY, end=MONDAY + timedelta(days=1), seed=3, step=step, tz=SHANGHAI
            )
        )
    )
    for household in range(8):
        energy, power, volume, flow = (
            series[(household, k)][1] for k in ("energy", "power", "volume", "flow")
        )
        assert len(energy) == len(power) == 1440
        # Power is the mean over the minute before each reading: kW × h = kWh (counter kept to 1 Wh).
        assert np.abs(np.diff(energy) - power[1:] * step / 3600).max() <= 0.0011
        day_kwh = float((power[1:] * step / 3600).sum())
        assert energy[-1] - energy[0] == pytest.approx(day_kwh, abs=0.0011)
        assert 1.0 < day_kwh < 60.0
        # Flow is in L/min, the counter in m³ (kept to 0.1 L).
        assert np.abs(np.diff(volume) - flow[1:] * step / 60 / 1000).max() <= 0.00011
        assert 30 < (volume[-1] - volume[0]) * 1000 < 1500
        assert power.min() > 0 and flow.min() >= 0


# --- water, routines and faults ----------------------------------------------------------------


def _night(day: int) -> tuple[datetime, datetime]:
    start = MONDAY + timedelta(days=day)
    return start, start + timedelta(hours=5)


def test_water_is_zero_most_of_the_night_but_never_on_the_leak_night() -> None:
    households, end = 20, MONDAY + timedelta(days=3)
    faults = plan_faults(households=households, start=MONDAY, end=end, seed=4, leaks=1, tz=SHANGHAI)
    (leak,) = faults
    assert leak.kind == "leak" and 2.0 <= leak.flow_lpm <= 6.0
    series = _by_series(
        list(
            generate(
                households=households, start=MONDAY, end=end, seed=4, step=60, faults=faults, tz=SHANGHAI
            )
        )
    )
    leak_morning = (leak.start.astimezone(SHANGHAI) + timedelta(hours=4)).replace(hour=6, minute=0)
    for household in range(households):
        times, flow = series[(household, "flow")]
        for day in range(3):
            a, b = _night(day)
            night = np.asarray([v for t, v in zip(times, flow, strict=True) if a <= t < b])
            assert len(night) == 300
            if household == leak.household and a < leak_morning and b > leak.start:
                continue
            assert (night == 0).mean() >= 0.9, (household, day)
        if household == leak.household:
            leaking = [v for t, v in zip(times, flow, strict=True) if leak.start < t <= leak_morning]
            assert len(leaking) >= 5 * 60
            assert min(leaking) >= leak.flow_lpm - 0.01


def test_motion_and_door_follow_a_daily_routine_later_at_weekends() -> None:
    rows = list(
        generate(households=40, start=MONDAY, end=MONDAY + timedelta(days=7), seed=6, step=3600, tz=SHANGHAI)
    )
    first: dict[tuple[int, int], float] = {}
    by_hour = np.zeros(24)
    for r in rows:
        if r.key in ("motion", "door") and r.value == 1.0:
            local = r.time.astimezone(SHANGHAI)
            by_hour[local.hour] += 1
            day = (local.date() - MONDAY.date()).days
            if local.hour >= 4:  # the first activity of the morning, not the last of a late night
                first.setdefault((r.household, day), local.hour + local.minute / 60)
    assert by_hour[1:5].sum() < 0.01 * by_hour.sum()  # quiet at night
    assert by_hour[6:9].sum() > 0.15 * by_hour.sum()  # busy mornings
    weekday = np.mean([h for (_, d), h in first.items() if d < 5])
    weekend = np.mean([h for (_, d), h in first.items() if d >= 5])
    assert 5.5 < weekday < 8.0
    assert weekend - weekday > 0.6


def test_an_inactive_resident_makes_no_motion_or_door_event_after_the_time() -> None:
    households, end = 10, MONDAY + timedelta(days=2)
    faults = plan_faults(households=households, start=MONDAY, end=end, seed=8, inactive=1, tz=SHANGHAI)
    (quiet,) = faults
    assert quiet.kind == "inactive" and quiet.end is not None
    assert quiet.end.astimezone(SHANGHAI).time().hour == 0  # to the end of that day
    rows = list(
        generate(households=households, start=MONDAY, end=end, seed=8, step=900, faults=faults, tz=SHANGHAI)
    )
    events = [r for r in rows if r.key in ("motion", "door")]
    theirs = [r.time for r in events if r.household == quiet.household]
    assert not [t for t in theirs if quiet.start <= t < quiet.end]
    same_day_before = [t for t in theirs if quiet.start - timedelta(hours=8) < t < quiet.start]
    assert same_day_before, "the resident was active that morning"
    assert [t for t in theirs if t >= quiet.end], "and again the next day"
    others = {r.household for r in events if quiet.start <= r.time < quiet.end}
    assert len(others) >= households // 2  # everyone else carried on


def test_the_same_seed_gives_the_same_readings_and_another_seed_others() -> None:
    def take(seed: int) -> list[SimulatedReading]:
        faults = plan_faults(
            households=4,
            start=MONDAY,
            end=MONDAY + timedelta(days=1),
            seed=seed,
            leaks=1,
            resets=1,
            tz=SHANGHAI,
        )
        return list(
            generate(
                households=4,
                start=MONDAY,
                end=MONDAY + timedelta(days=1),
                seed=seed,
                faults=faults,
                tz=SHANGHAI,
            )
        )

    first, again, other = take(11), take(11), take(12)
    assert first == again
    assert first != other
    assert [r.time for r in first] == sorted(r.time for r in first)


def test_bad_simulation_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(Invalid, match="timezone-aware"):
        list(generate(households=1, start=datetime(2026, 11, 9), end=MONDAY, tz=SHANGHAI))
    with pytest.raises(Invalid, match="end after it starts"):
        list(generate(households=1, start=MONDAY, end=MONDAY, tz=SHANGHAI))
    with pytest.raises(Invalid, match="step"):
        list(generate(households=1, start=MONDAY, end=MONDAY + timedelta(hours=1), step=0, tz=SHANGHAI))
    with pytest.raises(Invalid, match="household 5"):
        list(
            generate(
                households=2,
                start=MONDAY,
                end=MONDAY + timedelta(hours=1),
                faults=[Fault("leak", 5, MONDAY, flow_lpm=3)],
                tz=SHANGHAI,
            )
        )
    with pytest.raises(Invalid, match="no such time"):
        plan_faults(households=3, start=MONDAY, end=MONDAY + timedelta(hours=2), resets=1, tz=SHANGHAI)
    with pytest.raises(Invalid, match="more households"):
        step_for(households=10, rate=1000)
    assert step_for(households=100, rate=50) == 8
    assert step_for(households=100, rate=50, speed=60) == 480


# --- provisioning and live sending -------------------------------------------------------------


def test_provision_makes_four_devices_per_household_and_a_roster_keeps_their_tokens(
    iw: IotWorld, tmp_path: Path
) -> None:
    made = provision(
        session=iw.session, actor=actor_for_user(iw.steward), households=2, org_id=iw.operator.id, seed=9
    )
    iw.session.commit()
    assert [h.code for h in made] == ["sim9-00001", "sim9-00002"]
    assert set(made[0].devices) == {"electricity_meter", "water_meter", "motion_sensor", "door_sensor"}
    assert set(made[0].devices["electricity_meter"].streams) == {"energy", "power"}
    assert made[0].devices["door_sensor"].token.startswith("zhishe_dev_")
    path = tmp_path / "roster.json"
    save_roster(path, made)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_roster(path) == made


def _count_readings(iw: IotWorld, households: list[SimHousehold]) -> int:
    ids = [i for h in households for d in h.devices.values() for i in d.streams.values()]
    iw.session.expire_all()
    return int(
        iw.session.scalar(select(func.count()).select_from(Reading).where(Reading.datastream_id.in_(ids)))
        or 0
    )


def test_sending_via_http_stores_every_reading(client: Any, iw: IotWorld) -> None:
    made = provision(
        session=iw.session, actor=actor_for_user(iw.steward), households=3, org_id=iw.operator.id, seed=3
    )
    iw.session.commit()
    expected = list(
        generate(
            households=3,
            start=DAY,
            end=DAY + timedelta(hours=8),
            seed=3,
            step=300,
            faults=plan_faults(households=3, start=DAY, end=DAY + timedelta(hours=8), seed=3, leaks=1),
        )
    )
    with clock.frozen(DAY + timedelta(days=1)):
        result = run(
            households=made,
            rate=100,
            via="http",
            client=client,
            start=DAY,
            duration=8 * 3600,
            speed=float("inf"),
            step=300,
            seed=3,
            faults={"leaks": 1},
            batch=50,
            threads=1,
        )
    assert result.errors == [] and result.failed == 0
    assert result.sent == len(expected)
    assert result.acknowledged == len(expected) and result.duplicates == 0 and result.rejected == 0
    assert result.requests >= len(expected) // 50
    assert [f.kind for f in result.faults] == ["leak"]
    assert _count_readings(iw, made) == len(expected)
    power = made[0].devices["electricity_meter"].streams["power"]
    last_power = [r for r in expected if r.household == 0 and r.key == "power"][-1]
    latest = iw.session.get(Latest, power)  # the hot table has the newest reading
    assert latest is not None and (latest.time, latest.value) == (last_power.time, last_power.value)


def test_a_replay_faster_than_real_time_must_end_in_the_past() -> None:
    household = SimHousehold(0, 1, "h", {})
    with clock.frozen(DAY), pytest.raises(Invalid, match="past start"):
        run(households=[household], rate=10, start=DAY, duration=3600, speed=60)
    with pytest.raises(Invalid, match="http or mqtt"):
        run(households=[household], rate=10, via="coap")


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.integration
def test_sending_via_mqtt_publishes_one_sensorthings_observation_per_reading() -> None:
    require_service("Mosquitto", _broker_up(), "nothing listens on 127.0.0.1:1883")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    base = 8_000_000_000 + datetime.now(UTC).microsecond * 100  # datastreams no server knows
    households = [
        SimHousehold(
            i,
            i + 1,
            f"h{i}",
            {
                kind: SimDevice(kind, i * 10 + n, f"h{i}-{n}", f"zhishe_dev_sim{i}{n}", {k: base + i * 10 + n * 2 + j for j, k in enumerate(keys)})
                for n, (kind, keys) in enumerate(
                    [
                        ("electricity_meter", ("energy", "power")),
                        ("water_meter", ("volume", "flow")),
                        ("motion_sensor", ("motion",)),
                        ("door_sensor", ("door",)),
                    ]
                )
            },
        )
        for i in range(2)
    ]  # fmt: skip
    expected = list(generate(households=2, start=DAY, end=DAY + timedelta(hours=3), seed=1, step=600))
    wanted = {
        (households[r.household].devices[r.device].streams[r.key], r.time.isoformat(), r.value)
        for r in expected
    }
    owner = {s: d.token for h in households for d in h.devices.values() for s in d.streams.values()}
    got: set[tuple[int, str, float]] = set()
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        token, stream = message.topic.split("/")[1], int(message.topic.split("(", 1)[1].split(")", 1)[0])
        body = orjson.loads(message.payload)
        if stream >= base and token == owner[stream]:  # each device publishes under its own token
            got.add((stream, body["phenomenonTime"], body["result"]))
        if got >= wanted:
            done.set()

    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = on_message
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe("devices/+/v1.1/+/Observations", qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        with clock.frozen(DAY + timedelta(days=1)):
            result = run(
                households=households,
                rate=10,
                via="mqtt",
                url="mqtt://127.0.0.1:1883",
                start=DAY,
                duration=3 * 3600,
                speed=float("inf"),
                step=600,
                seed=1,
            )
        assert result.sent == len(expected) == result.acknowledged
        assert done.wait(20), f"{len(wanted - got)} observations not seen"
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert got == wanted
