"""Day-ahead forecasts made from the rollups, through the API and the command line, and abnormal
use caught against the household's own forecast interval."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from iot.iot_world import DAY, IotWorld
from zhishe.cli import app
from zhishe.core import clock
from zhishe.energy import detection
from zhishe.energy.models import Alert, ForecastRun
from zhishe.iot import history, ingest

DAYS = 21


def _kwh(quarter: int, household: int) -> float:
    """A daily shape: 0.1 kWh per quarter at night, up to 0.5 in the evening, scaled by household."""
    hour = (quarter % 96) / 4
    noise = 1 + 0.15 * math.sin(quarter * 12.9898 + household * 78.233)  # deterministic, uneven day to day
    return household * noise * (0.1 + 0.4 * max(0.0, math.sin(math.pi * (hour - 6) / 16)))


def _fill(iw: IotWorld, days: int, *, spike_from: int | None = None) -> None:
    for i in range(1, 7):
        stream = iw.stream(f"H{i}-electricity", "energy")
        value = 500.0
        readings = [ingest.Incoming(0, stream.id, DAY.isoformat(), value)]
        for q in range(96 * days):
            used = _kwh(q, i)
            if spike_from is not None and i == 1 and q >= spike_from:
                used += 2.0  # a heater left on: 8 kW more
            value += used
            readings.append(
                ingest.Incoming(q + 1, stream.id, (DAY + timedelta(minutes=15 * (q + 1))).isoformat(), value)
            )
        ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
    iw.session.commit()
    history.flush(session=iw.session)


def test_a_household_forecast_is_made_backtested_and_shown(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=DAYS)):
        _fill(iw, DAYS)
        made = client.post(f"/api/v1/energy/forecasts/{iw.households[0].id}", headers=iw.resident_headers[0])
        assert made.status_code == 201, made.text
        body = made.json()
        assert len(body["times"]) == 48 and len(body["mean"]) == 48
        assert set(body["intervals"]) == {"80", "95"}
        assert set(body["baselines"]) == {"snaive_day", "snaive_week"}
        assert body["model"] in {"mstl", "autoets", "snaive_day", "snaive_week"} and body["reason"]
        lower, upper = body["intervals"]["95"]["lower"], body["intervals"]["95"]["upper"]
        assert all(lo <= m <= hi for lo, m, hi in zip(lower, body["mean"], upper, strict=True))
        # The evening (18:00 local is 10:00 UTC) is forecast higher than the night.
        assert max(body["mean"]) > 3 * min(body["mean"])
        again = client.get(f"/api/v1/energy/forecasts/{iw.households[0].id}", headers=iw.resident_headers[0])
        assert again.json()["id"] == body["id"]
        assert (
            client.get(
                f"/api/v1/energy/forecasts/{iw.households[0].id}", headers=iw.staff_headers
            ).status_code
            == 403
        )


def test_the_transformer_and_every_household_are_forecast_from_the_command_line(iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=DAYS)):
        _fill(iw, DAYS)
        result = CliRunner().invoke(app, ["energy", "forecast", "--all"])
        assert result.exit_code == 0, result.output
        assert "7 forecasts made" in result.output
    sites = set(iw.session.scalars(select(ForecastRun.site_id)))
    assert sites == {h.id for h in iw.households} | {iw.transformer.id}


def test_use_far_above_the_forecast_interval_raises_an_abnormal_alert(iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(days=DAYS)):
        _fill(iw, DAYS)
        from zhishe.energy import forecasting

        for household in iw.households[:2]:
            from zhishe.core.accounts.service import actor_for_user

            forecasting.run_for_site(
                session=iw.session,
                actor=actor_for_user(iw.residents[iw.households.index(household)]),
                site_id=household.id,
            )
        iw.session.commit()
    # The next day: household 1 leaves a heater on from 14:00 local; household 2 behaves.
    with clock.frozen(DAY + timedelta(days=DAYS + 1)):
        for i in range(1, 3):
            stream = iw.stream(f"H{i}-electricity", "energy")
            last = iw.session.scalars(
                select(ingest.Reading.value)
                .where(ingest.Reading.datastream_id == stream.id)
                .order_by(ingest.Reading.time.desc())
            ).first()
            value = float(last or 0)
            readings = []
            for q in range(96 * DAYS, 96 * (DAYS + 1)):
                value += _kwh(q, i) + (2.0 if i == 1 and q % 96 >= 24 else 0.0)
                readings.append(
                    ingest.Incoming(q, stream.id, (DAY + timedelta(minutes=15 * (q + 1))).isoformat(), value)
                )
            ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
        iw.session.commit()
        history.flush(session=iw.session)
        result = detection.run(session=iw.session)
        iw.session.commit()
    raised = iw.session.scalars(select(Alert).where(Alert.kind == "abnormal")).all()
    assert {a.site_id for a in raised} == {iw.households[0].id}, [
        (a.site_id, a.reason, a.params) for a in raised
    ]
    assert all("above the expected" in a.reason for a in raised), [(a.reason, a.params) for a in raised]
    assert result.raised.get("abnormal") == len(raised)
