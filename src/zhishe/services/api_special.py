"""JSON routes of group buys, membership boxes and neighbour rentals under /api/v1/services.

Bodies ignore fields they do not know, so a client's price, fee or commission is never read; the
options are cleaned again before the server prices anything. Money in and out is whole fen."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.services import boxes, groupbuy, rentals
from zhishe.services.api import dispute_json, order_json

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
_ID = Field(None, ge=1, le=2**62)


def _options(value: object) -> dict[str, Any] | None:
    """The listing options a client chose: a JSON object, or nothing."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(T("options must be a JSON object"), detail={"field": "options"})
    return value


class _Body(BaseModel):
    """Request bodies ignore fields they do not know (a client's price among them)."""

    model_config = ConfigDict(extra="ignore")


class JoinIn(_Body):
    """Joining a group buy: how many, how to pay, and the listing's options."""

    method: str = Field("wallet", max_length=32)
    quantity: Any = 1
    voucher_id: int | None = _ID
    options: Any = None


class SubscribeIn(_Body):
    """Subscribing to a box plan (month, half_year or year) and how to prepay it."""

    plan: str = Field(max_length=32)
    method: str = Field("wallet", max_length=32)
    quantity: Any = 1
    voucher_id: int | None = _ID
    options: Any = None


class RentIn(_Body):
    """Renting a neighbour's listing for ``quantity`` units (days) and how to pay the rent."""

    quantity: Any = 1
    method: str = Field("wallet", max_length=32)
    voucher_id: int | None = _ID
    options: Any = None


class DamageIn(_Body):
    """The owner's damage report: why, and how much of the deposit is claimed in fen."""

    reason: Any
    claim_fen: Any


class SettleIn(_Body):
    """The operator's decision: how much of the deposit the owner keeps, in fen."""

    keep_fen: Any
    resolution: str = Field("", max_length=2000)


# --- group buys ---------------------------------------------------------------------------------------


@router.post("/listings/{listing_id}/group/join", status_code=201)
def join_group(listing_id: IdPath, body: JoinIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Join the listing's open group buy and pay (``gateway`` answers a pending checkout)."""
    txn, checkout = groupbuy.join(
        session,
        actor=actor,
        listing_id=listing_id,
        method=body.method,
        quantity=body.quantity,
        voucher_id=body.voucher_id,
        options=_options(body.options),
    )
    view = groupbuy.get_group(session, actor=actor, group_id=txn.group_id or 0)
    data = {"order": order_json(session, txn, actor=actor), "group": view.as_json()}
    if checkout is not None:
        data["checkout"] = checkout
    return data


@router.get("/listings/{listing_id}/group")
def current_group(listing_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The listing's group now taking members (``group`` is null when none is open)."""
    view = groupbuy.current_group(session, actor=actor, listing_id=listing_id)
    return {"group": view.as_json() if view else None}


@router.get("/groups/{group_id}")
def get_group(group_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """A group's progress: members, minimum, deadline and time left, and my place in it."""
    return groupbuy.get_group(session, actor=actor, group_id=group_id).as_json()


# --- membership boxes -----------------------------------------------------------------------------------


@router.post("/listings/{listing_id}/box/subscribe", status_code=201)
def subscribe(
    listing_id: IdPath, body: SubscribeIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Subscribe to a box plan, prepaid into escrow (``gateway`` answers a pending checkout)."""
    txn, checkout = boxes.subscribe(
        session,
        actor=actor,
        listing_id=listing_id,
        plan=body.plan,
        method=body.method,
        quantity=body.quantity,
        voucher_id=body.voucher_id,
        options=_options(body.options),
    )
    data = _box(session, actor, txn.id)
    if checkout is not None:
        data["checkout"] = checkout
    return data


def _box(session: Any, actor: Any, transaction_id: int) -> dict[str, Any]:
    view = boxes.get_subscription(session, actor=actor, transaction_id=transaction_id)
    return {"order": order_json(session, view.txn, actor=actor), "box": view.as_json()}


@router.get("/orders/{transaction_id}/box")
def get_box(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """A box subscription: its plan, deliveries and what cancelling now would refund."""
    return _box(session, actor, transaction_id)


@router.post("/orders/{transaction_id}/box/pause")
def pause_box(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Pause deliveries (the end of the plan moves out by the periods skipped)."""
    boxes.pause(session, actor=actor, transaction_id=transaction_id)
    return _box(session, actor, transaction_id)


@router.post("/orders/{transaction_id}/box/resume")
def resume_box(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Resume deliveries."""
    boxes.resume(session, actor=actor, transaction_id=transaction_id)
    return _box(session, actor, transaction_id)


@router.post("/orders/{transaction_id}/box/cancel")
def cancel_box(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Cancel: the boxes not delivered are refunded pro rata (``refunded_fen`` says how much)."""
    preview = boxes.cancel_preview(session, actor=actor, transaction_id=transaction_id)
    boxes.cancel(session, actor=actor, transaction_id=transaction_id)
    data = _box(session, actor, transaction_id)
    data["refunded_fen"] = preview["refund_fen"]
    return data


@router.post("/deliveries/{delivery_id}/delivered")
def delivered(delivery_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The provider marks a box delivered and is paid that period's share."""
    delivery = boxes.mark_delivered(session, actor=actor, delivery_id=delivery_id)
    return _box(session, actor, delivery.transaction_id)


# --- neighbour rentals ------------------------------------------------------------------------------------


@router.post("/listings/{listing_id}/rent", status_code=201)
def rent(listing_id: IdPath, body: RentIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Rent a neighbour's listing: the rent is held in escrow and the deposit from the wallet."""
    txn = rentals.rent(
        session,
        actor=actor,
        listing_id=listing_id,
        quantity=body.quantity,
        method=body.method,
        voucher_id=body.voucher_id,
        options=_options(body.options),
    )
    return order_json(session, txn, actor=actor, full=True)


@router.post("/orders/{transaction_id}/rental/handover")
def handover(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The owner confirms the handover (and is paid the rent)."""
    txn = rentals.handover(session, actor=actor, transaction_id=transaction_id)
    return order_json(session, txn, actor=actor, full=True)


@router.post("/orders/{transaction_id}/rental/return")
def return_item(transaction_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The owner confirms a clean return: the deposit goes back in full."""
    txn = rentals.return_item(session, actor=actor, transaction_id=transaction_id)
    return order_json(session, txn, actor=actor, full=True)


@router.post("/orders/{transaction_id}/rental/dispute", status_code=201)
def dispute(
    transaction_id: IdPath, body: DamageIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """The owner reports damage and claims part of the deposit; the operator settles it."""
    found = rentals.dispute(
        session, actor=actor, transaction_id=transaction_id, reason=body.reason, claim_fen=body.claim_fen
    )
    return dispute_json(found)


@router.post("/orders/{transaction_id}/rental/settle")
def settle(
    transaction_id: IdPath, body: SettleIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """The operator settles a disputed deposit: ``keep_fen`` to the owner, the rest to the renter."""
    txn = rentals.settle(
        session,
        actor=actor,
        transaction_id=transaction_id,
        keep_fen=body.keep_fen,
        resolution=body.resolution,
    )
    return order_json(session, txn, actor=actor, full=True)
