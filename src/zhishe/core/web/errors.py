"""Turning errors into the one JSON envelope (API) or an error page (HTML)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhishe.core.context import current_request_id
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.observability import get_logger
from zhishe.core.web.shell import LoginRequired, error_page, redirect

__all__ = ["envelope", "install_error_handlers", "wants_json"]

_log = get_logger("zhishe.errors")
_JSON_PREFIXES = ("/api/", "/open311/", "/sensorthings/", "/fhir/", "/opendata/api/", "/healthz", "/readyz")


def wants_json(request: Request) -> bool:
    """Whether the error should be JSON (API paths, or a client that asks for JSON)."""
    path = request.url.path
    return path.startswith(_JSON_PREFIXES) or "application/json" in request.headers.get("accept", "")


def envelope(
    type_: str, message: str, detail: Any, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error envelope ``{"error": {"type", "message", "detail"}, "request_id"}``."""
    return JSONResponse(
        {
            "error": {"type": type_, "message": message, "detail": detail},
            "request_id": current_request_id.get(),
        },
        status_code=status,
        headers=headers,
    )


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: ZhisheError, validation errors, HTTP errors and the last-resort 500."""

    @app.exception_handler(ZhisheError)
    async def _zhishe(request: Request, exc: ZhisheError) -> Response:
        headers = None
        if exc.status_code == 429:
            seconds = exc.detail.get("retry_after_seconds", exc.detail.get("retry_after"))
            if seconds is None:
                seconds = exc.detail.get("retry_after_minutes", 15) * 60
            headers = {"Retry-After": str(max(1, math.ceil(seconds)))}
        if exc.status_code == 401 and not request.url.path.startswith("/login"):
            headers = {"WWW-Authenticate": 'Bearer realm="zhishe"'}
        if wants_json(request):
            return envelope(exc.type, exc.message, exc.detail, exc.status_code, headers)
        return error_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": _loc(err.get("loc", ())), "message": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "request", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        if wants_json(request):
            return envelope("invalid", message, {"errors": problems}, 422)
        return error_page(request, Invalid(message, detail={"errors": problems}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        names = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
        type_ = names.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else type_
        if exc.status_code == 404:
            message = f"no such page or endpoint: {request.url.path}"
        if wants_json(request):
            return envelope(type_, message, {}, exc.status_code, getattr(exc, "headers", None))
        err = ZhisheError(message)
        err.status_code = exc.status_code
        return error_page(request, err)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return redirect(f"/login?next={quote(exc.next_url, safe='/')}")

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _overflow(request: Request, exc: Exception) -> Response:
        message = "a number in the request is out of range"
        if wants_json(request):
            return envelope("invalid", message, {}, 422)
        return error_page(request, Invalid(message))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # this handler runs outside the request-context middleware: take the id from the request
        request_id = current_request_id.get() or getattr(request.state, "request_id", None)
        _log.error(
            "unhandled error", path=request.url.path, error=repr(exc), exc_info=exc, request_id=request_id
        )
        message = "an unexpected error occurred; it has been logged with this request id"
        return JSONResponse(
            {"error": {"type": "internal", "message": message, "detail": {}}, "request_id": request_id},
            status_code=500,
            headers={"X-Request-ID": request_id} if request_id else None,
        )
