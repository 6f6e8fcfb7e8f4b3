"""Staff work-order pages under ``/work``: the queue of one's organisation (filters, team tabs, keyset
paging, bulk actions), one order with the actions its state allows, joint orders, the map of orders,
response templates and routing rules. Every rule and permission lives in ``service`` and ``admin``;
these routes parse forms, call them, and render the result (errors re-render the page with the
message, never a 500)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.areas.models import Area
from zhishe.core.auth import MEMBER_KINDS, STAFF_ROLES, Actor, OrgKind, can
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T, localize, localize_stored
from zhishe.core.pagination import is_number
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.participation import admin, photos, service, suggestions
from zhishe.participation.models import Category, RequestUpdate, Team, TeamMember
from zhishe.participation.models import Request as Order

__all__ = ["BULK_ACTIONS", "label", "router"]

router = APIRouter(include_in_schema=False)

#: Actions the queue's bulk form offers.
BULK_ACTIONS = ("assign", "accept", "start", "resolve", "close", "reject", "comment")
#: Buttons of the order page's reply form (``internal_note`` is a comment residents do not see).
_REPLY_ACTIONS = ("accept", "start", "resume", "resolve", "close", "reopen", "reject", "comment")
_STATE_FILTERS = ("open", *service.STATES)
_MAP_LIMIT = 500
_PAGE = 50
_SPLIT_ROWS = 3
#: Colours of the map's points by state; overdue orders are drawn red whatever their state.
_COLOURS = {
    "new": "#0b6bcb",
    "assigned": "#6f42c1",
    "accepted": "#1f8a9e",
    "in_progress": "#1a7f37",
    "waiting": "#b25e00",
    "reopened": "#c2185b",
    "resolved": "#7a8899",
    "closed": "#7a8899",
    "duplicate": "#7a8899",
    "rejected": "#7a8899",
}
_OVERDUE_COLOUR = "#d93025"

_LABELS: dict[str, dict[str, str]] = {
    "state": {
        "open": T("All open"),
        "new": T("New"),
        "assigned": T("Assigned"),
        "accepted": T("Accepted"),
        "in_progress": T("In progress"),
        "waiting": T("Waiting"),
        "resolved": T("Resolved"),
        "closed": T("Closed"),
        "reopened": T("Reopened"),
        "duplicate": T("Duplicate"),
        "rejected": T("Rejected"),
    },
    "action": {
        "assign": T("Assign"),
        "accept": T("Accept"),
        "start": T("Start work"),
        "wait": T("Wait"),
        "resume": T("Resume work"),
        "resolve": T("Resolve"),
        "close": T("Close"),
        "reopen": T("Reopen"),
        "duplicate": T("Mark as duplicate"),
        "reject": T("Reject"),
        "transfer": T("Transfer"),
        "not_ours": T("Not our responsibility"),
        "comment": T("Public reply"),
        "internal_note": T("Internal note"),
    },
    "wait": {
        "parts": T("waiting for parts"),
        "third_party": T("waiting for a third party"),
        "weather": T("waiting for the weather"),
    },
    "rung": {
        "0": T("not escalated"),
        "1": T("team lead"),
        "2": T("department head"),
        "3": T("data bureau and street office"),
    },
    "channel": {
        "web": T("website"),
        "app": T("phone app"),
        "wechat": T("WeChat"),
        "phone": T("telephone"),
        "call_centre": T("call centre"),
        "walk_in": T("walk-in"),
        "open311": T("Open311 client"),
        "staff": T("staff"),
    },
    "kind": {
        "state": T("status"),
        "note": T("note"),
        "info": T("resident's information"),
        "transfer": T("transfer"),
        "escalation": T("escalation"),
        "support": T("me too"),
        "confirm": T("confirmation"),
        "reopen": T("reopened by the resident"),
        "link": T("link"),
    },
}


def label(kind: str, code: object) -> str:
    """A state, action, wait reason, escalation rung, channel or timeline kind in the reader's language."""
    found = _LABELS.get(kind, {}).get(str(code))
    return localize(found) if found is not None else str(code)


def _render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> Response:
    return render(request, template, {"label": label, **context}, status=status)


# --- parsing --------------------------------------------------------------------------------------


def _id(raw: object, field: str) -> int | None:
    """An optional id from a form or query value; ``Invalid`` names the field when it is not one."""
    text = str(raw or "").strip()
    if not text:
        return None
    if not is_number(text) or len(text) > 18 or int(text) < 1:
        raise Invalid(T("{field} must be a number such as 12", field=field), detail={"field": field})
    return int(text)


def _text(form: FormData, name: str, limit: int = 4000) -> str:
    value = form.get(name)
    return str(value).strip()[:limit] if isinstance(value, str) else ""


def _message(exc: ZhisheError) -> str:
    """An error's message in the reader's language, naming the order of a bulk action."""
    text = localize(exc.message)
    order_id = (exc.detail or {}).get("request_id")
    if order_id is not None:
        return localize(T("Order #{id}: {message}", id=order_id, message=text))
    return text


# --- look-ups for display -------------------------------------------------------------------------


def _language() -> str:
    return current_language.get()


def _org_name(org: Organisation | None) -> str:
    if org is None:
        return ""
    return (org.name_en or org.name_zh) if _language() == "en" else org.name_zh


@dataclass
class _Names:
    """Display names of the rows a page shows, loaded in one query per table."""

    categories: dict[int, Category]
    areas: dict[int, Area]
    users: dict[int, User]
    teams: dict[int, Team]
    orgs: dict[int, Organisation]

    def category(self, category_id: int | None) -> str:
        found = self.categories.get(category_id or 0)
        return found.name(_language()) if found else ""

    def area(self, area_id: int | None) -> str:
        found = self.areas.get(area_id or 0)
        return found.name(_language()) if found else ""

    def user(self, user_id: int | None) -> str:
        found = self.users.get(user_id or 0)
        return (found.display_name or found.username) if found else ""

    def team(self, team_id: int | None) -> str:
        found = self.teams.get(team_id or 0)
        return found.name if found else ""

    def org(self, org_id: int | None) -> str:
        return _org_name(self.orgs.get(org_id or 0))


def _names(
    session: Session,
    *,
    areas: Iterable[int | None] = (),
    users: Iterable[int | None] = (),
) -> _Names:
    area_ids = {a for a in areas if a}
    user_ids = {u for u in users if u}
    return _Names(
        categories={c.id: c for c in service.list_categories(session=session, active_only=False)},
        areas={a.id: a for a in session.scalars(select(Area).where(Area.id.in_(area_ids)))}
        if area_ids
        else {},
        users={u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
        if user_ids
        else {},
        teams={t.id: t for t in session.scalars(select(Team).order_by(Team.org_id, Team.name))},
        orgs={o.id: o for o in session.scalars(select(Organisation).order_by(Organisation.id))},
    )


def _member_orgs(names: _Names) -> list[Organisation]:
    """Organisations an order can be transferred to or split among."""
    return [o for o in names.orgs.values() if o.kind in MEMBER_KINDS and o.is_active]


def _staff_of(session: Session, org_id: int | None) -> list[User]:
    """Active staff of an organisation: who an order can be assigned to."""
    if org_id is None:
        return []
    query = select(User).where(
        User.org_id == org_id, User.is_active.is_(True), User.role.in_([r.value for r in STAFF_ROLES])
    )
    return list(session.scalars(query.order_by(User.username)))


def _my_teams(session: Session, actor: Actor, org_id: int | None) -> list[int]:
    if actor.user_id is None or org_id is None:
        return []
    query = (
        select(Team.id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == actor.user_id, Team.org_id == org_id)
        .order_by(Team.id)
    )
    return list(session.scalars(query))


def _is_bureau(actor: Actor) -> bool:
    return actor.is_platform_admin or (actor.is_staff and actor.org_kind == OrgKind.DATA_BUREAU)


# --- the queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filters:
    """The queue's filters, as the query string carries them."""

    org: int | None = None
    team: str = ""  # "" (the default: my team, else all), "all", or a team id
    state: str = "open"
    category: str = ""
    overdue: str = ""  # "", "yes", "no"
    mine: bool = False
    after: str = ""
    limit: int = _PAGE

    def query(self, **changes: Any) -> str:
        """The query string of these filters with ``changes`` (paging restarts unless ``after`` given)."""
        values = replace(self, **{"after": "", **changes})
        pairs = {
            "org": values.org or "",
            "team": values.team,
            "state": values.state,
            "category": values.category,
            "overdue": values.overdue,
            "mine": "1" if values.mine else "",
            "after": values.after,
            "limit": values.limit if values.limit != _PAGE else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v != "" or k == "state"})


def _filters(
    *,
    org: str,
    team: str | None,
    state: str | None,
    category: str,
    overdue: str,
    mine: str,
    after: str,
    limit: str = "",
) -> _Filters:
    state = "open" if state is None else state.strip()
    if state and state not in _STATE_FILTERS:
        raise Invalid(
            T("state must be one of {choices}", choices=", ".join(_STATE_FILTERS)),
            detail={"parameter": "state"},
        )
    if overdue not in ("", "yes", "no"):
        raise Invalid(T("overdue must be yes or no"), detail={"parameter": "overdue"})
    team = (team or "").strip()
    if team not in ("", "all"):
        _id(team, "team")
    size = _id(limit, "limit") or _PAGE
    if size > _MAP_LIMIT:
        raise Invalid(T("limit is at most {n}", n=_MAP_LIMIT), detail={"parameter": "limit"})
    return _Filters(
        org=_id(org, "org"),
        team=team,
        state=state,
        category=category.strip()[:64],
        overdue=overdue,
        mine=mine == "1",
        after=after.strip()[:64],
        limit=size,
    )


@dataclass
class _Queue:
    """What the queue and the map show."""

    filters: _Filters
    org_id: int | None
    team_id: int | None
    orders: list[Order]
    next: str | None
    names: _Names


def _load_queue(session: Session, actor: Actor, filters: _Filters, limit: int) -> _Queue:
    if filters.org is not None and filters.org != actor.org_id and not _is_bureau(actor):
        raise Forbidden(T("only the data bureau may look at another organisation's queue"))
    org_id = filters.org or actor.org_id
    if filters.team == "":
        mine = _my_teams(session, actor, org_id)
        team_id = mine[0] if mine else None
        filters = replace(filters, team=str(team_id) if team_id else "all")
    else:
        team_id = None if filters.team == "all" else int(filters.team)
    page = service.queue(
        session=session,
        actor=actor,
        org_id=org_id,
        team_id=team_id,
        state=filters.state or None,
        category_code=filters.category or None,
        overdue={"yes": True, "no": False}.get(filters.overdue),
        assignee_user_id=actor.user_id if filters.mine else None,
        after=filters.after or None,
        limit=limit,
    )
    names = _names(
        session,
        areas=[o.area_id for o in page.items],
        users=[o.assignee_user_id for o in page.items],
    )
    return _Queue(filters, org_id, team_id, page.items, page.next, names)


def _queue_context(
    session: Session, actor: Actor, queue: _Queue, *, error: str | None = None, done: int | None = None
) -> dict[str, Any]:
    org_teams = [t for t in queue.names.teams.values() if t.org_id == queue.org_id]
    return {
        "q": queue,
        "f": queue.filters,
        "org_teams": org_teams,
        "my_teams": set(_my_teams(session, actor, queue.org_id)),
        "org_name": queue.names.org(queue.org_id),
        "orgs": _member_orgs(queue.names) if _is_bureau(actor) else [],
        "states": _STATE_FILTERS,
        "categories": list(queue.names.categories.values()),
        "staff": _staff_of(session, queue.org_id),
        "bulk_actions": BULK_ACTIONS,
        "overdue": {o.id: service.is_overdue(o) for o in queue.orders},
        "back": "/work?" + queue.filters.query(after=queue.filters.after),
        "error": error,
        "done": done,
    }


@router.get("/work", response_class=HTMLResponse)
def queue_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    org: str = "",
    team: str | None = None,
    state: str | None = None,
    category: str = "",
    overdue: str = "",
    mine: str = "",
    after: str = "",
    limit: str = "",
    done: str = "",
) -> Response:
    """The work orders of one's organisation (one team's by default), with filters and bulk actions."""
    filters = _filters(
        org=org,
        team=team,
        state=state,
        category=category,
        overdue=overdue,
        mine=mine,
        after=after,
        limit=limit,
    )
    queue = _load_queue(session, actor, filters, filters.limit)
    count = int(done) if is_number(done) and len(done) < 6 else None
    return _render(request, "staff_queue.html", _queue_context(session, actor, queue, done=count))


def _back(raw: str) -> str:
    """Where a form returns to: a queue or map address of this site only."""
    if raw.startswith(("/work?", "/work/map?")) or raw in ("/work", "/work/map"):
        return raw
    return "/work"


@router.post("/work/bulk", response_class=HTMLResponse)
async def bulk_action(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """One action on the ticked orders, all or nothing: a refusal names the order and changes nothing."""
    form = await request.form()
    check_csrf(request, form)
    back = _back(_text(form, "back", 2000))
    try:
        ids = [_id(raw, "ids") for raw in form.getlist("ids")]
        action = _text(form, "action", 32)
        if action not in BULK_ACTIONS:
            raise Invalid(
                T("choose an action: {choices}", choices=", ".join(BULK_ACTIONS)), detail={"field": "action"}
            )
        values: dict[str, Any] = {}
        if action == "assign":
            values = {
                "team_id": _id(form.get("team_id"), "team_id"),
                "assignee_user_id": _id(form.get("assignee_user_id"), "assignee_user_id"),
            }
            values = {k: v for k, v in values.items() if v is not None}
        done = service.bulk_act(
            session=session,
            actor=actor,
            request_ids=[i for i in ids if i is not None],
            action=action,
            note=_text(form, "note"),
            **values,
        )
    except (Invalid, Conflict, NotFound, Forbidden) as exc:
        session.rollback()
        query = dict(parse_qsl(back.partition("?")[2]))
        filters = _filters(
            org=query.get("org", ""),
            team=query.get("team"),
            state=query.get("state"),
            category=query.get("category", ""),
            overdue=query.get("overdue", ""),
            mine=query.get("mine", ""),
            after=query.get("after", ""),
            limit=query.get("limit", ""),
        )
        queue = _load_queue(session, actor, filters, filters.limit)
        return _render(
            request,
            "staff_queue.html",
            _queue_context(session, actor, queue, error=_message(exc)),
            status=exc.status_code,
        )
    joiner = "&" if "?" in back else "?"
    return redirect(f"{back}{joiner}done={len(done)}")


# --- one order ------------------------------------------------------------------------------------


def _entry_text(update: RequestUpdate) -> str:
    return localize_stored((update.detail or {}).get("message"), update.text)


def _order_context(
    session: Session,
    actor: Actor,
    order_id: int,
    *,
    template: int | None = None,
    error: str | None = None,
    error_field: str = "",
) -> dict[str, Any]:
    order = service.get_request(session=session, request_id=order_id, actor=actor)
    if not service.may_see_order(session, actor, order):
        raise Forbidden(
            T("only staff of the organisation working this order, or the data bureau, may see it")
        )
    updates = service.timeline(session=session, actor=actor, request_id=order.id)
    children = list(session.scalars(select(Order).where(Order.parent_id == order.id).order_by(Order.id)))
    duplicates = list(
        session.scalars(select(Order.id).where(Order.duplicate_of_id == order.id).order_by(Order.id))
    )
    parent = session.get(Order, order.parent_id) if order.parent_id else None
    names = _names(
        session,
        areas=[order.area_id],
        users=[
            order.assignee_user_id,
            order.reporter_user_id,
            order.filed_by_user_id,
            *(u.actor_user_id for u in updates),
            *(c.assignee_user_id for c in children),
        ],
    )
    templates = (
        admin.list_templates(session=session, actor=actor, org_id=actor.org_id) if actor.org_id else []
    )
    chosen = next((t for t in templates if t.id == template), None)
    suggestion = None
    if order.suggestion_id:
        suggestion = suggestions.get_or_raise(session=session, suggestion_id=order.suggestion_id)
    attributes = service.attributes_of(session=session, category_id=order.category_id)
    available = service.available_actions(actor, order)
    return {
        "o": order,
        "names": names,
        "updates": updates,
        "entry_text": _entry_text,
        "photos": photos.list_photos(session=session, request_id=order.id),
        "children": children,
        "duplicates": duplicates,
        "parent": parent,
        "suggestion": suggestion,
        "answers": [(a.description or a.code, order.answers.get(a.code)) for a in attributes if a.variable],
        "overdue": service.is_overdue(order),
        "status": service.open311_status(order.state),
        "available": available,
        "replies": [a for a in _REPLY_ACTIONS if a in available],
        "wait_reasons": service.WAIT_REASONS,
        "templates": templates,
        "template_id": template,
        "note": chosen.text if chosen else "",
        "org_teams": [t for t in names.teams.values() if t.org_id == order.org_id],
        "staff": _staff_of(session, order.org_id),
        "orgs": _member_orgs(names),
        "split_rows": range(_SPLIT_ROWS),
        "can_split": order.parent_id is None
        and order.state not in service.CLOSED_STATES
        and can(actor, "participation.dispatch", org_id=order.org_id),
        "error": error,
        "error_field": error_field,
    }


@router.get("/work/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    request: Request, order_id: IdPath, session: SessionDep, actor: PageActor, template: str = ""
) -> Response:
    """One work order: what the resident said, the internal fields, the whole timeline and the actions
    its state allows (``?template=`` puts a response template's text in the reply)."""
    context = _order_context(session, actor, order_id, template=_id(template, "template"))
    return _render(request, "staff_order.html", context)


def _refused(request: Request, session: Session, actor: Actor, order_id: int, exc: ZhisheError) -> Response:
    """The order page again with the service's refusal, nothing written."""
    session.rollback()
    field = str((exc.detail or {}).get("field", ""))
    context = _order_context(session, actor, order_id, error=_message(exc), error_field=field)
    return _render(request, "staff_order.html", context, status=exc.status_code)


def _action_values(action: str, form: FormData) -> dict[str, Any]:
    """The values an action takes from its form (absent ones left for the service to ask for)."""
    if action == "assign":
        values: dict[str, Any] = {
            "team_id": _id(form.get("team_id"), "team_id"),
            "assignee_user_id": _id(form.get("assignee_user_id"), "assignee_user_id"),
        }
    elif action == "wait":
        values = {"reason": _text(form, "reason", 16)}
    elif action == "duplicate":
        values = {"of_id": _id(form.get("of_id"), "of_id")}
    elif action == "transfer":
        values = {"org_id": _id(form.get("org_id"), "org_id"), "team_id": _id(form.get("team_id"), "team_id")}
    elif action == "not_ours":
        values = {"responsible": _id(form.get("responsible"), "responsible")}
    else:
        values = {}
    return {k: v for k, v in values.items() if v is not None}


@router.post("/work/orders/{order_id}", response_class=HTMLResponse)
async def order_action(request: Request, order_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """Take an action on the order (``internal_note`` is a comment staff alone see)."""
    form = await request.form()
    check_csrf(request, form)
    action = _text(form, "action", 32)
    public = True
    if action == "internal_note":
        action, public = "comment", False
    try:
        service.act(
            session=session,
            actor=actor,
            request_id=order_id,
            action=action,
            note=_text(form, "note"),
            public=public,
            **_action_values(action, form),
        )
    except (Invalid, Conflict, Forbidden) as exc:
        if isinstance(exc, Forbidden) and not _may_see(session, actor, order_id):
            raise
        return _refused(request, session, actor, order_id, exc)
    return redirect(f"/work/orders/{order_id}")


def _may_see(session: Session, actor: Actor, order_id: int) -> bool:
    order = session.get(Order, order_id)
    return order is not None and service.may_see_order(session, actor, order)


@router.post("/work/orders/{order_id}/split", response_class=HTMLResponse)
async def split_order(request: Request, order_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """Make the order a joint order: one internal task per department named in the rows."""
    form = await request.form()
    check_csrf(request, form)
    orgs, teams, tasks = form.getlist("part_org"), form.getlist("part_team"), form.getlist("part_task")
    try:
        parts: list[tuple[int, int | None, str]] = []
        for index, task in enumerate(tasks):
            org = orgs[index] if index < len(orgs) else ""
            team = teams[index] if index < len(teams) else ""
            text = str(task).strip()
            if not text and not str(org).strip() and not str(team).strip():
                continue
            org_id = _id(org, f"parts[{index}].org_id")
            if org_id is None:
                raise Invalid(
                    T("name the department of task {n}", n=index + 1),
                    detail={"field": f"parts[{index}].org_id"},
                )
            parts.append((org_id, _id(team, f"parts[{index}].team_id"), text[:4000]))
        service.split(session=session, actor=actor, request_id=order_id, parts=parts)
    except (Invalid, Conflict, Forbidden, NotFound) as exc:
        if not _may_see(session, actor, order_id):
            raise
        return _refused(request, session, actor, order_id, exc)
    return redirect(f"/work/orders/{order_id}#children")


@router.post("/work/orders/{order_id}/suggestion", response_class=HTMLResponse)
async def link_suggestion(
    request: Request, order_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """Link the order to a suggestion, or unlink it (an empty id)."""
    form = await request.form()
    check_csrf(request, form)
    try:
        service.link_suggestion(
            session=session,
            actor=actor,
            request_id=order_id,
            suggestion_id=_id(form.get("suggestion_id"), "suggestion_id"),
        )
    except (Invalid, Conflict, Forbidden, NotFound) as exc:
        if not _may_see(session, actor, order_id):
            raise
        return _refused(request, session, actor, order_id, exc)
    return redirect(f"/work/orders/{order_id}")


# --- the map --------------------------------------------------------------------------------------


def _zoom(lats: list[float], lons: list[float]) -> float:
    """A zoom that fits the points (web-mercator tiles halve their span at each level)."""
    span = max(max(lats) - min(lats), (max(lons) - min(lons)) * math.cos(math.radians(sum(lats) / len(lats))))
    if span <= 0:
        return 16.0
    return float(max(3.0, min(17.0, math.log2(360 / span) - 1.2)))


def _map_data(session: Session, queue: _Queue) -> dict[str, Any]:
    language = _language()
    points: list[dict[str, Any]] = []
    lats: list[float] = []
    lons: list[float] = []
    for order in queue.orders:
        if order.lat is None or order.lon is None:
            continue
        late = service.is_overdue(order)
        lats.append(order.lat)
        lons.append(order.lon)
        points.append(
            {
                "id": order.id,
                "lat": round(order.lat, 6),
                "lon": round(order.lon, 6),
                "state": order.state,
                "state_label": label("state", order.state),
                "overdue": late,
                "colour": _OVERDUE_COLOUR if late else _COLOURS.get(order.state, "#0b6bcb"),
                "category": queue.names.category(order.category_id),
                "label": f"#{order.id} {queue.names.category(order.category_id)}",
                "text": order.description[:80],
                "url": f"/work/orders/{order.id}",
            }
        )
    buildings = []
    if points:
        pad = 0.003
        query = select(Area).where(
            Area.level == "building",
            Area.lat.between(min(lats) - pad, max(lats) + pad),
            Area.lon.between(min(lons) - pad, max(lons) + pad),
        )
        buildings = [
            {"lat": a.lat, "lon": a.lon, "name": a.name(language)}
            for a in session.scalars(query.order_by(Area.code).limit(500))
        ]
    tiles = get_settings().map_tile_url.strip()
    return {
        "points": points,
        "buildings": buildings,
        "center": {"lat": sum(lats) / len(lats), "lon": sum(lons) / len(lons)} if points else None,
        "zoom": _zoom(lats, lons) if points else 12,
        "tiles": tiles or None,
        "labels": {
            "overdue": localize(T("overdue")),
            "buildings": localize(T("Buildings")),
        },
    }


def _script_json(data: Mapping[str, Any]) -> str:
    """JSON safe to embed in a ``<script type="application/json">`` element."""
    text = orjson.dumps(data).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/work/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    org: str = "",
    team: str | None = None,
    state: str | None = None,
    category: str = "",
    overdue: str = "",
    mine: str = "",
    after: str = "",
) -> Response:
    """The queue's orders as points on a map (no external tiles unless a tile URL is configured)."""
    filters = _filters(
        org=org, team=team, state=state, category=category, overdue=overdue, mine=mine, after=after
    )
    queue = _load_queue(session, actor, filters, _MAP_LIMIT)
    data = _map_data(session, queue)
    context = _queue_context(session, actor, queue)
    context.update(map_json=_script_json(data), points=data["points"])
    return _render(request, "staff_map.html", context)


# --- response templates ---------------------------------------------------------------------------


def _templates_context(session: Session, actor: Actor, error: str | None = None) -> dict[str, Any]:
    if actor.org_id is None:
        raise Forbidden(T("response templates belong to an organisation"))
    return {
        "templates": admin.list_templates(session=session, actor=actor, org_id=actor.org_id),
        "may_add": can(actor, "participation.dispatch", org_id=actor.org_id),
        "org_name": _org_name(session.get(Organisation, actor.org_id)),
        "error": error,
    }


@router.get("/work/templates", response_class=HTMLResponse)
def templates_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The organisation's canned replies."""
    return _render(request, "staff_templates.html", _templates_context(session, actor))


@router.post("/work/templates", response_class=HTMLResponse)
async def add_template(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Add a canned reply."""
    form = await request.form()
    check_csrf(request, form)
    try:
        if actor.org_id is None:
            raise Forbidden(T("response templates belong to an organisation"))
        admin.create_template(
            session=session,
            actor=actor,
            org_id=actor.org_id,
            title=_text(form, "title", 400),
            text=_text(form, "text", 8000),
        )
    except (Invalid, Forbidden) as exc:
        session.rollback()
        if isinstance(exc, Forbidden) and not actor.is_staff:
            raise
        context = _templates_context(session, actor, error=_message(exc))
        return _render(request, "staff_templates.html", context, status=exc.status_code)
    return redirect("/work/templates")


# --- routing rules --------------------------------------------------------------------------------


def _routing_context(session: Session, actor: Actor, error: str | None = None) -> dict[str, Any]:
    rules = admin.list_routing_rules(session=session, actor=actor)
    names = _names(session, areas=[r.area_id for r in rules], users=[r.assignee_user_id for r in rules])
    all_areas = list(session.scalars(select(Area).order_by(Area.code)))
    return {
        "rules": rules,
        "names": names,
        "may_configure": can(actor, "participation.configure"),
        "categories": list(names.categories.values()),
        "areas": all_areas,
        "orgs": _member_orgs(names),
        "teams": list(names.teams.values()),
        "error": error,
    }


@router.get("/work/routing", response_class=HTMLResponse)
def routing_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Who works which reports: category x area -> department and team, or a grid worker."""
    return _render(request, "staff_routing.html", _routing_context(session, actor))


@router.post("/work/routing", response_class=HTMLResponse)
async def routing_change(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Add a routing rule, or delete one (``delete`` names it)."""
    form = await request.form()
    check_csrf(request, form)
    try:
        delete = _id(form.get("delete"), "delete")
        if delete is not None:
            admin.delete_routing_rule(session=session, actor=actor, rule_id=delete)
        else:
            org_id = _id(form.get("org_id"), "org_id")
            if org_id is None:
                raise Invalid(T("choose the department that works these reports"), detail={"field": "org_id"})
            username = _text(form, "assignee", 64)
            assignee = None
            if username:
                user = accounts.get_user_by_username(session=session, username=username)
                if user is None:
                    raise Invalid(
                        T("there is no user {name}", name=repr(username)), detail={"field": "assignee"}
                    )
                assignee = user.id
            priority_text = _text(form, "priority", 12) or "100"
            try:
                priority = int(priority_text)
            except ValueError:
                raise Invalid(T("priority must be a whole number"), detail={"field": "priority"}) from None
            admin.add_routing_rule(
                session=session,
                actor=actor,
                category_code=_text(form, "category", 64) or None,
                area_code=_text(form, "area", 64) or None,
                org_id=org_id,
                team_id=_id(form.get("team_id"), "team_id"),
                assignee_user_id=assignee,
                priority=priority,
            )
    except (Invalid, Forbidden, NotFound) as exc:
        session.rollback()
        if isinstance(exc, Forbidden) and not actor.is_staff:
            raise
        context = _routing_context(session, actor, error=_message(exc))
        return _render(request, "staff_routing.html", context, status=exc.status_code)
    return redirect("/work/routing")
