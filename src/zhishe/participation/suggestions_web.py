"""Suggestions (建言献策) on the web: the JSON API under ``/api/v1/participation/suggestions`` and the
pages under ``/participate/suggestions`` (the list with filters and supporters bars, posting, and one
suggestion with its answer, milestones and linked reports). Both call ``suggestions``, which holds
every rule; reading is public, changing needs a login."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.deps import CurrentActor, IdPath, IdQuery, OptionalActor, SessionDep
from zhishe.core.errors import Conflict, Invalid
from zhishe.core.i18n import T, localize
from zhishe.core.web.links import link_next
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.participation import suggestions
from zhishe.participation.models import Suggestion

__all__ = [
    "AssignIn",
    "LinkIn",
    "LinkedReportRead",
    "MilestoneIn",
    "MilestoneRead",
    "RespondIn",
    "SuggestionCreate",
    "SuggestionDetail",
    "SuggestionPage",
    "SuggestionRead",
    "router",
]

router = APIRouter()
_API = "/api/v1/participation/suggestions"
_PAGES = "/participate/suggestions"
_ID = Field(ge=1, le=2**31 - 1)


# --- shapes -----------------------------------------------------------------------------------------


class SuggestionCreate(BaseModel):
    """A new suggestion."""

    domain: str = Field(max_length=24, description="transport, environment, safety, services, health, …")
    title: str = Field(max_length=1000)
    body: str = Field(max_length=50_000)


class AssignIn(BaseModel):
    """The department made responsible for answering."""

    org_id: int = _ID


class RespondIn(BaseModel):
    """The department's official answer."""

    decision: str = Field(max_length=16, description="accepted (text: the plan) or declined (text: reasons)")
    text: str = Field(max_length=50_000)


class MilestoneIn(BaseModel):
    """A step of the implementation."""

    percent: int = Field(description="0..100, never less than the progress already reported")
    text: str = Field(max_length=50_000)


class LinkIn(BaseModel):
    """A report to link to the suggestion."""

    request_id: int = _ID


class MilestoneRead(BaseModel):
    """A public milestone."""

    percent: int
    text: str
    at: str


class LinkedReportRead(BaseModel):
    """What the public sees of a linked report."""

    id: int
    service_code: str
    service_name: str
    status: str
    state: str
    requested_at: str
    address: str
    description: str
    url: str


class SuggestionRead(BaseModel):
    """A suggestion as the public sees it (the author only by initials)."""

    id: int
    domain: str
    domain_label: str
    title: str
    body: str
    author: str
    state: str
    state_label: str
    supporters: int
    threshold: int
    org_id: int | None
    org_name: str | None
    threshold_reached_at: str | None
    response_due_at: str | None
    overdue: bool
    response: str
    responded_at: str | None
    on_time: bool | None
    progress: int
    reports_count: int
    created_at: str
    updated_at: str
    url: str


class SuggestionDetail(SuggestionRead):
    """One suggestion with its milestones, linked reports and what the caller may do."""

    milestones: list[MilestoneRead]
    reports: list[LinkedReportRead]
    supported: bool
    may: list[str]


class SuggestionPage(BaseModel):
    """One page of suggestions and the token of the next."""

    items: list[SuggestionRead]
    next: str | None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(get_settings().tz).isoformat() if moment else None


def _read(
    s: Suggestion, *, author: str, org_name: str | None, reports: int, threshold: int
) -> dict[str, Any]:
    language = current_language.get()
    return {
        "id": s.id,
        "domain": s.domain,
        "domain_label": suggestions.domain_label(s.domain, language),
        "title": s.title,
        "body": s.body,
        "author": author,
        "state": s.state,
        "state_label": suggestions.state_label(s.state, language),
        "supporters": s.supporters,
        "threshold": threshold,
        "org_id": s.org_id,
        "org_name": org_name,
        "threshold_reached_at": _iso(s.threshold_reached_at),
        "response_due_at": _iso(s.response_due_at),
        "overdue": suggestions.is_overdue(s),
        "response": s.response,
        "responded_at": _iso(s.responded_at),
        "on_time": suggestions.on_time(s),
        "progress": s.progress,
        "reports_count": reports,
        "created_at": _iso(s.created_at),
        "updated_at": _iso(s.updated_at),
        "url": f"{_PAGES}/{s.id}",
    }


def _detail(session: Session, actor: Actor | None, suggestion_id: int) -> dict[str, Any]:
    language = current_language.get()
    v = suggestions.view(session=session, suggestion_id=suggestion_id, actor=actor, language=language)
    data = _read(
        v.suggestion,
        author=v.author,
        org_name=v.org_name or None,
        reports=len(v.reports),
        threshold=v.threshold,
    )
    data["milestones"] = [{"percent": m.percent, "text": m.text, "at": _iso(m.at)} for m in v.milestones]
    data["reports"] = [
        {
            "id": r.id,
            "service_code": r.service_code,
            "service_name": r.service_name(language),
            "status": r.status,
            "state": r.state,
            "requested_at": _iso(r.requested_at),
            "address": r.address,
            "description": r.description,
            "url": f"/participate/requests/{r.id}",
        }
        for r in v.reports
    ]
    data["supported"] = v.supported
    data["may"] = sorted(v.may)
    return data


# --- JSON API -----------------------------------------------------------------------------------------


@router.get(_API, response_model=SuggestionPage, tags=["participation"])
def api_list(
    session: SessionDep,
    response: Response,
    domain: str | None = None,
    state: str | None = None,
    org_id: IdQuery = None,
    unassigned: bool = False,
    sort: str = "newest",
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Suggestions (public), newest first or by ``sort=supporters``; filter by ``domain``, ``state``,
    responsible ``org_id`` or ``unassigned``. Pages by keyset (``next`` and a ``Link`` header)."""
    page = suggestions.list_suggestions(
        session=session,
        domain=domain,
        state=state,
        org_id=org_id,
        unassigned=unassigned,
        sort=sort,
        after=after,
        limit=limit,
    )
    link_next(
        response,
        page.next,
        {
            "domain": domain,
            "state": state,
            "org_id": org_id,
            "unassigned": unassigned or None,
            "sort": sort,
            "limit": limit,
        },
    )
    authors = suggestions.authors_of(session=session, suggestions=page.items)
    names = suggestions.org_names(
        session=session, org_ids=[s.org_id for s in page.items], language=current_language.get()
    )
    counts = suggestions.report_counts(session=session, suggestion_ids=[s.id for s in page.items])
    threshold = get_settings().suggestion_threshold
    return {
        "items": [
            _read(
                s,
                author=authors[s.id],
                org_name=names.get(s.org_id) if s.org_id is not None else None,
                reports=counts.get(s.id, 0),
                threshold=threshold,
            )
            for s in page.items
        ],
        "next": page.next,
    }


@router.post(_API, status_code=201, response_model=SuggestionDetail, tags=["participation"])
def api_create(body: SuggestionCreate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Post a suggestion (residents)."""
    created = suggestions.create(
        session=session, actor=actor, domain=body.domain, title=body.title, body=body.body
    )
    return _detail(session, actor, created.id)


@router.get(_API + "/{suggestion_id}", response_model=SuggestionDetail, tags=["participation"])
def api_get(suggestion_id: IdPath, session: SessionDep, actor: OptionalActor) -> dict[str, Any]:
    """One suggestion with its milestones and linked reports (public)."""
    return _detail(session, actor, suggestion_id)


@router.post(_API + "/{suggestion_id}/support", response_model=SuggestionDetail, tags=["participation"])
def api_support(suggestion_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Support a suggestion (residents; idempotent)."""
    suggestions.support(session=session, actor=actor, suggestion_id=suggestion_id)
    return _detail(session, actor, suggestion_id)


@router.delete(_API + "/{suggestion_id}/support", response_model=SuggestionDetail, tags=["participation"])
def api_withdraw(suggestion_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Withdraw one's support while the suggestion is open (idempotent)."""
    suggestions.withdraw_support(session=session, actor=actor, suggestion_id=suggestion_id)
    return _detail(session, actor, suggestion_id)


@router.post(_API + "/{suggestion_id}/assign", response_model=SuggestionDetail, tags=["participation"])
def api_assign(
    suggestion_id: IdPath, body: AssignIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Make a department responsible for answering (data bureau or operator staff)."""
    suggestions.assign(session=session, actor=actor, suggestion_id=suggestion_id, org_id=body.org_id)
    return _detail(session, actor, suggestion_id)


@router.post(_API + "/{suggestion_id}/respond", response_model=SuggestionDetail, tags=["participation"])
def api_respond(
    suggestion_id: IdPath, body: RespondIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """The responsible department's answer: ``accepted`` with the plan, or ``declined`` with reasons."""
    suggestions.respond(
        session=session, actor=actor, suggestion_id=suggestion_id, decision=body.decision, text=body.text
    )
    return _detail(session, actor, suggestion_id)


@router.post(
    _API + "/{suggestion_id}/milestones",
    status_code=201,
    response_model=SuggestionDetail,
    tags=["participation"],
)
def api_milestone(
    suggestion_id: IdPath, body: MilestoneIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Report implementation progress of an accepted suggestion; 100 makes it implemented."""
    suggestions.add_milestone(
        session=session, actor=actor, suggestion_id=suggestion_id, percent=body.percent, text=body.text
    )
    return _detail(session, actor, suggestion_id)


@router.post(
    _API + "/{suggestion_id}/links", status_code=201, response_model=SuggestionDetail, tags=["participation"]
)
def api_link(suggestion_id: IdPath, body: LinkIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Link a report to the suggestion (staff of the report's department or of the data bureau)."""
    suggestions.link_report(
        session=session, actor=actor, suggestion_id=suggestion_id, request_id=body.request_id
    )
    return _detail(session, actor, suggestion_id)


@router.delete(
    _API + "/{suggestion_id}/links/{request_id}", response_model=SuggestionDetail, tags=["participation"]
)
def api_unlink(
    suggestion_id: IdPath, request_id: IdPath, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Undo a report's link to the suggestion."""
    suggestions.unlink_report(
        session=session, actor=actor, request_id=request_id, suggestion_id=suggestion_id
    )
    return _detail(session, actor, suggestion_id)


# --- pages --------------------------------------------------------------------------------------------


def _labels() -> dict[str, Any]:
    language = current_language.get()
    return {
        "domains": [(code, suggestions.domain_label(code, language)) for code in suggestions.DOMAINS],
        "states": [(code, suggestions.state_label(code, language)) for code in suggestions.STATES],
        "domain_label": lambda code: suggestions.domain_label(code, language),
        "state_label": lambda code: suggestions.state_label(code, language),
        "due_day": suggestions.due_day,
        "is_overdue": suggestions.is_overdue,
    }


@router.get(_PAGES, response_class=HTMLResponse, include_in_schema=False)
def list_page(
    request: Request,
    session: SessionDep,
    actor: OptionalActor,
    domain: str = "",
    state: str = "",
    sort: str = "newest",
    after: str = "",
) -> Response:
    """The suggestions, with filters and each one's supporters against the threshold."""
    page = suggestions.list_suggestions(
        session=session, domain=domain or None, state=state or None, sort=sort, after=after or None
    )
    return render(
        request,
        "suggestion_list.html",
        {
            "page": page,
            "authors": suggestions.authors_of(session=session, suggestions=page.items),
            "counts": suggestions.report_counts(session=session, suggestion_ids=[s.id for s in page.items]),
            "threshold": get_settings().suggestion_threshold,
            "response_days": get_settings().suggestion_response_days,
            "domain": domain,
            "state": state,
            "sort": sort,
            "may_post": actor is not None and suggestions.may_post(actor=actor),
            **_labels(),
        },
    )


@router.get(_PAGES + "/new", response_class=HTMLResponse, include_in_schema=False)
def new_page(request: Request, actor: PageActor) -> Response:
    """The form to post a suggestion (residents)."""
    suggestions.ensure_may_post(actor=actor)
    return render(
        request,
        "suggestion_new.html",
        {"error": None, "field": None, "values": {"domain": "", "title": "", "body": ""}, **_labels()},
    )


@router.post(_PAGES + "/new", response_class=HTMLResponse, include_in_schema=False)
async def new_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Post the suggestion, or show the form again with what was wrong."""
    form = await request.form()
    check_csrf(request, form)
    values = {k: str(form.get(k) or "") for k in ("domain", "title", "body")}
    try:
        created = suggestions.create(session=session, actor=actor, **values)
    except Invalid as exc:
        session.rollback()
        return render(
            request,
            "suggestion_new.html",
            {"error": localize(exc.message), "field": exc.detail.get("field"), "values": values, **_labels()},
            status=exc.status_code,
        )
    return redirect(f"{_PAGES}/{created.id}")


def _detail_page(
    request: Request,
    session: Session,
    actor: Actor | None,
    suggestion_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    language = current_language.get()
    v = suggestions.view(session=session, suggestion_id=suggestion_id, actor=actor, language=language)
    orgs = suggestions.responsible_orgs(session=session) if "assign" in v.may else []
    return render(
        request,
        "suggestion_detail.html",
        {
            "v": v,
            "s": v.suggestion,
            "error": error,
            "orgs": orgs,
            "response_days": get_settings().suggestion_response_days,
            **_labels(),
        },
        status=status,
    )


@router.get(_PAGES + "/{suggestion_id}", response_class=HTMLResponse, include_in_schema=False)
def detail_page(
    request: Request, suggestion_id: IdPath, session: SessionDep, actor: OptionalActor
) -> Response:
    """One suggestion: state, deadline, answer, milestones and linked reports, with the forms the
    visitor may use."""
    return _detail_page(request, session, actor, suggestion_id)


def _number(value: str, field: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise Invalid(T("{field} must be a whole number", field=field), detail={"field": field})
    return int(text)


@router.post(_PAGES + "/{suggestion_id}/{action}", response_class=HTMLResponse, include_in_schema=False)
async def detail_post(
    request: Request, suggestion_id: IdPath, action: str, session: SessionDep, actor: PageActor
) -> Response:
    """The forms of a suggestion's page: support, assign, respond, milestones, links."""
    form = await request.form()
    check_csrf(request, form)

    def field(name: str) -> str:
        return str(form.get(name) or "")

    try:
        if action == "support":
            if field("do") == "withdraw":
                suggestions.withdraw_support(session=session, actor=actor, suggestion_id=suggestion_id)
            else:
                suggestions.support(session=session, actor=actor, suggestion_id=suggestion_id)
        elif action == "assign":
            suggestions.assign(
                session=session,
                actor=actor,
                suggestion_id=suggestion_id,
                org_id=_number(field("org_id"), "org_id"),
            )
        elif action == "respond":
            suggestions.respond(
                session=session,
                actor=actor,
                suggestion_id=suggestion_id,
                decision=field("decision"),
                text=field("text"),
            )
        elif action == "milestones":
            suggestions.add_milestone(
                session=session,
                actor=actor,
                suggestion_id=suggestion_id,
                percent=_number(field("percent"), "percent"),
                text=field("text"),
            )
        elif action == "links":
            request_id = _number(field("request_id"), "request_id")
            if field("do") == "unlink":
                suggestions.unlink_report(
                    session=session, actor=actor, request_id=request_id, suggestion_id=suggestion_id
                )
            else:
                suggestions.link_report(
                    session=session, actor=actor, suggestion_id=suggestion_id, request_id=request_id
                )
        else:
            raise Invalid(T("unknown action"), detail={"action": action})
    except (Invalid, Conflict) as exc:
        session.rollback()
        return _detail_page(
            request, session, actor, suggestion_id, error=localize(exc.message), status=exc.status_code
        )
    return redirect(f"{_PAGES}/{suggestion_id}")
