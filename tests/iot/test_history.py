"""The flush to the lake history and the rollups: exactly once, crash-safe, and never a negative kWh."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from iot.iot_world import DAY, SHANGHAI, IotWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.iot import history, ingest
from zhishe.iot.models import CounterEvent, Flush, Reading, Rollup


def _send(iw: IotWorld, device: str, rows: list[tuple[Any, float]], key: str) -> ingest.StoreResult:
    stream = iw.stream(device, key)
    readings = [ingest.Incoming(i, stream.id, t.isoformat(), v) for i, (t, v) in enumerate(rows)]
    result = ingest.store(session=iw.session, readings=readings, device=iw.devices[device])
    iw.session.commit()
    return result


def _lake_rows(stream_id: int) -> list[tuple[Any, float]]:
    table = history.read_history([stream_id], DAY - timedelta(days=60), DAY + timedelta(days=60))
    return list(zip(table["time"].to_pylist(), table["value"].to_pylist(), strict=True))


def _rollups(iw: IotWorld, stream_id: int, interval: str) -> dict[Any, Rollup]:
    iw.session.expire_all()
    rows = iw.session.scalars(
        select(Rollup).where(Rollup.datastream_id == stream_id, Rollup.interval == interval)
    )
    return {r.start.astimezone(SHANGHAI): r for r in rows}


def test_flush_copies_each_reading_to_the_lake_once_and_rolls_up(iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(hours=2)):
        _send(
            iw, "H1-electricity", [(DAY + timedelta(minutes=m), float(m % 7)) for m in range(0, 120)], "power"
        )
        first = history.flush(session=iw.session)
        again = history.flush(session=iw.session)
        _send(iw, "H1-electricity", [(DAY + timedelta(minutes=5), 99.0)], "power")  # a repeat: not stored
        third = history.flush(session=iw.session)
    stream = iw.stream("H1-electricity", "power")
    assert first.rows == 120 and again.rows == 0 and third.rows == 0
    lake = _lake_rows(stream.id)
    assert len(lake) == 120 and len({t for t, _ in lake}) == 120
    hours = _rollups(iw, stream.id, "1h")
    first_hour = hours[DAY]
    assert first_hour.count == 60 and first_hour.total == sum(float(m % 7) for m in range(60))
    assert first_hour.minimum == 0 and first_hour.maximum == 6
    day = _rollups(iw, stream.id, "1d")[DAY]
    assert day.count == 120
    assert len(_rollups(iw, stream.id, "15min")) == 8


def test_a_counter_reset_mid_day_gives_the_right_daily_kwh_never_negative(iw: IotWorld) -> None:
    # 0.5 kWh every 15 minutes; at 12:00 the meter restarts from 0 and goes on.
    readings = []
    value = 1000.0
    for q in range(96):
        moment = DAY + timedelta(minutes=15 * q)
        if q == 48:
            value = 0.5  # restarted from 0, then 0.5 consumed in the quarter hour
        elif q:
            value += 0.5
        readings.append((moment, value))
    readings.append((DAY + timedelta(days=1), readings[-1][1] + 0.5))
    with clock.frozen(DAY + timedelta(days=1, hours=1)):
        _send(iw, "H1-electricity", readings, "energy")
        history.flush(session=iw.session)
    stream = iw.stream("H1-electricity", "energy")
    days = _rollups(iw, stream.id, "1d")
    assert days[DAY].delta == pytest.approx(48.0)  # 96 quarter hours × 0.5 kWh
    quarters = _rollups(iw, stream.id, "15min")
    assert all((r.delta or 0) >= 0 for r in quarters.values())
    assert sum(r.delta or 0 for r in quarters.values()) == pytest.approx(48.0)
    hours = _rollups(iw, stream.id, "1h")
    assert all(r.delta == pytest.approx(2.0) for start, r in hours.items() if start < DAY + timedelta(days=1))
    corrections = iw.session.scalars(select(CounterEvent)).all()
    assert [(c.kind, c.before, c.after) for c in corrections] == [("reset", 1023.5, 0.5)]
    audited = iw.session.scalars(select(AuditEvent).where(AuditEvent.action == "iot.counter.correct")).all()
    assert len(audited) == 1


def test_late_counter_readings_rework_the_buckets_they_touch(iw: IotWorld) -> None:
    stream = iw.stream("H2-electricity", "energy")
    with clock.frozen(DAY + timedelta(hours=5)):
        _send(iw, "H2-electricity", [(DAY, 10.0), (DAY + timedelta(hours=2), 14.0)], "energy")
        history.flush(session=iw.session)
        hours = _rollups(iw, stream.id, "1h")
        assert hours[DAY].delta == pytest.approx(2.0) and hours[
            DAY + timedelta(hours=1)
        ].delta == pytest.approx(2.0)
        # The reading at 01:00 arrives late: the first hour used 3, the second 1.
        _send(iw, "H2-electricity", [(DAY + timedelta(hours=1), 13.0)], "energy")
        history.flush(session=iw.session)
    hours = _rollups(iw, stream.id, "1h")
    assert hours[DAY].delta == pytest.approx(3.0) and hours[DAY + timedelta(hours=1)].delta == pytest.approx(
        1.0
    )
    assert _rollups(iw, stream.id, "1d")[DAY].delta == pytest.approx(4.0)


def test_a_flush_cut_short_after_its_lake_commit_is_finished_without_writing_twice(
    iw: IotWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = iw.stream("H3-electricity", "power")
    with clock.frozen(DAY + timedelta(hours=1)):
        _send(iw, "H3-electricity", [(DAY + timedelta(minutes=m), 1.0) for m in range(30)], "power")

        def crash(*_: Any, **__: Any) -> None:
            raise RuntimeError("the process died here")

        monkeypatch.setattr(history, "_roll_up", crash)
        with pytest.raises(RuntimeError):
            history.flush(session=iw.session)
        iw.session.rollback()
        monkeypatch.undo()
        assert len(_lake_rows(stream.id)) == 30  # written, but the flush is not finished
        unfinished = iw.session.scalars(select(Flush).where(Flush.finished_at.is_(None))).all()
        assert len(unfinished) == 1
        result = history.flush(session=iw.session)
    assert result.recovered == 30
    assert len(_lake_rows(stream.id)) == 30
    iw.session.expire_all()
    assert iw.session.scalar(select(func.count()).select_from(Reading).where(Reading.flushed <= 0)) == 0
    assert _rollups(iw, stream.id, "1h")[DAY].count == 30


def test_a_repeat_arriving_after_its_original_was_pruned_is_not_stored_twice(iw: IotWorld) -> None:
    stream = iw.stream("H4-electricity", "power")
    with clock.frozen(DAY + timedelta(hours=1)):
        _send(iw, "H4-electricity", [(DAY, 2.0)], "power")
        history.flush(session=iw.session)
    with clock.frozen(DAY + timedelta(days=10)):
        pruned = history.prune(session=iw.session)
        assert pruned["database"] >= 1
        _send(iw, "H4-electricity", [(DAY, 2.0), (DAY + timedelta(minutes=1), 3.0)], "power")
        history.flush(session=iw.session)
    assert sorted(v for _, v in _lake_rows(stream.id)) == [2.0, 3.0]
    assert _rollups(iw, stream.id, "1h")[DAY].count == 2


def test_retention_deletes_old_lake_partitions_by_kind(iw: IotWorld) -> None:
    motion = iw.stream("H1-motion", "motion")
    power = iw.stream("H1-electricity", "power")
    with clock.frozen(DAY + timedelta(hours=1)):
        _send(iw, "H1-motion", [(DAY, 1.0)], "motion")
        _send(iw, "H1-electricity", [(DAY, 1.0)], "power")
        history.flush(session=iw.session)
    with clock.frozen(DAY + timedelta(days=120)):
        history.prune(session=iw.session)
    assert _lake_rows(motion.id) == []  # events: 90 days
    assert len(_lake_rows(power.id)) == 1  # instantaneous: 400 days


def test_series_and_aggregates_respect_consent_and_group_size(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(hours=2)):
        for i in range(1, 7):
            _send(
                iw,
                f"H{i}-electricity",
                [(DAY + timedelta(minutes=15 * q), 100.0 + q * i) for q in range(8)],
                "energy",
            )
        history.flush(session=iw.session)
    stream = iw.stream("H1-electricity", "energy")
    params = {"from": DAY.isoformat(), "to": (DAY + timedelta(hours=2)).isoformat(), "interval": "1h"}
    own = client.get(
        f"/api/v1/iot/datastreams/{stream.id}/series", params=params, headers=iw.resident_headers[0]
    )
    assert own.status_code == 200, own.text
    points = own.json()["points"]
    assert [p["value"] for p in points] == pytest.approx([4.0, 3.0]) and own.json()["agg"] == "delta"
    assert (
        client.get(
            f"/api/v1/iot/datastreams/{stream.id}/series", params=params, headers=iw.staff_headers
        ).status_code
        == 403
    )
    assert (
        client.get(
            f"/api/v1/iot/datastreams/{stream.id}/series", params=params, headers=iw.resident_headers[1]
        ).status_code
        == 403
    )
    total = client.get(
        f"/api/v1/iot/orgs/{iw.operator.id}/aggregate",
        params=params | {"key": "energy"},
        headers=iw.staff_headers,
    )
    assert total.status_code == 200, total.text
    assert [p["value"] for p in total.json()["points"]] == pytest.approx([4.0 * 21, 3.0 * 21])
    few = client.get(
        f"/api/v1/iot/orgs/{iw.operator.id}/aggregate",
        params=params | {"key": "energy", "parent": iw.households[0].id},
        headers=iw.staff_headers,
    )
    assert few.status_code == 403 and "at least 5 households" in few.json()["error"]["message"]
    bad = client.get(
        f"/api/v1/iot/datastreams/{stream.id}/series",
        params=params | {"interval": "7min"},
        headers=iw.resident_headers[0],
    )
    assert bad.status_code == 422 and "interval" in bad.json()["error"]["message"]
    naive = client.get(
        f"/api/v1/iot/datastreams/{stream.id}/series",
        params=params | {"from": DAY.astimezone(UTC).replace(tzinfo=None).isoformat()},
        headers=iw.resident_headers[0],
    )
    assert naive.status_code == 422
