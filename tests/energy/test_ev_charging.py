"""EV charging at a park end to end: arrivals and departures re-plan under the transformer's limit
minus the base load, a battery shaves the peak, and the plan goes out as OCPP 1.6 profiles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from iot.iot_world import DAY, IotWorld
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.iot import service as iot


def _park(iw: IotWorld, limit_kw: float, *, battery: bool = False) -> int:
    actor = actor_for_user(iw.steward)
    transformer = iot.create_site(
        session=iw.session,
        actor=actor,
        code="T-EV",
        kind="transformer",
        name="充电站变压器",
        properties={"limit_kw": limit_kw},
    )
    park = iot.create_site(
        session=iw.session,
        actor=actor,
        code="P1",
        kind="charging_park",
        name="充电站",
        parent_id=transformer.id,
    )
    if battery:
        iot.create_site(
            session=iw.session,
            actor=actor,
            code="B1",
            kind="battery",
            name="储能",
            parent_id=transformer.id,
            properties={"capacity_kwh": 100, "max_charge_kw": 25, "max_discharge_kw": 25},
        )
    iw.session.commit()
    return park.id


def _car(
    client: Any, iw: IotWorld, park: int, arrive: datetime, hours: float, kwh: float, kw: float, **extra: Any
) -> Any:
    body = {
        "arrival": arrive.isoformat(),
        "departure": (arrive + timedelta(hours=hours)).isoformat(),
        "energy_kwh": kwh,
        "max_kw": kw,
    } | extra
    return client.post(f"/api/v1/energy/charging/{park}/sessions", json=body, headers=iw.staff_headers)


def test_arrivals_replan_within_the_limit_and_share_a_shortfall(client: Any, iw: IotWorld) -> None:
    park = _park(iw, 15.0)
    now = DAY + timedelta(hours=18)
    with clock.frozen(now):
        first = _car(client, iw, park, now, 4, 30, 11, connector_id=1, transaction_id=7, phase="L1L2L3")
        assert first.status_code == 201, first.text
        plan = first.json()["plan"]
        assert plan["energy_kwh"] == pytest.approx(30.0, abs=0.01)
        second = _car(client, iw, park, now, 4, 60, 11, connector_id=2, transaction_id=8, phase="L1L2L3")
        plan = second.json()["plan"]
    # 15 kW for 4 h = 60 kWh, for 30 + 44 the cars could take (11 kW × 4 h caps the second at 44).
    assert plan["energy_kwh"] == pytest.approx(60.0, abs=0.05)
    assert all(ev <= 15.0 + 1e-6 for ev in plan["ev_load_kw"])
    shares = sorted(s["fraction_served"] for s in plan["sessions"])
    assert shares[0] > 0.5  # the shortfall is shared, not all on one car
    with clock.frozen(now + timedelta(hours=1)):
        session_id = first.json()["session"]["id"]
        left = client.post(
            f"/api/v1/energy/charging/sessions/{session_id}/leave", json={}, headers=iw.staff_headers
        )
        assert left.status_code == 200
        assert left.json()["session"]["state"] == "left"
        assert left.json()["session"]["delivered_kwh"] > 0
        remaining = left.json()["plan"]["sessions"]
        assert [s["session"] for s in remaining] == [second.json()["session"]["id"]]
        profiles = client.get(f"/api/v1/energy/charging/{park}/ocpp", headers=iw.staff_headers)
    assert profiles.status_code == 200
    [profile] = profiles.json()
    request = profile["request"]
    assert request["connectorId"] == 2
    charging_profile = request["csChargingProfiles"]
    assert (
        charging_profile["chargingProfilePurpose"] == "TxProfile" and charging_profile["transactionId"] == 8
    )
    schedule = charging_profile["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "W" and schedule["chargingSchedulePeriod"][0]["startPeriod"] == 0
    assert max(p["limit"] for p in schedule["chargingSchedulePeriod"]) <= 11_000


def test_the_base_load_and_a_battery_are_planned_with_the_cars(client: Any, iw: IotWorld) -> None:
    park = _park(iw, 30.0, battery=True)
    now = DAY + timedelta(hours=18)
    with clock.frozen(now):
        answer = _car(client, iw, park, now, 2, 60, 40, phase="L1L2L3")
    plan = answer.json()["plan"]
    assert plan["battery"] is not None
    # Without the battery the cars could take 30 kW × 2 h = 60 kWh only at the limit; the battery adds headroom.
    grid = plan["grid_load_kw"]
    assert max(grid) <= 30.0 + 1e-6
    assert plan["energy_kwh"] == pytest.approx(60.0, abs=0.1)


def test_bad_sessions_are_refused_and_households_cannot_plan(client: Any, iw: IotWorld) -> None:
    park = _park(iw, 20.0)
    now = DAY + timedelta(hours=18)
    with clock.frozen(now):
        backwards = _car(client, iw, park, now, -1, 10, 7)
        assert backwards.status_code == 422 and "departure" in backwards.text
        phase = _car(client, iw, park, now, 2, 10, 7, phase="L4")
        assert phase.status_code == 422 and "phase" in phase.json()["error"]["message"]
        household = client.post(
            f"/api/v1/energy/charging/{iw.households[0].id}/sessions",
            json={
                "arrival": now.isoformat(),
                "departure": (now + timedelta(hours=1)).isoformat(),
                "energy_kwh": 5,
                "max_kw": 7,
            },
            headers=iw.staff_headers,
        )
        assert household.status_code == 422 and "charging park" in household.json()["error"]["message"]
        resident = (
            _car(client, iw, park, now, 2, 10, 7)
            if False
            else client.post(f"/api/v1/energy/charging/{park}/plan", headers=iw.resident_headers[0])
        )
        assert resident.status_code == 403
