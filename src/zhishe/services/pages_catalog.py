"""Pages of the marketplace catalogue: discovery for residents, the provider's own profile, licences and listings, and the operator's provider list."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from zhishe.core.auth import Actor, can
from zhishe.core.config import get_settings
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.finance import money, periods
from zhishe.services import discovery, engine, licences, listings, pricing, providers
from zhishe.services.models import Listing, Provider

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
R = TypeVar("R")


# --- form helpers ---------------------------------------------------------------------------------


def _str(form: FormData | dict[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int_or_none(text: str, field: str) -> int | None:
    if not text:
        return None
    if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit():
        raise Invalid(T("{field} must be a whole number", field=field), detail={"field": field})
    return int(text)


def _fen(text: str, field: str) -> int | None:
    """A yuan amount typed on a form (``12.5``) as exact fen; None when left empty."""
    return money.parse_yuan(text, field=field, allow_zero=True, allow_negative=True) if text else None


def _attempt(session: Session, action: Callable[[], R]) -> tuple[R | None, ZhisheError | None]:
    """Run a service call; on a refusal, roll back whatever it wrote and hand back the error."""
    try:
        return action(), None
    except ZhisheError as exc:
        session.rollback()
        return None, exc


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form)
    return form


# --- resident discovery ---------------------------------------------------------------------------


@router.get("/services", response_class=HTMLResponse)
def discover(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The resident's discovery page: search, category chips, filters and ranked result cards."""
    params = request.query_params
    values = {
        k: params.get(k, "") for k in ("q", "category", "sort", "max_price", "max_distance_m", "min_rating")
    }
    error: ZhisheError | None = None
    results: discovery.Results | None = None
    try:
        min_rating = float(values["min_rating"]) if values["min_rating"] else None
        results = discovery.search(
            session,
            actor=actor,
            q=values["q"] or None,
            category=values["category"] or None,
            max_distance_m=_int_or_none(values["max_distance_m"], "max_distance_m"),
            max_price_fen=_fen(values["max_price"], "max_price"),
            min_rating=min_rating,
            sort=values["sort"] or "rank",
            after=params.get("after") or None,
            limit=20,
        )
    except ValueError:
        error = Invalid(T("min_rating must be a number from 0 to 5"), detail={"field": "min_rating"})
    except ZhisheError as exc:
        error = exc
    context = {
        "yuan": money.yuan_label,
        "categories": providers.list_categories(session),
        "values": values,
        "results": results,
        "error": error,
        "sorts": discovery.SORTS,
        "next_query": _next_query(values, results.next if results else None),
    }
    return render(
        request, "services/catalog_search.html", context, status=error.status_code if error else 200
    )


def _next_query(values: dict[str, str], token: str | None) -> str | None:
    if not token:
        return None
    from urllib.parse import urlencode

    return urlencode({**{k: v for k, v in values.items() if v}, "after": token})


@router.get("/services/listings/{listing_id}", response_class=HTMLResponse)
def listing_page(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A listing: photos, description, price lines, free slots and the booking form."""
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    provider = providers.get_or_raise(session, listing.provider_id)
    minimum = int((listing.price_rules or {}).get("min_units", 1) or 1)
    quote, quote_error = _attempt(
        session,
        lambda: pricing.quote(
            session, listing=listing, resident_user_id=actor.user_id, quantity=max(1, minimum), options={}
        ),
    )
    rules = pricing.check_price_rules(listing.price_rules) if quote else {"surcharges": []}
    context = {
        "yuan": money.yuan_label,
        "listing": listing,
        "provider": provider,
        "photos": listings.list_photos(session, listing.id),
        "quote": quote,
        "quote_error": quote_error,
        "extras": [s for s in rules["surcharges"] if s["when"] == "option"],
        "surcharges": rules["surcharges"],
        "hit": discovery.factors(session, actor=actor, listing=listing),
        "slots": listings.list_slots(session, listing_id=listing.id, free_only=True, limit=60)
        if listing.availability == "slots"
        else [],
        "batches": listings.list_batches(session, listing_id=listing.id, in_stock_only=True)
        if listing.availability == "stock"
        else [],
        "min_units": max(1, minimum),
        "sellable": listing.status == "active" and provider.status == "active",
    }
    return render(request, "services/catalog_listing.html", context)


# --- the provider's own pages ---------------------------------------------------------------------


def _own_provider(session: Session, actor: Actor) -> Provider | None:
    return providers.for_org(session, actor.org_id)


def _provider_page(
    request: Request, session: Session, actor: Actor, *, error: ZhisheError | None = None, values: Any = None
) -> Response:
    provider = _own_provider(session, actor)
    from zhishe.core.errors import Forbidden

    if not can(actor, "services.provide", org_id=actor.org_id):
        raise Forbidden(T("only staff of a service provider or clinic have a shop page"))
    today = periods.local_today()
    rows = licences.list_licences(session, actor=actor, provider_id=provider.id) if provider else []
    context = {
        "provider": provider,
        "values": values,
        "error": error,
        "categories": providers.list_categories(session),
        "licences": [(row, (row.expires_on - today).days) for row in rows],
        "remind_days": licences.REMIND_DAYS,
        "listings": listings.list_for_provider(session, actor=actor, provider_id=provider.id)
        if provider
        else [],
        "prefix": licences.LICENCE_PREFIX,
        "processes": engine.load_processes(),
    }
    return render(request, "services/provider_home.html", context, status=error.status_code if error else 200)


@router.get("/provider", response_class=HTMLResponse)
def provider_home(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The provider's profile form, its licences with expiry badges and upload form, and its listings."""
    return _provider_page(request, session, actor)


def _profile_data(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: _str(form, k) for k in ("name_zh", "name_en", "description_zh", "description_en", "phone")
    }
    data["lat"], data["lon"] = _str(form, "lat"), _str(form, "lon")
    data["radius_m"] = _str(form, "radius_m") or providers.DEFAULT_RADIUS_M
    data["categories"] = [str(v) for v in form.getlist("categories") if isinstance(v, str)]
    return data


@router.post("/provider", response_class=HTMLResponse)
async def provider_save(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create or update the provider's profile."""
    form = await _form(request)
    data = _profile_data(form)
    existing = _own_provider(session, actor)
    if existing is None:
        _, error = _attempt(session, lambda: providers.create(session, actor=actor, data=data))
    else:
        _, error = _attempt(
            session, lambda: providers.update(session, actor=actor, provider_id=existing.id, data=data)
        )
    if error:
        return _provider_page(request, session, actor, error=error, values=data)
    return redirect("/provider?saved=1")


async def _file(form: FormData, name: str, limit: int) -> tuple[bytes, str]:
    item = form.get(name)
    if not isinstance(item, UploadFile):
        raise Invalid(T("choose a file to upload"), detail={"field": name})
    return await item.read(limit + 1), item.filename or ""


def _date(text: str, field: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            T("{field} must be a date such as 2027-06-30", field=field), detail={"field": field}
        ) from None


@router.post("/provider/licences", response_class=HTMLResponse)
async def provider_licence(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Upload a licence from the provider page."""
    form = await _form(request)
    provider = _own_provider(session, actor)
    try:
        if provider is None:
            raise Invalid(
                T("create your provider profile before adding listings"), detail={"field": "provider"}
            )
        data, filename = await _file(form, "file", licences.MAX_BYTES)
        valid_from = _str(form, "valid_from")
        licences.upload(
            session,
            actor=actor,
            provider_id=provider.id,
            kind=_str(form, "kind"),
            number=_str(form, "number"),
            expires_on=_date(_str(form, "expires_on"), "expires_on"),
            valid_from=_date(valid_from, "valid_from") if valid_from else None,
            data=data,
            filename=filename,
        )
    except ZhisheError as exc:
        session.rollback()
        return _provider_page(request, session, actor, error=exc)
    return redirect("/provider?uploaded=1")


@router.get("/provider/licences/{licence_id}/file")
def provider_licence_file(licence_id: IdPath, session: SessionDep, actor: PageActor) -> Response:
    """Download a licence (audited)."""
    licence = licences.get_file(session, actor=actor, licence_id=licence_id)
    return Response(
        licence.content,
        media_type=licence.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="licence-{licence.id}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- the provider's listings ----------------------------------------------------------------------


def _listing_data(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: _str(form, k)
        for k in (
            "title_zh",
            "title_en",
            "description_zh",
            "description_en",
            "category",
            "process",
            "availability",
        )
    }
    surcharges_text = _str(form, "surcharges") or "[]"
    settings_text = _str(form, "settings") or "{}"
    try:
        surcharges = json.loads(surcharges_text)
    except ValueError:
        raise Invalid(
            T("surcharges must be JSON: a list of surcharges"), detail={"field": "price_rules.surcharges"}
        ) from None
    try:
        data["settings"] = json.loads(settings_text)
    except ValueError:
        raise Invalid(T("settings must be a JSON object"), detail={"field": "settings"}) from None
    data["price_rules"] = {
        "unit": _str(form, "unit"),
        "unit_fen": _fen(_str(form, "unit_price"), "unit_price"),
        "min_units": _int_or_none(_str(form, "min_units"), "min_units") or 1,
        "surcharges": surcharges,
    }
    data["cancellation_policy"] = {
        key: _int_or_none(_str(form, key), key)
        for key in ("free_until_hours", "late_fee_bps", "no_show_fee_bps")
    }
    return data


def _edit_page(
    request: Request,
    session: Session,
    actor: Actor,
    listing: Listing | None,
    *,
    error: ZhisheError | None = None,
    form: FormData | None = None,
) -> Response:
    provider = (listing and providers.get_or_raise(session, listing.provider_id)) or _own_provider(
        session, actor
    )
    if provider is None:
        return redirect("/provider")
    context = {
        "yuan": money.yuan_label,
        "listing": listing,
        "provider": provider,
        "form": form,
        "error": error,
        "processes": listings.PROCESSES,
        "units": pricing.UNITS,
        "availabilities": listings.AVAILABILITY,
        "slots": listings.list_slots(session, listing_id=listing.id, limit=100) if listing else [],
        "batches": listings.list_batches(session, listing_id=listing.id) if listing else [],
        "photos": listings.list_photos(session, listing.id) if listing else [],
        "policy": (listing.cancellation_policy if listing else None) or listings.DEFAULT_POLICY,
    }
    return render(
        request, "services/provider_listing.html", context, status=error.status_code if error else 200
    )


def _editable(session: Session, actor: Actor, listing_id: int) -> Listing:
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    from zhishe.core.auth import authorize

    authorize(actor, "services.provide", org_id=providers.get_or_raise(session, listing.provider_id).org_id)
    return listing


@router.get("/provider/listings/new", response_class=HTMLResponse)
def listing_new(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The form for a new listing."""
    provider = _own_provider(session, actor)
    if provider is None:
        return redirect("/provider")
    from zhishe.core.auth import authorize

    authorize(actor, "services.provide", org_id=provider.org_id)
    return _edit_page(request, session, actor, None)


@router.post("/provider/listings/new", response_class=HTMLResponse)
async def listing_create(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a draft listing from the form."""
    form = await _form(request)
    created, error = _attempt(
        session, lambda: listings.create(session, actor=actor, data=_listing_data(form))
    )
    if error or created is None:
        return _edit_page(request, session, actor, None, error=error, form=form)
    return redirect(f"/provider/listings/{created.id}?saved=1")


@router.get("/provider/listings/{listing_id}", response_class=HTMLResponse)
def listing_edit(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Edit a listing, its slots, batches and photos, and publish or withdraw it."""
    return _edit_page(request, session, actor, _editable(session, actor, listing_id))


@router.post("/provider/listings/{listing_id}", response_class=HTMLResponse)
async def listing_save(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Save the listing form."""
    form = await _form(request)
    listing = _editable(session, actor, listing_id)
    _, error = _attempt(
        session,
        lambda: listings.update(session, actor=actor, listing_id=listing.id, data=_listing_data(form)),
    )
    if error:
        return _edit_page(
            request, session, actor, _editable(session, actor, listing_id), error=error, form=form
        )
    return redirect(f"/provider/listings/{listing_id}?saved=1")


async def _listing_action(
    request: Request, session: Session, actor: Actor, listing_id: int, action: Callable[[FormData], object]
) -> Response:
    form = await _form(request)
    _editable(session, actor, listing_id)
    try:
        result = action(form)
        if hasattr(result, "__await__"):
            await result  # type: ignore[misc]
    except ZhisheError as exc:
        session.rollback()
        return _edit_page(request, session, actor, _editable(session, actor, listing_id), error=exc)
    return redirect(f"/provider/listings/{listing_id}?saved=1")


@router.post("/provider/listings/{listing_id}/publish", response_class=HTMLResponse)
async def listing_publish(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Publish the listing."""
    return await _listing_action(
        request,
        session,
        actor,
        listing_id,
        lambda form: listings.publish(session, actor=actor, listing_id=listing_id),
    )


@router.post("/provider/listings/{listing_id}/withdraw", response_class=HTMLResponse)
async def listing_withdraw(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Withdraw the listing."""
    return await _listing_action(
        request,
        session,
        actor,
        listing_id,
        lambda form: listings.withdraw(session, actor=actor, listing_id=listing_id),
    )


@router.post("/provider/listings/{listing_id}/slots", response_class=HTMLResponse)
async def listing_slot(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Add one slot, or a weekly pattern when weekdays are ticked."""

    def add(form: FormData) -> object:
        capacity = _str(form, "capacity") or "1"
        weekdays = [str(v) for v in form.getlist("weekdays") if isinstance(v, str)]
        if weekdays:
            return listings.add_weekly_slots(
                session,
                actor=actor,
                listing_id=listing_id,
                weekdays=weekdays,
                start_time=_str(form, "start_time"),
                end_time=_str(form, "end_time"),
                from_date=_str(form, "from_date"),
                until_date=_str(form, "until_date"),
                capacity=capacity,
            )
        day = _str(form, "from_date")
        return listings.add_slot(
            session,
            actor=actor,
            listing_id=listing_id,
            starts_at=f"{day}T{_str(form, 'start_time')}",
            ends_at=f"{_str(form, 'until_date') or day}T{_str(form, 'end_time')}",
            capacity=capacity,
        )

    return await _listing_action(request, session, actor, listing_id, add)


@router.post("/provider/listings/{listing_id}/batches", response_class=HTMLResponse)
async def listing_batch(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Add a stock batch."""
    return await _listing_action(
        request,
        session,
        actor,
        listing_id,
        lambda form: listings.add_batch(
            session,
            actor=actor,
            listing_id=listing_id,
            quantity=_str(form, "quantity"),
            label=_str(form, "label"),
            available_from=_str(form, "available_from") or None,
            best_before=_str(form, "best_before") or None,
        ),
    )


@router.post("/provider/listings/{listing_id}/photos", response_class=HTMLResponse)
async def listing_photo(
    listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Add a photo."""

    async def add(form: FormData) -> None:
        data, _ = await _file(form, "photo", get_settings().participation_photo_bytes)
        listings.add_photo(session, actor=actor, listing_id=listing_id, data=data)

    return await _listing_action(request, session, actor, listing_id, add)


# --- the operator ---------------------------------------------------------------------------------


def _operator_page(
    request: Request, session: Session, actor: Actor, error: ZhisheError | None = None
) -> Response:
    from zhishe.core.auth import authorize

    authorize(actor, "services.operate")
    context = {
        "providers": providers.list_providers(session, actor=actor),
        "categories": providers.list_categories(session, active_only=False),
        "error": error,
    }
    return render(
        request, "services/catalog_operator.html", context, status=error.status_code if error else 200
    )


@router.get("/operator/providers", response_class=HTMLResponse)
def operator_providers(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The operator's list of providers (suspend, reinstate, contract commissions) and categories."""
    return _operator_page(request, session, actor)


async def _operator_action(
    request: Request, session: Session, actor: Actor, action: Callable[[FormData], object]
) -> Response:
    form = await _form(request)
    _, error = _attempt(session, lambda: action(form))
    if error:
        return _operator_page(request, session, actor, error)
    return redirect("/operator/providers?saved=1")


@router.post("/operator/providers/{provider_id}/{verb}", response_class=HTMLResponse)
async def operator_provider_action(
    provider_id: IdPath, verb: str, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Suspend or reinstate a provider, or set its contract commissions."""

    def act(form: FormData) -> object:
        if verb == "suspend":
            return providers.suspend(
                session, actor=actor, provider_id=provider_id, reason=_str(form, "reason")
            )
        if verb == "reinstate":
            return providers.reinstate(
                session, actor=actor, provider_id=provider_id, reason=_str(form, "reason")
            )
        if verb == "commissions":
            overrides = {
                key[len("bps[") : -1]: _str(form, key)
                for key in form
                if key.startswith("bps[") and key.endswith("]")
            }
            return providers.set_commissions(
                session, actor=actor, provider_id=provider_id, overrides=overrides
            )
        raise Invalid(T("unknown action {verb}", verb=verb[:30]), detail={"field": "action"})

    return await _operator_action(request, session, actor, act)


@router.post("/operator/categories/{code}", response_class=HTMLResponse)
async def operator_category(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Change a category's default commission (and names)."""

    def act(form: FormData) -> object:
        data: dict[str, Any] = {"commission_bps": _str(form, "commission_bps")}
        kinds = _str(form, "licence_kinds")
        data["licence_kinds"] = [k.strip() for k in kinds.split(",") if k.strip()]
        return providers.update_category(session, actor=actor, code=code, data=data)

    return await _operator_action(request, session, actor, act)
