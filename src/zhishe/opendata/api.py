"""JSON routes of open data.

Public (no login) under ``/opendata/api/v1``: the catalog, datasets and releases, the query API,
downloads, the SQL endpoint, problem reports, data requests and statistics; the DCAT-AP catalog at
``/catalog.jsonld``. Staff routes (a login or a token) under ``/api/v1/opendata``: open settings,
drafts and publishing, answering data requests, and developers' app tokens.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import CurrentActor, IdPath, OptionalActor, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.core.ratelimit import MemoryLimiter, RateLimiter, enforce, limiter_from_url
from zhishe.opendata import apptokens, catalogue, datarequests, formats, portal, queries, service, soql, stats
from zhishe.opendata.models import DataRequest, Release
from zhishe.opendata.schemas import (
    AppTokenCreated,
    AppTokenIn,
    AppTokenRead,
    DataRequestIn,
    DataRequestRead,
    DatasetHit,
    DraftIn,
    OpenSettingsIn,
    OpenSettingsRead,
    ProblemIn,
    ProblemRead,
    PublicDatasetRead,
    PublishIn,
    ReleaseRead,
    RequestAnswerIn,
    RequestDeclineIn,
    RequestRouteIn,
    SearchPage,
    SqlIn,
)


async def public_quota(request: Request, response: Response) -> None:
    """Rate-limit the public API: per app token (``X-App-Token``) or, without one, per address.
    Past the limit the answer is 429 with ``Retry-After``. Runs on the event loop unless it needs
    the database (an app token) or the network (Redis), so that a query costs one thread hop."""
    settings = get_settings()
    secret = request.headers.get("x-app-token")
    window = settings.opendata_rate_window
    limiter = _limiter(settings.rate_limit_url)
    if secret:
        token_id, quota = await run_in_threadpool(_token_id, secret)
        key, limit = f"opendata:token:{token_id}", settings.opendata_rate_token
        if quota is not None:  # a paid plan: its own calls per minute, and per day
            key, limit, window = f"opendata:plan:{token_id}", quota[0], 60.0
            await run_in_threadpool(enforce, limiter, f"opendata:plan-day:{token_id}", quota[1], 86400.0)
    else:
        key, limit = address_quota(request.client.host if request.client else "unknown")
    if isinstance(limiter, MemoryLimiter):
        decision = enforce(limiter, key, limit, window)
    else:
        decision = await run_in_threadpool(enforce, limiter, key, limit, window)
    response.headers["X-RateLimit-Limit"] = str(limit)
    response.headers["X-RateLimit-Remaining"] = str(decision.remaining)


def address_quota(host: str) -> tuple[str, int]:
    """The rate-limit key and limit of a caller without an app token."""
    return f"opendata:addr:{host}", get_settings().opendata_rate_anonymous


def limiter() -> RateLimiter:
    """This process's limiter for the public API (in memory, or Redis when configured)."""
    return _limiter(get_settings().rate_limit_url)


def _token_id(secret: str) -> tuple[int, apptokens.Quota | None]:
    """The id of the live app token with this secret (its last use recorded) and its own quota."""
    with get_sessionmaker(get_settings().database_url).begin() as session:
        token_id = apptokens.resolve(session=session, secret=secret).id
        return token_id, apptokens.quota_of(session, token_id)


def quota_headers(response: Response) -> dict[str, str]:
    """The rate-limit headers that `public_quota` set on the injected response. FastAPI drops them
    when a route returns a response of its own, so such routes copy them over."""
    return {
        k: response.headers[k]
        for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining")
        if k in response.headers
    }


@lru_cache(maxsize=4)
def _limiter(url: str) -> RateLimiter:
    return limiter_from_url(url)


public = APIRouter(prefix="/opendata/api/v1", tags=["open data"], dependencies=[Depends(public_quota)])
staff = APIRouter(prefix="/api/v1/opendata", tags=["open data (staff)"])

Slug = Annotated[str, "dataset slug"]


def release_read(session: Any, release: Release, slug: str = "") -> ReleaseRead:
    """A release as the API shows it, with its permanent URL once published."""
    if not slug:
        slug = service.slug_of(session, release.dataset_id)
    url = f"/opendata/datasets/{slug}/releases/{release.number}" if release.number else ""
    return ReleaseRead.model_validate(release).model_copy(update={"dataset": slug, "url": url})


# -- staff ------------------------------------------------------------------------------------------


@staff.get("/datasets/{dataset}/settings", response_model=OpenSettingsRead)
def get_settings_of(dataset: str, session: SessionDep, actor: CurrentActor) -> Any:
    """How a dataset is opened (its owner's stewards and admins)."""
    return service.read_settings(session=session, actor=actor, dataset=dataset)


@staff.put("/datasets/{dataset}/settings", response_model=OpenSettingsRead)
def put_settings(dataset: str, data: OpenSettingsIn, session: SessionDep, actor: CurrentActor) -> Any:
    """Set the de-identification policy, cadence, ordering, chart and ε budget of a dataset."""
    return service.configure(
        session=session, actor=actor, dataset=dataset, **data.model_dump(exclude_unset=True)
    )


@staff.post("/datasets/{dataset}/drafts", response_model=ReleaseRead, status_code=201)
def create_draft(dataset: str, data: DraftIn, session: SessionDep, actor: CurrentActor) -> ReleaseRead:
    """Compute a release through the privacy gate, with its risk report (not public yet)."""
    draft = service.draft_release(
        session=session, actor=actor, dataset=dataset, version=data.version, policy=data.policy
    )
    return release_read(session, draft)


@staff.get("/datasets/{dataset}/drafts", response_model=list[ReleaseRead])
def list_drafts(dataset: str, session: SessionDep, actor: CurrentActor) -> list[ReleaseRead]:
    """Drafts waiting to be published or discarded."""
    return [
        release_read(session, d) for d in service.drafts_of(session=session, actor=actor, dataset=dataset)
    ]


@staff.post("/releases/{release_id}/publish", response_model=ReleaseRead)
def publish(release_id: IdPath, data: PublishIn, session: SessionDep, actor: CurrentActor) -> ReleaseRead:
    """Publish a draft under the next release number."""
    return release_read(
        session, service.publish_release(session=session, actor=actor, release_id=release_id, note=data.note)
    )


@staff.delete("/releases/{release_id}", status_code=204)
def discard(release_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """Discard a draft."""
    service.discard(session=session, actor=actor, release_id=release_id)
    return Response(status_code=204)


@staff.post("/requests/{request_id}/answer", response_model=DataRequestRead)
def answer_request(
    request_id: IdPath, data: RequestAnswerIn, session: SessionDep, actor: CurrentActor
) -> DataRequestRead:
    """Close a data request with the release that answers it."""
    found = datarequests.answer(
        session=session, actor=actor, request_id=request_id, dataset=data.dataset, number=data.release
    )
    return request_read(session, found, actor)


@staff.post("/requests/{request_id}/decline", response_model=DataRequestRead)
def decline_request(
    request_id: IdPath, data: RequestDeclineIn, session: SessionDep, actor: CurrentActor
) -> DataRequestRead:
    """Close a data request with a public reason."""
    found = datarequests.decline(session=session, actor=actor, request_id=request_id, reason=data.reason)
    return request_read(session, found, actor)


@staff.post("/requests/{request_id}/route", response_model=DataRequestRead)
def route_request(
    request_id: IdPath, data: RequestRouteIn, session: SessionDep, actor: CurrentActor
) -> DataRequestRead:
    """Send a data request to another owner."""
    found = datarequests.route(
        session=session, actor=actor, request_id=request_id, owner_org_id=data.owner_org_id
    )
    return request_read(session, found, actor)


@staff.get("/app-tokens", response_model=list[AppTokenRead])
def list_app_tokens(session: SessionDep, actor: CurrentActor) -> Any:
    """Your live app tokens."""
    return apptokens.list_mine(session=session, actor=actor)


@staff.post("/app-tokens", response_model=AppTokenCreated, status_code=201)
def create_app_token(data: AppTokenIn, session: SessionDep, actor: CurrentActor) -> AppTokenCreated:
    """Register an application; the token is shown once."""
    token, secret = apptokens.create(session=session, actor=actor, name=data.name)
    return AppTokenCreated(**AppTokenRead.model_validate(token).model_dump(), token=secret)


@staff.delete("/app-tokens/{token_id}", status_code=204)
def revoke_app_token(token_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """Revoke an app token at once."""
    apptokens.revoke(session=session, actor=actor, token_id=token_id)
    return Response(status_code=204)


@staff.post("/statistics/publish")
def publish_statistics(session: SessionDep, actor: CurrentActor) -> dict[str, int | None]:
    """Write the portal's figures as datasets owned by the data bureau."""
    return stats.publish(session=session, actor=actor)


# -- public -----------------------------------------------------------------------------------------


@public.get("/datasets", response_model=SearchPage)
def search(
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    theme: Annotated[str, Query(max_length=64)] = "",
    publisher: Annotated[str, Query(max_length=200)] = "",
    format: Annotated[str, Query(max_length=16)] = "",
    cadence: Annotated[str, Query(max_length=16)] = "",
    timeliness: Annotated[str, Query(max_length=16)] = "",
) -> SearchPage:
    """Search open datasets (Chinese words too), with facet counts."""
    hits, facets = portal.search(
        session=session,
        q=q,
        theme=theme,
        publisher=publisher,
        fmt=format,
        cadence=cadence,
        timely=timeliness,
        language=current_language.get(),
    )
    return SearchPage(
        total=len(hits),
        items=[hit_read(h) for h in hits],
        facets={name: dict(counts.most_common()) for name, counts in facets.items()},
    )


def hit_read(hit: portal.Hit) -> DatasetHit:
    """A search hit as the API shows it."""
    d, language = hit.opened.dataset, current_language.get()
    return DatasetHit(
        slug=d.slug,
        title=d.title(language),
        description=d.description(language),
        theme=d.theme,
        publisher=hit.publisher,
        cadence=hit.opened.settings.cadence,
        formats=list(hit.formats),
        latest_release=hit.opened.latest.number or 0,
        published_at=hit.opened.latest.published_at,
        overdue_days=hit.overdue_days,
        url=f"/opendata/datasets/{d.slug}",
    )


@public.get("/datasets/{dataset}", response_model=PublicDatasetRead)
def dataset_view(dataset: str, session: SessionDep) -> PublicDatasetRead:
    """An open dataset: metadata, schema with units, releases with changelog, timeliness and usage."""
    opened = service.public_dataset(session=session, slug=dataset)
    return PublicDatasetRead(
        **service.describe(session, opened, current_language.get()),
        releases=[release_read(session, r, opened.dataset.slug) for r in opened.releases],
    )


@public.get("/datasets/{dataset}/releases/{number}", response_model=ReleaseRead)
def release_view(dataset: str, number: IdPath, session: SessionDep) -> ReleaseRead:
    """One published release, with its policy, risk report and changelog entry."""
    opened = service.public_dataset(session=session, slug=dataset)
    return release_read(session, service.public_release(opened, number), dataset)


@public.post("/datasets/{dataset}/problems", response_model=ProblemRead, status_code=201)
def report_problem(dataset: str, data: ProblemIn, session: SessionDep) -> ProblemRead:
    """Report a problem with open data: it opens a data issue to the owner."""
    issue = service.report_problem(session=session, slug=dataset, **data.model_dump())
    return ProblemRead(
        issue=issue.id,
        state=issue.state,
        message=T("thank you: the owner has been told (issue {id})", id=issue.id),
    )


def request_read(session: Any, request: DataRequest, actor: Any) -> DataRequestRead:
    """A data request as ``actor`` may see it."""
    seen = datarequests.view(session, request, actor)
    answer = (
        f"/opendata/datasets/{seen.dataset_slug}/releases/{seen.release_number}"
        if seen.release_number is not None
        else None
    )
    return DataRequestRead(
        id=request.id,
        title=request.title,
        description=request.description,
        purpose=request.purpose,
        owner=seen.owner_name,
        owner_org_id=request.owner_org_id,
        state=request.state,
        supporters=request.supporters,
        created_at=request.created_at,
        due_at=request.due_at,
        overdue=seen.overdue,
        closed_at=request.closed_at,
        reason=request.reason,
        answer=answer,
        contact=seen.contact,
    )


@public.get("/requests", response_model=list[DataRequestRead])
def list_requests(
    session: SessionDep,
    actor: OptionalActor,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DataRequestRead]:
    """Public data requests, newest first."""
    return [
        request_read(session, r, actor)
        for r in datarequests.list_requests(session=session, state=state, limit=limit)
    ]


@public.post("/requests", response_model=DataRequestRead, status_code=201)
def file_request(data: DataRequestIn, session: SessionDep) -> DataRequestRead:
    """Ask for data that is not open yet (no login needed)."""
    found = datarequests.file_request(session=session, **data.model_dump())
    return request_read(session, found, None)


@public.get("/requests/{request_id}", response_model=DataRequestRead)
def get_request(request_id: IdPath, session: SessionDep, actor: OptionalActor) -> DataRequestRead:
    """One data request."""
    return request_read(session, datarequests.get_or_raise(session=session, request_id=request_id), actor)


@public.post("/requests/{request_id}/support", response_model=DataRequestRead)
def support_request(
    request_id: IdPath, request: Request, session: SessionDep, actor: OptionalActor
) -> DataRequestRead:
    """Support a request (once per person)."""
    found = datarequests.support(session=session, request_id=request_id, who=supporter_of(request, actor))
    return request_read(session, found, actor)


def supporter_of(request: Request, actor: Any) -> str:
    """Who is supporting: the signed-in user, else the caller's address and browser."""
    if actor is not None and actor.user_id is not None:
        return f"user:{actor.user_id}"
    host = request.client.host if request.client else "?"
    return f"anon:{host}:{request.headers.get('user-agent', '')[:200]}"


@public.get("/statistics")
def statistics(session: SessionDep) -> dict[str, Any]:
    """The portal's figures: datasets opened, releases, downloads and API calls per month, data
    requests answered and the median reply time."""
    return stats.figures(session)


# -- queries, SQL and downloads -------------------------------------------------------------------

_FORMATS_OF_QUERY = ("json", "csv", "ndjson")


#: The query route alone, with the public router's rate limit: the app includes it before every
#: other router, so that the busiest public route is matched first.
query_router = APIRouter(prefix="/opendata/api/v1", tags=["open data"], dependencies=[Depends(public_quota)])


@query_router.get("/datasets/{dataset}/query.{fmt}", response_model=None)
async def query(
    dataset: str,
    fmt: str,
    request: Request,
    response: Response,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Release number (newest if absent)")
    ] = None,
) -> Any:
    """A SoQL query: ``$select``, ``$where``, ``$order``, ``$group``, ``$having``, ``$limit``
    (default 1,000, at most 50,000), ``$offset``, ``$q`` (full text), ``$next`` (keyset token) and
    ``column=value`` filters. JSON answers ``{rows, columns, total, estimated, next, release}``;
    the next page is also in the ``Link`` header."""
    if fmt not in _FORMATS_OF_QUERY:
        raise Invalid(
            T("unknown format {fmt}; use {formats}", fmt=fmt, formats=", ".join(_FORMATS_OF_QUERY)),
            detail={"parameter": "format"},
        )
    params = soql_params(request)
    path = request.url.path
    # A short page in the release's own order, of a release this process knows, is read from the
    # memory-mapped rows file in well under a millisecond: answered here, without a thread hop.
    quick = queries.run_quick(slug=dataset, params=params, version=version) if fmt == "json" else None
    if quick is not None:
        quick_headers, quick_body = json_answer(quick, dataset, params, path, version)
        quick_headers.update(quota_headers(response))
        return Response(quick_body, media_type="application/json", headers=quick_headers)

    def run() -> tuple[queries.QueryResult, dict[str, str], bytes | None]:
        result = queries.run_cached(slug=dataset, params=params, version=version)
        if result is None:  # a release this process has not served lately: ask the database
            with get_sessionmaker(get_settings().database_url).begin() as session:
                result = queries.run(session=session, slug=dataset, params=params, version=version)
        if fmt == "json":
            headers, body = json_answer(result, dataset, params, path, version)
            return result, headers, body
        return result, _page_headers(result, params, path, version)[0], None

    # one hop to a worker thread for the whole read, the rows and their JSON
    result, headers, body = await run_in_threadpool(run)
    headers.update(quota_headers(response))
    if body is not None:
        return Response(body, media_type="application/json", headers=headers)
    chunks = formats.stream(
        fmt, iter(result.table.to_batches()), result.table.schema, tz=get_settings().timezone
    )
    return StreamingResponse(chunks, media_type=formats.media_type(fmt), headers=headers)


def json_answer(
    result: queries.QueryResult, dataset: str, params: dict[str, str], path: str, version: int | None
) -> tuple[dict[str, str], bytes]:
    """The headers and JSON body of a page."""
    headers, next_url = _page_headers(result, params, path, version)
    body = {
        "dataset": dataset,
        "release": result.release.number,
        "columns": [{"name": c, "type": result.types.get(c, "")} for c in result.columns],
        "rows": result.rows,
        "total": result.total,
        "estimated": result.estimated,
        "next": result.next_token,
        "next_offset": result.next_offset,
        "next_url": next_url or None,
    }
    return headers, orjson.dumps(body)


def _page_headers(
    result: queries.QueryResult, params: dict[str, str], path: str, version: int | None
) -> tuple[dict[str, str], str]:
    """The headers of a page (release, total, ``Link`` to the next page) and the next page's URL."""
    headers = {"X-Release": str(result.release.number)}
    next_url = ""
    if result.next_token or result.next_offset is not None:
        follow = {k: v for k, v in params.items() if k not in {"$next", "$offset"}}
        if result.next_token:
            follow["$next"] = result.next_token
        else:
            follow["$offset"] = str(result.next_offset)
        if version is not None:
            follow["version"] = str(version)
        next_url = f"{path}?{urlencode(follow)}"
        headers["Link"] = f'<{next_url}>; rel="next"'
    if result.total is not None:
        headers["X-Total-Count"] = str(result.total)
    return headers, next_url


def soql_params(request: Request) -> dict[str, str]:
    """The query string as SoQL parameters: every parameter except ``version`` and ``lang``, each
    given once. Bytes that are not UTF-8 are refused with the parameter named."""
    raw = request.scope.get("query_string", b"")
    values: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        # latin-1 maps each byte to one character and back, so the UTF-8 check sees the real bytes
        key = soql.check_text("parameter name", name.encode("latin-1"))
        text = soql.check_text(key, value.encode("latin-1"))
        if key in {"version", "lang"}:
            continue
        if key in values:
            raise soql.BadQuery(
                f"{key}: give this parameter once", detail={"parameter": key, "reason": "repeated"}
            )
        values[key] = text
    return values


@public.get("/datasets/{dataset}/download.{fmt}", response_model=None)
def download(
    dataset: str,
    fmt: str,
    response: Response,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    bom: Annotated[
        bool, Query(description="CSV only: start with a byte-order mark so Excel reads UTF-8")
    ] = False,
) -> StreamingResponse:
    """A whole release as CSV (optionally with BOM), JSON, NDJSON, Parquet, XLSX or GeoJSON
    (datasets with a point column), streamed."""
    prepared = queries.download(session=session, slug=dataset, fmt=fmt, version=version, bom=bom)
    return StreamingResponse(
        prepared.chunks,
        media_type=prepared.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{prepared.filename}"',
            **quota_headers(response),
        },
    )


@public.get("/sql")
def sql_get(
    request: Request,
    session: SessionDep,
    query: Annotated[str, Query(max_length=32768, description='One SELECT; datasets as "slug" or "slug@N"')],
    rows: Annotated[
        str | None, Query(max_length=10, description="Row cap (default 1,000, at most 50,000)")
    ] = None,
) -> dict[str, Any]:
    """A read-only SQL query over all published releases."""
    sql_params(request)
    return _sql(session, query, rows)


def sql_params(request: Request) -> None:
    """Refuse a query string whose ``query`` or ``rows`` is not UTF-8 or is given twice (the
    framework would otherwise replace the bad bytes with U+FFFD, or keep the last value, and run
    another query than the one sent)."""
    raw = request.scope.get("query_string", b"")
    seen: set[str] = set()
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        key = soql.check_text("parameter name", name.encode("latin-1"))
        parameter = {"query": "sql", "rows": "rows"}.get(key)
        if parameter is None:
            continue
        soql.check_text(parameter, value.encode("latin-1"))
        if key in seen:
            raise soql.BadQuery(
                f"{parameter}: give this parameter once",
                detail={"parameter": parameter, "reason": "repeated"},
            )
        seen.add(key)


@public.post("/sql")
def sql_post(session: SessionDep, data: SqlIn) -> dict[str, Any]:
    """The same as ``GET /sql``, with the query in a JSON body."""
    return _sql(session, data.query, data.rows)


def _sql(session: Any, text: str, rows: Any) -> dict[str, Any]:
    result = queries.run_sql(session=session, text=text, rows=rows)
    return {
        "columns": [f.name for f in result.table.schema],
        "rows": result.rows,
        "row_cap": result.row_cap,
        "truncated": result.truncated,
    }


# -- DCAT-AP --------------------------------------------------------------------------------------

dcat_router = APIRouter(tags=["open data"])
_JSONLD = "application/ld+json"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@dcat_router.get("/catalog.jsonld", response_class=JSONResponse)
def catalog_jsonld(request: Request, session: SessionDep) -> JSONResponse:
    """The whole open-data catalog as DCAT-AP 3 JSON-LD."""
    return JSONResponse(catalogue.catalog_document(session, _base(request)), media_type=_JSONLD)


@dcat_router.get("/opendata/datasets/{dataset}.jsonld", response_class=JSONResponse)
def dataset_jsonld(dataset: str, request: Request, session: SessionDep) -> JSONResponse:
    """One open dataset with its series of releases as DCAT-AP 3 JSON-LD."""
    return JSONResponse(catalogue.dataset_document(session, _base(request), dataset), media_type=_JSONLD)
