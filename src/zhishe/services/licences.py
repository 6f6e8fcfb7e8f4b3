"""Licences and certificates of providers (housekeeping, medical, food), and what follows from them.

A file is accepted only when its bytes are a PDF, JPEG or PNG (the magic bytes decide, not the name
or the content type the client sent) and it is no larger than ``MAX_BYTES``. The provider's staff
and the operator may list and download them; every download is an audited read.

``sweep(session, now)`` runs over time: 30 days before a licence expires it reminds the provider's
staff once; when a licence that a listing's category requires has lapsed (or was never uploaded),
the provider's active listings in that category are suspended (``suspended_reason`` starts with
``licence:``); they are reinstated as soon as a valid licence of that kind is uploaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize
from zhishe.core.errors import Invalid, NotFound, TooLarge
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org
from zhishe.finance.periods import local_today
from zhishe.services.models import Licence, Listing, Provider, ServiceCategory

__all__ = [
    "LICENCE_PREFIX",
    "MAX_BYTES",
    "REMIND_DAYS",
    "get_file",
    "list_licences",
    "missing_kinds",
    "reinstate_listings",
    "sniff",
    "sweep",
    "upload",
    "valid_kinds",
]

#: The largest licence file accepted (5 MB).
MAX_BYTES = 5 * 1024 * 1024
#: Days before expiry the provider is reminded.
REMIND_DAYS = 30
#: ``Listing.suspended_reason`` of listings suspended for a licence: ``licence:<kind>,<kind>``.
LICENCE_PREFIX = "licence:"

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
#: Roles of a provider organisation that hear about its licences.
_PROVIDER_ROLES = (Role.ADMIN, Role.STEWARD, Role.DISPATCHER, Role.PROVIDER_STAFF)


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are (PDF, JPEG or PNG), or None."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def valid_kinds(session: Session, provider_id: int, on: date) -> set[str]:
    """The licence kinds ``provider_id`` holds valid on ``on`` (from ``valid_from`` to ``expires_on``)."""
    rows = session.execute(
        select(Licence.kind, Licence.valid_from).where(
            Licence.provider_id == provider_id, Licence.expires_on >= on
        )
    )
    return {kind for kind, valid_from in rows if valid_from is None or valid_from <= on}


def missing_kinds(session: Session, listing: Listing, on: date) -> list[str]:
    """Licence kinds the listing's category requires that its provider does not hold valid on ``on``."""
    category = session.scalar(select(ServiceCategory).where(ServiceCategory.code == listing.category_code))
    required = list(category.licence_kinds or []) if category else []
    if not required:
        return []
    held = valid_kinds(session, listing.provider_id, on)
    return [kind for kind in required if kind not in held]


def _provider(session: Session, provider_id: int) -> Provider:
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(T("provider {id} does not exist", id=provider_id), detail={"provider_id": provider_id})
    return provider


def _clean_filename(name: str) -> str:
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    return "".join(ch for ch in base if ch.isprintable())[:200] or "licence"


def _check_dates(valid_from: date | None, expires_on: object, today: date) -> date:
    if not isinstance(expires_on, date):
        raise Invalid(T("expires_on must be a date such as 2027-06-30"), detail={"field": "expires_on"})
    if expires_on < today:
        raise Invalid(
            T("expires_on {date} is in the past; upload a licence that is still valid", date=expires_on),
            detail={"field": "expires_on"},
        )
    if valid_from is not None and valid_from > expires_on:
        raise Invalid(T("valid_from must not be after expires_on"), detail={"field": "valid_from"})
    return expires_on


def _check_file(data: bytes) -> str:
    if not data:
        raise Invalid(T("file is empty"), detail={"field": "file"})
    if len(data) > MAX_BYTES:
        raise TooLarge(
            T("file is {size} bytes; the largest licence file accepted is 5 MB", size=f"{len(data):,}"),
            detail={"field": "file", "limit_bytes": MAX_BYTES, "size": len(data)},
        )
    content_type = sniff(data)
    if content_type is None:
        raise Invalid(
            T("file is not a PDF, JPEG or PNG file (whatever its name or type says)"),
            detail={"field": "file", "allowed": [ct for _, ct in _MAGIC]},
        )
    return content_type


def upload(
    session: Session,
    *,
    actor: Actor,
    provider_id: int,
    kind: str,
    number: str,
    expires_on: date,
    data: bytes,
    filename: str = "",
    valid_from: date | None = None,
) -> Licence:
    """Store a licence of ``provider_id`` after checking its file and dates; reinstate the listings
    it makes sellable again. Everything is checked before anything is written."""
    provider = _provider(session, provider_id)
    authorize(actor, "services.provide", org_id=provider.org_id, what=f"provider:{provider.id}")
    kind = (kind or "").strip()
    if not _KIND.match(kind):
        raise Invalid(
            T("kind must be a short code of lower-case letters, digits and _, such as food"),
            detail={"field": "kind"},
        )
    number = (number or "").strip()
    if not number or len(number) > 100 or "\x00" in number:
        raise Invalid(T("number is required (at most 100 characters)"), detail={"field": "number"})
    _check_dates(valid_from, expires_on, local_today())
    content_type = _check_file(data)
    licence = Licence(
        provider_id=provider.id,
        kind=kind,
        number=number,
        filename=_clean_filename(filename),
        content_type=content_type,
        content=data,
        valid_from=valid_from,
        expires_on=expires_on,
        uploaded_at=clock.now(),
    )
    session.add(licence)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.licence.upload",
        object_type="services_licence",
        object_id=licence.id,
        object_org_id=provider.org_id,
        detail={"kind": kind, "expires_on": expires_on.isoformat(), "size": len(data)},
    )
    reinstate_listings(session, provider_ids=[provider.id], actor=actor)
    return licence


def list_licences(session: Session, *, actor: Actor, provider_id: int) -> list[Licence]:
    """The provider's licences, soonest expiry first (without their files)."""
    provider = _provider(session, provider_id)
    authorize(actor, "services.provider_read", org_id=provider.org_id, what=f"provider:{provider.id}")
    query = (
        select(Licence)
        .options(defer(Licence.content))
        .where(Licence.provider_id == provider.id)
        .order_by(Licence.expires_on, Licence.id)
    )
    return list(session.scalars(query))


def get_file(session: Session, *, actor: Actor, licence_id: int) -> Licence:
    """A licence with its file, for the provider's own staff or the operator; the read is audited."""
    licence = session.get(Licence, licence_id)
    if licence is None:
        raise NotFound(T("licence {id} does not exist", id=licence_id), detail={"licence_id": licence_id})
    provider = _provider(session, licence.provider_id)
    authorize(actor, "services.provider_read", org_id=provider.org_id, what=f"licence:{licence.id}")
    record(
        session=session,
        actor=actor,
        action="services.licence.download",
        object_type="services_licence",
        object_id=licence.id,
        object_org_id=provider.org_id,
        detail={"kind": licence.kind},
    )
    return licence


def _required_by_category(session: Session) -> dict[str, list[str]]:
    rows = session.execute(select(ServiceCategory.code, ServiceCategory.licence_kinds))
    return {code: list(kinds or []) for code, kinds in rows if kinds}


def _missing_for(listing: Listing, required: dict[str, list[str]], held: dict[int, set[str]]) -> list[str]:
    kinds = required.get(listing.category_code, [])
    return [kind for kind in kinds if kind not in held.get(listing.provider_id, set())]


def _held(session: Session, provider_ids: Iterable[int], on: date) -> dict[int, set[str]]:
    return {pid: valid_kinds(session, pid, on) for pid in set(provider_ids)}


def _set_status(
    session: Session, listing: Listing, status: str, reason: str, actor: Actor | None, action: str
) -> None:
    listing.status = status
    listing.suspended_reason = reason
    listing.updated_at = clock.now()
    record(
        session=session,
        actor=actor,
        action=action,
        object_type="services_listing",
        object_id=listing.id,
        detail={"reason": reason} if reason else {},
    )


def suspend_lapsed(session: Session, *, on: date, provider_ids: Iterable[int] | None = None) -> int:
    """Suspend active listings whose category needs a licence their provider lacks on ``on``."""
    required = _required_by_category(session)
    if not required:
        return 0
    query = select(Listing).where(Listing.status == "active", Listing.category_code.in_(list(required)))
    if provider_ids is not None:
        query = query.where(Listing.provider_id.in_(list(provider_ids)))
    listings = list(session.scalars(query.order_by(Listing.id)))
    held = _held(session, (row.provider_id for row in listings), on)
    count = 0
    notified: set[int] = set()
    for listing in listings:
        missing = _missing_for(listing, required, held)
        if not missing:
            continue
        _set_status(
            session,
            listing,
            "suspended",
            LICENCE_PREFIX + ",".join(missing),
            None,
            "services.listing.suspend",
        )
        count += 1
        if listing.provider_id not in notified:
            notified.add(listing.provider_id)
            provider = session.get(Provider, listing.provider_id)
            if provider is not None:
                notify_org(
                    session=session,
                    org_id=provider.org_id,
                    kind="services.licence",
                    message=T(
                        "Listings were suspended because a required licence has lapsed or is missing: {kinds}",
                        kinds=", ".join(missing),
                    ),
                    link="/provider",
                    roles=_PROVIDER_ROLES,
                )
    return count


def reinstate_listings(
    session: Session,
    *,
    provider_ids: Iterable[int] | None = None,
    actor: Actor | None = None,
    on: date | None = None,
) -> int:
    """Reinstate listings suspended for a licence once every licence they need is valid again."""
    required = _required_by_category(session)
    query = select(Listing).where(
        Listing.status == "suspended", Listing.suspended_reason.startswith(LICENCE_PREFIX)
    )
    if provider_ids is not None:
        query = query.where(Listing.provider_id.in_(list(provider_ids)))
    listings = list(session.scalars(query.order_by(Listing.id)))
    held = _held(session, (row.provider_id for row in listings), on or local_today())
    count = 0
    for listing in listings:
        if _missing_for(listing, required, held):
            continue
        _set_status(session, listing, "active", "", actor, "services.listing.reinstate")
        count += 1
    session.flush()
    return count


def _remind(session: Session, now: datetime, today: date) -> int:
    due = today + timedelta(days=REMIND_DAYS)
    query = (
        select(Licence)
        .options(defer(Licence.content))
        .where(Licence.reminded_at.is_(None), Licence.expires_on <= due, Licence.expires_on >= today)
        .order_by(Licence.id)
    )
    count = 0
    for licence in session.scalars(query):
        provider = session.get(Provider, licence.provider_id)
        if provider is None:
            continue
        notify_org(
            session=session,
            org_id=provider.org_id,
            kind="services.licence",
            message=T(
                "Licence {number} ({kind}) expires on {date}; upload the renewed licence before then",
                number=licence.number,
                kind=licence.kind,
                date=licence.expires_on.isoformat(),
            ),
            link="/provider",
            roles=_PROVIDER_ROLES,
        )
        licence.reminded_at = now
        record(
            session=session,
            actor=None,
            action="services.licence.remind",
            object_type="services_licence",
            object_id=licence.id,
            object_org_id=provider.org_id,
            detail={"expires_on": licence.expires_on.isoformat()},
        )
        count += 1
    return count


def sweep(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Remind of licences expiring within 30 days (once each), suspend listings whose required
    licence lapsed, and reinstate those whose licences are valid again; returns the counts."""
    moment = now or clock.now()
    today = local_today(moment)
    reminded = _remind(session, moment, today)
    suspended = suspend_lapsed(session, on=today)
    reinstated = reinstate_listings(session, on=today)
    session.flush()
    return {"reminded": reminded, "suspended": suspended, "reinstated": reinstated}
