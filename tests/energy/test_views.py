"""A household's own energy and cost, and the operator's community view, through the API and pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from helpers import login
from iot.iot_world import DAY, IotWorld
from zhishe.core import clock
from zhishe.iot import history, ingest
from zhishe.iot import service as iot

#: Peak 08:00-22:00 at 0.6 CNY, valley 22:00-08:00 at 0.3 CNY; yearly tiers add 0.05 above 2,760 kWh.
TARIFF = {
    "prices": {"peak": "0.6", "valley": "0.3"},
    "schedules": [{"windows": [["peak", "08:00", "22:00"], ["valley", "22:00", "08:00"]]}],
    "tiers": [{"up_to": "2760", "amount": "0"}, {"up_to": None, "amount": "0.05"}],
    "tier_mode": "surcharge",
    "cycle": "year",
}


def _fill(iw: IotWorld, days: int = 2) -> None:
    """Every household uses 0.25·i kWh per quarter hour, i its number, for ``days`` days."""
    for i in range(1, 7):
        stream = iw.stream(f"H{i}-electricity", "energy")
        readings = [
            ingest.Incoming(q, stream.id, (DAY + timedelta(minutes=15 * q)).isoformat(), 1000 + 0.25 * i * q)
            for q in range(96 * days + 1)
        ]
        ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
    iw.session.commit()
    history.flush(session=iw.session)


def test_a_household_sees_its_load_use_and_cost_under_the_tariff(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=2, hours=1)):
        _fill(iw)
        created = client.post(
            "/api/v1/energy/tariffs",
            json={
                "org_id": iw.operator.id,
                "family": "res-elec",
                "carrier": "electricity",
                "name": "2026",
                "valid_from": "2026-01-01",
                "definition": TARIFF,
            },
            headers=iw.staff_headers,
        )
        assert created.status_code == 201, created.text
        day = (DAY + timedelta(days=1)).date().isoformat()
        answer = client.get(
            f"/api/v1/energy/households/{iw.households[0].id}",
            params={"day": day},
            headers=iw.resident_headers[0],
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["today_kwh"] == pytest.approx(24.0)  # 96 × 0.25
    assert {p["kw"] for p in body["load_kw"]} == {1.0}
    # 14 peak hours × 1 kWh × 0.6 + 10 valley hours × 1 kWh × 0.3 = 8.40 + 3.00, all in the first tier
    assert Decimal(body["cost_today"]["total"]) == Decimal("11.40")
    assert {(line["period"], line["amount"]) for line in body["cost_today"]["lines"]} == {
        ("peak", "8.40"),
        ("valley", "3.00"),
    }
    assert body["band"]["households"] == 6 and body["band"]["mine"] == pytest.approx(24.0)
    assert [d["amount"] for d in body["daily"]["electricity"]][-2:] == pytest.approx([24.0, 24.0])


def test_an_overlapping_tariff_is_refused_naming_both(client: Any, iw: IotWorld) -> None:
    body = {
        "org_id": iw.operator.id,
        "family": "res-elec",
        "carrier": "electricity",
        "name": "A",
        "valid_from": "2026-01-01",
        "definition": TARIFF,
    }
    assert client.post("/api/v1/energy/tariffs", json=body, headers=iw.staff_headers).status_code == 201
    again = client.post(
        "/api/v1/energy/tariffs",
        json=body | {"name": "B", "valid_from": "2026-06-01"},
        headers=iw.staff_headers,
    )
    assert again.status_code == 422 and "overlap" in again.json()["error"]["message"]
    bad = client.post(
        "/api/v1/energy/tariffs",
        json=body
        | {
            "family": "other",
            "definition": {
                "prices": {"peak": "0.6"},
                "schedules": [{"windows": [["peak", "08:00", "20:00"]]}],
            },
        },
        headers=iw.staff_headers,
    )
    assert bad.status_code == 422


def test_the_community_view_builds_the_transformer_load_from_households(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=2, hours=1)):
        _fill(iw)
        answer = client.get(
            f"/api/v1/energy/community/{iw.transformer.id}",
            params={"day": DAY.date().isoformat()},
            headers=iw.staff_headers,
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["households"] == 6 and body["limit_kw"] == 400
    assert body["peak_kw"] == pytest.approx(21.0)  # (1+2+…+6) × 0.25 kWh per quarter × 4
    assert body["load_factor"] == pytest.approx(1.0)
    assert body["flows_kwh"]["households"] == pytest.approx(21.0 * 24)
    resident = client.get(f"/api/v1/energy/community/{iw.transformer.id}", headers=iw.resident_headers[0])
    assert resident.status_code == 403


def test_the_household_and_community_pages_render(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=1, hours=1)):
        _fill(iw, days=1)
        login(client, "resident0")
        home = client.get(f"/energy/home/{iw.households[0].id}?day={DAY.date().isoformat()}")
        assert home.status_code == 200 and 'id="load-chart"' in home.text and "24" in home.text
        assert client.get(f"/energy/home/{iw.households[2].id}").status_code == 403
        login(client, "op-steward")
        page = client.get(f"/energy/community/{iw.transformer.id}?day={DAY.date().isoformat()}")
        assert page.status_code == 200 and 'id="community-chart"' in page.text
        assert client.get(f"/energy/home/{iw.households[0].id}").status_code == 403  # no consent


def test_the_demand_response_and_charging_pages_work_without_javascript(client: Any, iw: IotWorld) -> None:
    from helpers import csrf_of
    from zhishe.core.accounts.service import actor_for_user

    actor = actor_for_user(iw.steward)
    park = iot.create_site(
        session=iw.session,
        actor=actor,
        code="P9",
        kind="charging_park",
        name="充电站",
        parent_id=iw.transformer.id,
    )
    iw.session.commit()
    with clock.frozen(DAY + timedelta(hours=10)):
        login(client, "op-steward")
        token = csrf_of(client, "/energy/dr")
        assert client.post(
            "/energy/dr", data={"csrf_token": token, "action": "program", "name": "夏季削峰"}
        ).status_code in (200, 303)
        page = client.get("/energy/dr")
        program = page.text.split('<option value="', 1)[1].split('"', 1)[0]
        announced = client.post(
            "/energy/dr",
            data={
                "csrf_token": token,
                "action": "event",
                "program": program,
                "name": "晚高峰",
                "start": "2026-11-02T18:00",
                "hours": "2",
                "target_kw": "10",
                "transformer": str(iw.transformer.id),
            },
        )
        assert announced.status_code in (200, 303), announced.text
        listed = client.get("/energy/dr")
        assert "晚高峰" in listed.text
        bad = client.post(
            "/energy/dr",
            data={
                "csrf_token": token,
                "action": "event",
                "program": program,
                "start": "soon",
                "hours": "2",
                "target_kw": "1",
                "transformer": str(iw.transformer.id),
            },
        )
        assert bad.status_code == 422 and "start must be" in bad.text
        login(client, "resident0")
        home = client.get(f"/energy/home/{iw.households[0].id}")
        assert "晚高峰" in home.text and ("Opt out" in home.text or "退出" in home.text)
        event_id = home.text.split('name="event_id" value="', 1)[1].split('"', 1)[0]
        out = client.post(
            f"/energy/home/{iw.households[0].id}/opt-out",
            data={"csrf_token": csrf_of(client, f"/energy/home/{iw.households[0].id}"), "event_id": event_id},
        )
        assert out.status_code in (200, 303)
        login(client, "op-steward")
        token = csrf_of(client, f"/energy/charging/{park.id}")
        arrived = client.post(
            f"/energy/charging/{park.id}",
            data={
                "csrf_token": token,
                "action": "arrive",
                "arrival": "2026-11-02T10:00",
                "hours": "6",
                "energy_kwh": "30",
                "max_kw": "7",
                "phase": "L1",
            },
        )
        assert arrived.status_code in (200, 303), arrived.text
        charging = client.get(f"/energy/charging/{park.id}")
        assert 'id="charging-chart"' in charging.text and "30.0" in charging.text
