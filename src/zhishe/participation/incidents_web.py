"""Emergency incidents on the web: the JSON API under ``/api/v1/participation/incidents``, the staff
pages under ``/incidents`` (the list with proposals of clusters and the declare form; one incident with
its roles, tasks, timeline, notices, state and review) and the public notice pages under
``/participate/incidents``. Every rule lives in ``incidents``; these routes parse, call it and show."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from zhishe.core import clock
from zhishe.core.areas import service as areas
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.db import MAX_ID
from zhishe.core.deps import CurrentActor, IdPath, OptionalActor, SessionDep
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T, gettext, localize, localize_stored
from zhishe.core.web.links import link_next
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.participation import incidents
from zhishe.participation.models import (
    Incident,
    IncidentEntry,
    IncidentNotice,
    IncidentProposal,
    IncidentRole,
    IncidentTask,
)

__all__ = [
    "DeclareIn",
    "DepartmentIn",
    "EntryIn",
    "EntryRead",
    "IncidentDetail",
    "IncidentPage",
    "IncidentRead",
    "NoticeIn",
    "NoticeRead",
    "ProposalRead",
    "PublicIncidentRead",
    "RoleIn",
    "RoleRead",
    "SeverityIn",
    "StateIn",
    "TaskIn",
    "TaskRead",
    "label",
    "router",
]

router = APIRouter()
_API = "/api/v1/participation/incidents"
_TAGS: list[str | Enum] = ["participation: incidents"]
_Id = Annotated[int, Field(ge=1, le=MAX_ID)]

#: Words for the vocabulary codes, in the reader's language.
_LABELS: dict[str, str] = {
    "flood": T("Flood"),
    "fire": T("Fire"),
    "gas_leak": T("Gas leak"),
    "outbreak": T("Disease outbreak"),
    "power_outage": T("Power outage"),
    "water_outage": T("Water outage"),
    "public_safety": T("Public safety"),
    "other": T("Other emergency"),
    "commander": T("Commander"),
    "liaison": T("Liaison"),
    "scribe": T("Scribe"),
    "participant": T("Participant"),
    "observer": T("Observer"),
    "active": T("Responding"),
    "stable": T("Stable"),
    "closed": T("Closed"),
    "manual": T("Declared by staff"),
    "cluster": T("From a cluster of reports"),
    "event": T("From an alert"),
    "proposed": T("Proposed"),
    "declared": T("Declared"),
    "dismissed": T("Dismissed"),
}
_SEVERITIES: dict[int, str] = {
    1: T("Level IV (general)"),
    2: T("Level III (large)"),
    3: T("Level II (major)"),
    4: T("Level I (extraordinary)"),
}


def label(code: str | int) -> str:
    """A kind, role, state, source or severity in the reader's language."""
    if isinstance(code, int):
        return localize(_SEVERITIES.get(code, str(code)))
    return localize(_LABELS.get(code, code))


def _name(thing: Any) -> str:
    """An organisation's, area's or category's name in the reader's language."""
    if thing is None:
        return ""
    english = current_language.get() == "en"
    return str((thing.name_en if english else thing.name_zh) or thing.name_zh)


def _person(user: Any) -> str:
    return str(user.display_name or user.username) if user is not None else ""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(get_settings().tz).isoformat() if value is not None else None


# --- shapes -------------------------------------------------------------------------------------------


class DeclareIn(BaseModel):
    """A new incident (``proposal_id`` declares it from a proposed cluster of reports)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=24, description=", ".join(incidents.KINDS))
    severity: int = Field(description="1 (general, level IV) to 4 (extraordinary, level I)")
    area_id: _Id | None = None
    area_code: str | None = Field(None, max_length=64, description="the area's code, instead of area_id")
    title: str = Field(max_length=1000)
    description: str = Field("", max_length=50_000)
    proposal_id: _Id | None = None
    departments: list[_Id] = Field(
        default_factory=list, max_length=50, description="organisations to bring in"
    )


class DepartmentIn(BaseModel):
    """An organisation brought into the incident, with its open places."""

    model_config = ConfigDict(extra="forbid")

    org_id: _Id
    roles: list[str] = Field(default_factory=lambda: list(incidents.DEPARTMENT_ROLES), max_length=20)


class RoleIn(BaseModel):
    """A person named to a role by their own organisation."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=16, description=", ".join(incidents.ROLES))
    org_id: _Id
    user_id: _Id


class TaskIn(BaseModel):
    """A task with an owner and a due time."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=1000)
    org_id: _Id | None = None
    owner_user_id: _Id | None = None
    due_at: AwareDatetime | None = None


class DoneIn(BaseModel):
    """An optional note when a task is done."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=50_000)


class EntryIn(BaseModel):
    """A line for the timeline."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=50_000)


class NoticeIn(BaseModel):
    """A public notice."""

    model_config = ConfigDict(extra="forbid")

    situation: str = Field(max_length=50_000)
    instructions: str = Field("", max_length=50_000)


class StateIn(BaseModel):
    """A change of state (active, stable, closed)."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=16)
    note: str = Field("", max_length=50_000)


class SeverityIn(BaseModel):
    """A change of severity."""

    model_config = ConfigDict(extra="forbid")

    severity: int
    note: str = Field("", max_length=50_000)


class DismissIn(BaseModel):
    """Why a proposal is turned down."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=50_000)


class IncidentRead(BaseModel):
    """An incident as its members see it."""

    id: int
    kind: str
    severity: int
    area_id: int | None
    title: str
    description: str
    state: str
    org_id: int | None
    declared_by_user_id: int | None
    declared_at: str
    source: str
    source_detail: dict[str, Any]
    first_response_at: str | None
    roles_complete_at: str | None
    closed_at: str | None
    url: str


class RoleRead(BaseModel):
    """A place in the incident and who fills it (nobody yet: ``user_id`` is null)."""

    id: int
    role: str
    org_id: int
    user_id: int | None
    username: str | None
    assigned_at: str | None


class TaskRead(BaseModel):
    """A task."""

    id: int
    title: str
    org_id: int | None
    owner_user_id: int | None
    due_at: str | None
    reminded_at: str | None
    done_at: str | None
    created_at: str
    late: bool
    overdue: bool


class EntryRead(BaseModel):
    """A line of the timeline."""

    id: int
    at: str
    kind: str
    text: str
    actor_user_id: int | None
    detail: dict[str, Any]


class NoticeRead(BaseModel):
    """A public notice, with how many residents were told."""

    id: int
    at: str
    situation: str
    instructions: str
    author_user_id: int | None
    notified: int


class IncidentDetail(IncidentRead):
    """An incident with its area, roles, tasks, notices and what the caller may do."""

    area_code: str | None
    roles: list[RoleRead]
    tasks: list[TaskRead]
    notices: list[NoticeRead]
    may: list[str]


class IncidentPage(BaseModel):
    """One page of incidents, newest first."""

    items: list[IncidentRead]
    next: str | None


class PublicNoticeRead(BaseModel):
    """A notice as residents see it."""

    at: str
    situation: str
    instructions: str


class PublicIncidentRead(BaseModel):
    """What the public sees of an incident."""

    id: int
    kind: str
    kind_label: str
    severity: int
    severity_label: str
    state: str
    area_code: str | None
    area_name: str | None
    declared_at: str
    closed_at: str | None
    notices: list[PublicNoticeRead]
    url: str


class ProposalRead(BaseModel):
    """A cluster of reports proposed as an incident."""

    id: int
    category_id: int
    category_code: str | None
    area_id: int | None
    area_code: str | None
    count: int
    window_start: str
    window_end: str
    request_ids: list[int]
    state: str
    incident_id: int | None
    created_at: str


def _incident(row: Incident) -> IncidentRead:
    return IncidentRead(
        id=row.id,
        kind=row.kind,
        severity=row.severity,
        area_id=row.area_id,
        title=row.title,
        description=row.description,
        state=row.state,
        org_id=row.org_id,
        declared_by_user_id=row.declared_by_user_id,
        declared_at=_iso(row.declared_at) or "",
        source=row.source,
        source_detail=row.source_detail or {},
        first_response_at=_iso(row.first_response_at),
        roles_complete_at=_iso(row.roles_complete_at),
        closed_at=_iso(row.closed_at),
        url=f"/incidents/{row.id}",
    )


def _role(row: IncidentRole, people: dict[int, Any]) -> RoleRead:
    user = people.get(row.user_id) if row.user_id is not None else None
    return RoleRead(
        id=row.id,
        role=row.role,
        org_id=row.org_id,
        user_id=row.user_id,
        username=user.username if user is not None else None,
        assigned_at=_iso(row.assigned_at),
    )


def _task(row: IncidentTask, closed_at: datetime | None, now: datetime) -> TaskRead:
    return TaskRead(
        id=row.id,
        title=row.title,
        org_id=row.org_id,
        owner_user_id=row.owner_user_id,
        due_at=_iso(row.due_at),
        reminded_at=_iso(row.reminded_at),
        done_at=_iso(row.done_at),
        created_at=_iso(row.created_at) or "",
        late=incidents.is_late(row, closed_at),
        overdue=row.done_at is None and row.due_at is not None and row.due_at < now,
    )


def _entry(row: IncidentEntry) -> EntryRead:
    detail = {k: v for k, v in (row.detail or {}).items() if k != "message"}
    return EntryRead(
        id=row.id,
        at=_iso(row.at) or "",
        kind=row.kind,
        text=entry_text(row),
        actor_user_id=row.actor_user_id,
        detail=detail,
    )


def entry_text(row: IncidentEntry) -> str:
    """A timeline line in the reader's language."""
    return localize_stored((row.detail or {}).get("message"), row.text)


def _notice(row: IncidentNotice) -> NoticeRead:
    return NoticeRead(
        id=row.id,
        at=_iso(row.at) or "",
        situation=row.situation,
        instructions=row.instructions,
        author_user_id=row.author_user_id,
        notified=row.notified,
    )


def _may(access: incidents.Access) -> list[str]:
    may = [name for name in ("command", "log", "notice") if getattr(access, name)]
    return may + (["name"] if access.name_for else [])


def _detail(view: incidents.IncidentView, now: datetime) -> IncidentDetail:
    base = _incident(view.incident).model_dump()
    return IncidentDetail(
        **base,
        area_code=view.area.code if view.area is not None else None,
        roles=[_role(r, view.people) for r in view.roles],
        tasks=[_task(t, view.incident.closed_at, now) for t in view.tasks],
        notices=[_notice(n) for n in view.notices],
        may=_may(view.access),
    )


def _public(view: incidents.PublicIncident) -> PublicIncidentRead:
    return PublicIncidentRead(
        id=view.id,
        kind=view.kind,
        kind_label=label(view.kind),
        severity=view.severity,
        severity_label=label(view.severity),
        state=view.state,
        area_code=view.area.code if view.area is not None else None,
        area_name=_name(view.area) if view.area is not None else None,
        declared_at=_iso(view.declared_at) or "",
        closed_at=_iso(view.closed_at),
        notices=[
            PublicNoticeRead(at=_iso(n.at) or "", situation=n.situation, instructions=n.instructions)
            for n in view.notices
        ],
        url=f"/participate/incidents/{view.id}",
    )


def _proposals(session: Session, rows: list[IncidentProposal]) -> list[ProposalRead]:
    labels = incidents.proposal_labels(session=session, proposals=rows)
    out = []
    for p in rows:
        category, area = labels[p.id]
        out.append(
            ProposalRead(
                id=p.id,
                category_id=p.category_id,
                category_code=category.code if category is not None else None,
                area_id=p.area_id,
                area_code=area.code if area is not None else None,
                count=p.count,
                window_start=_iso(p.window_start) or "",
                window_end=_iso(p.window_end) or "",
                request_ids=list(p.request_ids),
                state=p.state,
                incident_id=p.incident_id,
                created_at=_iso(p.created_at) or "",
            )
        )
    return out


def _area_id(session: Session, area_id: int | None, area_code: str | None) -> int | None:
    if area_id is not None or not area_code:
        return area_id
    try:
        return areas.get_or_raise(session=session, code=area_code).id
    except NotFound:
        raise Invalid(
            T("no area has the code {code}", code=area_code), detail={"field": "area_code"}
        ) from None


# --- JSON API ---------------------------------------------------------------------------------------------


@router.get(_API, response_model=IncidentPage, tags=_TAGS)
def api_list(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    state: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> IncidentPage:
    """Incidents the caller may see, newest first (keyset pages; ``Link: rel="next"``)."""
    page = incidents.list_incidents(session=session, actor=actor, state=state, after=after, limit=limit)
    link_next(response, page.next, {"state": state, "limit": limit})
    return IncidentPage(items=[_incident(i) for i in page.items], next=page.next)


@router.post(_API, response_model=IncidentRead, status_code=201, tags=_TAGS)
def api_declare(body: DeclareIn, session: SessionDep, actor: CurrentActor) -> IncidentRead:
    """Declare an incident (the operator's or the data bureau's dispatchers and administrators)."""
    incident = incidents.declare(
        session=session,
        actor=actor,
        kind=body.kind,
        severity=body.severity,
        area_id=_area_id(session, body.area_id, body.area_code),
        title=body.title,
        description=body.description,
        proposal_id=body.proposal_id,
        departments=body.departments,
    )
    return _incident(incident)


@router.get(f"{_API}/public", response_model=list[PublicIncidentRead], tags=_TAGS)
def api_public_list(session: SessionDep) -> list[PublicIncidentRead]:
    """Incidents going on that have public notices (no login)."""
    return [_public(v) for v in incidents.public_incidents(session=session)]


@router.get(f"{_API}/public/{{incident_id}}", response_model=PublicIncidentRead, tags=_TAGS)
def api_public(incident_id: IdPath, session: SessionDep) -> PublicIncidentRead:
    """One incident's public notices (no login)."""
    return _public(incidents.public_view(session=session, incident_id=incident_id))


@router.get(f"{_API}/proposals", response_model=list[ProposalRead], tags=_TAGS)
def api_proposals(
    session: SessionDep,
    actor: CurrentActor,
    state: Annotated[str | None, Query(max_length=16)] = "proposed",
) -> list[ProposalRead]:
    """Clusters of reports proposed as incidents (``state``: proposed, declared or dismissed)."""
    return _proposals(session, incidents.list_proposals(session=session, actor=actor, state=state or None))


@router.post(f"{_API}/proposals/detect", response_model=list[ProposalRead], tags=_TAGS)
def api_detect(session: SessionDep, actor: CurrentActor) -> list[ProposalRead]:
    """Look for clusters now; returns the new proposals."""
    return _proposals(session, incidents.detect_now(session=session, actor=actor))


@router.post(f"{_API}/proposals/{{proposal_id}}/dismiss", response_model=ProposalRead, tags=_TAGS)
def api_dismiss(
    proposal_id: IdPath, body: DismissIn, session: SessionDep, actor: CurrentActor
) -> ProposalRead:
    """Turn a proposal down."""
    proposal = incidents.dismiss_proposal(
        session=session, actor=actor, proposal_id=proposal_id, reason=body.reason
    )
    return _proposals(session, [proposal])[0]


@router.get(f"{_API}/{{incident_id}}", response_model=IncidentDetail, tags=_TAGS)
def api_get(incident_id: IdPath, session: SessionDep, actor: CurrentActor) -> IncidentDetail:
    """One incident with its roles, tasks and notices."""
    view = incidents.incident_view(session=session, actor=actor, incident_id=incident_id)
    return _detail(view, clock.now())


@router.post(
    f"{_API}/{{incident_id}}/departments", response_model=list[RoleRead], status_code=201, tags=_TAGS
)
def api_department(
    incident_id: IdPath, body: DepartmentIn, session: SessionDep, actor: CurrentActor
) -> list[RoleRead]:
    """Bring an organisation in, with open places for its people."""
    rows = incidents.add_department(
        session=session, actor=actor, incident_id=incident_id, org_id=body.org_id, roles=body.roles
    )
    return [_role(r, {}) for r in rows]


@router.post(f"{_API}/{{incident_id}}/roles", response_model=RoleRead, tags=_TAGS)
def api_role(incident_id: IdPath, body: RoleIn, session: SessionDep, actor: CurrentActor) -> RoleRead:
    """Name a person of your organisation to a role."""
    row = incidents.assign_role(
        session=session,
        actor=actor,
        incident_id=incident_id,
        role=body.role,
        org_id=body.org_id,
        user_id=body.user_id,
    )
    return RoleRead(
        id=row.id,
        role=row.role,
        org_id=row.org_id,
        user_id=row.user_id,
        username=None,
        assigned_at=_iso(row.assigned_at),
    )


@router.delete(f"{_API}/{{incident_id}}/roles/{{role_id}}", response_model=RoleRead, tags=_TAGS)
def api_release(incident_id: IdPath, role_id: IdPath, session: SessionDep, actor: CurrentActor) -> RoleRead:
    """Stand a person down; the place stays open."""
    row = incidents.release_role(session=session, actor=actor, incident_id=incident_id, role_id=role_id)
    return _role(row, {})


@router.post(f"{_API}/{{incident_id}}/tasks", response_model=TaskRead, status_code=201, tags=_TAGS)
def api_task(incident_id: IdPath, body: TaskIn, session: SessionDep, actor: CurrentActor) -> TaskRead:
    """Set a task."""
    task = incidents.add_task(
        session=session,
        actor=actor,
        incident_id=incident_id,
        title=body.title,
        org_id=body.org_id,
        owner_user_id=body.owner_user_id,
        due_at=body.due_at,
    )
    return _task(task, None, clock.now())


@router.post(f"{_API}/{{incident_id}}/tasks/{{task_id}}/done", response_model=TaskRead, tags=_TAGS)
def api_done(
    incident_id: IdPath, task_id: IdPath, session: SessionDep, actor: CurrentActor, body: DoneIn | None = None
) -> TaskRead:
    """Mark a task done."""
    task = incidents.complete_task(
        session=session, actor=actor, task_id=task_id, incident_id=incident_id, note=body.note if body else ""
    )
    return _task(task, None, clock.now())


@router.get(f"{_API}/{{incident_id}}/entries", response_model=list[EntryRead], tags=_TAGS)
def api_entries(incident_id: IdPath, session: SessionDep, actor: CurrentActor) -> list[EntryRead]:
    """The timeline, oldest first."""
    return [_entry(e) for e in incidents.entries(session=session, actor=actor, incident_id=incident_id)]


@router.post(f"{_API}/{{incident_id}}/entries", response_model=EntryRead, status_code=201, tags=_TAGS)
def api_add_entry(incident_id: IdPath, body: EntryIn, session: SessionDep, actor: CurrentActor) -> EntryRead:
    """Write a line on the timeline."""
    return _entry(incidents.add_entry(session=session, actor=actor, incident_id=incident_id, text=body.text))


@router.post(f"{_API}/{{incident_id}}/notices", response_model=NoticeRead, status_code=201, tags=_TAGS)
def api_notice(incident_id: IdPath, body: NoticeIn, session: SessionDep, actor: CurrentActor) -> NoticeRead:
    """Publish a notice; residents of the area are notified."""
    notice = incidents.publish_notice(
        session=session,
        actor=actor,
        incident_id=incident_id,
        situation=body.situation,
        instructions=body.instructions,
    )
    return _notice(notice)


@router.post(f"{_API}/{{incident_id}}/state", response_model=IncidentRead, tags=_TAGS)
def api_state(incident_id: IdPath, body: StateIn, session: SessionDep, actor: CurrentActor) -> IncidentRead:
    """Move to active, stable or closed (final)."""
    incident = incidents.set_state(
        session=session, actor=actor, incident_id=incident_id, state=body.state, note=body.note
    )
    return _incident(incident)


@router.post(f"{_API}/{{incident_id}}/severity", response_model=IncidentRead, tags=_TAGS)
def api_severity(
    incident_id: IdPath, body: SeverityIn, session: SessionDep, actor: CurrentActor
) -> IncidentRead:
    """Change the severity."""
    incident = incidents.set_severity(
        session=session, actor=actor, incident_id=incident_id, severity=body.severity, note=body.note
    )
    return _incident(incident)


@router.get(f"{_API}/{{incident_id}}/review", tags=_TAGS)
def api_review(incident_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The post-incident review figures (seconds; ``tasks.late`` counts tasks done late or unfinished at close)."""
    return incidents.review(session=session, actor=actor, incident_id=incident_id)


# --- staff pages -----------------------------------------------------------------------------------------


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _form_int(form: FormData, name: str, *, required: bool = True) -> int | None:
    text = _form_text(form, name).strip()
    if not text:
        if required:
            raise Invalid(T("{field} is required", field=name), detail={"field": name})
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise Invalid(T("{field} must be a number", field=name), detail={"field": name})
    return int(text)


def _form_time(form: FormData, name: str) -> datetime | None:
    """A ``datetime-local`` field (platform time), or a time with an offset."""
    text = _form_text(form, name).strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            T("{field} must be a date and time like 2026-11-02T14:30", field=name), detail={"field": name}
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=get_settings().tz)


def _duration(seconds: int | None) -> str:
    """A span of time for people: "2 h 05 min", "3 d 4 h", "45 s"."""
    if seconds is None:
        return gettext("not yet")
    minutes, rest = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return gettext("{d} d {h} h", d=days, h=hours)
    if hours:
        return gettext("{h} h {m:02d} min", h=hours, m=minutes)
    if minutes:
        return gettext("{m} min", m=minutes)
    return gettext("{s} s", s=rest)


def _common() -> dict[str, Any]:
    return {"label": label, "name": _name, "person": _person, "entry_text": entry_text, "duration": _duration}


def _list_page(
    request: Request,
    session: Session,
    actor: Actor,
    state: str,
    after: str | None,
    *,
    error: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    page = incidents.list_incidents(session=session, actor=actor, state=state or None, after=after, limit=50)
    context: dict[str, Any] = {
        **_common(),
        "page": page,
        "state": state,
        "states": incidents.STATES,
        "may_declare": incidents.may_declare(actor),
        "error": error,
        "form": form or {},
        "kinds": incidents.KINDS,
        "severities": (1, 2, 3, 4),
    }
    if context["may_declare"]:
        proposals = incidents.list_proposals(session=session, actor=actor)
        choices, orgs = incidents.declare_choices(session=session)
        context.update(
            proposals=proposals,
            proposal_labels=incidents.proposal_labels(session=session, proposals=proposals),
            areas=choices,
            orgs=[o for o in orgs if o.id != actor.org_id],
        )
    return render(request, "incident_list.html", context, status=status)


@router.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
def incidents_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    state: Annotated[str, Query(max_length=16)] = "",
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Incidents the staff user may see, cluster proposals and the declare form."""
    return _list_page(request, session, actor, state, after)


@router.post("/incidents", response_class=HTMLResponse, include_in_schema=False)
async def declare_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Declare an incident from the form (from scratch or from a proposal)."""
    form = await request.form()
    check_csrf(request, form)
    values = {
        k: _form_text(form, k) for k in ("kind", "severity", "area_id", "title", "description", "proposal_id")
    }
    try:
        incident = incidents.declare(
            session=session,
            actor=actor,
            kind=values["kind"],
            severity=_form_int(form, "severity") or 0,
            area_id=_form_int(form, "area_id", required=False),
            title=values["title"],
            description=values["description"],
            proposal_id=_form_int(form, "proposal_id", required=False),
            departments=[int(v) for v in form.getlist("departments") if isinstance(v, str) and v.isdigit()],
        )
    except (Invalid, Conflict, NotFound) as exc:
        session.rollback()
        return _list_page(
            request,
            session,
            actor,
            "",
            None,
            error=localize(exc.message),
            form=values,
            status=exc.status_code,
        )
    return redirect(f"/incidents/{incident.id}")


@router.post("/incidents/proposals/detect", response_class=HTMLResponse, include_in_schema=False)
async def detect_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Look for clusters now."""
    form = await request.form()
    check_csrf(request, form)
    incidents.detect_now(session=session, actor=actor)
    return redirect("/incidents#proposals")


@router.post(
    "/incidents/proposals/{proposal_id}/dismiss", response_class=HTMLResponse, include_in_schema=False
)
async def dismiss_page(
    request: Request, proposal_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """Turn a proposal down."""
    form = await request.form()
    check_csrf(request, form)
    incidents.dismiss_proposal(
        session=session, actor=actor, proposal_id=proposal_id, reason=_form_text(form, "reason")
    )
    return redirect("/incidents#proposals")


def _detail_page(
    request: Request, session: Session, actor: Actor, incident_id: int, *, error: str = "", status: int = 200
) -> Response:
    view = incidents.incident_view(session=session, actor=actor, incident_id=incident_id)
    now = clock.now()
    return render(
        request,
        "incident_detail.html",
        {
            **_common(),
            "v": view,
            "i": view.incident,
            "error": error,
            "now": now,
            "tz": get_settings().tz,
            "is_late": incidents.is_late,
            "states": incidents.STATES,
            "roles": incidents.ROLES,
            "severities": (1, 2, 3, 4),
        },
        status=status,
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, include_in_schema=False)
def incident_page(request: Request, incident_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """One incident: roles, tasks, timeline, notices, state and review."""
    return _detail_page(request, session, actor, incident_id)


_ANCHORS = {
    "department": "roles",
    "role": "roles",
    "release": "roles",
    "task": "tasks",
    "done": "tasks",
    "entry": "timeline",
    "notice": "notices",
    "state": "state",
    "severity": "state",
}


@router.post("/incidents/{incident_id}", response_class=HTMLResponse, include_in_schema=False)
async def incident_action(
    request: Request, incident_id: IdPath, session: SessionDep, actor: PageActor
) -> Response:
    """One action of the incident page's forms (``action`` says which)."""
    form = await request.form()
    check_csrf(request, form)
    action = _form_text(form, "action")
    if action not in _ANCHORS:
        raise Invalid(T("unknown action {action}", action=action[:40]), detail={"field": "action"})
    try:
        _act(session, actor, incident_id, action, form)
    except (Invalid, Conflict) as exc:
        session.rollback()
        return _detail_page(
            request, session, actor, incident_id, error=localize(exc.message), status=exc.status_code
        )
    return redirect(f"/incidents/{incident_id}#{_ANCHORS[action]}")


def _act(session: Session, actor: Actor, incident_id: int, action: str, form: FormData) -> None:
    common: dict[str, Any] = {"session": session, "actor": actor, "incident_id": incident_id}
    if action == "department":
        roles = [r for r in form.getlist("roles") if isinstance(r, str)] or list(incidents.DEPARTMENT_ROLES)
        incidents.add_department(**common, org_id=_form_int(form, "org_id") or 0, roles=roles)
    elif action == "role":
        incidents.assign_role(
            **common,
            role=_form_text(form, "role"),
            org_id=_form_int(form, "org_id") or 0,
            user_id=_form_int(form, "user_id") or 0,
        )
    elif action == "release":
        incidents.release_role(**common, role_id=_form_int(form, "role_id") or 0)
    elif action == "task":
        owner = _form_int(form, "owner_user_id", required=False)
        incidents.add_task(
            **common,
            title=_form_text(form, "title"),
            org_id=_form_int(form, "org_id", required=False) if owner is None else None,
            owner_user_id=owner,
            due_at=_form_time(form, "due_at"),
        )
    elif action == "done":
        incidents.complete_task(
            session=session,
            actor=actor,
            incident_id=incident_id,
            task_id=_form_int(form, "task_id") or 0,
            note=_form_text(form, "note"),
        )
    elif action == "entry":
        incidents.add_entry(**common, text=_form_text(form, "text"))
    elif action == "notice":
        incidents.publish_notice(
            **common, situation=_form_text(form, "situation"), instructions=_form_text(form, "instructions")
        )
    elif action == "state":
        incidents.set_state(**common, state=_form_text(form, "state"), note=_form_text(form, "note"))
    elif action == "severity":
        incidents.set_severity(
            **common, severity=_form_int(form, "severity") or 0, note=_form_text(form, "note")
        )


# --- public pages ------------------------------------------------------------------------------------------


@router.get("/participate/incidents", response_class=HTMLResponse, include_in_schema=False)
def public_list_page(request: Request, session: SessionDep, actor: OptionalActor) -> Response:
    """Emergencies going on, with their latest notice (no login)."""
    from zhishe.finance import ads

    return render(
        request,
        "incident_public_list.html",
        # the "notices" advertising placement runs beside the community's notices
        {
            **_common(),
            "items": incidents.public_incidents(session=session),
            "ad": ads.serve(session, "notices"),
        },
    )


@router.get("/participate/incidents/{incident_id}", response_class=HTMLResponse, include_in_schema=False)
def public_page(request: Request, incident_id: IdPath, session: SessionDep, actor: OptionalActor) -> Response:
    """One emergency's notices: the current situation and what to do (no login)."""
    return render(
        request,
        "incident_public.html",
        {**_common(), "p": incidents.public_view(session=session, incident_id=incident_id)},
    )
