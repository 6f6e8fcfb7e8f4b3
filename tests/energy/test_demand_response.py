"""Demand response end to end: a programme, an event with notified households who may opt out,
and a report of the reduction against the high-10-of-10 baseline, in OpenADR 3 shapes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from iot.iot_world import DAY, IotWorld
from zhishe.core import clock
from zhishe.core.notifications.models import Notification
from zhishe.iot import history, ingest

#: 45 days of history before the event day, DAY being a Monday.
HISTORY_DAYS = 45
EVENT_DAY = DAY + timedelta(days=HISTORY_DAYS)  # a Thursday


def _load(day_offset: int, quarter: int, household: int, *, cut: bool) -> float:
    """kWh per quarter hour: 0.25 at night, 0.75 from 18:00 to 22:00, household i uses i times more;
    on the event day, taking part, the evening is cut to 0.5."""
    evening = 72 <= quarter < 88
    base = 0.75 if evening else 0.25
    if cut and evening:
        base = 0.5
    return base * household


def _fill(iw: IotWorld, opted_out: set[int]) -> None:
    for i in range(1, 7):
        stream = iw.stream(f"H{i}-electricity", "energy")
        value = 1000.0
        readings = [ingest.Incoming(0, stream.id, DAY.isoformat(), value)]
        for d in range(HISTORY_DAYS + 1):
            for q in range(96):
                value += _load(d, q, i, cut=d == HISTORY_DAYS and i not in opted_out)
                moment = DAY + timedelta(days=d, minutes=15 * (q + 1))
                readings.append(ingest.Incoming(len(readings), stream.id, moment.isoformat(), value))
        result = ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
        assert not result.rejected
    iw.session.commit()
    history.flush(session=iw.session)


def test_an_event_is_announced_opted_out_and_reported_against_the_baseline(client: Any, iw: IotWorld) -> None:
    start = EVENT_DAY + timedelta(hours=18)
    with clock.frozen(start - timedelta(days=1)):
        program = client.post(
            "/api/v1/energy/dr/programs",
            json={"org_id": iw.operator.id, "programName": "夏季削峰"},
            headers=iw.staff_headers,
        )
        assert program.status_code == 201, program.text
        event = client.post(
            "/api/v1/energy/dr/events",
            json={
                "programID": int(program.json()["id"]),
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
                "target_kw": 10,
                "site_ids": [h.id for h in iw.households],
            },
            headers=iw.staff_headers,
        )
        assert event.status_code == 201, event.text
        body = event.json()
        assert body["intervalPeriod"]["duration"] == "PT2H"
        assert body["intervals"][0]["payloads"][0] == {
            "type": "DISPATCH_SETPOINT_RELATIVE",
            "values": [-10.0],
        }
        notified = iw.session.scalars(
            select(Notification.user_id).where(Notification.kind == "energy.dr")
        ).all()
        assert sorted(notified) == sorted(r.id for r in iw.residents)
        event_id = int(body["id"])
        # Resident 1 lives in H2 and opts out; they cannot opt out H1.
        assert (
            client.post(
                f"/api/v1/energy/dr/events/{event_id}/opt-out",
                json={"site_id": iw.households[0].id},
                headers=iw.resident_headers[1],
            ).status_code
            == 403
        )
        out = client.post(
            f"/api/v1/energy/dr/events/{event_id}/opt-out",
            json={"site_id": iw.households[1].id},
            headers=iw.resident_headers[1],
        )
        assert out.status_code == 200 and out.json()["optedOut"] == [str(iw.households[1].id)]
        early = client.post(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.staff_headers)
        assert early.status_code == 409
    with clock.frozen(EVENT_DAY + timedelta(days=1, hours=1)):
        _fill(iw, opted_out={2})
        late = client.post(
            f"/api/v1/energy/dr/events/{event_id}/opt-out",
            json={"site_id": iw.households[0].id},
            headers=iw.resident_headers[0],
        )
        assert late.status_code == 409
        report = client.post(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.staff_headers)
    assert report.status_code == 201, report.text
    summary = report.json()["summary"]
    # Taking part: households 1, 3, 4, 5, 6 (sum 19); each cut 0.25·i kWh per quarter = i kW.
    assert summary["households"] == 5 and summary["opted_out"] == 1
    assert summary["mean_reduction_kw"] == pytest.approx(19.0)
    assert summary["reduction_kwh"] == pytest.approx(38.0)
    assert summary["target_met"] is True
    assert "highest 10 of the last 10 similar weekdays" in summary["method"]
    assert report.json()["resources"] == []  # no household consented to showing its own data
    with clock.frozen(EVENT_DAY + timedelta(days=1, hours=2)):
        own = client.get(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.resident_headers[0]).json()
    assert [r["resourceName"] for r in own["resources"]] == [str(iw.households[0].id)]
    first = own["resources"][0]["intervals"][0]["payloads"]
    assert first[0] == {"type": "BASELINE", "values": [3.0]} and first[1] == {
        "type": "DEMAND",
        "values": [2.0],
    }


def test_hostile_events_are_refused_with_a_reason(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(hours=12)):
        program = int(
            client.post(
                "/api/v1/energy/dr/programs",
                json={"org_id": iw.operator.id, "programName": "p"},
                headers=iw.staff_headers,
            ).json()["id"]
        )
        base = {"programID": program, "target_kw": 5, "site_ids": [iw.households[0].id]}
        cases = [
            (
                {
                    "start": (DAY + timedelta(hours=18)).isoformat(),
                    "end": (DAY + timedelta(hours=17)).isoformat(),
                },
                "end after",
            ),
            (
                {
                    "start": (DAY + timedelta(hours=11)).isoformat(),
                    "end": (DAY + timedelta(hours=13)).isoformat(),
                },
                "future",
            ),
            (
                {
                    "start": (DAY + timedelta(hours=18, minutes=7)).isoformat(),
                    "end": (DAY + timedelta(hours=19)).isoformat(),
                },
                "quarter hour",
            ),
            (
                {
                    "start": (DAY + timedelta(hours=23)).isoformat(),
                    "end": (DAY + timedelta(hours=25)).isoformat(),
                },
                "same local day",
            ),
        ]
        for window, words in cases:
            answer = client.post("/api/v1/energy/dr/events", json=base | window, headers=iw.staff_headers)
            assert answer.status_code == 422 and words in answer.json()["error"]["message"], answer.text
        window = {
            "start": (DAY + timedelta(hours=18)).isoformat(),
            "end": (DAY + timedelta(hours=19)).isoformat(),
        }
        transformer = client.post(
            "/api/v1/energy/dr/events",
            json=base | window | {"site_ids": [iw.transformer.id]},
            headers=iw.staff_headers,
        )
        assert transformer.status_code == 422 and "not a household" in transformer.json()["error"]["message"]
        resident = client.post("/api/v1/energy/dr/events", json=base | window, headers=iw.resident_headers[0])
        assert resident.status_code == 403
