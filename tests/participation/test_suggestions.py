"""Suggestions (建言献策): posting, supporting, the threshold and its deadline on the working-day
calendar, who answers, milestones, linked reports, the overdue sweep and the on-time measure."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from participation.pworld import MONDAY, SHANGHAI, ParticipationWorld
from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.audit.models import AuditEvent
from zhishe.core.audit.service import verify
from zhishe.core.auth import system_actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.notifications.models import Notification
from zhishe.participation import suggestions
from zhishe.participation.models import Request, RequestUpdate, Suggestion, SuggestionSupport

#: Friday 2026-11-06 10:00 in Shanghai.
FRIDAY = MONDAY + timedelta(days=4)


@pytest.fixture()
def threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """A threshold of two supports, so that res2 and res3 reach it."""
    monkeypatch.setattr(get_settings(), "suggestion_threshold", 2)
    return 2


def _post(
    pw: ParticipationWorld, title: str = "在幸福路口加装红绿灯", who: str = "res1", **extra: Any
) -> Suggestion:
    values = {"domain": "transport", "title": title, "body": "上下学时段车多，孩子过马路很危险。"} | extra
    suggestion = suggestions.create(session=pw.session, actor=pw.actor(who), **values)
    pw.session.commit()
    return suggestion


def _reach(pw: ParticipationWorld, suggestion: Suggestion) -> Suggestion:
    for who in ("res2", "res3"):
        suggestions.support(session=pw.session, actor=pw.actor(who), suggestion_id=suggestion.id)
    pw.session.commit()
    return suggestion


def _notified(pw: ParticipationWorld, username: str) -> list[str]:
    rows = pw.session.scalars(
        select(Notification).where(
            Notification.user_id == pw.users[username].id, Notification.kind == "participation.suggestion"
        )
    )
    return [n.message["template"] for n in rows]


def _actions(pw: ParticipationWorld, suggestion: Suggestion) -> list[str]:
    query = (
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "suggestion", AuditEvent.object_id == str(suggestion.id))
        .order_by(AuditEvent.id)
    )
    return list(pw.session.scalars(query))


def _report(
    pw: ParticipationWorld, org: str = "city", parent: Request | None = None, **extra: Any
) -> Request:
    now = clock.now()
    request = Request(
        category_id=pw.categories["streetlight"].id,
        description="路口的灯坏了",
        address="幸福路与和平街路口",
        token=secrets.token_hex(8),
        org_id=pw.orgs[org].id,
        parent_id=parent.id if parent else None,
        requested_at=now,
        updated_at=now,
        reporter_user_id=pw.users["res2"].id,
        reporter_phone="13800000000",
        **extra,
    )
    pw.session.add(request)
    pw.session.commit()
    return request


def _new_resident(pw: ParticipationWorld, username: str) -> None:
    user = User(
        username=username,
        display_name=username,
        password_hash="x",
        org_id=pw.orgs["cc"].id,
        role="resident",
        created_at=clock.now(),
    )
    pw.session.add(user)
    pw.session.commit()
    pw.users[username] = user


def _count(pw: ParticipationWorld, model: Any) -> int:
    return int(pw.session.scalar(select(func.count()).select_from(model)) or 0)


# --- posting and reading -----------------------------------------------------------------------------


def test_a_resident_posts_a_suggestion_that_shows_the_author_by_initials_only(pw: ParticipationWorld) -> None:
    pw.users["res1"].display_name = "王小明"
    pw.users["res2"].display_name = "Zhang  San"
    pw.session.commit()
    clock.set_clock(lambda: MONDAY)
    first = _post(pw)
    second = _post(pw, "Plant trees on Heping Street", who="res2", domain="environment")
    assert first.state == "open" and first.supporters == 0 and first.org_id is None
    assert first.created_at == MONDAY
    authors = suggestions.authors_of(session=pw.session, suggestions=[first, second])
    assert authors == {first.id: "王*", second.id: "Z. S."}
    v = suggestions.view(session=pw.session, suggestion_id=first.id)
    assert v.author == "王*" and v.mine is False and v.may == frozenset()
    assert suggestions.view(session=pw.session, suggestion_id=first.id, actor=pw.actor("res1")).mine
    assert _actions(pw, first) == ["participation.suggestion.create"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"domain": "weather"}, "domain"),
        ({"title": "   "}, "title"),
        ({"title": "长" * 201}, "title"),
        ({"body": ""}, "body"),
        ({"body": "x" * 10_001}, "body"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    pw: ParticipationWorld, values: dict[str, str], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        _post(pw, **values)
    assert caught.value.detail["field"] == field
    pw.session.rollback()
    assert _count(pw, Suggestion) == 0
    assert pw.session.scalar(select(func.count()).where(AuditEvent.object_type == "suggestion")) == 0


def test_titles_are_one_line_and_nul_bytes_are_dropped(pw: ParticipationWorld) -> None:
    suggestion = _post(pw, "  路口\n  红绿灯\x00 ", body="第一行\n第二行\x00")
    assert suggestion.title == "路口 红绿灯" and suggestion.body == "第一行\n第二行"


def test_only_residents_post_and_support_and_never_their_own(pw: ParticipationWorld) -> None:
    with pytest.raises(Forbidden):
        _post(pw, who="city-head")
    pw.session.rollback()
    suggestion = _post(pw)
    for who in ("city-head", "bureau-admin", "res1"):
        with pytest.raises(Forbidden):
            suggestions.support(session=pw.session, actor=pw.actor(who), suggestion_id=suggestion.id)
    with pytest.raises(NotFound):
        suggestions.support(session=pw.session, actor=pw.actor("res2"), suggestion_id=suggestion.id + 99)
    assert _count(pw, SuggestionSupport) == 0


def test_a_token_without_the_participation_write_scope_changes_nothing(pw: ParticipationWorld) -> None:
    suggestion = _post(pw)
    token = dataclasses.replace(pw.actor("res2"), via="token", scopes=frozenset({"catalog:read"}))
    with pytest.raises(Forbidden) as caught:
        suggestions.support(session=pw.session, actor=token, suggestion_id=suggestion.id)
    assert caught.value.detail["scope"] == "participation:write"
    allowed = dataclasses.replace(token, scopes=frozenset({"participation:write"}))
    assert suggestions.support(session=pw.session, actor=allowed, suggestion_id=suggestion.id).supporters == 1


def test_support_is_idempotent_and_can_be_withdrawn_while_open(pw: ParticipationWorld) -> None:
    suggestion = _post(pw)
    res2 = pw.actor("res2")
    for _ in range(2):
        suggestions.support(session=pw.session, actor=res2, suggestion_id=suggestion.id)
    pw.session.commit()
    assert suggestion.supporters == 1 and _count(pw, SuggestionSupport) == 1
    view = suggestions.view(session=pw.session, suggestion_id=suggestion.id, actor=res2)
    assert view.supported and view.may == {"withdraw"}
    for _ in range(2):
        suggestions.withdraw_support(session=pw.session, actor=res2, suggestion_id=suggestion.id)
    pw.session.commit()
    assert suggestion.supporters == 0 and _count(pw, SuggestionSupport) == 0
    assert suggestions.view(session=pw.session, suggestion_id=suggestion.id, actor=res2).may == {"support"}
    assert _actions(pw, suggestion) == [
        "participation.suggestion.create",
        "participation.suggestion.support",
        "participation.suggestion.withdraw",
    ]


# --- the threshold and its deadline ----------------------------------------------------------------


def test_reaching_the_threshold_exactly_starts_a_deadline_past_the_weekend(
    pw: ParticipationWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "suggestion_threshold", 3)
    _new_resident(pw, "res4")
    clock.set_clock(lambda: FRIDAY)
    suggestion = _post(pw)
    suggestions.assign(
        session=pw.session,
        actor=pw.actor("bureau-dispatcher"),
        suggestion_id=suggestion.id,
        org_id=pw.orgs["city"].id,
    )
    for count, who in enumerate(("res2", "res3"), start=1):
        suggestions.support(session=pw.session, actor=pw.actor(who), suggestion_id=suggestion.id)
        assert (suggestion.supporters, suggestion.state, suggestion.response_due_at) == (count, "open", None)
    before = len(_notified(pw, "city-head"))
    suggestions.support(session=pw.session, actor=pw.actor("res4"), suggestion_id=suggestion.id)
    pw.session.commit()
    assert suggestion.state == "awaiting_response" and suggestion.supporters == 3
    assert suggestion.threshold_reached_at == FRIDAY
    # 15 working days from Friday 6 November: the last is Friday 27 November; due at its end.
    assert suggestion.response_due_at == datetime(2026, 11, 28, 0, 0, tzinfo=SHANGHAI)
    assert suggestions.due_day(suggestion) == date(2026, 11, 27)
    told = pw.session.scalars(
        select(Notification).where(Notification.user_id == pw.users["city-head"].id).order_by(Notification.id)
    ).all()
    assert told[-1].message["values"]["due"] == "2026-11-27"
    assert told[-1].link == f"/participate/suggestions/{suggestion.id}"
    assert len(_notified(pw, "city-head")) == before + 1 and len(_notified(pw, "city-lead")) == before + 1
    assert _notified(pw, "city-worker") == [] and _notified(pw, "bureau-admin") == []
    assert any("reached" in m for m in _notified(pw, "res1"))
    assert "participation.suggestion.threshold" in _actions(pw, suggestion)
    # the threshold is reached once: a further support neither moves the deadline nor notifies again
    with pytest.raises(Conflict):
        suggestions.withdraw_support(session=pw.session, actor=pw.actor("res4"), suggestion_id=suggestion.id)
    pw.session.rollback()
    assert suggestion.supporters == 3


def test_the_deadline_skips_the_national_day_holiday_and_counts_the_make_up_saturday(
    pw: ParticipationWorld, threshold: int
) -> None:
    reached = datetime(2026, 9, 30, 16, 0, tzinfo=SHANGHAI)
    clock.set_clock(lambda: reached)
    suggestion = _reach(pw, _post(pw))
    # 1-7 October are off; 8, 9, 10 (make-up Saturday), 12-16, 19-23, 26, 27: fifteen working days
    assert suggestion.response_due_at == datetime(2026, 10, 28, 0, 0, tzinfo=SHANGHAI)


def test_without_a_department_the_bureau_is_told_and_assigns_one_while_the_deadline_runs(
    pw: ParticipationWorld, threshold: int
) -> None:
    clock.set_clock(lambda: MONDAY)
    suggestion = _reach(pw, _post(pw))
    due = suggestion.response_due_at
    assert suggestion.state == "awaiting_response" and suggestion.org_id is None and due is not None
    assert any("no department" in m for m in _notified(pw, "bureau-dispatcher"))
    assert _notified(pw, "city-head") == []
    for who in ("city-head", "res1", "grid1"):
        with pytest.raises(Forbidden):
            suggestions.assign(
                session=pw.session,
                actor=pw.actor(who),
                suggestion_id=suggestion.id,
                org_id=pw.orgs["city"].id,
            )
    with pytest.raises(Invalid) as caught:
        suggestions.assign(
            session=pw.session,
            actor=pw.actor("bureau-dispatcher"),
            suggestion_id=suggestion.id,
            org_id=10_000,
        )
    assert caught.value.detail["field"] == "org_id"
    clock.set_clock(lambda: MONDAY + timedelta(days=1))
    suggestions.assign(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        suggestion_id=suggestion.id,
        org_id=pw.orgs["city"].id,
    )
    pw.session.commit()
    assert suggestion.org_id == pw.orgs["city"].id and suggestion.response_due_at == due
    assert any("assigned to your department" in m for m in _notified(pw, "city-lead"))
    assert "participation.suggestion.assign" in _actions(pw, suggestion)


# --- answers ----------------------------------------------------------------------------------------


def _assigned(pw: ParticipationWorld, org: str = "city") -> Suggestion:
    suggestion = _reach(pw, _post(pw))
    suggestions.assign(
        session=pw.session,
        actor=pw.actor("bureau-admin"),
        suggestion_id=suggestion.id,
        org_id=pw.orgs[org].id,
    )
    pw.session.commit()
    return suggestion


def test_only_the_responsible_departments_answering_staff_may_answer(
    pw: ParticipationWorld, threshold: int
) -> None:
    clock.set_clock(lambda: MONDAY)
    suggestion = _assigned(pw)
    for who in ("res1", "res2", "water-head", "city-worker", "bureau-admin"):
        with pytest.raises(Forbidden):
            suggestions.respond(
                session=pw.session,
                actor=pw.actor(who),
                suggestion_id=suggestion.id,
                decision="accepted",
                text="好",
            )
        assert "respond" not in suggestions.may(
            session=pw.session, actor=pw.actor(who), suggestion=suggestion
        )
    with pytest.raises(Invalid) as caught:
        suggestions.respond(
            session=pw.session,
            actor=pw.actor("city-lead"),
            suggestion_id=suggestion.id,
            decision="maybe",
            text="x",
        )
    assert caught.value.detail["field"] == "decision"
    with pytest.raises(Invalid) as caught:
        suggestions.respond(
            session=pw.session,
            actor=pw.actor("city-lead"),
            suggestion_id=suggestion.id,
            decision="declined",
            text=" ",
        )
    assert caught.value.detail["field"] == "text"
    pw.session.rollback()
    assert suggestion.state == "awaiting_response" and suggestion.response == ""
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-lead"),
        suggestion_id=suggestion.id,
        decision="declined",
        text="该路口车流量未达到设置信号灯的标准，已改为加装减速带。",
    )
    pw.session.commit()
    assert suggestion.state == "declined" and suggestion.responded_by_user_id == pw.users["city-lead"].id
    assert suggestions.on_time(suggestion) is True
    with pytest.raises(Conflict):
        suggestions.respond(
            session=pw.session,
            actor=pw.actor("city-head"),
            suggestion_id=suggestion.id,
            decision="accepted",
            text="x",
        )
    assert any("declined" in m for m in _notified(pw, "res2")) and any(
        "declined" in m for m in _notified(pw, "res1")
    )
    _new_resident(pw, "res4")
    with pytest.raises(Conflict):
        suggestions.support(session=pw.session, actor=pw.actor("res4"), suggestion_id=suggestion.id)


def test_a_department_may_answer_early_before_the_threshold(pw: ParticipationWorld) -> None:
    suggestion = _post(pw)
    with pytest.raises(Forbidden):  # nobody is responsible yet
        suggestions.respond(
            session=pw.session,
            actor=pw.actor("city-head"),
            suggestion_id=suggestion.id,
            decision="accepted",
            text="x",
        )
    suggestions.assign(
        session=pw.session,
        actor=pw.actor("bureau-dispatcher"),
        suggestion_id=suggestion.id,
        org_id=pw.orgs["city"].id,
    )
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-head"),
        suggestion_id=suggestion.id,
        decision="accepted",
        text="计划",
    )
    assert suggestion.state == "accepted" and suggestion.response_due_at is None
    assert suggestions.on_time(suggestion) is None


def test_answers_on_time_and_late_are_measured_per_department(pw: ParticipationWorld, threshold: int) -> None:
    clock.set_clock(lambda: MONDAY)
    on_time = _assigned(pw, "city")
    late = _assigned(pw, "water")
    silent = _assigned(pw, "city")
    early = _post(pw)  # answered before any deadline: not in the measure
    due = on_time.response_due_at
    assert due is not None and late.response_due_at == due == silent.response_due_at
    clock.set_clock(lambda: due - timedelta(seconds=1))
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-lead"),
        suggestion_id=on_time.id,
        decision="accepted",
        text="计划",
    )
    clock.set_clock(lambda: due + timedelta(hours=3))
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("water-head"),
        suggestion_id=late.id,
        decision="declined",
        text="理由",
    )
    suggestions.assign(
        session=pw.session, actor=pw.actor("bureau-admin"), suggestion_id=early.id, org_id=pw.orgs["city"].id
    )
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-lead"),
        suggestion_id=early.id,
        decision="accepted",
        text="计划",
    )
    pw.session.commit()
    assert (suggestions.on_time(on_time), suggestions.on_time(late)) == (True, False)
    week = suggestions.answered_on_time(session=pw.session, start=MONDAY, end=MONDAY + timedelta(days=60))
    assert (week["due"], week["answered"], week["on_time"], week["late"]) == (3, 2, 1, 1)
    assert week["unanswered_overdue"] == 1 and week["share_on_time"] == pytest.approx(1 / 3)
    city, water = week["by_org"][pw.orgs["city"].id], week["by_org"][pw.orgs["water"].id]
    assert (city["due"], city["on_time"], city["unanswered_overdue"], city["share_on_time"]) == (2, 1, 1, 0.5)
    assert (water["due"], water["late"], water["share_on_time"]) == (1, 1, 0.0)
    before = suggestions.answered_on_time(session=pw.session, start=MONDAY - timedelta(days=9), end=MONDAY)
    assert before["due"] == 0 and before["share_on_time"] is None and before["by_org"] == {}
    with pytest.raises(Invalid):
        suggestions.answered_on_time(session=pw.session, start=MONDAY, end=MONDAY)


# --- milestones ---------------------------------------------------------------------------------------


def test_milestones_never_go_back_and_100_percent_means_implemented(
    pw: ParticipationWorld, threshold: int
) -> None:
    suggestion = _assigned(pw)
    lead = pw.actor("city-lead")
    with pytest.raises(Conflict):  # not accepted yet
        suggestions.add_milestone(
            session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=10, text="x"
        )
    suggestions.respond(
        session=pw.session,
        actor=lead,
        suggestion_id=suggestion.id,
        decision="accepted",
        text="本月完成勘察设计",
    )
    suggestions.add_milestone(
        session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=30, text="设计完成"
    )
    suggestions.add_milestone(
        session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=30, text="采购中"
    )
    pw.session.commit()
    for percent in (20, 101, -1):
        with pytest.raises(Invalid) as caught:
            suggestions.add_milestone(
                session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=percent, text="x"
            )
        assert caught.value.detail["field"] == "percent"
    with pytest.raises(Forbidden):
        suggestions.add_milestone(
            session=pw.session,
            actor=pw.actor("water-head"),
            suggestion_id=suggestion.id,
            percent=50,
            text="x",
        )
    assert suggestion.progress == 30 and suggestion.state == "accepted"
    suggestions.add_milestone(
        session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=100, text="信号灯启用"
    )
    pw.session.commit()
    assert suggestion.state == "implemented" and suggestion.progress == 100
    assert [
        m.percent for m in suggestions.milestones_of(session=pw.session, suggestion_id=suggestion.id)
    ] == [
        30,
        30,
        100,
    ]
    with pytest.raises(Conflict):
        suggestions.add_milestone(
            session=pw.session, actor=lead, suggestion_id=suggestion.id, percent=100, text="x"
        )
    assert any("implemented" in m for m in _notified(pw, "res3"))
    assert _actions(pw, suggestion)[-2:] == [
        "participation.suggestion.milestone",
        "participation.suggestion.implemented",
    ]


# --- linked reports ----------------------------------------------------------------------------------


def test_staff_of_the_reports_department_or_the_bureau_link_reports(pw: ParticipationWorld) -> None:
    suggestion = _post(pw)
    mine, other = _report(pw, "city"), _report(pw, "water")
    part = _report(pw, "city", parent=mine)
    closed = _report(pw, "city", state="closed")
    with pytest.raises(Forbidden):
        suggestions.link_report(
            session=pw.session, actor=pw.actor("city-lead"), suggestion_id=suggestion.id, request_id=other.id
        )
    with pytest.raises(Forbidden):
        suggestions.link_report(
            session=pw.session, actor=pw.actor("res1"), suggestion_id=suggestion.id, request_id=mine.id
        )
    with pytest.raises(Invalid) as caught:
        suggestions.link_report(
            session=pw.session, actor=pw.actor("city-lead"), suggestion_id=suggestion.id, request_id=part.id
        )
    assert caught.value.detail["field"] == "request_id"
    with pytest.raises(NotFound):
        suggestions.link_report(
            session=pw.session, actor=pw.actor("city-lead"), suggestion_id=suggestion.id, request_id=9999
        )
    pw.session.rollback()
    suggestions.link_report(
        session=pw.session, actor=pw.actor("city-lead"), suggestion_id=suggestion.id, request_id=mine.id
    )
    suggestions.link_report(
        session=pw.session, actor=pw.actor("city-lead"), suggestion_id=suggestion.id, request_id=mine.id
    )
    suggestions.link_report(
        session=pw.session,
        actor=pw.actor("bureau-dispatcher"),
        suggestion_id=suggestion.id,
        request_id=other.id,
    )
    suggestions.link_report(
        session=pw.session, actor=pw.actor("city-head"), suggestion_id=suggestion.id, request_id=closed.id
    )
    part.suggestion_id = suggestion.id  # even a part linked by other means stays internal
    pw.session.commit()
    reports = suggestions.linked_reports(session=pw.session, suggestion_id=suggestion.id)
    assert [r.id for r in reports] == [mine.id, other.id, closed.id]
    assert [r.status for r in reports] == ["open", "open", "closed"]
    assert not hasattr(reports[0], "reporter_phone")
    assert suggestions.report_counts(session=pw.session, suggestion_ids=[suggestion.id]) == {suggestion.id: 3}
    entries = pw.session.scalars(select(RequestUpdate).where(RequestUpdate.request_id == mine.id)).all()
    assert [(e.kind, e.public) for e in entries] == [("link", True)]
    suggestions.unlink_report(session=pw.session, actor=pw.actor("water-worker"), request_id=other.id)
    with pytest.raises(NotFound):
        suggestions.unlink_report(
            session=pw.session,
            actor=pw.actor("city-lead"),
            request_id=mine.id,
            suggestion_id=suggestion.id + 1,
        )
    pw.session.commit()
    assert other.suggestion_id is None
    assert [r.id for r in suggestions.linked_reports(session=pw.session, suggestion_id=suggestion.id)] == [
        mine.id,
        closed.id,
    ]
    assert _actions(pw, suggestion).count("participation.suggestion.link") == 3
    assert "participation.suggestion.unlink" in _actions(pw, suggestion)


# --- overdue ------------------------------------------------------------------------------------------


def test_the_overdue_sweep_tells_the_department_and_the_bureau_once(
    pw: ParticipationWorld, threshold: int
) -> None:
    clock.set_clock(lambda: MONDAY)
    late = _assigned(pw)
    answered = _assigned(pw)
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-lead"),
        suggestion_id=answered.id,
        decision="accepted",
        text="计划",
    )
    pw.session.commit()
    due = late.response_due_at
    assert due is not None
    assert suggestions.overdue(session=pw.session, now=due - timedelta(seconds=1)) == []
    assert suggestions.sweep(session=pw.session, now=due - timedelta(seconds=1)) == []
    assert not suggestions.is_overdue(late, due - timedelta(seconds=1)) and suggestions.is_overdue(late, due)
    heads, bureau = len(_notified(pw, "city-head")), len(_notified(pw, "bureau-admin"))
    assert suggestions.overdue(session=pw.session, now=due) == [late]
    assert suggestions.sweep(session=pw.session, now=due + timedelta(hours=1)) == [late]
    pw.session.commit()
    assert len(_notified(pw, "city-head")) == heads + 1 and len(_notified(pw, "bureau-admin")) == bureau + 1
    assert any("overdue" in m for m in _notified(pw, "bureau-dispatcher"))
    assert suggestions.sweep(session=pw.session, now=due + timedelta(days=3)) == []
    pw.session.commit()
    assert len(_notified(pw, "city-head")) == heads + 1
    assert _actions(pw, late).count("participation.suggestion.overdue") == 1
    assert "participation.suggestion.overdue" not in _actions(pw, answered)


# --- lists and the audit chain ----------------------------------------------------------------------


def test_the_list_filters_sorts_by_supporters_and_pages_by_keyset(
    pw: ParticipationWorld, threshold: int
) -> None:
    made = [_post(pw, f"建议 {i}", domain="transport" if i % 2 else "safety") for i in range(5)]
    for who in ("res2", "res3"):
        suggestions.support(session=pw.session, actor=pw.actor(who), suggestion_id=made[1].id)
    suggestions.support(session=pw.session, actor=pw.actor("res2"), suggestion_id=made[3].id)
    pw.session.commit()
    newest = suggestions.list_suggestions(session=pw.session)
    assert [s.id for s in newest.items] == [s.id for s in reversed(made)] and newest.next is None
    seen: list[int] = []
    after = None
    while True:
        page = suggestions.list_suggestions(session=pw.session, sort="supporters", after=after, limit=2)
        seen += [s.id for s in page.items]
        if page.next is None:
            break
        after = page.next
    assert seen == [made[1].id, made[3].id, made[4].id, made[2].id, made[0].id]
    safety = suggestions.list_suggestions(session=pw.session, domain="safety")
    assert {s.id for s in safety.items} == {made[0].id, made[2].id, made[4].id}
    waiting = suggestions.list_suggestions(session=pw.session, state="awaiting_response")
    assert [s.id for s in waiting.items] == [made[1].id]
    assert len(suggestions.list_suggestions(session=pw.session, unassigned=True).items) == 5
    for bad in ({"domain": "x"}, {"state": "done"}, {"sort": "oldest"}, {"after": "garbage!"}, {"limit": 0}):
        with pytest.raises(Invalid) as caught:
            suggestions.list_suggestions(session=pw.session, **bad)  # type: ignore[arg-type]
        assert caught.value.detail["parameter"] == next(iter(bad))


def test_every_change_is_on_the_intact_audit_chain(pw: ParticipationWorld, threshold: int) -> None:
    suggestion = _assigned(pw)
    suggestions.respond(
        session=pw.session,
        actor=pw.actor("city-head"),
        suggestion_id=suggestion.id,
        decision="accepted",
        text="计划",
    )
    suggestions.add_milestone(
        session=pw.session, actor=pw.actor("city-head"), suggestion_id=suggestion.id, percent=50, text="一半"
    )
    pw.session.commit()
    assert _actions(pw, suggestion) == [
        "participation.suggestion.create",
        "participation.suggestion.support",
        "participation.suggestion.support",
        "participation.suggestion.threshold",
        "participation.suggestion.assign",
        "participation.suggestion.respond",
        "participation.suggestion.milestone",
    ]
    assert verify(session=pw.session, actor=system_actor()).ok
