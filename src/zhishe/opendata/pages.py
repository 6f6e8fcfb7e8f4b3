"""The public portal's pages (no login), and the owner's pages for opening a dataset.

Public: home, catalog search with facets, dataset pages with preview, chart, downloads, changelog
and a problem form, release pages with their risk report, data requests, statistics, the overdue
list and the developer page. Staff: a dataset's open settings, drafts and publishing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from zhishe.catalog import service as catalog
from zhishe.core.auth import Actor, can
from zhishe.core.context import current_language
from zhishe.core.deps import OptionalActor, SessionDep, optional_actor
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.opendata import apptokens, datarequests, portal, queries, service, stats
from zhishe.opendata.catalogue import local_date
from zhishe.opendata.models import Release

router = APIRouter(include_in_schema=False)

_PREVIEW_ROWS = 25


def _language() -> str:
    return current_language.get()


@router.get("/opendata", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> HTMLResponse:
    """The portal's home: featured and recently updated datasets, and the headline figures."""
    hits, facets = portal.search(session=session, language=_language())
    featured = [h for h in hits if h.opened.settings.featured][:6]
    recent = sorted(
        hits, key=lambda h: h.opened.latest.published_at or h.opened.latest.created_at, reverse=True
    )[:8]
    return render(
        request,
        "opendata/home.html",
        {
            "featured": featured,
            "recent": recent,
            "figures": stats.figures(session),
            "themes": facets["theme"],
        },
    )


@router.get("/opendata/datasets", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    session: SessionDep,
    q: str = "",
    theme: str = "",
    publisher: str = "",
    format: str = "",
    cadence: str = "",
    timeliness: str = "",
) -> HTMLResponse:
    """Search with facets."""
    chosen = {
        "q": q,
        "theme": theme,
        "publisher": publisher,
        "format": format,
        "cadence": cadence,
        "timeliness": timeliness,
    }
    hits, facets = portal.search(
        session=session,
        q=q,
        theme=theme,
        publisher=publisher,
        fmt=format,
        cadence=cadence,
        timely=timeliness,
        language=_language(),
    )

    def toggle(name: str, value: str) -> str:
        params = {k: v for k, v in chosen.items() if v}
        if params.get(name) == value:
            params.pop(name)
        else:
            params[name] = value
        return "/opendata/datasets" + (f"?{urlencode(params)}" if params else "")

    return render(
        request,
        "opendata/catalog.html",
        {"hits": hits, "facets": facets, "chosen": chosen, "toggle": toggle, "facet_names": portal.FACETS},
    )


def _preview(
    session: Any, slug: str, version: int | None, params: dict[str, str]
) -> tuple[queries.QueryResult | None, str]:
    try:
        return queries.run(
            session=session, slug=slug, params=params, version=version, count_api_call=False
        ), ""
    except ZhisheError as exc:
        return None, exc.message


@router.get("/opendata/datasets/{slug}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    slug: str,
    session: SessionDep,
    actor: OptionalActor,
    version: int | None = None,
    order: str = "",
    where: str = "",
    column: str = "",
    value: str = "",
    next: str = "",
) -> HTMLResponse:
    """An open dataset: metadata, schema, preview, chart, timeliness, usage, changelog, downloads."""
    opened = service.public_dataset(session=session, slug=slug)
    release = service.public_release(opened, version)
    params: dict[str, str] = {"$limit": str(_PREVIEW_ROWS)}
    if order:
        params["$order"] = order
    if where:
        params["$where"] = where
    if column and value:
        params[column] = value
    if next:
        params["$next"] = next
    result, problem = _preview(session, slug, release.number, params)
    keep = {
        k: v
        for k, v in {
            "version": str(version) if version else "",
            "where": where,
            "column": column,
            "value": value,
        }.items()
        if v
    }

    def sort_link(name: str) -> str:
        direction = "DESC" if order == f"{name} ASC" or order == name else "ASC"
        return f"/opendata/datasets/{slug}?{urlencode({**keep, 'order': f'{name} {direction}'})}"

    next_link = (
        f"/opendata/datasets/{slug}?{urlencode({**keep, **({'order': order} if order else {}), 'next': result.next_token})}"
        if result is not None and result.next_token
        else ""
    )
    info = service.describe(session, opened, _language())
    manage = actor is not None and can(actor, "opendata.publish", org_id=opened.dataset.owner_org_id)
    return render(
        request,
        "opendata/dataset.html",
        {
            "opened": opened,
            "d": opened.dataset,
            "release": release,
            "info": info,
            "result": result,
            "problem": problem,
            "order": order,
            "where": where,
            "column": column,
            "value": value,
            "sort_link": sort_link,
            "next_link": next_link,
            "paged": bool(next),
            "first_link": f"/opendata/datasets/{slug}?{urlencode({**keep, **({'order': order} if order else {})})}",
            "formats": portal.formats_of(opened),
            "manage": manage,
            "chart": service.chart_of(opened.settings.chart, release.columns, opened.dataset.time_column),
            "kinds": ("value", "missing_period", "definition"),
            "version_param": f"?version={release.number}" if version else "",
            # the release's span as local dates (stored in UTC, which may be the day before)
            "period": (local_date(release.temporal_start), local_date(release.temporal_end)),
        },
    )


@router.get("/opendata/datasets/{slug}/releases/{number}", response_class=HTMLResponse)
def release_page(request: Request, slug: str, number: int, session: SessionDep) -> HTMLResponse:
    """A published release: its policy, risk report and changelog entry."""
    opened = service.public_dataset(session=session, slug=slug)
    release = service.public_release(opened, number)
    return render(request, "opendata/release.html", {"opened": opened, "d": opened.dataset, "r": release})


@router.post("/opendata/datasets/{slug}/problems", response_class=HTMLResponse)
async def report_problem(request: Request, slug: str, session: SessionDep) -> HTMLResponse:
    """The "report a problem with this data" form."""
    form = await request.form()
    check_csrf(request, form)
    opened = service.public_dataset(session=session, slug=slug)
    release_text = str(form.get("release") or "")
    try:
        issue = service.report_problem(
            session=session,
            slug=slug,
            kind=str(form.get("kind") or "value"),
            problem=str(form.get("problem") or ""),
            column=str(form.get("column") or ""),
            period=str(form.get("period") or ""),
            contact=str(form.get("contact") or ""),
            release=int(release_text) if release_text.isdigit() else None,
        )
    except Invalid as exc:
        return render(
            request, "opendata/reported.html", {"d": opened.dataset, "error": exc.message}, status=422
        )
    return render(request, "opendata/reported.html", {"d": opened.dataset, "issue": issue})


@router.get("/opendata/requests", response_class=HTMLResponse)
def requests_page(
    request: Request, session: SessionDep, actor: OptionalActor, state: str = ""
) -> HTMLResponse:
    """Public data requests."""
    found = datarequests.list_requests(session=session, state=state or None)
    return render(
        request,
        "opendata/requests.html",
        {
            "requests": [datarequests.view(session, r, actor) for r in found],
            "state": state,
            "states": (*datarequests.STATES, "overdue"),
            "counts": datarequests.counts(session),
        },
    )


@router.get("/opendata/requests/new", response_class=HTMLResponse)
def new_request_page(request: Request, session: SessionDep, dataset: str = "") -> HTMLResponse:
    """Ask for data that is not open yet."""
    return render(
        request,
        "opendata/request_new.html",
        {"owners": datarequests.owners(session), "dataset": dataset, "days": datarequests.reply_days()},
    )


@router.post("/opendata/requests/new", response_class=HTMLResponse)
async def file_request(request: Request, session: SessionDep) -> Any:
    """File a data request from the form."""
    form = await request.form()
    check_csrf(request, form)
    owner = str(form.get("owner_org_id") or "")
    values = {
        "title": str(form.get("title") or ""),
        "description": str(form.get("description") or ""),
        "purpose": str(form.get("purpose") or ""),
        "contact": str(form.get("contact") or ""),
        "dataset": str(form.get("dataset") or "") or None,
        "owner_org_id": int(owner) if owner.isdigit() else None,
    }
    try:
        found = datarequests.file_request(session=session, **values)  # type: ignore[arg-type]
    except Invalid as exc:
        return render(
            request,
            "opendata/request_new.html",
            {
                "owners": datarequests.owners(session),
                "dataset": values["dataset"] or "",
                "error": exc.message,
                "values": values,
                "days": datarequests.reply_days(),
            },
            status=422,
        )
    return redirect(f"/opendata/requests/{found.id}?filed=1")


@router.get("/opendata/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request: Request, request_id: int, session: SessionDep, actor: OptionalActor, filed: int = 0
) -> HTMLResponse:
    """One data request, with the owner's answer form when the visitor may answer it."""
    found = datarequests.get_or_raise(session=session, request_id=request_id)
    may_answer = actor is not None and can(actor, "opendata.answer", org_id=found.owner_org_id)
    return render(
        request,
        "opendata/request.html",
        {
            "v": datarequests.view(session, found, actor),
            "r": found,
            "filed": filed,
            "may_answer": may_answer,
            "owners": datarequests.owners(session) if may_answer else [],
        },
    )


@router.post("/opendata/requests/{request_id}/support", response_class=HTMLResponse)
async def support_request(
    request: Request, request_id: int, session: SessionDep, actor: OptionalActor
) -> RedirectResponse:
    """Support a request."""
    from zhishe.opendata.api import supporter_of

    form = await request.form()
    check_csrf(request, form)
    datarequests.support(session=session, request_id=request_id, who=supporter_of(request, actor))
    return redirect(f"/opendata/requests/{request_id}")


@router.post("/opendata/requests/{request_id}/close", response_class=HTMLResponse)
async def close_request(request: Request, request_id: int, session: SessionDep, actor: PageActor) -> Any:
    """Answer, decline or route a request (its owner or the data bureau)."""
    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    if action == "answer":
        number = str(form.get("release") or "")
        datarequests.answer(
            session=session,
            actor=actor,
            request_id=request_id,
            dataset=str(form.get("dataset") or ""),
            number=int(number) if number.isdigit() else None,
        )
    elif action == "decline":
        datarequests.decline(
            session=session, actor=actor, request_id=request_id, reason=str(form.get("reason") or "")
        )
    elif action == "route":
        owner = str(form.get("owner_org_id") or "")
        if not owner.isdigit():
            raise Invalid("choose a department from the list", detail={"field": "owner_org_id"})
        datarequests.route(session=session, actor=actor, request_id=request_id, owner_org_id=int(owner))
    else:
        raise Invalid("action must be answer, decline or route", detail={"field": "action"})
    return redirect(f"/opendata/requests/{request_id}")


@router.get("/opendata/statistics", response_class=HTMLResponse)
def statistics_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The portal's public figures."""
    figures = stats.figures(session)
    return render(
        request, "opendata/statistics.html", {"f": figures, "figures_json": json.dumps(figures, default=str)}
    )


@router.get("/opendata/overdue", response_class=HTMLResponse)
def overdue_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Open datasets whose next release is late."""
    hits, _facets = portal.search(session=session, timely="overdue", language=_language())
    return render(request, "opendata/overdue.html", {"hits": hits})


@router.get("/opendata/developers", response_class=HTMLResponse)
def developers_page(
    request: Request, session: SessionDep, actor: Annotated[Actor | None, Depends(optional_actor)]
) -> HTMLResponse:
    """How to use the API, and the visitor's app tokens when signed in."""
    tokens = apptokens.list_mine(session=session, actor=actor) if actor is not None and actor.user_id else []
    return render(
        request,
        "opendata/developers.html",
        {"tokens": tokens, "new_secret": None, "opened": service.published_datasets(session)[:1]},
    )


@router.post("/opendata/developers/tokens", response_class=HTMLResponse)
async def create_token(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Register an application; the token is shown once."""
    form = await request.form()
    check_csrf(request, form)
    _token, secret = apptokens.create(session=session, actor=actor, name=str(form.get("name") or ""))
    tokens = apptokens.list_mine(session=session, actor=actor)
    return render(request, "opendata/developers.html", {"tokens": tokens, "new_secret": secret, "opened": []})


@router.post("/opendata/developers/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke_token(
    request: Request, token_id: int, session: SessionDep, actor: PageActor
) -> RedirectResponse:
    """Revoke an app token."""
    form = await request.form()
    check_csrf(request, form)
    apptokens.revoke(session=session, actor=actor, token_id=token_id)
    return redirect("/opendata/developers")


# -- the owner's pages --------------------------------------------------------------------------------


@router.get("/opendata/manage/{slug}", response_class=HTMLResponse)
def manage_page(request: Request, slug: str, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Open settings, drafts with their risk reports, and publishing."""
    found = catalog.get_or_raise(session=session, dataset=slug)
    settings = service.read_settings(session=session, actor=actor, dataset=slug)
    drafts = service.drafts_of(session=session, actor=actor, dataset=slug)
    published = service.releases_of(session, found.id)
    return render(
        request,
        "opendata/manage.html",
        {
            "d": found,
            "s": settings,
            "policy_json": json.dumps(
                settings.policy or service.suggested_policy(found), ensure_ascii=False, indent=2
            ),
            "drafts": drafts,
            "published": published,
            "cadences": service.CADENCES,
        },
    )


@router.post("/opendata/manage/{slug}", response_class=HTMLResponse)
async def manage_post(request: Request, slug: str, session: SessionDep, actor: PageActor) -> Any:
    """Save settings, draft, publish or discard."""
    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    if action in {"save", "draft"}:
        text = str(form.get("policy") or "").strip()
        try:
            policy = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise Invalid(
                T("the policy is not valid JSON: {error}", error=str(exc)), detail={"field": "policy"}
            ) from exc
        if not isinstance(policy, dict):
            raise Invalid("the policy must be a JSON object", detail={"field": "policy"})
        order = [c.strip() for c in str(form.get("order_by") or "").split(",") if c.strip()]
        service.configure(
            session=session,
            actor=actor,
            dataset=slug,
            policy=policy,
            cadence=str(form.get("cadence") or "irregular"),
            order_by=order,
        )
        if action == "draft":
            service.draft_release(session=session, actor=actor, dataset=slug)
    elif action == "publish":
        service.publish_release(
            session=session,
            actor=actor,
            release_id=_release_id(form.get("release_id")),
            note=str(form.get("note") or ""),
        )
    elif action == "discard":
        service.discard(session=session, actor=actor, release_id=_release_id(form.get("release_id")))
    else:
        raise Invalid("unknown action", detail={"field": "action"})
    return redirect(f"/opendata/manage/{slug}")


def _release_id(value: Any) -> int:
    text = str(value or "")
    if not text.isdigit():
        raise Invalid("name the draft", detail={"field": "release_id"})
    return int(text)


def release_label(release: Release) -> str:
    """How a release is named in lists."""
    return f"#{release.number}" if release.number else f"draft {release.id}"
