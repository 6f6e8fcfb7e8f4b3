"""The escalation ladder: team lead, then department head, then the data bureau and street office,
with time moved by the tests; the sweep records every rung passed, notifies each rung's people
once, audits itself, and does nothing when run again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from participation.pworld import MONDAY, ParticipationWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Invalid
from zhishe.core.notifications.models import Notification
from zhishe.participation import escalation, sla
from zhishe.participation.models import Request, RequestUpdate

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time of 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# A leak (4 working hours) filed Monday 2 Nov 10:00 is due at 15:30 the same day. Rung 1 falls when
# 20 % of the SLA (48 minutes) remains: 14:42; rung 2 at 15:30; rung 3 two working hours later: 17:30.
LEAK_DUE, LEAK_RUNGS = at(11, 2, 15, 30), (at(11, 2, 14, 42), at(11, 2, 15, 30), at(11, 2, 17, 30))


def order(
    pw: ParticipationWorld,
    category: str = "leak",
    *,
    org: str | None = "water",
    team: str | None = "repair",
    requested: datetime = MONDAY,
    state: str = "assigned",
    **extra: Any,
) -> Request:
    """A work order made directly in the table, with its SLA deadline and first rung scheduled."""
    session = pw.session
    kind = pw.categories[category]
    row = Request(
        category_id=kind.id,
        state=state,
        description="test order",
        token=uuid4().hex,
        org_id=pw.orgs[org].id if org else None,
        team_id=pw.teams[team].id if team else None,
        requested_at=requested,
        updated_at=requested,
        expected_at=sla.deadline(session, requested, kind.sla_amount, kind.sla_unit),
        **extra,
    )
    session.add(row)
    session.flush()
    escalation.schedule(session, row)
    session.commit()
    return row


def told(pw: ParticipationWorld) -> dict[str, list[Notification]]:
    """Escalation notifications by recipient's user name."""
    names = {user.id: name for name, user in pw.users.items()}
    out: dict[str, list[Notification]] = {}
    query = select(Notification).where(Notification.kind.like("participation.escalation.%"))
    for note in pw.session.scalars(query.order_by(Notification.id)):
        out.setdefault(names.get(note.user_id, str(note.user_id)), []).append(note)
    return out


def entries(session: Session, request_id: int) -> list[RequestUpdate]:
    """The order's escalation entries, oldest first."""
    query = select(RequestUpdate).where(
        RequestUpdate.request_id == request_id, RequestUpdate.kind == "escalation"
    )
    return list(session.scalars(query.order_by(RequestUpdate.id)))


def sweep_events(session: Session) -> list[dict[str, Any]]:
    """The details of the sweeps' audit events."""
    query = select(AuditEvent).where(AuditEvent.action == "participation.escalation.sweep")
    return [json.loads(event.detail) for event in session.scalars(query.order_by(AuditEvent.id))]


# --- scheduling ---------------------------------------------------------------------------------


def test_each_rung_is_scheduled_in_working_time(pw: ParticipationWorld) -> None:
    leak = order(pw)
    assert leak.expected_at == LEAK_DUE
    times = []
    for level in range(4):
        leak.escalation_level = level
        escalation.schedule(pw.session, leak)
        times.append(leak.next_escalation_at)
    assert times == [*LEAK_RUNGS, None]
    # A three-working-day street light filed Monday 10:00 is due at the end of Thursday: 27 working
    # hours. Warned with 5.4 hours left (Thursday 10:36); the bureau 13.5 working hours after the
    # deadline (Monday 9 Nov 17:00).
    light = order(pw, "streetlight", org="city", team="lights")
    assert light.expected_at == at(11, 6)
    calendar = sla.WorkCalendar.load(pw.session)
    span = sla.working_seconds(pw.session, MONDAY, at(11, 6))
    assert span == 27 * 3600
    assert escalation.rung_times(calendar, MONDAY, at(11, 6), span) == (
        at(11, 5, 10, 36),
        at(11, 6),
        at(11, 9, 17),
    )
    assert light.next_escalation_at == at(11, 5, 10, 36)


def test_finished_and_waiting_orders_are_not_scheduled(pw: ParticipationWorld) -> None:
    for state in ("resolved", "closed", "duplicate", "rejected"):
        assert order(pw, state=state).next_escalation_at is None
    waiting = order(pw, state="waiting", wait_reason="parts", paused_at=at(11, 2, 11))
    assert waiting.next_escalation_at is None
    top = order(pw, escalation_level=3)
    assert top.next_escalation_at is None


def test_a_wait_moves_the_ladder_with_the_deadline(pw: ParticipationWorld) -> None:
    leak = order(pw)
    # Waiting for parts 11:00-12:00, then resumed: the deadline and every rung move an hour later.
    leak.expected_at = sla.extend(pw.session, leak.expected_at, at(11, 2, 11), at(11, 2, 12), "hours")
    escalation.schedule(pw.session, leak)
    assert leak.expected_at == at(11, 2, 16, 30)
    assert leak.next_escalation_at == at(11, 2, 15, 42)


# --- the sweep, rung by rung --------------------------------------------------------------------


def test_nothing_is_due_before_the_first_rung(pw: ParticipationWorld) -> None:
    leak = order(pw)
    result = escalation.sweep(session=pw.session, now=at(11, 2, 14, 41))
    assert (result.examined, result.escalated, result.notified) == (0, 0, 0)
    assert leak.escalation_level == 0 and entries(pw.session, leak.id) == []
    assert told(pw) == {} and sweep_events(pw.session) == []


def test_the_ladder_climbs_one_rung_at_a_time(pw: ParticipationWorld, world: Any) -> None:
    street_office = world.user("cc-head", pw.orgs["cc"], role="admin")
    pw.users["cc-head"] = street_office
    leak = order(pw)

    # Rung 1: only the repair team's lead.
    first = escalation.sweep(session=pw.session, now=LEAK_RUNGS[0])
    assert (first.examined, first.escalated, first.rungs) == (1, 1, {1: 1, 2: 0, 3: 0})
    assert leak.escalation_level == 1 and leak.next_escalation_at == LEAK_RUNGS[1]
    assert set(told(pw)) == {"water-worker"}
    note = told(pw)["water-worker"][0]
    assert note.kind == "participation.escalation.team_lead"
    assert note.message["values"]["id"] == str(leak.id)
    assert note.link == escalation.ORDER_LINK.format(id=leak.id)
    (entry,) = entries(pw.session, leak.id)
    assert (entry.public, entry.state, entry.at) == (False, "assigned", LEAK_RUNGS[0])
    assert "2026-11-02T15:30+08:00" in entry.text
    assert entry.detail["rung"] == 1 and entry.detail["to"] == "team_lead"
    assert entry.detail["users"] == [pw.users["water-worker"].id]

    # Rung 2 at the deadline: the water department's head.
    second = escalation.sweep(session=pw.session, now=LEAK_RUNGS[1])
    assert second.rungs == {1: 0, 2: 1, 3: 0}
    assert leak.escalation_level == 2 and leak.next_escalation_at == LEAK_RUNGS[2]
    assert set(told(pw)) == {"water-worker", "water-head"}
    assert told(pw)["water-head"][0].kind == "participation.escalation.department_head"

    # Rung 3: the data bureau's admin and dispatcher and the street office; then nothing more.
    third = escalation.sweep(session=pw.session, now=LEAK_RUNGS[2])
    assert third.rungs == {1: 0, 2: 0, 3: 1} and third.notified == 3
    assert leak.escalation_level == 3 and leak.next_escalation_at is None
    assert set(told(pw)) == {"water-worker", "water-head", "bureau-admin", "bureau-dispatcher", "cc-head"}
    assert [e.detail["to"] for e in entries(pw.session, leak.id)] == [
        "team_lead",
        "department_head",
        "bureau",
    ]
    assert len(sweep_events(pw.session)) == 3
    assert escalation.sweep(session=pw.session, now=at(11, 30)).examined == 0


def test_a_far_overdue_order_records_every_rung_and_a_second_sweep_does_nothing(
    pw: ParticipationWorld,
) -> None:
    light = order(pw, "streetlight", org="city", team="lights")
    now = at(11, 20, 9)
    result = escalation.sweep(session=pw.session, now=now)
    assert (result.examined, result.escalated, result.rungs) == (1, 1, {1: 1, 2: 1, 3: 1})
    assert light.escalation_level == 3 and light.next_escalation_at is None
    recorded = entries(pw.session, light.id)
    assert [e.detail["rung"] for e in recorded] == [1, 2, 3]
    assert [e.detail["due_at"] for e in recorded] == [
        at(11, 5, 10, 36).isoformat(),
        at(11, 6).isoformat(),
        at(11, 9, 17).isoformat(),
    ]
    assert set(told(pw)) == {"city-lead", "city-head", "bureau-admin", "bureau-dispatcher"}
    (event,) = sweep_events(pw.session)
    assert event["examined"] == 1 and event["rungs"] == {"team_lead": 1, "department_head": 1, "bureau": 1}
    pw.session.commit()

    counts = (
        pw.session.scalar(select(func.count()).select_from(RequestUpdate)),
        pw.session.scalar(select(func.count()).select_from(Notification)),
        pw.session.scalar(select(func.count()).select_from(AuditEvent)),
    )
    again = escalation.sweep(session=pw.session, now=now)
    assert (again.examined, again.escalated, again.notified) == (0, 0, 0)
    assert counts == (
        pw.session.scalar(select(func.count()).select_from(RequestUpdate)),
        pw.session.scalar(select(func.count()).select_from(Notification)),
        pw.session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def test_waiting_and_finished_orders_do_not_escalate(pw: ParticipationWorld) -> None:
    waiting = order(pw)
    waiting.state, waiting.wait_reason, waiting.paused_at = "waiting", "weather", at(11, 2, 11)
    resolved = order(pw)
    resolved.state = "resolved"
    pw.session.commit()  # both still carry the rung-1 time set before they changed
    assert waiting.next_escalation_at == resolved.next_escalation_at == LEAK_RUNGS[0]
    result = escalation.sweep(session=pw.session, now=at(11, 30))
    assert (result.examined, result.escalated, result.cleared) == (2, 0, 2)
    assert waiting.escalation_level == resolved.escalation_level == 0
    assert waiting.next_escalation_at is None and resolved.next_escalation_at is None
    assert told(pw) == {} and entries(pw.session, waiting.id) == []


def test_orders_of_one_team_are_told_in_one_notification(pw: ParticipationWorld) -> None:
    orders = [order(pw) for _ in range(3)]
    result = escalation.sweep(session=pw.session, now=LEAK_RUNGS[0], batch=2)
    assert result.examined == 3 and result.rungs[1] == 3
    assert all(o.escalation_level == 1 for o in orders)
    assert all(len(entries(pw.session, o.id)) == 1 for o in orders)
    (note,) = told(pw)["water-worker"]
    assert note.message == {"template": "{n} work orders are due soon or overdue", "values": {"n": "3"}}
    assert note.link == escalation.QUEUE_LINK


def test_without_a_team_lead_the_assignee_is_warned(pw: ParticipationWorld) -> None:
    grid = order(pw, "garbage", org="op", team=None, assignee_user_id=pw.users["grid1"].id)
    escalation.sweep(session=pw.session, now=grid.next_escalation_at)
    assert set(told(pw)) == {"grid1"}


def test_an_order_without_a_department_goes_to_the_bureau(pw: ParticipationWorld) -> None:
    stray = order(pw, org=None, team=None)
    escalation.sweep(session=pw.session, now=LEAK_RUNGS[0])
    assert set(told(pw)) == {"bureau-admin", "bureau-dispatcher"}
    assert stray.escalation_level == 1


def test_the_sweep_reads_the_injected_clock(pw: ParticipationWorld) -> None:
    leak = order(pw)
    with clock.frozen(LEAK_RUNGS[1]):
        result = escalation.sweep(session=pw.session)
    assert result.at == LEAK_RUNGS[1] and result.rungs == {1: 1, 2: 1, 3: 0}
    assert leak.escalation_level == 2


def test_reschedule_all_recomputes_after_the_calendar_changes(pw: ParticipationWorld) -> None:
    light = order(pw, "streetlight", org="city", team="lights")
    light.next_escalation_at = None
    done = order(pw, state="closed")
    pw.session.commit()
    assert escalation.reschedule_all(session=pw.session) == 1
    assert light.next_escalation_at == at(11, 5, 10, 36)
    assert done.next_escalation_at is None


# --- the public badge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "paused", "now", "badge"),
    [
        ("in_progress", False, at(11, 2, 15, 29), False),
        ("in_progress", False, LEAK_DUE, True),
        ("reopened", False, at(11, 9), True),
        ("waiting", True, at(11, 9), False),
        ("resolved", False, at(11, 9), False),
        ("rejected", False, at(11, 9), False),
    ],
)
def test_overdue_badge(pw: ParticipationWorld, state: str, paused: bool, now: datetime, badge: bool) -> None:
    leak = order(pw, state=state, paused_at=at(11, 2, 11) if paused else None)
    assert escalation.overdue_badge(leak, now) is badge
    with clock.frozen(now):
        assert escalation.overdue_badge(leak) is badge


def test_a_batch_below_one_is_refused_and_nothing_is_written(pw: ParticipationWorld) -> None:
    leak = order(pw)
    for bad in (0, -5):
        with pytest.raises(Invalid) as error:
            escalation.sweep(session=pw.session, now=at(11, 30), batch=bad)
        assert error.value.detail == {"field": "batch"}
    assert leak.escalation_level == 0 and entries(pw.session, leak.id) == []
    assert sweep_events(pw.session) == []
