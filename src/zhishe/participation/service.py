"""Reports and the work orders they become: categories and their questions, submission with
validation and routing, the public timeline, "me too", the residents' follow-up, and the
work-order state machine staff drive.

A request's internal ``state`` moves along ``_MOVES``:

    new → assigned → accepted → in_progress → (waiting ⇄ in_progress) → resolved → closed
                                                                           ↘ reopened → …
    and, from any open state, duplicate (linked to the original) or rejected (with a public reason).

The SLA clock stops while an order waits (parts, third party, weather): the deadline moves later by
the working time spent waiting (``sla.extend``). Open311's binary ``status`` is derived: closed for
resolved, closed, duplicate and rejected. A joint order is a public parent with internal children,
one per department; the parent is resolved once every child is done.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import User
from zhishe.core.areas.models import Area
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import Message, T, stored
from zhishe.core.notifications import service as notifications
from zhishe.core.pagination import Page, keyset_page
from zhishe.participation import escalation, photos, sla
from zhishe.participation.models import (
    ApiKey,
    Category,
    CategoryAttribute,
    Request,
    RequestUpdate,
    RoutingRule,
    Support,
    Team,
    TeamMember,
)

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "CLOSED_STATES",
    "DATATYPES",
    "STATES",
    "WAIT_REASONS",
    "Reporter",
    "act",
    "add_info",
    "attributes_of",
    "available_actions",
    "bulk_act",
    "close_unconfirmed",
    "confirm",
    "distance_m",
    "get_category",
    "get_request",
    "is_overdue",
    "link_suggestion",
    "list_categories",
    "may_see_order",
    "nearby",
    "open311_status",
    "public_updates",
    "queue",
    "residence_area_id",
    "route",
    "split",
    "submit",
    "support",
    "timeline",
]

STATES = (
    "new",
    "assigned",
    "accepted",
    "in_progress",
    "waiting",
    "resolved",
    "closed",
    "reopened",
    "duplicate",
    "rejected",
)
CLOSED_STATES = frozenset({"resolved", "closed", "duplicate", "rejected"})
WAIT_REASONS = ("parts", "third_party", "weather")
CHANNELS = ("web", "app", "wechat", "phone", "call_centre", "walk_in", "open311", "staff")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
#: Channels through which staff file for someone else.
_STAFF_CHANNELS = frozenset({"phone", "call_centre", "walk_in", "staff"})
_OPEN = ("new", "assigned", "accepted", "in_progress", "reopened")

#: action -> (states it may start from, the state it leads to; None keeps the state)
_MOVES: dict[str, tuple[frozenset[str], str | None]] = {
    "assign": (frozenset(_OPEN), "assigned"),
    "accept": (frozenset({"new", "assigned", "reopened"}), "accepted"),
    "start": (frozenset({"assigned", "accepted", "reopened"}), "in_progress"),
    "wait": (frozenset({"accepted", "in_progress"}), "waiting"),
    "resume": (frozenset({"waiting"}), "in_progress"),
    "resolve": (frozenset({*_OPEN, "waiting"}), "resolved"),
    "close": (frozenset({"resolved"}), "closed"),
    "reopen": (frozenset({"resolved", "closed"}), "reopened"),
    "duplicate": (frozenset(_OPEN), "duplicate"),
    "reject": (frozenset(_OPEN), "rejected"),
    "transfer": (frozenset(_OPEN), "new"),
    "not_ours": (frozenset(_OPEN), "new"),
    "comment": (frozenset(STATES), None),
}
ACTIONS = tuple(_MOVES)
#: Actions for whoever works the order; the others are for dispatchers.
_WORK = frozenset({"accept", "start", "wait", "resume", "resolve", "comment"})
#: Actions whose note is shown publicly (a public reason or a status note).
_NEEDS_NOTE = {"reject", "transfer", "not_ours", "comment"}

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_MAX_DESCRIPTION = 4000
_MAX_TEXT = {"string": 500, "text": 5000}


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who filed a report when they are not a signed-in resident (personal: never published)."""

    name: str = ""
    email: str = ""
    phone: str = ""
    device_id: str = ""


def open311_status(state: str) -> str:
    """The binary Open311 status of an internal state."""
    return "closed" if state in CLOSED_STATES else "open"


def is_overdue(request: Request, now: datetime | None = None) -> bool:
    """Open, not waiting, and past its deadline: the public overdue badge."""
    return escalation.overdue_badge(request, now)


# --- categories -------------------------------------------------------------------------------------


def list_categories(*, session: Session, active_only: bool = True) -> list[Category]:
    """Categories, by group then code."""
    query = select(Category)
    if active_only:
        query = query.where(Category.active.is_(True))
    return list(session.scalars(query.order_by(Category.group, Category.code)))


def get_category(*, session: Session, code: str) -> Category:
    """The category ``code``; ``NotFound`` names it."""
    found = session.scalar(select(Category).where(Category.code == code))
    if found is None:
        raise NotFound(T("no report category {code}", code=repr(code)), detail={"field": "service_code"})
    return found


def attributes_of(*, session: Session, category_id: int) -> list[CategoryAttribute]:
    """A category's questions in their order."""
    query = select(CategoryAttribute).where(CategoryAttribute.category_id == category_id)
    return list(session.scalars(query.order_by(CategoryAttribute.order, CategoryAttribute.id)))


# --- submission ---------------------------------------------------------------------------------------


def _check_answers(attributes: Sequence[CategoryAttribute], answers: Mapping[str, Any]) -> dict[str, Any]:
    by_code = {a.code: a for a in attributes if a.variable}
    unknown = sorted(set(answers) - set(by_code))
    if unknown:
        raise Invalid(
            T("this category has no question {code}", code=repr(unknown[0])),
            detail={"field": f"attribute[{unknown[0]}]"},
        )
    clean: dict[str, Any] = {}
    for attribute in by_code.values():
        field = f"attribute[{attribute.code}]"
        raw = answers.get(attribute.code)
        empty = raw is None or raw == "" or raw == [] or (isinstance(raw, list) and all(v == "" for v in raw))
        if empty:
            if attribute.required:
                raise Invalid(
                    T("{name} is required", name=attribute.description or attribute.code),
                    detail={"field": field},
                )
            continue
        clean[attribute.code] = _answer(attribute, raw, field)
    return clean


def _answer(attribute: CategoryAttribute, raw: Any, field: str) -> Any:
    kind = attribute.datatype
    keys = [str(v.get("key")) for v in attribute.values or []]
    if kind == "multivaluelist":
        values = raw if isinstance(raw, list) else [v for v in str(raw).split(",")]
        values = [str(v).strip() for v in values if str(v).strip()]
        bad = [v for v in values if v not in keys]
        if bad:
            raise Invalid(
                T(
                    "{value} is not one of the choices ({choices})",
                    value=repr(bad[0]),
                    choices=", ".join(keys),
                ),
                detail={"field": field},
            )
        return sorted(set(values), key=values.index)
    if isinstance(raw, list):
        if len(raw) != 1:
            raise Invalid(T("give one value, not a list"), detail={"field": field})
        raw = raw[0]
    text = str(raw).strip()
    if kind == "singlevaluelist":
        if text not in keys:
            raise Invalid(
                T("{value} is not one of the choices ({choices})", value=repr(text), choices=", ".join(keys)),
                detail={"field": field},
            )
        return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise Invalid(
                T("{value} is not a number", value=repr(text[:50])), detail={"field": field}
            ) from None
        if not math.isfinite(number):
            raise Invalid(T("{value} is not a number", value=repr(text[:50])), detail={"field": field})
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(
                T("{value} is not an ISO 8601 date and time", value=repr(text[:50])), detail={"field": field}
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=get_settings().tz)
        return moment.isoformat()
    limit = _MAX_TEXT.get(kind, 500)
    if len(text) > limit:
        raise Invalid(T("at most {n} characters", n=limit), detail={"field": field})
    return text


def _coordinate(value: float | None, low: float, high: float, field: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
        raise Invalid(
            T("{field} must be a number between {low} and {high}", field=field, low=low, high=high),
            detail={"field": field},
        )
    return float(value)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def _nearest_building(session: Session, lat: float, lon: float, within: float = 150.0) -> Area | None:
    box = within / 111_000 * 2
    candidates = session.scalars(
        select(Area).where(
            Area.level.in_(("building", "unit")),
            Area.lat.between(lat - box, lat + box),
            Area.lon.between(lon - box * 1.5, lon + box * 1.5),
        )
    )
    best: tuple[float, Area] | None = None
    for area in candidates:
        if area.lat is None or area.lon is None:
            continue
        d = distance_m(lat, lon, area.lat, area.lon)
        if d <= within and (best is None or d < best[0] or (d == best[0] and area.level == "building")):
            best = (d, area)
    return best[1] if best else None


def _ancestors(session: Session, area_id: int | None) -> list[int]:
    """The area and its ancestors, narrowest first."""
    chain: list[int] = []
    while area_id is not None and area_id not in chain:
        chain.append(area_id)
        area_id = session.scalar(select(Area.parent_id).where(Area.id == area_id))
    return chain


def route(session: Session, category: Category, area_id: int | None) -> RoutingRule | None:
    """The rule that decides who works a report: a rule for the category before a wildcard one, then
    the narrowest matching area, then the lowest priority."""
    chain = _ancestors(session, area_id)
    rules = session.scalars(
        select(RoutingRule).where(
            (RoutingRule.category_id == category.id) | RoutingRule.category_id.is_(None),
            RoutingRule.area_id.is_(None) | RoutingRule.area_id.in_(chain or [-1]),
        )
    )

    def rank(rule: RoutingRule) -> tuple[int, int, int, int]:
        depth = chain.index(rule.area_id) if rule.area_id is not None else len(chain) + 1
        return (rule.category_id is None, depth, rule.priority, rule.id)

    ordered = sorted(rules, key=rank)
    return ordered[0] if ordered else None


def submit(
    *,
    session: Session,
    actor: Actor | None,
    category_code: str,
    description: str,
    lat: float | None = None,
    lon: float | None = None,
    address: str = "",
    address_id: str = "",
    zipcode: str = "",
    answers: Mapping[str, Any] | None = None,
    reporter: Reporter | None = None,
    channel: str = "web",
    api_key: ApiKey | None = None,
    photos: Sequence[bytes] = (),
    media_url: str = "",
    duplicate_check: bool = False,
) -> Request:
    """File a report: validated whole before anything is written, routed, given its SLA deadline."""
    if actor is not None:
        authorize(actor, "participation.report", what="report")
    elif api_key is None:
        raise Forbidden(T("sign in to file a report"))
    settings = get_settings()
    reporter = reporter or Reporter()
    if (
        actor is not None
        and actor.role == Role.RESIDENT
        and (channel in _STAFF_CHANNELS or reporter.name or reporter.phone or reporter.email)
    ):
        raise Forbidden(T("only staff may file a report on behalf of a caller"), detail={"field": "channel"})
    if not category_code:
        raise Invalid(T("choose a category"), detail={"field": "service_code"})
    category = get_category(session=session, code=category_code)
    if not category.active:
        raise Invalid(
            T("the category {code} no longer takes reports", code=category.code),
            detail={"field": "service_code"},
        )
    if channel not in CHANNELS:
        raise Invalid(T("unknown channel {channel}", channel=repr(channel)), detail={"field": "channel"})
    description = (description or "").strip()
    if len(description) > _MAX_DESCRIPTION:
        raise Invalid(
            T("the description has at most {n} characters", n=_MAX_DESCRIPTION),
            detail={"field": "description"},
        )
    clean = _check_answers(attributes_of(session=session, category_id=category.id), answers or {})
    lat_ = _coordinate(lat, -90, 90, "lat")
    lon_ = _coordinate(lon, -180, 180, "long")
    if (lat_ is None) != (lon_ is None):
        raise Invalid(
            T("give both lat and long, or neither"), detail={"field": "lat" if lat_ is None else "long"}
        )
    address = (address or "").strip()[:500]
    area: Area | None = None
    if address_id:
        area = session.scalar(select(Area).where(Area.code == address_id.strip()))
        if area is None:
            raise Invalid(
                T("no address {code} in the address list", code=repr(address_id)),
                detail={"field": "address_id"},
            )
    if lat_ is None and area is None and not address:
        raise Invalid(
            T("say where: a position (lat and long), a building from the address list, or an address"),
            detail={"field": "lat"},
        )
    if area is not None and lat_ is None and area.lat is not None and area.lon is not None:
        lat_, lon_ = area.lat, area.lon
    if area is None and lat_ is not None and lon_ is not None:
        area = _nearest_building(session, lat_, lon_)
    if reporter.email and not _EMAIL.match(reporter.email.strip()):
        raise Invalid(
            T("{value} is not an email address", value=repr(reporter.email[:60])), detail={"field": "email"}
        )
    if len(reporter.phone) > 40 or len(reporter.name) > 200:
        raise Invalid(T("the reporter's name or phone is too long"), detail={"field": "phone"})
    media_url = (media_url or "").strip()
    if media_url and (not re.match(r"^https?://[^\s]+$", media_url) or len(media_url) > 1000):
        raise Invalid(T("media_url must be an http(s) URL"), detail={"field": "media_url"})
    if len(photos) > settings.participation_max_photos:
        raise Invalid(
            T("at most {n} photos", n=settings.participation_max_photos), detail={"field": "photos"}
        )
    cleaned = [photos_.clean(data, field=f"photo{i + 1}") for i, data in enumerate(photos)]

    now = clock.now()
    rule = route(session, category, area.id if area else None)
    routed = rule is not None and bool(rule.team_id or rule.assignee_user_id)
    calendar = sla.WorkCalendar.load(session)  # once: the deadline and the escalation rungs use it
    resident = actor is not None and actor.role == Role.RESIDENT
    row = Request(
        category_id=category.id,
        state="assigned" if routed else "new",
        description=description,
        answers=clean,
        lat=lat_,
        lon=lon_,
        address=address,
        area_id=area.id if area else None,
        zipcode=(zipcode or "").strip()[:16],
        reporter_user_id=actor.user_id if resident and actor is not None else None,
        reporter_name=reporter.name.strip(),
        reporter_email=reporter.email.strip(),
        reporter_phone=reporter.phone.strip(),
        channel=channel,
        api_key_id=api_key.id if api_key else None,
        filed_by_user_id=actor.user_id if actor is not None and not resident else None,
        token=secrets.token_hex(16),
        org_id=rule.org_id if rule else None,
        team_id=rule.team_id if rule else None,
        assignee_user_id=rule.assignee_user_id if rule else None,
        requested_at=now,
        updated_at=now,
        expected_at=calendar.deadline(now, category.sla_amount, category.sla_unit),
        service_notice=_notice(category),
        media_url=media_url,
    )
    # The row is inserted as it ends up (state, deadline, next escalation), not updated after.
    escalation.schedule(session, row, now, calendar=calendar)
    session.add(row)
    session.flush()
    for index, photo in enumerate(cleaned):
        photos_.store_clean(session=session, request_id=row.id, photo=photo, field=f"photo{index + 1}")
    _update(
        session,
        row,
        "state",
        T("report received"),
        actor=actor,
        detail={"channel": channel},
        at=now,
        state="new",
    )
    if routed:
        _update(session, row, "state", T("routed to the responsible team"), actor=None, public=True, at=now)
    record(
        session=session,
        actor=actor,
        action="participation.request.submit",
        object_type="participation_request",
        object_id=row.id,
        object_org_id=row.org_id,
        detail={
            "category": category.code,
            "channel": channel,
            "api_key": api_key.prefix if api_key else None,
        },
    )
    _notify_workers(session, row, T("new report #{id}: {category}", id=row.id, category=category.name_zh))
    return row


photos_ = photos  # the module, under a name the ``photos`` parameter does not hide


def _notice(category: Category) -> str:
    if category.sla_unit == "hours":
        return f"{category.sla_amount} working hours"
    return f"{category.sla_amount} working days"


# --- reading ----------------------------------------------------------------------------------------


def may_see_order(session: Session, actor: Actor | None, request: Request) -> bool:
    """Whether ``actor`` may see the work-order side of ``request`` (staff of its or its parent's
    organisation, or of the data bureau)."""
    if actor is None:
        return False
    if can(actor, "participation.read", org_id=request.org_id):
        return True
    if request.parent_id is not None:
        parent_org = session.scalar(select(Request.org_id).where(Request.id == request.parent_id))
        return can(actor, "participation.read", org_id=parent_org)
    return False


def get_request(*, session: Session, request_id: int, actor: Actor | None = None) -> Request:
    """A request: public ones for anyone; a joint order's internal children only for staff."""
    found = session.get(Request, request_id)
    if found is None or (found.parent_id is not None and not may_see_order(session, actor, found)):
        raise NotFound(T("no report #{id}", id=request_id), detail={"field": "service_request_id"})
    return found


def public_updates(*, session: Session, request_id: int) -> list[RequestUpdate]:
    """The public timeline of a request, oldest first."""
    query = select(RequestUpdate).where(
        RequestUpdate.request_id == request_id, RequestUpdate.public.is_(True)
    )
    return list(session.scalars(query.order_by(RequestUpdate.at, RequestUpdate.id)))


def timeline(*, session: Session, actor: Actor, request_id: int) -> list[RequestUpdate]:
    """The whole timeline for staff who may see the order (audited), the public one for others."""
    request = get_request(session=session, request_id=request_id, actor=actor)
    if not may_see_order(session, actor, request):
        return public_updates(session=session, request_id=request_id)
    record(
        session=session,
        actor=actor,
        action="participation.request.read",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
    )
    query = select(RequestUpdate).where(RequestUpdate.request_id == request_id)
    return list(session.scalars(query.order_by(RequestUpdate.at, RequestUpdate.id)))


def nearby(
    *, session: Session, category_code: str, lat: float, lon: float, metres: int | None = None
) -> list[tuple[Request, float]]:
    """Open public reports of the category within its radius (or ``metres``), nearest first."""
    category = get_category(session=session, code=category_code)
    lat_ = _coordinate(lat, -90, 90, "lat")
    lon_ = _coordinate(lon, -180, 180, "long")
    assert lat_ is not None and lon_ is not None
    radius = float(metres if metres is not None else category.nearby_metres)
    if not 0 < radius <= 5000:
        raise Invalid(T("the radius must be between 1 and 5000 metres"), detail={"field": "metres"})
    dlat = radius / 110_000
    dlon = radius / (110_000 * max(0.01, math.cos(math.radians(lat_))))
    rows = session.scalars(
        select(Request).where(
            Request.category_id == category.id,
            Request.parent_id.is_(None),
            Request.state.in_((*_OPEN, "waiting")),
            Request.lat.between(lat_ - dlat, lat_ + dlat),
            Request.lon.between(lon_ - dlon, lon_ + dlon),
        )
    )
    found = []
    for row in rows:
        assert row.lat is not None and row.lon is not None
        d = distance_m(lat_, lon_, row.lat, row.lon)
        if d <= radius:
            found.append((row, round(d, 1)))
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))


def queue(
    *,
    session: Session,
    actor: Actor,
    org_id: int | None = None,
    team_id: int | None = None,
    state: str | None = None,
    category_code: str | None = None,
    overdue: bool | None = None,
    assignee_user_id: int | None = None,
    unrouted: bool = False,
    after: str | None = None,
    limit: int = 50,
) -> Page[Request]:
    """Orders of the actor's organisation (the data bureau may name any, or ask for the ``unrouted``
    ones no rule matched), oldest first."""
    if unrouted:  # reports no rule routed: the data bureau's (or a platform admin's) to dispatch
        org = None
        authorize(actor, "participation.dispatch", org_id=None, what="unrouted reports")
        query = select(Request).where(Request.org_id.is_(None))
    else:
        org = org_id if org_id is not None else actor.org_id
        authorize(actor, "participation.read", org_id=org, what="work orders")
        query = select(Request).where(Request.org_id == org)
    if team_id is not None:
        query = query.where(Request.team_id == team_id)
    if assignee_user_id is not None:
        query = query.where(Request.assignee_user_id == assignee_user_id)
    if state == "open":
        query = query.where(Request.state.in_((*_OPEN, "waiting")))
    elif state:
        if state not in STATES:
            raise Invalid(T("unknown state {state}", state=repr(state)), detail={"field": "state"})
        query = query.where(Request.state == state)
    if category_code:
        query = query.where(Request.category_id == get_category(session=session, code=category_code).id)
    if overdue is not None:
        late = Request.state.in_(_OPEN) & Request.paused_at.is_(None) & (Request.expected_at < clock.now())
        query = query.where(late if overdue else ~late)
    page = keyset_page(session, query, Request.id, after=after, limit=max(1, min(limit, 500)))
    record(
        session=session,
        actor=actor,
        action="participation.queue.read",
        object_type="participation_queue",
        object_id=org or 0,
        object_org_id=org,
        detail={"count": len(page.items), "team": team_id, "state": state},
    )
    return page


# --- residents' follow-up --------------------------------------------------------------------------


def _followers(session: Session, request: Request) -> set[int]:
    # ``supporters`` counts the Support rows, so a report nobody supported needs no query
    users = (
        set(session.scalars(select(Support.user_id).where(Support.request_id == request.id)))
        if request.supporters
        else set()
    )
    if request.reporter_user_id is not None:
        users.add(request.reporter_user_id)
    return users


def support(*, session: Session, actor: Actor, request_id: int) -> Request:
    """ "Me too": a support and a subscription to the report's updates (idempotent)."""
    authorize(actor, "participation.report", what="report")
    request = get_request(session=session, request_id=request_id, actor=actor)
    if actor.user_id is None:
        raise Forbidden(T("sign in to support a report"))
    if request.state in CLOSED_STATES:
        raise Conflict(T("this report is already closed"), detail={"state": request.state})
    if request.reporter_user_id == actor.user_id:
        return request
    if session.get(Support, (request.id, actor.user_id)) is None:
        session.add(Support(request_id=request.id, user_id=actor.user_id, at=clock.now()))
        request.supporters += 1
        _update(
            session, request, "support", T("another resident has the same problem"), actor=actor, staff=False
        )
        record(
            session=session,
            actor=actor,
            action="participation.request.support",
            object_type="participation_request",
            object_id=request.id,
            object_org_id=request.org_id,
        )
    return request


def _is_follower(session: Session, actor: Actor, request: Request) -> bool:
    return actor.user_id is not None and actor.user_id in _followers(session, request)


def add_info(
    *, session: Session, actor: Actor, request_id: int, text: str, photos: Sequence[bytes] = ()
) -> RequestUpdate:
    """The reporter or a supporter adds information; it goes to the department working the order."""
    request = get_request(session=session, request_id=request_id, actor=actor)
    if not _is_follower(session, actor, request):
        raise Forbidden(T("only the resident who filed or supports this report may add to it"))
    text = (text or "").strip()
    if not text and not photos:
        raise Invalid(T("write something or add a photo"), detail={"field": "text"})
    if len(text) > _MAX_DESCRIPTION:
        raise Invalid(T("at most {n} characters", n=_MAX_DESCRIPTION), detail={"field": "text"})
    if len(photos) > get_settings().participation_max_photos:
        raise Invalid(
            T("at most {n} photos", n=get_settings().participation_max_photos), detail={"field": "photos"}
        )
    cleaned = [photos_.clean(data, field=f"photo{i + 1}") for i, data in enumerate(photos)]
    update = _update(session, request, "info", text, actor=actor, public=False, staff=False)
    for index, photo in enumerate(cleaned):
        photos_.store_clean(
            session=session,
            request_id=request.id,
            photo=photo,
            update_id=update.id,
            field=f"photo{index + 1}",
        )
    _notify_workers(session, request, T("new information on report #{id}", id=request.id))
    record(
        session=session,
        actor=actor,
        action="participation.request.info",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
    )
    return update


def confirm(
    *,
    session: Session,
    actor: Actor,
    request_id: int,
    fixed: bool,
    reason: str = "",
    satisfaction: int | None = None,
) -> Request:
    """The reporter confirms the fix (the order closes) or reopens it, within the window."""
    request = get_request(session=session, request_id=request_id, actor=actor)
    if actor.user_id is None or actor.user_id != request.reporter_user_id:
        raise Forbidden(T("only the resident who filed this report may confirm or reopen it"))
    if request.state not in {"resolved", "closed"}:
        raise Conflict(T("this report has not been resolved yet"), detail={"state": request.state})
    days = get_settings().participation_reopen_days
    since = request.resolved_at or request.closed_at or request.updated_at
    now = clock.now()
    if now > since + timedelta(days=days):
        raise Conflict(
            T("the {days} days to confirm or reopen this report have passed", days=days),
            detail={"resolved_at": since.isoformat()},
        )
    if satisfaction is not None and satisfaction not in range(1, 6):
        raise Invalid(T("satisfaction is a whole number from 1 to 5"), detail={"field": "satisfaction"})
    reason = (reason or "").strip()
    if fixed:
        request.confirmation = "confirmed"
        request.satisfaction = satisfaction
        if request.state == "resolved":
            request.state = "closed"
            request.closed_at = now
        _update(session, request, "confirm", T("the resident confirmed the fix"), actor=actor, staff=False)
    else:
        if not reason:
            raise Invalid(T("say why the problem is not fixed"), detail={"field": "reason"})
        request.confirmation = "reopened"
        request.satisfaction = satisfaction
        _reopen(session, request, now)
        _update(session, request, "reopen", reason[:_MAX_DESCRIPTION], actor=actor, staff=False)
        _notify_workers(session, request, T("report #{id} was reopened by the resident", id=request.id))
    record(
        session=session,
        actor=actor,
        action="participation.request.confirm",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
        detail={"fixed": fixed, "satisfaction": satisfaction},
    )
    return request


def _reopen(session: Session, request: Request, now: datetime) -> None:
    category = session.get(Category, request.category_id)
    assert category is not None
    request.state = "reopened"
    request.reopen_count += 1
    request.resolved_at = request.closed_at = None
    request.paused_at = None
    request.escalation_level = 0
    request.expected_at = sla.deadline(session, now, category.sla_amount, category.sla_unit)
    escalation.schedule(session, request, now)


# --- staff actions ----------------------------------------------------------------------------------


def _staff_of(session: Session, user_id: int, org_id: int | None) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.org_id != org_id:
        raise Invalid(
            T("user #{id} is not active staff of the organisation working this order", id=user_id),
            detail={"field": "assignee_user_id"},
        )
    return user


def act(
    *,
    session: Session,
    actor: Actor,
    request_id: int,
    action: str,
    note: str = "",
    public: bool = True,
    **values: Any,
) -> Request:
    """Move a work order: one of ``ACTIONS``. Refused (naming why) from a state it cannot start from."""
    if action not in _MOVES:
        raise Invalid(T("unknown action {action}", action=repr(action)), detail={"field": "action"})
    request = get_request(session=session, request_id=request_id, actor=actor)
    assigned_to_me = actor.user_id is not None and actor.user_id == request.assignee_user_id
    if action in _WORK:
        if not assigned_to_me:
            authorize(actor, "participation.work", org_id=request.org_id, what=f"order #{request.id}")
    else:
        authorize(actor, "participation.dispatch", org_id=request.org_id, what=f"order #{request.id}")
    starts, target = _MOVES[action]
    if request.state not in starts:
        raise Conflict(
            T("cannot {action} an order that is {state}", action=action, state=request.state),
            detail={"state": request.state, "action": action},
        )
    note = (note or "").strip()
    if len(note) > _MAX_DESCRIPTION:
        raise Invalid(T("at most {n} characters", n=_MAX_DESCRIPTION), detail={"field": "note"})
    if action in _NEEDS_NOTE and not note:
        raise Invalid(T("this action needs a note saying why"), detail={"field": "note"})
    now = clock.now()
    detail: dict[str, Any] = {"action": action}
    text = note
    if action == "assign":
        team_id, user_id = values.get("team_id"), values.get("assignee_user_id")
        if team_id is None and user_id is None:
            raise Invalid(T("assign to a team or a person"), detail={"field": "team_id"})
        if team_id is not None:
            team = session.get(Team, team_id)
            if team is None or team.org_id != request.org_id:
                raise Invalid(
                    T("team #{id} is not a team of the organisation working this order", id=team_id),
                    detail={"field": "team_id"},
                )
            request.team_id = team.id
        if user_id is not None:
            _staff_of(session, int(user_id), request.org_id)
            request.assignee_user_id = int(user_id)
        detail.update(team_id=request.team_id, assignee_user_id=request.assignee_user_id)
        text = note or T("assigned")
        public = False if not note else public
    elif action == "accept":
        if request.assignee_user_id is None and actor.user_id is not None and actor.org_id == request.org_id:
            request.assignee_user_id = actor.user_id
        text = note or T("accepted")
    elif action == "start":
        text = note or T("work started")
    elif action == "wait":
        reason = values.get("reason", "")
        if reason not in WAIT_REASONS:
            raise Invalid(
                T("say what the order waits for: {choices}", choices=", ".join(WAIT_REASONS)),
                detail={"field": "reason"},
            )
        request.wait_reason = reason
        request.paused_at = now
        request.next_escalation_at = None
        detail["reason"] = reason
        text = note or T("waiting: {reason}", reason=reason)
    elif action == "resume":
        category = session.get(Category, request.category_id)
        assert category is not None and request.paused_at is not None and request.expected_at is not None
        request.expected_at = sla.extend(
            session, request.expected_at, request.paused_at, now, category.sla_unit
        )
        detail["paused_from"] = request.paused_at.isoformat()
        request.paused_at = None
        request.wait_reason = ""
        text = note or T("work resumed")
    elif action == "resolve":
        open_children = session.scalar(
            select(func.count()).where(Request.parent_id == request.id, Request.state.not_in(CLOSED_STATES))
        )
        if open_children:
            raise Conflict(
                T("{n} department task(s) of this joint order are not done yet", n=open_children),
                detail={"open_children": open_children},
            )
        request.resolved_at = now
        # once late, an order stays late: a reopened order fixed in its new time is not on time
        on_time = request.expected_at is None or now <= request.expected_at
        request.within_sla = on_time and request.within_sla is not False
        request.paused_at = None
        text = note or T("resolved")
    elif action == "close":
        request.closed_at = now
        text = note or T("closed")
    elif action == "reopen":
        _reopen(session, request, now)
        text = note or T("reopened")
    elif action == "duplicate":
        original = session.get(Request, int(values.get("of_id") or 0))
        if original is None or original.id == request.id or original.parent_id is not None:
            raise Invalid(T("name the original report this one repeats"), detail={"field": "of_id"})
        if original.state in CLOSED_STATES:
            raise Conflict(T("the original report #{id} is already closed", id=original.id))
        request.duplicate_of_id = original.id
        _merge_followers(session, request, original)
        detail["of_id"] = original.id
        text = note or T("same problem as report #{id}", id=original.id)
        request.closed_at = now
    elif action == "reject":
        request.public_reason = note
        request.closed_at = now
    elif action in {"transfer", "not_ours"}:
        key = "org_id" if action == "transfer" else "responsible"
        org_id = values.get(key)
        if org_id is None:
            raise Invalid(T("name the organisation responsible"), detail={"field": key})
        org = accounts.get_org_or_raise(session=session, org_id=int(org_id))
        if org.id == request.org_id:
            raise Invalid(T("the order is already with this organisation"), detail={"field": key})
        team_id = values.get("team_id")
        if team_id is not None:
            team = session.get(Team, team_id)
            if team is None or team.org_id != org.id:
                raise Invalid(
                    T("team #{id} is not a team of that organisation", id=team_id),
                    detail={"field": "team_id"},
                )
        detail.update(from_org=request.org_id, to_org=org.id)
        request.org_id = org.id
        request.team_id = team_id
        request.assignee_user_id = None
        if team_id is not None:
            target = "assigned"
        if action == "not_ours":
            request.public_reason = T("not our responsibility: {org} is responsible", org=org.name_zh)
            text = f"{request.public_reason} — {note}"
    if target is not None:
        request.state = target
    if request.state in CLOSED_STATES or request.state == "waiting":
        request.next_escalation_at = None
    elif action in {"resume", "transfer", "not_ours", "assign", "accept", "start"}:
        escalation.schedule(session, request, now)
    if request.first_response_at is None:
        request.first_response_at = now
    _update(
        session,
        request,
        "transfer" if action in {"transfer", "not_ours"} else ("note" if action == "comment" else "state"),
        text,
        actor=actor,
        public=public,
        detail=detail,
    )
    if request.parent_id is not None and request.state in CLOSED_STATES:
        _child_done(session, request, actor, now)
    if action in {"transfer", "not_ours"}:
        _notify_workers(session, request, T("report #{id} was transferred to you", id=request.id))
    record(
        session=session,
        actor=actor,
        action=f"participation.request.{action}",
        object_type="participation_request",
        object_id=request.id,
        object_org_id=request.org_id,
        detail=detail,
    )
    return request


def available_actions(actor: Actor, request: Request) -> set[str]:
    """The actions ``request``'s state allows and ``actor`` may take (``act`` decides in the end)."""
    mine = actor.user_id is not None and actor.user_id == request.assignee_user_id
    work = mine or can(actor, "participation.work", org_id=request.org_id)
    dispatch = can(actor, "participation.dispatch", org_id=request.org_id)
    return {
        action
        for action, (starts, _target) in _MOVES.items()
        if request.state in starts and ((work and action in _WORK) or (dispatch and action not in _WORK))
    }


def bulk_act(
    *, session: Session, actor: Actor, request_ids: Sequence[int], action: str, note: str = "", **values: Any
) -> list[Request]:
    """The same action on several orders, all or nothing (the first refusal names the order)."""
    if not request_ids:
        raise Invalid(T("choose at least one order"), detail={"field": "ids"})
    if len(request_ids) > 500:
        raise Invalid(T("at most 500 orders at once"), detail={"field": "ids"})
    done = []
    for request_id in dict.fromkeys(request_ids):
        try:
            done.append(
                act(session=session, actor=actor, request_id=request_id, action=action, note=note, **values)
            )
        except (Invalid, Conflict, Forbidden, NotFound) as exc:
            exc.detail = {**(exc.detail or {}), "request_id": request_id}
            raise
    return done


def _merge_followers(session: Session, duplicate: Request, original: Request) -> None:
    followers = _followers(session, duplicate) - _followers(session, original)
    followers.discard(original.reporter_user_id or -1)
    for user_id in followers:
        session.add(Support(request_id=original.id, user_id=user_id, at=clock.now()))
    original.supporters += len(followers)


def split(
    *, session: Session, actor: Actor, request_id: int, parts: Sequence[tuple[int, int | None, str]]
) -> list[Request]:
    """Make a joint order: one internal child task per department; the parent stays the public face."""
    parent = get_request(session=session, request_id=request_id, actor=actor)
    authorize(actor, "participation.dispatch", org_id=parent.org_id, what=f"order #{parent.id}")
    if parent.parent_id is not None:
        raise Invalid(T("a department task cannot be split again"), detail={"field": "request_id"})
    if parent.state in CLOSED_STATES:
        raise Conflict(T("this order is already closed"), detail={"state": parent.state})
    if not parts:
        raise Invalid(T("name at least one department"), detail={"field": "parts"})
    now = clock.now()
    children = []
    for index, (org_id, team_id, task) in enumerate(parts):
        org = accounts.get_org_or_raise(session=session, org_id=org_id)
        if team_id is not None:
            team = session.get(Team, team_id)
            if team is None or team.org_id != org.id:
                raise Invalid(
                    T("team #{id} is not a team of that organisation", id=team_id),
                    detail={"field": f"parts[{index}].team_id"},
                )
        if not task.strip():
            raise Invalid(T("describe each department's task"), detail={"field": f"parts[{index}].task"})
        child = Request(
            category_id=parent.category_id,
            state="assigned" if team_id else "new",
            description=task.strip()[:_MAX_DESCRIPTION],
            answers={},
            lat=parent.lat,
            lon=parent.lon,
            address=parent.address,
            area_id=parent.area_id,
            zipcode=parent.zipcode,
            channel="staff",
            filed_by_user_id=actor.user_id,
            token=secrets.token_hex(16),
            org_id=org.id,
            team_id=team_id,
            requested_at=now,
            updated_at=now,
            expected_at=parent.expected_at,
            parent_id=parent.id,
        )
        session.add(child)
        session.flush()
        escalation.schedule(session, child, now)
        _update(session, child, "state", task.strip()[:_MAX_DESCRIPTION], actor=actor, public=False)
        _notify_workers(session, child, T("joint order #{id}: a task for you", id=parent.id))
        children.append(child)
    if parent.state in {"new", "assigned", "accepted", "reopened"}:
        parent.state = "in_progress"
    names = ", ".join(accounts.get_org_or_raise(session=session, org_id=o).name_zh for o, _t, _x in parts)
    _update(
        session,
        parent,
        "state",
        T("several departments are working on this: {names}", names=names),
        actor=actor,
    )
    record(
        session=session,
        actor=actor,
        action="participation.request.split",
        object_type="participation_request",
        object_id=parent.id,
        object_org_id=parent.org_id,
        detail={"children": [c.id for c in children]},
    )
    return children


def _child_done(session: Session, child: Request, actor: Actor | None, now: datetime) -> None:
    parent = session.get(Request, child.parent_id)
    if parent is None:
        return
    org = accounts.get_org_or_raise(session=session, org_id=child.org_id) if child.org_id else None
    _update(
        session, parent, "note", T("{org} finished its part", org=org.name_zh if org else "?"), actor=actor
    )
    left = session.scalar(
        select(func.count()).where(Request.parent_id == parent.id, Request.state.not_in(CLOSED_STATES))
    )
    if not left and parent.state not in CLOSED_STATES:
        parent.state = "resolved"
        parent.resolved_at = now
        parent.within_sla = parent.expected_at is None or now <= parent.expected_at
        parent.paused_at = None
        parent.next_escalation_at = None
        _update(session, parent, "state", T("every department has finished: resolved"), actor=None)


def link_suggestion(*, session: Session, actor: Actor, request_id: int, suggestion_id: int | None) -> Request:
    """Link a report to a suggestion, or unlink it with ``None`` (the suggestions module keeps the rules)."""
    from zhishe.participation import suggestions

    if suggestion_id is None:
        return suggestions.unlink_report(session=session, actor=actor, request_id=request_id)
    return suggestions.link_report(
        session=session, actor=actor, suggestion_id=suggestion_id, request_id=request_id
    )


# --- timeline and notifications ---------------------------------------------------------------------


def _update(
    session: Session,
    request: Request,
    kind: str,
    text: str,
    *,
    actor: Actor | None,
    public: bool = True,
    detail: dict[str, Any] | None = None,
    staff: bool = True,
    at: datetime | None = None,
    state: str | None = None,
) -> RequestUpdate:
    """Add an entry to the request's timeline (``state``: the state it records, if not the request's
    current one) and tell its followers."""
    now = at or clock.now()
    update = RequestUpdate(
        request_id=request.id,
        at=now,
        kind=kind,
        state=state or request.state,
        public=public and request.parent_id is None,
        text=text,
        actor_user_id=actor.user_id if actor else None,
        actor_org_id=actor.org_id if actor else None,
        detail={**(detail or {}), **({"message": stored(text)} if isinstance(text, Message) else {})},
    )
    session.add(update)
    session.flush()
    request.updated_at = now
    if update.public and kind == "state" and staff and actor is not None and actor.is_staff:
        request.status_notes = text
    if (
        update.public
        and staff
        and actor is not None
        and actor.is_staff
        and request.first_public_update_at is None
    ):
        request.first_public_update_at = now
    if update.public and kind in {"state", "note", "transfer"}:
        followers = _followers(session, request) - ({actor.user_id} if actor and actor.user_id else set())
        if followers:
            notifications.notify_users(
                session=session,
                user_ids=followers,
                kind="participation.update",
                message=T("update on your report #{id}: {text}", id=request.id, text=text[:120]),
                link=f"/participate/requests/{request.id}",
            )
    return update


def _notify_workers(session: Session, request: Request, message: str) -> None:
    link = f"/work/orders/{request.id}"
    if request.assignee_user_id is not None:
        notifications.notify_users(
            session=session,
            user_ids=[request.assignee_user_id],
            kind="participation.order",
            message=message,
            link=link,
        )
        return
    if request.team_id is not None:
        members = set(
            session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == request.team_id))
        )
        if members:
            notifications.notify_users(
                session=session, user_ids=members, kind="participation.order", message=message, link=link
            )
            return
    if request.org_id is not None:
        notifications.notify_org(
            session=session,
            org_id=request.org_id,
            kind="participation.order",
            message=message,
            link=link,
            roles=[Role.ADMIN, Role.DISPATCHER, Role.STEWARD],
        )


def close_unconfirmed(*, session: Session, now: datetime | None = None) -> int:
    """Close resolved orders whose reporter neither confirmed nor reopened them within the window."""
    now = now or clock.now()
    cutoff = now - timedelta(days=get_settings().participation_reopen_days)
    due = list(
        session.scalars(
            select(Request).where(Request.state == "resolved", Request.resolved_at < cutoff).limit(10_000)
        )
    )
    for request in due:
        request.state = "closed"
        request.closed_at = now
        _update(
            session, request, "state", T("closed: no reply from the resident within the window"), actor=None
        )
    if due:
        record(
            session=session,
            actor=None,
            action="participation.request.autoclose",
            object_type="participation_request",
            object_id=0,
            detail={"count": len(due)},
        )
    return len(due)


def residence_area_id(session: Session, user_id: int) -> int | None:
    """The area (building or unit) where resident ``user_id`` told the platform they live, if any."""
    from zhishe.participation.models import Residence

    home = session.get(Residence, user_id)
    return home.area_id if home is not None else None
