"""Reports and work orders through the service: validation, routing, "me too", follow-up and the
work-order state machine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from participation.pworld import B1, B2, MONDAY, ParticipationWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.notifications.models import Notification
from zhishe.participation import service
from zhishe.participation.models import Request, RequestUpdate, RoutingRule


@pytest.fixture(autouse=True)
def _monday() -> Any:
    clock.set_clock(lambda: MONDAY)
    yield
    clock.set_clock(None)


def _light(pw: ParticipationWorld, user: str = "res1", **extra: Any) -> Request:
    values: dict[str, Any] = {
        "category_code": "streetlight",
        "description": "路灯不亮",
        "lat": B1[0],
        "lon": B1[1],
        "answers": {"pole_number": "A-17", "light_state": "out"},
    }
    values.update(extra)
    request = service.submit(session=pw.session, actor=pw.actor(user), **values)
    pw.session.commit()
    return request


def _count(pw: ParticipationWorld, model: Any) -> int:
    return pw.session.scalar(select(func.count()).select_from(model)) or 0


# --- submission -------------------------------------------------------------------------------------


def test_a_report_is_routed_given_its_deadline_and_audited(pw: ParticipationWorld) -> None:
    request = _light(pw)
    assert request.state == "assigned"
    assert request.org_id == pw.orgs["city"].id and request.team_id == pw.teams["lights"].id
    assert request.area_id == pw.areas["B1"].id  # the nearest building of the position
    assert request.reporter_user_id == pw.users["res1"].id
    # 3 working days from Monday: the end of Thursday, local time
    assert request.expected_at is not None
    local = request.expected_at.astimezone(MONDAY.tzinfo)
    assert (local.date().isoformat(), local.hour) == ("2026-11-06", 0)
    assert service.open311_status(request.state) == "open"
    events = pw.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "participation_request")
    )
    assert "participation.request.submit" in list(events)
    notified = pw.session.scalars(
        select(Notification.user_id).where(Notification.kind == "participation.order")
    )
    assert set(notified) == {pw.users["city-worker"].id, pw.users["city-lead"].id}


def test_the_most_specific_routing_rule_wins(pw: ParticipationWorld) -> None:
    in_b1 = service.submit(
        session=pw.session,
        actor=pw.actor("res1"),
        category_code="garbage",
        description="",
        address_id="C1-B1-U1",
        answers={"bin_type": ["kitchen"]},
    )
    in_b2 = service.submit(
        session=pw.session,
        actor=pw.actor("res3"),
        category_code="garbage",
        description="",
        address_id="C1-B2",
        answers={"bin_type": ["kitchen", "other"]},
    )
    assert (in_b1.org_id, in_b1.assignee_user_id) == (pw.orgs["op"].id, pw.users["grid1"].id)
    assert (in_b2.org_id, in_b2.assignee_user_id, in_b2.state) == (pw.orgs["city"].id, None, "new")
    assert in_b2.answers == {"bin_type": ["kitchen", "other"]}
    # a unit given by code carries its building's position
    assert (in_b1.lat, in_b1.lon) == B1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category_code": ""}, "service_code"),
        ({"answers": {"light_state": "out"}}, "attribute[pole_number]"),
        ({"answers": {"pole_number": "A", "light_state": "purple"}}, "attribute[light_state]"),
        ({"answers": {"pole_number": "A", "light_state": "out", "colour": "x"}}, "attribute[colour]"),
        ({"lat": 91.0}, "lat"),
        ({"lon": -181.0}, "long"),
        ({"lat": float("nan")}, "lat"),
        ({"lat": None, "lon": None}, "lat"),
        ({"lat": None}, "lat"),
        ({"address_id": "NOWHERE"}, "address_id"),
        ({"description": "x" * 4001}, "description"),
        ({"channel": "pigeon"}, "channel"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"photos": [b"a", b"b", b"c", b"d"]}, "photos"),
        ({"photos": [b"%PDF-1.4 not an image"]}, "photo1"),
    ],
)
def test_bad_reports_name_the_field_and_write_nothing(
    pw: ParticipationWorld, change: dict[str, Any], field: str
) -> None:
    before = (_count(pw, Request), _count(pw, RequestUpdate), _count(pw, AuditEvent))
    with pytest.raises((Invalid, NotFound)) as caught:
        _light(pw, **change)
    assert (caught.value.detail or {}).get("field") == field
    pw.session.rollback()
    assert (_count(pw, Request), _count(pw, RequestUpdate), _count(pw, AuditEvent)) == before


def test_every_datatype_is_checked(pw: ParticipationWorld) -> None:
    noise = service.submit(
        session=pw.session,
        actor=pw.actor("res3"),
        category_code="noise",
        description="",
        address="幸福社区 2号楼 楼下",
        answers={"noticed_at": "2026-11-01T23:10:00", "details": "每晚施工"},
    )
    assert noise.answers["noticed_at"] == "2026-11-01T23:10:00+08:00"
    leak = service.submit(
        session=pw.session,
        actor=pw.actor("res3"),
        category_code="leak",
        description="",
        address="x",
        answers={"flow": "2.5"},
    )
    assert leak.answers == {"flow": 2.5}
    for answers, field in (
        ({"noticed_at": "yesterday"}, "attribute[noticed_at]"),
        ({"noticed_at": "2026-11-01T23:10:00", "details": "x" * 5001}, "attribute[details]"),
    ):
        with pytest.raises(Invalid) as caught:
            service.submit(
                session=pw.session,
                actor=pw.actor("res3"),
                category_code="noise",
                description="",
                address="x",
                answers=answers,
            )
        assert caught.value.detail["field"] == field
    with pytest.raises(Invalid) as caught:
        service.submit(
            session=pw.session,
            actor=pw.actor("res3"),
            category_code="leak",
            description="",
            address="x",
            answers={"flow": "inf"},
        )
    assert caught.value.detail["field"] == "attribute[flow]"


def test_anonymous_reports_need_an_api_key(pw: ParticipationWorld) -> None:
    with pytest.raises(Forbidden):
        service.submit(session=pw.session, actor=None, category_code="leak", description="", address="x")


# --- nearby, me too, follow-up ----------------------------------------------------------------------


def test_nearby_offers_open_reports_of_the_category_within_its_radius(pw: ParticipationWorld) -> None:
    first = _light(pw)
    found = service.nearby(session=pw.session, category_code="streetlight", lat=B1[0] + 0.0002, lon=B1[1])
    assert [r.id for r, _ in found] == [first.id]
    assert 20 < found[0][1] < 25  # 0.0002° of latitude is about 22 m
    assert service.nearby(session=pw.session, category_code="streetlight", lat=B2[0], lon=B2[1]) == []
    assert service.nearby(session=pw.session, category_code="garbage", lat=B1[0], lon=B1[1]) == []


def test_me_too_supports_once_and_subscribes(pw: ParticipationWorld) -> None:
    request = _light(pw)
    for _ in range(2):
        service.support(session=pw.session, actor=pw.actor("res2"), request_id=request.id)
    assert request.supporters == 1
    service.act(session=pw.session, actor=pw.actor("city-worker"), request_id=request.id, action="accept")
    pw.session.commit()
    told = set(
        pw.session.scalars(select(Notification.user_id).where(Notification.kind == "participation.update"))
    )
    assert {pw.users["res1"].id, pw.users["res2"].id} <= told


def test_only_followers_add_information(pw: ParticipationWorld) -> None:
    request = _light(pw)
    with pytest.raises(Forbidden):
        service.add_info(session=pw.session, actor=pw.actor("res3"), request_id=request.id, text="hi")
    update = service.add_info(
        session=pw.session, actor=pw.actor("res1"), request_id=request.id, text="灯杆倾斜"
    )
    assert update.public is False  # it goes to the department, not the public page


def test_confirm_and_reopen_within_the_window(pw: ParticipationWorld) -> None:
    request = _light(pw)
    worker = pw.actor("city-worker")
    with pytest.raises(Conflict):
        service.confirm(session=pw.session, actor=pw.actor("res1"), request_id=request.id, fixed=True)
    service.act(session=pw.session, actor=worker, request_id=request.id, action="resolve")
    with pytest.raises(Forbidden):
        service.confirm(session=pw.session, actor=pw.actor("res2"), request_id=request.id, fixed=True)
    with pytest.raises(Invalid):
        service.confirm(session=pw.session, actor=pw.actor("res1"), request_id=request.id, fixed=False)
    service.confirm(
        session=pw.session, actor=pw.actor("res1"), request_id=request.id, fixed=False, reason="还是不亮"
    )
    assert (request.state, request.reopen_count, request.confirmation) == ("reopened", 1, "reopened")
    service.act(session=pw.session, actor=worker, request_id=request.id, action="resolve")
    clock.set_clock(lambda: MONDAY + timedelta(days=15))
    with pytest.raises(Conflict):
        service.confirm(session=pw.session, actor=pw.actor("res1"), request_id=request.id, fixed=True)
    clock.set_clock(lambda: MONDAY + timedelta(days=13))
    service.confirm(
        session=pw.session, actor=pw.actor("res1"), request_id=request.id, fixed=True, satisfaction=4
    )
    assert (request.state, request.satisfaction) == ("closed", 4)


# --- the state machine ------------------------------------------------------------------------------


def test_states_move_only_along_the_allowed_paths(pw: ParticipationWorld) -> None:
    request = _light(pw)
    worker = pw.actor("city-worker")
    with pytest.raises(Conflict) as caught:
        service.act(session=pw.session, actor=worker, request_id=request.id, action="resume")
    assert caught.value.detail == {"state": "assigned", "action": "resume"}
    service.act(session=pw.session, actor=worker, request_id=request.id, action="accept")
    assert request.assignee_user_id == pw.users["city-worker"].id
    service.act(session=pw.session, actor=worker, request_id=request.id, action="start")
    with pytest.raises(Invalid):
        service.act(session=pw.session, actor=worker, request_id=request.id, action="wait", reason="lunch")
    with pytest.raises(Forbidden):  # a worker may not reject; dispatchers may
        service.act(session=pw.session, actor=worker, request_id=request.id, action="reject", note="no")
    with pytest.raises(Forbidden):  # another department may not touch it
        service.act(
            session=pw.session, actor=pw.actor("water-worker"), request_id=request.id, action="resolve"
        )
    service.act(session=pw.session, actor=worker, request_id=request.id, action="resolve", note="换了灯泡")
    assert (request.state, request.within_sla, request.status_notes) == ("resolved", True, "换了灯泡")
    assert service.open311_status(request.state) == "closed"


def test_waiting_stops_the_clock(pw: ParticipationWorld) -> None:
    request = _light(pw)
    worker = pw.actor("city-worker")
    service.act(session=pw.session, actor=worker, request_id=request.id, action="accept")
    deadline = request.expected_at
    assert deadline is not None
    service.act(session=pw.session, actor=worker, request_id=request.id, action="wait", reason="parts")
    assert request.next_escalation_at is None
    clock.set_clock(lambda: MONDAY + timedelta(days=2))  # Wednesday 10:00: two working days waited
    service.act(session=pw.session, actor=worker, request_id=request.id, action="resume")
    assert request.expected_at is not None
    assert request.expected_at.astimezone(MONDAY.tzinfo).date().isoformat() == "2026-11-10"
    assert request.paused_at is None and request.wait_reason == ""


def test_duplicate_links_and_moves_followers(pw: ParticipationWorld) -> None:
    original = _light(pw)
    copy = _light(pw, user="res2")
    service.act(
        session=pw.session,
        actor=pw.actor("city-lead"),
        request_id=copy.id,
        action="duplicate",
        of_id=original.id,
    )
    assert (copy.state, copy.duplicate_of_id, original.supporters) == ("duplicate", original.id, 1)
    with pytest.raises(Invalid):
        service.act(
            session=pw.session,
            actor=pw.actor("city-lead"),
            request_id=original.id,
            action="duplicate",
            of_id=original.id,
        )


def test_transfer_and_not_ours_name_who_is_responsible(pw: ParticipationWorld) -> None:
    request = _light(pw)
    lead = pw.actor("city-lead")
    with pytest.raises(Invalid) as caught:
        service.act(session=pw.session, actor=lead, request_id=request.id, action="not_ours", note="不归我们")
    assert caught.value.detail["field"] == "responsible"
    service.act(
        session=pw.session,
        actor=lead,
        request_id=request.id,
        action="not_ours",
        note="属于供水设施",
        responsible=pw.orgs["water"].id,
    )
    assert (request.org_id, request.team_id, request.state) == (pw.orgs["water"].id, None, "new")
    assert "水务局" in request.public_reason
    service.act(
        session=pw.session,
        actor=pw.actor("water-head"),
        request_id=request.id,
        action="transfer",
        note="是路灯",
        org_id=pw.orgs["city"].id,
        team_id=pw.teams["lights"].id,
    )
    assert (request.org_id, request.state) == (pw.orgs["city"].id, "assigned")


def test_a_joint_order_resolves_when_every_department_is_done(pw: ParticipationWorld) -> None:
    parent = _light(pw)
    children = service.split(
        session=pw.session,
        actor=pw.actor("city-lead"),
        request_id=parent.id,
        parts=[(pw.orgs["city"].id, pw.teams["lights"].id, "换灯"), (pw.orgs["water"].id, None, "修井盖")],
    )
    pw.session.commit()
    with pytest.raises(Conflict):
        service.act(session=pw.session, actor=pw.actor("city-lead"), request_id=parent.id, action="resolve")
    with pytest.raises(NotFound):  # children are internal
        service.get_request(session=pw.session, request_id=children[0].id, actor=pw.actor("res1"))
    service.act(
        session=pw.session, actor=pw.actor("city-worker"), request_id=children[0].id, action="resolve"
    )
    assert parent.state == "in_progress"
    service.act(
        session=pw.session, actor=pw.actor("water-worker"), request_id=children[1].id, action="resolve"
    )
    assert parent.state == "resolved"
    public = service.public_updates(session=pw.session, request_id=parent.id)
    assert all(u.request_id == parent.id for u in public)
    assert not service.public_updates(session=pw.session, request_id=children[0].id)


def test_bulk_actions_are_all_or_nothing(pw: ParticipationWorld) -> None:
    first, second = _light(pw), _light(pw, user="res2")
    lead = pw.actor("city-lead")
    service.act(session=pw.session, actor=lead, request_id=second.id, action="resolve")
    pw.session.commit()
    with pytest.raises(Conflict) as caught:
        service.bulk_act(session=pw.session, actor=lead, request_ids=[first.id, second.id], action="accept")
    assert caught.value.detail["request_id"] == second.id
    pw.session.rollback()
    assert pw.session.get(Request, first.id).state == "assigned"  # type: ignore[union-attr]


def test_the_queue_is_the_organisations_own(pw: ParticipationWorld) -> None:
    light = _light(pw)
    page = service.queue(session=pw.session, actor=pw.actor("city-worker"))
    assert [r.id for r in page.items] == [light.id]
    assert service.queue(session=pw.session, actor=pw.actor("water-worker")).items == []
    with pytest.raises(Forbidden):
        service.queue(session=pw.session, actor=pw.actor("water-worker"), org_id=pw.orgs["city"].id)
    bureau = service.queue(session=pw.session, actor=pw.actor("bureau-dispatcher"), org_id=pw.orgs["city"].id)
    assert [r.id for r in bureau.items] == [light.id]
    with pytest.raises(Forbidden):
        service.queue(session=pw.session, actor=pw.actor("res1"))
    clock.set_clock(lambda: MONDAY + timedelta(days=7))
    late = service.queue(session=pw.session, actor=pw.actor("city-worker"), overdue=True)
    assert [r.id for r in late.items] == [light.id]
    assert service.is_overdue(light)


def test_script_in_a_description_is_kept_as_text(pw: ParticipationWorld) -> None:
    request = _light(pw, description="<script>alert(1)</script>")
    assert request.description == "<script>alert(1)</script>"  # escaped where it is shown


def test_only_staff_file_for_a_caller(pw: ParticipationWorld) -> None:
    with pytest.raises(Forbidden):
        _light(pw, channel="phone")
    with pytest.raises(Forbidden):
        _light(pw, reporter=service.Reporter(name="邻居", phone="13900000000"))
    request = _light(
        pw, user="op-dispatcher", channel="phone", reporter=service.Reporter(name="王", phone="139")
    )
    assert (request.channel, request.reporter_user_id, request.filed_by_user_id) == (
        "phone",
        None,
        pw.users["op-dispatcher"].id,
    )


def test_unrouted_reports_wait_for_the_data_bureau(pw: ParticipationWorld) -> None:
    pw.session.execute(delete(RoutingRule))
    request = _light(pw)
    assert (request.org_id, request.state) == (None, "new")
    with pytest.raises(Forbidden):
        service.queue(session=pw.session, actor=pw.actor("city-lead"), unrouted=True)
    page = service.queue(session=pw.session, actor=pw.actor("bureau-dispatcher"), unrouted=True)
    assert [r.id for r in page.items] == [request.id]
    service.act(
        session=pw.session,
        actor=pw.actor("bureau-dispatcher"),
        request_id=request.id,
        action="transfer",
        note="路灯归城管",
        org_id=pw.orgs["city"].id,
        team_id=pw.teams["lights"].id,
    )
    assert (request.org_id, request.state) == (pw.orgs["city"].id, "assigned")
    assert "transfer" not in service.available_actions(pw.actor("res1"), request)
    assert {"accept", "resolve", "comment"} <= service.available_actions(pw.actor("city-worker"), request)
