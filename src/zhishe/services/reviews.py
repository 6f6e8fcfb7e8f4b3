"""Two-sided, blind reviews of delivered transactions.

After delivery the resident reviews the provider and the provider reviews the resident, once each
(a rating of 1–5 and up to 2,000 characters). A review stays hidden from the other side and from
the public until both sides have reviewed, or until the 7-day review window closes (the process's
``close_reviews`` timer); then both are published at once. Published resident reviews count in the
provider's rating.

A process opens reviews in every state that has a ``review_done`` transition (taken by the system
when the second review arrives).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, can
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org, notify_users
from zhishe.services import engine
from zhishe.services.engine import Context
from zhishe.services.models import Provider, Review, Transaction

__all__ = [
    "MAX_TEXT",
    "REVIEW_WINDOW",
    "list_reviews",
    "provider_reviews",
    "review_open",
    "side_of",
    "submit",
]

REVIEW_WINDOW = timedelta(days=7)
MAX_TEXT = 2000
_DONE = "review_done"


def review_open(txn: Transaction) -> bool:
    """Whether the transaction's state takes reviews."""
    process = engine.get_process(txn.process)
    return any(t.name == _DONE for t in process.outgoing(txn.state))


def side_of(session: Session, txn: Transaction, actor: Actor | None) -> str | None:
    """``resident`` or ``provider``: the side ``actor`` reviews from, if any."""
    if actor is None:
        return None
    if actor.user_id is not None and actor.user_id == txn.resident_user_id:
        return "resident"
    provider = session.get(Provider, txn.provider_id)
    if provider is not None and can(actor, "services.provide", org_id=provider.org_id):
        return "provider"
    return None


def _publish(session: Session, txn: Transaction, now: datetime) -> int:
    """Publish the transaction's hidden reviews; resident reviews count in the provider's rating."""
    hidden = list(
        session.scalars(select(Review).where(Review.transaction_id == txn.id, Review.published_at.is_(None)))
    )
    provider = session.get(Provider, txn.provider_id)
    for review in hidden:
        review.published_at = now
        if review.side == "resident" and provider is not None:
            provider.rating_sum += review.rating
            provider.rating_count += 1
    return len(hidden)


@engine.action("publish_reviews")
def _publish_reviews(ctx: Context) -> None:
    """Publish whatever reviews were written (the window has closed)."""
    ctx.detail["published_reviews"] = _publish(ctx.session, ctx.txn, ctx.now)


@engine.action("open_review_window")
def _open_review_window(ctx: Context) -> None:
    """Invite both sides to review within the window."""
    message = T("Order {id} is done: you have 7 days to review it", id=ctx.txn.id)
    link = f"/services/orders/{ctx.txn.id}"
    notify_users(
        session=ctx.session,
        user_ids=[ctx.txn.resident_user_id],
        kind="services.review",
        message=message,
        link=link,
    )
    notify_org(
        session=ctx.session,
        org_id=ctx.provider.org_id,
        kind="services.review",
        message=message,
        link=link,
        roles=("admin", "steward", "dispatcher", "provider_staff"),
    )


def _check(rating: object, text: object) -> tuple[int, str]:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise Invalid(T("rating must be a whole number from 1 to 5"), detail={"field": "rating"})
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise Invalid(T("the review text is at most {n} characters", n=MAX_TEXT), detail={"field": "text"})
    return rating, text.strip()


def submit(
    session: Session, *, actor: Actor, transaction_id: int, rating: object, text: object = ""
) -> Review:
    """Review a delivered order from the actor's side, once. When the other side has reviewed too,
    both reviews are published and the order's review step is done."""
    from zhishe.services import transactions

    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    side = side_of(session, txn, actor)
    if side is None:
        raise Forbidden(T("only the resident and the provider of this order may review it"))
    stars, body = _check(rating, text)
    if not review_open(txn):
        raise Conflict(
            T("order {id} takes no reviews now (it is {state})", id=txn.id, state=txn.state),
            detail={"state": txn.state},
        )
    if (
        session.scalar(select(Review.id).where(Review.transaction_id == txn.id, Review.side == side))
        is not None
    ):
        raise Conflict(T("you have already reviewed this order"), detail={"side": side})
    now = clock.now()
    review = Review(
        transaction_id=txn.id,
        side=side,
        author_user_id=actor.user_id,
        rating=stars,
        text=body,
        created_at=now,
    )
    session.add(review)
    session.flush()  # written first, so that of two reviews racing the second sees the first
    provider = session.get(Provider, txn.provider_id)
    record(
        session=session,
        actor=actor,
        action="services.review.submit",
        object_type="services_transaction",
        object_id=txn.id,
        object_org_id=provider.org_id if provider else None,
        detail={"side": side, "rating": stars},
    )
    other = "provider" if side == "resident" else "resident"
    if (
        session.scalar(select(Review.id).where(Review.transaction_id == txn.id, Review.side == other))
        is not None
    ):
        engine.fire(session, transaction_id=txn.id, transition=_DONE, actor=None, by="system", now=now)
        _publish(session, txn, now)
    return review


def list_reviews(session: Session, *, actor: Actor | None, transaction_id: int) -> list[Review]:
    """The reviews of an order that ``actor`` may see: published ones, and their own hidden one."""
    txn = session.get(Transaction, transaction_id)
    if txn is None:
        raise NotFound(T("there is no order {id}", id=transaction_id), detail={"transaction": transaction_id})
    side = side_of(session, txn, actor)
    rows = session.scalars(select(Review).where(Review.transaction_id == txn.id).order_by(Review.id))
    return [r for r in rows if r.published_at is not None or (side is not None and r.side == side)]


def provider_reviews(session: Session, *, provider_id: int, limit: int = 50) -> list[Review]:
    """The newest published reviews of a provider by its residents (public)."""
    return list(
        session.scalars(
            select(Review)
            .join(Transaction, Transaction.id == Review.transaction_id)
            .where(
                Transaction.provider_id == provider_id,
                Review.side == "resident",
                Review.published_at.is_not(None),
            )
            .order_by(Review.published_at.desc(), Review.id.desc())
            .limit(max(1, min(limit, 200)))
        )
    )
