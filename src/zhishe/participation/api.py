"""JSON routes of reports and work orders under ``/api/v1/participation``: categories, filing a
report, the public view and timeline, "me too", the resident's follow-up, the staff queue and its
actions (single and bulk), joint orders, and configuration (categories, teams, routing rules,
response templates). Open311 clients use ``/open311/v2`` instead (``open311.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, IdPath, OptionalActor, SessionDep
from zhishe.core.pagination import Page
from zhishe.participation import admin, escalation, service
from zhishe.participation.models import Category, Request, RequestUpdate

__all__ = ["request_json", "router"]

router = APIRouter(prefix="/api/v1/participation", tags=["participation"])
_ID = Field(ge=1, le=2**62)
_OPTIONAL_ID = Field(None, ge=1, le=2**62)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def request_json(session: Any, request: Request, *, internal: bool = False) -> dict[str, Any]:
    """A request as JSON: the public face, plus the work-order fields when ``internal``."""
    category = session.get(Category, request.category_id)
    data: dict[str, Any] = {
        "id": request.id,
        "category": category.code if category else None,
        "status": service.open311_status(request.state),
        "state": request.state,
        "wait_reason": request.wait_reason or None,
        "status_notes": request.status_notes,
        "description": request.description,
        "answers": request.answers,
        "lat": request.lat,
        "long": request.lon,
        "address": request.address,
        "area_id": request.area_id,
        "requested_at": _iso(request.requested_at),
        "updated_at": _iso(request.updated_at),
        "expected_at": _iso(request.expected_at),
        "overdue": escalation.overdue_badge(request),
        "supporters": request.supporters,
        "duplicate_of": request.duplicate_of_id,
        "suggestion_id": request.suggestion_id,
        "public_reason": request.public_reason or None,
        "org_id": request.org_id,
    }
    if internal:
        data.update(
            channel=request.channel,
            team_id=request.team_id,
            assignee_user_id=request.assignee_user_id,
            parent_id=request.parent_id,
            escalation_level=request.escalation_level,
            paused_at=_iso(request.paused_at),
            resolved_at=_iso(request.resolved_at),
            closed_at=_iso(request.closed_at),
            within_sla=request.within_sla,
            reopen_count=request.reopen_count,
            confirmation=request.confirmation or None,
            satisfaction=request.satisfaction,
            reporter={
                "name": request.reporter_name,
                "phone": request.reporter_phone,
                "email": request.reporter_email,
            },
        )
    return data


def _update_json(update: RequestUpdate, *, internal: bool) -> dict[str, Any]:
    data = {
        "id": update.id,
        "at": update.at.isoformat(),
        "kind": update.kind,
        "state": update.state,
        "status": service.open311_status(update.state),
        "text": update.text,
    }
    if internal:
        data.update(public=update.public, actor_user_id=update.actor_user_id, detail=update.detail)
    return data


def _page(response: Response, page: Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    if page.next:
        response.headers["Link"] = f'<?after={page.next}>; rel="next"'
    return {"items": items, "next": page.next}


# --- categories ----------------------------------------------------------------------------------


@router.get("/categories")
def list_categories(session: SessionDep) -> list[dict[str, Any]]:
    """Report categories with their questions and SLAs."""
    return [_category_json(session, c) for c in service.list_categories(session=session)]


def _category_json(session: Any, category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name_zh,
        "name_en": category.name_en,
        "description": category.description_zh,
        "group": category.group,
        "type": category.type,
        "sla_amount": category.sla_amount,
        "sla_unit": category.sla_unit,
        "nearby_metres": category.nearby_metres,
        "attributes": [
            {
                "code": a.code,
                "datatype": a.datatype,
                "variable": a.variable,
                "required": a.required,
                "description": a.description,
                "order": a.order,
                "values": a.values,
            }
            for a in service.attributes_of(session=session, category_id=category.id)
        ],
    }


@router.get("/categories/{code}")
def get_category(code: str, session: SessionDep) -> dict[str, Any]:
    """One category."""
    return _category_json(session, service.get_category(session=session, code=code))


@router.put("/categories/{code}")
def put_category(code: str, body: dict[str, Any], session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create or replace a category (Open311-shaped definition plus ``sla_amount``/``sla_unit``)."""
    category = admin.put_category(session=session, actor=actor, spec={**body, "service_code": code})
    return _category_json(session, category)


# --- reports ---------------------------------------------------------------------------------------


class ReportIn(BaseModel):
    """A report filed through the JSON API (by a resident, or by staff for a caller)."""

    category: str = Field(min_length=1, max_length=64)
    description: str = Field("", max_length=4000)
    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address: str = Field("", max_length=500)
    address_id: str = Field("", max_length=64)
    answers: dict[str, Any] = Field(default_factory=dict)
    channel: str = Field("app", max_length=16)
    caller_name: str = Field("", max_length=200)
    caller_phone: str = Field("", max_length=40)


@router.post("/requests", status_code=201)
def file_report(body: ReportIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """File a report (photos go through the web form or Open311 ``media``)."""
    request = service.submit(
        session=session,
        actor=actor,
        category_code=body.category,
        description=body.description,
        lat=body.lat,
        lon=body.long,
        address=body.address,
        address_id=body.address_id,
        answers=body.answers,
        reporter=service.Reporter(name=body.caller_name, phone=body.caller_phone),
        channel=body.channel,
    )
    return request_json(session, request)


@router.get("/requests/nearby")
def nearby(
    session: SessionDep,
    category: str = Query(min_length=1, max_length=64),
    lat: float = Query(ge=-90, le=90),
    long: float = Query(ge=-180, le=180),
) -> list[dict[str, Any]]:
    """Open reports of the category near a point: offer "me too" before filing a duplicate."""
    found = service.nearby(session=session, category_code=category, lat=lat, lon=long)
    return [{**request_json(session, r), "distance_m": d} for r, d in found]


@router.get("/requests/{request_id}")
def get_request(request_id: IdPath, session: SessionDep, actor: OptionalActor) -> dict[str, Any]:
    """A report: the public view, with the work-order fields for staff who may see the order."""
    request = service.get_request(session=session, request_id=request_id, actor=actor)
    internal = service.may_see_order(session, actor, request)
    if internal and actor is not None:
        updates = service.timeline(session=session, actor=actor, request_id=request_id)
    else:
        updates = service.public_updates(session=session, request_id=request_id)
    return {
        **request_json(session, request, internal=internal),
        "updates": [_update_json(u, internal=internal) for u in updates],
    }


class SupportOut(BaseModel):
    """The report's supporters after a "me too"."""

    id: int
    supporters: int


@router.post("/requests/{request_id}/support")
def support(request_id: IdPath, session: SessionDep, actor: CurrentActor) -> SupportOut:
    """ "Me too": support the report and follow its updates."""
    request = service.support(session=session, actor=actor, request_id=request_id)
    return SupportOut(id=request.id, supporters=request.supporters)


class InfoIn(BaseModel):
    """More information from the resident for the department."""

    text: str = Field(min_length=1, max_length=4000)


@router.post("/requests/{request_id}/info", status_code=201)
def add_info(request_id: IdPath, body: InfoIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Add information to one's report (it goes to the department working it)."""
    update = service.add_info(session=session, actor=actor, request_id=request_id, text=body.text)
    return _update_json(update, internal=False)


class ConfirmIn(BaseModel):
    """The resident's verdict on the fix."""

    fixed: bool
    reason: str = Field("", max_length=4000)
    satisfaction: int | None = Field(None, ge=1, le=5)


@router.post("/requests/{request_id}/confirm")
def confirm(request_id: IdPath, body: ConfirmIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Confirm the fix, or reopen the report with a reason, within the window after it was resolved."""
    request = service.confirm(
        session=session,
        actor=actor,
        request_id=request_id,
        fixed=body.fixed,
        reason=body.reason,
        satisfaction=body.satisfaction,
    )
    return request_json(session, request)


# --- staff ------------------------------------------------------------------------------------------


class ActionIn(BaseModel):
    """A work-order action and its values."""

    action: Literal[
        "assign",
        "accept",
        "start",
        "wait",
        "resume",
        "resolve",
        "close",
        "reopen",
        "duplicate",
        "reject",
        "transfer",
        "not_ours",
        "comment",
    ]
    note: str = Field("", max_length=4000)
    public: bool = True
    team_id: int | None = _OPTIONAL_ID
    assignee_user_id: int | None = _OPTIONAL_ID
    reason: str | None = Field(None, max_length=16, description="wait: parts, third_party or weather")
    of_id: int | None = _OPTIONAL_ID
    org_id: int | None = _OPTIONAL_ID
    responsible: int | None = _OPTIONAL_ID


def _values(body: ActionIn) -> dict[str, Any]:
    keys = ("team_id", "assignee_user_id", "reason", "of_id", "org_id", "responsible")
    return {k: getattr(body, k) for k in keys if getattr(body, k) is not None}


@router.post("/requests/{request_id}/actions")
def act(request_id: IdPath, body: ActionIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Move a work order (assign, accept, start, wait, resume, resolve, close, reopen, duplicate,
    reject, transfer, not_ours, comment)."""
    request = service.act(
        session=session,
        actor=actor,
        request_id=request_id,
        action=body.action,
        note=body.note,
        public=body.public,
        **_values(body),
    )
    return request_json(session, request, internal=True)


class BulkIn(ActionIn):
    """One action on several orders."""

    ids: list[int] = Field(min_length=1, max_length=500)


@router.post("/queue/bulk")
def bulk(body: BulkIn, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """The same action on several orders, all or nothing."""
    done = service.bulk_act(
        session=session,
        actor=actor,
        request_ids=body.ids,
        action=body.action,
        note=body.note,
        **_values(body),
    )
    return [request_json(session, r, internal=True) for r in done]


class PartIn(BaseModel):
    """One department's task of a joint order."""

    org_id: int = _ID
    team_id: int | None = _OPTIONAL_ID
    task: str = Field(min_length=1, max_length=4000)


class SplitIn(BaseModel):
    """The departments of a joint order."""

    parts: list[PartIn] = Field(min_length=1, max_length=20)


@router.post("/requests/{request_id}/split", status_code=201)
def split(
    request_id: IdPath, body: SplitIn, session: SessionDep, actor: CurrentActor
) -> list[dict[str, Any]]:
    """Make a joint order: one internal task per department; the report stays the public face."""
    children = service.split(
        session=session,
        actor=actor,
        request_id=request_id,
        parts=[(p.org_id, p.team_id, p.task) for p in body.parts],
    )
    return [request_json(session, c, internal=True) for c in children]


@router.get("/queue")
def queue(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    org_id: int | None = Query(None, ge=1, le=2**62),
    team_id: int | None = Query(None, ge=1, le=2**62),
    state: str | None = Query(None, max_length=16),
    category: str | None = Query(None, max_length=64),
    overdue: bool | None = None,
    unrouted: bool = Query(False, description="Reports no routing rule matched (data bureau)"),
    after: str | None = Query(None, max_length=40),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """The staff queue of one's organisation (the data bureau may name any, or ask for the unrouted
    reports), with filters."""
    page = service.queue(
        session=session,
        actor=actor,
        org_id=org_id,
        team_id=team_id,
        state=state,
        category_code=category,
        overdue=overdue,
        unrouted=unrouted,
        after=after,
        limit=limit,
    )
    return _page(response, page, [request_json(session, r, internal=True) for r in page.items])


# --- configuration ---------------------------------------------------------------------------------


class TeamIn(BaseModel):
    """A team of an organisation."""

    org_id: int = _ID
    name: str = Field(min_length=1, max_length=200)
    lead_user_id: int | None = _OPTIONAL_ID
    member_ids: list[int] = Field(default_factory=list, max_length=500)


@router.post("/teams", status_code=201)
def create_team(body: TeamIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a team with its lead and members."""
    team = admin.create_team(
        session=session,
        actor=actor,
        org_id=body.org_id,
        name=body.name,
        lead_user_id=body.lead_user_id,
        member_ids=body.member_ids,
    )
    return {"id": team.id, "org_id": team.org_id, "name": team.name, "lead_user_id": team.lead_user_id}


@router.get("/teams")
def list_teams(
    session: SessionDep, actor: CurrentActor, org_id: int = Query(ge=1, le=2**62)
) -> list[dict[str, Any]]:
    """An organisation's teams."""
    return [
        {"id": t.id, "org_id": t.org_id, "name": t.name, "lead_user_id": t.lead_user_id}
        for t in admin.list_teams(session=session, actor=actor, org_id=org_id)
    ]


class RuleIn(BaseModel):
    """A routing rule: category x area -> organisation and team, or a grid worker."""

    category: str | None = Field(None, max_length=64)
    area: str | None = Field(None, max_length=64)
    org_id: int = _ID
    team_id: int | None = _OPTIONAL_ID
    assignee_user_id: int | None = _OPTIONAL_ID
    priority: int = Field(100, ge=-1_000_000, le=1_000_000)


def _rule_json(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "category_id": rule.category_id,
        "area_id": rule.area_id,
        "org_id": rule.org_id,
        "team_id": rule.team_id,
        "assignee_user_id": rule.assignee_user_id,
        "priority": rule.priority,
    }


@router.post("/routing-rules", status_code=201)
def add_rule(body: RuleIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Add a routing rule."""
    rule = admin.add_routing_rule(
        session=session,
        actor=actor,
        category_code=body.category,
        area_code=body.area,
        org_id=body.org_id,
        team_id=body.team_id,
        assignee_user_id=body.assignee_user_id,
        priority=body.priority,
    )
    return _rule_json(rule)


@router.get("/routing-rules")
def list_rules(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Every routing rule, most specific first."""
    return [_rule_json(r) for r in admin.list_routing_rules(session=session, actor=actor)]


@router.delete("/routing-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """Remove a routing rule."""
    admin.delete_routing_rule(session=session, actor=actor, rule_id=rule_id)
    return Response(status_code=204)


class TemplateIn(BaseModel):
    """A canned reply."""

    org_id: int = _ID
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=4000)


@router.post("/templates", status_code=201)
def create_template(body: TemplateIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Add a response template."""
    row = admin.create_template(
        session=session, actor=actor, org_id=body.org_id, title=body.title, text=body.text
    )
    return {"id": row.id, "org_id": row.org_id, "title": row.title, "text": row.text}


@router.get("/templates")
def list_templates(
    session: SessionDep, actor: CurrentActor, org_id: int = Query(ge=1, le=2**62)
) -> list[dict[str, Any]]:
    """An organisation's response templates."""
    return [
        {"id": t.id, "org_id": t.org_id, "title": t.title, "text": t.text}
        for t in admin.list_templates(session=session, actor=actor, org_id=org_id)
    ]
