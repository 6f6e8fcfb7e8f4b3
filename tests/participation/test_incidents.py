"""Emergency incidents: declaring (by hand, from a cluster of reports, from the event bus), roles named
by each department, tasks and reminders, notices to the residents of the area, the state machine,
the review figures, and who may see what."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from participation.pworld import B1, B2, MONDAY, ParticipationWorld
from zhishe.core import clock, events
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.notifications.models import Notification
from zhishe.participation import incidents
from zhishe.participation.models import (
    Incident,
    IncidentEntry,
    IncidentProposal,
    IncidentRole,
    IncidentTask,
    Request,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        clock.set_clock(lambda: self.at)

    def move(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture()
def now(pw: ParticipationWorld) -> Clock:
    return Clock(MONDAY)


def declare(pw: ParticipationWorld, who: str = "op-dispatcher", area: str = "B1", **extra: Any) -> Incident:
    values: dict[str, Any] = {
        "kind": "water_outage",
        "severity": 2,
        "area_id": pw.areas[area].id,
        "title": "1号楼停水",
        "description": "主管破裂",
    }
    values.update(extra)
    incident = incidents.declare(session=pw.session, actor=pw.actor(who), **values)
    pw.session.commit()
    return incident


def roles_of(pw: ParticipationWorld, incident: Incident) -> list[tuple[str, str, str | None]]:
    rows = pw.session.scalars(
        select(IncidentRole).where(IncidentRole.incident_id == incident.id).order_by(IncidentRole.id)
    )
    code = {o.id: k for k, o in pw.orgs.items()}
    name = {u.id: k for k, u in pw.users.items()}
    return [(r.role, code[r.org_id], name.get(r.user_id) if r.user_id else None) for r in rows]


def audited(pw: ParticipationWorld, action: str) -> int:
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    return pw.session.scalar(query) or 0


def notified(pw: ParticipationWorld, kind: str) -> dict[str, int]:
    name = {u.id: k for k, u in pw.users.items()}
    rows = pw.session.scalars(select(Notification).where(Notification.kind == kind))
    counts: dict[str, int] = {}
    for n in rows:
        counts[name[n.user_id]] = counts.get(name[n.user_id], 0) + 1
    return counts


def report(
    pw: ParticipationWorld,
    category: str,
    at: datetime,
    area: str | None = None,
    position: tuple[float, float] | None = None,
    state: str = "new",
) -> Request:
    row = Request(
        category_id=pw.categories[category].id,
        state=state,
        description="路灯不亮",
        area_id=pw.areas[area].id if area else None,
        lat=position[0] if position else None,
        lon=position[1] if position else None,
        token=uuid.uuid4().hex,
        requested_at=at,
        updated_at=at,
    )
    pw.session.add(row)
    pw.session.flush()
    return row


# --- declaring -----------------------------------------------------------------------------------------


def test_declarer_becomes_commander_with_open_command_staff(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw)
    assert incident.state == "active"
    assert incident.source == "manual"
    assert incident.org_id == pw.orgs["op"].id
    assert incident.declared_at == MONDAY
    assert roles_of(pw, incident) == [
        ("commander", "op", "op-dispatcher"),
        ("liaison", "op", None),
        ("scribe", "op", None),
    ]
    assert incident.roles_complete_at is None
    assert incident.first_response_at is None
    entries = incidents.entries(session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id)
    assert [e.kind for e in entries] == ["declared"]
    assert "1号楼停水" in entries[0].text
    assert audited(pw, "participation.incident.declare") == 1


def test_bureau_declares_and_departments_are_brought_in_and_told(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, "bureau-dispatcher", departments=[pw.orgs["water"].id, pw.orgs["city"].id])
    assert incident.org_id == pw.orgs["bureau"].id
    assert roles_of(pw, incident)[0] == ("commander", "bureau", "bureau-dispatcher")
    assert [r for r in roles_of(pw, incident) if r[1] != "bureau"] == [
        ("liaison", "water", None),
        ("participant", "water", None),
        ("liaison", "city", None),
        ("participant", "city", None),
    ]
    # the departments' administrators and dispatchers are asked to name people; the bureau admin is told
    assert notified(pw, "participation.incident") == {
        "bureau-admin": 1,
        "water-head": 1,
        "water-worker": 1,
        "city-head": 1,
        "city-lead": 1,
    }


@pytest.mark.parametrize("who", ["city-head", "grid1", "res1", "water-worker"])
def test_only_operator_or_bureau_dispatchers_may_declare(
    pw: ParticipationWorld, now: Clock, who: str
) -> None:
    with pytest.raises(Forbidden):
        declare(pw, who)
    pw.session.rollback()
    assert pw.session.scalar(select(func.count()).select_from(Incident)) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "tsunami"}, "kind"),
        ({"severity": 5}, "severity"),
        ({"severity": 0}, "severity"),
        ({"severity": True}, "severity"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"area_id": 999_999}, "area_id"),
        ({"area_id": None}, "area_id"),
        ({"source": "rumour"}, "source"),
        ({"departments": [999_999]}, "departments"),
    ],
)
def test_bad_declaration_names_the_field_and_writes_nothing(
    pw: ParticipationWorld, now: Clock, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        declare(pw, **change)
    assert caught.value.detail["field"] == field
    pw.session.rollback()
    assert pw.session.scalar(select(func.count()).select_from(Incident)) == 0
    assert pw.session.scalar(select(func.count()).select_from(IncidentEntry)) == 0


# --- clusters --------------------------------------------------------------------------------------------


def cluster(pw: ParticipationWorld, at: datetime, count: int = 6) -> list[Request]:
    """``count`` streetlight reports in community C1, placed in every way a report can be."""
    places: list[dict[str, Any]] = [
        {"area": "B1"},
        {"area": "B1-U1"},
        {"area": "B2"},
        {"position": (B2[0] + 0.001, B2[1])},  # ~110 m north of B2, no area
        {"area": "C1"},
    ]
    return [
        report(pw, "streetlight", at - timedelta(minutes=10 * i), **places[i % len(places)])
        for i in range(count)
    ]


def test_more_than_n_reports_of_one_category_and_community_propose_an_incident(
    pw: ParticipationWorld, now: Clock
) -> None:
    reports = cluster(pw, MONDAY, 6)
    # not counted: a different category with only 5, a closed report, one too old, one far from any building
    for i in range(5):
        report(pw, "garbage", MONDAY - timedelta(minutes=i), area="B1")
    report(pw, "streetlight", MONDAY, area="B1", state="closed")
    report(pw, "streetlight", MONDAY - timedelta(hours=6, minutes=1), area="B1")
    report(pw, "streetlight", MONDAY, position=(B1[0] + 0.05, B1[1]))
    found = incidents.detect_clusters(session=pw.session)
    assert len(found) == 1
    proposal = found[0]
    assert proposal.category_id == pw.categories["streetlight"].id
    assert proposal.area_id == pw.areas["C1"].id
    assert proposal.count == 6
    assert proposal.request_ids == sorted(r.id for r in reports)
    assert proposal.window_start == MONDAY - timedelta(hours=6)
    assert proposal.window_end == MONDAY
    assert notified(pw, "participation.incident_proposal") == {"op-dispatcher": 1}
    assert audited(pw, "participation.incident.propose") == 1


def test_exactly_n_reports_propose_nothing(pw: ParticipationWorld, now: Clock) -> None:
    cluster(pw, MONDAY, 5)
    assert incidents.detect_clusters(session=pw.session) == []
    assert pw.session.scalar(select(func.count()).select_from(IncidentProposal)) == 0


def test_a_cluster_is_not_proposed_twice_but_grows(pw: ParticipationWorld, now: Clock) -> None:
    cluster(pw, MONDAY, 6)
    first = incidents.detect_clusters(session=pw.session)
    assert len(first) == 1
    now.move(minutes=20)
    assert incidents.detect_clusters(session=pw.session) == []
    late = report(pw, "streetlight", now.at, area="B2")
    assert incidents.detect_clusters(session=pw.session) == []
    assert pw.session.scalar(select(func.count()).select_from(IncidentProposal)) == 1
    assert first[0].count == 7
    assert late.id in first[0].request_ids
    assert first[0].window_end == now.at
    assert notified(pw, "participation.incident_proposal") == {"op-dispatcher": 1}


def test_declaring_from_a_proposal_links_its_reports_and_blocks_it_while_open(
    pw: ParticipationWorld, now: Clock
) -> None:
    reports = cluster(pw, MONDAY, 6)
    (proposal,) = incidents.detect_clusters(session=pw.session)
    incident = declare(pw, kind="other", area_id=None, title="路灯大面积故障", proposal_id=proposal.id)
    assert incident.source == "cluster"
    assert incident.area_id == pw.areas["C1"].id
    assert incident.source_detail["request_ids"] == sorted(r.id for r in reports)
    assert proposal.state == "declared"
    assert proposal.incident_id == incident.id
    linked = [
        e
        for e in incidents.entries(
            session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id
        )
        if e.kind == "reports"
    ]
    assert linked[0].detail["request_ids"] == sorted(r.id for r in reports)
    with pytest.raises(Conflict):
        declare(pw, proposal_id=proposal.id)
    pw.session.rollback()
    # a fresh cluster a day later is not proposed while the incident is open ...
    now.move(days=1)
    cluster(pw, now.at, 6)
    assert incidents.detect_clusters(session=pw.session) == []
    # ... and is once it has closed
    incidents.set_state(
        session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id, state="closed"
    )
    assert len(incidents.detect_clusters(session=pw.session)) == 1


def test_a_dismissed_proposal_keeps_quiet_until_its_window_has_passed(
    pw: ParticipationWorld, now: Clock
) -> None:
    cluster(pw, MONDAY, 6)
    (proposal,) = incidents.detect_clusters(session=pw.session)
    with pytest.raises(Forbidden):
        incidents.dismiss_proposal(session=pw.session, actor=pw.actor("city-head"), proposal_id=proposal.id)
    incidents.dismiss_proposal(
        session=pw.session, actor=pw.actor("op-dispatcher"), proposal_id=proposal.id, reason="同一故障"
    )
    assert proposal.state == "dismissed"
    with pytest.raises(Conflict):
        incidents.dismiss_proposal(
            session=pw.session, actor=pw.actor("op-dispatcher"), proposal_id=proposal.id
        )
    now.move(hours=5)
    cluster(pw, now.at, 6)
    assert incidents.detect_clusters(session=pw.session) == []
    now.move(hours=2)
    cluster(pw, now.at, 6)
    assert len(incidents.detect_clusters(session=pw.session)) == 1
    assert len(incidents.list_proposals(session=pw.session, actor=pw.actor("op-dispatcher"))) == 1
    with pytest.raises(Forbidden):
        incidents.list_proposals(session=pw.session, actor=pw.actor("city-head"))


# --- the event bus -----------------------------------------------------------------------------------------


def test_an_outbreak_alert_on_the_bus_declares_an_incident_once(pw: ParticipationWorld, now: Clock) -> None:
    # the handler is subscribed at start-up (zhishe.hooks.install, run by the test configuration)
    alert = events.Event(
        "health.outbreak_alert",
        {
            "area_code": "C1",
            "title": "流感聚集性疫情",
            "description": "三天内12例",
            "severity": 3,
            "disease": "influenza",
        },
    )
    events.publish(alert, pw.session)
    (incident,) = pw.session.scalars(select(Incident)).all()
    assert (incident.kind, incident.source, incident.severity) == ("outbreak", "event", 3)
    assert incident.area_id == pw.areas["C1"].id
    assert incident.org_id == pw.orgs["op"].id
    assert incident.declared_by_user_id is None
    assert incident.source_detail["payload"]["disease"] == "influenza"
    # the operator must name a commander
    assert roles_of(pw, incident)[0] == ("commander", "op", None)
    assert notified(pw, "participation.incident") == {"op-dispatcher": 1}
    # the same alert again adds to the timeline instead of declaring a second incident
    events.publish(alert, pw.session)
    assert pw.session.scalar(select(func.count()).select_from(Incident)) == 1
    kinds = [
        e.kind
        for e in incidents.entries(
            session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id
        )
    ]
    assert kinds == ["declared", "event"]
    # the first human action is the first response
    now.move(minutes=7)
    incidents.assign_role(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=incident.id,
        role="commander",
        org_id=pw.orgs["op"].id,
        user_id=pw.users["op-dispatcher"].id,
    )
    assert incident.first_response_at == MONDAY + timedelta(minutes=7)


def test_a_generic_declare_event_names_kind_and_coordinator(pw: ParticipationWorld, now: Clock) -> None:
    payload = {"area_id": pw.areas["B2"].id, "kind": "flood", "title": "地下车库进水", "org_code": "bureau"}
    events.publish(events.Event("participation.declare_incident", payload), pw.session)
    (incident,) = pw.session.scalars(select(Incident)).all()
    assert (incident.kind, incident.severity, incident.org_id) == ("flood", 2, pw.orgs["bureau"].id)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "x", "severity": 3}, "payload.area_code"),
        ({"area_code": "NOPE", "title": "x"}, "payload.area_code"),
        ({"area_code": "C1", "title": "x", "severity": 9}, "payload.severity"),
        ({"area_code": "C1"}, "payload.title"),
    ],
)
def test_a_bad_outbreak_payload_is_refused_naming_the_field(
    pw: ParticipationWorld, now: Clock, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        incidents.on_event(events.Event("health.outbreak_alert", payload), pw.session)
    assert caught.value.detail["field"] == field
    assert pw.session.scalar(select(func.count()).select_from(Incident)) == 0


def test_unrelated_events_are_ignored(pw: ParticipationWorld, now: Clock) -> None:
    assert incidents.declare_from_event(pw.session, events.Event("catalog.version_created", {})) is None


# --- roles -----------------------------------------------------------------------------------------------


def name(
    pw: ParticipationWorld, incident: Incident, who: str, role: str, org: str, user: str
) -> IncidentRole:
    return incidents.assign_role(
        session=pw.session,
        actor=pw.actor(who),
        incident_id=incident.id,
        role=role,
        org_id=pw.orgs[org].id,
        user_id=pw.users[user].id,
    )


def test_each_department_names_its_own_people(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["city"].id, pw.orgs["water"].id])
    now.move(minutes=5)
    name(pw, incident, "city-head", "liaison", "city", "city-lead")
    assert incident.first_response_at == MONDAY + timedelta(minutes=5)
    name(pw, incident, "city-lead", "participant", "city", "city-worker")
    now.move(minutes=5)
    name(pw, incident, "water-head", "liaison", "water", "water-worker")
    name(pw, incident, "water-head", "participant", "water", "water-head")
    name(pw, incident, "op-dispatcher", "liaison", "op", "grid1")
    assert incident.roles_complete_at is None
    now.move(minutes=5)
    name(pw, incident, "op-dispatcher", "scribe", "op", "grid1")
    assert incident.roles_complete_at == MONDAY + timedelta(minutes=15)
    assert ("participant", "city", "city-worker") in roles_of(pw, incident)
    # naming the same person again changes nothing; a second participant adds a place
    name(pw, incident, "city-head", "participant", "city", "city-worker")
    name(pw, incident, "city-head", "participant", "city", "city-head")
    assert len(roles_of(pw, incident)) == 8
    assert notified(pw, "participation.incident")["city-worker"] == 1
    # a new department opens places again
    incidents.add_department(
        session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id, org_id=pw.orgs["cc"].id
    )
    assert incident.roles_complete_at is None
    assert audited(pw, "participation.incident.role") == 7


def test_a_department_cannot_name_for_another_or_name_outsiders(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["city"].id, pw.orgs["water"].id])
    with pytest.raises(Forbidden):
        name(pw, incident, "water-head", "liaison", "city", "city-lead")
    with pytest.raises(Forbidden):
        name(pw, incident, "city-worker", "liaison", "city", "city-lead")  # an analyst, not a dispatcher
    with pytest.raises(Invalid) as caught:
        name(pw, incident, "city-head", "liaison", "city", "water-worker")
    assert caught.value.detail["field"] == "user_id"
    with pytest.raises(Invalid) as caught:
        name(pw, incident, "city-head", "liaison", "city", "res1")
    assert caught.value.detail["field"] == "user_id"
    with pytest.raises(Invalid) as caught:
        name(pw, incident, "city-head", "chef", "city", "city-lead")
    assert caught.value.detail["field"] == "role"
    with pytest.raises(Invalid) as caught:
        name(pw, incident, "city-head", "commander", "city", "city-lead")
    assert caught.value.detail["field"] == "org_id"
    with pytest.raises(Invalid) as caught:  # the committee is not part of it
        name(pw, incident, "op-dispatcher", "liaison", "cc", "res1")
    assert caught.value.detail["field"] == "org_id"
    assert all(r[2] is None for r in roles_of(pw, incident) if r[1] != "op" or r[0] != "commander")
    assert incident.first_response_at is None


def test_command_is_handed_over_within_the_coordinating_organisation(
    pw: ParticipationWorld, now: Clock
) -> None:
    incident = declare(pw)
    now.move(minutes=3)
    name(pw, incident, "op-dispatcher", "commander", "op", "grid1")
    assert roles_of(pw, incident)[0] == ("commander", "op", "grid1")
    texts = [
        e.text
        for e in incidents.entries(session=pw.session, actor=pw.actor("grid1"), incident_id=incident.id)
    ]
    assert any("grid1" in t for t in texts)
    # the declarer acting is not a first response
    assert incident.first_response_at is None
    # the new commander commands
    incidents.set_state(session=pw.session, actor=pw.actor("grid1"), incident_id=incident.id, state="stable")
    assert incident.first_response_at == MONDAY + timedelta(minutes=3)


def test_adding_departments_is_for_those_in_command(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["city"].id])
    with pytest.raises(Forbidden):
        incidents.add_department(
            session=pw.session,
            actor=pw.actor("city-head"),
            incident_id=incident.id,
            org_id=pw.orgs["water"].id,
        )
    with pytest.raises(Conflict):
        incidents.add_department(
            session=pw.session,
            actor=pw.actor("op-dispatcher"),
            incident_id=incident.id,
            org_id=pw.orgs["city"].id,
        )
    with pytest.raises(Invalid) as caught:
        incidents.add_department(
            session=pw.session,
            actor=pw.actor("op-dispatcher"),
            incident_id=incident.id,
            org_id=pw.orgs["water"].id,
            roles=["commander"],
        )
    assert caught.value.detail["field"] == "roles"
    rows = incidents.add_department(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=incident.id,
        org_id=pw.orgs["water"].id,
        roles=["observer"],
    )
    assert [(r.role, r.user_id) for r in rows] == [("observer", None)]


def test_a_person_can_be_stood_down_and_the_place_reopens(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["city"].id])
    liaison = name(pw, incident, "city-head", "liaison", "city", "city-lead")
    with pytest.raises(Forbidden):
        incidents.release_role(
            session=pw.session, actor=pw.actor("water-head"), incident_id=incident.id, role_id=liaison.id
        )
    incidents.release_role(
        session=pw.session, actor=pw.actor("city-head"), incident_id=incident.id, role_id=liaison.id
    )
    assert liaison.user_id is None
    commander = next(r for r in pw.session.scalars(select(IncidentRole)) if r.role == "commander")
    with pytest.raises(Invalid):
        incidents.release_role(
            session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id, role_id=commander.id
        )


def test_observers_read_but_do_not_write(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw)
    incidents.add_department(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=incident.id,
        org_id=pw.orgs["city"].id,
        roles=["observer"],
    )
    with pytest.raises(Forbidden):  # not named yet: an analyst of the department sees nothing
        incidents.get_incident(session=pw.session, actor=pw.actor("city-worker"), incident_id=incident.id)
    name(pw, incident, "city-head", "observer", "city", "city-worker")
    observer = pw.actor("city-worker")
    assert incidents.get_incident(session=pw.session, actor=observer, incident_id=incident.id) is incident
    assert incidents.entries(session=pw.session, actor=observer, incident_id=incident.id)
    assert (
        incidents.review(session=pw.session, actor=observer, incident_id=incident.id)["incident_id"]
        == incident.id
    )
    with pytest.raises(Forbidden):
        incidents.add_entry(session=pw.session, actor=observer, incident_id=incident.id, text="我看到了")
    with pytest.raises(Forbidden):
        incidents.publish_notice(session=pw.session, actor=observer, incident_id=incident.id, situation="x")
    with pytest.raises(Forbidden):
        incidents.set_state(session=pw.session, actor=observer, incident_id=incident.id, state="stable")
    with pytest.raises(Forbidden):
        incidents.add_task(session=pw.session, actor=observer, incident_id=incident.id, title="x")


def test_a_scribe_logs_entries(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw)
    name(pw, incident, "op-dispatcher", "scribe", "op", "grid1")
    now.move(minutes=1)
    entry = incidents.add_entry(
        session=pw.session, actor=pw.actor("grid1"), incident_id=incident.id, text="10:01 抢修车出发"
    )
    assert (entry.kind, entry.text, entry.actor_user_id) == ("note", "10:01 抢修车出发", pw.users["grid1"].id)
    with pytest.raises(Invalid) as caught:
        incidents.add_entry(session=pw.session, actor=pw.actor("grid1"), incident_id=incident.id, text=" ")
    assert caught.value.detail["field"] == "text"


# --- tasks -----------------------------------------------------------------------------------------------


def test_tasks_are_reminded_once_when_due_soon_or_overdue(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id])
    boss = pw.actor("op-dispatcher")
    pipe = incidents.add_task(
        session=pw.session,
        actor=boss,
        incident_id=incident.id,
        title="关闭上游阀门",
        owner_user_id=pw.users["water-worker"].id,
        due_at=MONDAY + timedelta(hours=2),
    )
    assert pipe.org_id == pw.orgs["water"].id
    truck = incidents.add_task(
        session=pw.session,
        actor=boss,
        incident_id=incident.id,
        title="调派送水车",
        org_id=pw.orgs["water"].id,
        due_at=MONDAY + timedelta(minutes=40),
    )
    assert notified(pw, "participation.incident")["water-worker"] == 3  # asked to name + 2 tasks
    now.move(minutes=5)
    assert incidents.remind(session=pw.session) == []
    now.move(minutes=10)  # 25 min before the truck is due
    assert incidents.remind(session=pw.session) == [truck]
    assert truck.reminded_at == now.at
    now.move(minutes=60)  # 45 min before the valve is due; the truck is now overdue but was reminded
    assert incidents.remind(session=pw.session) == []
    now.move(minutes=30)
    assert incidents.remind(session=pw.session) == [pipe]
    assert incidents.remind(session=pw.session) == []
    # the org-wide task reached the water department's administrators and dispatchers; the owned one only its owner
    assert notified(pw, "participation.incident") == {"water-head": 3, "water-worker": 5}
    reminders = [
        e
        for e in incidents.entries(session=pw.session, actor=boss, incident_id=incident.id)
        if e.kind == "reminder"
    ]
    assert [e.detail["task_id"] for e in reminders] == [truck.id, pipe.id]
    assert audited(pw, "participation.incident.task_remind") == 2


def test_done_tasks_and_closed_incidents_are_not_reminded(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id])
    boss = pw.actor("op-dispatcher")
    due = MONDAY + timedelta(minutes=20)

    def task(owner: str) -> IncidentTask:
        return incidents.add_task(
            session=pw.session,
            actor=boss,
            incident_id=incident.id,
            title=owner,
            owner_user_id=pw.users[owner].id,
            due_at=due,
        )

    done, waiting = task("water-worker"), task("water-head")
    incidents.complete_task(session=pw.session, actor=pw.actor("water-worker"), task_id=done.id)
    assert incidents.remind(session=pw.session) == [waiting]
    task("water-worker")
    incidents.set_state(session=pw.session, actor=boss, incident_id=incident.id, state="closed")
    assert incidents.remind(session=pw.session) == []


def test_task_input_is_checked(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id])
    boss = pw.actor("op-dispatcher")

    def task(**values: Any) -> IncidentTask:
        return incidents.add_task(
            session=pw.session, actor=boss, incident_id=incident.id, **({"title": "t"} | values)
        )

    for values, field in (
        ({"title": ""}, "title"),
        ({"due_at": MONDAY - timedelta(minutes=1)}, "due_at"),
        ({"due_at": datetime(2026, 11, 2, 12, 0)}, "due_at"),
        ({"org_id": pw.orgs["city"].id}, "org_id"),
        ({"org_id": pw.orgs["water"].id, "owner_user_id": pw.users["city-lead"].id}, "owner_user_id"),
        ({"owner_user_id": pw.users["city-lead"].id}, "org_id"),
        ({"owner_user_id": 999_999}, "owner_user_id"),
    ):
        with pytest.raises(Invalid) as caught:
            task(**values)
        assert caught.value.detail["field"] == field, values
    assert pw.session.scalar(select(func.count()).select_from(IncidentTask)) == 0


def test_a_liaison_sets_tasks_for_their_own_department_only(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id, pw.orgs["city"].id])
    name(pw, incident, "water-head", "liaison", "water", "water-worker")
    liaison = pw.actor("water-worker")
    task = incidents.add_task(
        session=pw.session,
        actor=liaison,
        incident_id=incident.id,
        title="巡查管网",
        org_id=pw.orgs["water"].id,
    )
    assert task.org_id == pw.orgs["water"].id
    with pytest.raises(Forbidden):
        incidents.add_task(
            session=pw.session, actor=liaison, incident_id=incident.id, title="x", org_id=pw.orgs["city"].id
        )


def test_completing_tasks(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id, pw.orgs["city"].id])
    task = incidents.add_task(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=incident.id,
        title="关闭阀门",
        owner_user_id=pw.users["water-worker"].id,
        due_at=MONDAY + timedelta(minutes=30),
    )
    name(pw, incident, "city-head", "participant", "city", "city-worker")
    with pytest.raises(Forbidden):
        incidents.complete_task(session=pw.session, actor=pw.actor("city-worker"), task_id=task.id)
    with pytest.raises(NotFound):
        incidents.complete_task(
            session=pw.session, actor=pw.actor("water-worker"), task_id=task.id, incident_id=incident.id + 1
        )
    now.move(minutes=45)
    incidents.complete_task(
        session=pw.session, actor=pw.actor("water-worker"), task_id=task.id, note="已关闭"
    )
    assert task.done_at == now.at
    assert incidents.is_late(task)
    with pytest.raises(Conflict):
        incidents.complete_task(session=pw.session, actor=pw.actor("water-worker"), task_id=task.id)
    done = [
        e
        for e in incidents.entries(
            session=pw.session, actor=pw.actor("water-worker"), incident_id=incident.id
        )
        if e.kind == "task_done"
    ]
    assert done[0].detail == {"task_id": task.id, "late": True, "message": done[0].detail["message"]}
    assert "已关闭" in done[0].text


# --- notices ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "expected"), [("B1", {"res1", "res2"}), ("C1", {"res1", "res2", "res3"}), ("B2", {"res3"})]
)
def test_a_notice_reaches_the_residents_of_the_area_only(
    pw: ParticipationWorld, now: Clock, area: str, expected: set[str]
) -> None:
    incident = declare(pw, area=area)
    notice = incidents.publish_notice(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=incident.id,
        situation="1号楼自来水暂停供应",
        instructions="请到小区南门领取饮用水",
    )
    assert notice.notified == len(expected)
    assert set(notified(pw, "participation.incident_notice")) == expected
    links = set(
        pw.session.scalars(
            select(Notification.link).where(Notification.kind == "participation.incident_notice")
        )
    )
    assert links == {f"/participate/incidents/{incident.id}"}
    entry = [
        e
        for e in incidents.entries(
            session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id
        )
        if e.kind == "notice"
    ]
    assert entry[0].detail["notified"] == len(expected)


def test_notices_are_for_the_commander_and_liaisons(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id])
    name(pw, incident, "water-head", "participant", "water", "water-worker")
    with pytest.raises(Forbidden):
        incidents.publish_notice(
            session=pw.session, actor=pw.actor("water-worker"), incident_id=incident.id, situation="x"
        )
    name(pw, incident, "water-head", "liaison", "water", "water-head")
    now.move(minutes=2)
    incidents.publish_notice(
        session=pw.session, actor=pw.actor("water-head"), incident_id=incident.id, situation="抢修中"
    )
    with pytest.raises(Invalid) as caught:
        incidents.publish_notice(
            session=pw.session, actor=pw.actor("water-head"), incident_id=incident.id, situation=""
        )
    assert caught.value.detail["field"] == "situation"


def test_the_public_sees_only_incidents_with_notices_and_no_internal_data(
    pw: ParticipationWorld, now: Clock
) -> None:
    quiet = declare(pw, title="内部事件")
    loud = declare(pw, area="C1", kind="flood", title="内部标题")
    with pytest.raises(NotFound):
        incidents.public_view(session=pw.session, incident_id=quiet.id)
    incidents.publish_notice(
        session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=loud.id, situation="第一次"
    )
    now.move(minutes=30)
    incidents.publish_notice(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        incident_id=loud.id,
        situation="第二次",
        instructions="避开地下车库",
    )
    view = incidents.public_view(session=pw.session, incident_id=loud.id)
    assert [n.situation for n in view.notices] == ["第二次", "第一次"]
    assert view.area is not None and view.area.code == "C1"
    assert (view.kind, view.severity, view.state) == ("flood", 2, "active")
    assert not hasattr(view, "title") and not hasattr(view, "description")
    assert [p.id for p in incidents.public_incidents(session=pw.session)] == [loud.id]
    incidents.set_state(
        session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=loud.id, state="closed"
    )
    assert incidents.public_incidents(session=pw.session) == []
    assert incidents.public_view(session=pw.session, incident_id=loud.id).state == "closed"
    with pytest.raises(NotFound):
        incidents.public_view(session=pw.session, incident_id=999_999)


# --- states ----------------------------------------------------------------------------------------------


def test_states_move_between_active_and_stable_and_closing_is_final(
    pw: ParticipationWorld, now: Clock
) -> None:
    incident = declare(pw, departments=[pw.orgs["water"].id])
    boss = pw.actor("op-dispatcher")
    name(pw, incident, "water-head", "liaison", "water", "water-head")

    def move(state: str, who: Any = boss) -> Incident:
        return incidents.set_state(session=pw.session, actor=who, incident_id=incident.id, state=state)

    with pytest.raises(Conflict):
        move("active")
    with pytest.raises(Invalid) as caught:
        move("over")
    assert caught.value.detail["field"] == "state"
    with pytest.raises(Forbidden):
        move("stable", pw.actor("water-head"))
    now.move(minutes=10)
    assert move("stable").state == "stable"
    assert move("active").state == "active"
    now.move(minutes=10)
    assert move("closed").closed_at == now.at
    for state in ("active", "stable", "closed"):
        with pytest.raises(Conflict):
            move(state)
    with pytest.raises(Conflict):
        incidents.add_task(session=pw.session, actor=boss, incident_id=incident.id, title="x")
    with pytest.raises(Conflict):
        incidents.publish_notice(session=pw.session, actor=boss, incident_id=incident.id, situation="x")
    with pytest.raises(Conflict):
        name(pw, incident, "water-head", "liaison", "water", "water-worker")
    with pytest.raises(Conflict):
        incidents.set_severity(session=pw.session, actor=boss, incident_id=incident.id, severity=3)
    # the timeline still takes notes for the review
    incidents.add_entry(session=pw.session, actor=boss, incident_id=incident.id, text="复盘：阀门位置图过期")
    states = [
        (e.detail["from"], e.detail["to"])
        for e in incidents.entries(session=pw.session, actor=boss, incident_id=incident.id)
        if e.kind == "state"
    ]
    assert states == [("active", "stable"), ("stable", "active"), ("active", "closed")]
    # members were told of each change (asked to name people, named, then three changes); not the actor
    assert notified(pw, "participation.incident") == {"water-head": 5, "water-worker": 1}


def test_severity_changes_are_logged(pw: ParticipationWorld, now: Clock) -> None:
    incident = declare(pw)
    boss = pw.actor("op-dispatcher")
    incidents.set_severity(
        session=pw.session, actor=boss, incident_id=incident.id, severity=4, note="扩大到全小区"
    )
    assert incident.severity == 4
    with pytest.raises(Conflict):
        incidents.set_severity(session=pw.session, actor=boss, incident_id=incident.id, severity=4)
    with pytest.raises(Invalid):
        incidents.set_severity(session=pw.session, actor=boss, incident_id=incident.id, severity=7)
    assert audited(pw, "participation.incident.severity") == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.sampled_from(["active", "stable", "closed", "over"]), max_size=8))
def test_state_machine_follows_its_model(pw: ParticipationWorld, moves: list[str]) -> None:
    clock.set_clock(lambda: MONDAY)
    incident = declare(pw)
    model = "active"
    for target in moves:
        allowed = target in {"active": {"stable", "closed"}, "stable": {"active", "closed"}}.get(model, set())
        try:
            incidents.set_state(
                session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=incident.id, state=target
            )
        except (Conflict, Invalid):
            assert not allowed
        else:
            assert allowed
            model = target
        assert incident.state == model
        assert (incident.closed_at is not None) == (model == "closed")


# --- review ----------------------------------------------------------------------------------------------


def test_review_figures_are_exact(pw: ParticipationWorld, now: Clock) -> None:
    t0 = MONDAY
    incident = declare(pw)
    boss = pw.actor("op-dispatcher")
    now.move(minutes=5)  # the declarer's own actions are no response
    for org in ("city", "water"):
        incidents.add_department(
            session=pw.session, actor=boss, incident_id=incident.id, org_id=pw.orgs[org].id
        )
    now.move(minutes=7)  # t0+12: first response
    name(pw, incident, "city-head", "liaison", "city", "city-lead")
    for who, role, org, user in (
        ("city-head", "participant", "city", "city-worker"),
        ("water-head", "liaison", "water", "water-worker"),
        ("water-head", "participant", "water", "water-head"),
        ("op-dispatcher", "liaison", "op", "grid1"),
    ):
        name(pw, incident, who, role, org, user)
    now.at = t0 + timedelta(minutes=40)
    name(pw, incident, "op-dispatcher", "scribe", "op", "grid1")  # all roles filled at t0+40

    def task(title: str, due: int | None) -> IncidentTask:
        return incidents.add_task(
            session=pw.session,
            actor=boss,
            incident_id=incident.id,
            title=title,
            owner_user_id=pw.users["water-worker"].id,
            due_at=t0 + timedelta(minutes=due) if due is not None else None,
        )

    on_time, late, unfinished, undated = task("a", 60), task("b", 60), task("c", 90), task("d", None)

    def done(task: IncidentTask, minute: int) -> None:
        now.at = t0 + timedelta(minutes=minute)
        incidents.complete_task(session=pw.session, actor=pw.actor("water-worker"), task_id=task.id)

    done(on_time, 50)
    done(undated, 55)
    done(late, 70)
    now.at = t0 + timedelta(minutes=100)
    incidents.set_state(session=pw.session, actor=boss, incident_id=incident.id, state="stable")
    open_review = incidents.review(session=pw.session, actor=boss, incident_id=incident.id)
    assert open_review["tasks"]["late"] == 1  # the unfinished task only counts late once closed
    assert open_review["tasks"]["overdue_open"] == 1
    now.at = t0 + timedelta(minutes=160)
    incidents.set_state(session=pw.session, actor=boss, incident_id=incident.id, state="closed")
    now.move(days=3)  # reading it later changes nothing
    figures = incidents.review(session=pw.session, actor=boss, incident_id=incident.id)
    assert figures["time_to_first_response_seconds"] == 12 * 60
    assert figures["time_to_all_roles_seconds"] == 40 * 60
    assert figures["duration_seconds"] == 160 * 60
    assert figures["time_active_seconds"] == 100 * 60
    assert figures["time_stable_seconds"] == 60 * 60
    assert figures["roles"] == {"total": 7, "filled": 7, "open": 0}
    assert figures["tasks"] == {
        "total": 4,
        "done": 3,
        "done_on_time": 2,
        "late": 2,
        "late_task_ids": sorted([late.id, unfinished.id]),
        "unfinished": 1,
        "overdue_open": 1,
    }
    assert figures["declared_at"] == "2026-11-02T10:00:00+08:00"
    assert figures["closed_at"] == "2026-11-02T12:40:00+08:00"
    assert audited(pw, "participation.incident.review") == 2


# --- who sees what ---------------------------------------------------------------------------------------


def test_who_sees_which_incidents(pw: ParticipationWorld, now: Clock) -> None:
    water = declare(pw, departments=[pw.orgs["water"].id])
    other = declare(pw, "bureau-dispatcher", title="另一事件")

    def visible(who: str) -> list[int]:
        return [i.id for i in incidents.list_incidents(session=pw.session, actor=pw.actor(who)).items]

    assert visible("op-dispatcher") == [other.id, water.id]  # the operator and the bureau see all
    assert visible("grid1") == [other.id, water.id]
    assert visible("bureau-admin") == [other.id, water.id]
    assert visible("water-head") == [water.id]  # asked to name people
    assert visible("water-worker") == [water.id]  # a dispatcher of an involved department
    assert visible("city-head") == []
    with pytest.raises(Forbidden):
        visible("res1")
    with pytest.raises(Forbidden):
        incidents.get_incident(session=pw.session, actor=pw.actor("city-head"), incident_id=water.id)
    with pytest.raises(NotFound):
        incidents.get_incident(session=pw.session, actor=pw.actor("op-dispatcher"), incident_id=999_999)
    with pytest.raises(Invalid):
        incidents.list_incidents(session=pw.session, actor=pw.actor("op-dispatcher"), state="hot")
    page = incidents.list_incidents(session=pw.session, actor=pw.actor("op-dispatcher"), limit=1)
    assert [i.id for i in page.items] == [other.id] and page.next
    rest = incidents.list_incidents(
        session=pw.session, actor=pw.actor("op-dispatcher"), after=page.next, limit=1
    )
    assert [i.id for i in rest.items] == [water.id]
    assert audited(pw, "participation.incident.list") == 8
    view = incidents.incident_view(session=pw.session, actor=pw.actor("water-head"), incident_id=water.id)
    assert view.access.name_for == frozenset({pw.orgs["water"].id})
    assert not view.access.command
    assert {u.username for u in view.candidates[pw.orgs["water"].id]} == {"water-head", "water-worker"}
    assert audited(pw, "participation.incident.read") == 1
