"""What the group buy, the membership box and the neighbour rental share: finding a listing or an
order of their own process, and starting an order paid at once or through the gateway."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zhishe.core.auth import Actor
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.services import engine, payments, transactions
from zhishe.services.models import Listing, Transaction

__all__ = ["check_voucher_id", "listing_of", "order_of", "start_and_pay"]


def listing_of(session: Session, listing_id: int, *, process: str, refusal: str) -> Listing:
    """The live listing ``listing_id`` run by ``process``: NotFound for a missing, draft or withdrawn
    one, Conflict with the message ``refusal`` for a listing of another process."""
    listing = session.get(Listing, listing_id)
    if listing is None or listing.status in {"draft", "withdrawn"}:
        raise NotFound(T("there is no listing {id}", id=listing_id), detail={"listing_id": listing_id})
    if listing.process != process:
        raise Conflict(refusal, detail={"listing_id": listing_id, "process": listing.process})
    return listing


def order_of(
    session: Session, actor: Actor, transaction_id: int, *, process: str, refusal: str
) -> Transaction:
    """The order ``transaction_id`` as ``actor`` may see it, refused with ``refusal`` (Conflict) when
    it runs another process than ``process``."""
    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    if txn.process != process:
        raise Conflict(refusal, detail={"transaction": transaction_id})
    return txn


def check_voucher_id(voucher_id: object) -> None:
    """Refuse a voucher id that is given but is not a whole number."""
    if voucher_id is not None and (isinstance(voucher_id, bool) or not isinstance(voucher_id, int)):
        raise Invalid(T("voucher_id must be an id"), detail={"field": "voucher_id"})


def start_and_pay(
    session: Session,
    *,
    listing: Listing,
    actor: Actor,
    params: dict[str, Any],
    method: str,
    voucher_id: int | None,
) -> tuple[Transaction, dict[str, Any] | None]:
    """Start an order of ``listing`` and pay it: through the gateway (the pending checkout is
    returned; its confirmed callback fires ``pay``), or at once by ``method`` (wallet, voucher)."""
    txn = engine.start(session, listing=listing, actor=actor, params=params)
    if method == "gateway":
        return txn, payments.gateway_checkout(session, txn=txn, actor=actor, voucher_id=voucher_id)
    engine.fire(
        session,
        transaction_id=txn.id,
        transition="pay",
        actor=actor,
        by="resident",
        params={"method": method, "voucher_id": voucher_id},
    )
    return txn, None
