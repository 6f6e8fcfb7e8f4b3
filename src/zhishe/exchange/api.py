"""JSON routes of the exchange: requests and answers, grants, reads through grants, subscriptions,
usage and the working-day calendar."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Response
from fastapi.responses import FileResponse

from zhishe.catalog import api as catalog_api
from zhishe.catalog import service as catalog
from zhishe.catalog.schemas import RowsPage
from zhishe.core.db import MAX_ID
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.web.links import link_next
from zhishe.exchange import dashboard as dashboard_figures
from zhishe.exchange import derived as derived_datasets
from zhishe.exchange import issues, service, workdays
from zhishe.exchange.models import Grant, ShareRequest, Subscription
from zhishe.exchange.schemas import (
    CommentIn,
    DerivedIn,
    EditIn,
    FixIn,
    GrantPage,
    GrantRead,
    IssueEventRead,
    IssueIn,
    IssuePage,
    IssueRead,
    NarrowIn,
    ReasonIn,
    ReassignIn,
    RequestIn,
    RequestPage,
    RequestRead,
    SubscriptionIn,
    SubscriptionRead,
    TriageIn,
    UsageRow,
)

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])


def to_read(session: Any, request: ShareRequest) -> RequestRead:
    """A request as the API shows it (with its grant and whether it is overdue)."""
    grant = service.grant_of(session, request.id)
    return RequestRead.model_validate(request).model_copy(
        update={"overdue": service.is_overdue(request), "grant_id": grant.id if grant else None}
    )


def grant_read(grant: Grant) -> GrantRead:
    """A grant as the API shows it."""
    return GrantRead.model_validate(grant).model_copy(update={"active": service.is_live(grant)})


@router.post("/requests", response_model=RequestRead, status_code=201)
def create_request(data: RequestIn, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """File a request for another organisation's dataset (a draft, or submitted with ``submit``)."""
    return to_read(session, service.create_request(session=session, actor=actor, data=data))


@router.get("/requests", response_model=RequestPage)
def list_requests(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    box: Literal["outgoing", "incoming", "all"] = "outgoing",
    state: str | None = None,
    dataset: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RequestPage:
    """Your organisation's requests (``outgoing``), the queue of requests to it by deadline
    (``incoming``), or every request (``all``, the data bureau)."""
    page = service.list_requests(
        session=session, actor=actor, box=box, state=state, dataset_id=dataset, after=after, limit=limit
    )
    link_next(response, page.next, {"box": box, "state": state, "dataset": dataset, "limit": limit})
    return RequestPage(items=[to_read(session, r) for r in page.items], next=page.next)


@router.get("/requests/{request_id}", response_model=RequestRead)
def get_request(request_id: IdPath, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """One request."""
    return to_read(session, service.get_request_or_raise(session=session, actor=actor, request_id=request_id))


@router.post("/requests/{request_id}/submit", response_model=RequestRead)
def submit(request_id: IdPath, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """Send a draft to the owner; the reply deadline starts."""
    return to_read(session, service.submit(session=session, actor=actor, request_id=request_id))


@router.post("/requests/{request_id}/approve", response_model=RequestRead)
def approve(request_id: IdPath, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """Approve as asked."""
    return to_read(session, service.approve(session=session, actor=actor, request_id=request_id))


@router.post("/requests/{request_id}/narrow", response_model=RequestRead)
def narrow(request_id: IdPath, data: NarrowIn, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """Approve with a narrower scope (fewer columns or rows, later versions, a shorter period), with a reason."""
    return to_read(session, service.narrow(session=session, actor=actor, request_id=request_id, data=data))


@router.post("/requests/{request_id}/reject", response_model=RequestRead)
def reject(request_id: IdPath, data: ReasonIn, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """Reject, with a reason."""
    return to_read(
        session, service.reject(session=session, actor=actor, request_id=request_id, reason=data.reason)
    )


@router.post("/requests/{request_id}/revoke", response_model=RequestRead)
def revoke(request_id: IdPath, data: ReasonIn, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """End the grant now, with a reason; access stops on the next read."""
    return to_read(
        session, service.revoke(session=session, actor=actor, request_id=request_id, reason=data.reason)
    )


@router.post("/requests/{request_id}/reassign", response_model=RequestRead)
def reassign(request_id: IdPath, data: ReassignIn, session: SessionDep, actor: CurrentActor) -> RequestRead:
    """The data bureau hands a request to a named steward of the owner, with a new deadline."""
    request = service.reassign(
        session=session, actor=actor, request_id=request_id, assignee=data.assignee, reason=data.reason
    )
    return to_read(session, request)


@router.get("/grants", response_model=GrantPage)
def list_grants(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    side: Literal["held", "given"] = "held",
    live: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> GrantPage:
    """Grants your organisation holds (``held``) or has given (``given``); ``live`` for those in force now."""
    page = service.list_grants(
        session=session, actor=actor, side=side, live_only=live, after=after, limit=limit
    )
    link_next(response, page.next, {"side": side, "live": live or None, "limit": limit})
    return GrantPage(items=[grant_read(g) for g in page.items], next=page.next)


@router.get("/grants/{grant_id}", response_model=GrantRead)
def get_grant(grant_id: IdPath, session: SessionDep, actor: CurrentActor) -> GrantRead:
    """One grant."""
    return grant_read(service.get_grant_or_raise(session=session, actor=actor, grant_id=grant_id))


@router.put("/grants/{grant_id}/subscription", response_model=SubscriptionRead)
def set_subscription(
    grant_id: IdPath, data: SubscriptionIn, session: SessionDep, actor: CurrentActor
) -> SubscriptionRead:
    """Subscribe to new versions through this grant; with a webhook URL, a new signing secret is
    returned once."""
    subscription, secret = service.set_subscription(
        session=session, actor=actor, grant_id=grant_id, webhook_url=data.webhook_url
    )
    return _subscription_read(subscription, secret)


def _subscription_read(subscription: Subscription, secret: str | None) -> SubscriptionRead:
    return SubscriptionRead(
        id=subscription.id,
        grant_id=subscription.grant_id,
        webhook_url=subscription.webhook_url,
        secret=secret,
        is_active=subscription.is_active,
    )


@router.get("/grants/{grant_id}/deliveries")
def list_deliveries(grant_id: IdPath, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """The webhook deliveries of this grant's subscription, newest first (failed ones included)."""
    return service.deliveries(session=session, actor=actor, grant_id=grant_id)


@router.get("/datasets/{dataset}/rows", response_model=RowsPage)
def rows(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    select: Annotated[str | None, Query(description="Comma-separated column names")] = None,
    where: Annotated[
        str | None, Query(description="A JSON filter, ANDed with the grant's row filter")
    ] = None,
    order: Annotated[str | None, Query(description="e.g. ts:desc,district")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 50,
    total: bool = False,
    grant: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Which of your grants to read through")
    ] = None,
) -> RowsPage:
    """Rows through your organisation's grant: the granted columns and rows only, with the same
    filter, order and paging parameters as ``/api/v1/datasets/{dataset}/rows``."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    chosen = grant if grant is not None else _held_grant(session, actor, found)
    return catalog_api.rows(
        dataset=dataset,
        session=session,
        actor=actor,
        response=response,
        version=version,
        select=select,
        where=where,
        order=order,
        after=after,
        limit=limit,
        total=total,
        grant=chosen,
    )


@router.get("/datasets/{dataset}/export")
def export(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    background: BackgroundTasks,
    format: Literal["csv", "parquet"] = "csv",
    version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    select: str | None = None,
    where: str | None = None,
    grant: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> FileResponse:
    """Bulk export of the granted view as CSV or Parquet (grants in export or subscription mode)."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    chosen = grant if grant is not None else _held_grant(session, actor, found)
    return catalog_api.export(
        dataset=dataset,
        session=session,
        actor=actor,
        background=background,
        format=format,
        version=version,
        select=select,
        where=where,
        grant=chosen,
    )


def _held_grant(session: Any, actor: Any, dataset: Any) -> int | None:
    """The grant to read through when none is named: the widest live one, if any (the read
    function then refuses with a clear message when there is none)."""
    views = service.find_grants(session, actor, dataset)
    return max(views, key=lambda g: (len(g.columns), g.expires_at)).id if views else None


@router.get("/datasets/{dataset}/usage", response_model=list[UsageRow])
def usage(dataset: str, session: SessionDep, actor: CurrentActor) -> list[UsageRow]:
    """Who read this dataset through grants, how often, and for which stated purpose (owner, bureau)."""
    return [UsageRow(**row) for row in service.usage(session=session, actor=actor, dataset=dataset)]


@router.get("/calendar")
def calendar(
    session: SessionDep, actor: CurrentActor, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> list[dict[str, Any]]:
    """The working-day calendar's holidays and make-up working days of a year."""
    service.authorize_read(actor)
    return [
        {"day": d.day, "name": d.name, "is_workday": d.is_workday, "source": d.source}
        for d in workdays.calendar_days(session, year)
    ]


@router.put("/calendar/{day}")
def set_calendar_day(
    day: date, session: SessionDep, actor: CurrentActor, name: str = "", is_workday: bool = False
) -> dict[str, Any]:
    """Make a day a holiday (``is_workday=false``) or a working day (data bureau administrators)."""
    if len(name) > 100:
        raise Invalid("name: at most 100 characters", detail={"parameter": "name"})
    result = workdays.set_day(session, actor=actor, day=day, name=name, is_workday=is_workday)
    return {"day": result.day, "name": result.name, "is_workday": result.is_workday, "source": result.source}


@router.delete("/calendar/{day}", status_code=204)
def remove_calendar_day(day: date, session: SessionDep, actor: CurrentActor) -> Response:
    """Drop an edit, so the shipped calendar applies to that day again."""
    workdays.remove_day(session, actor=actor, day=day)
    return Response(status_code=204)


def _issue(session: Any, actor: Any, issue: Any, with_thread: bool = True) -> IssueRead:
    read = IssueRead.model_validate(issue)
    if with_thread:
        events = issues.thread(session=session, actor=actor, issue_id=issue.id)
        read = read.model_copy(update={"thread": [IssueEventRead.model_validate(e) for e in events]})
    return read


@router.post("/issues", response_model=IssueRead, status_code=201)
def file_issue(data: IssueIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """Report a problem in a dataset version: a wrong value (row by key, column, suggested value),
    a missing period, or a definition question."""
    issue = issues.file_issue(
        session=session,
        actor=actor,
        dataset=data.dataset,
        kind=data.kind,
        problem=data.problem,
        version=data.version,
        key_values=data.key_values,
        column=data.column,
        suggested_value=data.suggested_value,
        period=data.period,
    )
    return _issue(session, actor, issue)


@router.get("/issues", response_model=IssuePage)
def list_issues(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    box: Literal["incoming", "outgoing", "all"] = "incoming",
    dataset: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    state: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IssuePage:
    """Issues on your organisation's datasets (``incoming``), reported by it (``outgoing``), or all (bureau)."""
    page = issues.list_issues(
        session=session, actor=actor, box=box, dataset_id=dataset, state=state, after=after, limit=limit
    )
    link_next(response, page.next, {"box": box, "dataset": dataset, "state": state, "limit": limit})
    return IssuePage(items=[_issue(session, actor, i, with_thread=False) for i in page.items], next=page.next)


@router.get("/issues/{issue_id}", response_model=IssueRead)
def get_issue(issue_id: IdPath, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """One issue with its thread."""
    return _issue(session, actor, issues.get_issue_or_raise(session=session, actor=actor, issue_id=issue_id))


@router.post("/issues/{issue_id}/triage", response_model=IssueRead)
def triage(issue_id: IdPath, data: TriageIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """The owner accepts, rejects (reason required) or asks for more information."""
    issue = issues.triage(
        session=session, actor=actor, issue_id=issue_id, state=data.state, reason=data.reason
    )
    return _issue(session, actor, issue)


@router.post("/issues/{issue_id}/comments", response_model=IssueRead)
def add_comment(issue_id: IdPath, data: CommentIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """Write in the issue's thread."""
    return _issue(
        session, actor, issues.comment(session=session, actor=actor, issue_id=issue_id, body=data.body)
    )


@router.post("/issues/{issue_id}/fix", response_model=IssueRead)
def fix(issue_id: IdPath, data: FixIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """Link the (imported) version that fixes the issue; grantees and the reporter are told."""
    issue = issues.fix_with_version(
        session=session, actor=actor, issue_id=issue_id, version=data.version, note=data.note
    )
    return _issue(session, actor, issue)


@router.post("/issues/{issue_id}/edit", response_model=IssueRead)
def edit(issue_id: IdPath, data: EditIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """Correct the cell in place: a new version with the reason as its note, linked to the issue."""
    issue = issues.fix_by_edit(
        session=session,
        actor=actor,
        issue_id=issue_id,
        value=data.value,
        reason=data.reason,
        key_values=data.key_values,
        column=data.column,
    )
    return _issue(session, actor, issue)


@router.post("/issues/{issue_id}/confirm", response_model=IssueRead)
def confirm(issue_id: IdPath, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """The reporter confirms the fix."""
    return _issue(session, actor, issues.confirm(session=session, actor=actor, issue_id=issue_id))


@router.post("/issues/{issue_id}/reopen", response_model=IssueRead)
def reopen(issue_id: IdPath, data: ReasonIn, session: SessionDep, actor: CurrentActor) -> IssueRead:
    """The reporter reopens an issue the fix did not fix."""
    return _issue(
        session, actor, issues.reopen(session=session, actor=actor, issue_id=issue_id, reason=data.reason)
    )


@router.get("/turnaround")
def turnaround(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Hours from a data issue's filing to its fixed version, per dataset and per owner."""
    return issues.turnaround(session=session, actor=actor)


@router.get("/dashboard")
def dashboard(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The data bureau's figures: requests by state, reply times per owner (median, P90), overdue
    requests, most-requested datasets, grants expiring within 14 days, reads per dataset and
    organisation, correction turnaround."""
    return dashboard_figures.figures(session=session, actor=actor)


@router.post("/dashboard/publish")
def publish_dashboard(session: SessionDep, actor: CurrentActor) -> dict[str, int | None]:
    """Write each figure as a new version of its dataset (owned by the data bureau)."""
    return dashboard_figures.publish(session=session, actor=actor)


@router.get("/views")
def views(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """The views your organisation's live grants give: what a derived dataset's SQL may read."""
    return [
        {
            "name": v.name,
            "dataset": v.slug,
            "dataset_id": v.dataset_id,
            "grant_id": v.grant_id,
            "columns": v.columns,
        }
        for v in derived_datasets.granted_views(session=session, actor=actor)
    ]


@router.post("/derived", status_code=201)
def create_derived(data: DerivedIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Register a derived dataset (SELECT only, over your granted views only) and materialise it."""
    made = derived_datasets.create(
        session=session,
        actor=actor,
        slug=data.slug,
        title_zh=data.title_zh,
        title_en=data.title_en,
        sql=data.sql,
    )
    return _derived_read(session, made)


def _derived_read(session: Any, made: Any) -> dict[str, Any]:
    dataset = catalog.get_or_raise(session=session, dataset=made.dataset_id)
    return {
        "dataset": dataset.slug,
        "dataset_id": dataset.id,
        "version": dataset.current_version,
        "sql": made.sql,
        "sources": made.sources,
        "stale": made.is_stale,
        "refreshed_at": made.refreshed_at,
    }


@router.get("/derived")
def list_derived(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Your organisation's derived datasets (``stale`` when a source has a newer version)."""
    return [
        _derived_read(session, d) for d, _ds in derived_datasets.list_derived(session=session, actor=actor)
    ]


@router.post("/derived/{dataset}/refresh")
def refresh_derived(dataset: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Run the query again over the sources' current versions: a new version."""
    version = derived_datasets.refresh(session=session, actor=actor, dataset=dataset)
    return {"dataset": dataset, "version": version}


@router.get("/datasets/{dataset}/lineage")
def lineage(dataset: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Upstream and downstream datasets, as nodes and edges with the versions used."""
    return derived_datasets.lineage(session=session, actor=actor, dataset=dataset)
