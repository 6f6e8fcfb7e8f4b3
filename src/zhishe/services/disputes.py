"""Complaints and disputes about marketplace transactions.

A dispute is always kept here, beside its transaction, so that the claim, the award and the refund
it leads to stay together. Where it is worked depends on what is installed:

- when the participation capability is installed and has an active complaint category (code
  ``services_complaint``, ``consumer_complaint`` or ``complaint``, or ``投诉``/``complaint`` among its
  keywords, with no required questions), the dispute also opens a work order there, filed by the
  complainant, so that the call centre's routing, SLA and escalation apply; its id is kept in
  ``request_id``;
- otherwise it waits in the operator's dispute queue here, due in 3 working days (the exchange's
  working-day calendar).

Either way the operator resolves it here with an award, refunded through ``payments.refund``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org, notify_users
from zhishe.core.pagination import Page, keyset_page
from zhishe.finance.money import yuan_label
from zhishe.services.models import Dispute, Listing, Provider, Transaction

__all__ = [
    "COMPLAINT_CODES",
    "complaint_category",
    "get_or_raise",
    "list_disputes",
    "open_dispute",
    "resolve",
]

log = logging.getLogger(__name__)

COMPLAINT_CODES = ("services_complaint", "consumer_complaint", "complaint")
#: Working days the operator has to answer a dispute kept in its own queue.
DUE_WORKING_DAYS = 3
MAX_REASON = 2000


def complaint_category(session: Session) -> str | None:
    """The participation category complaints are filed under, or None (not installed, none fits)."""
    try:
        from zhishe.participation import service as participation
    except ImportError:
        return None
    fitting = []
    for category in participation.list_categories(session=session):
        keywords = {k.strip().lower() for k in (category.keywords or "").split(",")}
        if category.code in COMPLAINT_CODES or keywords & {"complaint", "投诉"}:
            required = [
                a for a in participation.attributes_of(session=session, category_id=category.id) if a.required
            ]
            if not required:
                fitting.append(category.code)
    for code in COMPLAINT_CODES:
        if code in fitting:
            return code
    return fitting[0] if fitting else None


def _work_order(
    session: Session, actor: Actor, txn: Transaction, listing: Listing | None, reason: str, claim_fen: int
) -> int | None:
    """Open a participation work order for the dispute, or None when that is not possible."""
    code = complaint_category(session)
    if code is None:
        return None
    from zhishe.participation import service as participation
    from zhishe.services import discovery

    where = discovery.resident_location(session, txn.resident_user_id)
    title = listing.title_zh if listing else ""
    description = f"[订单 {txn.id} · {title}] {reason}"
    if claim_fen:
        description += f"（索赔 {yuan_label(claim_fen)}）"
    try:
        with session.begin_nested():
            request = participation.submit(
                session=session,
                actor=actor,
                category_code=code,
                description=description[:4000],
                lat=where[0] if where else None,
                lon=where[1] if where else None,
                address="" if where else f"services order {txn.id}",
            )
    except ZhisheError as exc:
        log.info("dispute on order %s stays in the operator's queue: %s", txn.id, exc)
        return None
    return request.id


def _operator_orgs(session: Session) -> list[int]:
    return list(session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.OPERATOR)))


def open_dispute(
    session: Session, *, actor: Actor, transaction_id: int, reason: object, claim_fen: object = 0
) -> Dispute:
    """The resident or the provider of an order opens a dispute with a reason and a claim in fen."""
    from zhishe.services import reviews, transactions

    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    side = reviews.side_of(session, txn, actor)
    if side is None:
        raise Forbidden(T("only the resident and the provider of this order may dispute it"))
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise Invalid(T("give a reason of 1 to {n} characters", n=MAX_REASON), detail={"field": "reason"})
    most = max(txn.price_fen, txn.captured_fen) + txn.deposit_fen
    if isinstance(claim_fen, bool) or not isinstance(claim_fen, int) or not 0 <= claim_fen <= most:
        raise Invalid(
            T("claim_fen must be a whole number of fen from 0 to {most}", most=most),
            detail={"field": "claim_fen"},
        )
    if (
        session.scalar(select(Dispute.id).where(Dispute.transaction_id == txn.id, Dispute.state == "open"))
        is not None
    ):
        raise Conflict(T("order {id} already has an open dispute", id=txn.id), detail={"transaction": txn.id})
    from zhishe.exchange import workdays

    now = clock.now()
    listing = session.get(Listing, txn.listing_id)
    dispute = Dispute(
        transaction_id=txn.id,
        opened_by_user_id=actor.user_id,
        reason=reason.strip(),
        claim_fen=claim_fen,
        state="open",
        due_at=workdays.reply_deadline(session, now, DUE_WORKING_DAYS),
        created_at=now,
    )
    session.add(dispute)
    session.flush()
    dispute.request_id = _work_order(session, actor, txn, listing, dispute.reason, claim_fen)
    provider = session.get(Provider, txn.provider_id)
    record(
        session=session,
        actor=actor,
        action="services.dispute.open",
        object_type="services_dispute",
        object_id=dispute.id,
        object_org_id=provider.org_id if provider else None,
        detail={
            "transaction": txn.id,
            "side": side,
            "claim_fen": claim_fen,
            "request_id": dispute.request_id,
        },
    )
    message = T("A dispute was opened on order {id}", id=txn.id)
    for org_id in _operator_orgs(session):
        notify_org(
            session=session,
            org_id=org_id,
            kind="services.dispute",
            message=message,
            link="/operator/disputes",
        )
    if side == "resident" and provider is not None:
        notify_org(
            session=session,
            org_id=provider.org_id,
            kind="services.dispute",
            message=message,
            link="/provider/orders",
            roles=("admin", "steward", "dispatcher", "provider_staff"),
        )
    else:
        notify_users(
            session=session,
            user_ids=[txn.resident_user_id],
            kind="services.dispute",
            message=message,
            link=f"/services/orders/{txn.id}",
        )
    return dispute


def get_or_raise(session: Session, dispute_id: int) -> Dispute:
    """The dispute ``dispute_id``."""
    dispute = session.get(Dispute, dispute_id)
    if dispute is None:
        raise NotFound(T("there is no dispute {id}", id=dispute_id), detail={"dispute": dispute_id})
    return dispute


def list_disputes(
    session: Session, *, actor: Actor, state: str | None = "open", after: str | None = None, limit: int = 50
) -> Page[Dispute]:
    """The operator's dispute queue (audited read)."""
    authorize(actor, "services.operate", what="disputes")
    query = select(Dispute)
    if state:
        if state not in ("open", "resolved"):
            raise Invalid(T("state must be open or resolved"), detail={"parameter": "state"})
        query = query.where(Dispute.state == state)
    record(
        session=session,
        actor=actor,
        action="services.dispute.list",
        object_type="services_dispute",
        object_id="*",
    )
    return keyset_page(session, query, Dispute.id, after=after, limit=max(1, min(limit, 200)))


def resolve(
    session: Session, *, actor: Actor, dispute_id: int, award_fen: object, resolution: object
) -> Dispute:
    """The operator closes a dispute with a resolution and an award, refunded to the resident from
    what was captured (never more than was captured and not yet refunded)."""
    authorize(actor, "services.operate", what=f"dispute {dispute_id}")
    dispute = get_or_raise(session, dispute_id)
    if dispute.state != "open":
        raise Conflict(T("dispute {id} is already resolved", id=dispute.id), detail={"dispute": dispute.id})
    if not isinstance(resolution, str) or not resolution.strip() or len(resolution) > MAX_REASON:
        raise Invalid(
            T("give a resolution of 1 to {n} characters", n=MAX_REASON), detail={"field": "resolution"}
        )
    txn = session.get(Transaction, dispute.transaction_id)
    assert txn is not None
    refundable = txn.captured_fen - txn.refunded_fen
    if isinstance(award_fen, bool) or not isinstance(award_fen, int) or award_fen < 0:
        raise Invalid(T("award_fen must be a whole number of fen, 0 or more"), detail={"field": "award_fen"})
    if award_fen > refundable:
        raise Invalid(
            T(
                "award_fen {award} is more than the {most} fen captured and not yet refunded",
                award=award_fen,
                most=refundable,
            ),
            detail={"field": "award_fen", "most": refundable},
        )
    if award_fen:
        from zhishe.services import payments

        payments.refund(session, txn=txn, actor=actor, amount_fen=award_fen, reason=f"dispute {dispute.id}")
    now = clock.now()
    dispute.state = "resolved"
    dispute.awarded_fen = award_fen
    dispute.resolution = resolution.strip()
    dispute.resolved_at = now
    provider = session.get(Provider, txn.provider_id)
    record(
        session=session,
        actor=actor,
        action="services.dispute.resolve",
        object_type="services_dispute",
        object_id=dispute.id,
        object_org_id=provider.org_id if provider else None,
        detail={"transaction": txn.id, "award_fen": award_fen},
    )
    notify_users(
        session=session,
        user_ids=[txn.resident_user_id],
        kind="services.dispute",
        message=T("The dispute on order {id} was resolved", id=txn.id),
        link=f"/services/orders/{txn.id}",
    )
    return dispute
