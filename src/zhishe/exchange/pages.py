"""Pages of the exchange: the requester's requests, the owner's queue with one-click answers, a
request's page, grants, usage, the working-day calendar, and notifications."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from zhishe.catalog import service as catalog
from zhishe.catalog.lake.filters import OPS
from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.auth import can
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import gettext
from zhishe.core.pagination import is_number
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.exchange import dashboard as dashboard_figures
from zhishe.exchange import derived as derived_datasets
from zhishe.exchange import issues, service, workdays
from zhishe.exchange.schemas import AccessMode, NarrowIn, RequestIn

router = APIRouter(include_in_schema=False)

#: Operators offered by the row-scope form (the API takes every filter operator).
FORM_OPS = ["=", "!=", "<", "<=", ">", ">=", "in", "between", "starts_with", "contains"]
CONDITIONS = 3


def _orgs(session: Any, actor: Any) -> dict[int, Any]:
    return {o.id: o for o in accounts.list_orgs(session=session, actor=actor, limit=1000).items}


def _first_error(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    return Invalid(f"{'.'.join(map(str, first['loc'])) or 'form'}: {first['msg']}")


def row_scope_from_form(form: FormData, prefix: str = "cond") -> dict[str, Any] | None:
    """The structured filter a row-scope form describes: up to three conditions, all required."""
    parts: list[dict[str, Any]] = []
    for i in range(CONDITIONS):
        column = str(form.get(f"{prefix}_col_{i}") or "").strip()
        op = str(form.get(f"{prefix}_op_{i}") or "=").strip()
        raw = str(form.get(f"{prefix}_val_{i}") or "").strip()
        if not column:
            continue
        if op not in OPS:
            raise Invalid(f"row scope {i + 1}: unknown operator {op!r}", detail={"field": f"{prefix}_op_{i}"})
        value: Any = raw
        if op in {"in", "not_in", "between"}:
            value = [v.strip() for v in raw.replace("，", ",").split(",") if v.strip()]
            if op == "between" and len(value) != 2:
                raise Invalid(
                    f"row scope {i + 1}: between needs two values separated by a comma",
                    detail={"field": f"{prefix}_val_{i}"},
                )
        elif op in {"is_null", "not_null"}:
            value = None
        parts.append(
            {"column": column, "op": op, "value": value}
            if value is not None
            else {"column": column, "op": op}
        )
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


@router.get("/exchange", response_class=HTMLResponse)
def overview(
    request: Request, session: SessionDep, actor: PageActor, tab: str = "outgoing", state: str = ""
) -> Response:
    if tab not in {"outgoing", "incoming", "all", "held", "given"}:
        raise Invalid(f"unknown tab {tab!r}", detail={"parameter": "tab"})
    ctx: dict[str, Any] = {
        "tab": tab,
        "state": state,
        "orgs": _orgs(session, actor),
        "bureau": can(actor, "exchange.bureau"),
    }
    if tab in {"held", "given"}:
        ctx["grants"] = service.list_grants(session=session, actor=actor, side=tab, limit=200).items
    else:
        ctx["requests"] = service.list_requests(
            session=session, actor=actor, box=tab, state=state or None, limit=200
        ).items
    ctx["datasets"] = {
        d.id: d for d in catalog.list_datasets(session=session, actor=actor, limit=500)[0].items
    }
    ctx["overdue"] = service.is_overdue
    ctx["live"] = service.is_live
    return render(request, "exchange/overview.html", ctx)


@router.get("/exchange/requests/new", response_class=HTMLResponse)
def new_request(request: Request, session: SessionDep, actor: PageActor, dataset: str = "") -> Response:
    service.authorize_read(actor)
    found = catalog.read_dataset(session=session, actor=actor, dataset=dataset) if dataset else None
    today = clock.now().astimezone(get_settings().tz).date()
    return render(
        request,
        "exchange/new.html",
        {
            "d": found,
            "ops": FORM_OPS,
            "conditions": range(CONDITIONS),
            "modes": list(AccessMode),
            "today": today.isoformat(),
            "datasets": [
                d
                for d in catalog.list_datasets(session=session, actor=actor, limit=500)[0].items
                if d.owner_org_id != actor.org_id and d.sharing_class != "not_shared"
            ],
        },
    )


@router.post("/exchange/requests/new", response_class=HTMLResponse)
async def create_request(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        data = RequestIn(
            dataset=str(form.get("dataset") or ""),
            purpose=str(form.get("purpose") or ""),
            legal_basis=str(form.get("legal_basis") or ""),
            columns=[str(c) for c in form.getlist("columns")],
            row_filter=row_scope_from_form(form),
            min_version=int(str(form.get("min_version")))
            if is_number(str(form.get("min_version") or ""))
            else None,
            starts_on=str(form.get("starts_on") or ""),  # type: ignore[arg-type]
            expires_on=str(form.get("expires_on") or ""),  # type: ignore[arg-type]
            mode=str(form.get("mode") or "query"),  # type: ignore[arg-type]
            submit=form.get("action") != "draft",
        )
    except ValidationError as exc:
        raise _first_error(exc) from exc
    created = service.create_request(session=session, actor=actor, data=data)
    return redirect(f"/exchange/requests/{created.id}")


@router.get("/exchange/requests/{request_id}", response_class=HTMLResponse)
def show_request(request_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    return _request_page(request_id, request, session, actor)


def _request_page(
    request_id: int, request: Request, session: Any, actor: Any, secret: str | None = None
) -> Response:
    found = service.get_request_or_raise(session=session, actor=actor, request_id=request_id)
    service.refresh(session, only=found.id)
    dataset = catalog.get_or_raise(session=session, dataset=found.dataset_id)
    grant = service.grant_of(session, found.id)
    owner_side = actor.org_id == found.owner_org_id and can(
        actor, "exchange.answer", org_id=found.owner_org_id
    )
    bureau = actor.is_platform_admin and actor.org_id != found.owner_org_id
    ctx: dict[str, Any] = {
        "r": found,
        "d": dataset,
        "grant": grant,
        "live": service.is_live(grant) if grant else False,
        "orgs": _orgs(session, actor),
        "overdue": service.is_overdue(found),
        "can_answer": found.state == "submitted" and (owner_side or (bureau and service.is_overdue(found))),
        "can_revoke": found.state in {"approved", "narrowed", "active"} and (owner_side or bureau),
        "can_reassign": found.state == "submitted" and bureau,
        "is_requester": actor.org_id == found.requester_org_id,
        "ops": FORM_OPS,
        "conditions": range(CONDITIONS),
        "subscription": service.subscription_of(session, grant.id) if grant else None,
        "deliveries": service.deliveries(session=session, actor=actor, grant_id=grant.id) if grant else [],
        "secret": secret,
    }
    return render(request, "exchange/request.html", ctx)


@router.post("/exchange/requests/{request_id}/{action}", response_class=HTMLResponse)
async def act(
    request_id: int, action: str, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    reason = str(form.get("reason") or "")
    match action:
        case "submit":
            service.submit(session=session, actor=actor, request_id=request_id)
        case "approve":
            service.approve(session=session, actor=actor, request_id=request_id)
        case "reject":
            service.reject(session=session, actor=actor, request_id=request_id, reason=reason)
        case "revoke":
            service.revoke(session=session, actor=actor, request_id=request_id, reason=reason)
        case "reassign":
            service.reassign(
                session=session,
                actor=actor,
                request_id=request_id,
                assignee=str(form.get("assignee") or ""),
                reason=reason,
            )
        case "narrow":
            expires = str(form.get("expires_on") or "")
            starts = str(form.get("starts_on") or "")
            try:
                data = NarrowIn(
                    reason=reason,
                    columns=[str(c) for c in form.getlist("columns")] or None,
                    row_filter=row_scope_from_form(form),
                    starts_on=starts or None,  # type: ignore[arg-type]
                    expires_on=expires or None,  # type: ignore[arg-type]
                )
            except ValidationError as exc:
                raise _first_error(exc) from exc
            service.narrow(session=session, actor=actor, request_id=request_id, data=data)
        case _:
            raise Invalid(f"unknown action {action!r}", detail={"action": action})
    return redirect(f"/exchange/requests/{request_id}")


@router.post("/exchange/grants/{grant_id}/subscription", response_class=HTMLResponse)
async def subscribe(grant_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    subscription, secret = service.set_subscription(
        session=session, actor=actor, grant_id=grant_id, webhook_url=str(form.get("webhook_url") or "")
    )
    del subscription
    grant = service.get_grant_or_raise(session=session, actor=actor, grant_id=grant_id)
    if secret:  # shown once, on this response only
        return _request_page(grant.request_id, request, session, actor, secret=secret)
    return redirect(f"/exchange/requests/{grant.request_id}")


@router.get("/exchange/usage/{slug}", response_class=HTMLResponse)
def usage(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    dataset = catalog.get_or_raise(session=session, dataset=slug)
    rows = service.usage(session=session, actor=actor, dataset=dataset.id)
    return render(request, "exchange/usage.html", {"d": dataset, "rows": rows, "orgs": _orgs(session, actor)})


@router.get("/exchange/calendar", response_class=HTMLResponse)
def calendar(request: Request, session: SessionDep, actor: PageActor, year: str = "") -> Response:
    service.authorize_read(actor)
    chosen = int(year) if is_number(year) and 2000 <= int(year) <= 2100 else None
    days = workdays.calendar_days(session, chosen)
    return render(
        request,
        "exchange/calendar.html",
        {
            "days": days,
            "year": chosen or clock.now().astimezone(get_settings().tz).year,
            "can_edit": can(actor, "exchange.calendar"),
        },
    )


@router.post("/exchange/calendar", response_class=HTMLResponse)
async def edit_calendar(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        day = date.fromisoformat(str(form.get("day") or ""))
    except ValueError as exc:
        raise Invalid("day: not a date (YYYY-MM-DD)", detail={"field": "day"}) from exc
    if form.get("action") == "remove":
        workdays.remove_day(session, actor=actor, day=day)
    else:
        workdays.set_day(
            session,
            actor=actor,
            day=day,
            name=str(form.get("name") or ""),
            is_workday=form.get("kind") == "workday",
        )
    return redirect(f"/exchange/calendar?year={day.year}")


@router.get("/exchange/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, actor: PageActor) -> Response:
    data = dashboard_figures.figures(session=session, actor=actor)
    datasets = {d.id: d for d in catalog.list_datasets(session=session, actor=actor, limit=500)[0].items}
    orgs = _orgs(session, actor)
    language = current_language.get()

    def org_name(org_id: int | None) -> str:
        org = orgs.get(org_id) if org_id is not None else None
        return (org.name_zh if language == "zh-CN" else org.name_en or org.name_zh) if org else ""

    states = sorted(data["requests_by_state"])
    reads = data["reads"][:20]
    charts = {
        "states": {"x": [gettext(s) for s in states], "y": [data["requests_by_state"][s] for s in states]},
        "reads": {
            "x": [
                f"{datasets[r['dataset_id']].title(language) if r['dataset_id'] in datasets else r['dataset_id']}"
                f" · {org_name(r['org_id'])}"
                for r in reads
            ],
            "y": [r["reads"] for r in reads],
        },
    }
    return render(
        request,
        "exchange/dashboard.html",
        {
            "f": data,
            "orgs": orgs,
            "datasets": datasets,
            "figures": list(dashboard_figures.FIGURES),
            "charts": charts,
        },
    )


@router.post("/exchange/dashboard/publish", response_class=HTMLResponse)
async def publish(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    dashboard_figures.publish(session=session, actor=actor)
    return redirect("/exchange/dashboard")


@router.get("/exchange/issues", response_class=HTMLResponse)
def issue_list(request: Request, session: SessionDep, actor: PageActor, box: str = "incoming") -> Response:
    page = issues.list_issues(session=session, actor=actor, box=box, limit=200)
    datasets = {d.id: d for d in catalog.list_datasets(session=session, actor=actor, limit=500)[0].items}
    return render(request, "exchange/issues.html", {"items": page.items, "box": box, "datasets": datasets})


@router.get("/exchange/issues/new", response_class=HTMLResponse)
def new_issue(request: Request, session: SessionDep, actor: PageActor, dataset: str) -> Response:
    found = catalog.read_dataset(session=session, actor=actor, dataset=dataset)
    return render(request, "exchange/issue_new.html", {"d": found, "kinds": issues.KINDS})


@router.post("/exchange/issues/new", response_class=HTMLResponse)
async def file_issue(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    dataset = catalog.read_dataset(session=session, actor=actor, dataset=str(form.get("dataset") or ""))
    keys = {c.name: str(form.get(f"key_{c.name}") or "").strip() for c in dataset.columns if c.is_key}
    issue = issues.file_issue(
        session=session,
        actor=actor,
        dataset=dataset.id,
        kind=str(form.get("kind") or ""),
        problem=str(form.get("problem") or ""),
        key_values={k: v for k, v in keys.items() if v} or None,
        column=str(form.get("column") or ""),
        suggested_value=str(form.get("suggested_value") or ""),
        period=str(form.get("period") or ""),
    )
    return redirect(f"/exchange/issues/{issue.id}")


@router.get("/exchange/issues/{issue_id}", response_class=HTMLResponse)
def show_issue(issue_id: int, request: Request, session: SessionDep, actor: PageActor) -> Response:
    issue = issues.get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    dataset = catalog.get_or_raise(session=session, dataset=issue.dataset_id)
    owner_side = can(actor, "exchange.answer", org_id=issue.owner_org_id) and (
        actor.org_id == issue.owner_org_id or actor.is_platform_admin
    )
    reporter = actor.user_id == issue.reporter_user_id or actor.org_id == issue.reporter_org_id
    return render(
        request,
        "exchange/issue.html",
        {
            "i": issue,
            "d": dataset,
            "thread": issues.thread(session=session, actor=actor, issue_id=issue.id),
            "owner_side": owner_side,
            "reporter": reporter,
            "has_keys": any(c.is_key for c in dataset.columns),
        },
    )


@router.post("/exchange/issues/{issue_id}/{action}", response_class=HTMLResponse)
async def issue_action(
    issue_id: int, action: str, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    reason = str(form.get("reason") or "")
    match action:
        case "triage":
            issues.triage(
                session=session,
                actor=actor,
                issue_id=issue_id,
                state=str(form.get("state") or ""),
                reason=reason,
            )
        case "comment":
            issues.comment(session=session, actor=actor, issue_id=issue_id, body=str(form.get("body") or ""))
        case "fix":
            version = str(form.get("version") or "")
            if not is_number(version):
                raise Invalid(
                    "version: give the number of the version that fixes the issue",
                    detail={"field": "version"},
                )
            issues.fix_with_version(
                session=session, actor=actor, issue_id=issue_id, version=int(version), note=reason
            )
        case "edit":
            issues.fix_by_edit(
                session=session,
                actor=actor,
                issue_id=issue_id,
                value=str(form.get("value") or ""),
                reason=reason,
            )
        case "confirm":
            issues.confirm(session=session, actor=actor, issue_id=issue_id)
        case "reopen":
            issues.reopen(session=session, actor=actor, issue_id=issue_id, reason=reason)
        case _:
            raise Invalid(f"unknown action {action!r}", detail={"action": action})
    return redirect(f"/exchange/issues/{issue_id}")


@router.get("/exchange/derived", response_class=HTMLResponse)
def derived_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    items = derived_datasets.list_derived(session=session, actor=actor)
    views = (
        derived_datasets.granted_views(session=session, actor=actor)
        if can(actor, "exchange.request", org_id=actor.org_id)
        else []
    )
    return render(request, "exchange/derived.html", {"items": items, "views": views})


@router.post("/exchange/derived", response_class=HTMLResponse)
async def create_derived(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    slug = str(form.get("slug") or "").strip()
    if not slug:
        raise Invalid("slug: give the new dataset an identifier", detail={"field": "slug"})
    derived_datasets.create(
        session=session,
        actor=actor,
        slug=slug,
        title_zh=str(form.get("title_zh") or slug),
        title_en=str(form.get("title_en") or ""),
        sql=str(form.get("sql") or ""),
    )
    return redirect(f"/exchange/lineage/{slug}")


@router.post("/exchange/derived/{slug}/refresh", response_class=HTMLResponse)
async def refresh_derived(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    derived_datasets.refresh(session=session, actor=actor, dataset=slug)
    return redirect(f"/exchange/lineage/{slug}")


@router.get("/exchange/lineage/{slug}", response_class=HTMLResponse)
def lineage_page(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    graph = derived_datasets.lineage(session=session, actor=actor, dataset=slug)
    layout = _layout(graph)
    return render(request, "exchange/lineage.html", {"slug": slug, "graph": graph, "layout": layout})


def _layout(graph: dict[str, Any]) -> dict[str, Any]:
    """Positions for a left-to-right drawing: each node's column is its distance from the roots."""
    ids = [n["id"] for n in graph["nodes"]]
    depth = dict.fromkeys(ids, 0)
    for _ in ids:  # longest-path layering; the graph is small and acyclic
        for e in graph["edges"]:
            if e["from"] in depth and e["to"] in depth:
                depth[e["to"]] = max(depth[e["to"]], depth[e["from"]] + 1)
    columns: dict[int, list[int]] = {}
    for node_id in ids:
        columns.setdefault(depth[node_id], []).append(node_id)
    width, height, box_w, box_h = 220, 70, 180, 44
    pos = {}
    for col, members in columns.items():
        for row, node_id in enumerate(members):
            pos[node_id] = (20 + col * width, 20 + row * height)
    return {
        "pos": pos,
        "box_w": box_w,
        "box_h": box_h,
        "width": 40 + max(columns, default=0) * width + box_w,
        "height": 40 + max((len(m) for m in columns.values()), default=1) * height,
    }
