"""Residents' report pages (phone-first): the start page, filing a report step by step (category,
its questions, where, description and photos, with nearby open reports offered as "me too"), the
public status page with its timeline and the reporter's follow-up, "my reports", the call-centre
entry for staff filing on behalf of a caller, and the photos themselves.

Every page works without JavaScript; a little inline script adds "use my location" and a live
lookup of nearby reports. The rules live in ``service`` and ``photos``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from zhishe.core import clock
from zhishe.core.areas import service as areas
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor, OrgKind, can
from zhishe.core.config import get_settings
from zhishe.core.deps import IdPath, OptionalActor, SessionDep
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, ZhisheError
from zhishe.core.i18n import Message, T, localize, localize_stored
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.participation import photos, service
from zhishe.participation.models import Category, CategoryAttribute, Photo, RequestUpdate, Residence, Support
from zhishe.participation.models import Request as Report

__all__ = ["CALL_CHANNELS", "STATE_LABELS", "router"]

router = APIRouter(include_in_schema=False)

#: The public label of each internal state.
STATE_LABELS: dict[str, Message] = {
    "new": T("received"),
    "assigned": T("assigned to a team"),
    "accepted": T("accepted"),
    "in_progress": T("being worked on"),
    "waiting": T("waiting"),
    "resolved": T("resolved"),
    "closed": T("closed"),
    "reopened": T("reopened"),
    "duplicate": T("duplicate"),
    "rejected": T("declined"),
}
WAIT_LABELS: dict[str, Message] = {
    "parts": T("waiting for parts"),
    "third_party": T("waiting for a third party"),
    "weather": T("waiting for better weather"),
}
#: Channels a call-centre operator can record, with their labels.
CALL_CHANNELS: dict[str, Message] = {
    "phone": T("phone call"),
    "call_centre": T("call centre (12345)"),
    "wechat": T("WeChat"),
    "app": T("phone app"),
    "walk_in": T("walk-in"),
}
#: Organisation kinds whose dispatchers and admins may file on behalf of a caller.
_CALL_CENTRE_KINDS = {OrgKind.OPERATOR, OrgKind.DATA_BUREAU, OrgKind.DEPARTMENT}
#: Radius of the start page's list of open reports near home.
_NEAR_HOME_METRES = 300


# --- reads the pages need beyond the service --------------------------------------------------------


def _residence_area_id(session: Session, actor: Actor | None) -> int | None:
    if actor is None or actor.user_id is None:
        return None
    home = session.get(Residence, actor.user_id)
    return home.area_id if home else None


def _my_reports(session: Session, actor: Actor, limit: int = 200) -> tuple[list[Report], list[Report]]:
    """The actor's own reports and the ones they support, newest first."""
    if actor.user_id is None:
        return [], []
    own = session.scalars(
        select(Report)
        .where(Report.reporter_user_id == actor.user_id, Report.parent_id.is_(None))
        .order_by(Report.requested_at.desc(), Report.id.desc())
        .limit(limit)
    )
    supported = session.scalars(
        select(Report)
        .join(Support, Support.request_id == Report.id)
        .where(Support.user_id == actor.user_id)
        .order_by(Support.at.desc(), Report.id.desc())
        .limit(limit)
    )
    return list(own), list(supported)


def _supports(session: Session, actor: Actor | None, request_id: int) -> bool:
    if actor is None or actor.user_id is None:
        return False
    return session.get(Support, (request_id, actor.user_id)) is not None


def _update_of(session: Session, update_id: int) -> RequestUpdate | None:
    return session.get(RequestUpdate, update_id)


def _area(session: Session, area_id: int | None) -> Area | None:
    return session.get(Area, area_id) if area_id is not None else None


# --- helpers ---------------------------------------------------------------------------------------


@dataclass
class _Place:
    """A building of the address list with its units, for the location select."""

    building: Area
    units: list[Area] = field(default_factory=list)


def _places(session: Session, home_id: int | None) -> list[_Place]:
    """Buildings and units of the resident's community (every building when the home is unknown)."""
    buildings = areas.list_areas(session=session, level="building")
    units = areas.list_areas(session=session, level="unit")
    by_id = {a.id: a for a in (*buildings, *units)}
    home = by_id.get(home_id) if home_id is not None else None
    home_building = home
    if home is not None and home.level == "unit" and home.parent_id is not None:
        home_building = by_id.get(home.parent_id)
    if home_building is not None and home_building.parent_id is not None:
        buildings = [b for b in buildings if b.parent_id == home_building.parent_id]
    places = {b.id: _Place(b) for b in buildings[:500]}
    for unit in units:
        if unit.parent_id in places:
            places[unit.parent_id].units.append(unit)
    return list(places.values())


def _float(form: Mapping[str, Any], name: str, label: str) -> float | None:
    text = str(form.get(name) or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Invalid(
            T("{field} must be a number, not {value}", field=label, value=repr(text[:30])),
            detail={"field": name},
        ) from None


async def _uploads(form: FormData, name: str = "photo") -> list[bytes]:
    """The bytes of the files chosen in the form's ``name`` inputs (empty inputs skipped)."""
    limit = get_settings().participation_photo_bytes
    found: list[bytes] = []
    for item in form.getlist(name):
        if not isinstance(item, UploadFile):
            continue
        data = await item.read(limit + 1)  # one byte over is enough to refuse it with the limit named
        if data or item.filename:
            found.append(data)
    return found


def _answers(form: FormData) -> dict[str, Any]:
    """The attribute answers of a form: ``attribute[code]`` fields (several values for checkboxes)."""
    answers: dict[str, Any] = {}
    for key in dict.fromkeys(form.keys()):
        if key.startswith("attribute[") and key.endswith("]"):
            values = [str(v) for v in form.getlist(key) if isinstance(v, str)]
            answers[key[len("attribute[") : -1]] = values if len(values) != 1 else values[0]
    return answers


def _values(form: FormData) -> dict[str, Any]:
    """What the visitor typed, to show again with an error."""
    keep = ("category", "where", "lat", "long", "address_id", "address", "description")
    values: dict[str, Any] = {
        k: str(form.get(k) or "") for k in (*keep, "caller_name", "caller_phone", "channel")
    }
    values["answers"] = _answers(form)
    return values


def _where(values: Mapping[str, Any]) -> tuple[float | None, float | None, str, str]:
    """lat, long, address_id and address as chosen on the form (only the chosen way counts)."""
    where = values.get("where") or ""
    lat = _float(values, "lat", "lat") if where in {"", "position"} else None
    lon = _float(values, "long", "long") if where in {"", "position"} else None
    address_id = str(values.get("address_id") or "").strip() if where in {"", "building"} else ""
    address = str(values.get("address") or "").strip() if where in {"", "address"} else ""
    if where == "position" and (lat is None or lon is None):
        raise Invalid(
            T("type the position (lat and long) or use your phone's location"),
            detail={"field": "lat" if lat is None else "long"},
        )
    if where == "building" and not address_id:
        raise Invalid(T("choose the building"), detail={"field": "address_id"})
    if where == "address" and not address:
        raise Invalid(T("write the address"), detail={"field": "address"})
    return lat, lon, address_id, address


def _text_of(update: RequestUpdate) -> str:
    """A timeline entry's text in the reader's language."""
    return localize_stored((update.detail or {}).get("message"), update.text)


def _state_label(state: str) -> str:
    return localize(STATE_LABELS.get(state, T(state)))


def _may_file_for_callers(actor: Actor) -> bool:
    """Dispatchers and admins of the operator, the data bureau or a department."""
    return actor.org_kind in _CALL_CENTRE_KINDS and can(actor, "participation.dispatch", org_id=actor.org_id)


def _status_url(report: Report) -> str:
    return f"/participate/requests/{report.id}"


def _reopen_until(report: Report) -> datetime | None:
    since = report.resolved_at or report.closed_at
    if report.state not in {"resolved", "closed"} or since is None:
        return None
    return since + timedelta(days=get_settings().participation_reopen_days)


# --- the start page and my reports ----------------------------------------------------------------


def _near_home(session: Session, home_id: int | None) -> list[tuple[Report, float, Category]]:
    home = _area(session, home_id)
    if home is None or home.lat is None or home.lon is None:
        return []
    found: list[tuple[Report, float, Category]] = []
    for category in service.list_categories(session=session):
        for report, metres in service.nearby(
            session=session, category_code=category.code, lat=home.lat, lon=home.lon, metres=_NEAR_HOME_METRES
        ):
            found.append((report, metres, category))
    return sorted(found, key=lambda item: (item[1], item[0].id))[:20]


def _categories_by_id(session: Session) -> dict[int, Category]:
    return {c.id: c for c in service.list_categories(session=session, active_only=False)}


@router.get("/participate", response_class=HTMLResponse)
def start_page(request: Request, session: SessionDep, actor: OptionalActor) -> Response:
    """The residents' start page: report a problem, my reports, open reports near home."""
    own: list[Report] = []
    if actor is not None:
        own = _my_reports(session, actor, limit=5)[0]
    return render(
        request,
        "report_start.html",
        {
            "own": own,
            "near": _near_home(session, _residence_area_id(session, actor)),
            "categories": _categories_by_id(session),
            "state_label": _state_label,
            "overdue": service.is_overdue,
            "may_file_for_callers": actor is not None and _may_file_for_callers(actor),
        },
    )


@router.get("/participate/mine", response_class=HTMLResponse)
def mine_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The resident's reports and the ones they support, with their states."""
    own, supported = _my_reports(session, actor)
    return render(
        request,
        "report_mine.html",
        {
            "own": own,
            "supported": supported,
            "categories": _categories_by_id(session),
            "state_label": _state_label,
            "overdue": service.is_overdue,
        },
    )


# --- filing a report -------------------------------------------------------------------------------


def _groups(session: Session) -> list[tuple[str, list[Category]]]:
    groups: dict[str, list[Category]] = {}
    for category in service.list_categories(session=session):
        groups.setdefault(category.group, []).append(category)
    return list(groups.items())


def _form_context(
    session: Session,
    actor: Actor,
    category: Category,
    *,
    values: Mapping[str, Any] | None = None,
    error: ZhisheError | None = None,
    call_centre: bool = False,
) -> dict[str, Any]:
    home_id = _residence_area_id(session, actor)
    home = _area(session, home_id)
    values = dict(values or {})
    values.setdefault("answers", {})
    values.setdefault("where", "building" if home is not None else "position")
    values.setdefault("address_id", home.code if home is not None else "")
    settings = get_settings()
    return {
        "category": category,
        "attributes": service.attributes_of(session=session, category_id=category.id),
        "places": _places(session, home_id),
        "home": home,
        "v": values,
        "error": error,
        "error_message": localize(error.message) if error is not None else "",
        "error_field": str(error.detail.get("field", "")) if error is not None else "",
        "max_photos": settings.participation_max_photos,
        "photo_limit_mb": round(settings.participation_photo_bytes / 1_000_000, 1),
        "call_centre": call_centre,
        "channels": CALL_CHANNELS,
        "action": "/participate/call-centre" if call_centre else "/participate/report",
    }


@router.get("/participate/report/new", response_class=HTMLResponse)
def new_report_page(request: Request, session: SessionDep, actor: PageActor, category: str = "") -> Response:
    """Step 1: choose the category; step 2 (``?category=code``): the form for it."""
    if not category:
        return render(request, "report_categories.html", {"groups": _groups(session), "call_centre": False})
    chosen = service.get_category(session=session, code=category)
    return render(request, "report_form.html", _form_context(session, actor, chosen))


def _nearby_for(
    session: Session, category: Category, lat: float | None, lon: float | None, address_id: str
) -> list[tuple[Report, float]]:
    """Open reports near where the new one is (by position, or the chosen building's position)."""
    if (lat is None or lon is None) and address_id:
        try:
            area = areas.get_or_raise(session=session, code=address_id)
        except NotFound:
            return []
        lat, lon = area.lat, area.lon
    if lat is None or lon is None:
        return []
    return service.nearby(session=session, category_code=category.code, lat=lat, lon=lon)


async def _file(request: Request, session: Session, actor: Actor, *, call_centre: bool) -> Response:
    """Parse the form, offer nearby reports once (residents), file, and go to the status page."""
    form = await request.form()
    check_csrf(request, form)
    values = _values(form)
    code = values["category"]
    if not code:
        raise Invalid(T("choose a category"), detail={"field": "service_code"})
    category = service.get_category(session=session, code=code)
    try:
        lat, lon, address_id, address = _where(values)
        reporter = None
        channel = "web"
        if call_centre:
            channel = values["channel"] or "phone"
            if channel not in CALL_CHANNELS:
                raise Invalid(T("choose how the caller got in touch"), detail={"field": "channel"})
            reporter = service.Reporter(
                name=values["caller_name"].strip(), phone=values["caller_phone"].strip()
            )
        elif form.get("confirm") != "1":
            near = _nearby_for(session, category, lat, lon, address_id)
            if near:
                return render(
                    request,
                    "report_check.html",
                    {
                        "category": category,
                        "near": near,
                        "v": values,
                        "state_label": _state_label,
                        "max_photos": get_settings().participation_max_photos,
                    },
                )
        photo_bytes = await _uploads(form)
        report = service.submit(
            session=session,
            actor=actor,
            category_code=category.code,
            description=values["description"],
            lat=lat,
            lon=lon,
            address=address,
            address_id=address_id,
            answers=values["answers"],
            reporter=reporter,
            channel=channel,
            photos=photo_bytes,
        )
    except (Invalid, TooLarge, Conflict) as exc:
        session.rollback()
        context = _form_context(session, actor, category, values=values, error=exc, call_centre=call_centre)
        return render(request, "report_form.html", context, status=exc.status_code)
    session.commit()
    return redirect(_status_url(report) + ("?filed=1" if not call_centre else "?filed=caller"))


@router.post("/participate/report", response_class=HTMLResponse)
async def file_report(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A resident files a report (after seeing any open report of the kind nearby)."""
    return await _file(request, session, actor, call_centre=False)


@router.get("/participate/nearby.json")
def nearby_json(
    session: SessionDep, actor: OptionalActor, category: str = "", lat: str = "", long: str = ""
) -> JSONResponse:
    """Open reports of the category within its radius of a position, nearest first (public data)."""
    if not category:
        raise Invalid(T("choose a category"), detail={"parameter": "category"})
    params = {"lat": lat, "long": long}
    lat_ = _float(params, "lat", "lat")
    lon_ = _float(params, "long", "long")
    if lat_ is None or lon_ is None:
        raise Invalid(T("give both lat and long"), detail={"parameter": "lat" if lat_ is None else "long"})
    chosen = service.get_category(session=session, code=category)
    found = service.nearby(session=session, category_code=chosen.code, lat=lat_, lon=lon_)
    tz = get_settings().tz
    items = [
        {
            "id": report.id,
            "url": _status_url(report),
            "description": report.description[:160],
            "state": report.state,
            "state_label": _state_label(report.state),
            "status": service.open311_status(report.state),
            "distance_m": metres,
            "supporters": report.supporters,
            "requested_at": report.requested_at.astimezone(tz).isoformat(),
            "mine": actor is not None
            and actor.user_id is not None
            and report.reporter_user_id == actor.user_id,
        }
        for report, metres in found
    ]
    return JSONResponse({"category": chosen.code, "radius_m": chosen.nearby_metres, "items": items})


# --- the call-centre entry ---------------------------------------------------------------------------


def _call_centre_actor(actor: Actor) -> Actor:
    if not _may_file_for_callers(actor):
        raise Forbidden(
            T("only dispatchers of the operator, the data bureau or a department may file for a caller")
        )
    return actor


@router.get("/participate/call-centre", response_class=HTMLResponse)
def call_centre_page(request: Request, session: SessionDep, actor: PageActor, category: str = "") -> Response:
    """Staff file a report on behalf of a caller: the category, then the form with the caller."""
    _call_centre_actor(actor)
    if not category:
        return render(request, "report_categories.html", {"groups": _groups(session), "call_centre": True})
    chosen = service.get_category(session=session, code=category)
    context = _form_context(
        session, actor, chosen, values={"where": "address", "channel": "phone"}, call_centre=True
    )
    return render(request, "report_form.html", context)


@router.post("/participate/call-centre", response_class=HTMLResponse)
async def call_centre_file(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """File the caller's report, recording how they got in touch."""
    _call_centre_actor(actor)
    return await _file(request, session, actor, call_centre=True)


# --- the status page and follow-up -------------------------------------------------------------------


def _status_context(
    session: Session, actor: Actor | None, report: Report, *, error: ZhisheError | None = None
) -> dict[str, Any]:
    category = session.get(Category, report.category_id)
    assert category is not None
    attributes: Sequence[CategoryAttribute] = service.attributes_of(session=session, category_id=category.id)
    updates = service.public_updates(session=session, request_id=report.id)
    public_ids = {u.id for u in updates}
    all_photos = photos.list_photos(session=session, request_id=report.id)
    by_update: dict[int, list[Photo]] = {}
    for photo in all_photos:
        if photo.update_id in public_ids:
            by_update.setdefault(photo.update_id, []).append(photo)
    is_reporter = actor is not None and actor.user_id is not None and actor.user_id == report.reporter_user_id
    supports = _supports(session, actor, report.id)
    until = _reopen_until(report)
    answers = []
    for attribute in attributes:
        if not attribute.variable or attribute.code not in (report.answers or {}):
            continue
        raw = report.answers[attribute.code]
        names = {str(v.get("key")): str(v.get("name") or v.get("key")) for v in attribute.values or []}
        shown = [names.get(str(x), str(x)) for x in (raw if isinstance(raw, list) else [raw])]
        answers.append((attribute.description or attribute.code, ", ".join(shown)))
    return {
        "r": report,
        "category": category,
        "area": _area(session, report.area_id),
        "answers": answers,
        "status": service.open311_status(report.state),
        "state_label": _state_label,
        "wait_label": localize(WAIT_LABELS[report.wait_reason]) if report.wait_reason in WAIT_LABELS else "",
        "overdue": service.is_overdue(report),
        "photos": [p for p in all_photos if p.update_id is None],
        "updates": [(u, _text_of(u), by_update.get(u.id, [])) for u in updates],
        "is_reporter": is_reporter,
        "is_supporter": supports,
        "may_follow_up": is_reporter or supports,
        "may_support": (
            actor is not None
            and actor.user_id is not None
            and not is_reporter
            and not supports
            and report.state not in service.CLOSED_STATES
        ),
        "may_confirm": is_reporter
        and until is not None
        and clock.now() <= until
        and report.confirmation != "confirmed",
        "reopen_until": until,
        "max_photos": get_settings().participation_max_photos,
        "error": error,
        "error_message": localize(error.message) if error is not None else "",
        "error_field": str(error.detail.get("field", "")) if error is not None else "",
    }


@router.get("/participate/requests/{request_id}", response_class=HTMLResponse)
def status_page(request: Request, request_id: IdPath, session: SessionDep, actor: OptionalActor) -> Response:
    """The public status page of a report, with the follow-up forms for its reporter and supporters."""
    report = service.get_request(session=session, request_id=request_id, actor=actor)
    context = _status_context(session, actor, report)
    context["flash"] = request.query_params.get("filed") or request.query_params.get("done") or ""
    return render(request, "report_status.html", context)


async def _follow_up(
    request: Request, session: Session, actor: Actor, request_id: int, action: str
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        if action == "support":
            service.support(session=session, actor=actor, request_id=request_id)
        elif action == "info":
            service.add_info(
                session=session,
                actor=actor,
                request_id=request_id,
                text=str(form.get("text") or ""),
                photos=await _uploads(form),
            )
        else:
            fixed = form.get("fixed")
            if fixed not in {"1", "0"}:
                raise Invalid(T("say whether the problem is fixed"), detail={"field": "fixed"})
            raw = str(form.get("satisfaction") or "").strip()
            if raw and not raw.isdigit():
                raise Invalid(
                    T("satisfaction is a whole number from 1 to 5"), detail={"field": "satisfaction"}
                )
            service.confirm(
                session=session,
                actor=actor,
                request_id=request_id,
                fixed=fixed == "1",
                reason=str(form.get("reason") or ""),
                satisfaction=int(raw) if raw else None,
            )
    except (Invalid, TooLarge, Conflict) as exc:
        session.rollback()
        report = service.get_request(session=session, request_id=request_id, actor=actor)
        context = _status_context(session, actor, report, error=exc)
        context["flash"] = ""
        return render(request, "report_status.html", context, status=exc.status_code)
    session.commit()
    return redirect(f"/participate/requests/{request_id}?done={action}")


@router.post("/participate/requests/{request_id}/support", response_class=HTMLResponse)
async def support_report(
    request: Request, request_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """ "Me too": support the report and follow its updates."""
    return await _follow_up(request, session, actor, request_id, "support")


@router.post("/participate/requests/{request_id}/info", response_class=HTMLResponse)
async def add_information(
    request: Request, request_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """The reporter or a supporter adds information for the department working the order."""
    return await _follow_up(request, session, actor, request_id, "info")


@router.post("/participate/requests/{request_id}/confirm", response_class=HTMLResponse)
async def confirm_fix(
    request: Request, request_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """The reporter confirms the fix or reopens the report with a reason."""
    return await _follow_up(request, session, actor, request_id, "confirm")


# --- photos ----------------------------------------------------------------------------------------


@router.get("/participate/photos/{photo_id}")
def photo_bytes(request: Request, photo_id: IdPath, session: SessionDep, actor: OptionalActor) -> Response:
    """A stored photo: public with its report; a photo added as information only for staff of the
    order and the resident who added it."""
    photo = photos.get_photo(session=session, photo_id=photo_id)
    report = service.get_request(session=session, request_id=photo.request_id, actor=actor)
    public = True
    if photo.update_id is not None:
        update = _update_of(session, photo.update_id)
        public = update is not None and update.public
        if not public:
            own = actor is not None and update is not None and actor.user_id == update.actor_user_id
            seen = actor is not None and photo.update_id in {
                u.id for u in service.timeline(session=session, actor=actor, request_id=report.id)
            }
            if not (own or seen):
                raise NotFound(T("photo {id} does not exist", id=photo_id), detail={"photo_id": photo_id})
    headers = {  # X-Content-Type-Options: nosniff is added to every response by the middleware
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f'inline; filename="photo-{photo.id}.{photos.path_of(photo).suffix[1:]}"',
        "ETag": f'"{photo.sha256}"',
        "Cache-Control": "public, max-age=86400" if public else "private, no-store",
    }
    if public and request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    path = photos.path_of(photo)
    if not path.exists():
        raise NotFound(T("photo {id} does not exist", id=photo_id), detail={"photo_id": photo_id})
    return Response(path.read_bytes(), media_type=photo.content_type, headers=headers)
