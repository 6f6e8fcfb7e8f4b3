"""Marketplace transactions: booking a listing, paying, taking the process's other steps, listing a
resident's or a provider's orders, reading one with its events, and the waitlist of full slots.

It also registers the engine actions the shipped processes use: pricing, availability (slots and
stock, moved only by conditional updates so two residents cannot take the last place), money
(through ``payments``), cancellation and no-show fees from the listing's policy, notifications,
provider response times and the waitlist backfill.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.accounts.service import actor_for_user
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org, notify_users
from zhishe.core.pagination import Page, keyset_page
from zhishe.finance.money import bps_of
from zhishe.services import engine
from zhishe.services.engine import Context
from zhishe.services.models import (
    Listing,
    Provider,
    Slot,
    StockBatch,
    Transaction,
    TransactionEvent,
    WaitlistEntry,
)

__all__ = [
    "PAYMENT_METHODS",
    "act",
    "book",
    "cancellation_fee",
    "events_of",
    "get_order",
    "join_waitlist",
    "list_all",
    "list_orders",
    "pay",
    "payment_transition",
    "policy_fee",
]

log = logging.getLogger(__name__)

PAYMENT_METHODS = ("pay_at_service", "wallet", "voucher", "gateway")
#: Roles of a provider's staff who are told about new orders.
_PROVIDER_ROLES = ("admin", "steward", "dispatcher", "provider_staff")
#: How far back the provider's median response time looks.
_RESPONSE_WINDOW = timedelta(days=90)
#: Largest quote a provider may give (¥100,000).
MAX_QUOTE_FEN = 10_000_000


# --- actions: pricing and checks ---------------------------------------------------------------------


@engine.action("check_sellable")
def _check_sellable(ctx: Context) -> None:
    """The listing, its provider and the licences its category needs must be in good standing."""
    from zhishe.services import providers

    providers.check_can_sell(ctx.session, ctx.listing)


@engine.action("check_radius")
def _check_radius(ctx: Context) -> None:
    """The resident must live within the provider's service radius; keeps the distance."""
    from zhishe.services import discovery

    ctx.txn.distance_m = discovery.within_radius(ctx.session, ctx.listing, ctx.txn.resident_user_id)


@engine.action("quote_price")
def _quote_price(ctx: Context) -> None:
    """The server's price of the booking (whatever price a client sent is never read)."""
    from zhishe.services import pricing

    txn = ctx.txn
    options = pricing.clean_options(txn.options)
    slot = ctx.session.get(Slot, txn.slot_id) if txn.slot_id else None
    if slot is not None and "starts_at" not in options:
        options["starts_at"] = slot.starts_at.isoformat()
    quote = pricing.quote(
        ctx.session,
        listing=ctx.listing,
        resident_user_id=txn.resident_user_id,
        quantity=txn.quantity,
        options=options,
        at=ctx.now,
    )
    txn.options = options
    txn.quote = quote.as_json()
    txn.price_fen = quote.price_fen
    txn.commission_fen = quote.commission_fen
    txn.currency = quote.currency


def _quote_lines(raw: Any) -> list[dict[str, Any]]:
    """A provider's quote lines, checked: 1–50 lines of a label and a whole, non-negative amount."""
    if not isinstance(raw, list) or not raw:
        raise Invalid(T("a quote needs at least one line"), detail={"field": "lines"})
    if len(raw) > 50:
        raise Invalid(T("a quote has at most 50 lines"), detail={"field": "lines"})
    lines: list[dict[str, Any]] = []
    total = 0
    for index, line in enumerate(raw):
        field = f"lines[{index}]"
        if not isinstance(line, Mapping):
            raise Invalid(T("{field} must have a label and amount_fen", field=field), detail={"field": field})
        label = line.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise Invalid(
                T("{field}.label must be a text of 1 to 200 characters", field=field),
                detail={"field": f"{field}.label"},
            )
        amount = line.get("amount_fen")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise Invalid(
                T("{field}.amount_fen must be a whole number of fen, 0 or more", field=field),
                detail={"field": f"{field}.amount_fen"},
            )
        lines.append(
            {
                "code": f"line{index + 1}",
                "label_zh": label.strip(),
                "label_en": label.strip(),
                "amount_fen": amount,
            }
        )
        total += amount
    if not 0 < total <= MAX_QUOTE_FEN:
        raise Invalid(
            T("a quote's total must be more than 0 and at most ¥100,000 ({fen} fen)", fen=MAX_QUOTE_FEN),
            detail={"field": "lines", "total_fen": total},
        )
    return lines


@engine.action("set_quote")
def _set_quote(ctx: Context) -> None:
    """The provider's quote (the only price that comes from a person, and never from the resident)."""
    from zhishe.services import providers

    lines = _quote_lines(ctx.params.get("lines"))
    total = sum(line["amount_fen"] for line in lines)
    bps = providers.commission_bps(ctx.session, ctx.provider, ctx.listing.category_code)
    txn = ctx.txn
    txn.price_fen = total
    txn.commission_fen = bps_of(total, bps)
    txn.quote = {
        "lines": lines,
        "price_fen": total,
        "commission_bps": bps,
        "commission_fen": txn.commission_fen,
        "discount_fen": 0,
        "currency": txn.currency,
        "quoted_by": "provider",
    }
    ctx.detail["price_fen"] = total


@engine.action("schedule_visit")
def _schedule_visit(ctx: Context) -> None:
    """Keep when the provider will come to look (``visit_at``, ISO 8601, in the future)."""
    raw = ctx.params.get("visit_at")
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or at <= ctx.now:
        raise Invalid(
            T("visit_at must be a future date and time with its offset, such as 2026-11-07T09:00+08:00"),
            detail={"field": "visit_at"},
        )
    ctx.txn.options = {**(ctx.txn.options or {}), "visit_at": at.isoformat()}
    ctx.detail["visit_at"] = at.isoformat()


# --- actions: availability ----------------------------------------------------------------------------


def _rows(session: Session, statement: Any) -> int:
    """How many rows a conditional UPDATE changed."""
    result = cast(CursorResult[Any], session.execute(statement))
    return int(result.rowcount)


def _waitlist_offer(slot_id: int) -> dict[str, Any]:
    return {"slot_id": slot_id, "waitlist": f"/api/v1/services/slots/{slot_id}/waitlist"}


@engine.action("take_slot")
def _take_slot(ctx: Context) -> None:
    """Take one place of the chosen slot (listings sold by slot), or refuse with "fully booked"."""
    if ctx.listing.availability != "slots":
        return
    txn = ctx.txn
    if txn.slot_id is None:
        raise Invalid(T("choose a slot"), detail={"field": "slot_id"})
    slot = ctx.session.get(Slot, txn.slot_id)
    if slot is None or slot.listing_id != txn.listing_id:
        raise Invalid(
            T("slot {id} is not a slot of this listing", id=txn.slot_id), detail={"field": "slot_id"}
        )
    if slot.starts_at <= ctx.now:
        raise Conflict(T("this slot has already started"), detail={"field": "slot_id"})
    _check_booking_window(ctx, slot)
    taken = _rows(
        ctx.session,
        update(Slot)
        .where(Slot.id == slot.id, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False),
    )
    if taken != 1:
        raise Conflict(
            T("this slot is fully booked; you may join its waitlist"), detail=_waitlist_offer(slot.id)
        )
    ctx.session.expire(slot, ["booked"])


#: How far ahead anyone may book a slot, unless the listing's ``settings.booking_window_days`` says
#: otherwise; members of the annual membership may book their plan's ``priority_hours`` further.
BOOKING_WINDOW_DAYS = 14


def booking_window(listing: Listing) -> timedelta:
    """How far ahead of its start a slot of ``listing`` opens to everyone."""
    days = listing.settings.get("booking_window_days") if isinstance(listing.settings, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        days = BOOKING_WINDOW_DAYS
    return timedelta(days=days)


def _check_booking_window(ctx: Context, slot: Slot) -> None:
    """Refuse a slot that has not opened yet for this resident: it opens to everyone
    ``booking_window`` before its start, and to members ``priority_hours`` earlier (priority booking)."""
    window = booking_window(ctx.listing)
    opens = slot.starts_at - window
    if ctx.now >= opens:
        return
    if (
        _member_plan_hours(ctx.session, ctx.txn.resident_user_id, ctx.now) * 3600
        >= (opens - ctx.now).total_seconds()
    ):
        return
    raise Conflict(
        T(
            "this slot opens for booking at {moment}; members of the annual membership may book it earlier",
            moment=opens.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M"),
        ),
        detail={"field": "slot_id", "opens_at": opens.isoformat()},
    )


def _member_plan_hours(session: Session, user_id: int, now: datetime) -> int:
    """The priority hours of the resident's active membership (0 without one, or without memberships)."""
    try:
        from zhishe.finance import memberships
    except ImportError:  # pragma: no cover - finance is part of the platform
        return 0
    plan = memberships.active_plan(session, user_id, now)
    return plan.priority_hours if plan is not None else 0


@engine.action("free_slot")
def _free_slot(ctx: Context) -> None:
    """Give the transaction's place in its slot back."""
    if ctx.txn.slot_id is None or ctx.listing.availability != "slots":
        return
    ctx.session.execute(
        update(Slot)
        .where(Slot.id == ctx.txn.slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )
    slot = ctx.session.get(Slot, ctx.txn.slot_id)
    if slot is not None:
        ctx.session.expire(slot, ["booked"])
    ctx.detail["freed_slot"] = ctx.txn.slot_id


@engine.action("take_stock")
def _take_stock(ctx: Context) -> None:
    """Take the quantity from a batch (the chosen one, else the oldest with enough left)."""
    if ctx.listing.availability != "stock":
        return
    txn = ctx.txn
    if txn.batch_id is None:
        txn.batch_id = ctx.session.scalar(
            select(StockBatch.id)
            .where(StockBatch.listing_id == txn.listing_id, StockBatch.remaining >= txn.quantity)
            .order_by(StockBatch.id)
            .limit(1)
        )
        if txn.batch_id is None:
            raise Conflict(T("sold out"), detail={"field": "quantity", "listing_id": txn.listing_id})
    batch = ctx.session.get(StockBatch, txn.batch_id)
    if batch is None or batch.listing_id != txn.listing_id:
        raise Invalid(
            T("batch {id} is not a batch of this listing", id=txn.batch_id), detail={"field": "batch_id"}
        )
    taken = _rows(
        ctx.session,
        update(StockBatch)
        .where(StockBatch.id == batch.id, StockBatch.remaining >= txn.quantity)
        .values(remaining=StockBatch.remaining - txn.quantity)
        .execution_options(synchronize_session=False),
    )
    if taken != 1:
        raise Conflict(T("not enough left in this batch"), detail={"field": "quantity", "batch_id": batch.id})
    ctx.session.expire(batch, ["remaining"])


@engine.action("return_stock")
def _return_stock(ctx: Context) -> None:
    """Put the transaction's quantity back into its batch."""
    if ctx.txn.batch_id is None or ctx.listing.availability != "stock":
        return
    ctx.session.execute(
        update(StockBatch)
        .where(StockBatch.id == ctx.txn.batch_id)
        .values(remaining=StockBatch.remaining + ctx.txn.quantity)
        .execution_options(synchronize_session=False)
    )
    batch = ctx.session.get(StockBatch, ctx.txn.batch_id)
    if batch is not None:
        ctx.session.expire(batch, ["remaining"])


@engine.guard("slot_started")
def _slot_started(ctx: Context) -> str | None:
    """A no-show can only be reported once the slot has started."""
    slot = ctx.session.get(Slot, ctx.txn.slot_id) if ctx.txn.slot_id else None
    if slot is not None and slot.starts_at > ctx.now:
        return T("a no-show can be reported only after the slot has started")
    return None


# --- actions: money --------------------------------------------------------------------------------------


def _method(ctx: Context) -> str:
    method = ctx.params.get("method") or ("gateway" if ctx.by == "gateway" else "")
    if method not in PAYMENT_METHODS:
        raise Invalid(
            T("method must be one of {values}", values=", ".join(PAYMENT_METHODS)), detail={"field": "method"}
        )
    return str(method)


@engine.action("hold")
def _hold(ctx: Context) -> None:
    """Take the resident's money into escrow (pay at service holds nothing)."""
    from zhishe.services import payments

    voucher = ctx.params.get("voucher_id")
    if voucher is not None and (isinstance(voucher, bool) or not isinstance(voucher, int)):
        raise Invalid(T("voucher_id must be an id"), detail={"field": "voucher_id"})
    payments.hold(ctx.session, txn=ctx.txn, actor=ctx.actor, method=_method(ctx), voucher_id=voucher)


@engine.action("capture")
def _capture(ctx: Context) -> None:
    """Pay the provider the held amount, minus the commission."""
    from zhishe.services import payments

    payments.capture(ctx.session, txn=ctx.txn, actor=ctx.actor)


@engine.action("release")
def _release(ctx: Context) -> None:
    """Return whatever is still held to where it came from."""
    from zhishe.services import payments

    payments.release(ctx.session, txn=ctx.txn, actor=ctx.actor)


@engine.action("refund")
def _refund(ctx: Context) -> None:
    """Refund everything captured and not yet refunded."""
    from zhishe.services import payments

    amount = ctx.txn.captured_fen - ctx.txn.refunded_fen
    if amount > 0:
        reason = str(ctx.params.get("reason") or ctx.transition)[:200]
        payments.refund(ctx.session, txn=ctx.txn, actor=ctx.actor, amount_fen=amount, reason=reason)


def policy_fee(
    listing: Listing, txn: Transaction, slot: Slot | None, now: datetime, *, no_show: bool = False
) -> int:
    """The fee the listing's cancellation policy charges for cancelling ``txn`` at ``now`` (or for a
    no-show): nothing until ``free_until_hours`` before the slot starts, then ``late_fee_bps`` of the
    price; ``no_show_fee_bps`` of it on a no-show. Only money actually held can be kept."""
    if not txn.payment_method or txn.payment_method == "pay_at_service":
        return 0
    policy = listing.cancellation_policy or {}
    if no_show:
        bps = int(policy.get("no_show_fee_bps", 0) or 0)
    else:
        free_hours = int(policy.get("free_until_hours", 0) or 0)
        if slot is None or slot.starts_at - now >= timedelta(hours=free_hours):
            return 0
        bps = int(policy.get("late_fee_bps", 0) or 0)
    held = max(txn.price_fen - txn.captured_fen, 0)
    return min(bps_of(held, max(0, min(bps, 10_000))), held)


def _keep_fee(ctx: Context, fee: int) -> None:
    from zhishe.services import payments

    if not ctx.txn.payment_method:
        return  # nothing was paid, so nothing is held
    if fee > 0:
        payments.capture(ctx.session, txn=ctx.txn, actor=ctx.actor, amount_fen=fee)
    payments.release(ctx.session, txn=ctx.txn, actor=ctx.actor)
    ctx.detail["fee_fen"] = fee


@engine.action("charge_cancellation_fee")
def _charge_cancellation_fee(ctx: Context) -> None:
    """Keep the policy's late-cancellation fee for the provider and return the rest."""
    slot = ctx.session.get(Slot, ctx.txn.slot_id) if ctx.txn.slot_id else None
    _keep_fee(ctx, policy_fee(ctx.listing, ctx.txn, slot, ctx.now))


@engine.action("charge_no_show_fee")
def _charge_no_show_fee(ctx: Context) -> None:
    """Keep the policy's no-show fee for the provider and return the rest."""
    slot = ctx.session.get(Slot, ctx.txn.slot_id) if ctx.txn.slot_id else None
    _keep_fee(ctx, policy_fee(ctx.listing, ctx.txn, slot, ctx.now, no_show=True))


# --- actions: people ------------------------------------------------------------------------------------


def _state_message(ctx: Context, to: str | None = None) -> T:
    process = engine.get_process(ctx.txn.process)
    state = to or next(
        (t.to for t in process.outgoing(ctx.txn.state) if t.name == ctx.transition), ctx.txn.state
    )
    return T(
        "Order {id} ({title}): {state}",
        id=ctx.txn.id,
        title=ctx.listing.title_zh,
        state=process.state_label(state, "zh-CN"),
    )


@engine.action("notify_resident")
def _notify_resident(ctx: Context) -> None:
    """Tell the resident where their order now stands."""
    notify_users(
        session=ctx.session,
        user_ids=[ctx.txn.resident_user_id],
        kind="services.order",
        message=_state_message(ctx, ctx.txn.state if ctx.transition == "start" else None),
        link=f"/services/orders/{ctx.txn.id}",
    )


@engine.action("notify_provider")
def _notify_provider(ctx: Context) -> None:
    """Tell the provider's staff where the order now stands."""
    notify_org(
        session=ctx.session,
        org_id=ctx.provider.org_id,
        kind="services.order",
        message=_state_message(ctx, ctx.txn.state if ctx.transition == "start" else None),
        link="/provider/orders",
        roles=_PROVIDER_ROLES,
    )


@engine.action("record_response")
def _record_response(ctx: Context) -> None:
    """Keep the provider's median minutes to a first answer over the last 90 days (for ranking)."""
    session, txn = ctx.session, ctx.txn
    answered_before = session.scalar(
        select(TransactionEvent.id)
        .where(TransactionEvent.transaction_id == txn.id, TransactionEvent.actor_kind == "provider")
        .limit(1)
    )
    if answered_before is not None:
        return
    since = ctx.now - _RESPONSE_WINDOW
    rows = session.execute(
        select(Transaction.created_at, func.min(TransactionEvent.at))
        .join(TransactionEvent, TransactionEvent.transaction_id == Transaction.id)
        .where(
            Transaction.provider_id == txn.provider_id,
            Transaction.created_at >= since,
            TransactionEvent.actor_kind == "provider",
        )
        .group_by(Transaction.id, Transaction.created_at)
    ).all()
    minutes = [(answered - created).total_seconds() / 60 for created, answered in rows]
    minutes.append((ctx.now - txn.created_at).total_seconds() / 60)
    ctx.provider.response_minutes = round(statistics.median(minutes), 1)


# --- actions: waitlist ------------------------------------------------------------------------------------


def _member_first(session: Session, user_ids: list[int], now: datetime) -> set[int]:
    """Which of ``user_ids`` hold an active membership (none when memberships are not installed)."""
    try:
        from zhishe.finance import memberships
    except ImportError:
        return set()
    return {uid for uid in user_ids if memberships.active_plan(session, uid, now) is not None}


@engine.action("backfill_waitlist")
def _backfill_waitlist(ctx: Context) -> None:
    """Book the first waiting resident (members first) into the freed place and tell them."""
    if ctx.txn.slot_id is None:
        return
    waiting = list(
        ctx.session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.slot_id == ctx.txn.slot_id, WaitlistEntry.state == "waiting")
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        )
    )
    members = _member_first(ctx.session, [w.user_id for w in waiting], ctx.now)
    waiting.sort(key=lambda w: w.user_id not in members)
    for entry in waiting:
        user = ctx.session.get(User, entry.user_id)
        if user is None or not user.is_active:
            entry.state = "left"
            continue
        options = dict(entry.options or {})
        quantity = options.pop("quantity", 1)
        try:
            with ctx.session.begin_nested():
                booked = engine.start(
                    ctx.session,
                    listing=ctx.listing,
                    actor=actor_for_user(user),
                    params={"slot_id": entry.slot_id, "quantity": quantity, "options": options},
                )
        except Conflict as exc:
            if exc.detail.get("waitlist"):
                return  # the place went to someone else meanwhile
            log.info("waitlist entry %s could not be booked: %s", entry.id, exc)
            continue
        except ZhisheError as exc:
            log.info("waitlist entry %s could not be booked: %s", entry.id, exc)
            continue
        entry.state = "booked"
        entry.transaction_id = booked.id
        notify_users(
            session=ctx.session,
            user_ids=[entry.user_id],
            kind="services.waitlist",
            message=T("A place freed up: order {id} is booked for you; pay to keep it", id=booked.id),
            link=f"/services/orders/{booked.id}",
        )
        ctx.detail["backfilled_by"] = booked.id
        return


def join_waitlist(
    session: Session,
    *,
    actor: Actor,
    slot_id: int,
    quantity: int = 1,
    options: Mapping[str, Any] | None = None,
) -> WaitlistEntry:
    """Wait for a place in a full slot (joining twice keeps the first place in the queue)."""
    from zhishe.services import pricing

    authorize(actor, "services.book", what=f"slot {slot_id}")
    if actor.user_id is None:
        raise Forbidden(T("sign in to book community services"))
    slot = session.get(Slot, slot_id)
    listing = session.get(Listing, slot.listing_id) if slot else None
    if slot is None or listing is None or listing.status != "active":
        raise NotFound(T("there is no slot {id}", id=slot_id), detail={"slot_id": slot_id})
    if slot.starts_at <= clock.now():
        raise Conflict(T("this slot has already started"), detail={"slot_id": slot_id})
    if slot.booked < slot.capacity:
        raise Conflict(T("this slot still has free places: book it directly"), detail={"slot_id": slot_id})
    count = pricing.parse_quantity(quantity)
    clean = pricing.clean_options(options)
    from zhishe.services import discovery

    discovery.within_radius(session, listing, actor.user_id)
    found = session.scalar(
        select(WaitlistEntry).where(WaitlistEntry.slot_id == slot_id, WaitlistEntry.user_id == actor.user_id)
    )
    if found is not None and found.state == "waiting":
        return found
    if found is None:
        found = WaitlistEntry(slot_id=slot_id, user_id=actor.user_id, created_at=clock.now())
        session.add(found)
    found.state = "waiting"
    found.options = {**clean, "quantity": count}
    found.created_at = clock.now()
    session.flush()
    record(
        session=session,
        actor=actor,
        action="services.waitlist.join",
        object_type="services_slot",
        object_id=slot_id,
        detail={"entry": found.id},
    )
    return found


# --- the booking service ------------------------------------------------------------------------------


def book(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    slot_id: int | None = None,
    batch_id: int | None = None,
    quantity: object = 1,
    options: Mapping[str, Any] | None = None,
    note: str = "",
) -> Transaction:
    """Book a listing: start its process for the resident (priced on the server; any price, fee or
    commission the client sent is dropped)."""
    from zhishe.services import pricing

    authorize(actor, "services.book", what=f"listing {listing_id}")
    listing = session.get(Listing, listing_id)
    if listing is None or listing.status in {"draft", "withdrawn"}:
        raise NotFound(T("there is no listing {id}", id=listing_id), detail={"listing_id": listing_id})
    count = pricing.parse_quantity(quantity)
    params: dict[str, Any] = {
        "slot_id": slot_id,
        "batch_id": batch_id,
        "quantity": count,
        "options": pricing.clean_options(options),
        "note": note,
    }
    return engine.start(session, listing=listing, actor=actor, params=params)


def _visible(session: Session, actor: Actor, txn: Transaction) -> bool:
    if actor.user_id is not None and actor.user_id == txn.resident_user_id:
        return True
    provider = session.get(Provider, txn.provider_id)
    return can(actor, "services.provider_read", org_id=provider.org_id if provider else None)


def get_order(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """One order, for its resident, its provider's staff or the operator (a staff read is audited);
    anybody else is told it does not exist."""
    txn = session.get(Transaction, transaction_id)
    if txn is None or not _visible(session, actor, txn):
        raise NotFound(T("there is no order {id}", id=transaction_id), detail={"transaction": transaction_id})
    if actor.user_id != txn.resident_user_id:
        provider = session.get(Provider, txn.provider_id)
        record(
            session=session,
            actor=actor,
            action="services.order.read",
            object_type="services_transaction",
            object_id=txn.id,
            object_org_id=provider.org_id if provider else None,
        )
    return txn


def events_of(session: Session, txn: Transaction) -> list[TransactionEvent]:
    """The steps of an order, oldest first."""
    return list(
        session.scalars(
            select(TransactionEvent)
            .where(TransactionEvent.transaction_id == txn.id)
            .order_by(TransactionEvent.at, TransactionEvent.id)
        )
    )


def list_orders(
    session: Session,
    *,
    actor: Actor,
    as_provider: bool = False,
    state: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[Transaction]:
    """The actor's own orders, newest first; with ``as_provider``, the orders of their provider
    organisation (staff only, audited)."""
    query = select(Transaction)
    if as_provider:
        provider = (
            session.scalar(select(Provider).where(Provider.org_id == actor.org_id)) if actor.org_id else None
        )
        authorize(actor, "services.provider_read", org_id=provider.org_id if provider else -1, what="orders")
        if provider is None:
            raise NotFound(T("your organisation has no provider profile"), detail={"as": "provider"})
        query = query.where(Transaction.provider_id == provider.id)
        record(
            session=session,
            actor=actor,
            action="services.order.list",
            object_type="services_provider",
            object_id=provider.id,
            object_org_id=provider.org_id,
            detail={"state": state or ""},
        )
    else:
        authorize(actor, "services.browse", what="orders")
        if actor.user_id is None:
            raise Forbidden(T("sign in to use community services"))
        query = query.where(Transaction.resident_user_id == actor.user_id)
    if state:
        if len(state) > 32:
            raise Invalid(T("state is at most 32 characters"), detail={"parameter": "state"})
        query = query.where(Transaction.state == state)
    return keyset_page(
        session, query, Transaction.id, after=after, limit=max(1, min(limit, 200)), newest_first=True
    )


def list_all(
    session: Session, *, actor: Actor, state: str | None = None, after: str | None = None, limit: int = 50
) -> Page[Transaction]:
    """Every order of the marketplace, newest first (the operator; audited)."""
    authorize(actor, "services.operate", what="orders")
    query = select(Transaction)
    if state:
        query = query.where(Transaction.state == state[:32])
    record(
        session=session,
        actor=actor,
        action="services.order.list",
        object_type="services_transaction",
        object_id="*",
        detail={"state": state or ""},
    )
    return keyset_page(
        session, query, Transaction.id, after=after, limit=max(1, min(limit, 500)), newest_first=True
    )


def _kind_for(session: Session, txn: Transaction, actor: Actor, transition: str) -> str:
    """The part ``actor`` plays in taking ``transition`` (resident, provider or operator)."""
    process = engine.get_process(txn.process)
    wanted = {a for t in process.outgoing(txn.state) if t.name == transition for a in t.actors}
    kinds = engine.actor_kinds(session, txn, actor)
    return next((k for k in kinds if k in wanted), kinds[0] if kinds else "resident")


def act(
    session: Session,
    *,
    actor: Actor,
    transaction_id: int,
    transition: str,
    params: Mapping[str, Any] | None = None,
) -> Transaction:
    """Take ``transition`` on an order the actor may see (accept, decline, quote, deliver, cancel...)."""
    txn = get_order(session, actor=actor, transaction_id=transaction_id)
    by = _kind_for(session, txn, actor, transition)
    return engine.fire(
        session, transaction_id=txn.id, transition=transition, actor=actor, by=by, params=params
    )


def payment_transition(session: Session, txn: Transaction) -> str | None:
    """The transition that pays for ``txn`` from its current state (``pay``, or ``accept`` of a
    quote), or None when nothing is to be paid now. The gateway's callback fires this one."""
    process = engine.get_process(txn.process)
    for t in process.outgoing(txn.state):
        if "hold" in t.actions and "resident" in t.actors:
            return t.name
    return None


def pay(
    session: Session, *, actor: Actor, transaction_id: int, method: str, voucher_id: int | None = None
) -> Transaction | dict[str, Any]:
    """Pay for an order: by wallet, voucher or at the service, at once; through the online gateway,
    a pending checkout (returned) that the gateway's signed callback completes."""
    txn = get_order(session, actor=actor, transaction_id=transaction_id)
    if method not in PAYMENT_METHODS:
        raise Invalid(
            T("method must be one of {values}", values=", ".join(PAYMENT_METHODS)), detail={"field": "method"}
        )
    name = payment_transition(session, txn)
    if name is None:
        raise Conflict(
            T("order {id} has nothing to pay now (it is {state})", id=txn.id, state=txn.state),
            detail={"state": txn.state},
        )
    if actor.user_id != txn.resident_user_id:
        raise Forbidden(
            T("only the resident who booked may pay for this order"), detail={"transaction": txn.id}
        )
    if method == "gateway":
        from zhishe.services import payments

        return payments.gateway_checkout(session, txn=txn, actor=actor, voucher_id=voucher_id)
    params = {"method": method, "voucher_id": voucher_id}
    return engine.fire(
        session, transaction_id=txn.id, transition=name, actor=actor, by="resident", params=params
    )


def cancellation_fee(session: Session, txn: Transaction, *, now: datetime | None = None) -> int:
    """What cancelling ``txn`` now would cost the resident (shown before they confirm)."""
    listing = session.get(Listing, txn.listing_id)
    slot = session.get(Slot, txn.slot_id) if txn.slot_id else None
    if listing is None:
        return 0
    return policy_fee(listing, txn, slot, now or clock.now())
