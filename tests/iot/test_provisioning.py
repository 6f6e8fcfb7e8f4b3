"""Provisioning sites and devices through the API, a CSV import and the admin pages; who sees what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from helpers import csrf_of, login
from iot.iot_world import IotWorld
from zhishe.core.audit.models import AuditEvent


def test_a_device_gets_the_datastreams_of_its_kind_and_a_token_shown_once(client: Any, iw: IotWorld) -> None:
    site = iw.households[0]
    answer = client.post(
        "/api/v1/iot/devices",
        json={"site_id": site.id, "code": "H1-gas", "kind": "gas_meter", "room": "kitchen"},
        headers=iw.staff_headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["token"].startswith("zhishe_dev_")
    assert [(s["key"], s["kind"], s["unit_symbol"]) for s in body["datastreams"]] == [
        ("volume", "cumulative", "m3")
    ]
    listed = client.get(f"/api/v1/iot/sites/{site.id}/devices", headers=iw.staff_headers).json()
    assert all("token" not in d for d in listed)
    assert {d["code"] for d in listed} >= {"H1-gas", "H1-electricity"}


def test_csv_import_is_all_or_nothing_and_names_the_bad_row(client: Any, iw: IotWorld) -> None:
    bad = "site,code,kind\nH1,H1-door,door_sensor\nH9,H9-door,door_sensor\n"
    answer = client.post("/api/v1/iot/devices/import", content=bad.encode(), headers=iw.staff_headers)
    assert answer.status_code == 422 and "row 3" in answer.json()["error"]["message"]
    listed = client.get(f"/api/v1/iot/sites/{iw.households[0].id}/devices", headers=iw.staff_headers).json()
    assert "H1-door" not in {d["code"] for d in listed}
    good = "\ufeffsite,code,kind,room\nH1,H1-door,door_sensor,front door\nH2,H2-door,door_sensor,front door\n"
    answer = client.post("/api/v1/iot/devices/import", content=good.encode(), headers=iw.staff_headers)
    assert answer.status_code == 201
    assert [d["code"] for d in answer.json()] == ["H1-door", "H2-door"]
    assert all(d["token"].startswith("zhishe_dev_") for d in answer.json())


def test_hostile_provisioning_input_is_refused_with_a_reason(client: Any, iw: IotWorld) -> None:
    site = iw.households[0]
    cases = [
        ({"site_id": site.id, "code": "x y", "kind": "gas_meter"}, "code"),
        ({"site_id": site.id, "code": "ok", "kind": "toaster"}, "kind"),
        ({"site_id": site.id, "code": "H1-electricity", "kind": "gas_meter"}, "already exists"),
        ({"site_id": site.id, "code": "ok2", "kind": "gas_meter", "phase": "L9"}, "phase"),
    ]
    for body, words in cases:
        answer = client.post("/api/v1/iot/devices", json=body, headers=iw.staff_headers)
        assert answer.status_code in (409, 422), (body, answer.text)
        assert words in answer.text
    assert (
        client.post(
            "/api/v1/iot/sites", json={"code": "S", "kind": "castle", "name": "x"}, headers=iw.staff_headers
        ).status_code
        == 422
    )


def test_a_resident_sees_only_their_own_household(client: Any, iw: IotWorld) -> None:
    mine, other = iw.households[0], iw.households[2]
    headers = iw.resident_headers[0]
    sites = client.get("/api/v1/iot/sites", headers=headers).json()["items"]
    assert [s["code"] for s in sites] == [mine.code]
    assert client.get(f"/api/v1/iot/sites/{other.id}/devices", headers=headers).status_code == 403
    assert client.get(f"/api/v1/iot/sites/{mine.id}/devices", headers=headers).status_code == 200
    assert (
        client.post(
            "/api/v1/iot/devices",
            json={"site_id": mine.id, "code": "mine", "kind": "gas_meter"},
            headers=headers,
        ).status_code
        == 403
    )


def test_the_operator_sees_household_readings_only_with_consent(client: Any, iw: IotWorld) -> None:
    household = iw.households[0]
    assert client.get(f"/api/v1/iot/sites/{household.id}/latest", headers=iw.staff_headers).status_code == 403
    consent = client.post(
        f"/api/v1/iot/sites/{household.id}/consent", json={"detail": True}, headers=iw.resident_headers[0]
    )
    assert consent.status_code == 200 and consent.json()["detail_consent"] is True
    assert client.get(f"/api/v1/iot/sites/{household.id}/latest", headers=iw.staff_headers).status_code == 200
    # Only a resident of the household may give its consent.
    assert (
        client.post(
            f"/api/v1/iot/sites/{household.id}/consent", json={"detail": False}, headers=iw.staff_headers
        ).status_code
        == 403
    )
    reads = iw.session.scalars(select(AuditEvent).where(AuditEvent.action == "iot.site.read")).all()
    assert reads, "reads of internal site data are audited"


def test_the_admin_page_provisions_a_device_and_shows_its_token_once(client: Any, iw: IotWorld) -> None:
    login(client, "op-steward")
    site = iw.households[1]
    page = client.get(f"/iot/sites/{site.id}")
    assert page.status_code == 200 and "H2-electricity" in page.text
    token = csrf_of(client, f"/iot/sites/{site.id}")
    answer = client.post(
        f"/iot/sites/{site.id}",
        data={
            "csrf_token": token,
            "action": "device",
            "code": "H2-env",
            "kind": "env_sensor",
            "room": "living room",
        },
    )
    assert answer.status_code == 200 and 'id="new-token"' in answer.text and "zhishe_dev_" in answer.text
    again = client.get(f"/iot/sites/{site.id}")
    shown = answer.text.split('<code class="token">', 1)[1].split("<", 1)[0]
    assert "H2-env" in again.text and 'id="new-token"' not in again.text and shown not in again.text
