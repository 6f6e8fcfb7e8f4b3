"""Membership boxes (会员预售): fresh food straight from a farm, prepaid for a plan of periods.

A listing run by the ``membership_box`` process declares its plans in ``settings.plans``::

    {"month": {"periods": 4, "every_days": 7},
     "half_year": {"periods": 26, "every_days": 7, "discount_bps": 500},
     "year": {"periods": 52, "every_days": 7, "discount_bps": 1000}}

The plan's price is the listing's price rules for ``periods`` boxes (unit ``box``), less the plan's
discount. Subscribing prepays the whole plan into escrow (a hold); each delivery the provider marks
captures exactly that period's share for the provider, so the provider is only ever paid for what
was delivered. The price is split over the periods in whole fen, the first ``price % periods``
periods carrying one fen more, so the shares always add up to the price. A cancel releases what is
still held: the shares of the undelivered periods (the pro-rata refund), to the fen.

Pausing stops deliveries; resuming moves every undelivered delivery that fell due during the pause
later by whole periods, so the plan keeps its number of boxes and its end moves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_users
from zhishe.finance.money import bps_of, yuan_label
from zhishe.finance.periods import local_today
from zhishe.services import common, engine, payments, pricing, transactions
from zhishe.services.engine import Context
from zhishe.services.models import BoxDelivery, Listing, Transaction

__all__ = [
    "PLAN_NAMES",
    "BoxView",
    "Plan",
    "cancel",
    "cancel_preview",
    "discounted",
    "get_subscription",
    "mark_delivered",
    "pause",
    "plan_prices",
    "plans_of",
    "resume",
    "resume_shift_days",
    "schedule",
    "split_evenly",
    "subscribe",
]

PROCESS = "membership_box"
#: A box is prepaid: it is paid by wallet, voucher or online, never at the service.
SUBSCRIBE_METHODS = ("wallet", "voucher", "gateway")

#: The plans a listing may offer, in the order they are shown.
PLAN_NAMES = ("month", "half_year", "year")
#: Bounds of a plan: at most a delivery a day for a year, at most a year between deliveries.
_MAX_PERIODS = 366
_MAX_EVERY_DAYS = 366


@dataclass(frozen=True, slots=True)
class Plan:
    """One prepayment plan of a box listing."""

    name: str
    periods: int
    every_days: int
    discount_bps: int = 0

    def as_json(self) -> dict[str, Any]:
        """The plan as JSON."""
        return {
            "name": self.name,
            "periods": self.periods,
            "every_days": self.every_days,
            "discount_bps": self.discount_bps,
        }


def _whole(value: object, field: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, or Invalid naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(
            T("{field} must be a whole number from {low} to {high}", field=field, low=low, high=high),
            detail={"field": field, "value": repr(value)},
        )
    return value


def plans_of(settings: dict[str, Any]) -> dict[str, Plan]:
    """The validated plans of a box listing's ``settings`` (Invalid names the bad field)."""
    raw = settings.get("plans")
    if not isinstance(raw, dict) or not raw:
        raise Invalid(
            T("settings.plans must name at least one plan of {names}", names=", ".join(PLAN_NAMES)),
            detail={"field": "settings.plans"},
        )
    plans: dict[str, Plan] = {}
    for name in PLAN_NAMES:
        if name in raw:
            plans[name] = _plan(name, raw[name])
    unknown = sorted(set(raw) - set(PLAN_NAMES), key=str)
    if unknown:
        raise Invalid(
            T("settings.plans has unknown plan {name}", name=str(unknown[0])),
            detail={"field": f"settings.plans.{unknown[0]}"},
        )
    return plans


def _plan(name: str, raw: object) -> Plan:
    field = f"settings.plans.{name}"
    if not isinstance(raw, dict):
        raise Invalid(T("{field} must be an object", field=field), detail={"field": field})
    return Plan(
        name=name,
        periods=_whole(raw.get("periods"), f"{field}.periods", 1, _MAX_PERIODS),
        every_days=_whole(raw.get("every_days"), f"{field}.every_days", 1, _MAX_EVERY_DAYS),
        discount_bps=_whole(raw.get("discount_bps", 0), f"{field}.discount_bps", 0, 10_000),
    )


def discounted(price_fen: int, discount_bps: int) -> tuple[int, int]:
    """``(price after the plan's discount, the discount)`` in fen."""
    discount = bps_of(price_fen, discount_bps)
    return price_fen - discount, discount


def split_evenly(total_fen: int, parts: int) -> list[int]:
    """``total_fen`` split into ``parts`` whole-fen shares that add up to it exactly: the first
    ``total_fen % parts`` shares carry one fen more."""
    if parts < 1 or total_fen < 0:
        raise Invalid(T("cannot split {total} fen into {parts} parts", total=total_fen, parts=parts))
    share, extra = divmod(total_fen, parts)
    return [share + (1 if index < extra else 0) for index in range(parts)]


def schedule(first: date, periods: int, every_days: int) -> list[date]:
    """The due dates of ``periods`` deliveries, the first on ``first``, then every ``every_days``."""
    return [first + timedelta(days=index * every_days) for index in range(periods)]


def resume_shift_days(next_due: date | None, paused_on: date, resumed_on: date, every_days: int) -> int:
    """How many days to move the undelivered deliveries on resuming: whole periods, enough that the
    next delivery is due no earlier than ``resumed_on``. Deliveries due before the pause began are
    not counted as skipped (``next_due`` is the earliest undelivered one due on or after it)."""
    if next_due is None or resumed_on <= next_due or resumed_on <= paused_on:
        return 0
    late = (resumed_on - next_due).days
    periods = -(-late // every_days)
    return periods * every_days


def plan_of_order(txn: Transaction) -> Plan:
    """The plan a subscription was bought on (kept on its quote, so later listing edits don't matter)."""
    raw = (txn.quote or {}).get("plan") or {}
    return Plan(
        name=str(raw.get("name", "")),
        periods=int(raw.get("periods", 1)),
        every_days=int(raw.get("every_days", 7)),
        discount_bps=int(raw.get("discount_bps", 0)),
    )


def shares_of(txn: Transaction) -> list[int]:
    """What each period of a subscription is worth, in fen (they add up to its price)."""
    return split_evenly(txn.price_fen, plan_of_order(txn).periods)


def _deliveries(session: Session, txn_id: int, state: str | None = None) -> list[BoxDelivery]:
    query = select(BoxDelivery).where(BoxDelivery.transaction_id == txn_id)
    if state is not None:
        query = query.where(BoxDelivery.state == state)
    return list(session.scalars(query.order_by(BoxDelivery.period_index)))


# --- engine actions -----------------------------------------------------------------------------------


@engine.action("box_price")
def _box_price(ctx: Context) -> None:
    """Price the chosen plan on the server: ``periods`` boxes by the listing's price rules, less the
    plan's discount (whatever price a client sent is never read)."""
    txn = ctx.txn
    options = pricing.clean_options(txn.options)
    name = options.pop("plan", None)
    plans = plans_of(ctx.listing.settings or {})
    if name not in plans:
        raise Invalid(
            T("plan must be one of {names}", names=", ".join(plans)),
            detail={"field": "plan", "allowed": list(plans)},
        )
    plan = plans[str(name)]
    quote = pricing.quote(
        ctx.session,
        listing=ctx.listing,
        resident_user_id=txn.resident_user_id,
        quantity=plan.periods * txn.quantity,
        options=options,
        at=ctx.now,
    )
    price, discount = discounted(quote.price_fen, plan.discount_bps)
    data = quote.as_json()
    if discount:
        data["lines"].append(
            {
                "code": "plan_discount",
                "label_zh": "预付折扣",
                "label_en": "Prepayment discount",
                "amount_fen": -discount,
            }
        )
    data.update(
        price_fen=price,
        discount_fen=quote.discount_fen + discount,
        commission_fen=bps_of(price, quote.commission_bps),
        plan=plan.as_json(),
    )
    txn.options = {**options, "plan": plan.name}
    txn.quote = data
    txn.price_fen = price
    txn.commission_fen = data["commission_fen"]
    txn.currency = quote.currency


@engine.action("box_schedule")
def _box_schedule(ctx: Context) -> None:
    """Schedule the plan's deliveries, the first the day after paying."""
    plan = plan_of_order(ctx.txn)
    first = local_today(ctx.now) + timedelta(days=1)
    for index, due in enumerate(schedule(first, plan.periods, plan.every_days)):
        ctx.session.add(BoxDelivery(transaction_id=ctx.txn.id, period_index=index, due_on=due, state="due"))
    ctx.session.flush()
    ctx.detail["deliveries"] = plan.periods


def _due(ctx: Context) -> list[BoxDelivery]:
    return _deliveries(ctx.session, ctx.txn.id, "due")


@engine.guard("box_more_to_come")
def _more_to_come(ctx: Context) -> str | None:
    """``deliver`` leaves more deliveries to come; the last one is ``complete``."""
    return None if len(_due(ctx)) > 1 else T("this is the last delivery: complete the subscription")


@engine.guard("box_last_delivery")
def _last_delivery(ctx: Context) -> str | None:
    """``complete`` is the last delivery."""
    return None if len(_due(ctx)) == 1 else T("more deliveries are still to come")


@engine.action("box_deliver")
def _box_deliver(ctx: Context) -> None:
    """Mark a delivery made and pay the provider exactly that period's share."""
    due = _due(ctx)
    wanted = ctx.params.get("delivery_id")
    delivery = (
        next((d for d in due if d.id == wanted), None) if wanted is not None else (due[0] if due else None)
    )
    if delivery is None:
        raise Conflict(
            T("delivery {id} is not due on this subscription", id=wanted), detail={"delivery_id": wanted}
        )
    delivery.state = "delivered"
    delivery.delivered_at = ctx.now
    amount = shares_of(ctx.txn)[delivery.period_index]
    if amount > 0:
        payments.capture(ctx.session, txn=ctx.txn, actor=ctx.actor, amount_fen=amount)
    ctx.detail.update(delivery_id=delivery.id, period_index=delivery.period_index, captured_fen=amount)
    notify_users(
        session=ctx.session,
        user_ids=[ctx.txn.resident_user_id],
        kind="services.box",
        message=T(
            "Box {n} of {total} of {title} was delivered",
            n=delivery.period_index + 1,
            total=plan_of_order(ctx.txn).periods,
            title=ctx.listing.title_zh,
        ),
        link=f"/services/boxes/{ctx.txn.id}",
    )


@engine.action("box_pause")
def _box_pause(ctx: Context) -> None:
    """Remember the day the pause began."""
    today = local_today(ctx.now)
    ctx.txn.options = {**(ctx.txn.options or {}), "paused_on": today.isoformat()}
    ctx.detail["paused_on"] = today.isoformat()


@engine.action("box_resume")
def _box_resume(ctx: Context) -> None:
    """Move the deliveries that fell due during the pause (and all after them) by whole periods."""
    options = dict(ctx.txn.options or {})
    paused_on = date.fromisoformat(str(options.pop("paused_on", local_today(ctx.now).isoformat())))
    today = local_today(ctx.now)
    waiting = [d for d in _due(ctx) if d.due_on >= paused_on]
    shift = resume_shift_days(
        waiting[0].due_on if waiting else None, paused_on, today, plan_of_order(ctx.txn).every_days
    )
    for delivery in waiting:
        delivery.due_on = delivery.due_on + timedelta(days=shift)
    ctx.txn.options = options
    ctx.detail.update(paused_on=paused_on.isoformat(), shifted_days=shift)


@engine.action("box_cancel")
def _box_cancel(ctx: Context) -> None:
    """Cancel the deliveries still to come and give back what is held for them (the pro-rata refund)."""
    due = _due(ctx)
    for delivery in due:
        delivery.state = "cancelled"
    released = payments.release(ctx.session, txn=ctx.txn, actor=ctx.actor)
    refund = sum(p.amount_fen for p in released)
    ctx.detail.update(cancelled_deliveries=len(due), refund_fen=refund)
    notify_users(
        session=ctx.session,
        user_ids=[ctx.txn.resident_user_id],
        kind="services.box",
        message=T(
            "Your subscription to {title} was cancelled: {yuan} returned for the boxes not delivered",
            title=ctx.listing.title_zh,
            yuan=yuan_label(refund),
        ),
        link=f"/services/boxes/{ctx.txn.id}",
    )


# --- the service --------------------------------------------------------------------------------------


def plan_prices(session: Session, *, actor: Actor, listing_id: int) -> list[tuple[Plan, int]]:
    """Each plan a box listing offers with what it costs the viewer now (server-priced)."""
    authorize(actor, "services.browse", what=f"listing {listing_id}")
    listing = _box_listing(session, listing_id)
    prices = []
    for plan in plans_of(listing.settings or {}).values():
        quote = pricing.quote(session, listing=listing, resident_user_id=actor.user_id, quantity=plan.periods)
        prices.append((plan, discounted(quote.price_fen, plan.discount_bps)[0]))
    return prices


def _box_listing(session: Session, listing_id: int) -> Listing:
    refusal = T("listing {id} is not a membership box", id=listing_id)
    return common.listing_of(session, listing_id, process=PROCESS, refusal=refusal)


def subscribe(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    plan: str,
    method: str,
    quantity: object = 1,
    voucher_id: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Transaction, dict[str, Any] | None]:
    """Subscribe to a box plan and prepay it into escrow: by wallet or voucher at once (deliveries
    scheduled), or online (the pending checkout is returned; its confirmed callback schedules them)."""
    authorize(actor, "services.book", what=f"listing {listing_id}")
    if method not in SUBSCRIBE_METHODS:
        raise Invalid(
            T(
                "a membership box is prepaid: method must be one of {values}",
                values=", ".join(SUBSCRIBE_METHODS),
            ),
            detail={"field": "method"},
        )
    common.check_voucher_id(voucher_id)
    if not isinstance(plan, str) or plan not in PLAN_NAMES:
        raise Invalid(T("plan must be one of {names}", names=", ".join(PLAN_NAMES)), detail={"field": "plan"})
    count = pricing.parse_quantity(quantity)
    listing = _box_listing(session, listing_id)
    clean = {**pricing.clean_options(options), "plan": plan}
    params = {"quantity": count, "options": clean}
    return common.start_and_pay(
        session, listing=listing, actor=actor, params=params, method=method, voucher_id=voucher_id
    )


@dataclass(frozen=True, slots=True)
class BoxView:
    """A subscription as its resident or its provider sees it."""

    txn: Transaction
    listing: Listing
    plan: Plan
    deliveries: list[BoxDelivery]
    shares: list[int]

    @property
    def delivered_fen(self) -> int:
        """The value of the boxes delivered (paid to the provider)."""
        return sum(self.shares[d.period_index] for d in self.deliveries if d.state == "delivered")

    @property
    def refund_fen(self) -> int:
        """What cancelling now gives back: the value of every box not delivered."""
        if self.txn.state not in ("active", "paused"):
            return 0
        return sum(self.shares[d.period_index] for d in self.deliveries if d.state == "due")

    @property
    def ends_on(self) -> date | None:
        """When the last delivery is due."""
        return max((d.due_on for d in self.deliveries), default=None)

    def as_json(self) -> dict[str, Any]:
        """The subscription as JSON."""
        return {
            "id": self.txn.id,
            "listing_id": self.listing.id,
            "state": self.txn.state,
            "plan": self.plan.as_json(),
            "price_fen": self.txn.price_fen,
            "captured_fen": self.txn.captured_fen,
            "delivered_fen": self.delivered_fen,
            "refund_if_cancelled_fen": self.refund_fen,
            "paused_on": (self.txn.options or {}).get("paused_on"),
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "deliveries": [
                {
                    "id": d.id,
                    "period_index": d.period_index,
                    "due_on": d.due_on.isoformat(),
                    "state": d.state,
                    "value_fen": self.shares[d.period_index],
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                }
                for d in self.deliveries
            ],
        }


def _subscription(session: Session, actor: Actor, transaction_id: int) -> Transaction:
    refusal = T("order {id} is not a membership box", id=transaction_id)
    return common.order_of(session, actor, transaction_id, process=PROCESS, refusal=refusal)


def get_subscription(session: Session, *, actor: Actor, transaction_id: int) -> BoxView:
    """A box subscription with its deliveries, for its resident, its provider or the operator."""
    txn = _subscription(session, actor, transaction_id)
    listing = session.get(Listing, txn.listing_id)
    assert listing is not None
    return BoxView(
        txn=txn,
        listing=listing,
        plan=plan_of_order(txn),
        deliveries=_deliveries(session, txn.id),
        shares=shares_of(txn),
    )


def cancel_preview(session: Session, *, actor: Actor, transaction_id: int) -> dict[str, int]:
    """What cancelling would give back now, shown before the resident confirms."""
    view = get_subscription(session, actor=actor, transaction_id=transaction_id)
    return {
        "price_fen": view.txn.price_fen,
        "delivered_fen": view.delivered_fen,
        "refund_fen": view.refund_fen,
    }


def _step(session: Session, actor: Actor, transaction_id: int, transition: str) -> Transaction:
    txn = _subscription(session, actor, transaction_id)
    return transactions.act(session, actor=actor, transaction_id=txn.id, transition=transition)


def pause(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """Pause deliveries until the resident resumes (the plan's end moves out by the periods skipped)."""
    return _step(session, actor, transaction_id, "pause")


def resume(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """Resume deliveries; those that fell due during the pause move later by whole periods."""
    return _step(session, actor, transaction_id, "resume")


def cancel(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """Cancel a subscription: the boxes not delivered are refunded pro rata, to the fen."""
    return _step(session, actor, transaction_id, "cancel")


def mark_delivered(session: Session, *, actor: Actor, delivery_id: int) -> BoxDelivery:
    """The provider marks one delivery made; the provider is paid that period's share, and the last
    delivery completes the subscription."""
    delivery = session.get(BoxDelivery, delivery_id)
    if delivery is None:
        raise NotFound(T("there is no delivery {id}", id=delivery_id), detail={"delivery_id": delivery_id})
    txn = _subscription(session, actor, delivery.transaction_id)
    remaining = len(_deliveries(session, txn.id, "due"))
    transition = "complete" if remaining == 1 and delivery.state == "due" else "deliver"
    engine.fire(
        session,
        transaction_id=txn.id,
        transition=transition,
        actor=actor,
        by="provider",
        params={"delivery_id": delivery.id},
    )
    session.refresh(delivery)
    return delivery
