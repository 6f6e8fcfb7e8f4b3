"""IoT admin pages: the sites an actor may see, and a site's devices with their datastreams and
latest values; provisioning a device (its token shown once), a CSV import, token rotation, and a
household's consents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from zhishe.core.auth import can
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Conflict, Invalid
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.iot import kinds, reads
from zhishe.iot import service as iot

router = APIRouter(include_in_schema=False)


@router.get("/iot", response_class=HTMLResponse)
def sites_page(request: Request, session: SessionDep, actor: PageActor, kind: str = "") -> Response:
    """The sites of the actor's organisation, or the resident's own household."""
    sites = iot.list_sites(session=session, actor=actor, kind=kind or None, limit=1000)
    manage = actor.org_id is not None and can(actor, "iot.manage", org_id=actor.org_id)
    return render(
        request,
        "iot/sites.html",
        {"sites": sites, "kind": kind, "kinds": kinds.SITE_KINDS, "manage": manage, "error": None},
    )


@router.post("/iot", response_class=HTMLResponse)
async def create_site(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a site from the form."""
    form = await request.form()
    check_csrf(request, form)
    limit = str(form.get("limit_kw") or "").strip()
    parent = str(form.get("parent_id") or "").strip()
    try:
        properties: dict[str, Any] = {}
        if limit:
            try:
                properties["limit_kw"] = float(limit)
            except ValueError:
                raise Invalid("limit_kw must be a number of kW", detail={"field": "limit_kw"}) from None
        site = iot.create_site(
            session=session,
            actor=actor,
            code=str(form.get("code") or ""),
            kind=str(form.get("kind") or ""),
            name=str(form.get("name") or ""),
            parent_id=int(parent) if parent.isdigit() else None,
            properties=properties,
        )
    except (Invalid, Conflict) as exc:
        session.rollback()
        sites = iot.list_sites(session=session, actor=actor, limit=1000)
        return render(
            request,
            "iot/sites.html",
            {"sites": sites, "kind": "", "kinds": kinds.SITE_KINDS, "manage": True, "error": exc.message},
            status=exc.status_code,
        )
    return redirect(f"/iot/sites/{site.id}")


def _site_context(session: Any, actor: Any, site_id: int) -> dict[str, Any]:
    access = iot.read_site(session=session, actor=actor, site_id=site_id)
    site = access.site
    devices = iot.list_devices(session=session, actor=actor, site_id=site_id)
    latest = (
        {
            stream.id: latest
            for stream, latest in reads.latest_of_site(session=session, actor=actor, site_id=site_id)
        }
        if access.detail
        else {}
    )
    streams = {d.id: iot.datastreams_of(session=session, device_id=d.id) for d in devices}
    return {
        "site": site,
        "access": access,
        "devices": devices,
        "streams": streams,
        "latest": latest,
        "device_kinds": list(kinds.DEVICE_KINDS),
        "manage": can(actor, "iot.manage", org_id=site.org_id),
        "token": None,
        "created": [],
        "error": None,
    }


@router.get("/iot/sites/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, site_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """A site: its devices, datastreams and latest values."""
    return render(request, "iot/site.html", _site_context(session, actor, site_id))


@router.post("/iot/sites/{site_id}", response_class=HTMLResponse)
async def site_action(request: Request, site_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """Provision a device, import a CSV, rotate a token, or change the household's consents."""
    form = await request.form()
    check_csrf(request, form)
    action = str(form.get("action") or "")
    token: tuple[str, str] | None = None
    created: list[tuple[str, str]] = []
    try:
        if action == "device":
            new = iot.create_device(
                session=session,
                actor=actor,
                site_id=site_id,
                code=str(form.get("code") or ""),
                kind=str(form.get("kind") or ""),
                name=str(form.get("name") or ""),
                room=str(form.get("room") or ""),
                phase=str(form.get("phase") or ""),
            )
            token = (new.device.code, new.token)
        elif action == "rotate":
            device_id = str(form.get("device_id") or "")
            if not device_id.isdigit():
                raise Invalid("say which device", detail={"field": "device_id"})
            new = iot.rotate_token(session=session, actor=actor, device_id=int(device_id))
            token = (new.device.code, new.token)
        elif action == "import":
            upload = form.get("file")
            text = ""
            if upload is not None and hasattr(upload, "read"):
                raw = await upload.read()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise Invalid("the CSV must be UTF-8", detail={"field": "file"}) from None
            result = iot.import_devices(session=session, actor=actor, text=text)
            created = [(n.device.code, n.token) for n in result.created]
        elif action == "consent":
            iot.set_consent(
                session=session,
                actor=actor,
                site_id=site_id,
                detail=form.get("detail") == "on",
                care=form.get("care") == "on",
            )
            return redirect(f"/iot/sites/{site_id}")
        else:
            raise Invalid("unknown action", detail={"action": action})
    except (Invalid, Conflict) as exc:
        session.rollback()
        context = _site_context(session, actor, site_id)
        context["error"] = exc.message
        return render(request, "iot/site.html", context, status=exc.status_code)
    session.commit()
    context = _site_context(session, actor, site_id)
    context["token"] = token
    context["created"] = created
    response = render(request, "iot/site.html", context)
    response.headers["Cache-Control"] = "no-store"  # the page shows a token once
    return response
