"""JSON logs (structlog) and Prometheus metrics shared by every domain."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from zhishe.core.context import current_request_id

__all__ = [
    "IMPORTS",
    "IMPORT_ROWS",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "configure_logging",
    "get_logger",
]

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "zhishe_http_requests_total",
    "HTTP requests by route, method and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "zhishe_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
IMPORTS = Counter("zhishe_imports_total", "Dataset imports by outcome", ["outcome"], registry=REGISTRY)
IMPORT_ROWS = Counter("zhishe_import_rows_total", "Rows written by imports", registry=REGISTRY)

_SECRET_KEYS = {"password", "token", "secret", "authorization", "cookie", "csrf_token", "secret_key"}


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = current_request_id.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


_configured = False


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr, each with the request id when there is one; secrets redacted."""
    global _configured
    if _configured:
        return
    logging.basicConfig(
        format="%(message)s", stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_request_id,
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> Any:
    """A structured logger."""
    return structlog.get_logger(name)
