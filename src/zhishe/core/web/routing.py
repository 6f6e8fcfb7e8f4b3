"""Route lookup by literal path prefix, so that a request is matched against the few routes that
could answer it rather than against every route of the platform.

The web framework matches a request by trying each route in turn, and each try costs several
microseconds (a route included from a router costs more: the framework rebuilds scope entries per
try). With several hundred routes, a request for one of the last ones spent milliseconds before its
handler ran: more than most handlers take.

``flatten`` adds a router's routes to the application directly instead of nesting the router, and
``RouteIndex`` (installed as the application router's entry point) groups the routes by their
literal leading path segments: ``/open311/v2/requests/{id}.{fmt}`` is only a candidate for paths
whose segments begin ``open311``, ``v2``, ``requests``. A request is then routed by the framework's
own code over the candidates for its path, in the order the routes were added, so the answer is
the one a full walk would give:

- a route outside the candidates cannot match the path, nor the path with or without a trailing
  slash (the slash redirect), since its literal segments differ;
- a route whose first segment holds a parameter, or a route of a kind the index doesn't know, is a
  candidate for every path;
- routes added after the index was built (tests include routers late) rebuild it.

``direct`` marks an endpoint that the index may call itself once its route is chosen: a GET
endpoint whose parameters are the request and its path parameters (strings), returning a response
it builds itself. The framework's handling of such a call (solving dependencies it has none of,
validating string parameters, wrapping a response it would pass on unchanged) costs about
0.2 ms, a quarter of a busy Open311 read. Errors raised by the endpoint still reach the
application's exception handlers, which sit above the router.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import APIRouter, FastAPI
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute, compile_path
from starlette.types import Receive, Scope, Send

__all__ = ["REST", "RouteIndex", "direct", "flatten", "install"]

_E = TypeVar("_E", bound=Callable[..., Awaitable[Response]])


class _Rest(Convertor[str]):
    """Any rest of a path, line breaks included. Starlette's ``path`` convertor is ``.*``, which
    stops at a line break: ``/open311/v2/requests/%2F%0A.json`` then matched no catch-all route
    and got the platform's 404 instead of the API's own error."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


#: The convertor name for a catch-all parameter: ``f"/api/{{rest:{routing.REST}}}"``.
REST = "rest"
register_url_convertor(REST, _Rest())

#: Endpoints the index calls itself (see ``direct``).
_DIRECT: set[Callable[..., Any]] = set()

#: Candidate lists kept per leading-segments key; paths are unbounded, so the cache is too.
_MAX_KEYS = 4096


def flatten(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``app`` as they are (their paths already carry the router's prefix).

    Only plain routers can be flattened: a router that nests another must list it separately."""
    for route in router.routes:
        if not isinstance(route, Route | WebSocketRoute | Mount):
            raise TypeError(
                f"cannot flatten {type(route).__name__} in a router: add it to the app on its own"
            )
        app.router.routes.append(route)


def direct(endpoint: _E) -> _E:
    """Let the route index call this GET endpoint itself (see the module). Put it under the route
    decorator; the endpoint must take ``request`` and then only ``str`` path parameters."""
    signature = inspect.signature(endpoint)
    names = list(signature.parameters)
    is_async = inspect.iscoroutinefunction(cast(Any, endpoint))
    if not is_async or not names or names[0] != "request":
        raise TypeError(f"{endpoint.__name__}: a direct endpoint is async and takes the request first")
    for name in names[1:]:
        if signature.parameters[name].annotation not in (str, "str"):
            raise TypeError(f"{endpoint.__name__}: parameter {name} of a direct endpoint must be a str")
    _DIRECT.add(endpoint)
    return endpoint


def _direct_fits(route: BaseRoute) -> bool:
    """Whether the route's path parameters are exactly its direct endpoint's other parameters."""
    if not isinstance(route, Route) or route.endpoint not in _DIRECT or route.methods != {"GET"}:
        return False
    _, _, convertors = compile_path(route.path)
    return list(convertors) == list(inspect.signature(route.endpoint).parameters)[1:]


def literal_key(path: str) -> tuple[str, ...]:
    """The leading path segments that a route's path fixes (up to the first with a parameter)."""
    key: list[str] = []
    for segment in path.split("/"):
        if "{" in segment:
            break
        if segment:
            key.append(segment)
    return tuple(key)


def _route_key(route: BaseRoute) -> tuple[str, ...]:
    if isinstance(route, Route | WebSocketRoute | Mount):
        return literal_key(route.path)
    return ()  # unknown kind (a router included late): a candidate everywhere


def _route_path(scope: Scope) -> str:
    """The path the routes see: the request's path without the application's root path."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


@dataclass(frozen=True, slots=True)
class _View:
    """The routes that could answer a path, and whether one of them has a direct endpoint."""

    router: APIRouter
    direct: bool


class RouteIndex:
    """The application router's entry point: routes each request over its candidate routes."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._built_for: tuple[int, int] | None = None
        self._keys: list[tuple[tuple[str, ...], BaseRoute]] = []
        self._depth = 0
        self._views: dict[tuple[str, ...], _View] = {}
        self._direct: set[int] = set()  # ids of the routes of direct endpoints
        #: Off only in tests that compare the two ways of handling a request.
        self.direct_enabled = True

    def _build(self) -> None:
        routes = self.router.routes
        self._keys = [(_route_key(route), route) for route in routes]
        self._depth = max((len(key) for key, _ in self._keys), default=0)
        self._views = {}
        self._direct = {id(route) for route in routes if _direct_fits(route)}
        self._built_for = (id(routes), len(routes))

    def _view(self, path: str) -> _View:
        """The candidate routes of ``path``, as a router the framework can route over."""
        routes = self.router.routes
        if self._built_for != (id(routes), len(routes)):
            self._build()
        segments = tuple(s for s in path.split("/") if s)[: self._depth]
        view = self._views.get(segments)
        if view is None:
            if len(self._views) >= _MAX_KEYS:
                self._views.clear()
            router = copy.copy(self.router)
            router.routes = [route for key, route in self._keys if segments[: len(key)] == key]
            view = _View(router, any(id(route) in self._direct for route in router.routes))
            self._views[segments] = view
        return view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.router.app(scope, receive, send)  # lifespan
            return
        scope.setdefault("router", self.router)  # url_for looks in every route, not the candidates
        view = self._view(_route_path(scope))
        if view.direct and self.direct_enabled and scope["method"] == "GET":
            for route in view.router.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    if id(route) in self._direct:
                        scope.update(child_scope)
                        endpoint: Any = route.endpoint  # type: ignore[attr-defined]
                        response = await endpoint(Request(scope, receive, send), **scope["path_params"])
                        await response(scope, receive, send)
                        return
                    break
        await view.router.app(scope, receive, send)


def install(app: FastAPI) -> Any:
    """Route ``app``'s requests through a ``RouteIndex`` (call once every route is added)."""
    index = RouteIndex(app.router)
    app.router.middleware_stack = index
    return index
