"""Annual resident memberships: plans (a yearly fee, a discount on services, priority hours for
newly opened slots), buying one, cancelling it, and the plan a resident holds on a day.

Rules:

- A membership covers twelve months: from the local day it is bought (``starts_on``) to the day
  before the same date a year later (``ends_on``, inclusive). A resident holds at most one active
  membership at a time.
- It is paid from the resident's wallet (``Dr Liabilities:Wallets:U<user>``, never below empty),
  or recorded as paid at the desk by operator staff (``Dr Assets:Bank``); either way
  ``Cr Income:Membership``. Revenue is recognised at sale, in full.
- Cancelling refunds the whole months not yet started: the membership month in progress (months
  count from ``starts_on`` by monthly anniversaries) is kept. Refund = fee x unused months / 12,
  rounded half to even, back to where the fee came from (the wallet, or the bank for a desk
  payment): ``Dr Income:Refunds:Membership`` ``Cr`` the source.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.fields import check_code_and_name
from zhishe.finance.models import Account, Membership, MembershipPlan, Posting
from zhishe.finance.money import check_fen, half_even
from zhishe.finance.periods import local_day

__all__ = [
    "METHODS",
    "active_membership",
    "active_plan",
    "buy",
    "cancel",
    "create_plan",
    "get_plan_or_raise",
    "list_memberships",
    "list_plans",
    "refund_for",
    "update_plan",
]

#: How a membership is paid: from the wallet, or at the operator's desk (cash, card, transfer).
METHODS = ("wallet", "desk")
_MAX_BPS = 10_000


def _shift(day: date, months: int) -> date:
    """``day`` moved by ``months`` months, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def active_membership(session: Session, user_id: int, at: datetime | None = None) -> Membership | None:
    """The resident's active membership on the local day of ``at`` (default now), if any."""
    day = local_day(at or clock.now())
    return session.scalar(
        select(Membership)
        .where(
            Membership.user_id == user_id,
            Membership.state == "active",
            Membership.starts_on <= day,
            Membership.ends_on >= day,
        )
        .order_by(Membership.id.desc())
        .limit(1)
    )


def active_plan(session: Session, user_id: int, at: datetime | None = None) -> MembershipPlan | None:
    """The plan of the resident's active membership on the local day of ``at``, if any: what
    pricing reads for its discount and the waitlist for priority."""
    membership = active_membership(session, user_id, at)
    return session.get(MembershipPlan, membership.plan_id) if membership is not None else None


# --- plans -----------------------------------------------------------------------------------------


def list_plans(*, session: Session, active_only: bool = True) -> list[MembershipPlan]:
    """The membership plans (public prices), cheapest first."""
    query = select(MembershipPlan).order_by(MembershipPlan.annual_fee_fen, MembershipPlan.id)
    if active_only:
        query = query.where(MembershipPlan.active.is_(True))
    return list(session.scalars(query))


def get_plan_or_raise(*, session: Session, plan_id: int) -> MembershipPlan:
    """A plan by id, or NotFound."""
    plan = session.get(MembershipPlan, plan_id)
    if plan is None:
        raise NotFound(T("there is no membership plan {id}", id=plan_id), detail={"plan_id": plan_id})
    return plan


def _check_plan(code: str, name_zh: str, discount_bps: int, priority_hours: int) -> None:
    check_code_and_name(code, name_zh)
    if (
        isinstance(discount_bps, bool)
        or not isinstance(discount_bps, int)
        or not 0 <= discount_bps <= _MAX_BPS
    ):
        raise Invalid(
            T("discount_bps must be a whole number from 0 to 10000"), detail={"field": "discount_bps"}
        )
    if (
        isinstance(priority_hours, bool)
        or not isinstance(priority_hours, int)
        or not 0 <= priority_hours <= 720
    ):
        raise Invalid(T("priority_hours must be from 0 to 720"), detail={"field": "priority_hours"})


def create_plan(
    *,
    session: Session,
    actor: Actor,
    code: str,
    name_zh: str,
    name_en: str = "",
    annual_fee_fen: int,
    discount_bps: int = 0,
    priority_hours: int = 0,
) -> MembershipPlan:
    """Create a membership plan."""
    authorize(actor, "finance.manage", what="membership plans")
    _check_plan(code, name_zh, discount_bps, priority_hours)
    check_fen(annual_fee_fen, field="annual_fee_fen")
    if session.scalar(select(MembershipPlan.id).where(MembershipPlan.code == code)) is not None:
        raise Conflict(T("a membership plan with code {code} exists", code=code), detail={"field": "code"})
    plan = MembershipPlan(
        code=code,
        name_zh=name_zh.strip(),
        name_en=name_en.strip()[:200],
        annual_fee_fen=annual_fee_fen,
        discount_bps=discount_bps,
        priority_hours=priority_hours,
        active=True,
    )
    session.add(plan)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="finance.membership_plan.create",
        object_type="membership_plan",
        object_id=plan.id,
        detail={"code": code, "annual_fee_fen": annual_fee_fen, "discount_bps": discount_bps},
    )
    return plan


def update_plan(
    *,
    session: Session,
    actor: Actor,
    plan_id: int,
    annual_fee_fen: int | None = None,
    discount_bps: int | None = None,
    priority_hours: int | None = None,
    active: bool | None = None,
) -> MembershipPlan:
    """Change a plan's price, discount, priority or availability (memberships sold keep their fee)."""
    authorize(actor, "finance.manage", what="membership plans")
    plan = get_plan_or_raise(session=session, plan_id=plan_id)
    _check_plan(
        plan.code,
        plan.name_zh,
        plan.discount_bps if discount_bps is None else discount_bps,
        plan.priority_hours if priority_hours is None else priority_hours,
    )
    if annual_fee_fen is not None:
        plan.annual_fee_fen = check_fen(annual_fee_fen, field="annual_fee_fen")
    if discount_bps is not None:
        plan.discount_bps = discount_bps
    if priority_hours is not None:
        plan.priority_hours = priority_hours
    if active is not None:
        plan.active = bool(active)
    record(
        session=session,
        actor=actor,
        action="finance.membership_plan.update",
        object_type="membership_plan",
        object_id=plan.id,
        detail={
            "annual_fee_fen": plan.annual_fee_fen,
            "discount_bps": plan.discount_bps,
            "active": plan.active,
        },
    )
    return plan


# --- memberships -----------------------------------------------------------------------------------


def buy(
    *, session: Session, actor: Actor, plan_id: int, user_id: int | None = None, method: str = "wallet"
) -> Membership:
    """Buy a year of ``plan``: a resident for themselves from their wallet, or operator staff for a
    resident (``user_id``) paid at the desk or from the resident's wallet."""
    if method not in METHODS:
        raise Invalid(
            T("method must be one of {values}", values=", ".join(METHODS)), detail={"field": "method"}
        )
    if user_id is None or user_id == actor.user_id:
        authorize(actor, "services.book", what="a membership")
        if actor.user_id is None:
            raise Invalid(T("user_id is needed"), detail={"field": "user_id"})
        user_id = actor.user_id
        if method == "desk":
            raise Forbidden(
                T("only the operator's staff may record a payment at the desk"), detail={"field": "method"}
            )
    else:
        authorize(actor, "finance.manage", what="a resident's membership")
        if session.get(User, user_id) is None:
            raise NotFound(T("there is no user {id}", id=user_id), detail={"field": "user_id"})
    plan = get_plan_or_raise(session=session, plan_id=plan_id)
    if not plan.active:
        raise Conflict(T("this membership plan is no longer sold"), detail={"plan_id": plan_id})
    session.scalar(select(User.id).where(User.id == user_id).with_for_update())  # one purchase at a time
    now = clock.now()
    if active_membership(session, user_id, now) is not None:
        raise Conflict(T("this resident already has an active membership"), detail={"user_id": user_id})
    source = ledger.wallet(user_id) if method == "wallet" else "Assets:Bank"
    starts = local_day(now)
    membership = Membership(
        plan_id=plan.id,
        user_id=user_id,
        starts_on=starts,
        ends_on=date.fromordinal(_shift(starts, 12).toordinal() - 1),
        fee_fen=plan.annual_fee_fen,
        state="active",
        created_at=now,
    )
    session.add(membership)
    session.flush()  # the membership's id goes on the entry: entries are never changed once posted
    entry = ledger.post(
        session,
        kind="membership_fee",
        stream="membership",
        lines=[(source, plan.annual_fee_fen), ("Income:Membership", -plan.annual_fee_fen)],
        memo=f"membership {plan.code}",
        ref_type="membership",
        ref_id=membership.id,
        actor=actor,
        no_overdraft=[source] if method == "wallet" else [],
    )
    membership.entry_id = entry.id
    record(
        session=session,
        actor=actor,
        action="finance.membership.buy",
        object_type="membership",
        object_id=membership.id,
        detail={"plan": plan.code, "user_id": user_id, "method": method, "fee_fen": plan.annual_fee_fen},
    )
    return membership


def refund_for(membership: Membership, day: date) -> tuple[int, int]:
    """``(unused whole months, refund in fen)`` if ``membership`` is cancelled on ``day``."""
    started = 0
    while started < 12 and _shift(membership.starts_on, started) <= day:
        started += 1
    unused = 12 - max(started, 1)
    return unused, half_even(membership.fee_fen * unused, 12)


def _source_of(session: Session, membership: Membership) -> str:
    """The account the fee came from: the wallet, or the bank for a desk payment."""
    names = session.scalars(
        select(Account.name)
        .join(Posting, Posting.account_id == Account.id)
        .where(Posting.entry_id == membership.entry_id, Posting.amount_fen > 0)
    ).all()
    wallet = ledger.wallet(membership.user_id)
    return wallet if wallet in names else "Assets:Bank"


def cancel(*, session: Session, actor: Actor, membership_id: int) -> Membership:
    """Cancel a membership and refund its whole unused months (see the module's rules)."""
    membership = session.get(Membership, membership_id)
    if membership is None or (membership.user_id != actor.user_id and not _may_manage(actor)):
        raise NotFound(
            T("there is no membership {id}", id=membership_id), detail={"membership_id": membership_id}
        )
    if membership.user_id == actor.user_id:
        authorize(actor, "services.book", what="a membership")
    if membership.state != "active":
        raise Conflict(T("this membership is already cancelled"), detail={"state": membership.state})
    day = local_day(clock.now())
    if day > membership.ends_on:
        raise Conflict(
            T("this membership has already ended"), detail={"ends_on": membership.ends_on.isoformat()}
        )
    unused, refund = refund_for(membership, day)
    if refund:
        source = _source_of(session, membership)
        ledger.post(
            session,
            kind="membership_refund",
            stream="membership",
            lines=[("Income:Refunds:Membership", refund), (source, -refund)],
            memo=f"membership {membership.id}: {unused} unused months",
            ref_type="membership",
            ref_id=membership.id,
            actor=actor,
        )
    membership.state = "cancelled"
    membership.ends_on = day
    record(
        session=session,
        actor=actor,
        action="finance.membership.cancel",
        object_type="membership",
        object_id=membership.id,
        detail={"unused_months": unused, "refund_fen": refund},
    )
    return membership


def _may_manage(actor: Actor) -> bool:
    return can(actor, "finance.manage")


def list_memberships(
    *, session: Session, actor: Actor, user_id: int | None = None, limit: int = 200
) -> list[Membership]:
    """Memberships, newest first: one's own, or anyone's for the operator (audited)."""
    if user_id is None or user_id != actor.user_id:
        authorize(actor, "finance.read", what="memberships")
        record(
            session=session,
            actor=actor,
            action="finance.membership.read",
            object_type="membership",
            object_id=user_id or "*",
        )
    query = select(Membership).order_by(Membership.id.desc()).limit(min(max(limit, 1), 1000))
    if user_id is not None:
        query = query.where(Membership.user_id == user_id)
    return list(session.scalars(query))
