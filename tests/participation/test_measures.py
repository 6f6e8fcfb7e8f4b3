"""The measures that feed evaluation: computed exactly, published as the data bureau's datasets,
with no personal data in the request records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from deltalake import DeltaTable

from participation.pworld import B1, MONDAY, ParticipationWorld
from zhishe.catalog import service as catalog
from zhishe.core import clock
from zhishe.core.errors import Forbidden
from zhishe.participation import measures, service
from zhishe.participation.models import Suggestion


def _at(moment: Any) -> None:
    clock.set_clock(lambda: moment)


@pytest.fixture()
def history(pw: ParticipationWorld) -> ParticipationWorld:
    """Four street-light reports: fixed in 2 h (confirmed, 5 stars), fixed late in 100 h, reopened
    and fixed again at 101 h, a duplicate, and one still open; one noise report with a caller's name and phone."""
    worker, lead = pw.actor("city-worker"), pw.actor("city-lead")

    def light(user: str) -> Any:
        return service.submit(
            session=pw.session,
            actor=pw.actor(user),
            category_code="streetlight",
            description="灯不亮",
            lat=B1[0],
            lon=B1[1],
            answers={"pole_number": "A-1", "light_state": "out"},
        )

    _at(MONDAY)
    fast, slow, copy, still = light("res1"), light("res2"), light("res3"), light("res3")
    service.act(session=pw.session, actor=lead, request_id=copy.id, action="duplicate", of_id=fast.id)
    service.act(session=pw.session, actor=worker, request_id=still.id, action="comment", note="已派人查看")
    _at(MONDAY + timedelta(hours=2))
    service.act(session=pw.session, actor=worker, request_id=fast.id, action="resolve", note="修好了")
    service.confirm(
        session=pw.session, actor=pw.actor("res1"), request_id=fast.id, fixed=True, satisfaction=5
    )
    _at(MONDAY + timedelta(hours=100))  # Friday 14:00: past the deadline (the end of Thursday)
    service.act(session=pw.session, actor=worker, request_id=slow.id, action="resolve")
    service.confirm(
        session=pw.session, actor=pw.actor("res2"), request_id=slow.id, fixed=False, reason="还不亮"
    )
    _at(MONDAY + timedelta(hours=101))
    service.act(session=pw.session, actor=worker, request_id=slow.id, action="resolve")
    service.submit(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        category_code="noise",
        description="楼上装修",
        address="幸福社区",
        answers={"noticed_at": "2026-11-01T08:00:00+08:00"},
        reporter=service.Reporter(name="王大爷", phone="13800000000"),
        channel="phone",
    )
    for due_hours, answered_hours in ((24, 20), (24, 30), (48, None)):
        pw.session.add(
            Suggestion(
                domain="transport",
                title="加装红绿灯",
                body="路口危险",
                org_id=pw.orgs["city"].id,
                state="awaiting_response",
                response_due_at=MONDAY + timedelta(hours=due_hours),
                responded_at=MONDAY + timedelta(hours=answered_hours) if answered_hours else None,
                created_at=MONDAY,
                updated_at=MONDAY,
            )
        )
    pw.session.commit()
    clock.set_clock(None)
    return pw


def test_performance_figures_are_exact(history: ParticipationWorld) -> None:
    rows = {(r["category"], r["department"]): r for r in measures.performance(history.session)}
    light = rows[("streetlight", "城管局")]
    assert light["month"] == "2026-11"
    assert (light["reports"], light["resolved"]) == (4, 2)
    assert light["within_sla_share"] == 0.5  # 2 h in time; 100 h is past 3 working days, and stays late
    assert (light["p50_hours_to_close"], light["p90_hours_to_close"]) == (51.5, 91.1)
    assert light["reopen_rate"] == 0.5
    assert light["duplicate_rate"] == 0.25
    assert light["confirmed_fix_rate"] == 0.5
    assert (light["satisfaction_mean"], light["satisfaction_count"]) == (5.0, 1)
    # public staff updates within 48 h: the fast fix (2 h), the duplicate notice and the comment
    assert light["public_update_48h_share"] == 0.75


def test_suggestions_answered_on_time(history: ParticipationWorld) -> None:
    (row,) = measures.suggestion_timeliness(history.session)
    assert row == {
        "month": "2026-11",
        "department": "城管局",
        "due": 3,
        "answered": 2,
        "answered_on_time": 1,
        "on_time_share": round(1 / 3, 4),
    }


def test_measures_are_published_as_bureau_datasets_without_personal_data(history: ParticipationWorld) -> None:
    with pytest.raises(Forbidden):
        measures.publish(session=history.session, actor=history.actor("city-head"))
    versions = measures.publish(session=history.session, actor=history.actor("bureau-admin"))
    assert set(versions) == {
        "participation-performance",
        "participation-suggestions",
        "participation-requests",
    }
    records = catalog.get_or_raise(session=history.session, dataset="participation-requests")
    assert records.owner_org_id == history.orgs["bureau"].id
    table = DeltaTable(catalog.lake_uri(records.id)).to_pyarrow_table()
    assert table.num_rows == 5
    text = str(table.to_pylist())
    for personal in ("王大爷", "13800000000", "楼上装修", "灯不亮", str(B1[0])):
        assert personal not in text
    assert set(table.column("community").to_pylist()) == {
        "幸福社区",
        None,
    }  # an empty value is stored as null
    again = measures.publish(session=history.session, actor=history.actor("bureau-admin"))
    assert again["participation-requests"] == versions["participation-requests"] + 1
