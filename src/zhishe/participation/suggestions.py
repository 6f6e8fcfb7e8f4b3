"""Suggestions (建言献策): residents propose, others support, and a suggestion that reaches the
support threshold must get an official answer from the responsible department within a deadline.

The life of a suggestion::

    open --(threshold of supports)--> awaiting_response --(department answers)--> accepted | declined
    accepted --(milestones up to 100 %)--> implemented

A department may also answer a suggestion early, while it is still ``open``. Rules of the game:

- Only residents post and support suggestions; an author does not support their own (the count is
  of other residents). Supporting is idempotent. A support can be withdrawn while the suggestion
  is ``open``; once the threshold is reached the count no longer goes down.
- Reaching ``suggestion_threshold`` supports starts the deadline: ``suggestion_response_days``
  working days on the working-day calendar (China's holidays and make-up days), counted from the
  day the threshold was reached. The responsible department's staff are notified, or, while no
  department is assigned, the data bureau's, whose staff (or the operator's) assign one.
- Staff (admin, steward, dispatcher) of the responsible department answer: ``accepted`` with the
  implementation plan or ``declined`` with the public reasons. An answer is on time when it is
  given no later than ``response_due_at``.
- Accepted suggestions report their implementation as milestones whose percentage never goes
  down; reaching 100 % makes the suggestion ``implemented``.
- Reports (requests) can be linked to a suggestion by staff of the report's department or of the
  data bureau.

Everything here is public except who wrote or supported a suggestion: authors are shown by the
initials of their display name only. Every change is audited.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from zhishe.core import clock, events
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.audit.models import AuditEvent
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, Role, authorize
from zhishe.core.config import get_settings
from zhishe.core.db import MAX_ID
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.core.pagination import Page
from zhishe.exchange.workdays import reply_deadline
from zhishe.participation.models import (
    Category,
    Request,
    RequestUpdate,
    Suggestion,
    SuggestionMilestone,
    SuggestionSupport,
)

__all__ = [
    "ANSWERING_ROLES",
    "DECISIONS",
    "DOMAINS",
    "DOMAIN_LABELS",
    "SORTS",
    "STATES",
    "STATE_LABELS",
    "LinkedReport",
    "SuggestionView",
    "add_milestone",
    "answered_on_time",
    "assign",
    "authors_of",
    "create",
    "domain_label",
    "due_day",
    "ensure_may_post",
    "get_or_raise",
    "initials",
    "is_overdue",
    "link_report",
    "linked_reports",
    "list_suggestions",
    "may",
    "may_post",
    "milestones_of",
    "on_time",
    "org_names",
    "overdue",
    "report_counts",
    "respond",
    "responsible_orgs",
    "state_label",
    "support",
    "sweep",
    "unlink_report",
    "view",
    "withdraw_support",
]

#: Domains a suggestion belongs to, with their labels (Chinese, English).
DOMAIN_LABELS: dict[str, tuple[str, str]] = {
    "transport": ("交通出行", "Transport"),
    "environment": ("生态环境", "Environment"),
    "safety": ("平安建设", "Safety"),
    "services": ("公共服务", "Public services"),
    "health": ("医疗健康", "Health"),
    "housing": ("住房物业", "Housing"),
    "other": ("其他", "Other"),
}
DOMAINS = tuple(DOMAIN_LABELS)

#: States of a suggestion, with their labels (Chinese, English).
STATE_LABELS: dict[str, tuple[str, str]] = {
    "open": ("征集支持中", "Gathering support"),
    "awaiting_response": ("待部门答复", "Awaiting response"),
    "accepted": ("已采纳", "Accepted"),
    "declined": ("未采纳", "Declined"),
    "implemented": ("已落实", "Implemented"),
}
STATES = tuple(STATE_LABELS)
#: What the responsible department may answer.
DECISIONS = ("accepted", "declined")
#: Orders of the list.
SORTS = ("newest", "supporters")
#: Roles of the responsible department's staff that answer and report progress.
ANSWERING_ROLES = frozenset({Role.ADMIN, Role.STEWARD, Role.DISPATCHER})
#: Kinds of organisation that can be made responsible for a suggestion.
RESPONSIBLE_KINDS = frozenset(
    {OrgKind.DEPARTMENT, OrgKind.OPERATOR, OrgKind.COMMUNITY_COMMITTEE, OrgKind.DATA_BUREAU}
)
#: The Open311 status of a request is ``closed`` in these states.
_CLOSED_REQUEST_STATES = frozenset({"resolved", "closed", "duplicate", "rejected"})

TITLE_MAX = 200
BODY_MAX = 10_000
TEXT_MAX = 5_000
_OVERDUE_ACTION = "participation.suggestion.overdue"
_KIND = "participation.suggestion"


# --- labels -----------------------------------------------------------------------------------------


def domain_label(code: str, language: str = "zh-CN") -> str:
    """The label of a domain in ``language`` (the code itself when unknown)."""
    zh, en = DOMAIN_LABELS.get(code, (code, code))
    return en if language == "en" else zh


def state_label(code: str, language: str = "zh-CN") -> str:
    """The label of a state in ``language`` (the code itself when unknown)."""
    zh, en = STATE_LABELS.get(code, (code, code))
    return en if language == "en" else zh


def initials(display_name: str) -> str:
    """What the public sees of an author: ``张*`` for a Chinese name, ``Z. S.`` for ``Zhang San``."""
    name = " ".join(display_name.split())
    if not name:
        return ""
    if any("\u3400" <= ch <= "\u9fff" for ch in name):
        return name[0] + "*"
    return " ".join(part[0].upper() + "." for part in name.split(" "))


# --- reading --------------------------------------------------------------------------------------


def get_or_raise(*, session: Session, suggestion_id: int, lock: bool = False) -> Suggestion:
    """The suggestion with this id, or NotFound; with ``lock``, read afresh and locked until commit
    (PostgreSQL), so that concurrent answers and milestones cannot both pass their checks."""
    if lock:
        suggestion = session.get(Suggestion, suggestion_id, with_for_update=True, populate_existing=True)
    else:
        suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None:
        raise NotFound(
            T("there is no suggestion {id}", id=suggestion_id), detail={"suggestion": suggestion_id}
        )
    return suggestion


def _token(sort: str, suggestion: Suggestion) -> str:
    raw = f"s:{suggestion.supporters}:{suggestion.id}" if sort == "supporters" else f"n:{suggestion.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _untoken(sort: str, token: str) -> tuple[int, ...]:
    bad = Invalid(T("invalid paging token in 'after'"), detail={"parameter": "after"})
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    kind, _, rest = raw.partition(":")
    parts = rest.split(":")
    if kind != sort[0] or len(parts) != (2 if sort == "supporters" else 1):
        raise bad
    if not all(p.isascii() and p.isdigit() and int(p) <= MAX_ID for p in parts):
        raise bad
    return tuple(int(p) for p in parts)


def list_suggestions(
    *,
    session: Session,
    domain: str | None = None,
    state: str | None = None,
    org_id: int | None = None,
    unassigned: bool = False,
    sort: str = "newest",
    after: str | None = None,
    limit: int = 20,
) -> Page[Suggestion]:
    """Suggestions (public), newest first or by supporters, filtered by domain, state or department."""
    if domain and domain not in DOMAIN_LABELS:
        raise Invalid(
            T("domain must be one of {values}", values=", ".join(DOMAINS)), detail={"parameter": "domain"}
        )
    if state and state not in STATE_LABELS:
        raise Invalid(
            T("state must be one of {values}", values=", ".join(STATES)), detail={"parameter": "state"}
        )
    if sort not in SORTS:
        raise Invalid(
            T("sort must be one of {values}", values=", ".join(SORTS)), detail={"parameter": "sort"}
        )
    if not 1 <= limit <= 200:
        raise Invalid(T("limit must be between 1 and 200"), detail={"parameter": "limit"})
    query = select(Suggestion)
    if domain:
        query = query.where(Suggestion.domain == domain)
    if state:
        query = query.where(Suggestion.state == state)
    if org_id is not None:
        query = query.where(Suggestion.org_id == org_id)
    if unassigned:
        query = query.where(Suggestion.org_id.is_(None))
    if sort == "supporters":
        if after:
            count, last = _untoken(sort, after)
            query = query.where(
                or_(
                    Suggestion.supporters < count,
                    and_(Suggestion.supporters == count, Suggestion.id < last),
                )
            )
        query = query.order_by(Suggestion.supporters.desc(), Suggestion.id.desc())
    else:
        if after:
            (last,) = _untoken(sort, after)
            query = query.where(Suggestion.id < last)
        query = query.order_by(Suggestion.id.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    following = _token(sort, rows[limit - 1]) if len(rows) > limit else None
    return Page(items=rows[:limit], next=following)


def authors_of(*, session: Session, suggestions: Iterable[Suggestion]) -> dict[int, str]:
    """The public name (initials) of each suggestion's author, by suggestion id, in one query."""
    wanted = {s.id: s.author_user_id for s in suggestions}
    ids = {u for u in wanted.values() if u is not None}
    names: dict[int, str] = {}
    if ids:
        names = {
            uid: initials(display or "")
            for uid, display in session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        }
    return {sid: names.get(uid, "") if uid is not None else "" for sid, uid in wanted.items()}


def org_names(*, session: Session, org_ids: Iterable[int | None], language: str = "zh-CN") -> dict[int, str]:
    """The names of organisations in ``language``, by id, in one query."""
    ids = {i for i in org_ids if i is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(Organisation.id, Organisation.name_zh, Organisation.name_en).where(Organisation.id.in_(ids))
    )
    return {oid: ((en if language == "en" else zh) or zh) for oid, zh, en in rows}


def responsible_orgs(*, session: Session) -> list[Organisation]:
    """Active organisations a suggestion can be assigned to, by kind then name."""
    query = (
        select(Organisation)
        .where(Organisation.is_active.is_(True), Organisation.kind.in_([str(k) for k in RESPONSIBLE_KINDS]))
        .order_by(Organisation.kind, Organisation.name_zh)
    )
    return list(session.scalars(query))


def milestones_of(*, session: Session, suggestion_id: int) -> list[SuggestionMilestone]:
    """A suggestion's milestones, oldest first."""
    query = (
        select(SuggestionMilestone)
        .where(SuggestionMilestone.suggestion_id == suggestion_id)
        .order_by(SuggestionMilestone.at, SuggestionMilestone.id)
    )
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class LinkedReport:
    """What the public may see of a report linked to a suggestion."""

    id: int
    service_code: str
    service_name_zh: str
    service_name_en: str
    state: str
    status: str  #: the Open311 status: open | closed
    requested_at: datetime
    address: str
    description: str

    def service_name(self, language: str) -> str:
        """The category's name in ``language``."""
        return (self.service_name_en if language == "en" else self.service_name_zh) or self.service_name_zh


def linked_reports(*, session: Session, suggestion_id: int) -> list[LinkedReport]:
    """The public reports linked to a suggestion, oldest first (parts of joint orders are internal)."""
    query = (
        select(Request, Category)
        .join(Category, Category.id == Request.category_id)
        .where(Request.suggestion_id == suggestion_id, Request.parent_id.is_(None))
        .order_by(Request.requested_at, Request.id)
    )
    return [
        LinkedReport(
            id=r.id,
            service_code=c.code,
            service_name_zh=c.name_zh,
            service_name_en=c.name_en,
            state=r.state,
            status="closed" if r.state in _CLOSED_REQUEST_STATES else "open",
            requested_at=r.requested_at,
            address=r.address,
            description=r.description[:500],
        )
        for r, c in session.execute(query)
    ]


# --- who may do what ----------------------------------------------------------------------------


def _answering_staff(actor: Actor | None, org_id: int | None) -> bool:
    return (
        actor is not None
        and org_id is not None
        and actor.org_id == org_id
        and actor.role in ANSWERING_ROLES
        and actor.via != "cli"
    )


def _triage_staff(actor: Actor | None) -> bool:
    return actor is not None and (
        actor.is_platform_admin
        or (actor.role in ANSWERING_ROLES and actor.org_kind in {OrgKind.DATA_BUREAU, OrgKind.OPERATOR})
    )


def may_post(*, actor: Actor) -> bool:
    """Whether ``actor`` may post suggestions (residents)."""
    return _resident(actor) and (actor.scopes is None or "participation:write" in actor.scopes)


def ensure_may_post(*, actor: Actor) -> None:
    """Raise ``Forbidden`` unless ``actor`` may post suggestions (residents)."""
    _write_scope(actor)
    if not _resident(actor):
        raise Forbidden(T("only residents may post suggestions"), detail={"action": "suggestion.create"})


def _write_scope(actor: Actor) -> None:
    """Refuse a token that was not given the right to change participation data."""
    if actor.scopes is not None and "participation:write" not in actor.scopes:
        raise Forbidden(
            T("this token lacks the scope {scope}", scope=repr("participation:write")),
            detail={"scope": "participation:write"},
        )


def _resident(actor: Actor | None) -> bool:
    return actor is not None and actor.role == Role.RESIDENT and actor.user_id is not None


def _supported(session: Session, suggestion_id: int, user_id: int | None) -> bool:
    if user_id is None:
        return False
    return session.get(SuggestionSupport, (suggestion_id, user_id)) is not None


def may(*, session: Session, actor: Actor | None, suggestion: Suggestion) -> frozenset[str]:
    """What ``actor`` may do to the suggestion now: support, withdraw, assign, respond, milestone, link."""
    allowed: set[str] = set()
    if _resident(actor) and actor is not None and suggestion.author_user_id != actor.user_id:
        supported = _supported(session, suggestion.id, actor.user_id)
        if not supported and suggestion.state in ("open", "awaiting_response"):
            allowed.add("support")
        if supported and suggestion.state == "open":
            allowed.add("withdraw")
    if _triage_staff(actor) and suggestion.state in ("open", "awaiting_response"):
        allowed.add("assign")
    if _answering_staff(actor, suggestion.org_id):
        if suggestion.state in ("open", "awaiting_response"):
            allowed.add("respond")
        if suggestion.state == "accepted":
            allowed.add("milestone")
    if actor is not None and actor.is_staff and actor.role in ANSWERING_ROLES:
        allowed.add("link")
    return frozenset(allowed)


@dataclass(frozen=True, slots=True)
class SuggestionView:
    """A suggestion with what its public page shows and what the viewer may do."""

    suggestion: Suggestion
    author: str
    org_name: str
    threshold: int
    milestones: list[SuggestionMilestone]
    reports: list[LinkedReport]
    supported: bool
    mine: bool
    overdue: bool
    may: frozenset[str]

    @property
    def due_day(self) -> date | None:
        """The last day of the deadline."""
        return due_day(self.suggestion)

    @property
    def on_time(self) -> bool | None:
        """Whether the answer came by the deadline (None: no answer, or no deadline)."""
        return on_time(self.suggestion)


def due_day(suggestion: Suggestion) -> date | None:
    """The last day (platform timezone) on which the answer is on time; the deadline is its end."""
    if suggestion.response_due_at is None:
        return None
    return (suggestion.response_due_at - timedelta(microseconds=1)).astimezone(get_settings().tz).date()


def on_time(suggestion: Suggestion) -> bool | None:
    """Whether the answer came by the deadline (None: no answer yet, or it had no deadline)."""
    if suggestion.responded_at is None or suggestion.response_due_at is None:
        return None
    return suggestion.responded_at <= suggestion.response_due_at


def is_overdue(suggestion: Suggestion, now: datetime | None = None) -> bool:
    """Whether the suggestion still awaits an answer whose deadline has passed."""
    now = now or clock.now()
    return (
        suggestion.state == "awaiting_response"
        and suggestion.response_due_at is not None
        and now >= suggestion.response_due_at
    )


def view(
    *, session: Session, suggestion_id: int, actor: Actor | None = None, language: str = "zh-CN"
) -> SuggestionView:
    """One suggestion as its public page shows it, with what ``actor`` may do."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id)
    return SuggestionView(
        suggestion=suggestion,
        author=authors_of(session=session, suggestions=[suggestion])[suggestion.id],
        org_name=org_names(session=session, org_ids=[suggestion.org_id], language=language).get(
            suggestion.org_id or 0, ""
        ),
        threshold=get_settings().suggestion_threshold,
        milestones=milestones_of(session=session, suggestion_id=suggestion.id),
        reports=linked_reports(session=session, suggestion_id=suggestion.id),
        supported=_supported(session, suggestion.id, actor.user_id if actor else None),
        mine=actor is not None and actor.user_id is not None and actor.user_id == suggestion.author_user_id,
        overdue=is_overdue(suggestion, clock.now()),
        may=may(session=session, actor=actor, suggestion=suggestion),
    )


# --- writing --------------------------------------------------------------------------------------


def _text(value: str, field: str, maximum: int, *, required: bool = True, one_line: bool = False) -> str:
    """``value`` trimmed (NUL bytes dropped; whitespace runs collapsed when ``one_line``), checked."""
    text = (value or "").replace("\x00", "").strip()
    if one_line:
        text = " ".join(text.split())
    if required and not text:
        raise Invalid(T("{field} is required", field=field), detail={"field": field})
    if len(text) > maximum:
        raise Invalid(
            T("{field} is longer than {n} characters", field=field, n=maximum),
            detail={"field": field, "max": maximum},
        )
    return text


def _bureaus(session: Session) -> list[int]:
    query = select(Organisation.id).where(
        Organisation.kind == OrgKind.DATA_BUREAU, Organisation.is_active.is_(True)
    )
    return list(session.scalars(query))


def _notify_department(session: Session, suggestion: Suggestion, message: str) -> int:
    """Tell the responsible department's staff, or the data bureau's while there is none."""
    link = f"/participate/suggestions/{suggestion.id}"
    targets = [suggestion.org_id] if suggestion.org_id is not None else _bureaus(session)
    return sum(
        notifications.notify_org(
            session=session, org_id=org, kind=_KIND, message=message, link=link, roles=ANSWERING_ROLES
        )
        for org in targets
    )


def _followers(session: Session, suggestion: Suggestion) -> list[int]:
    supporters = session.scalars(
        select(SuggestionSupport.user_id).where(SuggestionSupport.suggestion_id == suggestion.id)
    ).all()
    author = [suggestion.author_user_id] if suggestion.author_user_id is not None else []
    return [*author, *supporters]


def _audit(session: Session, actor: Actor | None, action: str, suggestion: Suggestion, **detail: Any) -> None:
    record(
        session=session,
        actor=actor,
        action=f"participation.suggestion.{action}",
        object_type="suggestion",
        object_id=suggestion.id,
        object_org_id=suggestion.org_id,
        detail=detail,
    )


def create(*, session: Session, actor: Actor, domain: str, title: str, body: str) -> Suggestion:
    """Post a suggestion (residents)."""
    ensure_may_post(actor=actor)
    if domain not in DOMAIN_LABELS:
        raise Invalid(
            T("domain must be one of {values}", values=", ".join(DOMAINS)), detail={"field": "domain"}
        )
    title = _text(title, "title", TITLE_MAX, one_line=True)
    body = _text(body, "body", BODY_MAX)
    now = clock.now()
    suggestion = Suggestion(
        domain=domain,
        title=title,
        body=body,
        author_user_id=actor.user_id,
        org_id=None,
        state="open",
        supporters=0,
        progress=0,
        response="",
        created_at=now,
        updated_at=now,
    )
    session.add(suggestion)
    session.flush()
    _audit(session, actor, "create", suggestion, domain=domain, title=title[:100])
    return suggestion


def _insert_for(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _count_by(session: Session, suggestion: Suggestion, step: int) -> tuple[int, str]:
    """Move the supporters count by ``step`` (the row stays locked until commit); the new count and state."""
    count, state = session.execute(
        update(Suggestion)
        .where(Suggestion.id == suggestion.id)
        .values(supporters=Suggestion.supporters + step, updated_at=clock.now())
        .returning(Suggestion.supporters, Suggestion.state)
        .execution_options(synchronize_session=False)
    ).one()
    session.refresh(suggestion)
    return int(count), str(state)


def support(*, session: Session, actor: Actor, suggestion_id: int) -> Suggestion:
    """Support a suggestion (residents, not its author; idempotent). Reaching the threshold starts the
    deadline of the department's answer."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id)
    _write_scope(actor)
    if not _resident(actor):
        raise Forbidden(T("only residents may support suggestions"), detail={"action": "suggestion.support"})
    if suggestion.author_user_id == actor.user_id:
        raise Forbidden(T("you cannot support your own suggestion"), detail={"action": "suggestion.support"})
    if _supported(session, suggestion.id, actor.user_id):
        return suggestion
    if suggestion.state not in ("open", "awaiting_response"):
        raise Conflict(
            T("the suggestion has been answered and takes no more supports"),
            detail={"state": suggestion.state},
        )
    insert = _insert_for(session)
    added = session.execute(
        insert(SuggestionSupport)
        .values(suggestion_id=suggestion.id, user_id=actor.user_id, at=clock.now())
        .on_conflict_do_nothing()
    )
    if not getattr(added, "rowcount", 0):
        return suggestion
    count, state = _count_by(session, suggestion, 1)
    if state not in ("open", "awaiting_response"):  # answered meanwhile: the caller rolls back
        raise Conflict(
            T("the suggestion has been answered and takes no more supports"), detail={"state": state}
        )
    _audit(session, actor, "support", suggestion, supporters=count)
    threshold = get_settings().suggestion_threshold
    if state == "open" and count >= threshold:
        _reach_threshold(session, suggestion, count, threshold)
    return suggestion


def _reach_threshold(session: Session, suggestion: Suggestion, count: int, threshold: int) -> None:
    now = clock.now()
    suggestion.state = "awaiting_response"
    suggestion.threshold_reached_at = now
    suggestion.response_due_at = reply_deadline(session, now, get_settings().suggestion_response_days)
    suggestion.updated_at = now
    session.flush()
    _audit(
        session,
        None,
        "threshold",
        suggestion,
        supporters=count,
        threshold=threshold,
        response_due_at=suggestion.response_due_at.isoformat(),
        unassigned=suggestion.org_id is None,
    )
    due = str(due_day(suggestion))
    if suggestion.org_id is None:
        message = T(
            "suggestion “{title}” reached {n} supports and has no department yet: assign one; "
            "the answer is due by {due}",
            title=suggestion.title[:60],
            n=count,
            due=due,
        )
    else:
        message = T(
            "suggestion “{title}” reached {n} supports: your department must answer by {due}",
            title=suggestion.title[:60],
            n=count,
            due=due,
        )
    _notify_department(session, suggestion, message)
    if suggestion.author_user_id is not None:
        notifications.notify_users(
            session=session,
            user_ids=[suggestion.author_user_id],
            kind=_KIND,
            message=T(
                "your suggestion “{title}” reached {n} supports and will get an official answer by {due}",
                title=suggestion.title[:60],
                n=count,
                due=due,
            ),
            link=f"/participate/suggestions/{suggestion.id}",
        )
    events.publish(
        events.Event(
            "participation.suggestion_threshold",
            {
                "suggestion_id": suggestion.id,
                "org_id": suggestion.org_id,
                "response_due_at": suggestion.response_due_at.isoformat(),
            },
        ),
        session,
    )


def withdraw_support(*, session: Session, actor: Actor, suggestion_id: int) -> Suggestion:
    """Withdraw one's support while the suggestion is still open (idempotent)."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id)
    _write_scope(actor)
    if not _resident(actor):
        raise Forbidden(T("only residents may support suggestions"), detail={"action": "suggestion.support"})
    if not _supported(session, suggestion.id, actor.user_id):
        return suggestion
    if suggestion.state != "open":
        raise Conflict(
            T("a support can only be withdrawn while the suggestion is open"),
            detail={"state": suggestion.state},
        )
    removed = session.execute(
        delete(SuggestionSupport)
        .where(SuggestionSupport.suggestion_id == suggestion.id, SuggestionSupport.user_id == actor.user_id)
        .execution_options(synchronize_session=False)
    )
    if not getattr(removed, "rowcount", 0):
        return suggestion
    count, state = _count_by(session, suggestion, -1)
    if state != "open":  # the threshold was reached meanwhile: the caller rolls back
        raise Conflict(
            T("a support can only be withdrawn while the suggestion is open"), detail={"state": state}
        )
    _audit(session, actor, "withdraw", suggestion, supporters=count)
    return suggestion


def assign(*, session: Session, actor: Actor, suggestion_id: int, org_id: int) -> Suggestion:
    """Make a department responsible for answering (data bureau or operator staff)."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id, lock=True)
    _write_scope(actor)
    if not _triage_staff(actor):
        raise Forbidden(
            T(
                "only dispatchers, stewards and administrators of the data bureau or the operator "
                "may assign suggestions"
            ),
            detail={"action": "suggestion.assign"},
        )
    if suggestion.state not in ("open", "awaiting_response"):
        raise Conflict(T("the suggestion has already been answered"), detail={"state": suggestion.state})
    org = session.get(Organisation, org_id)
    if org is None or not org.is_active or org.kind not in RESPONSIBLE_KINDS:
        raise Invalid(T("organisation {id} cannot answer suggestions", id=org_id), detail={"field": "org_id"})
    if suggestion.org_id == org.id:
        return suggestion
    previous = suggestion.org_id
    suggestion.org_id = org.id
    suggestion.updated_at = clock.now()
    session.flush()
    _audit(session, actor, "assign", suggestion, org_id=org.id, previous_org_id=previous)
    if suggestion.state == "awaiting_response" and suggestion.response_due_at is not None:
        message = T(
            "suggestion “{title}” was assigned to your department: answer by {due}",
            title=suggestion.title[:60],
            due=str(due_day(suggestion)),
        )
    else:
        message = T("suggestion “{title}” was assigned to your department", title=suggestion.title[:60])
    _notify_department(session, suggestion, message)
    return suggestion


def respond(*, session: Session, actor: Actor, suggestion_id: int, decision: str, text: str) -> Suggestion:
    """The responsible department's official answer: ``accepted`` with the implementation plan, or
    ``declined`` with the public reasons."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id, lock=True)
    _write_scope(actor)
    if not _answering_staff(actor, suggestion.org_id):
        raise Forbidden(
            T("only the responsible department's staff may answer this suggestion"),
            detail={"action": "suggestion.respond", "org_id": suggestion.org_id},
        )
    if suggestion.state not in ("open", "awaiting_response"):
        raise Conflict(T("the suggestion has already been answered"), detail={"state": suggestion.state})
    if decision not in DECISIONS:
        raise Invalid(T("decision must be accepted or declined"), detail={"field": "decision"})
    text = _text(text, "text", TEXT_MAX)
    now = clock.now()
    suggestion.state = decision
    suggestion.response = text
    suggestion.responded_at = now
    suggestion.responded_by_user_id = actor.user_id
    suggestion.progress = 0
    suggestion.updated_at = now
    session.flush()
    in_time = on_time(suggestion)
    _audit(session, actor, "respond", suggestion, decision=decision, on_time=in_time)
    notifications.notify_users(
        session=session,
        user_ids=_followers(session, suggestion),
        kind=_KIND,
        message=(
            T("suggestion “{title}” was accepted", title=suggestion.title[:60])
            if decision == "accepted"
            else T("suggestion “{title}” was declined", title=suggestion.title[:60])
        ),
        link=f"/participate/suggestions/{suggestion.id}",
    )
    events.publish(
        events.Event(
            "participation.suggestion_answered",
            {"suggestion_id": suggestion.id, "decision": decision, "on_time": in_time},
        ),
        session,
    )
    return suggestion


def add_milestone(
    *, session: Session, actor: Actor, suggestion_id: int, percent: int, text: str
) -> SuggestionMilestone:
    """Report progress of an accepted suggestion; 100 % makes it implemented."""
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id, lock=True)
    _write_scope(actor)
    if not _answering_staff(actor, suggestion.org_id):
        raise Forbidden(
            T("only the responsible department's staff may report progress"),
            detail={"action": "suggestion.milestone", "org_id": suggestion.org_id},
        )
    if suggestion.state != "accepted":
        raise Conflict(
            T("progress is reported only on accepted suggestions that are not yet implemented"),
            detail={"state": suggestion.state},
        )
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise Invalid(T("percent must be a whole number from 0 to 100"), detail={"field": "percent"})
    if percent < suggestion.progress:
        raise Invalid(
            T("progress cannot go back: it is already {n}%", n=suggestion.progress),
            detail={"field": "percent", "progress": suggestion.progress},
        )
    text = _text(text, "text", TEXT_MAX)
    now = clock.now()
    milestone = SuggestionMilestone(
        suggestion_id=suggestion.id, at=now, percent=percent, text=text, actor_user_id=actor.user_id
    )
    session.add(milestone)
    suggestion.progress = percent
    suggestion.updated_at = now
    if percent == 100:
        suggestion.state = "implemented"
    session.flush()
    _audit(session, actor, "milestone", suggestion, percent=percent, milestone_id=milestone.id)
    if percent == 100:
        _audit(session, actor, "implemented", suggestion)
        notifications.notify_users(
            session=session,
            user_ids=_followers(session, suggestion),
            kind=_KIND,
            message=T("suggestion “{title}” has been implemented", title=suggestion.title[:60]),
            link=f"/participate/suggestions/{suggestion.id}",
        )
    return milestone


def _linkable_request(session: Session, actor: Actor, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None:
        raise NotFound(T("there is no report {id}", id=request_id), detail={"field": "request_id"})
    authorize(actor, "participation.dispatch", org_id=request.org_id, what=f"report #{request.id}")
    if request.parent_id is not None:
        raise Invalid(
            T(
                "report {id} is part of a joint order: link the joint order {parent}",
                id=request_id,
                parent=request.parent_id,
            ),
            detail={"field": "request_id", "parent_id": request.parent_id},
        )
    return request


def _timeline(session: Session, actor: Actor, request: Request, text: str, **detail: Any) -> None:
    session.add(
        RequestUpdate(
            request_id=request.id,
            at=clock.now(),
            kind="link",
            state=request.state,
            public=True,
            text=text,
            actor_user_id=actor.user_id,
            actor_org_id=actor.org_id,
            detail=detail,
        )
    )


def link_report(*, session: Session, actor: Actor, suggestion_id: int | None, request_id: int) -> Request:
    """Link a report to a suggestion (None: unlink it), by staff of its department or the data bureau.
    Adds a public ``link`` entry to the report's timeline and audits on both objects."""
    request = _linkable_request(session, actor, request_id)
    if suggestion_id is None:
        return unlink_report(session=session, actor=actor, request_id=request_id)
    suggestion = get_or_raise(session=session, suggestion_id=suggestion_id)
    if request.suggestion_id == suggestion.id:
        return request
    previous = request.suggestion_id
    request.suggestion_id = suggestion.id
    _timeline(
        session,
        actor,
        request,
        f"#{suggestion.id} {suggestion.title}",
        suggestion_id=suggestion.id,
        previous_suggestion_id=previous,
    )
    session.flush()
    _audit(session, actor, "link", suggestion, request_id=request.id, previous_suggestion_id=previous)
    record(
        session=session,
        actor=actor,
        action="participation.request.link_suggestion",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
        detail={"suggestion_id": suggestion.id, "previous_suggestion_id": previous},
    )
    return request


def unlink_report(
    *, session: Session, actor: Actor, request_id: int, suggestion_id: int | None = None
) -> Request:
    """Undo a report's link to its suggestion (the same people who may link it). With
    ``suggestion_id``, the report must be linked to that suggestion."""
    request = _linkable_request(session, actor, request_id)
    previous = request.suggestion_id
    if suggestion_id is not None and previous != suggestion_id:
        raise NotFound(
            T(
                "report {id} is not linked to suggestion {suggestion}",
                id=request_id,
                suggestion=suggestion_id,
            ),
            detail={"field": "request_id"},
        )
    if previous is None:
        return request
    request.suggestion_id = None
    _timeline(session, actor, request, "", suggestion_id=None, previous_suggestion_id=previous)
    session.flush()
    suggestion = session.get(Suggestion, previous)
    if suggestion is not None:
        _audit(session, actor, "unlink", suggestion, request_id=request.id)
    record(
        session=session,
        actor=actor,
        action="participation.request.link_suggestion",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
        detail={"suggestion_id": None, "previous_suggestion_id": previous},
    )
    return request


# --- deadlines and measures ---------------------------------------------------------------------


def overdue(*, session: Session, now: datetime | None = None) -> list[Suggestion]:
    """Suggestions awaiting an answer whose deadline has passed, the longest overdue first."""
    now = now or clock.now()
    query = (
        select(Suggestion)
        .where(Suggestion.state == "awaiting_response", Suggestion.response_due_at <= now)
        .order_by(Suggestion.response_due_at, Suggestion.id)
    )
    return list(session.scalars(query))


def sweep(*, session: Session, now: datetime | None = None) -> list[Suggestion]:
    """Tell the department and the data bureau, once, about each answer that has become overdue.
    The audit event ``participation.suggestion.overdue`` marks the suggestion as told. Returns the
    suggestions told this time."""
    late = overdue(session=session, now=now)
    if not late:
        return []
    told = set(
        session.scalars(
            select(AuditEvent.object_id).where(
                AuditEvent.action == _OVERDUE_ACTION,
                AuditEvent.object_type == "suggestion",
                AuditEvent.object_id.in_([str(s.id) for s in late]),
            )
        )
    )
    fresh = [s for s in late if str(s.id) not in told]
    bureaus = _bureaus(session)
    for suggestion in fresh:
        due = suggestion.response_due_at
        if due is None:  # selected by its deadline: never None here
            continue
        message = T(
            "the answer to suggestion “{title}” was due by {due} and is overdue",
            title=suggestion.title[:60],
            due=str(due_day(suggestion)),
        )
        link = f"/participate/suggestions/{suggestion.id}"
        orgs = ([suggestion.org_id] if suggestion.org_id is not None else []) + [
            b for b in bureaus if b != suggestion.org_id
        ]
        told_users = sum(
            notifications.notify_org(
                session=session, org_id=org, kind=_KIND, message=message, link=link, roles=ANSWERING_ROLES
            )
            for org in orgs
        )
        _audit(
            session,
            None,
            "overdue",
            suggestion,
            response_due_at=due.isoformat(),
            notified_orgs=orgs,
            notified_users=told_users,
        )
    session.flush()
    return fresh


def answered_on_time(*, session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """How many answers fell due in ``[start, end)``, how many were given, and how many on time, in
    all and per responsible organisation (``None``: never assigned). ``share_on_time`` is None when
    nothing fell due."""
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid(T("start and end need a timezone offset"), detail={"parameter": "start"})
    if end <= start:
        raise Invalid(T("end must be after start"), detail={"parameter": "end"})
    query = select(Suggestion.org_id, Suggestion.responded_at, Suggestion.response_due_at).where(
        Suggestion.response_due_at >= start, Suggestion.response_due_at < end
    )
    now = clock.now()

    def empty() -> dict[str, Any]:
        return {"due": 0, "answered": 0, "on_time": 0, "late": 0, "unanswered_overdue": 0}

    total = empty()
    by_org: dict[int | None, dict[str, Any]] = {}
    for org_id, responded_at, due_at in session.execute(query):
        if due_at is None:  # selected by its deadline: never None here
            continue
        for bucket in (total, by_org.setdefault(org_id, empty())):
            bucket["due"] += 1
            if responded_at is not None:
                bucket["answered"] += 1
                bucket["on_time" if responded_at <= due_at else "late"] += 1
            elif now >= due_at:
                bucket["unanswered_overdue"] += 1
    for bucket in (total, *by_org.values()):
        bucket["share_on_time"] = bucket["on_time"] / bucket["due"] if bucket["due"] else None
    return {"start": start.isoformat(), "end": end.isoformat(), **total, "by_org": by_org}


def report_counts(*, session: Session, suggestion_ids: Sequence[int]) -> dict[int, int]:
    """How many public reports are linked to each of these suggestions, in one query."""
    if not suggestion_ids:
        return {}
    query = (
        select(Request.suggestion_id, func.count())
        .where(Request.suggestion_id.in_(list(suggestion_ids)), Request.parent_id.is_(None))
        .group_by(Request.suggestion_id)
    )
    return {int(sid): int(n) for sid, n in session.execute(query) if sid is not None}
