"""The escalation ladder of work orders: as a deadline nears and passes, more senior people are told.

Rungs (``Request.escalation_level`` is the highest rung reached):

1. **team lead** (``team_lead``): when ``participation_warn_fraction`` (default 0.8) of the SLA's
   working time is used up. Measured in working time backwards from the current deadline, so a wait
   that moved the deadline moves the warning with it: the warning falls when ``1 - fraction`` of the
   SLA's working time remains before ``expected_at``. Told: the lead of the order's team; without a
   team, its assignee; without either, the dispatchers of its department.
2. **department head** (``department_head``): at the deadline (``expected_at``). Told: the active
   admins of the order's organisation.
3. **data bureau and street office** (``bureau``): half the SLA's working time again past the
   deadline, and at least one working hour, counted in working time (so it falls inside working
   hours). Told: the admins and dispatchers of data-bureau organisations and the admins of the
   community committees (street offices).

An order without an owning organisation skips the team and the department: its rungs 1 and 2 go to
the bureau, who route it.

``schedule`` keeps ``Request.next_escalation_at`` (indexed) at the time the next rung falls due, or
None when the order is finished, waiting, or at the top rung (callers reschedule whenever the
deadline, the state or the level changes). ``sweep`` selects only due rows (the next rung fell due
when it was scheduled; rung 2 is the deadline; only the top rung's time is computed), raises each to
every rung now due, writes one internal timeline entry per rung passed, notifies each rung's
people (one notification per person and rung per sweep, naming the order, or counting the orders
when there are several), writes one audit event with the counts, and reschedules. It is safe to run
twice: a second sweep at the same instant finds nothing due. On PostgreSQL the due rows are locked
with ``SKIP LOCKED``, so concurrent sweeps never escalate an order twice; SQLite has one writer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.audit.service import record
from zhishe.core.auth import OrgKind, Role, system_actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import Message, T, localize, stored
from zhishe.core.notifications.service import notify_users
from zhishe.participation.models import Category, Request, RequestUpdate, Team
from zhishe.participation.sla import WorkCalendar

__all__ = [
    "FINISHED_STATES",
    "ORDER_LINK",
    "QUEUE_LINK",
    "RUNGS",
    "SweepResult",
    "overdue_badge",
    "reschedule_all",
    "rung_times",
    "schedule",
    "sweep",
]

#: The rungs of the ladder, by ``escalation_level``.
RUNGS = {1: "team_lead", 2: "department_head", 3: "bureau"}
TOP_RUNG = max(RUNGS)
#: States in which an order no longer escalates (its Open311 status is ``closed``).
FINISHED_STATES = frozenset({"resolved", "closed", "duplicate", "rejected"})
#: Where a notification about one order, or about several, points.
ORDER_LINK = "/work/orders/{id}"
QUEUE_LINK = "/work?overdue=yes"
#: The least margin between the deadline and the top rung, in working seconds.
_MIN_TOP_MARGIN = 3600.0


# --- when ---------------------------------------------------------------------------------------


def _times(
    calendar: WorkCalendar,
    requested_at: datetime,
    expected_at: datetime,
    span: float | None,
    until_deadline: float,
    fraction: float,
) -> tuple[datetime, datetime, datetime]:
    if span is None:
        span = until_deadline
    warn = min(calendar.advance(requested_at, max(0.0, until_deadline - (1 - fraction) * span)), expected_at)
    top = calendar.advance(expected_at, max(_MIN_TOP_MARGIN, span / 2))
    return warn, expected_at, top


def rung_times(
    calendar: WorkCalendar,
    requested_at: datetime,
    expected_at: datetime,
    span: float | None = None,
    warn_fraction: float | None = None,
) -> tuple[datetime, datetime, datetime]:
    """When rungs 1, 2 and 3 fall due for an order, in that (non-decreasing) order.

    ``span`` is the SLA's working time in seconds; by default the working time from ``requested_at``
    to ``expected_at``.
    """
    fraction = get_settings().participation_warn_fraction if warn_fraction is None else warn_fraction
    until_deadline = calendar.working_seconds(requested_at, expected_at)
    return _times(calendar, requested_at, expected_at, span, until_deadline, fraction)


class _Ladder:
    """Rung times of many orders on one calendar, with the SLAs of their categories."""

    def __init__(self, calendar: WorkCalendar, categories: Iterable[Category]) -> None:
        self.calendar = calendar
        self.fraction = get_settings().participation_warn_fraction
        self.slas = {
            c.id: (max(c.sla_amount, 0), c.sla_unit)
            for c in categories
            if c.sla_unit in ("hours", "days") and c.sla_amount is not None
        }

    def span(
        self,
        category_id: int,
        requested_at: datetime,
        expected_at: datetime,
        until_deadline: float | None = None,
    ) -> float:
        """The SLA's working time: the category's from ``requested_at`` (not stretched by waits), or
        the working time to the deadline when the category is unknown."""
        calendar = self.calendar
        sla = self.slas.get(category_id)
        if sla is not None and sla[1] == "hours":
            return float(sla[0] * 3600)
        if until_deadline is None:
            until_deadline = calendar.working_seconds(requested_at, expected_at)
        if sla is None:
            return until_deadline
        original = calendar.deadline(requested_at, sla[0], "days")
        return until_deadline if original == expected_at else calendar.working_seconds(requested_at, original)

    def times(
        self, category_id: int, requested_at: datetime, expected_at: datetime
    ) -> tuple[datetime, datetime, datetime]:
        """When the order's rungs fall due."""
        until_deadline = self.calendar.working_seconds(requested_at, expected_at)
        span = self.span(category_id, requested_at, expected_at, until_deadline)
        return _times(self.calendar, requested_at, expected_at, span, until_deadline, self.fraction)

    def top(self, category_id: int, requested_at: datetime, expected_at: datetime) -> datetime:
        """When the top rung falls due (the others need no arithmetic in a sweep)."""
        span = self.span(category_id, requested_at, expected_at)
        return self.calendar.advance(expected_at, max(_MIN_TOP_MARGIN, span / 2))


def _escalates(state: str, paused_at: datetime | None, expected_at: datetime | None, level: int) -> bool:
    return (
        state not in FINISHED_STATES
        and state != "waiting"
        and paused_at is None
        and expected_at is not None
        and level < TOP_RUNG
    )


def schedule(
    session: Session, request: Request, now: datetime | None = None, *, calendar: WorkCalendar | None = None
) -> None:
    """Set ``request.next_escalation_at`` to when its next rung falls due (None if it won't escalate).

    The rung times depend only on the order (its SLA, ``requested_at``, ``expected_at`` and
    ``escalation_level``), not on ``now``: a rung already past is picked up by the next ``sweep``.
    """
    level = request.escalation_level or 0
    if not _escalates(request.state, request.paused_at, request.expected_at, level):
        request.next_escalation_at = None
        return
    assert request.expected_at is not None
    category = session.get(Category, request.category_id)
    ladder = _Ladder(calendar or WorkCalendar.load(session), [category] if category is not None else [])
    request.next_escalation_at = ladder.times(request.category_id, request.requested_at, request.expected_at)[
        level
    ]


def overdue_badge(request: Request, now: datetime | None = None) -> bool:
    """Whether the order shows the public "overdue" badge: open, not waiting, and past its deadline."""
    now = now or clock.now()
    return (
        request.state not in FINISHED_STATES
        and request.state != "waiting"
        and request.paused_at is None
        and request.expected_at is not None
        and now >= request.expected_at
    )


# --- who ----------------------------------------------------------------------------------------


class _People:
    """Who each rung tells, looked up once per sweep."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._leads: dict[int, int | None] | None = None
        self._org_roles: dict[tuple[int, tuple[str, ...]], tuple[int, ...]] = {}
        self._bureau: tuple[int, ...] | None = None

    def _team_lead(self, team_id: int) -> int | None:
        if self._leads is None:
            rows = self.session.execute(
                select(Team.id, User.id).outerjoin(
                    User, (User.id == Team.lead_user_id) & User.is_active.is_(True)
                )
            ).all()
            self._leads = {team: lead for team, lead in rows}
        return self._leads.get(team_id)

    def _of_org(self, org_id: int, roles: tuple[str, ...]) -> tuple[int, ...]:
        key = (org_id, roles)
        if key not in self._org_roles:
            self._org_roles[key] = tuple(
                self.session.scalars(
                    select(User.id)
                    .where(User.org_id == org_id, User.is_active.is_(True), User.role.in_(roles))
                    .order_by(User.id)
                )
            )
        return self._org_roles[key]

    def bureau(self) -> tuple[int, ...]:
        if self._bureau is None:
            query = (
                select(User.id)
                .join(Organisation, Organisation.id == User.org_id)
                .where(
                    User.is_active.is_(True),
                    Organisation.is_active.is_(True),
                    (
                        (Organisation.kind == OrgKind.DATA_BUREAU)
                        & User.role.in_([Role.ADMIN.value, Role.DISPATCHER.value])
                    )
                    | ((Organisation.kind == OrgKind.COMMUNITY_COMMITTEE) & (User.role == Role.ADMIN.value)),
                )
                .order_by(User.id)
            )
            self._bureau = tuple(self.session.scalars(query))
        return self._bureau

    def group(
        self, rung: int, org_id: int | None, team_id: int | None, assignee: int | None
    ) -> tuple[Any, ...]:
        """A key naming who is told of an order reaching ``rung`` (orders sharing it are told together)."""
        if rung >= TOP_RUNG or org_id is None:
            return ("bureau",)
        if rung == 1:
            if team_id is not None and self._team_lead(team_id) is not None:
                return ("team", team_id)
            if assignee is not None:
                return ("user", assignee)
            return ("dispatchers", org_id)
        return ("heads", org_id)

    def users(self, key: tuple[Any, ...]) -> tuple[int, ...]:
        """The user ids behind a group key."""
        kind = key[0]
        if kind == "bureau":
            return self.bureau()
        if kind == "team":
            lead = self._team_lead(key[1])
            return (lead,) if lead is not None else ()
        if kind == "user":
            return (key[1],)
        if kind == "dispatchers":
            return self._of_org(key[1], (Role.DISPATCHER.value,))
        return self._of_org(key[1], (Role.ADMIN.value,))


# --- messages -----------------------------------------------------------------------------------


def _entry_message(rung: int, deadline: str) -> Message:
    if rung == 1:
        return T("Escalated to the team lead: the deadline {deadline} is near", deadline=deadline)
    if rung == 2:
        return T("Escalated to the department head: the deadline {deadline} has passed", deadline=deadline)
    return T(
        "Escalated to the data bureau and the street office: the deadline {deadline} is long past",
        deadline=deadline,
    )


def _notice(rung: int, ids: Sequence[int], deadline: str) -> tuple[Message, str]:
    if len(ids) == 1:
        link = ORDER_LINK.format(id=ids[0])
        if rung == 1:
            return T("Work order #{id} is due by {deadline}", id=ids[0], deadline=deadline), link
        if rung == 2:
            return T(
                "Work order #{id} has passed its deadline ({deadline})", id=ids[0], deadline=deadline
            ), link
        return T(
            "Work order #{id} is long past its deadline ({deadline})", id=ids[0], deadline=deadline
        ), link
    if rung == 1:
        return T("{n} work orders are due soon or overdue", n=len(ids)), QUEUE_LINK
    if rung == 2:
        return T("{n} work orders have passed their deadline", n=len(ids)), QUEUE_LINK
    return T("{n} work orders are long past their deadline", n=len(ids)), QUEUE_LINK


# --- the sweep ----------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What one sweep did."""

    at: datetime
    #: Due rows looked at.
    examined: int = 0
    #: Orders raised by at least one rung.
    escalated: int = 0
    #: Rungs reached in this sweep, per rung (an order that jumps two rungs counts in both).
    rungs: dict[int, int] = field(default_factory=lambda: {rung: 0 for rung in RUNGS})
    #: Due rows that no longer escalate (finished or waiting) and were unscheduled.
    cleared: int = 0
    #: Notifications written.
    notified: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counts, as JSON-ready values."""
        return {
            "at": self.at.astimezone(get_settings().tz).isoformat(),
            "examined": self.examined,
            "escalated": self.escalated,
            "rungs": {RUNGS[rung]: count for rung, count in self.rungs.items()},
            "cleared": self.cleared,
            "notified": self.notified,
        }


_DUE_COLUMNS = (
    Request.id,
    Request.state,
    Request.paused_at,
    Request.org_id,
    Request.team_id,
    Request.assignee_user_id,
    Request.category_id,
    Request.requested_at,
    Request.expected_at,
    Request.escalation_level,
    Request.next_escalation_at,
)
_REQUESTS = cast(Table, Request.__table__)
_UPDATES = cast(Table, RequestUpdate.__table__)
#: The same change for many rows, by id (one statement, run with many parameter sets).
_SET_BY_ID = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("row_id"))
    .values(escalation_level=bindparam("level"), next_escalation_at=bindparam("due"))
)
#: PostgreSQL: the same for a whole batch in one statement, the rows passed as three arrays.
_SET_FROM_ARRAYS = text(
    "UPDATE participation_requests AS r SET escalation_level = u.level, next_escalation_at = u.due"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:levels AS integer[]), CAST(:dues AS timestamptz[]))"
    " AS u(id, level, due) WHERE r.id = u.id"
)


def _set_ladder(session: Session, changes: Sequence[tuple[int, int, datetime | None]]) -> None:
    """Set (id, escalation_level, next_escalation_at) of many rows."""
    if not changes:
        return
    if session.get_bind().dialect.name == "postgresql":
        ids, levels, dues = zip(*changes, strict=True)
        session.execute(_SET_FROM_ARRAYS, {"ids": list(ids), "levels": list(levels), "dues": list(dues)})
    else:
        session.execute(_SET_BY_ID, [{"row_id": i, "level": lv, "due": d} for i, lv, d in changes])


def _check_batch(batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise Invalid(f"batch must be a whole number of at least 1, not {batch!r}", detail={"field": "batch"})


def _expire(session: Session, ids: Iterable[int]) -> None:
    """Forget loaded copies of rows changed by bulk statements, so they are read afresh."""
    for request_id in ids:
        loaded = session.identity_map.get(session.identity_key(Request, request_id))
        if loaded is not None:
            session.expire(loaded)


def sweep(*, session: Session, now: datetime | None = None, batch: int = 5000) -> SweepResult:
    """Raise every due order to the rungs now due, record and notify them, and reschedule.

    Flushes; the caller commits. Writes one audit event (by the system) when anything was due.
    """
    _check_batch(batch)
    now = (now or clock.now()).astimezone(UTC)
    settings = get_settings()
    zone, language = settings.tz, settings.language
    session.flush()
    ladder = _Ladder(WorkCalendar.load(session), session.scalars(select(Category)))
    people = _People(session)
    result = SweepResult(at=now)
    # (rung, who) -> [(order id, its deadline)]
    told: dict[tuple[int, tuple[Any, ...]], list[tuple[int, str]]] = defaultdict(list)
    touched: set[int] = set()
    # Every row looked at is rescheduled past ``now`` (or unscheduled), so each batch is simply the
    # earliest due rows left; the index on next_escalation_at serves both the filter and the order.
    due = (
        select(*_DUE_COLUMNS)
        .where(Request.next_escalation_at <= now)
        .order_by(Request.next_escalation_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    while True:
        rows = [row for row in session.execute(due) if row.id not in touched]
        if not rows:
            break
        result.examined += len(rows)
        changes: list[tuple[int, int, datetime | None]] = []
        entries: list[dict[str, Any]] = []
        for row in rows:
            level = row.escalation_level or 0
            touched.add(row.id)
            if not _escalates(row.state, row.paused_at, row.expected_at, level):
                changes.append((row.id, level, None))
                result.cleared += 1
                continue
            # The next rung fell due when it was scheduled; rung 2 is the deadline; only the top
            # rung's time needs the calendar.
            times = {level + 1: row.next_escalation_at}
            reached, following = level + 1, None
            while reached < TOP_RUNG:
                upcoming = (
                    row.expected_at
                    if reached == 1
                    else ladder.top(row.category_id, row.requested_at, row.expected_at)
                )
                if upcoming > now:
                    following = upcoming
                    break
                reached += 1
                times[reached] = upcoming
            changes.append((row.id, reached, following))
            result.escalated += 1
            expected = row.expected_at.astimezone(zone)
            deadline = expected.isoformat(timespec="minutes")
            for rung in range(level + 1, reached + 1):
                who = people.group(rung, row.org_id, row.team_id, row.assignee_user_id)
                told[(rung, who)].append((row.id, deadline))
                message = _entry_message(rung, deadline)
                entries.append(
                    {
                        "request_id": row.id,
                        "at": now,
                        "kind": "escalation",
                        "state": row.state,
                        "public": False,
                        "text": localize(message, language),
                        "actor_user_id": None,
                        "actor_org_id": None,
                        "detail": {
                            "rung": rung,
                            "to": RUNGS[rung],
                            "due_at": times[rung].astimezone(zone).isoformat(),
                            "expected_at": expected.isoformat(),
                            "users": list(people.users(who)),
                            "message": stored(message),
                        },
                    }
                )
                result.rungs[rung] += 1
        _set_ladder(session, changes)
        if entries:
            session.execute(insert(_UPDATES), entries)
    _expire(session, touched)
    for (rung, who), orders in sorted(told.items(), key=lambda item: (item[0][0], repr(item[0][1]))):
        ids = [order_id for order_id, _ in orders]
        message, link = _notice(rung, ids, orders[0][1])
        result.notified += notify_users(
            session=session,
            user_ids=people.users(who),
            kind=f"participation.escalation.{RUNGS[rung]}",
            message=message,
            link=link,
        )
    if result.examined:
        record(
            session=session,
            actor=system_actor("participation-escalation"),
            action="participation.escalation.sweep",
            object_type="participation_escalation",
            object_id=now.isoformat(timespec="seconds"),
            detail=result.as_dict(),
        )
    session.flush()
    return result


def reschedule_all(*, session: Session, batch: int = 5000) -> int:
    """Recompute ``next_escalation_at`` of every order that may escalate (after the calendar, the
    working hours or an SLA changed); returns how many rows were rewritten. Flushes; the caller commits."""
    _check_batch(batch)
    session.flush()
    ladder = _Ladder(WorkCalendar.load(session), session.scalars(select(Category)))
    last_id, count = 0, 0
    touched: list[int] = []
    while True:
        rows = session.execute(
            select(*_DUE_COLUMNS)
            .where(Request.id > last_id, Request.state.not_in(sorted(FINISHED_STATES)))
            .order_by(Request.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        changes: list[tuple[int, int, datetime | None]] = []
        for row in rows:
            level = row.escalation_level or 0
            due: datetime | None = None
            if _escalates(row.state, row.paused_at, row.expected_at, level):
                due = ladder.times(row.category_id, row.requested_at, row.expected_at)[level]
            changes.append((row.id, level, due))
            touched.append(row.id)
        _set_ladder(session, changes)
        count += len(changes)
    _expire(session, touched)
    record(
        session=session,
        actor=system_actor("participation-escalation"),
        action="participation.escalation.reschedule",
        object_type="participation_escalation",
        object_id="all",
        detail={"rows": count},
    )
    session.flush()
    return count
