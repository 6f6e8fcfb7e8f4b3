"""Discovery: the listings a resident can use, ranked, with every ranking factor shown.

A listing is found only when it is active, its provider is active, and the resident's building lies
within the provider's service radius. Each hit carries its factors: ``distance_m``, the provider's
rating (average and count), its median ``response_minutes``, and ``price_fen`` (the server's quote
for the listing's minimum quantity). The rank ``score`` (0–1) and its components are:

* distance: ``1000 / (1000 + distance_m)``: 1 at the door, 0.5 at 1 km, 0.25 at 3 km;
* rating: the Bayesian average ``(PRIOR_WEIGHT × PRIOR_RATING + sum) / (PRIOR_WEIGHT + count)``
  scaled from 1–5 to 0–1, so that a single 5-star review does not outrank forty 4.8s;
* response: ``30 / (30 + response_minutes)``: an unknown response time counts as 30 minutes;
* price: ``(cheapest + 100) / (price + 100)`` against the cheapest hit of the same search.

``score = 0.35 × distance + 0.30 × rating + 0.15 × response + 0.20 × price``.

Search text is matched in Chinese by substring: the query is split on whitespace and each term
must occur in the listing's lower-cased ``search_text`` (so ``保洁`` finds ``日常保洁``); ``%`` and
``_`` in a query are literal.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.services import pricing, profiles, providers
from zhishe.services.models import Listing, Provider

__all__ = [
    "PRIOR_RATING",
    "PRIOR_WEIGHT",
    "SORTS",
    "WEIGHTS",
    "Hit",
    "Results",
    "factors",
    "resident_location",
    "search",
    "within_radius",
]

SORTS = ("rank", "distance", "rating", "price", "response")
WEIGHTS = {"distance": 0.35, "rating": 0.30, "response": 0.15, "price": 0.20}
PRIOR_RATING = 4.0
PRIOR_WEIGHT = 5
#: No provider reaches further than this, so candidates are first narrowed to a box this wide.
_REACH_M = providers.MAX_RADIUS_M
_MAX_LIMIT = 100


@dataclass
class Hit:
    """One listing found, with the factors of its rank."""

    listing: Listing
    provider: Provider
    distance_m: int
    rating_avg: float | None
    rating_count: int
    rating_bayes: float
    response_minutes: float | None
    price_fen: int
    score: float = 0.0
    components: dict[str, float] = field(default_factory=dict)

    def factors_json(self) -> dict[str, Any]:
        """The ranking factors as JSON."""
        return {
            "distance_m": self.distance_m,
            "radius_m": self.provider.radius_m,
            "rating": {
                "avg": self.rating_avg,
                "count": self.rating_count,
                "bayesian": round(self.rating_bayes, 3),
            },
            "response_minutes": self.response_minutes,
            "price_fen": self.price_fen,
            "score": self.score,
            "components": self.components,
            "weights": WEIGHTS,
        }


@dataclass
class Results:
    """One page of hits and the token of the next page."""

    items: list[Hit]
    next: str | None = None


def resident_location(session: Session, user_id: int | None) -> tuple[float, float] | None:
    """Where the resident lives: their profile's lat/lon, else their building's (area's), else None."""
    if user_id is None:
        return None
    profile = profiles.ensure(session, user_id)
    if profile is None:
        return None
    if profile.lat is not None and profile.lon is not None:
        return (profile.lat, profile.lon)
    if profile.area_id is not None:
        area = session.get(Area, profile.area_id)
        if area is not None and area.lat is not None and area.lon is not None:
            return (area.lat, area.lon)
    return None


def _location_or_raise(session: Session, user_id: int | None) -> tuple[float, float]:
    location = resident_location(session, user_id)
    if location is None:
        raise Invalid(
            T("set your building in your profile first: distances and service areas are measured from it"),
            detail={"field": "building"},
        )
    return location


def within_radius(session: Session, listing: Listing, user_id: int | None) -> int:
    """The distance from the resident's building to the listing's provider, in metres; Invalid when
    the resident has no location or lives outside the provider's service radius."""
    lat, lon = _location_or_raise(session, user_id)
    provider = providers.get_or_raise(session, listing.provider_id)
    distance = providers.distance_m(provider, lat, lon)
    if distance > provider.radius_m:
        raise Invalid(
            T(
                "outside the provider's service radius ({distance} m > {radius} m)",
                distance=distance,
                radius=provider.radius_m,
            ),
            detail={"field": "location", "distance_m": distance, "radius_m": provider.radius_m},
        )
    return distance


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _terms(q: str | None) -> list[str]:
    if q is None:
        return []
    if len(q) > 200:
        raise Invalid(T("q is longer than 200 characters"), detail={"parameter": "q"})
    return [term for term in q.replace("\x00", " ").lower().split() if term][:10]


def _bayes(rating_sum: int, rating_count: int) -> float:
    return (PRIOR_WEIGHT * PRIOR_RATING + rating_sum) / (PRIOR_WEIGHT + rating_count)


def _hit(
    session: Session, listing: Listing, provider: Provider, distance: int, user_id: int | None
) -> Hit | None:
    """A hit with its factors; None when the listing's price rules cannot give a price."""
    try:
        minimum = int(listing.price_rules.get("min_units", 1) or 1)
        price = pricing.quote(
            session, listing=listing, resident_user_id=user_id, quantity=max(1, minimum), options={}
        ).price_fen
    except (Invalid, AttributeError, TypeError, ValueError):
        return None
    count = provider.rating_count or 0
    return Hit(
        listing=listing,
        provider=provider,
        distance_m=distance,
        rating_avg=round(provider.rating_sum / count, 2) if count else None,
        rating_count=count,
        rating_bayes=_bayes(provider.rating_sum or 0, count),
        response_minutes=provider.response_minutes,
        price_fen=price,
    )


def _score(hits: list[Hit]) -> None:
    cheapest = min((hit.price_fen for hit in hits), default=0)
    for hit in hits:
        response = 30.0 if hit.response_minutes is None else max(0.0, hit.response_minutes)
        parts = {
            "distance": 1000 / (1000 + hit.distance_m),
            "rating": (hit.rating_bayes - 1) / 4,
            "response": 30 / (30 + response),
            "price": (cheapest + 100) / (hit.price_fen + 100),
        }
        hit.components = {name: round(value, 4) for name, value in parts.items()}
        hit.score = round(sum(WEIGHTS[name] * value for name, value in parts.items()), 4)


def _sort_key(hit: Hit, sort: str) -> tuple[float, int]:
    if sort == "distance":
        return (float(hit.distance_m), hit.listing.id)
    if sort == "rating":
        return (-round(hit.rating_bayes, 6), hit.listing.id)
    if sort == "price":
        return (float(hit.price_fen), hit.listing.id)
    if sort == "response":
        return (hit.response_minutes if hit.response_minutes is not None else math.inf, hit.listing.id)
    return (-hit.score, hit.listing.id)


def _encode(key: tuple[float, int]) -> str:
    value = key[0] if math.isfinite(key[0]) else None
    raw = json.dumps([value, key[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str | None) -> tuple[float, int] | None:
    if not token:
        return None
    try:
        value, last_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(last_id, int) or (value is not None and not isinstance(value, int | float)):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise Invalid(T("invalid paging token in 'after'"), detail={"parameter": "after"}) from None
    return (math.inf if value is None else float(value), last_id)


def _candidates(
    session: Session, lat: float, lon: float, terms: list[str], category: str | None
) -> list[tuple[Listing, Provider]]:
    box_lat = _REACH_M / 111_320
    box_lon = _REACH_M / (111_320 * max(0.01, math.cos(math.radians(lat))))
    query = (
        select(Listing, Provider)
        .join(Provider, Provider.id == Listing.provider_id)
        .where(
            Listing.status == "active",
            Provider.status == "active",
            and_(
                Provider.lat.between(lat - box_lat, lat + box_lat),
                Provider.lon.between(lon - box_lon, lon + box_lon),
            ),
        )
    )
    if category:
        query = query.where(Listing.category_code == category)
    for term in terms:
        query = query.where(Listing.search_text.like(f"%{_escape_like(term)}%", escape="\\"))
    return [(row[0], row[1]) for row in session.execute(query.order_by(Listing.id))]


def _check_filters(
    sort: str, limit: int, max_distance_m: int | None, max_price_fen: int | None, min_rating: float | None
) -> None:
    if sort not in SORTS:
        raise Invalid(T("sort must be one of {sorts}", sorts=", ".join(SORTS)), detail={"parameter": "sort"})
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
        raise Invalid(T("limit must be from 1 to {most}", most=_MAX_LIMIT), detail={"parameter": "limit"})
    if max_distance_m is not None and max_distance_m < 0:
        raise Invalid(T("max_distance_m must not be negative"), detail={"parameter": "max_distance_m"})
    if max_price_fen is not None and max_price_fen < 0:
        raise Invalid(T("max_price_fen must not be negative"), detail={"parameter": "max_price_fen"})
    if min_rating is not None and not (0 <= min_rating <= 5 and math.isfinite(min_rating)):
        raise Invalid(T("min_rating must be from 0 to 5"), detail={"parameter": "min_rating"})


def search(
    session: Session,
    *,
    actor: Actor,
    q: str | None = None,
    category: str | None = None,
    max_distance_m: int | None = None,
    max_price_fen: int | None = None,
    min_rating: float | None = None,
    sort: str = "rank",
    after: str | None = None,
    limit: int = 20,
) -> Results:
    """Listings the actor (a resident) can use, filtered and ranked; see the module docstring."""
    authorize(actor, "services.browse")
    _check_filters(sort, limit, max_distance_m, max_price_fen, min_rating)
    lat, lon = _location_or_raise(session, actor.user_id)
    hits: list[Hit] = []
    for listing, provider in _candidates(session, lat, lon, _terms(q), category or None):
        distance = providers.distance_m(provider, lat, lon)
        if distance > provider.radius_m or (max_distance_m is not None and distance > max_distance_m):
            continue
        hit = _hit(session, listing, provider, distance, actor.user_id)
        if hit is None or (max_price_fen is not None and hit.price_fen > max_price_fen):
            continue
        if min_rating is not None and (hit.rating_avg is None or hit.rating_avg < min_rating):
            continue
        hits.append(hit)
    _score(hits)
    hits.sort(key=lambda hit: _sort_key(hit, sort))
    cursor = _decode(after)
    if cursor is not None:
        hits = [hit for hit in hits if _sort_key(hit, sort) > cursor]
    page = hits[:limit]
    token = _encode(_sort_key(page[-1], sort)) if len(hits) > limit else None
    return Results(items=page, next=token)


def factors(session: Session, *, actor: Actor, listing: Listing) -> Hit | None:
    """The ranking factors of one listing for the actor (None when the actor has no location, lives
    outside the radius, or the listing is not for sale). The price component is against itself."""
    location = resident_location(session, actor.user_id)
    if location is None or listing.status != "active":
        return None
    provider = providers.get_or_raise(session, listing.provider_id)
    distance = providers.distance_m(provider, *location)
    if distance > provider.radius_m or provider.status != "active":
        return None
    hit = _hit(session, listing, provider, distance, actor.user_id)
    if hit is not None:
        _score([hit])
    return hit
