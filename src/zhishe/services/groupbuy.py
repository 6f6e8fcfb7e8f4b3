"""Group buys (拼团): residents join the open group of a listing; when enough have joined, every
member is charged at once, and when the deadline passes first, every member gets their money back.

A listing run by the ``group_buy`` process says in ``settings`` how big a group must be
(``group_min``, at least 2) and how long it stays open: ``group_hours`` after it opens, or an
explicit ``group_deadline`` (ISO 8601 with offset). The first resident to join opens a group.

Each member is one transaction. Joining holds the member's money (wallet, voucher or the online
gateway; paying at the service is refused, because a group must be paid for when it forms). The
member count moves by one conditional UPDATE when the money is held, so concurrent joiners are
counted exactly once each. The member whose payment brings the count to ``group_min`` forms the
group: in that same database transaction every member's hold is captured and every member moves
on to ``formed``. A formed group keeps accepting members, each charged at once, until its deadline
while stock lasts; after the deadline the next joiner opens a new group (unless the listing's
explicit deadline has passed: then the group buy is closed). When the deadline passes before the
group forms, each member's ``fail`` timer releases its hold in full and returns its stock; the
engine's timers or this module's ``sweep`` fire them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Conflict, Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_users
from zhishe.services import common, engine, payments, pricing
from zhishe.services.engine import Context
from zhishe.services.models import GroupBuy, Listing, Transaction

__all__ = [
    "MEMBER_STATES",
    "GroupRules",
    "GroupView",
    "get_group",
    "group_rules",
    "join",
    "open_group_of",
    "sweep",
]

log = logging.getLogger(__name__)

PROCESS = "group_buy"
#: Member states that hold a place in a group (the others gave it back).
MEMBER_STATES = ("pending_payment", "joined", "formed", "delivered")
#: Methods a member may pay with; paying at the service cannot be charged when the group forms.
JOIN_METHODS = ("wallet", "voucher", "gateway")
_MAX_GROUP = 10_000
_MAX_HOURS = 90 * 24


@dataclass(frozen=True, slots=True)
class GroupRules:
    """How a listing's groups form: the minimum size and how the deadline is set."""

    min_size: int
    hours: int | None
    deadline: datetime | None

    def deadline_from(self, opened_at: datetime) -> datetime:
        """The deadline of a group opened at ``opened_at``."""
        if self.deadline is not None:
            return self.deadline
        assert self.hours is not None
        return opened_at + timedelta(hours=self.hours)


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(
            T("{field} must be a whole number from {low} to {high}", field=field, low=low, high=high),
            detail={"field": field, "value": repr(value)[:40]},
        )
    return value


def group_rules(settings: dict[str, Any]) -> GroupRules:
    """The validated group settings of a listing (Invalid names ``settings.<field>``)."""
    min_size = _whole(settings.get("group_min"), "settings.group_min", 2, _MAX_GROUP)
    raw_deadline = settings.get("group_deadline")
    deadline = None
    if raw_deadline not in (None, ""):
        try:
            deadline = datetime.fromisoformat(str(raw_deadline))
        except ValueError:
            deadline = None
        if deadline is None or deadline.tzinfo is None:
            raise Invalid(
                T("settings.group_deadline must be an ISO 8601 date and time with its offset"),
                detail={"field": "settings.group_deadline"},
            )
    hours = None
    if deadline is None or settings.get("group_hours") is not None:
        hours = _whole(settings.get("group_hours"), "settings.group_hours", 1, _MAX_HOURS)
    return GroupRules(min_size=min_size, hours=hours, deadline=deadline)


def _listing_or_raise(session: Session, listing_id: int) -> Listing:
    refusal = T("listing {id} is not a group buy", id=listing_id)
    return common.listing_of(session, listing_id, process=PROCESS, refusal=refusal)


def open_group_of(session: Session, listing: Listing, now: datetime) -> GroupBuy | None:
    """The group of ``listing`` that takes members now (forming or formed, before its deadline)."""
    return session.scalar(
        select(GroupBuy)
        .where(
            GroupBuy.listing_id == listing.id,
            GroupBuy.state.in_(("forming", "formed")),
            GroupBuy.deadline > now,
        )
        .order_by(GroupBuy.id)
        .limit(1)
    )


def _group_for_joining(session: Session, listing: Listing, now: datetime) -> GroupBuy:
    """The open group of ``listing``, or a new one. The listing row is locked first (PostgreSQL),
    so two first joiners cannot open two groups."""
    session.execute(
        select(Listing.id)
        .where(Listing.id == listing.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = open_group_of(session, listing, now)
    if found is not None:
        return found
    rules = group_rules(listing.settings or {})
    deadline = rules.deadline_from(now)
    if deadline <= now:
        raise Conflict(
            T("this group buy closed at {deadline}", deadline=deadline.isoformat()),
            detail={"listing_id": listing.id, "deadline": deadline.isoformat()},
        )
    group = GroupBuy(
        listing_id=listing.id,
        min_size=rules.min_size,
        deadline=deadline,
        members=0,
        state="forming",
        created_at=now,
    )
    session.add(group)
    session.flush()
    return group


# --- engine actions -----------------------------------------------------------------------------------


@engine.action("group_enter")
def _group_enter(ctx: Context) -> None:
    """Put the new member in the listing's open group (opening one), refusing a second place."""
    txn = ctx.txn
    group = _group_for_joining(ctx.session, ctx.listing, ctx.now)
    already = ctx.session.scalar(
        select(Transaction.id).where(
            Transaction.group_id == group.id,
            Transaction.resident_user_id == txn.resident_user_id,
            Transaction.id != txn.id,
            Transaction.state.in_(MEMBER_STATES),
        )
    )
    if already is not None:
        raise Conflict(
            T("you have already joined this group buy (order {id})", id=already),
            detail={"group_id": group.id, "transaction": already},
        )
    txn.group_id = group.id
    ctx.detail["group_id"] = group.id


def _group_of(ctx: Context) -> GroupBuy:
    group = ctx.session.get(GroupBuy, ctx.txn.group_id) if ctx.txn.group_id else None
    if group is None:
        raise Conflict(T("this order belongs to no group buy"), detail={"transaction": ctx.txn.id})
    return group


@engine.action("group_count")
def _group_count(ctx: Context) -> None:
    """Count the paid member in (one conditional UPDATE); form the group when it is big enough."""
    session, txn = ctx.session, ctx.txn
    group = _group_of(ctx)
    row = session.execute(
        update(GroupBuy)
        .where(
            GroupBuy.id == group.id,
            GroupBuy.state.in_(("forming", "formed")),
            GroupBuy.deadline > ctx.now,
        )
        .values(members=GroupBuy.members + 1)
        .returning(GroupBuy.members, GroupBuy.state)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        raise Conflict(
            T("this group buy has closed; join again to open a new group"), detail={"group_id": group.id}
        )
    members, state = int(row[0]), str(row[1])
    session.expire(group)
    ctx.detail["members"] = members
    if state == "forming" and members >= group.min_size:
        formed = session.execute(
            update(GroupBuy)
            .where(GroupBuy.id == group.id, GroupBuy.state == "forming")
            .values(state="formed")
            .returning(GroupBuy.id)
            .execution_options(synchronize_session=False)
        ).first()
        if formed is not None:
            state = "formed"
            session.expire(group)
            _form_others(ctx, group)
    if state == "formed":
        payments.capture(session, txn=txn, actor=None)
        ctx.detail["charged_fen"] = txn.captured_fen
        ctx.arm(ctx.now, "form")
    else:
        ctx.arm(group.deadline, "fail")


def _form_others(ctx: Context, group: GroupBuy) -> None:
    """Move every other paid member of a group that just formed on to ``formed`` (charging them)."""
    others = ctx.session.scalars(
        select(Transaction.id)
        .where(Transaction.group_id == group.id, Transaction.state == "joined", Transaction.id != ctx.txn.id)
        .order_by(Transaction.id)
    ).all()
    for other in others:
        engine.fire(
            ctx.session, transaction_id=other, transition="form", actor=None, by="system", now=ctx.now
        )
    ctx.detail["formed_group"] = group.id
    members = [*others, ctx.txn.id]
    user_ids = ctx.session.scalars(
        select(Transaction.resident_user_id).where(Transaction.id.in_(members))
    ).all()
    notify_users(
        session=ctx.session,
        user_ids=user_ids,
        kind="services.group",
        message=T("Your group buy of {title} formed: you have been charged", title=ctx.listing.title_zh),
        link=f"/services/groups/{group.id}",
    )


@engine.action("group_charge")
def _group_charge(ctx: Context) -> None:
    """Charge a member of a formed group (once: a member charged on joining is not charged again)."""
    txn = ctx.txn
    group = _group_of(ctx)
    if group.state != "formed":
        raise Conflict(T("this group has not formed"), detail={"group_id": group.id})
    if txn.captured_fen < txn.price_fen:
        payments.capture(ctx.session, txn=txn, actor=None)
    ctx.detail["charged_fen"] = txn.captured_fen


@engine.action("group_fail")
def _group_fail(ctx: Context) -> None:
    """The deadline passed before the group formed: mark it failed and give this member's money back."""
    group = _group_of(ctx)
    ctx.session.execute(
        update(GroupBuy)
        .where(GroupBuy.id == group.id, GroupBuy.state == "forming", GroupBuy.deadline <= ctx.now)
        .values(state="failed")
        .execution_options(synchronize_session=False)
    )
    ctx.session.expire(group)
    if group.state != "failed":
        raise Conflict(
            T("the group has not failed: it is {state}", state=group.state), detail={"group_id": group.id}
        )
    released = payments.release(ctx.session, txn=ctx.txn, actor=None)
    ctx.detail["refunded_fen"] = sum(p.amount_fen for p in released)
    notify_users(
        session=ctx.session,
        user_ids=[ctx.txn.resident_user_id],
        kind="services.group",
        message=T(
            "The group buy of {title} did not reach {size} members in time: your money was returned in full",
            title=ctx.listing.title_zh,
            size=group.min_size,
        ),
        link=f"/services/groups/{group.id}",
    )


# --- the service -------------------------------------------------------------------------------------


def join(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    method: str,
    quantity: object = 1,
    voucher_id: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Transaction, dict[str, Any] | None]:
    """Join the open group buy of a listing and pay for the place: by wallet or voucher at once, or
    through the gateway (the pending checkout is returned; its confirmed callback counts the member
    in). Any price a client sends is ignored: the server prices the place."""
    authorize(actor, "services.book", what=f"listing {listing_id}")
    if method == "pay_at_service":
        raise Invalid(
            T("a group buy cannot be paid at the service: pay by wallet, voucher or online"),
            detail={"field": "method"},
        )
    if method not in JOIN_METHODS:
        raise Invalid(
            T("method must be one of {values}", values=", ".join(JOIN_METHODS)), detail={"field": "method"}
        )
    common.check_voucher_id(voucher_id)
    count = pricing.parse_quantity(quantity)
    listing = _listing_or_raise(session, listing_id)
    group_rules(listing.settings or {})
    params = {"quantity": count, "options": pricing.clean_options(options)}
    txn, checkout = common.start_and_pay(
        session, listing=listing, actor=actor, params=params, method=method, voucher_id=voucher_id
    )
    if checkout is None and txn.state == "joined" and txn.timer_transition == "form":
        engine.fire(session, transaction_id=txn.id, transition="form", actor=None, by="system")
    return txn, checkout


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group's progress as residents see it."""

    group: GroupBuy
    listing: Listing
    #: The viewer's own order in the group, if they joined.
    my_order: Transaction | None
    now: datetime

    @property
    def seconds_left(self) -> int:
        """Seconds until the deadline (0 once it has passed)."""
        return max(int((self.group.deadline - self.now).total_seconds()), 0)

    @property
    def open(self) -> bool:
        """Whether the group still takes members."""
        return self.group.state in ("forming", "formed") and self.seconds_left > 0

    def as_json(self) -> dict[str, Any]:
        """The view as JSON."""
        group = self.group
        return {
            "id": group.id,
            "listing_id": group.listing_id,
            "state": group.state,
            "members": group.members,
            "min_size": group.min_size,
            "missing": max(group.min_size - group.members, 0),
            "deadline": group.deadline.isoformat(),
            "seconds_left": self.seconds_left,
            "open": self.open,
            "created_at": group.created_at.isoformat(),
            "my_order_id": self.my_order.id if self.my_order else None,
            "my_order_state": self.my_order.state if self.my_order else None,
        }


def _view(session: Session, actor: Actor, group: GroupBuy, listing: Listing) -> GroupView:
    mine = None
    if actor.user_id is not None:
        mine = session.scalar(
            select(Transaction)
            .where(Transaction.group_id == group.id, Transaction.resident_user_id == actor.user_id)
            .order_by(Transaction.id.desc())
            .limit(1)
        )
    return GroupView(group=group, listing=listing, my_order=mine, now=clock.now())


def get_group(session: Session, *, actor: Actor, group_id: int) -> GroupView:
    """A group's progress (members, minimum, time left), and the viewer's own place in it."""
    authorize(actor, "services.browse", what=f"group {group_id}")
    group = session.get(GroupBuy, group_id)
    listing = session.get(Listing, group.listing_id) if group else None
    if group is None or listing is None or listing.status in {"draft", "withdrawn"}:
        raise NotFound(T("there is no group buy {id}", id=group_id), detail={"group_id": group_id})
    return _view(session, actor, group, listing)


def current_group(session: Session, *, actor: Actor, listing_id: int) -> GroupView | None:
    """The open group of a group-buy listing as the viewer sees it, or None if none is open."""
    authorize(actor, "services.browse", what=f"listing {listing_id}")
    listing = _listing_or_raise(session, listing_id)
    group = open_group_of(session, listing, clock.now())
    return _view(session, actor, group, listing) if group is not None else None


def sweep(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Fail the groups whose deadline passed before they formed: each paid member's ``fail`` fires
    (its money returned in full), one group per database transaction; groups nobody paid into are
    simply marked failed. Commits, so give it a session of its own."""
    moment = now or clock.now()
    groups = session.scalars(
        select(GroupBuy.id)
        .where(GroupBuy.state == "forming", GroupBuy.deadline <= moment)
        .order_by(GroupBuy.id)
    ).all()
    refunded = failed = 0
    for group_id in groups:
        members = session.scalars(
            select(Transaction.id)
            .where(Transaction.group_id == group_id, Transaction.state == "joined")
            .order_by(Transaction.id)
        ).all()
        try:
            for member in members:
                engine.fire(
                    session, transaction_id=member, transition="fail", actor=None, by="timer", now=moment
                )
            session.execute(
                update(GroupBuy)
                .where(GroupBuy.id == group_id, GroupBuy.state == "forming")
                .values(state="failed")
                .execution_options(synchronize_session=False)
            )
            session.commit()
        except (ZhisheError, SQLAlchemyError) as exc:
            session.rollback()
            log.warning("group buy %s could not be failed: %s", group_id, exc)
            continue
        refunded += len(members)
        failed += 1
    return {"groups_failed": failed, "members_refunded": refunded}
