"""JSON routes of the catalog under ``/api/v1``: thin wrappers over ``service`` and ``flows``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse

from zhishe.catalog import flows, lake, reads, service
from zhishe.catalog.access import where_from_text
from zhishe.catalog.models import Dataset
from zhishe.catalog.schemas import (
    ColumnRead,
    DatasetCreate,
    DatasetPage,
    DatasetRead,
    DatasetUpdate,
    DefinitionChangeRead,
    ImportReport,
    ImportRun,
    QueryIn,
    RowsPage,
    VersionRead,
)
from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.context import current_request_id
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import MAX_ID, CurrentActor, IdQuery, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.web.links import link_next

router = APIRouter(prefix="/api/v1", tags=["catalog"])
_UPLOAD_CHUNK = 1024 * 1024
#: The request body of the upload endpoints, for the OpenAPI document: a multipart file or a raw body.
_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}


def to_read(dataset: Dataset, actor: Actor) -> DatasetRead:
    """A dataset as the actor may see it (不予共享 datasets show only title, owner and legal basis)."""
    restricted = service.is_restricted(actor, dataset)
    read = DatasetRead.model_validate(dataset)
    read.overdue = service.is_overdue(dataset)
    read.columns = [ColumnRead.model_validate(c) for c in dataset.columns]
    if restricted:
        keep = {
            "id",
            "slug",
            "title_zh",
            "title_en",
            "owner_org_id",
            "sharing_class",
            "legal_basis",
            "created_at",
            "updated_at",
            "theme",
        }
        blank = DatasetRead(
            **{k: v for k, v in read.model_dump().items() if k in keep},
            current_version=None,
            row_count=0,
            restricted=True,
        )
        return blank
    return read


def _parse_order(order: str | None) -> list[tuple[str, str]] | None:
    if not order:
        return None
    result = []
    for part in order.split(","):
        name, _, direction = part.strip().partition(":")
        direction = direction or "asc"
        if direction not in {"asc", "desc"}:
            raise Invalid(f"order: {direction!r} is not asc or desc", detail={"parameter": "order"})
        if not name:
            raise Invalid("order: empty column name", detail={"parameter": "order"})
        result.append((name, direction))
    return result


def _parse_where(where: str | None) -> dict[str, Any] | None:
    return where_from_text(where, name="where")


def _rows_page(dataset: Dataset, page: lake.Page) -> RowsPage:
    return RowsPage(
        dataset_id=dataset.id,
        version=page.version,
        columns=list(page.rows.column_names),
        rows=lake.rows_to_dicts(page.rows),
        next=page.next,
        total=page.total,
    )


@router.get("/datasets", response_model=DatasetPage)
def list_datasets(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    q: str | None = None,
    theme: str | None = None,
    owner_org_id: IdQuery = None,
    sharing_class: str | None = None,
    cadence: str | None = None,
    overdue: bool | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DatasetPage:
    """Search the catalog, with facet counts."""
    page, facets = service.list_datasets(
        session=session,
        actor=actor,
        q=q,
        theme=theme,
        owner_org_id=owner_org_id,
        sharing_class=sharing_class,
        cadence=cadence,
        overdue=overdue,
        after=after,
        limit=limit,
    )
    link_next(
        response,
        page.next,
        {
            "q": q,
            "theme": theme,
            "owner_org_id": owner_org_id,
            "sharing_class": sharing_class,
            "cadence": cadence,
            "limit": limit,
        },
    )
    return DatasetPage(items=[to_read(d, actor) for d in page.items], next=page.next, facets=facets)


@router.post("/datasets", response_model=DatasetRead, status_code=201)
def create_dataset(dataset_in: DatasetCreate, session: SessionDep, actor: CurrentActor) -> DatasetRead:
    """Register a dataset."""
    return to_read(service.create_dataset(session=session, actor=actor, dataset_in=dataset_in), actor)


@router.get("/datasets/{dataset}", response_model=DatasetRead)
def get_dataset(dataset: str, session: SessionDep, actor: CurrentActor) -> DatasetRead:
    """One dataset's metadata and schema (by id or slug)."""
    return to_read(service.read_dataset(session=session, actor=actor, dataset=dataset), actor)


@router.patch("/datasets/{dataset}", response_model=DatasetRead)
def update_dataset(
    dataset: str, dataset_in: DatasetUpdate, session: SessionDep, actor: CurrentActor
) -> DatasetRead:
    """Change metadata or column definitions (column changes are recorded as definition changes)."""
    return to_read(
        service.update_dataset(session=session, actor=actor, dataset=dataset, dataset_in=dataset_in), actor
    )


@router.get("/datasets/{dataset}/versions", response_model=list[VersionRead])
def list_versions(dataset: str, session: SessionDep, actor: CurrentActor) -> list[VersionRead]:
    """Every version, newest first."""
    rows = reads.list_versions(session=session, actor=actor, dataset=dataset)
    out = []
    for row in rows:
        item = VersionRead.model_validate(row)
        item.has_reject_file = bool(row.reject_file)
        out.append(item)
    return out


@router.get("/datasets/{dataset}/versions/{version}/profile")
def version_profile(
    dataset: str,
    version: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    session: SessionDep,
    actor: CurrentActor,
) -> dict[str, Any]:
    """The quality profile computed when the version was committed."""
    profile = reads.read_profile(session=session, actor=actor, dataset=dataset, version=version)
    return {"version": version, "profile": profile}


@router.get("/datasets/{dataset}/versions/{version}/rejects", response_class=FileResponse)
def version_rejects(
    dataset: str,
    version: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    session: SessionDep,
    actor: CurrentActor,
) -> FileResponse:
    """The rows skipped by an import, with their row numbers and reasons (CSV)."""
    path = flows.reject_file_of(session=session, actor=actor, dataset=dataset, version=version)
    return FileResponse(path, media_type="text/csv", filename=f"{dataset}-v{version}-rejects.csv")


@router.get("/datasets/{dataset}/definition-changes", response_model=list[DefinitionChangeRead])
def definition_changes(dataset: str, session: SessionDep, actor: CurrentActor) -> list[DefinitionChangeRead]:
    """Changes of column type, unit, description, classification or key flag."""
    rows = reads.list_definition_changes(session=session, actor=actor, dataset=dataset)
    return [DefinitionChangeRead.model_validate(r) for r in rows]


@router.get("/datasets/{dataset}/diff")
def diff(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    from_version: Annotated[int, Query(alias="from", ge=0, le=MAX_ID)],
    to_version: Annotated[int, Query(alias="to", ge=0, le=MAX_ID)],
    sample: Annotated[int, Query(ge=0, le=200)] = 20,
) -> dict[str, Any]:
    """Rows added, removed and changed between two versions."""
    result = reads.diff_versions(
        session=session,
        actor=actor,
        dataset=dataset,
        from_version=from_version,
        to_version=to_version,
        sample=sample,
    )
    return reads.diff_to_dict(result)


@router.get("/datasets/{dataset}/rows", response_model=RowsPage)
def rows(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    select: Annotated[str | None, Query(description="Comma-separated column names")] = None,
    where: Annotated[
        str | None, Query(description='A JSON filter, e.g. {"column":"district","op":"=","value":"东城"}')
    ] = None,
    order: Annotated[str | None, Query(description="e.g. ts:desc,district")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 50,
    total: bool = False,
    grant: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Read through this exchange grant")
    ] = None,
) -> RowsPage:
    """Rows of a version, projected, filtered, ordered and keyset-paged."""
    found = service.get_or_raise(session=session, dataset=dataset)
    page = reads.read_rows(
        session=session,
        actor=actor,
        dataset=found.id,
        version=version,
        select=[s.strip() for s in select.split(",") if s.strip()] if select else None,
        where=_parse_where(where),
        order=_parse_order(order),
        after=after,
        limit=limit,
        with_total=total,
        grant=grant,
    )
    link_next(
        response,
        page.next,
        {
            "version": page.version,
            "select": select,
            "where": where,
            "order": order,
            "limit": limit,
            "grant": grant,
        },
    )
    return _rows_page(found, page)


@router.post("/datasets/{dataset}/query", response_model=RowsPage)
def query(dataset: str, query_in: QueryIn, session: SessionDep, actor: CurrentActor) -> RowsPage:
    """The same read with a JSON body (structured filter, order, paging)."""
    found = service.get_or_raise(session=session, dataset=dataset)
    page = reads.read_rows(
        session=session,
        actor=actor,
        dataset=found.id,
        version=query_in.version,
        select=query_in.select,
        where=query_in.where,
        order=[(n, d) for n, d in query_in.order] if query_in.order else None,
        after=query_in.after,
        limit=query_in.limit,
        with_total=query_in.with_total,
    )
    return _rows_page(found, page)


@router.get("/datasets/{dataset}/aggregate")
def aggregate(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    measure: Annotated[list[str], Query(description="func:column, e.g. sum:kwh or count")] = ["count"],  # noqa: B006
    group_by: Annotated[list[str], Query()] = [],  # noqa: B006
    bucket: Annotated[str | None, Query(description="column:hour|day|week|month|year")] = None,
    version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    """Grouped counts, sums, means, minima and maxima (for charts)."""
    measures: list[lake.Measure] = []
    for item in measure:
        func, _, column = item.partition(":")
        if func not in {"count", "sum", "avg", "min", "max"}:
            raise Invalid(f"measure: unknown function {func!r}", detail={"parameter": "measure"})
        measures.append((cast(Any, func), column or None))
    time_bucket: tuple[str, lake.TimeUnit] | None = None
    if bucket:
        column, _, unit = bucket.partition(":")
        if unit not in {"hour", "day", "week", "month", "year"}:
            raise Invalid(f"bucket: unknown unit {unit!r}", detail={"parameter": "bucket"})
        time_bucket = (column, cast(Any, unit))
    table = reads.aggregate(
        session=session,
        actor=actor,
        dataset=dataset,
        group_by=group_by,
        measures=measures,
        time_bucket=time_bucket,
        version=version,
        limit=limit,
    )
    return {"columns": table.column_names, "rows": lake.rows_to_dicts(table)}


@router.get("/datasets/{dataset}/export")
def export(
    dataset: str,
    session: SessionDep,
    actor: CurrentActor,
    background: BackgroundTasks,
    format: Literal["csv", "json", "ndjson", "parquet"] = "csv",
    version: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    select: str | None = None,
    where: str | None = None,
    grant: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Export through this exchange grant")
    ] = None,
) -> FileResponse:
    """Download a version (time travel) in CSV, JSON, NDJSON or Parquet."""
    found = service.get_or_raise(session=session, dataset=dataset)
    folder = Path(tempfile.mkdtemp(prefix="zhishe-export-"))
    dest = folder / f"{found.slug}.{format}"
    reads.export_rows(
        session=session,
        actor=actor,
        dataset=found.id,
        fmt=format,
        dest=dest,
        version=version,
        select=[s for s in select.split(",") if s] if select else None,
        where=_parse_where(where),
        grant=grant,
    )
    background.add_task(_cleanup, folder)
    media = {
        "csv": "text/csv; charset=utf-8",
        "json": "application/json",
        "ndjson": "application/x-ndjson",
        "parquet": "application/vnd.apache.parquet",
    }[format]
    version_part = f"-v{version}" if version is not None else ""
    return FileResponse(dest, media_type=media, filename=f"{found.slug}{version_part}.{format}")


def _cleanup(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


async def receive_upload(request: Request, filename: str | None) -> tuple[Path, str, dict[str, str]]:
    """Save the request's file (multipart field ``file``, or the raw body) to a temporary path."""
    settings = get_settings()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=settings.uploads_dir, prefix="incoming-", delete=False)  # noqa: SIM115
    fields: dict[str, str] = {}
    try:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_part_size=1024 * 1024)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise Invalid("the form has no file field named 'file'", detail={"field": "file"})
            filename = filename or upload.filename or "upload"
            while chunk := await upload.read(_UPLOAD_CHUNK):
                handle.write(chunk)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            if not filename:
                raise Invalid(
                    "send the file as multipart field 'file', or give ?filename= with a raw body",
                    detail={"parameter": "filename"},
                )
            async for chunk in request.stream():
                handle.write(chunk)
        handle.close()
        return Path(handle.name), filename or "upload", fields
    except BaseException:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)
        raise


@router.post(
    "/datasets/{dataset}/imports",
    response_model=ImportReport,
    status_code=201,
    responses={422: {"description": "The file was refused; the report lists every bad value"}},
    openapi_extra=_FILE_BODY,
)
async def import_file(
    dataset: str,
    request: Request,
    actor: CurrentActor,
    mode: Literal["append", "replace", "upsert"] = "append",
    skip_bad_rows: bool = False,
    note: Annotated[str, Query(max_length=2000)] = "",
    filename: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """Import a file (CSV, TSV, XLSX, JSON, NDJSON, Parquet) as a new version. Nothing is written if any
    value is bad, unless ``skip_bad_rows`` is set; then the skipped rows are kept as a reject file."""
    path, name, _fields = await receive_upload(request, filename)
    maker = get_sessionmaker(get_settings().database_url)
    from starlette.concurrency import run_in_threadpool

    report = await run_in_threadpool(
        flows.import_path,
        maker=maker,
        actor=actor,
        dataset=dataset,
        path=path,
        mode=mode,
        skip_bad_rows=skip_bad_rows,
        note=note,
        filename=name,
        move=True,
    )
    return _report_response(report)


def _report_response(report: ImportReport) -> JSONResponse:
    """201 with the report, or the error envelope (422) with the report as its detail."""
    body = report.model_dump(mode="json")
    if report.status == "failed":
        return JSONResponse(
            {
                "error": {"type": "invalid", "message": report.message, "detail": body},
                "request_id": current_request_id.get(),
            },
            status_code=422,
        )
    return JSONResponse(body, status_code=201)


@router.post(
    "/datasets/{dataset}/uploads",
    status_code=201,
    openapi_extra=_FILE_BODY,
)
async def stage_upload(
    dataset: str,
    request: Request,
    session: SessionDep,
    actor: CurrentActor,
    filename: Annotated[str | None, Query(max_length=300)] = None,
) -> dict[str, Any]:
    """Upload a file without importing it: returns the job, the first rows and the inferred column types,
    so the types can be corrected before ``POST /api/v1/imports/{job}/run`` confirms the import."""
    path, name, _fields = await receive_upload(request, filename)
    job = flows.stage_file(session=session, actor=actor, dataset=dataset, filename=name, source=path)
    preview = flows.infer_preview(job)
    return {
        "job_id": job.id,
        "format": preview["format"],
        "encoding": preview["encoding"],
        "row_count": preview["row_count"],
        "rows": preview["rows"],
        "inferred_columns": [
            {
                "name": c.name,
                "type": c.type.value,
                "classification": c.classification.value,
                "is_key": c.is_key,
                "unit": c.unit,
                "description": c.description,
            }
            for c in preview["columns"]
        ],
    }


@router.post(
    "/imports/{job_id}/run",
    response_model=ImportReport,
    status_code=201,
    responses={422: {"description": "The file was refused; the report lists every bad value"}},
)
async def run_staged(job_id: str, run_in: ImportRun, actor: CurrentActor) -> Response:
    """Validate a staged upload and commit it as a version; ``columns`` sets the schema on a first import."""
    from starlette.concurrency import run_in_threadpool

    report = await run_in_threadpool(
        flows.run_import,
        maker=get_sessionmaker(get_settings().database_url),
        actor=actor,
        job_id=job_id,
        mode=run_in.mode,
        skip_bad_rows=run_in.skip_bad_rows,
        note=run_in.note,
        columns=run_in.columns,
    )
    return _report_response(report)


@router.get("/imports/{job_id}", response_model=ImportReport)
def import_job(job_id: str, session: SessionDep, actor: CurrentActor) -> ImportReport:
    """The state of an import job (for progress displays)."""
    return flows.job_report(flows.get_job_or_raise(session=session, actor=actor, job_id=job_id))
