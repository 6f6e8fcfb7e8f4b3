"""ASGI middleware: request ids, language, body-size limit, metrics and the access log."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhishe.core.config import get_settings
from zhishe.core.context import current_language, current_request_id
from zhishe.core.i18n import language_from
from zhishe.core.observability import REQUEST_SECONDS, REQUESTS, get_logger
from zhishe.core.pagination import is_number

__all__ = ["LANG_COOKIE", "BodyTooLarge", "RequestContextMiddleware"]

LANG_COOKIE = "zhishe_lang"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_log = get_logger("zhishe.http")


class BodyTooLarge(Exception):
    """The request body went over the configured limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _cookie(scope: Scope, name: str) -> str:
    for part in _header(scope, b"cookie").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _query_lang(scope: Scope) -> str | None:
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key == "lang":
            return language_from(value)
    return None


class RequestContextMiddleware:
    """Sets the request id and language for the request, limits the body, records metrics and logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        query_lang = _query_lang(scope)
        language = query_lang or language_from(_cookie(scope, LANG_COOKIE)) or settings.language
        id_token = current_request_id.set(request_id)
        lang_token = current_language.set(language)
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        limit = settings.max_upload_bytes + 1024 * 1024  # room for multipart framing
        length = _header(scope, b"content-length")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(settings.max_upload_bytes)
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if query_lang:
                    headers.append(
                        (
                            b"set-cookie",
                            f"{LANG_COOKIE}={query_lang}; Path=/; Max-Age=31536000; SameSite=Lax".encode(),
                        )
                    )
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                message["headers"] = headers
            await send(message)

        try:
            if is_number(length) and int(length) > limit:
                await _too_large(send_wrapper, settings.max_upload_bytes, request_id)
                return
            await self.app(scope, limited_receive, send_wrapper)
        except BodyTooLarge as exc:
            await _too_large(send_wrapper, exc.limit, request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], route_path, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], route_path).observe(elapsed)
            _log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route_path,
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            current_request_id.reset(id_token)
            current_language.reset(lang_token)


async def _too_large(send: Any, limit: int, request_id: str) -> None:
    import orjson

    mib = limit // (1024 * 1024)
    body = orjson.dumps(
        {
            "error": {
                "type": "too_large",
                "message": f"the upload is larger than the limit of {mib} MiB (ZHISHE_MAX_UPLOAD_MB)",
                "detail": {"limit_bytes": limit},
            },
            "request_id": request_id,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
