"""JSON routes of marketplace transactions under /api/v1/services: booking, the process actions, waitlists, reviews and disputes.

Prices and fees are never read from a request: bodies ignore unknown fields, and the options of a
booking are cleaned of any price, fee or commission before pricing runs on the server."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from zhishe.core.auth import Actor
from zhishe.core.deps import CurrentActor, IdPath, OptionalActor, SessionDep
from zhishe.core.pagination import Page
from zhishe.services import disputes, engine, fhir, reviews, transactions
from zhishe.services.models import Dispute, Review, Slot, Transaction, TransactionEvent, WaitlistEntry

__all__ = ["dispute_json", "order_json", "review_json", "router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
_ID = Field(None, ge=1, le=2**62)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _labels(process: engine.Process, state: str) -> dict[str, str]:
    return {"zh": process.state_label(state, "zh-CN"), "en": process.state_label(state, "en")}


def order_json(
    session: Session, txn: Transaction, *, actor: Actor | None = None, full: bool = False
) -> dict[str, Any]:
    """An order as JSON; ``full`` adds its events, the transitions ``actor`` may take and the fee of
    cancelling now."""
    process = engine.get_process(txn.process)
    slot = session.get(Slot, txn.slot_id) if txn.slot_id else None
    data: dict[str, Any] = {
        "id": txn.id,
        "process": txn.process,
        "state": txn.state,
        "state_label": _labels(process, txn.state),
        "fhir_status": process.fhir_status(txn.state),
        "final": txn.state in process.finals,
        "listing_id": txn.listing_id,
        "provider_id": txn.provider_id,
        "resident_user_id": txn.resident_user_id,
        "slot": {"id": slot.id, "starts_at": _iso(slot.starts_at), "ends_at": _iso(slot.ends_at)}
        if slot
        else None,
        "batch_id": txn.batch_id,
        "group_id": txn.group_id,
        "quantity": txn.quantity,
        "options": txn.options,
        "quote": txn.quote,
        "currency": txn.currency,
        "price_fen": txn.price_fen,
        "commission_fen": txn.commission_fen,
        "subsidy_fen": txn.subsidy_fen,
        "deposit_fen": txn.deposit_fen,
        "captured_fen": txn.captured_fen,
        "refunded_fen": txn.refunded_fen,
        "payment_method": txn.payment_method or None,
        "voucher_id": txn.voucher_id,
        "distance_m": txn.distance_m,
        "note": txn.note,
        "timer_at": _iso(txn.timer_at),
        "timer_transition": txn.timer_transition or None,
        "created_at": _iso(txn.created_at),
        "updated_at": _iso(txn.updated_at),
    }
    if full:
        options = engine.available(txn, actor, session=session)
        data["events"] = [_event_json(e) for e in transactions.events_of(session, txn)]
        data["available"] = [
            {
                "transition": o.transition.name,
                "as": o.by,
                "label": {"zh": o.transition.label("zh-CN"), "en": o.transition.label("en")},
            }
            for o in options
        ]
        if any(o.transition.name == "cancel" for o in options):
            data["cancellation_fee_fen"] = transactions.cancellation_fee(session, txn)
    return data


def _event_json(event: TransactionEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "transition": event.transition,
        "from": event.from_state or None,
        "to": event.to_state,
        "by": event.actor_kind,
        "detail": event.detail,
    }


def review_json(review: Review) -> dict[str, Any]:
    """A review as JSON."""
    return {
        "id": review.id,
        "transaction_id": review.transaction_id,
        "side": review.side,
        "rating": review.rating,
        "text": review.text,
        "created_at": _iso(review.created_at),
        "published": review.published_at is not None,
        "published_at": _iso(review.published_at),
    }


def dispute_json(dispute: Dispute) -> dict[str, Any]:
    """A dispute as JSON."""
    return {
        "id": dispute.id,
        "transaction_id": dispute.transaction_id,
        "opened_by_user_id": dispute.opened_by_user_id,
        "reason": dispute.reason,
        "claim_fen": dispute.claim_fen,
        "state": dispute.state,
        "due_at": _iso(dispute.due_at),
        "request_id": dispute.request_id,
        "resolution": dispute.resolution or None,
        "awarded_fen": dispute.awarded_fen,
        "created_at": _iso(dispute.created_at),
        "resolved_at": _iso(dispute.resolved_at),
    }


def _page(response: Response, page: Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    if page.next:
        response.headers["Link"] = f'<?after={page.next}>; rel="next"'
    return {"items": items, "next": page.next}


class _Body(BaseModel):
    """Request bodies ignore fields they do not know (a client's price among them)."""

    model_config = ConfigDict(extra="ignore")


class BookIn(_Body):
    """What a resident chooses: the slot or batch, how many, and the listing's options."""

    slot_id: int | None = _ID
    batch_id: int | None = _ID
    quantity: Any = 1
    options: Any = None
    note: str = Field("", max_length=2000)


class PayIn(_Body):
    """How the resident pays."""

    method: str = Field(max_length=32)
    voucher_id: int | None = _ID


class ReviewIn(_Body):
    """A review: 1–5 stars and up to 2,000 characters."""

    rating: Any
    text: Any = ""


class DisputeIn(_Body):
    """A dispute: why, and how much is claimed in fen."""

    reason: Any
    claim_fen: Any = 0


class ResolveIn(_Body):
    """The operator's resolution and award in fen."""

    award_fen: Any = 0
    resolution: Any


class WaitlistIn(_Body):
    """Joining a full slot's waitlist."""

    quantity: Any = 1
    options: Any = None


@router.post("/listings/{listing_id}/book", status_code=201)
def book(listing_id: IdPath, body: BookIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Book a listing (priced on the server); a full slot answers 409 with its waitlist."""
    txn = transactions.book(
        session,
        actor=actor,
        listing_id=listing_id,
        slot_id=body.slot_id,
        batch_id=body.batch_id,
        quantity=body.quantity,
        options=body.options,
        note=body.note,
    )
    return order_json(session, txn, actor=actor, full=True)


@router.get("/orders")
def list_orders(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    as_: Literal["resident", "provider"] = Query("resident", alias="as"),
    state: str | None = Query(None, max_length=32),
    after: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    """My orders, newest first; ``?as=provider`` for my provider organisation's orders."""
    page = transactions.list_orders(
        session, actor=actor, as_provider=as_ == "provider", state=state, after=after, limit=limit
    )
    return _page(response, page, [order_json(session, t) for t in page.items])


@router.get("/orders/{transaction_id}")
def get_order(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One order with its events, the transitions I may take and its FHIR status."""
    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    return order_json(session, txn, actor=actor, full=True)


@router.post("/orders/{transaction_id}/pay")
def pay(transaction_id: IdPath, body: PayIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Pay by wallet, voucher or at the service; ``gateway`` returns a pending checkout instead."""
    result = transactions.pay(
        session, actor=actor, transaction_id=transaction_id, method=body.method, voucher_id=body.voucher_id
    )
    if isinstance(result, dict):
        return {"checkout": result}
    return order_json(session, result, actor=actor, full=True)


@router.post("/orders/{transaction_id}/actions/{transition}")
def act(
    transaction_id: IdPath,
    transition: str,
    session: SessionDep,
    actor: CurrentActor,
    params: dict[str, Any] | None = Body(None),
) -> dict[str, Any]:
    """Take a transition (accept, decline, quote with ``lines``, deliver, cancel, no_show...)."""
    txn = transactions.act(
        session, actor=actor, transaction_id=transaction_id, transition=transition[:32], params=params or {}
    )
    return order_json(session, txn, actor=actor, full=True)


@router.post("/orders/{transaction_id}/reviews", status_code=201)
def review(
    transaction_id: IdPath, body: ReviewIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Review a delivered order (blind until both sides have reviewed or the window closes)."""
    found = reviews.submit(
        session, actor=actor, transaction_id=transaction_id, rating=body.rating, text=body.text
    )
    return review_json(found)


@router.get("/orders/{transaction_id}/reviews")
def list_reviews(transaction_id: IdPath, session: SessionDep, actor: OptionalActor) -> list[dict[str, Any]]:
    """The published reviews of an order, and my own hidden one."""
    return [review_json(r) for r in reviews.list_reviews(session, actor=actor, transaction_id=transaction_id)]


@router.post("/orders/{transaction_id}/disputes", status_code=201)
def open_dispute(
    transaction_id: IdPath, body: DisputeIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Open a dispute on an order (a work order when the participation capability takes it)."""
    dispute = disputes.open_dispute(
        session, actor=actor, transaction_id=transaction_id, reason=body.reason, claim_fen=body.claim_fen
    )
    return dispute_json(dispute)


@router.get("/disputes")
def list_disputes(
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    state: Literal["open", "resolved"] | None = Query("open"),
    after: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    """The operator's dispute queue."""
    page = disputes.list_disputes(session, actor=actor, state=state, after=after, limit=limit)
    return _page(response, page, [dispute_json(d) for d in page.items])


@router.post("/disputes/{dispute_id}/resolve")
def resolve_dispute(
    dispute_id: IdPath, body: ResolveIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Resolve a dispute with an award refunded from what was captured."""
    dispute = disputes.resolve(
        session, actor=actor, dispute_id=dispute_id, award_fen=body.award_fen, resolution=body.resolution
    )
    return dispute_json(dispute)


@router.post("/slots/{slot_id}/waitlist", status_code=201)
def join_waitlist(
    slot_id: IdPath, body: WaitlistIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Wait for a place in a full slot; the first waiting resident (members first) is booked when one frees."""
    entry: WaitlistEntry = transactions.join_waitlist(
        session, actor=actor, slot_id=slot_id, quantity=body.quantity, options=body.options
    )
    return {
        "id": entry.id,
        "slot_id": entry.slot_id,
        "state": entry.state,
        "created_at": _iso(entry.created_at),
    }


@router.get("/orders/{transaction_id}/fhir")
def order_fhir(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> Response:
    """The order as a FHIR R4 Appointment."""
    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    return Response(
        json.dumps(fhir.appointment(txn, session=session), ensure_ascii=False),
        media_type="application/fhir+json",
    )
