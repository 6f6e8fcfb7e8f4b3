"""A problem reported by the public reaches the owner with the reporter's contact, and no one else."""

from __future__ import annotations

from opendata.open_world import OpenWorld


def test_the_owner_sees_the_public_reporters_contact(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    made = ow.client.post(
        "/opendata/api/v1/datasets/air/problems",
        json={"kind": "value", "column": "pm25", "problem": "东四 的 PM2.5 偏高", "contact": "13900000000"},
    )
    assert made.status_code == 201, made.text
    issue = made.json()["issue"]
    page = ow.client.get(f"/exchange/issues/{issue}", headers=ow.h("env.steward"))
    assert page.status_code == 200 and "13900000000" in page.text and "东四 的 PM2.5 偏高" in page.text
    api = ow.client.get(f"/api/v1/exchange/issues/{issue}", headers=ow.h("env.steward"))
    assert api.status_code == 200 and api.json()["reporter_contact"] == "13900000000"
    assert api.json()["reporter"] == "public" and api.json()["column"] == "pm25"
    other = ow.client.get(f"/api/v1/exchange/issues/{issue}", headers=ow.h("water.steward"))
    assert other.status_code in {403, 404}
    # the public's view of the dataset never shows it
    assert "13900000000" not in ow.client.get("/opendata/datasets/air").text
