"""Listings: what a provider offers, on what terms, and when.

Provider staff create a listing as a draft (titles and descriptions in Chinese and English, a
category of the provider's, the process that runs its transactions, price rules, a cancellation
policy, process settings and how availability is kept), then publish it; publishing asks the same
questions as a sale (``providers.check_can_sell``). Availability is either a slot calendar (slots
added one by one or as a weekly pattern) or stock by batch. Photos are checked and stored without
metadata. Every change is audited, and ``search_text`` is kept up to date for discovery.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import periods
from zhishe.services import licences, pricing, providers
from zhishe.services.models import Listing, ListingPhoto, Provider, ServiceCategory, Slot, StockBatch

__all__ = [
    "AVAILABILITY",
    "MAX_PHOTOS",
    "MAX_SETTINGS_BYTES",
    "PROCESSES",
    "SlotView",
    "add_batch",
    "add_photo",
    "add_slot",
    "add_weekly_slots",
    "check_cancellation_policy",
    "create",
    "delete_photo",
    "get_or_raise",
    "get_photo",
    "get_visible",
    "list_all",
    "list_batches",
    "list_for_provider",
    "list_photos",
    "list_slots",
    "publish",
    "refresh_search_text",
    "search_text_of",
    "update",
    "withdraw",
]

PROCESSES = (
    "instant_booking",
    "request_to_book",
    "quote_repair",
    "group_buy",
    "membership_box",
    "neighbour_rental",
)
AVAILABILITY = ("slots", "stock", "none")
MAX_PHOTOS = 5
#: The largest process settings object accepted, as JSON.
MAX_SETTINGS_BYTES = 8192
MAX_CAPACITY = 1000
#: The longest slot (a rental may run for days).
MAX_SLOT = timedelta(days=31)
#: Most slots one weekly pattern may create.
MAX_PATTERN_SLOTS = 500
DEFAULT_POLICY = {"free_until_hours": 24, "late_fee_bps": 5000, "no_show_fee_bps": 10000}
_POLICY_LIMITS = {"free_until_hours": 24 * 30, "late_fee_bps": 10_000, "no_show_fee_bps": 10_000}
_TEXT_FIELDS = (("title_zh", 200), ("title_en", 200), ("description_zh", 8000), ("description_en", 8000))


# --- lookups --------------------------------------------------------------------------------------


def get_or_raise(session: Session, listing_id: int) -> Listing:
    """The listing ``listing_id``, or NotFound."""
    listing = session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(T("listing {id} does not exist", id=listing_id), detail={"listing_id": listing_id})
    return listing


def _provider_of(session: Session, listing: Listing) -> Provider:
    return providers.get_or_raise(session, listing.provider_id)


def _is_public(session: Session, listing: Listing) -> bool:
    return listing.status == "active" and _provider_of(session, listing).status == "active"


def get_visible(session: Session, *, actor: Actor, listing_id: int) -> Listing:
    """A listing the actor may see: an active one (any signed-in user), or any of the provider's own
    (its staff, the operator). Others get NotFound, as if it did not exist."""
    listing = get_or_raise(session, listing_id)
    if _is_public(session, listing):
        authorize(actor, "services.browse")
        return listing
    if not can(actor, "services.provider_read", org_id=_provider_of(session, listing).org_id):
        raise NotFound(T("listing {id} does not exist", id=listing_id), detail={"listing_id": listing_id})
    return listing


def list_for_provider(session: Session, *, actor: Actor, provider_id: int) -> list[Listing]:
    """Every listing of a provider, newest first (its staff and the operator)."""
    provider = providers.get_or_raise(session, provider_id)
    authorize(actor, "services.provider_read", org_id=provider.org_id, what=f"provider:{provider.id}")
    query = select(Listing).where(Listing.provider_id == provider.id).order_by(Listing.id.desc())
    return list(session.scalars(query))


def list_all(
    session: Session,
    *,
    actor: Actor,
    q: str | None = None,
    category: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Listing]:
    """Every provider's listings for the operator, filtered by search terms (substrings, wildcards
    literal), category and status; oldest first."""
    authorize(actor, "services.operate", what="listings")
    query = select(Listing)
    for term in (q or "").replace("\x00", " ").lower().split()[:10]:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Listing.search_text.like(f"%{escaped}%", escape="\\"))
    if category:
        query = query.where(Listing.category_code == category)
    if status:
        query = query.where(Listing.status == status)
    return list(session.scalars(query.order_by(Listing.id).limit(max(1, min(limit, 1000)))))


def _editable(session: Session, actor: Actor, listing_id: int) -> tuple[Listing, Provider]:
    listing = get_or_raise(session, listing_id)
    provider = _provider_of(session, listing)
    authorize(actor, "services.provide", org_id=provider.org_id, what=f"listing:{listing.id}")
    return listing, provider


# --- validation -----------------------------------------------------------------------------------


def check_cancellation_policy(policy: object) -> dict[str, int]:
    """The cancellation policy normalised, or Invalid naming ``cancellation_policy.<field>``."""
    if policy is None:
        return dict(DEFAULT_POLICY)
    if not isinstance(policy, Mapping):
        raise Invalid(T("cancellation_policy must be a JSON object"), detail={"field": "cancellation_policy"})
    unknown = sorted(set(policy) - set(_POLICY_LIMITS))
    if unknown:
        raise Invalid(
            T("cancellation_policy has unknown fields: {fields}", fields=", ".join(map(str, unknown))),
            detail={"field": "cancellation_policy", "allowed": sorted(_POLICY_LIMITS)},
        )
    clean: dict[str, int] = {}
    for key, high in _POLICY_LIMITS.items():
        value = policy.get(key, DEFAULT_POLICY[key])
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise Invalid(
                T(
                    "cancellation_policy.{field} must be a whole number from 0 to {high}",
                    field=key,
                    high=high,
                ),
                detail={"field": f"cancellation_policy.{key}"},
            )
        clean[key] = value
    return clean


def _settings(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(T("settings must be a JSON object"), detail={"field": "settings"})
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise Invalid(T("settings must hold only JSON values"), detail={"field": "settings"}) from None
    if len(encoded.encode()) > MAX_SETTINGS_BYTES:
        raise Invalid(
            T("settings is larger than {most} bytes", most=MAX_SETTINGS_BYTES), detail={"field": "settings"}
        )
    loaded: dict[str, Any] = json.loads(encoded)
    return loaded


def _choice(data: Mapping[str, Any], field: str, allowed: Iterable[str]) -> str:
    value = data.get(field)
    options = list(allowed)
    if value not in options:
        raise Invalid(
            T("{field} must be one of {allowed}", field=field, allowed=", ".join(options)),
            detail={"field": field, "allowed": options},
        )
    return str(value)


def _apply(
    session: Session, listing: Listing, provider: Provider, data: Mapping[str, Any], *, creating: bool
) -> None:
    """Validate the fields given in ``data`` and set them on ``listing`` (nothing else is touched)."""
    for field, most in _TEXT_FIELDS:
        if creating or field in data:
            setattr(listing, field, providers.check_text(data, field, most, required=field == "title_zh"))
    if creating or "category" in data:
        category = _choice(data, "category", provider.categories or [])
        providers.get_category_or_raise(session, category)
        listing.category_code = category
    if creating or "process" in data:
        listing.process = _choice(data, "process", PROCESSES)
    if creating or "price_rules" in data:
        listing.price_rules = pricing.check_price_rules(data.get("price_rules"))
    if creating or "cancellation_policy" in data:
        listing.cancellation_policy = check_cancellation_policy(data.get("cancellation_policy"))
    if creating or "settings" in data:
        listing.settings = _settings(data.get("settings"))
    if creating or "availability" in data:
        listing.availability = _choice(
            {"availability": data.get("availability", "slots")}, "availability", AVAILABILITY
        )


def search_text_of(session: Session, listing: Listing) -> str:
    """The lower-cased text discovery searches: titles, descriptions, category and provider names."""
    category = session.scalar(select(ServiceCategory).where(ServiceCategory.code == listing.category_code))
    provider = session.get(Provider, listing.provider_id)
    parts = [
        listing.title_zh,
        listing.title_en,
        listing.description_zh,
        listing.description_en,
        listing.category_code,
        category.name_zh if category else "",
        category.name_en if category else "",
        provider.name_zh if provider else "",
        provider.name_en if provider else "",
    ]
    return " ".join(part for part in parts if part).lower()


def refresh_search_text(
    session: Session, *, provider_id: int | None = None, category_code: str | None = None
) -> int:
    """Recompute ``search_text`` of a provider's or a category's listings after a name changed."""
    query = select(Listing)
    if provider_id is not None:
        query = query.where(Listing.provider_id == provider_id)
    if category_code is not None:
        query = query.where(Listing.category_code == category_code)
    count = 0
    for listing in session.scalars(query):
        listing.search_text = search_text_of(session, listing)
        count += 1
    session.flush()
    return count


def _audit(
    session: Session, actor: Actor | None, action: str, listing: Listing, provider: Provider, **detail: Any
) -> None:
    record(
        session=session,
        actor=actor,
        action=f"services.listing.{action}",
        object_type="services_listing",
        object_id=listing.id,
        object_org_id=provider.org_id,
        detail=detail,
    )


# --- create, edit, publish ------------------------------------------------------------------------


def create(
    session: Session, *, actor: Actor, data: Mapping[str, Any], provider_id: int | None = None
) -> Listing:
    """Create a draft listing of the actor's provider (or of ``provider_id``, for its staff or a
    platform admin)."""
    if provider_id is None:
        provider = providers.for_org(session, actor.org_id)
        if provider is None:
            raise Invalid(
                T("create your provider profile before adding listings"), detail={"field": "provider_id"}
            )
    else:
        provider = providers.get_or_raise(session, provider_id)
    authorize(actor, "services.provide", org_id=provider.org_id, what=f"provider:{provider.id}")
    now = clock.now()
    listing = Listing(
        provider_id=provider.id, status="draft", suspended_reason="", created_at=now, updated_at=now
    )
    _apply(session, listing, provider, data, creating=True)
    listing.search_text = search_text_of(session, listing)
    session.add(listing)
    session.flush()
    _audit(
        session, actor, "create", listing, provider, title_zh=listing.title_zh, category=listing.category_code
    )
    return listing


def update(session: Session, *, actor: Actor, listing_id: int, data: Mapping[str, Any]) -> Listing:
    """Change a listing's fields (only those given). An active listing must stay sellable."""
    listing, provider = _editable(session, actor, listing_id)
    _apply(session, listing, provider, data, creating=False)
    if listing.status == "active" and "category" in data:
        missing = licences.missing_kinds(session, listing, periods.local_today())
        if missing:
            raise Conflict(
                T(
                    "this category needs a valid licence the provider lacks: {kinds}",
                    kinds=", ".join(missing),
                ),
                detail={"field": "category", "missing_licences": missing},
            )
    listing.search_text = search_text_of(session, listing)
    listing.updated_at = clock.now()
    session.flush()
    _audit(
        session, actor, "update", listing, provider, fields=sorted(k for k in data if isinstance(k, str))[:20]
    )
    return listing


def publish(session: Session, *, actor: Actor, listing_id: int) -> Listing:
    """Make a listing visible and bookable, if it could be sold right now."""
    listing, provider = _editable(session, actor, listing_id)
    if listing.status == "active":
        raise Conflict(T("the listing is already published"), detail={"status": listing.status})
    if listing.status == "suspended" and not listing.suspended_reason.startswith(licences.LICENCE_PREFIX):
        raise Conflict(T("the operator suspended this listing"), detail={"status": listing.status})
    if listing.category_code not in (provider.categories or []):
        raise Conflict(
            T("the provider no longer works in the category {code}", code=listing.category_code),
            detail={"field": "category"},
        )
    pricing.check_price_rules(listing.price_rules)
    previous = (listing.status, listing.suspended_reason)
    listing.status, listing.suspended_reason = "active", ""
    try:
        providers.check_can_sell(session, listing)
    except Conflict:
        listing.status, listing.suspended_reason = previous
        raise
    listing.updated_at = clock.now()
    session.flush()
    _audit(session, actor, "publish", listing, provider)
    return listing


def withdraw(session: Session, *, actor: Actor, listing_id: int) -> Listing:
    """Take a listing off the marketplace (existing bookings run on)."""
    listing, provider = _editable(session, actor, listing_id)
    if listing.status == "withdrawn":
        raise Conflict(T("the listing is already withdrawn"), detail={"status": listing.status})
    listing.status = "withdrawn"
    listing.suspended_reason = ""
    listing.updated_at = clock.now()
    session.flush()
    _audit(session, actor, "withdraw", listing, provider)
    return listing


# --- photos ---------------------------------------------------------------------------------------


def add_photo(session: Session, *, actor: Actor, listing_id: int, data: bytes) -> ListingPhoto:
    """Add a photo (JPEG, PNG or WebP; stored without EXIF or other metadata), up to five."""
    from zhishe.participation.photos import clean

    listing, provider = _editable(session, actor, listing_id)
    count = session.scalar(select(func.count()).where(ListingPhoto.listing_id == listing.id)) or 0
    if count >= MAX_PHOTOS:
        raise Conflict(
            T("a listing has at most {most} photos; delete one first", most=MAX_PHOTOS),
            detail={"field": "photo"},
        )
    photo = clean(data, field="photo")
    row = ListingPhoto(
        listing_id=listing.id, content_type=photo.content_type, content=photo.data, created_at=clock.now()
    )
    session.add(row)
    session.flush()
    _audit(session, actor, "photo.add", listing, provider, photo_id=row.id, sha256=photo.sha256)
    return row


def delete_photo(session: Session, *, actor: Actor, photo_id: int) -> None:
    """Delete a listing's photo."""
    photo = session.get(ListingPhoto, photo_id)
    if photo is None:
        raise NotFound(T("photo {id} does not exist", id=photo_id), detail={"photo_id": photo_id})
    listing, provider = _editable(session, actor, photo.listing_id)
    session.delete(photo)
    session.flush()
    _audit(session, actor, "photo.delete", listing, provider, photo_id=photo_id)


def list_photos(session: Session, listing_id: int) -> list[ListingPhoto]:
    """A listing's photos in the order they were added (without their bytes)."""
    query = (
        select(ListingPhoto)
        .options(defer(ListingPhoto.content))
        .where(ListingPhoto.listing_id == listing_id)
        .order_by(ListingPhoto.id)
    )
    return list(session.scalars(query))


def get_photo(session: Session, *, actor: Actor, photo_id: int) -> ListingPhoto:
    """A photo with its bytes, for whoever may see its listing."""
    photo = session.get(ListingPhoto, photo_id)
    if photo is None:
        raise NotFound(T("photo {id} does not exist", id=photo_id), detail={"photo_id": photo_id})
    get_visible(session, actor=actor, listing_id=photo.listing_id)
    return photo


# --- slots ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotView:
    """A slot and its free places."""

    slot: Slot
    free: int


def _moment(value: object, field: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        raise Invalid(
            T("{field} must be a date and time such as 2026-11-07T09:00+08:00", field=field),
            detail={"field": field},
        )
    return value if value.tzinfo is not None else value.replace(tzinfo=get_settings().tz)


def _slot_listing(session: Session, actor: Actor, listing_id: int) -> tuple[Listing, Provider]:
    listing, provider = _editable(session, actor, listing_id)
    if listing.availability != "slots":
        raise Conflict(T("this listing keeps stock, not a slot calendar"), detail={"field": "availability"})
    if listing.status == "withdrawn":
        raise Conflict(T("the listing is withdrawn"), detail={"status": listing.status})
    return listing, provider


def _capacity(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAPACITY:
        raise Invalid(
            T("capacity must be a whole number from 1 to {most}", most=MAX_CAPACITY),
            detail={"field": "capacity"},
        )
    return value


def _check_span(starts: datetime, ends: datetime, now: datetime) -> None:
    if ends <= starts:
        raise Invalid(T("ends_at must be after starts_at"), detail={"field": "ends_at"})
    if ends - starts > MAX_SLOT:
        raise Invalid(T("a slot may last at most 31 days"), detail={"field": "ends_at"})
    if starts < now:
        raise Invalid(T("starts_at is in the past"), detail={"field": "starts_at"})


def add_slot(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    starts_at: object,
    ends_at: object,
    capacity: object = 1,
) -> Slot:
    """Add one slot: it ends after it starts, does not start in the past, and has 1–1000 places."""
    listing, provider = _slot_listing(session, actor, listing_id)
    starts, ends = _moment(starts_at, "starts_at"), _moment(ends_at, "ends_at")
    _check_span(starts, ends, clock.now())
    places = _capacity(capacity)
    slot = Slot(listing_id=listing.id, starts_at=starts, ends_at=ends, capacity=places, booked=0)
    session.add(slot)
    session.flush()
    _audit(
        session,
        actor,
        "slot.add",
        listing,
        provider,
        slot_id=slot.id,
        starts_at=starts.isoformat(),
        capacity=places,
    )
    return slot


def _weekdays(value: object) -> list[int]:
    if not isinstance(value, list | tuple) or not value:
        raise Invalid(T("weekdays must list days 1 (Monday) to 7 (Sunday)"), detail={"field": "weekdays"})
    days: set[int] = set()
    for item in value:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item.strip())
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 7:
            raise Invalid(T("weekdays must list days 1 (Monday) to 7 (Sunday)"), detail={"field": "weekdays"})
        days.add(item)
    return sorted(days)


def _clock_time(value: object, field: str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(
            T("{field} must be a time such as 09:00", field=field), detail={"field": field}
        ) from None


def _day(value: object, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(
            T("{field} must be a date such as 2026-11-30", field=field), detail={"field": field}
        ) from None


def add_weekly_slots(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    weekdays: object,
    start_time: object,
    end_time: object,
    from_date: object,
    until_date: object,
    capacity: object = 1,
) -> list[Slot]:
    """Add a slot on each chosen weekday (1 = Monday) between two dates, from ``start_time`` to
    ``end_time`` local time. Days already past and times already taken by a slot are skipped."""
    listing, provider = _slot_listing(session, actor, listing_id)
    days = _weekdays(weekdays)
    begin, end = _clock_time(start_time, "start_time"), _clock_time(end_time, "end_time")
    first, last = _day(from_date, "from_date"), _day(until_date, "until_date")
    places = _capacity(capacity)
    if end <= begin:
        raise Invalid(T("end_time must be after start_time"), detail={"field": "end_time"})
    if last < first:
        raise Invalid(T("until_date must not be before from_date"), detail={"field": "until_date"})
    if (last - first).days > 366:
        raise Invalid(T("a weekly pattern may cover at most a year"), detail={"field": "until_date"})
    tz, now = get_settings().tz, clock.now()
    existing = set(session.scalars(select(Slot.starts_at).where(Slot.listing_id == listing.id)))
    taken = {moment.astimezone(tz).replace(tzinfo=None) for moment in existing}
    wanted: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        starts = datetime.combine(day, begin, tzinfo=tz)
        if day.isoweekday() in days and starts >= now and starts.replace(tzinfo=None) not in taken:
            wanted.append((starts, datetime.combine(day, end, tzinfo=tz)))
        day += timedelta(days=1)
    if len(wanted) > MAX_PATTERN_SLOTS:
        raise Invalid(
            T(
                "the pattern would create {count} slots; at most {most} at once",
                count=len(wanted),
                most=MAX_PATTERN_SLOTS,
            ),
            detail={"field": "until_date"},
        )
    slots = [
        Slot(listing_id=listing.id, starts_at=s, ends_at=e, capacity=places, booked=0) for s, e in wanted
    ]
    session.add_all(slots)
    session.flush()
    _audit(
        session,
        actor,
        "slot.pattern",
        listing,
        provider,
        count=len(slots),
        weekdays=days,
        from_date=first.isoformat(),
        until_date=last.isoformat(),
    )
    return slots


def list_slots(
    session: Session,
    *,
    listing_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    free_only: bool = False,
    limit: int = 200,
) -> list[SlotView]:
    """A listing's slots from ``start`` (default now) to ``end``, soonest first, with free places."""
    tz = get_settings().tz
    start = start.replace(tzinfo=tz) if start is not None and start.tzinfo is None else start
    end = end.replace(tzinfo=tz) if end is not None and end.tzinfo is None else end
    query = select(Slot).where(Slot.listing_id == listing_id, Slot.starts_at >= (start or clock.now()))
    if end is not None:
        query = query.where(Slot.starts_at < end)
    if free_only:
        query = query.where(Slot.booked < Slot.capacity)
    rows = session.scalars(query.order_by(Slot.starts_at, Slot.id).limit(max(1, min(limit, 1000))))
    return [SlotView(slot=slot, free=max(0, slot.capacity - slot.booked)) for slot in rows]


# --- stock ----------------------------------------------------------------------------------------


def add_batch(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    quantity: object,
    label: str = "",
    available_from: object = None,
    best_before: object = None,
) -> StockBatch:
    """Add a batch of goods to a listing that keeps stock."""
    listing, provider = _editable(session, actor, listing_id)
    if listing.availability != "stock":
        raise Conflict(T("this listing keeps a slot calendar, not stock"), detail={"field": "availability"})
    if isinstance(quantity, str) and quantity.strip().isdigit():
        quantity = int(quantity.strip())
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1_000_000:
        raise Invalid(T("quantity must be a whole number from 1 to 1000000"), detail={"field": "quantity"})
    label = providers.check_text({"label": label}, "label", 100)
    available = _day(available_from, "available_from") if available_from not in (None, "") else None
    best = _day(best_before, "best_before") if best_before not in (None, "") else None
    if best is not None and best < periods.local_today():
        raise Invalid(T("best_before is in the past"), detail={"field": "best_before"})
    if best is not None and available is not None and best < available:
        raise Invalid(T("best_before must not be before available_from"), detail={"field": "best_before"})
    batch = StockBatch(
        listing_id=listing.id,
        label=label,
        quantity=quantity,
        remaining=quantity,
        available_from=available,
        best_before=best,
    )
    session.add(batch)
    session.flush()
    _audit(session, actor, "batch.add", listing, provider, batch_id=batch.id, quantity=quantity)
    return batch


def list_batches(session: Session, *, listing_id: int, in_stock_only: bool = False) -> list[StockBatch]:
    """A listing's batches, oldest first."""
    query = select(StockBatch).where(StockBatch.listing_id == listing_id)
    if in_stock_only:
        query = query.where(StockBatch.remaining > 0)
    return list(session.scalars(query.order_by(StockBatch.id)))
