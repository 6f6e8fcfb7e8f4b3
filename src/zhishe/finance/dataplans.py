"""Data-service subscriptions: enterprises (public developer organisations) pay a monthly fee for
a higher open-data API quota on the app tokens they choose.

- Subscribing checks, through open data's own functions, that every chosen app token is live and
  belongs to a user of the subscribing organisation. The first month is billed at once.
- A subscription runs month by month from ``starts_on``: ``bill`` posts each month as it begins
  (``months_paid`` counts them, so a second run posts nothing). ``Dr
  Assets:Receivable:Merchants:O<org>`` ``Cr Income:DataServices``.
- While it runs (``starts_on`` ≤ today < ``starts_on`` + ``months_paid`` months, not cancelled),
  its tokens get the plan's calls per minute and per day in the open-data API instead of the
  default token limit: open data asks ``token_quota`` (registered with
  ``opendata.apptokens.register_quota_finder``).
- Cancelling stops the quota at once; months already billed are not refunded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.finance.ads import receivable
from zhishe.finance.fields import check_code_and_name
from zhishe.finance.models import DataPlan, DataSubscription
from zhishe.finance.money import check_fen
from zhishe.finance.periods import local_day
from zhishe.opendata import apptokens

__all__ = [
    "bill",
    "cancel",
    "create_plan",
    "is_running",
    "list_plans",
    "list_subscriptions",
    "months_due",
    "subscribe",
    "sweep",
    "token_quota",
]

_MAX_TOKENS = 50


def _shift(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for last in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def months_due(subscription: DataSubscription, day: date) -> int:
    """How many months of ``subscription`` have begun by ``day``."""
    n = 0
    while _shift(subscription.starts_on, n) <= day and n < 1200:
        n += 1
    return n


def is_running(subscription: DataSubscription, day: date) -> bool:
    """Whether the subscription gives its quota on ``day``."""
    return subscription.state == "active" and subscription.starts_on <= day < _shift(
        subscription.starts_on, subscription.months_paid
    )


# --- plans -----------------------------------------------------------------------------------------


def create_plan(
    *,
    session: Session,
    actor: Actor,
    code: str,
    name_zh: str,
    name_en: str = "",
    monthly_fee_fen: int,
    per_minute: int,
    per_day: int,
) -> DataPlan:
    """Create a data plan: a monthly fee for ``per_minute`` and ``per_day`` API calls."""
    authorize(actor, "finance.manage", what="data plans")
    check_code_and_name(code, name_zh)
    check_fen(monthly_fee_fen, field="monthly_fee_fen")
    for field, value in (("per_minute", per_minute), ("per_day", per_day)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
            raise Invalid(
                T("{field} must be a whole number of calls from 1", field=field), detail={"field": field}
            )
    if per_day < per_minute:
        raise Invalid(T("per_day must be at least per_minute"), detail={"field": "per_day"})
    if session.scalar(select(DataPlan.id).where(DataPlan.code == code)) is not None:
        raise Conflict(T("a data plan with code {code} exists", code=code), detail={"field": "code"})
    plan = DataPlan(
        code=code,
        name_zh=name_zh.strip(),
        name_en=name_en.strip()[:200],
        monthly_fee_fen=monthly_fee_fen,
        per_minute=per_minute,
        per_day=per_day,
    )
    session.add(plan)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="finance.data_plan.create",
        object_type="data_plan",
        object_id=plan.id,
        detail={
            "code": code,
            "monthly_fee_fen": monthly_fee_fen,
            "per_minute": per_minute,
            "per_day": per_day,
        },
    )
    return plan


def list_plans(*, session: Session) -> list[DataPlan]:
    """The data plans (public prices), cheapest first."""
    return list(session.scalars(select(DataPlan).order_by(DataPlan.monthly_fee_fen, DataPlan.id)))


# --- subscriptions ---------------------------------------------------------------------------------


def _check_tokens(session: Session, org_id: int, token_ids: list[int]) -> list[int]:
    if not isinstance(token_ids, list) or not token_ids or len(token_ids) > _MAX_TOKENS:
        raise Invalid(
            T("app_token_ids must list 1 to {n} app tokens", n=_MAX_TOKENS), detail={"field": "app_token_ids"}
        )
    if any(isinstance(t, bool) or not isinstance(t, int) for t in token_ids):
        raise Invalid(T("app_token_ids must be token ids"), detail={"field": "app_token_ids"})
    wanted = sorted(set(token_ids))
    owners = apptokens.org_of_tokens(session=session, token_ids=wanted)
    foreign = [t for t in wanted if owners.get(t) != org_id]
    if foreign:
        raise Invalid(
            T("app tokens {ids} are not live tokens of this organisation", ids=", ".join(map(str, foreign))),
            detail={"field": "app_token_ids", "tokens": foreign},
        )
    return wanted


def _bill_one(
    session: Session, subscription: DataSubscription, plan: DataPlan, day: date, actor: Actor | None
) -> int:
    due = months_due(subscription, day)
    months = due - subscription.months_paid
    if subscription.state != "active" or months <= 0:
        return 0
    amount = months * plan.monthly_fee_fen
    ledger.post(
        session,
        kind="data_subscription",
        stream="data",
        lines=[(receivable(subscription.org_id), amount), ("Income:DataServices", -amount)],
        memo=f"data plan {plan.code}: months {subscription.months_paid + 1}-{due}",
        ref_type="data_subscription",
        ref_id=subscription.id,
        actor=actor,
    )
    subscription.months_paid = due
    return amount


def subscribe(
    *, session: Session, actor: Actor, org_id: int, plan_id: int, app_token_ids: list[int]
) -> DataSubscription:
    """Subscribe an enterprise to a plan for the given app tokens; the first month is billed now."""
    authorize(actor, "finance.buy", org_id=org_id, what="a data subscription")
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(T("there is no organisation {id}", id=org_id), detail={"field": "org_id"})
    if org.kind != OrgKind.PUBLIC_DEVELOPER:
        raise Invalid(
            T("only enterprises (public developer organisations) subscribe to data plans"),
            detail={"field": "org_id"},
        )
    plan = session.get(DataPlan, plan_id)
    if plan is None:
        raise NotFound(T("there is no data plan {id}", id=plan_id), detail={"field": "plan_id"})
    tokens = _check_tokens(session, org_id, app_token_ids)
    subscription = DataSubscription(
        plan_id=plan.id,
        org_id=org_id,
        starts_on=local_day(clock.now()),
        months_paid=0,
        state="active",
        app_token_ids=tokens,
        created_at=clock.now(),
    )
    session.add(subscription)
    session.flush()
    amount = _bill_one(session, subscription, plan, subscription.starts_on, actor)
    record(
        session=session,
        actor=actor,
        action="finance.data_subscription.create",
        object_type="data_subscription",
        object_id=subscription.id,
        object_org_id=org_id,
        detail={"plan": plan.code, "app_token_ids": tokens, "billed_fen": amount},
    )
    return subscription


def cancel(*, session: Session, actor: Actor, subscription_id: int) -> DataSubscription:
    """Cancel a subscription: its quota stops now; months billed are not refunded."""
    subscription = session.get(DataSubscription, subscription_id)
    if subscription is None:
        raise NotFound(T("there is no data subscription {id}", id=subscription_id))
    authorize(actor, "finance.buy", org_id=subscription.org_id, what="a data subscription")
    if subscription.state != "active":
        raise Conflict(T("this subscription is already cancelled"), detail={"state": subscription.state})
    subscription.state = "cancelled"
    record(
        session=session,
        actor=actor,
        action="finance.data_subscription.cancel",
        object_type="data_subscription",
        object_id=subscription.id,
        object_org_id=subscription.org_id,
    )
    return subscription


def list_subscriptions(
    *, session: Session, actor: Actor, org_id: int | None = None
) -> list[DataSubscription]:
    """Subscriptions, newest first: an enterprise's own, or all for the operator (audited)."""
    if org_id is None:
        authorize(actor, "finance.read", what="data subscriptions")
    else:
        authorize(actor, "finance.buy", org_id=org_id, what="data subscriptions")
    query = select(DataSubscription).order_by(DataSubscription.id.desc()).limit(1000)
    if org_id is not None:
        query = query.where(DataSubscription.org_id == org_id)
    rows = list(session.scalars(query))
    record(
        session=session,
        actor=actor,
        action="finance.data_subscription.read",
        object_type="data_subscription",
        object_id=org_id or "*",
        object_org_id=org_id,
        detail={"rows": len(rows)},
    )
    return rows


def bill(session: Session, now: datetime | None = None, *, actor: Actor | None = None) -> dict[str, Any]:
    """Post every month of every active subscription that has begun and is not billed yet."""
    if actor is not None:
        authorize(actor, "finance.manage", what="data billing")
    day = local_day(now or clock.now())
    subscriptions = session.scalars(
        select(DataSubscription)
        .where(DataSubscription.state == "active")
        .order_by(DataSubscription.id)
        .with_for_update()
    ).all()
    plans = {p.id: p for p in session.scalars(select(DataPlan))}
    billed, total = 0, 0
    for subscription in subscriptions:
        amount = _bill_one(session, subscription, plans[subscription.plan_id], day, actor)
        if amount:
            billed, total = billed + 1, total + amount
    if billed:
        record(
            session=session,
            actor=actor,
            action="finance.data.bill",
            object_type="data_subscription",
            object_id="*",
            detail={"subscriptions": billed, "total_fen": total},
        )
    return {"subscriptions": billed, "billed_fen": total}


def token_quota(session: Session, token_id: int) -> apptokens.Quota | None:
    """The quota a running subscription gives app token ``token_id`` (the best one), or None."""
    day = local_day(clock.now())
    best: apptokens.Quota | None = None
    rows = session.execute(
        select(DataSubscription, DataPlan)
        .join(DataPlan, DataPlan.id == DataSubscription.plan_id)
        .where(DataSubscription.state == "active")
    ).all()
    for subscription, plan in rows:
        if token_id in (subscription.app_token_ids or []) and is_running(subscription, day):
            quota = (plan.per_minute, plan.per_day)
            best = quota if best is None or quota > best else best
    return best


def sweep(session: Session, now: datetime) -> dict[str, Any]:
    """The periodic work: bill the data subscriptions' months as they begin."""
    return bill(session, now)
