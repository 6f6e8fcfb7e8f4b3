"""Service categories and providers' marketplace profiles.

The operator keeps the categories (code, names, default commission, licence kinds required) and
the providers' standing: it suspends and reinstates them and sets contract commission overrides per
category. A service-provider or clinic organisation keeps its own profile: names, description,
phone, base location, service radius and categories. ``check_can_sell`` is the one rule every
booking asks before it takes money: the listing is active, its provider is active, and every
licence its category requires is valid today.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org
from zhishe.finance import periods
from zhishe.services import licences
from zhishe.services.models import Listing, Provider, ServiceCategory

__all__ = [
    "DEFAULT_RADIUS_M",
    "MAX_RADIUS_M",
    "MIN_RADIUS_M",
    "check_can_sell",
    "check_text",
    "commission_bps",
    "create",
    "create_category",
    "distance_m",
    "for_org",
    "get_category_or_raise",
    "get_or_raise",
    "list_categories",
    "list_providers",
    "reinstate",
    "set_commissions",
    "suspend",
    "update",
    "update_category",
]

DEFAULT_RADIUS_M = 3000
MIN_RADIUS_M = 100
MAX_RADIUS_M = 50_000
_EARTH_RADIUS_M = 6_371_008.8
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PHONE = re.compile(r"^[0-9+\-() ]{0,40}$")
_PROVIDER_KINDS = {OrgKind.SERVICE_PROVIDER, OrgKind.CLINIC}


# --- small validators -----------------------------------------------------------------------------


def check_text(data: Mapping[str, Any], field: str, most: int, *, required: bool = False) -> str:
    """``data[field]`` as stripped text of at most ``most`` characters (missing or None is empty);
    Invalid naming the field for anything else, NUL characters, or an empty required value."""
    value = data.get(field)
    value = "" if value is None else value
    if not isinstance(value, str):
        raise Invalid(T("{field} must be text", field=field), detail={"field": field})
    value = value.strip()
    if "\x00" in value:
        raise Invalid(T("{field} must not contain NUL characters", field=field), detail={"field": field})
    if required and not value:
        raise Invalid(T("{field} is required", field=field), detail={"field": field})
    if len(value) > most:
        raise Invalid(
            T("{field} is longer than {most} characters", field=field, most=most), detail={"field": field}
        )
    return value


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(
            T("{field} must be a whole number from {low} to {high}", field=field, low=low, high=high),
            detail={"field": field},
        )
    return value


def _coordinate(value: object, field: str, limit: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(T("{field} must be a number", field=field), detail={"field": field})
    if not -limit <= value <= limit:
        raise Invalid(
            T("{field} must be between -{limit} and {limit}", field=field, limit=int(limit)),
            detail={"field": field},
        )
    return float(value)


# --- categories -----------------------------------------------------------------------------------


def list_categories(session: Session, *, active_only: bool = True) -> list[ServiceCategory]:
    """The service categories, by code (public)."""
    query = select(ServiceCategory).order_by(ServiceCategory.code)
    if active_only:
        query = query.where(ServiceCategory.active.is_(True))
    return list(session.scalars(query))


def get_category_or_raise(session: Session, code: str) -> ServiceCategory:
    """The category ``code``, or NotFound."""
    found = "\x00" not in code and len(code) <= 64
    category = session.scalar(select(ServiceCategory).where(ServiceCategory.code == code)) if found else None
    if category is None:
        raise NotFound(T("there is no service category {code}", code=repr(code)), detail={"category": code})
    return category


def _licence_kinds(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 10:
        raise Invalid(
            T("licence_kinds must be a list of at most 10 codes"), detail={"field": "licence_kinds"}
        )
    kinds: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _KIND.match(item.strip()):
            raise Invalid(
                T("licence_kinds: {value} is not a short lower-case code", value=repr(item)[:40]),
                detail={"field": "licence_kinds"},
            )
        if item.strip() not in kinds:
            kinds.append(item.strip())
    return kinds


def _apply_category(category: ServiceCategory, data: Mapping[str, Any], *, creating: bool) -> None:
    if creating or "name_zh" in data:
        category.name_zh = check_text(data, "name_zh", 200, required=True)
    if "name_en" in data:
        category.name_en = check_text(data, "name_en", 200)
    if creating or "commission_bps" in data:
        category.commission_bps = _int(data.get("commission_bps", 1000), "commission_bps", 0, 10_000)
    if "licence_kinds" in data:
        category.licence_kinds = _licence_kinds(data["licence_kinds"])
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise Invalid(T("active must be true or false"), detail={"field": "active"})
        category.active = data["active"]


def create_category(session: Session, *, actor: Actor, data: Mapping[str, Any]) -> ServiceCategory:
    """Create a category (the operator)."""
    authorize(actor, "services.operate", what="category")
    code = check_text(data, "code", 64, required=True)
    if not _CODE.match(code):
        raise Invalid(
            T("code must be 2 to 64 lower-case letters, digits and _, starting with a letter"),
            detail={"field": "code"},
        )
    if session.scalar(select(ServiceCategory.id).where(ServiceCategory.code == code)) is not None:
        raise Conflict(T("the category {code} already exists", code=repr(code)), detail={"field": "code"})
    category = ServiceCategory(code=code, licence_kinds=[], active=True, name_en="")
    _apply_category(category, data, creating=True)
    session.add(category)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.category.create",
        object_type="services_category",
        object_id=category.id,
        detail={"code": code, "commission_bps": category.commission_bps},
    )
    return category


def update_category(session: Session, *, actor: Actor, code: str, data: Mapping[str, Any]) -> ServiceCategory:
    """Change a category's names, default commission, licence kinds or activity (the operator)."""
    authorize(actor, "services.operate", what=f"category:{code}")
    category = get_category_or_raise(session, code)
    _apply_category(category, data, creating=False)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.category.update",
        object_type="services_category",
        object_id=category.id,
        detail={
            k: data[k]
            for k in ("name_zh", "name_en", "commission_bps", "licence_kinds", "active")
            if k in data
        },
    )
    from zhishe.services import listings

    listings.refresh_search_text(session, category_code=category.code)
    return category


# --- providers ------------------------------------------------------------------------------------


def get_or_raise(session: Session, provider_id: int) -> Provider:
    """The provider ``provider_id``, or NotFound."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(T("provider {id} does not exist", id=provider_id), detail={"provider_id": provider_id})
    return provider


def for_org(session: Session, org_id: int | None) -> Provider | None:
    """The profile of organisation ``org_id``, if it has one."""
    if org_id is None:
        return None
    return session.scalar(select(Provider).where(Provider.org_id == org_id))


def list_providers(session: Session, *, actor: Actor, status: str | None = None) -> list[Provider]:
    """Every provider for the operator (any status); active providers for everyone else."""
    query = select(Provider).order_by(Provider.id)
    operator = _is_operator(actor)
    if not operator:
        authorize(actor, "services.browse")
        query = query.where(Provider.status == "active")
    elif status:
        query = query.where(Provider.status == status)
    return list(session.scalars(query))


def _is_operator(actor: Actor) -> bool:
    from zhishe.core.auth import can

    return can(actor, "services.operate")


def _categories(session: Session, value: object) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > 20:
        raise Invalid(
            T("categories must be a list of 1 to 20 category codes"), detail={"field": "categories"}
        )
    known = {c.code for c in list_categories(session)}
    codes: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in known:
            raise Invalid(
                T("categories: {code} is not an active service category", code=repr(item)[:40]),
                detail={"field": "categories", "allowed": sorted(known)},
            )
        if item not in codes:
            codes.append(item)
    return codes


def _apply_profile(session: Session, provider: Provider, data: Mapping[str, Any], *, creating: bool) -> None:
    if creating or "name_zh" in data:
        provider.name_zh = check_text(data, "name_zh", 200, required=True)
    for field, most in (("name_en", 200), ("description_zh", 4000), ("description_en", 4000)):
        if field in data:
            setattr(provider, field, check_text(data, field, most))
    if "phone" in data:
        phone = check_text(data, "phone", 40)
        if not _PHONE.match(phone):
            raise Invalid(T("phone may hold only digits, spaces and + - ( )"), detail={"field": "phone"})
        provider.phone = phone
    if creating or "lat" in data:
        provider.lat = _coordinate(data.get("lat"), "lat", 90)
    if creating or "lon" in data:
        provider.lon = _coordinate(data.get("lon"), "lon", 180)
    if creating or "radius_m" in data:
        raw = data.get("radius_m", DEFAULT_RADIUS_M)
        provider.radius_m = _int(
            DEFAULT_RADIUS_M if raw is None else raw, "radius_m", MIN_RADIUS_M, MAX_RADIUS_M
        )
    if creating or "categories" in data:
        provider.categories = _categories(session, data.get("categories"))


def create(session: Session, *, actor: Actor, data: Mapping[str, Any], org_id: int | None = None) -> Provider:
    """Create the marketplace profile of the actor's organisation (a platform admin may name ``org_id``)."""
    target = org_id if org_id is not None and actor.is_platform_admin else actor.org_id
    authorize(actor, "services.provide", org_id=target, what="provider")
    if target is None:
        raise Invalid(T("name the organisation the profile is for"), detail={"field": "org_id"})
    from zhishe.core.accounts.models import Organisation

    org = session.get(Organisation, target)
    if org is None or org.kind not in _PROVIDER_KINDS:
        raise Invalid(
            T("only service-provider and clinic organisations can have a provider profile"),
            detail={"field": "org_id"},
        )
    if for_org(session, target) is not None:
        raise Conflict(T("this organisation already has a provider profile"), detail={"org_id": target})
    provider = Provider(
        org_id=target,
        name_en="",
        description_zh="",
        description_en="",
        phone="",
        commission_overrides={},
        status="active",
        rating_sum=0,
        rating_count=0,
        created_at=clock.now(),
    )
    _apply_profile(session, provider, data, creating=True)
    session.add(provider)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.provider.create",
        object_type="services_provider",
        object_id=provider.id,
        object_org_id=target,
        detail={
            "name_zh": provider.name_zh,
            "categories": provider.categories,
            "radius_m": provider.radius_m,
        },
    )
    return provider


def update(session: Session, *, actor: Actor, provider_id: int, data: Mapping[str, Any]) -> Provider:
    """Change the provider's own profile (its staff; the operator uses suspend and commissions)."""
    provider = get_or_raise(session, provider_id)
    authorize(actor, "services.provide", org_id=provider.org_id, what=f"provider:{provider.id}")
    _apply_profile(session, provider, data, creating=False)
    session.flush()
    changed = sorted(
        k
        for k in (
            "name_zh",
            "name_en",
            "description_zh",
            "description_en",
            "phone",
            "lat",
            "lon",
            "radius_m",
            "categories",
        )
        if k in data
    )
    record(
        session=session,
        actor=actor,
        action="services.provider.update",
        object_type="services_provider",
        object_id=provider.id,
        object_org_id=provider.org_id,
        detail={"fields": changed},
    )
    if {"name_zh", "name_en"} & set(changed):
        from zhishe.services import listings

        listings.refresh_search_text(session, provider_id=provider.id)
    return provider


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise Invalid(T("reason is required (at most 500 characters)"), detail={"field": "reason"})
    return reason


def _set_standing(session: Session, actor: Actor, provider_id: int, status: str, reason: str) -> Provider:
    authorize(actor, "services.operate", what=f"provider:{provider_id}")
    provider = get_or_raise(session, provider_id)
    reason = _reason(reason)
    if provider.status == status:
        raise Conflict(T("the provider is already {status}", status=status), detail={"status": status})
    provider.status = status
    session.flush()
    record(
        session=session,
        actor=actor,
        action=f"services.provider.{'suspend' if status == 'suspended' else 'reinstate'}",
        object_type="services_provider",
        object_id=provider.id,
        object_org_id=provider.org_id,
        detail={"reason": reason},
    )
    message = (
        T("The operator suspended your marketplace profile: {reason}", reason=reason)
        if status == "suspended"
        else T("The operator reinstated your marketplace profile: {reason}", reason=reason)
    )
    notify_org(
        session=session, org_id=provider.org_id, kind="services.provider", message=message, link="/provider"
    )
    return provider


def suspend(session: Session, *, actor: Actor, provider_id: int, reason: str) -> Provider:
    """Suspend a provider (the operator): none of its listings can be found or booked meanwhile."""
    return _set_standing(session, actor, provider_id, "suspended", reason)


def reinstate(session: Session, *, actor: Actor, provider_id: int, reason: str) -> Provider:
    """Reinstate a suspended provider (the operator)."""
    return _set_standing(session, actor, provider_id, "active", reason)


def set_commissions(
    session: Session, *, actor: Actor, provider_id: int, overrides: Mapping[str, object]
) -> Provider:
    """Replace the provider's contract commission overrides ``{category_code: bps}`` (the operator)."""
    authorize(actor, "services.operate", what=f"provider:{provider_id}")
    provider = get_or_raise(session, provider_id)
    if not isinstance(overrides, Mapping):
        raise Invalid(T("commission_overrides must be an object"), detail={"field": "commission_overrides"})
    known = {c.code for c in list_categories(session, active_only=False)}
    clean: dict[str, int] = {}
    for code, bps in overrides.items():
        if code not in known:
            raise Invalid(
                T("commission_overrides: {code} is not a service category", code=repr(code)[:40]),
                detail={"field": "commission_overrides"},
            )
        if bps is None or bps == "":
            continue
        clean[code] = _int(bps, f"commission_overrides.{code}", 0, 10_000)
    before = dict(provider.commission_overrides or {})
    provider.commission_overrides = clean
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.provider.commissions",
        object_type="services_provider",
        object_id=provider.id,
        object_org_id=provider.org_id,
        detail={"before": before, "after": clean},
    )
    return provider


# --- rules other modules call ----------------------------------------------------------------------


def distance_m(provider: Provider, lat: float, lon: float) -> int:
    """Great-circle (haversine) distance in whole metres from the provider's base to ``lat, lon``."""
    phi1, phi2 = math.radians(provider.lat), math.radians(lat)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon - provider.lon)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return round(2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))))


def commission_bps(session: Session, provider: Provider | None, category_code: str) -> int:
    """The commission on the provider's sales in ``category_code``: its contract override, or the
    category's default (0 when the category no longer exists)."""
    overrides = (provider.commission_overrides or {}) if provider is not None else {}
    if category_code in overrides:
        return int(overrides[category_code])
    default = session.scalar(
        select(ServiceCategory.commission_bps).where(ServiceCategory.code == category_code)
    )
    return int(default or 0)


def check_can_sell(session: Session, listing: Listing, *, at: Any = None) -> None:
    """Raise Conflict unless the listing can be sold now: it is active, its provider is active, and
    every licence its category requires is valid today (whether or not the sweep has run)."""
    if listing.status != "active":
        raise Conflict(
            T("this listing is not available ({status})", status=listing.status),
            detail={"listing_id": listing.id, "status": listing.status},
        )
    provider = get_or_raise(session, listing.provider_id)
    if provider.status != "active":
        raise Conflict(
            T("this provider is suspended and cannot take bookings"),
            detail={"listing_id": listing.id, "provider_id": provider.id},
        )
    missing = licences.missing_kinds(session, listing, periods.local_today(at))
    if missing:
        raise Conflict(
            T(
                "this listing cannot be sold: the provider's licence has lapsed or is missing ({kinds})",
                kinds=", ".join(missing),
            ),
            detail={"listing_id": listing.id, "missing_licences": missing},
        )
