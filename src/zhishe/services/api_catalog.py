"""JSON routes of the marketplace catalogue under /api/v1/services: categories, providers, licences, listings, slots, stock and search."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from zhishe.core.auth import Actor, authorize, can
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.services import discovery, licences, listings, pricing, providers
from zhishe.services.models import Licence, Listing, Provider, ServiceCategory, StockBatch

__all__ = ["category_json", "listing_json", "provider_json", "router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])


def _iso(moment: datetime | date | None) -> str | None:
    return moment.isoformat() if moment else None


# --- shapes ---------------------------------------------------------------------------------------


class CategoryCreate(BaseModel):
    """A new service category."""

    model_config = ConfigDict(extra="ignore")
    code: str = Field(max_length=64)
    name_zh: str = Field(max_length=200)
    name_en: str = Field("", max_length=200)
    commission_bps: int = Field(1000, ge=0, le=10_000)
    licence_kinds: list[str] = Field(default_factory=list, max_length=10)


class CategoryUpdate(BaseModel):
    """Changes to a category (only the fields sent)."""

    model_config = ConfigDict(extra="ignore")
    name_zh: str | None = Field(None, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    commission_bps: int | None = Field(None, ge=0, le=10_000)
    licence_kinds: list[str] | None = Field(None, max_length=10)
    active: bool | None = None


class ProviderIn(BaseModel):
    """A provider's own profile (only the fields sent change on PATCH)."""

    model_config = ConfigDict(extra="ignore")
    name_zh: str | None = Field(None, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    description_zh: str | None = Field(None, max_length=4000)
    description_en: str | None = Field(None, max_length=4000)
    phone: str | None = Field(None, max_length=40)
    lat: float | None = None
    lon: float | None = None
    radius_m: int | None = None
    categories: list[str] | None = Field(None, max_length=20)


class Reason(BaseModel):
    """Why the operator suspends or reinstates a provider."""

    reason: str = Field(max_length=500)


class Commissions(BaseModel):
    """Contract commission overrides ``{category_code: basis points}``; they replace the old ones."""

    commission_overrides: dict[str, int]


class ListingIn(BaseModel):
    """A listing's fields (only the fields sent change on PATCH). No price is ever accepted: the
    server computes it from ``price_rules``."""

    model_config = ConfigDict(extra="ignore")
    title_zh: str | None = Field(None, max_length=200)
    title_en: str | None = Field(None, max_length=200)
    description_zh: str | None = Field(None, max_length=8000)
    description_en: str | None = Field(None, max_length=8000)
    category: str | None = Field(None, max_length=64)
    process: str | None = Field(None, max_length=32)
    price_rules: dict[str, Any] | None = None
    cancellation_policy: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    availability: str | None = Field(None, max_length=8)
    provider_id: int | None = Field(None, ge=1, le=2**62)


class SlotIn(BaseModel):
    """One slot."""

    starts_at: datetime
    ends_at: datetime
    capacity: int = Field(1, ge=-(2**31), le=2**31)


class WeeklyIn(BaseModel):
    """A weekly pattern of slots: days 1 (Monday) to 7, a local start and end time, a date range."""

    weekdays: list[int] = Field(max_length=7)
    start_time: str = Field(max_length=8)
    end_time: str = Field(max_length=8)
    from_date: date
    until_date: date
    capacity: int = Field(1, ge=-(2**31), le=2**31)


class BatchIn(BaseModel):
    """A stock batch."""

    quantity: int = Field(ge=-(2**31), le=2**31)
    label: str = Field("", max_length=100)
    available_from: date | None = None
    best_before: date | None = None


def _fields(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_unset=True)


# --- JSON of rows ---------------------------------------------------------------------------------


def category_json(category: ServiceCategory) -> dict[str, Any]:
    """A category as JSON."""
    return {
        "code": category.code,
        "name_zh": category.name_zh,
        "name_en": category.name_en,
        "commission_bps": category.commission_bps,
        "licence_kinds": list(category.licence_kinds or []),
        "active": category.active,
    }


def provider_json(provider: Provider, *, full: bool = False) -> dict[str, Any]:
    """A provider's public profile; with ``full`` (its staff, the operator) its contract terms too."""
    count = provider.rating_count or 0
    data: dict[str, Any] = {
        "id": provider.id,
        "org_id": provider.org_id,
        "name_zh": provider.name_zh,
        "name_en": provider.name_en,
        "description_zh": provider.description_zh,
        "description_en": provider.description_en,
        "phone": provider.phone,
        "lat": provider.lat,
        "lon": provider.lon,
        "radius_m": provider.radius_m,
        "categories": list(provider.categories or []),
        "status": provider.status,
        "rating": {"avg": round(provider.rating_sum / count, 2) if count else None, "count": count},
        "response_minutes": provider.response_minutes,
        "created_at": _iso(provider.created_at),
    }
    if full:
        data["commission_overrides"] = dict(provider.commission_overrides or {})
    return data


def _licence_json(licence: Licence) -> dict[str, Any]:
    return {
        "id": licence.id,
        "provider_id": licence.provider_id,
        "kind": licence.kind,
        "number": licence.number,
        "filename": licence.filename,
        "content_type": licence.content_type,
        "valid_from": _iso(licence.valid_from),
        "expires_on": _iso(licence.expires_on),
        "reminded_at": _iso(licence.reminded_at),
        "uploaded_at": _iso(licence.uploaded_at),
        "file": f"/api/v1/services/licences/{licence.id}/file",
    }


def listing_json(session: Session, listing: Listing) -> dict[str, Any]:
    """A listing as JSON, with its photos' addresses."""
    return {
        "id": listing.id,
        "provider_id": listing.provider_id,
        "category": listing.category_code,
        "process": listing.process,
        "title_zh": listing.title_zh,
        "title_en": listing.title_en,
        "description_zh": listing.description_zh,
        "description_en": listing.description_en,
        "price_rules": listing.price_rules,
        "cancellation_policy": listing.cancellation_policy,
        "settings": listing.settings,
        "availability": listing.availability,
        "status": listing.status,
        "suspended_reason": listing.suspended_reason or None,
        "photos": [f"/api/v1/services/photos/{p.id}" for p in listings.list_photos(session, listing.id)],
        "created_at": _iso(listing.created_at),
        "updated_at": _iso(listing.updated_at),
    }


def _hit_json(session: Session, hit: discovery.Hit) -> dict[str, Any]:
    return {
        "listing": listing_json(session, hit.listing),
        "provider": provider_json(hit.provider),
        "factors": hit.factors_json(),
    }


def _slot_json(view: listings.SlotView) -> dict[str, Any]:
    slot = view.slot
    return {
        "id": slot.id,
        "listing_id": slot.listing_id,
        "starts_at": _iso(slot.starts_at),
        "ends_at": _iso(slot.ends_at),
        "capacity": slot.capacity,
        "booked": slot.booked,
        "free": view.free,
    }


def _batch_json(batch: StockBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "listing_id": batch.listing_id,
        "label": batch.label,
        "quantity": batch.quantity,
        "remaining": batch.remaining,
        "available_from": _iso(batch.available_from),
        "best_before": _iso(batch.best_before),
    }


# --- categories -----------------------------------------------------------------------------------


@router.get("/categories")
def list_categories(session: SessionDep) -> list[dict[str, Any]]:
    """The active service categories with their default commissions and required licences."""
    return [category_json(c) for c in providers.list_categories(session)]


@router.post("/categories", status_code=201)
def create_category(body: CategoryCreate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a category (the operator)."""
    return category_json(
        providers.create_category(session, actor=actor, data=_fields(body) | {"code": body.code})
    )


@router.put("/categories/{code}")
def update_category(
    code: str, body: CategoryUpdate, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Change a category (the operator)."""
    return category_json(providers.update_category(session, actor=actor, code=code, data=_fields(body)))


# --- providers ------------------------------------------------------------------------------------


def _full(actor: Actor, provider: Provider) -> bool:
    return can(actor, "services.provider_read", org_id=provider.org_id)


@router.get("/providers")
def list_providers(
    session: SessionDep, actor: CurrentActor, status: str | None = Query(None, max_length=16)
) -> dict[str, Any]:
    """Providers: all of them for the operator (filter by ``status``), active ones for others."""
    rows = providers.list_providers(session, actor=actor, status=status)
    return {"items": [provider_json(p, full=_full(actor, p)) for p in rows], "next": None}


@router.get("/providers/{provider_id}")
def get_provider(provider_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One provider's profile."""
    provider = providers.get_or_raise(session, provider_id)
    authorize(actor, "services.browse")
    if provider.status != "active" and not _full(actor, provider):
        raise NotFound(T("provider {id} does not exist", id=provider_id), detail={"provider_id": provider_id})
    return provider_json(provider, full=_full(actor, provider))


@router.post("/providers", status_code=201)
def create_provider(body: ProviderIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create the profile of your provider organisation."""
    return provider_json(providers.create(session, actor=actor, data=_fields(body)), full=True)


@router.patch("/providers/{provider_id}")
def update_provider(
    provider_id: IdPath, body: ProviderIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Change your provider's profile."""
    return provider_json(
        providers.update(session, actor=actor, provider_id=provider_id, data=_fields(body)), full=True
    )


@router.post("/providers/{provider_id}/suspend")
def suspend_provider(
    provider_id: IdPath, body: Reason, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Suspend a provider, with a reason (the operator)."""
    return provider_json(
        providers.suspend(session, actor=actor, provider_id=provider_id, reason=body.reason), full=True
    )


@router.post("/providers/{provider_id}/reinstate")
def reinstate_provider(
    provider_id: IdPath, body: Reason, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Reinstate a suspended provider, with a reason (the operator)."""
    provider = providers.reinstate(session, actor=actor, provider_id=provider_id, reason=body.reason)
    return provider_json(provider, full=True)


@router.put("/providers/{provider_id}/commissions")
def set_commissions(
    provider_id: IdPath, body: Commissions, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Replace a provider's contract commission overrides (the operator)."""
    provider = providers.set_commissions(
        session, actor=actor, provider_id=provider_id, overrides=body.commission_overrides
    )
    return provider_json(provider, full=True)


@router.get("/providers/{provider_id}/listings")
def provider_listings(provider_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Every listing of a provider, drafts included (its staff, the operator)."""
    rows = listings.list_for_provider(session, actor=actor, provider_id=provider_id)
    return {"items": [listing_json(session, row) for row in rows], "next": None}


# --- licences -------------------------------------------------------------------------------------


def _own_provider_id(session: Session, actor: Actor, provider_id: int | None) -> int:
    if provider_id is not None:
        return provider_id
    provider = providers.for_org(session, actor.org_id)
    if provider is None:
        raise Invalid(T("name the provider (provider_id)"), detail={"field": "provider_id"})
    return provider.id


@router.post("/licences", status_code=201)
async def upload_licence(
    session: SessionDep,
    actor: CurrentActor,
    file: UploadFile = File(..., description="The licence: a PDF, JPEG or PNG file of at most 5 MB"),
    kind: str = Form(..., max_length=32),
    number: str = Form(..., max_length=100),
    expires_on: date = Form(...),
    valid_from: date | None = Form(None),
    provider_id: int | None = Form(None, ge=1, le=2**62),
) -> dict[str, Any]:
    """Upload a licence or certificate (multipart); listings it makes sellable are reinstated."""
    data = await file.read(licences.MAX_BYTES + 1)
    licence = licences.upload(
        session,
        actor=actor,
        provider_id=_own_provider_id(session, actor, provider_id),
        kind=kind,
        number=number,
        expires_on=expires_on,
        valid_from=valid_from,
        data=data,
        filename=file.filename or "",
    )
    return _licence_json(licence)


@router.get("/licences")
def list_licences(
    session: SessionDep, actor: CurrentActor, provider_id: int | None = Query(None, ge=1, le=2**62)
) -> dict[str, Any]:
    """A provider's licences, soonest expiry first (your own provider's by default)."""
    rows = licences.list_licences(
        session, actor=actor, provider_id=_own_provider_id(session, actor, provider_id)
    )
    return {"items": [_licence_json(row) for row in rows], "next": None}


@router.get("/licences/{licence_id}/file")
def licence_file(licence_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """The licence file (the provider's staff and the operator; the read is audited)."""
    licence = licences.get_file(session, actor=actor, licence_id=licence_id)
    ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(licence.content_type, "bin")
    return Response(
        licence.content,
        media_type=licence.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="licence-{licence.id}.{ext}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


# --- listings -------------------------------------------------------------------------------------


@router.get("/listings")
def search_listings(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    q: str | None = Query(None, max_length=200),
    category: str | None = Query(None, max_length=64),
    max_distance_m: int | None = Query(None, ge=0, le=10**7),
    max_price_fen: int | None = Query(None, ge=0, le=10**12),
    min_rating: float | None = Query(None, ge=0, le=5),
    sort: str = Query("rank", max_length=16),
    after: str | None = Query(None, max_length=200),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """Discovery: listings the resident can use, ranked, with every ranking factor."""
    results = discovery.search(
        session,
        actor=actor,
        q=q,
        category=category,
        max_distance_m=max_distance_m,
        max_price_fen=max_price_fen,
        min_rating=min_rating,
        sort=sort,
        after=after,
        limit=limit,
    )
    if results.next:
        response.headers["Link"] = f'<?after={results.next}>; rel="next"'
    return {"items": [_hit_json(session, hit) for hit in results.items], "next": results.next}


@router.post("/listings", status_code=201)
def create_listing(body: ListingIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a draft listing of your provider."""
    data = _fields(body)
    provider_id = data.pop("provider_id", None)
    return listing_json(session, listings.create(session, actor=actor, data=data, provider_id=provider_id))


@router.get("/listings/{listing_id}")
def get_listing(listing_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One listing with its ranking factors for you and its free slots (or stock)."""
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    data = listing_json(session, listing)
    hit = discovery.factors(session, actor=actor, listing=listing)
    data["factors"] = hit.factors_json() if hit else None
    data["provider"] = provider_json(providers.get_or_raise(session, listing.provider_id))
    if listing.availability == "slots":
        data["slots"] = [
            _slot_json(v) for v in listings.list_slots(session, listing_id=listing.id, free_only=True)
        ]
    if listing.availability == "stock":
        data["batches"] = [
            _batch_json(b) for b in listings.list_batches(session, listing_id=listing.id, in_stock_only=True)
        ]
    return data


@router.patch("/listings/{listing_id}")
def update_listing(
    listing_id: IdPath, body: ListingIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Change a listing (your provider's)."""
    data = _fields(body)
    data.pop("provider_id", None)
    return listing_json(session, listings.update(session, actor=actor, listing_id=listing_id, data=data))


@router.post("/listings/{listing_id}/publish")
def publish_listing(listing_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Publish a listing (if it could be sold right now)."""
    return listing_json(session, listings.publish(session, actor=actor, listing_id=listing_id))


@router.post("/listings/{listing_id}/withdraw")
def withdraw_listing(listing_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Take a listing off the marketplace."""
    return listing_json(session, listings.withdraw(session, actor=actor, listing_id=listing_id))


@router.get("/listings/{listing_id}/quote")
def quote_listing(
    listing_id: IdPath,
    session: SessionDep,
    actor: CurrentActor,
    quantity: str = Query("1", max_length=20),
    extras: list[str] = Query([], max_length=20),
    starts_at: str | None = Query(None, max_length=40),
    period: str | None = Query(None, max_length=32),
) -> dict[str, Any]:
    """A price preview computed by the server (any price the client sends is ignored)."""
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    options: dict[str, Any] = {"extras": [e for part in extras for e in part.split(",") if e.strip()]}
    if starts_at:
        options["starts_at"] = starts_at
    if period:
        options["period"] = period
    quote = pricing.quote(
        session, listing=listing, resident_user_id=actor.user_id, quantity=quantity, options=options
    )
    return quote.as_json()


@router.post("/listings/{listing_id}/photos", status_code=201)
async def add_photo(
    listing_id: IdPath, session: SessionDep, actor: CurrentActor, file: UploadFile = File(...)
) -> dict[str, Any]:
    """Add a photo (JPEG, PNG or WebP; stored without metadata)."""
    from zhishe.core.config import get_settings

    data = await file.read(get_settings().participation_photo_bytes + 1)
    photo = listings.add_photo(session, actor=actor, listing_id=listing_id, data=data)
    return {"id": photo.id, "listing_id": photo.listing_id, "url": f"/api/v1/services/photos/{photo.id}"}


@router.get("/photos/{photo_id}")
def get_photo(photo_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """A listing's photo."""
    photo = listings.get_photo(session, actor=actor, photo_id=photo_id)
    return Response(
        photo.content, media_type=photo.content_type, headers={"X-Content-Type-Options": "nosniff"}
    )


@router.delete("/photos/{photo_id}", status_code=204)
def delete_photo(photo_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """Delete a listing's photo."""
    listings.delete_photo(session, actor=actor, photo_id=photo_id)
    return Response(status_code=204)


# --- slots and stock ------------------------------------------------------------------------------


@router.post("/listings/{listing_id}/slots", status_code=201)
def add_slot(listing_id: IdPath, body: SlotIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Add one slot."""
    slot = listings.add_slot(
        session,
        actor=actor,
        listing_id=listing_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
    )
    return _slot_json(listings.SlotView(slot=slot, free=slot.capacity - slot.booked))


@router.post("/listings/{listing_id}/slots/weekly", status_code=201)
def add_weekly_slots(
    listing_id: IdPath, body: WeeklyIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Add slots on a weekly pattern over a date range."""
    slots = listings.add_weekly_slots(session, actor=actor, listing_id=listing_id, **body.model_dump())
    return {"items": [_slot_json(listings.SlotView(slot=s, free=s.capacity)) for s in slots], "next": None}


@router.get("/listings/{listing_id}/slots")
def list_slots(
    listing_id: IdPath,
    session: SessionDep,
    actor: CurrentActor,
    start: datetime | None = Query(None, alias="from"),
    until: datetime | None = Query(None),
    free_only: bool = Query(False),
) -> dict[str, Any]:
    """A listing's coming slots with their free places."""
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    views = listings.list_slots(session, listing_id=listing.id, start=start, end=until, free_only=free_only)
    return {"items": [_slot_json(v) for v in views], "next": None}


@router.post("/listings/{listing_id}/batches", status_code=201)
def add_batch(listing_id: IdPath, body: BatchIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Add a stock batch."""
    return _batch_json(listings.add_batch(session, actor=actor, listing_id=listing_id, **body.model_dump()))


@router.get("/listings/{listing_id}/batches")
def list_batches(listing_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """A listing's stock batches."""
    listing = listings.get_visible(session, actor=actor, listing_id=listing_id)
    return {
        "items": [_batch_json(b) for b in listings.list_batches(session, listing_id=listing.id)],
        "next": None,
    }
