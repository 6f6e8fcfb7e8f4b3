"""Per-request context: the request id and the language, carried in context variables."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["current_language", "current_request_id"]

current_request_id: ContextVar[str | None] = ContextVar("zhishe_request_id", default=None)
current_language: ContextVar[str] = ContextVar("zhishe_language", default="zh-CN")
