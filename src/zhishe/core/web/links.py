"""The ``Link: rel="next"`` header of keyset-paged lists."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Response

__all__ = ["link_next"]


def link_next(response: Response, next_token: str | None, params: dict[str, object] | None = None) -> None:
    """Add ``Link: <?after=...>; rel="next"`` when there is a next page."""
    if next_token:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query["after"] = next_token
        response.headers["Link"] = f'<?{urlencode(query)}>; rel="next"'
