"""The demo community's meters and energy services, made through the platform's own services.

One transformer feeds ``HOUSEHOLDS`` simulated households (electricity and water meters, a kitchen
motion sensor and a front-door sensor each), a charging park with three cars, a battery and a PV
array. Three weeks of readings come from the simulator (``zhishe.iot.simulate``: the weekly shape
of the real England and Wales demand, scaled per household), with a leak, a counter reset and an
inactive resident injected in the last two days, so that the alert queue has something to show.
The demo's resident logins live in the first households; the first three let the operator see
their own data and the first two are enrolled in the inactivity watch. A time-of-use tariff with
yearly tiers, a demand-response event for tomorrow evening, forecasts for a few households and
the transformer, and a charging plan complete it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.auth import Role, system_actor
from zhishe.core.config import get_settings
from zhishe.energy import alerts, demand, detection, evcharging, forecasting
from zhishe.energy import service as energy
from zhishe.iot import history, ingest, simulate
from zhishe.iot import service as iot
from zhishe.iot.models import Device

__all__ = ["HOUSEHOLDS", "RESIDENTIAL_TARIFF", "seed_iot"]

HOUSEHOLDS = 30
_DAYS = 21
_SEED = 7

#: A residential time-of-use tariff with yearly tiers (surcharges on the period price).
RESIDENTIAL_TARIFF = {
    "prices": {"peak": "0.6286", "flat": "0.4883", "valley": "0.3000"},
    "schedules": [
        {
            "windows": [
                ["valley", "23:00", "07:00"],
                ["flat", "07:00", "10:00"],
                ["peak", "10:00", "15:00"],
                ["flat", "15:00", "18:00"],
                ["peak", "18:00", "21:00"],
                ["flat", "21:00", "23:00"],
            ]
        }
    ],
    "tiers": [
        {"up_to": "2880", "amount": "0"},
        {"up_to": "4800", "amount": "0.05"},
        {"up_to": None, "amount": "0.30"},
    ],
    "tier_mode": "surcharge",
    "cycle": "year",
}


def seed_iot(sessions: sessionmaker[Session]) -> None:
    """Provision the demo's sites and devices, load three weeks of readings and set up its services."""
    actor = system_actor("demo")
    tz = get_settings().tz
    now = history.bucket_start(clock.now(), "15min", tz)
    start = now - timedelta(days=_DAYS)
    with sessions.begin() as session:
        operator = session.scalars(select(Organisation).where(Organisation.kind == "operator")).first()
        if operator is None:
            return
        org = operator.id
        transformer = iot.create_site(
            session=session,
            actor=actor,
            code="T-01",
            kind="transformer",
            name="阳光社区1号变压器",
            org_id=org,
            properties={"limit_kw": 120},
        )
        park = iot.create_site(
            session=session,
            actor=actor,
            code="P-01",
            kind="charging_park",
            name="北门充电站",
            org_id=org,
            parent_id=transformer.id,
        )
        for n in range(1, 4):
            iot.create_device(
                session=session, actor=actor, site_id=park.id, code=f"P-01-C{n}", kind="ev_charger", phase=""
            )
        battery = iot.create_site(
            session=session,
            actor=actor,
            code="B-01",
            kind="battery",
            name="社区储能",
            org_id=org,
            parent_id=transformer.id,
            properties={"capacity_kwh": 100, "max_charge_kw": 25, "max_discharge_kw": 25},
        )
        iot.create_device(session=session, actor=actor, site_id=battery.id, code="B-01-BMS", kind="battery")
        pv = iot.create_site(
            session=session,
            actor=actor,
            code="PV-01",
            kind="pv",
            name="屋顶光伏",
            org_id=org,
            parent_id=transformer.id,
        )
        iot.create_device(session=session, actor=actor, site_id=pv.id, code="PV-01-INV", kind="pv_inverter")
        homes = simulate.provision(
            session=session,
            actor=actor,
            households=HOUSEHOLDS,
            org_id=org,
            seed=_SEED,
            parent_id=transformer.id,
        )
        residents = session.scalars(select(User).where(User.role == Role.RESIDENT).order_by(User.id)).all()
        for home, resident in zip(homes, residents, strict=False):
            iot.add_member(session=session, actor=actor, site_id=home.site_id, user_id=resident.id)
        for home in homes[:3]:
            site = iot.get_site_or_raise(session=session, site_id=home.site_id)
            site.detail_consent = True
        for home in homes[:2]:
            iot.get_site_or_raise(session=session, site_id=home.site_id).care_enrolled = True
        energy.create_tariff(
            session=session,
            actor=actor,
            org_id=org,
            family="residential-electricity",
            carrier="electricity",
            name=f"{now.astimezone(tz).year} 居民分时阶梯电价",
            valid_from=date(now.astimezone(tz).year, 1, 1),
            valid_to=None,
            definition=RESIDENTIAL_TARIFF,
        )
        transformer_id, park_id = transformer.id, park.id
    faults = simulate.plan_faults(
        households=HOUSEHOLDS,
        start=now - timedelta(days=2),
        end=now - timedelta(hours=6),
        seed=_SEED,
        leaks=1,
        resets=1,
        inactive=1,
    )
    # Leave the first households, whose logins the demo prints, without faults that would alarm.
    faults = [replace(f, household=f.household + 5) if f.household < 5 else f for f in faults]
    with sessions.begin() as session:  # the inactive resident is one who enrolled in the watch
        for fault in faults:
            if fault.kind == "inactive":
                iot.get_site_or_raise(
                    session=session, site_id=homes[fault.household].site_id
                ).care_enrolled = True
    _load_history(sessions, homes, start=start, end=now, faults=faults)
    with sessions() as session:
        history.flush(session=session)
    with sessions.begin() as session:
        for fault in faults:  # what the detectors, running every few minutes, saw during the fault
            if fault.kind != "inactive":
                continue
            site = iot.get_site_or_raise(session=session, site_id=homes[fault.household].site_id)
            moment = fault.start + timedelta(hours=1)
            while moment < (fault.end or now):
                found, _ = detection.run_site(session, site, moment)
                alerts.raise_alerts(session=session, site=site, found=found)
                moment += timedelta(hours=1)
        detection.run(session=session)
        for home in homes[:3]:
            forecasting.run_for_site(session=session, actor=actor, site_id=home.site_id)
        forecasting.run_for_site(session=session, actor=actor, site_id=transformer_id)
        program = demand.create_program(session=session, actor=actor, org_id=org, name="迎峰度夏需求响应")
        tomorrow = (now.astimezone(tz) + timedelta(days=1)).replace(hour=18, minute=0)
        demand.create_event(
            session=session,
            actor=actor,
            program_id=program.id,
            name="明晚高峰削减",
            start=tomorrow,
            end=tomorrow + timedelta(hours=2),
            target_kw=5,
            site_ids=[h.site_id for h in homes],
        )
        for n, (hours, kwh, kw) in enumerate(((10, 30, 7), (4, 20, 11), (12, 45, 7)), start=1):
            evcharging.add_session(
                session=session,
                actor=actor,
                site_id=park_id,
                arrival=now - timedelta(minutes=30 * n),
                departure=now + timedelta(hours=hours),
                energy_kwh=kwh,
                max_kw=kw,
                phase="L1L2L3",
                connector_id=n,
                transaction_id=1000 + n,
            )


def _load_history(
    sessions: sessionmaker[Session],
    homes: list[simulate.SimHousehold],
    *,
    start: datetime,
    end: datetime,
    faults: list[simulate.Fault],
) -> None:
    """Store the simulated readings device by device, in batches, as the devices themselves would."""
    batches: dict[tuple[int, str], list[ingest.Incoming]] = defaultdict(list)
    readings = simulate.generate(
        households=len(homes), start=start, end=end, seed=_SEED, step=900, faults=faults
    )  # type: ignore[arg-type]
    with sessions() as session:
        devices = {d.id: d for d in session.scalars(select(Device))}

        def send(key: tuple[int, str]) -> None:
            home = homes[key[0]]
            device = devices[home.devices[key[1]].device_id]
            ingest.store(session=session, readings=batches.pop(key), device=device)

        for reading in readings:
            home = homes[reading.household]
            stream = home.devices[reading.device].streams[reading.key]
            key = (reading.household, reading.device)
            batch = batches[key]
            batch.append(ingest.Incoming(len(batch), stream, reading.time, reading.value))
            if len(batch) >= 5000:
                send(key)
        for key in list(batches):
            send(key)
        session.commit()
