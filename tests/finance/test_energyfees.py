"""Energy-service fees: EV charging at the tariff in force plus a service fee, demand-response
incentives, idempotency on the source reference, and posting from energy events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finance.revenue_world import balanced, entries, fund, tariff
from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.events import Event
from zhishe.finance import energyfees, ledger


def test_a_charging_session_is_priced_at_the_tariff_plus_the_service_fee_and_paid_from_the_wallet(
    sw: ServicesWorld,
) -> None:
    tariff(sw)
    user = sw.users["res1"]
    fund(sw.session, user.id, 10_000)
    # 22:00-00:00 local: one hour flat (0.50) and one hour valley (0.30), 10 kWh spread evenly
    start = MONDAY.replace(hour=22)
    charge, new = energyfees.charge_ev(
        session=sw.session,
        actor=sw.actor("op-admin"),
        source_ref="cs-1",
        user_id=user.id,
        kwh_milli=10_000,
        started_at=start,
        ended_at=start + timedelta(hours=2),
    )
    sw.session.commit()
    assert new
    assert (charge.energy_fen, charge.service_fen, charge.total_fen) == (400, 800, 1_200)
    assert charge.detail["paid_from"] == "wallet"
    assert ledger.balance(sw.session, ledger.wallet(user.id)) == -8_800
    assert ledger.balance(sw.session, "Income:Energy:Charging") == -400
    assert ledger.balance(sw.session, "Income:Energy:Service") == -800
    before = entries(sw.session)
    again, new = energyfees.charge_ev(
        session=sw.session,
        actor=sw.actor("op-admin"),
        source_ref="cs-1",
        user_id=user.id,
        kwh_milli=99_000,
        started_at=start,
        ended_at=start + timedelta(hours=2),
    )
    assert not new and again.id == charge.id and entries(sw.session) == before  # a replay posts nothing
    assert balanced(sw.session)


def test_a_short_wallet_leaves_the_whole_charge_owed(sw: ServicesWorld) -> None:
    tariff(sw)
    user = sw.users["res2"]
    fund(sw.session, user.id, 100)
    start = MONDAY.replace(hour=12)
    charge, _ = energyfees.charge_ev(
        session=sw.session,
        actor=None,
        source_ref="cs-2",
        user_id=user.id,
        kwh_milli=2_000,
        started_at=start,
        ended_at=start + timedelta(minutes=30),
    )
    sw.session.commit()
    assert charge.total_fen == 100 + 160 and charge.detail["paid_from"] == "receivable"
    assert ledger.balance(sw.session, ledger.wallet(user.id)) == -100
    assert ledger.balance(sw.session, energyfees.resident_receivable(user.id)) == 260
    assert balanced(sw.session)


def test_an_incentive_is_paid_into_the_wallet_once(sw: ServicesWorld) -> None:
    user = sw.users["res3"]
    for _ in range(2):
        energyfees.pay_incentive(
            session=sw.session,
            actor=sw.actor("op-steward"),
            source_ref="dr-7",
            user_id=user.id,
            amount_fen=500,
        )
    sw.session.commit()
    assert ledger.balance(sw.session, ledger.wallet(user.id)) == -500
    assert ledger.balance(sw.session, "Expenses:Energy:DemandResponse") == 500
    assert balanced(sw.session)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("kwh_milli", {"kwh_milli": -5}),
        ("kwh_milli", {"kwh_milli": 1.5}),
        ("ended_at", {"hours": -1}),
        ("source_ref", {"source_ref": ""}),
    ],
)
def test_bad_charges_are_refused_and_post_nothing(
    sw: ServicesWorld, field: str, kwargs: dict[str, object]
) -> None:
    tariff(sw)
    start = MONDAY.replace(hour=12)
    hours = float(kwargs.pop("hours", 1))  # type: ignore[arg-type]
    given: dict[str, object] = {"source_ref": "cs-9", "kwh_milli": 1_000, **kwargs}
    with pytest.raises(Invalid) as refused:
        energyfees.charge_ev(
            session=sw.session,
            actor=sw.actor("op-admin"),
            user_id=sw.users["res1"].id,
            started_at=start,
            ended_at=start + timedelta(hours=hours),
            **given,  # type: ignore[arg-type]
        )
    assert refused.value.detail["field"] == field
    with pytest.raises(Invalid):
        energyfees.pay_incentive(
            session=sw.session, actor=None, source_ref="dr-x", user_id=sw.users["res1"].id, amount_fen=-100
        )
    sw.session.rollback()
    assert entries(sw.session) == 0


def test_without_a_tariff_charging_is_refused(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid):
        energyfees.charge_ev(
            session=sw.session,
            actor=None,
            source_ref="cs-3",
            user_id=sw.users["res1"].id,
            kwh_milli=1_000,
            started_at=MONDAY,
            ended_at=MONDAY + timedelta(hours=1),
        )
    sw.session.rollback()
    assert entries(sw.session) == 0


def test_energy_events_post_once_and_events_without_a_resident_are_ignored(sw: ServicesWorld) -> None:
    tariff(sw)
    user = sw.users["res4"]
    start = MONDAY.replace(hour=12)
    closed = Event(
        "energy.charging_session_closed",
        {
            "session_id": 41,
            "user_id": user.id,
            "kwh_milli": 1_000,
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=15)).isoformat(),
        },
    )
    energyfees.on_event(closed, sw.session)
    energyfees.on_event(closed, sw.session)  # replayed
    energyfees.on_event(
        Event(
            "energy.dr_incentive_due", {"event_id": 3, "site_id": 9, "user_id": user.id, "amount_fen": 300}
        ),
        sw.session,
    )
    energyfees.on_event(Event("energy.charging_session_closed", {"session_id": 42}), sw.session)
    sw.session.commit()
    rows = energyfees.list_charges(session=sw.session, actor=sw.actor("op-analyst"))
    assert sorted((c.kind, c.source_ref) for c in rows) == [
        ("dr_incentive", "dr:3:9"),
        ("ev_charging", "charging:41"),
    ]
    assert ledger.balance(sw.session, energyfees.resident_receivable(user.id)) == 50 + 80
    assert balanced(sw.session)


def test_residents_may_not_post_energy_charges(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        energyfees.pay_incentive(
            session=sw.session,
            actor=sw.actor("res1"),
            source_ref="x",
            user_id=sw.users["res1"].id,
            amount_fen=1,
        )
