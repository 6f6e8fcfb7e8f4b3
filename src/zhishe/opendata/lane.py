"""The quick lane of the open-data query API: short pages in a release's own order, answered before
the web framework routes the request.

Routing, dependency injection and response handling in FastAPI cost about 0.3 ms a request, as
much as reading and rendering a page of 100 rows from a release's rows file. ``QuickLane`` is an
ASGI middleware, installed inside the request-context middleware (request id, language, security
headers, metrics and access log all still apply), that answers
``GET /opendata/api/v1/datasets/{dataset}/query.json`` itself when every one of these holds, and
otherwise passes the request on, untouched and before any side effect, to the route in
``opendata.api``:

- no root path, and no ``X-App-Token`` (a token is looked up in the database);
- the rate limiter is the in-process one (Redis is a network call);
- ``version`` is absent or a plain number in range, no parameter is repeated, all are UTF-8;
- ``queries.plan_quick`` has read the page: the release is known to this process, the query is
  only ``$select``/``$order``/``$limit``/``$offset``/``$next``, and the page is a range of positions
  of at most ``queries.QUICK_ROWS`` rows, read from the rows file;
- the rate limiter allows the call. A refused call is passed on and refused again by the route,
  with its 429 and ``Retry-After``: the limiter (GCRA) does not count refusals.

The answer is the route's: the same functions build its body and headers, the call is counted the
same way, and the route stays in the OpenAPI document for every other case.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from zhishe.core.config import get_settings
from zhishe.core.errors import ZhisheError
from zhishe.core.ratelimit import MemoryLimiter
from zhishe.opendata import api, queries

__all__ = ["QuickLane"]

_PATH = re.compile(r"/opendata/api/v1/datasets/(?P<dataset>[^/]+)/query\.json")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_MAX_VERSION = 2**31 - 1
#: The route the lane answers for, so that metrics and logs name it as they would.
_ROUTE = next(r for r in api.query_router.routes if getattr(r, "name", "") == "query")


class QuickLane:
    """Answers short pages in a release's own order without routing them (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            found = _PATH.fullmatch(scope["path"])
            response = _answer(scope, found.group("dataset")) if found else None
            if response is not None:
                scope["route"] = _ROUTE
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _answer(scope: Scope, dataset: str) -> Response | None:
    """The route's answer to this request if the lane can give it (see the module), else None."""
    request = Request(scope)
    if "x-app-token" in request.headers:
        return None
    limiter = api.limiter()
    if not isinstance(limiter, MemoryLimiter):
        return None
    try:
        version = _version(scope.get("query_string", b""))
        params = api.soql_params(request)
    except (ValueError, ZhisheError):  # the route refuses it, in its own words
        return None
    page = queries.plan_quick(slug=dataset, params=params, version=version)
    if page is None:
        return None
    key, limit = api.address_quota(request.client.host if request.client else "unknown")
    decision = limiter.hit(key, limit, get_settings().opendata_rate_window)
    if not decision.allowed:
        return None
    headers, body = api.json_answer(queries.answer_quick(page), dataset, params, request.url.path, version)
    headers["X-RateLimit-Limit"] = str(limit)
    headers["X-RateLimit-Remaining"] = str(decision.remaining)
    return Response(body, media_type="application/json", headers=headers)


def _version(query_string: bytes) -> int | None:
    """The ``version`` parameter: None when absent, the number when it is one plain number in
    range; ValueError for anything else (which the route validates and refuses)."""
    text = query_string.decode("latin-1")
    values = [v for k, v in parse_qsl(text, keep_blank_values=True, encoding="latin-1") if k == "version"]
    if not values:
        return None
    if len(values) > 1 or not _VERSION.fullmatch(values[0]) or int(values[0]) > _MAX_VERSION:
        raise ValueError("version: not one plain number in range")
    return int(values[0])
