"""HTML pages of the catalog: search, dataset page (metadata, schema, versions, quality, preview,
chart), the import wizard with its progress display, and the diff between versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from zhishe.catalog import flows, lake, reads, service
from zhishe.catalog.access import read_scope
from zhishe.catalog.api import receive_upload
from zhishe.catalog.schemas import CADENCES, ColumnIn, DatasetCreate, DatasetUpdate, SharingClass
from zhishe.catalog.types import Classification, ColumnType
from zhishe.core import jobs
from zhishe.core.accounts import service as accounts
from zhishe.core.auth import can
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.pagination import is_number
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render

router = APIRouter(include_in_schema=False)

_NUMERIC = {ColumnType.INTEGER.value, ColumnType.DECIMAL.value}
_TEMPORAL = {ColumnType.DATE.value, ColumnType.DATETIME.value}
_BUCKET = {
    "hourly": "hour",
    "continuous": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "month",
    "annual": "year",
}
_OPS = ["=", "!=", "<", "<=", ">", ">=", "contains", "starts_with", "is_null", "not_null"]


def _orgs_by_id(session: Any, actor: Any) -> dict[int, Any]:
    return {o.id: o for o in accounts.list_orgs(session=session, actor=actor, limit=1000).items}


@router.get("/catalog", response_class=HTMLResponse)
def catalog(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    q: str = "",
    theme: str = "",
    owner: str = "",
    sharing_class: str = "",
    cadence: str = "",
    overdue: str = "",
    after: str = "",
) -> Response:
    if owner and not is_number(owner):
        raise Invalid("owner must be an organisation id", detail={"parameter": "owner"})
    page, facets = service.list_datasets(
        session=session,
        actor=actor,
        q=q or None,
        theme=theme or None,
        owner_org_id=int(owner) if owner else None,
        sharing_class=sharing_class or None,
        cadence=cadence or None,
        overdue=overdue == "1",
        after=after or None,
    )
    selected = {
        "q": q,
        "theme": theme,
        "owner": owner,
        "sharing_class": sharing_class,
        "cadence": cadence,
        "overdue": overdue,
    }
    return render(
        request,
        "catalog/list.html",
        {
            "datasets": page.items,
            "next": page.next,
            "facets": facets,
            "selected": selected,
            "orgs": _orgs_by_id(session, actor),
            "overdue": service.is_overdue,
            "restricted": service.is_restricted,
            "can_create": can(actor, "dataset.write", org_id=actor.org_id),
        },
    )


@router.get("/datasets/new", response_class=HTMLResponse)
def new_dataset(request: Request, session: SessionDep, actor: PageActor) -> Response:
    return render(
        request,
        "catalog/new.html",
        {"cadences": CADENCES, "classes": list(SharingClass), "orgs": _orgs_by_id(session, actor)},
    )


@router.post("/datasets/new", response_class=HTMLResponse)
async def create_dataset(request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    data: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    data["keywords"] = [
        k.strip() for k in data.get("keywords", "").replace("，", ",").split(",") if k.strip()
    ]
    for key in ("temporal_start", "temporal_end", "owner_org_id", "time_column"):
        if not data.get(key):
            data.pop(key, None)
    try:
        dataset_in = DatasetCreate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{'.'.join(map(str, first['loc'])) or 'form'}: {first['msg']}") from exc
    dataset = service.create_dataset(session=session, actor=actor, dataset_in=dataset_in)
    return redirect(f"/datasets/{dataset.slug}/import")


def _chart_defaults(dataset: Any, columns: list[Any]) -> dict[str, Any] | None:
    numeric = [c for c in columns if c.type in _NUMERIC and not c.is_key]
    if not numeric:
        return None
    temporal = [c for c in columns if c.type in _TEMPORAL]
    x = next((c for c in temporal if c.name == dataset.time_column), temporal[0] if temporal else None)
    if x is not None:
        return {
            "kind": "time",
            "x": x.name,
            "bucket": _BUCKET.get(dataset.accrual_periodicity, "day"),
            "measures": [c.name for c in numeric],
        }
    categories = [c for c in columns if c.type == ColumnType.STRING.value and not c.is_key]
    if categories:
        return {
            "kind": "category",
            "x": categories[0].name,
            "measures": [c.name for c in numeric],
            "categories": [c.name for c in categories],
        }
    return None


def _columns_from_form(form: Any) -> list[ColumnIn]:
    """The column table of a form (col_count, col_name_i, col_type_i, col_unit_i, col_class_i,
    col_desc_i and the col_key check boxes)."""
    raw_count = str(form.get("col_count") or "0")
    if not is_number(raw_count) or int(raw_count) > 1000:
        raise Invalid("col_count must be a number up to 1000", detail={"field": "col_count"})
    key_names = set(form.getlist("col_key"))
    try:
        return [
            ColumnIn(
                name=str(form.get(f"col_name_{i}")),
                type=str(form.get(f"col_type_{i}")),  # type: ignore[arg-type]
                unit=str(form.get(f"col_unit_{i}") or ""),
                description=str(form.get(f"col_desc_{i}") or ""),
                classification=str(form.get(f"col_class_{i}") or "internal"),  # type: ignore[arg-type]
                is_key=str(form.get(f"col_name_{i}")) in key_names,
            )
            for i in range(int(raw_count))
        ]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"column {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


@router.get("/datasets/{slug}/edit", response_class=HTMLResponse)
def edit_form(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    dataset = service.read_dataset(session=session, actor=actor, dataset=slug)
    if not can(actor, "dataset.write", org_id=dataset.owner_org_id):
        from zhishe.core.errors import Forbidden

        raise Forbidden(f"you may not edit dataset {dataset.slug}")
    return render(
        request,
        "catalog/edit.html",
        {
            "d": dataset,
            "cadences": CADENCES,
            "classes": list(SharingClass),
            "types": list(ColumnType),
            "class_levels": list(Classification),
        },
    )


@router.post("/datasets/{slug}/edit", response_class=HTMLResponse)
async def edit(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str) and k in DatasetUpdate.model_fields}
    data: dict[str, Any] = dict(fields)
    data["keywords"] = [
        k.strip() for k in fields.get("keywords", "").replace("，", ",").split(",") if k.strip()
    ]
    data["time_column"] = fields.get("time_column") or None
    if form.get("col_count"):
        data["columns"] = _columns_from_form(form)
    try:
        update = DatasetUpdate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{'.'.join(map(str, first['loc'])) or 'form'}: {first['msg']}") from exc
    found = service.update_dataset(session=session, actor=actor, dataset=slug, dataset_in=update)
    return redirect(f"/datasets/{found.slug}?tab=versions")


@router.get("/datasets/{slug}", response_class=HTMLResponse)
def dataset_page(
    slug: str,
    request: Request,
    session: SessionDep,
    actor: PageActor,
    tab: str = "overview",
    after: str = "",
    version: str = "",
    fcol: str = "",
    fop: str = "=",
    fval: str = "",
    order: str = "",
) -> Response:
    dataset = service.read_dataset(session=session, actor=actor, dataset=slug)
    restricted = service.is_restricted(actor, dataset)
    ctx: dict[str, Any] = {
        "d": dataset,
        "tab": tab,
        "restricted": restricted,
        "owner": accounts.get_org_or_raise(session=session, org_id=dataset.owner_org_id),
        "overdue": service.is_overdue(dataset),
        "can_write": can(actor, "dataset.write", org_id=dataset.owner_org_id),
        "can_request": (
            dataset.owner_org_id != actor.org_id
            and dataset.sharing_class != SharingClass.NOT_SHARED
            and can(actor, "exchange.request", org_id=actor.org_id)
        ),
        "ops": _OPS,
    }
    if restricted:
        return render(request, "catalog/dataset.html", ctx | {"tab": "overview"})
    try:
        readable = read_scope(session=session, actor=actor, dataset=dataset, audit_refusal=False).columns
        ctx["readable"] = {c.name for c in readable}
        ctx["row_error"] = None
    except ZhisheError as exc:
        readable, ctx["readable"], ctx["row_error"] = [], set(), exc.message
    if tab == "versions":
        ctx["versions"] = reads.list_versions(session=session, actor=actor, dataset=dataset.id)
        ctx["changes"] = reads.list_definition_changes(session=session, actor=actor, dataset=dataset.id)
        ctx["jobs"] = service.jobs_of(session=session, dataset_id=dataset.id) if ctx["can_write"] else []
    elif tab == "quality":
        versions = reads.list_versions(session=session, actor=actor, dataset=dataset.id)
        chosen = int(version) if is_number(version) else dataset.current_version
        ctx["versions"] = versions
        ctx["profile_version"] = next((v for v in versions if v.version == chosen), None)
        if ctx["profile_version"] is not None and readable:
            try:
                ctx["profile"] = reads.read_profile(
                    session=session, actor=actor, dataset=dataset.id, version=chosen
                )
            except ZhisheError as exc:  # e.g. a grant limited to some rows: no whole-version profile
                ctx["row_error"] = exc.message
    elif tab == "preview" and readable and dataset.current_version is not None:
        where = None
        if fcol:
            where = (
                {"column": fcol, "op": fop}
                if fop in {"is_null", "not_null"}
                else {"column": fcol, "op": fop, "value": fval}
            )
        order_by = None
        if order:
            name, _, direction = order.partition(":")
            order_by = [(name, direction or "asc")]
        page = reads.read_rows(
            session=session,
            actor=actor,
            dataset=dataset.id,
            version=int(version) if is_number(version) else None,
            where=where,
            order=order_by,
            after=after or None,
            limit=25,
            with_total=not after,
        )
        ctx.update(
            page=page,
            rows=_display_rows(dataset, page.rows),
            filters={"fcol": fcol, "fop": fop, "fval": fval, "order": order, "version": version},
        )
    elif tab == "chart" and readable and dataset.current_version is not None:
        ctx["chart"] = _chart_defaults(dataset, [c for c in dataset.columns if c.name in ctx["readable"]])
    return render(request, "catalog/dataset.html", ctx)


@router.get("/datasets/{slug}/diff", response_class=HTMLResponse)
def diff_page(
    slug: str, request: Request, session: SessionDep, actor: PageActor, a: int = -1, b: int = -1
) -> Response:
    dataset = service.read_dataset(session=session, actor=actor, dataset=slug)
    latest = dataset.current_version or 0
    to_version = b if b >= 0 else latest
    from_version = a if a >= 0 else max(to_version - 1, 0)
    result = reads.diff_versions(
        session=session, actor=actor, dataset=dataset.id, from_version=from_version, to_version=to_version
    )
    return render(
        request,
        "catalog/diff.html",
        {"d": dataset, "diff": reads.diff_to_dict(result), "a": from_version, "b": to_version},
    )


@router.get("/datasets/{slug}/import", response_class=HTMLResponse)
def import_form(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    dataset = service.read_dataset(session=session, actor=actor, dataset=slug)
    if not can(actor, "dataset.write", org_id=dataset.owner_org_id):
        from zhishe.core.errors import Forbidden

        raise Forbidden(f"you may not import into dataset {dataset.slug}")
    return render(request, "catalog/import.html", {"d": dataset, "limit_mb": get_settings().max_upload_mb})


@router.post("/datasets/{slug}/import", response_class=HTMLResponse)
async def upload(slug: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    path, name, fields = await receive_upload(request, None)
    check_csrf(request, fields)  # type: ignore[arg-type]
    job = flows.stage_file(session=session, actor=actor, dataset=slug, filename=name, source=path)
    return redirect(f"/imports/{job.id}")


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    job = flows.get_job_or_raise(session=session, actor=actor, job_id=job_id)
    dataset = service.get_or_raise(session=session, dataset=job.dataset_id)
    ctx: dict[str, Any] = {
        "job": job,
        "d": dataset,
        "report": flows.job_report(job),
        "preview": None,
        "types": list(ColumnType),
        "classes": list(Classification),
    }
    if job.status in {"staged", "failed"}:
        try:
            ctx["preview"] = flows.infer_preview(job)
        except ZhisheError as exc:
            ctx["preview_error"] = exc.message
    return render(request, "catalog/job.html", ctx)


@router.post("/imports/{job_id}", response_class=HTMLResponse)
async def run_job(job_id: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    form = await request.form()
    check_csrf(request, form)
    job = flows.get_job_or_raise(session=session, actor=actor, job_id=job_id)
    dataset = service.get_or_raise(session=session, dataset=job.dataset_id)
    columns = _columns_from_form(form) if not dataset.columns and form.get("col_count") else None
    mode = str(form.get("mode") or "append")
    if mode not in flows.MODES:
        raise Invalid(f"unknown import mode {mode!r}", detail={"field": "mode"})
    if job.status not in {"staged", "failed"}:
        return redirect(f"/imports/{job_id}")
    jobs.submit(
        flows.run_import,
        maker=get_sessionmaker(get_settings().database_url),
        actor=actor,
        job_id=job_id,
        mode=mode,
        skip_bad_rows=form.get("skip_bad_rows") == "1",
        note=str(form.get("note") or ""),
        columns=columns,
    )
    return redirect(f"/imports/{job_id}?started=1")


def _display_rows(dataset: Any, table: Any) -> list[dict[str, Any]]:
    """Rows for the preview: datetimes shown in the platform timezone, the rest as JSON values."""
    rows = lake.rows_to_dicts(table)
    temporal = [
        c.name
        for c in dataset.columns
        if c.type == ColumnType.DATETIME.value and c.name in table.column_names
    ]
    if temporal:
        from datetime import datetime

        zone = get_settings().tz
        for row in rows:
            for name in temporal:
                if row.get(name):
                    row[name] = (
                        datetime.fromisoformat(row[name]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
                    )
    return rows
