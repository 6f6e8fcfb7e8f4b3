"""Builds the FastAPI application from each domain's routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from zhishe import __version__, hooks
from zhishe.catalog import api as catalog_api
from zhishe.catalog import pages as catalog_pages
from zhishe.catalog import service as catalog_service
from zhishe.core import jobs
from zhishe.core.accounts import api as accounts_api
from zhishe.core.accounts import pages as accounts_pages
from zhishe.core.accounts import service as accounts_service
from zhishe.core.areas import api as areas_api
from zhishe.core.audit import api as audit_api
from zhishe.core.audit import pages as audit_pages
from zhishe.core.config import Settings, get_settings
from zhishe.core.db import get_engine
from zhishe.core.deps import OptionalActor, SessionDep
from zhishe.core.notifications import api as notifications_api
from zhishe.core.notifications import pages as notifications_pages
from zhishe.core.observability import REGISTRY, configure_logging
from zhishe.core.web import pages as web_pages
from zhishe.core.web import routing
from zhishe.core.web.errors import install_error_handlers
from zhishe.core.web.middleware import RequestContextMiddleware
from zhishe.core.web.shell import register_templates, render
from zhishe.energy import api as energy_api
from zhishe.energy import api_charging as energy_api_charging
from zhishe.energy import api_dr as energy_api_dr
from zhishe.energy import pages as energy_pages
from zhishe.exchange import api as exchange_api
from zhishe.exchange import pages as exchange_pages
from zhishe.finance import ads as finance_ads
from zhishe.finance import api as finance_api
from zhishe.finance import api_revenue as finance_api_revenue
from zhishe.finance import pages as finance_pages
from zhishe.finance import revenue_pages as finance_revenue_pages
from zhishe.iot import api as iot_api
from zhishe.iot import pages as iot_pages
from zhishe.iot import sensorthings
from zhishe.opendata import api as opendata_api
from zhishe.opendata import pages as opendata_pages
from zhishe.opendata.lane import QuickLane
from zhishe.participation import api as participation_api
from zhishe.participation import apikeys as participation_apikeys
from zhishe.participation import incidents_web as participation_incidents
from zhishe.participation import open311 as participation_open311
from zhishe.participation import pages as participation_pages
from zhishe.participation import staff_pages as participation_staff
from zhishe.participation import suggestions_web as participation_suggestions
from zhishe.services import api as services_api
from zhishe.services import api_catalog as services_api_catalog
from zhishe.services import api_money as services_api_money
from zhishe.services import api_profile as services_api_profile
from zhishe.services import api_special as services_api_special
from zhishe.services import pages as services_pages
from zhishe.services import pages_catalog as services_pages_catalog
from zhishe.services import pages_money as services_pages_money
from zhishe.services import pages_profile as services_pages_profile
from zhishe.services import pages_special as services_pages_special

__all__ = ["create_app"]

_HERE = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> FastAPI:
    """The whole platform as one ASGI application."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    hooks.install()
    from zhishe.services import engine

    engine.load_processes()  # every declared process is loaded and validated before the first request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stops = []
        if settings.background_workers:
            from zhishe.core.db import get_sessionmaker
            from zhishe.energy import worker as energy_worker
            from zhishe.exchange import worker
            from zhishe.iot import worker as iot_worker
            from zhishe.opendata import worker as opendata_worker
            from zhishe.participation import worker as participation_worker
            from zhishe.services import worker as services_worker

            stops.append(worker.start(lambda: get_sessionmaker(settings.database_url)))
            stops.append(opendata_worker.start(lambda: get_sessionmaker(settings.database_url)))
            stops.append(iot_worker.start(lambda: get_sessionmaker(settings.database_url)))
            stops.append(energy_worker.start(lambda: get_sessionmaker(settings.database_url)))
            stops.append(participation_worker.start(lambda: get_sessionmaker(settings.database_url)))
            stops.append(services_worker.start(lambda: get_sessionmaker(settings.database_url)))
        yield
        for stop in stops:
            stop()
        jobs.shutdown()  # let running imports finish before the process exits

    app = FastAPI(
        lifespan=lifespan,
        title="Zhishe (智社) API",
        version=__version__,
        description="The open smart-community platform. JSON API under /api/v1; errors use one envelope "
        '`{"error": {"type", "message", "detail"}, "request_id"}`; lists page by keyset (`next` + Link header).',
        docs_url=None,
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(QuickLane)  # inside the request context: short open-data pages, unrouted
    app.add_middleware(RequestContextMiddleware)
    for folder in (
        _HERE / "core/accounts/templates",
        _HERE / "core/audit/templates",
        _HERE / "catalog/templates",
        _HERE / "core/notifications/templates",
        _HERE / "exchange/templates",
        _HERE / "opendata/templates",
        _HERE / "iot/templates",
        _HERE / "energy/templates",
        _HERE / "participation/templates",
        _HERE / "services/templates",
        _HERE / "finance/templates",
    ):
        register_templates(folder)
    app.mount(
        "/static/vendor", StaticFiles(directory=Path(plotly.__file__).parent / "package_data"), name="vendor"
    )
    app.mount("/static", StaticFiles(directory=_HERE / "core/web/static"), name="static")
    for router in (
        opendata_api.query_router,  # first: the busiest public route, matched before all others
        participation_open311.router,  # next: Open311 clients, the other busy public API
        participation_apikeys.router,
        accounts_api.router,
        audit_api.router,
        catalog_api.router,
        exchange_api.router,
        opendata_api.public,
        opendata_api.staff,
        opendata_api.dcat_router,
        iot_api.router,
        sensorthings.router,
        energy_api.router,
        energy_api_dr.router,
        energy_api_charging.router,
        participation_api.router,
        participation_suggestions.router,
        participation_incidents.router,
        services_api_catalog.router,
        services_api.router,
        services_api_special.router,
        services_api_money.router,
        services_api_profile.router,
        finance_api.router,
        finance_api_revenue.router,
        areas_api.router,
        notifications_api.router,
        web_pages.router,
        accounts_pages.router,
        audit_pages.router,
        catalog_pages.router,
        exchange_pages.router,
        opendata_pages.router,
        iot_pages.router,
        energy_pages.router,
        participation_pages.router,
        participation_staff.router,
        services_pages_catalog.router,
        services_pages.router,
        services_pages_special.router,
        services_pages_money.router,
        services_pages_profile.router,
        finance_pages.router,
        finance_revenue_pages.router,
        notifications_pages.router,
    ):
        routing.flatten(app, router)
    _add_platform_routes(app)
    routing.install(app)
    return app


def _add_platform_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, session: SessionDep, actor: OptionalActor) -> Response:
        stats: dict[str, int] = {}
        recent = []
        resident = actor is None or not actor.is_staff
        if actor is not None and actor.is_staff:
            stats = catalog_service.stats(session=session, actor=actor)
            stats["orgs"] = len(accounts_service.list_orgs(session=session, actor=actor, limit=1000).items)
            recent = catalog_service.recent(session=session, actor=actor)
        # the resident home page carries the "home" advertising placement (its impression is counted)
        ad = finance_ads.serve(session, "home") if resident else None
        return render(request, "home.html", {"stats": stats, "recent": recent, "ad": ad})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Zhishe (智社) API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"syntaxHighlight": False},
        )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> Response:
        """The database and the lake are reachable."""
        settings = get_settings()
        checks: dict[str, str] = {}
        try:
            with get_engine(settings.database_url).connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # report, don't crash: that's the point of a readiness probe
            checks["database"] = f"error: {type(exc).__name__}"
        lake_root = settings.lake_uri
        if "://" in lake_root and not lake_root.startswith("file://"):
            checks["lake"] = "ok (remote, not probed)"
        else:
            path = Path(lake_root.removeprefix("file://"))
            try:
                path.mkdir(parents=True, exist_ok=True)
                probe = path / ".ready"
                probe.write_text("ok")
                probe.unlink()
                checks["lake"] = "ok"
            except OSError as exc:
                checks["lake"] = f"error: {exc.strerror}"
        ready = all(v.startswith("ok") for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
