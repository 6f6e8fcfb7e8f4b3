"""The simulator's injected faults are found by the detectors through the whole platform (readings
stored, flushed and rolled up), and a fortnight without faults raises nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from iot.iot_world import DAY
from zhishe.core import clock
from zhishe.core.accounts.service import actor_for_user
from zhishe.energy import alerts, detection
from zhishe.energy.models import Alert
from zhishe.iot import history, ingest, simulate
from zhishe.iot import service as iot
from zhishe.iot.models import Device

HOUSEHOLDS = 5
DAYS = 16
SEED = 11

pytestmark = pytest.mark.slow


def _world(world: Any) -> tuple[Any, list[simulate.SimHousehold]]:
    operator = world.org("op", kind="operator")
    steward = world.user("op-steward", operator, role="steward")
    session = world.session
    homes = simulate.provision(
        session=session, actor=actor_for_user(steward), households=HOUSEHOLDS, org_id=operator.id, seed=SEED
    )
    for home in homes:
        iot.get_site_or_raise(session=session, site_id=home.site_id).care_enrolled = True
    session.commit()
    return session, homes


def _load(session: Any, homes: list[simulate.SimHousehold], faults: list[simulate.Fault]) -> None:
    devices = {d.id: d for d in session.scalars(select(Device))}
    batches: dict[tuple[int, str], list[ingest.Incoming]] = defaultdict(list)
    for r in simulate.generate(
        households=HOUSEHOLDS, start=DAY, end=DAY + timedelta(days=DAYS), seed=SEED, step=900, faults=faults
    ):
        device = homes[r.household].devices[r.device]
        batch = batches[(r.household, r.device)]
        batch.append(ingest.Incoming(len(batch), device.streams[r.key], r.time, r.value))
    for (household, kind), batch in batches.items():
        result = ingest.store(
            session=session, readings=batch, device=devices[homes[household].devices[kind].device_id]
        )
        assert not result.rejected, result.rejected[:3]
    session.commit()
    history.flush(session=session)


def _watch(session: Any, homes: list[simulate.SimHousehold], start: Any, end: Any) -> None:
    """Run the detectors every hour over [start, end), as the worker would every few minutes."""
    moment = start
    sites = [iot.get_site_or_raise(session=session, site_id=h.site_id) for h in homes]
    while moment < end:
        for site in sites:
            found, _ = detection.run_site(session, site, moment)
            alerts.raise_alerts(session=session, site=site, found=found)
        moment += timedelta(hours=1)
    session.commit()


def test_injected_leak_reset_and_inactivity_are_detected_and_nothing_else(world: Any) -> None:
    session, homes = _world(world)
    last = DAY + timedelta(days=DAYS - 1)  # two weeks of habits to learn before the faults
    faults = simulate.plan_faults(
        households=HOUSEHOLDS,
        start=last,
        end=DAY + timedelta(days=DAYS) - timedelta(hours=2),
        seed=SEED,
        leaks=1,
        resets=1,
        inactive=1,
    )
    assert {f.kind for f in faults} == {"leak", "counter_reset", "inactive"}
    with clock.frozen(DAY + timedelta(days=DAYS)):
        _load(session, homes, faults)
        _watch(session, homes, last, DAY + timedelta(days=DAYS))
    raised = session.scalars(select(Alert)).all()
    found = {(a.kind, a.site_id) for a in raised}
    expected = {
        (
            {"leak": "leak", "counter_reset": "counter_reset", "inactive": "inactivity"}[f.kind],
            homes[f.household].site_id,
        )
        for f in faults
    }
    assert expected <= found, (expected, [(a.kind, a.site_id, a.reason, a.params) for a in raised])
    unexpected = [
        (a.kind, a.site_id, a.reason, a.params) for a in raised if (a.kind, a.site_id) not in expected
    ]
    assert unexpected == []


def test_a_fortnight_without_faults_raises_no_alert(world: Any) -> None:
    session, homes = _world(world)
    with clock.frozen(DAY + timedelta(days=DAYS)):
        _load(session, homes, [])
        _watch(session, homes, DAY + timedelta(days=DAYS - 1), DAY + timedelta(days=DAYS))
    raised = session.scalars(select(Alert)).all()
    assert [(a.kind, a.site_id, a.reason, a.params) for a in raised] == []
