"""The route index answers every request with the route a full walk of the routes would choose."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match, Mount, Route

from zhishe.app import create_app
from zhishe.core.web import routing

_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def _sample(path: str) -> str:
    """A concrete path the route's pattern accepts (integers for int parameters)."""
    return _PARAM.sub(lambda m: "7" if m.group(2) == "int" else "x1", path)


def _first_full(routes: list, scope: dict) -> object | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


def test_every_route_is_found_among_its_candidates(app: FastAPI) -> None:
    index = app.router.middleware_stack
    assert isinstance(index, routing.RouteIndex)
    checked = 0
    for route in app.router.routes:
        if not isinstance(route, Route | Mount):
            continue
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        for path in (_sample(route.path), _sample(route.path) + "/", "/" + _sample(route.path).strip("/")):
            scope = {"type": "http", "method": methods[0], "path": path, "root_path": "", "path_params": {}}
            expected = _first_full(app.router.routes, scope)
            got = _first_full(index._view(path).router.routes, scope)
            assert got is expected, f"{methods[0]} {path}: index chose {got}, a full walk {expected}"
            checked += 1
    assert checked > 1000  # every route, with and without its trailing slash


def test_candidates_are_few(app: FastAPI) -> None:
    index = app.router.middleware_stack
    everything = len(app.router.routes)
    assert len(index._view("/open311/v2/requests/12.json").router.routes) < everything / 10
    assert len(index._view("/healthz").router.routes) < everything / 10


def test_literal_key_stops_at_the_first_parameter() -> None:
    assert routing.literal_key("/open311/v2/requests/{id}.{fmt}") == ("open311", "v2", "requests")
    assert routing.literal_key("/open311/v2/requests.{fmt}") == ("open311", "v2")
    assert routing.literal_key("/{slug}/x") == ()
    assert routing.literal_key("/") == ()


def test_405_slash_redirect_404_and_late_routers_behave_as_before(app: FastAPI) -> None:
    late = APIRouter()

    @late.get("/late-added/{n}")
    def late_added(n: int) -> dict[str, int]:
        return {"n": n}

    app.include_router(late)  # after the index was built: it must rebuild
    with TestClient(app) as client:
        assert client.get("/late-added/5").json() == {"n": 5}
        assert client.delete("/healthz").status_code == 405
        assert client.get("/no/such/page", headers={"accept": "application/json"}).status_code == 404
        moved = client.get("/healthz/", follow_redirects=False)
        assert moved.status_code in (307, 308) and moved.headers["location"].endswith("/healthz")
        assert client.get("/healthz").json()["status"] == "ok"


def test_flatten_refuses_a_nested_router() -> None:
    outer, inner = APIRouter(), APIRouter()

    @inner.get("/inner")
    def inner_route() -> None:
        return None

    outer.include_router(inner)
    with pytest.raises(TypeError, match="cannot flatten"):
        routing.flatten(FastAPI(), outer)
