"""Energy events reach the operator's ledger: a car leaving bills the resident who charged it, and
a demand-response report pays each household's incentive, once, in the same transaction."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import csrf_of, login
from iot.iot_world import DAY, IotWorld
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.audit.models import AuditEvent
from zhishe.energy import service as energy
from zhishe.energy.models import ChargingSession, DemandProgram
from zhishe.finance import ledger
from zhishe.finance.models import EnergyCharge, Entry
from zhishe.iot import history, ingest
from zhishe.iot import service as iot

#: Local evening, inside the tariff's flat period (07:00-23:00).
EVENING = DAY + timedelta(hours=18)
#: Demand-response history: 16 days before the event day (12 weekdays: enough for 10 of 10).
HISTORY_DAYS = 16
EVENT_DAY = DAY + timedelta(days=HISTORY_DAYS)


def _tariff(iw: IotWorld) -> None:
    """The operator's electricity tariff: 0.50 yuan/kWh from 07:00 to 23:00, 0.30 at night."""
    energy.create_tariff(
        session=iw.session,
        actor=actor_for_user(iw.steward),
        org_id=iw.operator.id,
        family="residential-electricity",
        carrier="electricity",
        name="2026",
        valid_from=date(2026, 1, 1),
        valid_to=None,
        definition={
            "prices": {"flat": "0.50", "valley": "0.30"},
            "schedules": [{"windows": [["flat", "07:00", "23:00"], ["valley", "23:00", "07:00"]]}],
            "tiers": [],
            "tier_mode": "surcharge",
            "cycle": "year",
        },
    )
    iw.session.commit()


def _park(iw: IotWorld) -> int:
    actor = actor_for_user(iw.steward)
    transformer = iot.create_site(
        session=iw.session,
        actor=actor,
        code="T-EV",
        kind="transformer",
        name="充电站变压器",
        properties={"limit_kw": 50},
    )
    park = iot.create_site(
        session=iw.session,
        actor=actor,
        code="P1",
        kind="charging_park",
        name="充电站",
        parent_id=transformer.id,
    )
    iw.session.commit()
    return park.id


def _fund(session: Session, user_id: int, fen: int) -> None:
    ledger.post(
        session, kind="top_up", stream="wallet", lines=[("Assets:Bank", fen), (ledger.wallet(user_id), -fen)]
    )
    session.commit()


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _balanced(session: Session) -> bool:
    return all(total == 0 for total in ledger.totals_by_currency(session).values())


def _arrive(client: Any, iw: IotWorld, park: int, **extra: Any) -> Any:
    body = {
        "arrival": EVENING.isoformat(),
        "departure": (EVENING + timedelta(hours=4)).isoformat(),
        "energy_kwh": 30,
        "max_kw": 11,
    } | extra
    return client.post(f"/api/v1/energy/charging/{park}/sessions", json=body, headers=iw.staff_headers)


def _leave(client: Any, iw: IotWorld, session_id: int, **body: Any) -> Any:
    return client.post(
        f"/api/v1/energy/charging/sessions/{session_id}/leave", json=body, headers=iw.staff_headers
    )


def test_a_resident_leaving_the_park_is_billed_once_from_the_wallet(client: Any, iw: IotWorld) -> None:
    _tariff(iw)
    park = _park(iw)
    resident = iw.residents[0]
    _fund(iw.session, resident.id, 10_000)
    with clock.frozen(EVENING):
        arrived = _arrive(client, iw, park, user_id=resident.id)
    assert arrived.status_code == 201, arrived.text
    car = arrived.json()["session"]
    assert car["user_id"] == resident.id
    with clock.frozen(EVENING + timedelta(hours=2)):
        # a price sent by the client is ignored: the server prices the session
        left = _leave(client, iw, car["id"], delivered_kwh=10, total_fen=1, energy_fen=1)
    assert left.status_code == 200, left.text
    assert left.json()["session"]["state"] == "left"
    charge = iw.session.scalars(select(EnergyCharge).where(EnergyCharge.kind == "ev_charging")).one()
    rate = charge.detail["service_fen_per_kwh"]
    assert (charge.source_ref, charge.user_id, charge.kwh_milli) == (
        f"charging:{car['id']}",
        resident.id,
        10_000,
    )
    assert charge.energy_fen == 500  # 10 kWh at 0.50 yuan in the flat period
    assert charge.service_fen == 10 * rate and charge.total_fen == 500 + 10 * rate
    assert charge.detail["paid_from"] == "wallet"
    assert datetime.fromisoformat(charge.detail["started_at"]) == EVENING
    assert datetime.fromisoformat(charge.detail["ended_at"]) == EVENING + timedelta(hours=2)
    assert ledger.balance(iw.session, ledger.wallet(resident.id)) == -(10_000 - charge.total_fen)
    assert ledger.balance(iw.session, "Income:Energy:Charging") == -500
    assert _balanced(iw.session)
    entries = _count(iw.session, Entry)
    with clock.frozen(EVENING + timedelta(hours=3)):
        again = _leave(client, iw, car["id"], delivered_kwh=20)
    assert again.status_code == 409
    assert _count(iw.session, Entry) == entries and _count(iw.session, EnergyCharge) == 1


def test_a_short_wallet_leaves_the_charge_owed(client: Any, iw: IotWorld) -> None:
    _tariff(iw)
    park = _park(iw)
    resident = iw.residents[1]
    with clock.frozen(EVENING):
        car = _arrive(client, iw, park, user_id=resident.id).json()["session"]
    with clock.frozen(EVENING + timedelta(hours=1)):
        assert _leave(client, iw, car["id"], delivered_kwh=4.2).status_code == 200
    charge = iw.session.scalars(select(EnergyCharge)).one()
    assert charge.kwh_milli == 4_200 and charge.detail["paid_from"] == "receivable"
    assert ledger.balance(iw.session, f"Assets:Receivable:Residents:U{resident.id}") == charge.total_fen
    assert ledger.balance(iw.session, ledger.wallet(resident.id)) == 0
    assert _balanced(iw.session)


def test_sessions_without_a_resident_or_without_energy_post_nothing(client: Any, iw: IotWorld) -> None:
    _tariff(iw)
    park = _park(iw)
    with clock.frozen(EVENING):
        anonymous = _arrive(client, iw, park).json()["session"]
        booked = _arrive(
            client,
            iw,
            park,
            user_id=iw.residents[0].id,
            arrival=(EVENING + timedelta(hours=1)).isoformat(),
            connector_id=2,
        ).json()["session"]
        assert anonymous["user_id"] is None and booked["state"] == "waiting"
    with clock.frozen(EVENING + timedelta(minutes=30)):
        assert _leave(client, iw, anonymous["id"], delivered_kwh=5).status_code == 200
        # a booking cancelled before the car came: nothing delivered, nothing billed
        assert _leave(client, iw, booked["id"]).status_code == 200
    assert _count(iw.session, EnergyCharge) == 0 and _count(iw.session, Entry) == 0


def test_a_driver_must_be_an_active_resident(client: Any, iw: IotWorld) -> None:
    park = _park(iw)
    with clock.frozen(EVENING):
        for user_id in (iw.steward.id, 999_999, True, str(iw.residents[0].id)):
            refused = _arrive(client, iw, park, user_id=user_id)
            assert refused.status_code == 422, refused.text
            assert "user_id" in refused.text
    assert _count(iw.session, ChargingSession) == 0


def test_a_session_that_cannot_be_priced_still_lets_the_car_leave_and_tells_the_operator(
    client: Any, iw: IotWorld
) -> None:
    park = _park(iw)
    with clock.frozen(EVENING):
        car = _arrive(client, iw, park, user_id=iw.residents[0].id).json()["session"]
    with clock.frozen(EVENING + timedelta(hours=1)):
        left = _leave(client, iw, car["id"], delivered_kwh=3)
    assert left.status_code == 200, left.text
    row = iw.session.get(ChargingSession, car["id"])
    iw.session.refresh(row)
    assert row is not None and row.state == "left"
    assert _count(iw.session, EnergyCharge) == 0 and _count(iw.session, Entry) == 0
    unbilled = iw.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "finance.energy.unbilled")
    ).all()
    assert [e.object_id for e in unbilled] == [str(car["id"])]
    assert "tariff" in unbilled[0].detail


def test_the_charging_page_takes_the_resident_charging(client: Any, iw: IotWorld) -> None:
    park = _park(iw)
    login(client, iw.steward.username)
    token = csrf_of(client, f"/energy/charging/{park}")
    with clock.frozen(EVENING):
        answer = client.post(
            f"/energy/charging/{park}",
            data={
                "csrf_token": token,
                "action": "arrive",
                "arrival": EVENING.replace(tzinfo=None).isoformat(timespec="minutes"),
                "hours": "4",
                "energy_kwh": "20",
                "max_kw": "7",
                "user_id": str(iw.residents[1].id),
            },
            follow_redirects=False,
        )
    assert answer.status_code == 303, answer.text
    assert iw.session.scalars(select(ChargingSession.user_id)).one() == iw.residents[1].id


# --- demand response ---------------------------------------------------------------------------


def _fill(iw: IotWorld, cuts: dict[int, float]) -> None:
    """Households 1-3 use 0.25 kWh a quarter hour, 0.75 from 18:00 to 22:00 (household i, i times
    as much); on the event day household i cuts ``cuts[i]`` kWh a quarter hour in the evening."""
    for i in (1, 2, 3):
        stream = iw.stream(f"H{i}-electricity", "energy")
        value = 1000.0
        readings = [ingest.Incoming(0, stream.id, DAY.isoformat(), value)]
        for d in range(HISTORY_DAYS + 1):
            for q in range(96):
                use = (0.75 if 72 <= q < 88 else 0.25) * i
                if d == HISTORY_DAYS and 72 <= q < 88:
                    use -= cuts.get(i, 0.0)
                value += use
                moment = DAY + timedelta(days=d, minutes=15 * (q + 1))
                readings.append(ingest.Incoming(len(readings), stream.id, moment.isoformat(), value))
        result = ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
        assert not result.rejected
    iw.session.commit()
    history.flush(session=iw.session)


def _program(client: Any, iw: IotWorld, **extra: Any) -> Any:
    return client.post(
        "/api/v1/energy/dr/programs",
        json={"org_id": iw.operator.id, "programName": "晚高峰削峰"} | extra,
        headers=iw.staff_headers,
    )


def test_a_reported_event_pays_each_residents_household_its_incentive_once(client: Any, iw: IotWorld) -> None:
    start = EVENT_DAY + timedelta(hours=18)
    h1, h2, h3 = iw.households[:3]  # residents 0 and 1 live in H1 and H2; nobody lives in H3
    with clock.frozen(start - timedelta(days=1)):
        program = _program(client, iw, incentive_fen_per_kwh=125)
        assert program.status_code == 201, program.text
        assert program.json()["incentive_fen_per_kwh"] == 125
        event = client.post(
            "/api/v1/energy/dr/events",
            json={
                "programID": int(program.json()["id"]),
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
                "target_kw": 1,
                "site_ids": [h1.id, h2.id, h3.id],
            },
            headers=iw.staff_headers,
        )
        assert event.status_code == 201, event.text
    event_id = int(event.json()["id"])
    with clock.frozen(EVENT_DAY + timedelta(days=1, hours=1)):
        # H1 sheds 0.2505 kWh in each of the 8 quarter hours: 2.004 kWh × 125 fen = 250.5, half to even 250
        _fill(iw, cuts={1: 0.2505, 3: 0.25})
        report = client.post(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.staff_headers)
        assert report.status_code == 201, report.text
        own = client.get(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.resident_headers[0])
    assert [(r["reduction_kwh"], r["incentive_fen"]) for r in own.json()["resources"]] == [(2.004, 250)]
    paid = iw.session.scalars(select(EnergyCharge).where(EnergyCharge.kind == "dr_incentive")).one()
    assert (paid.user_id, paid.total_fen) == (iw.residents[0].id, 250)
    assert paid.source_ref == f"dr:{event_id}:{h1.id}"
    assert ledger.balance(iw.session, ledger.wallet(iw.residents[0].id)) == -250
    assert ledger.balance(iw.session, ledger.wallet(iw.residents[1].id)) == 0  # H2 shed nothing
    assert ledger.balance(iw.session, "Expenses:Energy:DemandResponse") == 250
    assert _balanced(iw.session)
    entries = _count(iw.session, Entry)
    with clock.frozen(EVENT_DAY + timedelta(days=1, hours=2)):
        replay = client.post(f"/api/v1/energy/dr/events/{event_id}/report", headers=iw.staff_headers)
    assert replay.status_code == 201, replay.text
    assert _count(iw.session, Entry) == entries and _count(iw.session, EnergyCharge) == 1
    assert ledger.balance(iw.session, ledger.wallet(iw.residents[0].id)) == -250


def test_an_event_of_a_programme_without_incentive_pays_nothing(client: Any, iw: IotWorld) -> None:
    start = EVENT_DAY + timedelta(hours=18)
    with clock.frozen(start - timedelta(days=1)):
        program = _program(client, iw)
        assert program.json()["incentive_fen_per_kwh"] is None
        event = client.post(
            "/api/v1/energy/dr/events",
            json={
                "programID": int(program.json()["id"]),
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
                "target_kw": 1,
                "site_ids": [iw.households[0].id],
            },
            headers=iw.staff_headers,
        )
    with clock.frozen(EVENT_DAY + timedelta(days=1, hours=1)):
        _fill(iw, cuts={1: 0.25})
        report = client.post(
            f"/api/v1/energy/dr/events/{event.json()['id']}/report", headers=iw.staff_headers
        )
    assert report.status_code == 201, report.text
    assert _count(iw.session, EnergyCharge) == 0 and _count(iw.session, Entry) == 0


def test_a_bad_incentive_rate_is_refused_naming_the_field(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY):
        for rate in (0, -5, 10_001, 1.5, "many", True):
            refused = _program(client, iw, incentive_fen_per_kwh=rate)
            assert refused.status_code == 422, (rate, refused.text)
            assert "incentive_fen_per_kwh" in refused.text
        login(client, iw.steward.username)
        page = client.post(
            "/energy/dr",
            data={
                "csrf_token": csrf_of(client, "/energy/dr"),
                "action": "program",
                "name": "p",
                "incentive_fen_per_kwh": "1.5",
            },
        )
        assert page.status_code == 422
        made = client.post(
            "/energy/dr",
            data={
                "csrf_token": csrf_of(client, "/energy/dr"),
                "action": "program",
                "name": "夏季",
                "incentive_fen_per_kwh": "300",
            },
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
    assert iw.session.scalars(select(DemandProgram.incentive_fen_per_kwh)).all() == [300]
