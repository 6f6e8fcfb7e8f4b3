"""Advertising placements: ad slots on the resident home page and in notices, booked by local
merchants for date ranges, with impressions and clicks counted and billed.

- A slot has a price per day, per 1,000 impressions and per click (fen). Two bookings of one slot
  may not overlap in dates (cancelled bookings aside); the check runs with the slot row locked.
- ``serve`` picks the booking running on a placement today and counts an impression with one
  atomic UPDATE; ``click`` counts a click the same way and gives the ad's link (http or https
  only, checked when booked). Counting impressions and clicks is not audited (it happens on
  every page view); booking, cancelling and billing are.
- ``bill`` posts what each booking owes so far: every day of its range that has begun, plus its
  impressions (per thousand, rounded half to even on the running total) and clicks, minus what
  was billed before. The running totals make it idempotent: a second run posts nothing.
  ``Dr Assets:Receivable:Merchants:O<org>`` ``Cr Income:Advertising``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.fields import check_code_and_name
from zhishe.finance.models import AdBooking, AdSlot
from zhishe.finance.money import check_fen, half_even
from zhishe.finance.periods import local_day

__all__ = [
    "PLACEMENTS",
    "amount_due",
    "bill",
    "book",
    "cancel_booking",
    "check_link",
    "click",
    "create_slot",
    "list_bookings",
    "list_slots",
    "receivable",
    "serve",
    "sweep",
]

PLACEMENTS = ("home", "notices")
#: Longest booking, in days.
MAX_DAYS = 366


def receivable(org_id: int) -> str:
    """What merchant or enterprise ``org_id`` owes the operator."""
    return f"Assets:Receivable:Merchants:O{org_id}"


def check_link(link: str) -> str:
    """An ad's link: empty, or an absolute http(s) URL with a host (no ``javascript:``)."""
    value = (link or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or len(value) > 500
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise Invalid(T("link must be an http:// or https:// address"), detail={"field": "link"})
    return value


# --- slots -----------------------------------------------------------------------------------------


def create_slot(
    *,
    session: Session,
    actor: Actor,
    code: str,
    placement: str,
    name_zh: str,
    name_en: str = "",
    day_fen: int = 0,
    per_thousand_impressions_fen: int = 0,
    per_click_fen: int = 0,
) -> AdSlot:
    """Create an ad slot with its prices."""
    authorize(actor, "finance.manage", what="ad slots")
    if placement not in PLACEMENTS:
        raise Invalid(
            T("placement must be one of {values}", values=", ".join(PLACEMENTS)),
            detail={"field": "placement"},
        )
    check_code_and_name(code, name_zh)
    prices = {
        "day_fen": check_fen(day_fen, field="day_fen", allow_zero=True),
        "per_thousand_impressions_fen": check_fen(
            per_thousand_impressions_fen, field="per_thousand_impressions_fen", allow_zero=True
        ),
        "per_click_fen": check_fen(per_click_fen, field="per_click_fen", allow_zero=True),
    }
    if session.scalar(select(AdSlot.id).where(AdSlot.code == code)) is not None:
        raise Conflict(T("an ad slot with code {code} exists", code=code), detail={"field": "code"})
    slot = AdSlot(
        code=code, placement=placement, name_zh=name_zh.strip(), name_en=name_en.strip()[:200], **prices
    )
    session.add(slot)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="finance.ad_slot.create",
        object_type="ad_slot",
        object_id=slot.id,
        detail={"code": code, "placement": placement, **prices},
    )
    return slot


def list_slots(*, session: Session) -> list[AdSlot]:
    """Every ad slot and its prices (public rates)."""
    return list(session.scalars(select(AdSlot).order_by(AdSlot.placement, AdSlot.id)))


# --- bookings --------------------------------------------------------------------------------------


def book(
    *,
    session: Session,
    actor: Actor,
    slot_id: int,
    org_id: int,
    starts_on: date,
    ends_on: date,
    headline: str,
    body: str = "",
    link: str = "",
) -> AdBooking:
    """Book a slot for a merchant (``org_id``) from ``starts_on`` to ``ends_on`` inclusive."""
    authorize(actor, "finance.buy", org_id=org_id, what="an ad booking")
    if session.get(Organisation, org_id) is None:
        raise NotFound(T("there is no organisation {id}", id=org_id), detail={"field": "org_id"})
    if ends_on < starts_on:
        raise Invalid(T("ends_on must not be before starts_on"), detail={"field": "ends_on"})
    if (ends_on - starts_on).days + 1 > MAX_DAYS:
        raise Invalid(T("a booking may last at most {n} days", n=MAX_DAYS), detail={"field": "ends_on"})
    if starts_on < local_day(clock.now()):
        raise Invalid(T("starts_on must not be in the past"), detail={"field": "starts_on"})
    headline = (headline or "").strip()
    if not headline or len(headline) > 200:
        raise Invalid(T("headline must have 1 to 200 characters"), detail={"field": "headline"})
    if len(body or "") > 2000:
        raise Invalid(T("body must have at most 2000 characters"), detail={"field": "body"})
    checked_link = check_link(link)
    slot = session.scalar(select(AdSlot).where(AdSlot.id == slot_id).with_for_update())
    if slot is None:
        raise NotFound(T("there is no ad slot {id}", id=slot_id), detail={"field": "slot_id"})
    clash = session.scalar(
        select(AdBooking).where(
            AdBooking.slot_id == slot_id,
            AdBooking.state == "booked",
            AdBooking.starts_on <= ends_on,
            AdBooking.ends_on >= starts_on,
        )
    )
    if clash is not None:
        raise Conflict(
            T(
                "slot {code} is already booked from {start} to {end}",
                code=slot.code,
                start=clash.starts_on.isoformat(),
                end=clash.ends_on.isoformat(),
            ),
            detail={"slot_id": slot_id, "booking_id": clash.id},
        )
    booking = AdBooking(
        slot_id=slot.id,
        org_id=org_id,
        starts_on=starts_on,
        ends_on=ends_on,
        headline=headline,
        body=(body or "").strip(),
        link=checked_link,
        state="booked",
        created_at=clock.now(),
    )
    session.add(booking)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="finance.ad_booking.create",
        object_type="ad_booking",
        object_id=booking.id,
        object_org_id=org_id,
        detail={"slot": slot.code, "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()},
    )
    return booking


def cancel_booking(*, session: Session, actor: Actor, booking_id: int) -> AdBooking:
    """Cancel a booking; what it owes up to now is billed first, the rest of its days free the slot."""
    booking = session.get(AdBooking, booking_id)
    if booking is None:
        raise NotFound(T("there is no ad booking {id}", id=booking_id), detail={"booking_id": booking_id})
    authorize(actor, "finance.buy", org_id=booking.org_id, what="an ad booking")
    if booking.state != "booked":
        raise Conflict(T("this booking is already cancelled"), detail={"state": booking.state})
    _bill_one(session, booking, clock.now(), actor)
    booking.state = "cancelled"
    today = local_day(clock.now())
    booking.ends_on = max(booking.starts_on, min(booking.ends_on, today))
    record(
        session=session,
        actor=actor,
        action="finance.ad_booking.cancel",
        object_type="ad_booking",
        object_id=booking.id,
        object_org_id=booking.org_id,
    )
    return booking


def list_bookings(
    *, session: Session, actor: Actor, org_id: int | None = None, limit: int = 500
) -> list[AdBooking]:
    """Bookings, newest first: a merchant's own, or all of them for the operator (audited)."""
    if org_id is None:
        authorize(actor, "finance.read", what="ad bookings")
    else:
        authorize(actor, "finance.buy", org_id=org_id, what="ad bookings")
    query = select(AdBooking).order_by(AdBooking.id.desc()).limit(min(max(limit, 1), 5000))
    if org_id is not None:
        query = query.where(AdBooking.org_id == org_id)
    rows = list(session.scalars(query))
    record(
        session=session,
        actor=actor,
        action="finance.ad_booking.read",
        object_type="ad_booking",
        object_id=org_id or "*",
        object_org_id=org_id,
        detail={"rows": len(rows)},
    )
    return rows


# --- serving ---------------------------------------------------------------------------------------


def serve(session: Session, placement: str, at: datetime | None = None) -> AdBooking | None:
    """The booking running on ``placement`` today, with one more impression counted; None if none."""
    if placement not in PLACEMENTS:
        return None
    day = local_day(at or clock.now())
    booking = session.scalar(
        select(AdBooking)
        .join(AdSlot, AdSlot.id == AdBooking.slot_id)
        .where(
            AdSlot.placement == placement,
            AdBooking.state == "booked",
            AdBooking.starts_on <= day,
            AdBooking.ends_on >= day,
        )
        .order_by(AdSlot.id, AdBooking.id)
        .limit(1)
    )
    if booking is None:
        return None
    session.execute(
        update(AdBooking)
        .where(AdBooking.id == booking.id)
        .values(impressions=AdBooking.impressions + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(booking, ["impressions"])
    return booking


def click(session: Session, booking_id: int) -> str:
    """Count a click on a booking's ad and give its link; NotFound when it has none."""
    booking = session.get(AdBooking, booking_id)
    if booking is None or not booking.link:
        raise NotFound(T("there is no ad {id}", id=booking_id), detail={"booking_id": booking_id})
    link = check_link(booking.link)
    session.execute(
        update(AdBooking)
        .where(AdBooking.id == booking.id)
        .values(clicks=AdBooking.clicks + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(booking, ["clicks"])
    return link


# --- billing ---------------------------------------------------------------------------------------


def amount_due(slot: AdSlot, booking: AdBooking, day: date, impressions: int, clicks: int) -> int:
    """What ``booking`` owes in total up to ``day``: days begun, impressions and clicks."""
    days = 0 if day < booking.starts_on else (min(day, booking.ends_on) - booking.starts_on).days + 1
    return (
        days * slot.day_fen
        + half_even(impressions * slot.per_thousand_impressions_fen, 1000)
        + clicks * slot.per_click_fen
    )


def _bill_one(session: Session, booking: AdBooking, now: datetime, actor: Actor | None) -> int:
    slot = session.get(AdSlot, booking.slot_id)
    assert slot is not None
    impressions, clicks = int(booking.impressions), int(booking.clicks)
    total = amount_due(slot, booking, local_day(now), impressions, clicks)
    delta = total - booking.billed_fen
    if delta > 0:
        ledger.post(
            session,
            kind="ad_billing",
            stream="advertising",
            lines=[(receivable(booking.org_id), delta), ("Income:Advertising", -delta)],
            memo=f"ad booking {booking.id}: {impressions} impressions, {clicks} clicks",
            ref_type="ad_booking",
            ref_id=booking.id,
            actor=actor,
            at=now,
        )
        booking.billed_fen = total
    booking.billed_impressions = impressions
    booking.billed_clicks = clicks
    return max(delta, 0)


def bill(session: Session, now: datetime | None = None, *, actor: Actor | None = None) -> dict[str, Any]:
    """Post what every running booking owes so far and not yet billed; returns counts and fen."""
    if actor is not None:
        authorize(actor, "finance.manage", what="ad billing")
    moment = now or clock.now()
    day = local_day(moment)
    bookings = session.scalars(
        select(AdBooking)
        .where(AdBooking.state == "booked", AdBooking.starts_on <= day)
        .order_by(AdBooking.id)
        .with_for_update()
    ).all()
    billed, total = 0, 0
    for booking in bookings:
        amount = _bill_one(session, booking, moment, actor)
        if amount:
            billed += 1
            total += amount
    if billed:
        record(
            session=session,
            actor=actor,
            action="finance.ad.bill",
            object_type="ad_booking",
            object_id="*",
            detail={"bookings": billed, "total_fen": total},
        )
    return {"bookings": billed, "billed_fen": total}


def sweep(session: Session, now: datetime) -> dict[str, Any]:
    """The periodic work: bill the ad bookings."""
    return bill(session, now)
