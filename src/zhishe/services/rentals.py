"""Neighbour rentals: a resident rents out a parking space, a car or a room to a neighbour, against
a deposit.

**Who owns a rental listing.** A neighbour who rents something out does so as a (one-person)
provider organisation, onboarded like any provider in the ``rental`` category; its listings use
the ``neighbour_rental`` process. Everything providers have (service radius, commission, reviews,
settlement statements) then applies unchanged, and the owner's staff account is the one that
confirms handover and return.

**Money.** The listing's price rules price the rent (usually per ``day``); ``settings.deposit_fen``
is the deposit. Booking holds the rent in escrow (wallet or voucher) and the deposit from the
renter's wallet into ``Liabilities:Deposits``, both in the same database transaction. The owner
confirms the handover, which pays the owner the rent (less commission). On a clean return the
deposit goes back in full. On a dispute (damage) the owner claims part of the deposit; the
operator decides ``keep_fen`` (at most the deposit held), the owner gets that and the renter the
rest (``payments.settle_deposit``). A booking cancelled before the handover gives everything back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.services import common, disputes, engine, payments, pricing, transactions
from zhishe.services.engine import Context
from zhishe.services.models import Dispute, Listing, Transaction

__all__ = [
    "MAX_DEPOSIT_FEN",
    "RENT_METHODS",
    "cancel",
    "deposit_of",
    "dispute",
    "get_rental",
    "handover",
    "open_dispute_of",
    "rent",
    "return_item",
    "settle",
]

PROCESS = "neighbour_rental"
#: The rent is held from the wallet (a voucher may pay part); the deposit always comes from the wallet.
RENT_METHODS = ("wallet", "voucher")
#: The largest deposit a listing may ask (¥100,000).
MAX_DEPOSIT_FEN = 10_000_000


def deposit_of(settings: dict[str, Any]) -> int:
    """The deposit a rental listing asks, in fen (0 when none); Invalid names ``settings.deposit_fen``."""
    value = settings.get("deposit_fen", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DEPOSIT_FEN:
        raise Invalid(
            T("settings.deposit_fen must be a whole number of fen from 0 to {most}", most=MAX_DEPOSIT_FEN),
            detail={"field": "settings.deposit_fen"},
        )
    return value


def _keep(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(T("keep_fen must be a whole number of fen, 0 or more"), detail={"field": "keep_fen"})
    return value


# --- engine actions -----------------------------------------------------------------------------------


@engine.action("rental_terms")
def _rental_terms(ctx: Context) -> None:
    """Keep the deposit the listing asks on the quote (the rent itself is priced by ``quote_price``)."""
    deposit = deposit_of(ctx.listing.settings or {})
    ctx.txn.quote = {**(ctx.txn.quote or {}), "deposit_fen": deposit}


@engine.action("rental_hold_deposit")
def _rental_hold_deposit(ctx: Context) -> None:
    """Hold the deposit from the renter's wallet."""
    deposit = int((ctx.txn.quote or {}).get("deposit_fen", 0))
    if deposit > 0:
        payments.hold_deposit(ctx.session, txn=ctx.txn, actor=ctx.actor, amount_fen=deposit, method="wallet")
    ctx.detail["deposit_fen"] = deposit


@engine.action("rental_return_deposit")
def _rental_return_deposit(ctx: Context) -> None:
    """Give the whole deposit back to the renter."""
    if ctx.txn.deposit_fen > 0:
        returned = ctx.txn.deposit_fen
        payments.settle_deposit(ctx.session, txn=ctx.txn, actor=ctx.actor, keep_fen=0)
        ctx.detail["deposit_returned_fen"] = returned


@engine.action("rental_settle")
def _rental_settle(ctx: Context) -> None:
    """Keep the operator's ``keep_fen`` of the deposit for the owner, return the rest, and close the
    dispute."""
    keep = _keep(ctx.params.get("keep_fen"))
    held = ctx.txn.deposit_fen
    payments.settle_deposit(ctx.session, txn=ctx.txn, actor=ctx.actor, keep_fen=keep)
    ctx.detail.update(kept_fen=keep, returned_fen=held - keep)
    found = open_dispute_of(ctx.session, ctx.txn.id)
    if found is not None and ctx.actor is not None:
        resolution = str(ctx.params.get("resolution") or "").strip() or T(
            "deposit settled: {keep} fen kept for the owner, {back} fen returned", keep=keep, back=held - keep
        )
        disputes.resolve(
            ctx.session, actor=ctx.actor, dispute_id=found.id, award_fen=0, resolution=resolution
        )


# --- the service --------------------------------------------------------------------------------------


def _rental_listing(session: Session, listing_id: int) -> Listing:
    refusal = T("listing {id} is not a neighbour rental", id=listing_id)
    return common.listing_of(session, listing_id, process=PROCESS, refusal=refusal)


def rent(
    session: Session,
    *,
    actor: Actor,
    listing_id: int,
    quantity: object,
    method: str = "wallet",
    voucher_id: int | None = None,
    options: dict[str, Any] | None = None,
) -> Transaction:
    """Rent a neighbour's listing for ``quantity`` units of its price (days, usually): the rent is held
    in escrow and the deposit from the wallet, at once. The server prices both."""
    authorize(actor, "services.book", what=f"listing {listing_id}")
    if method not in RENT_METHODS:
        raise Invalid(
            T(
                "a rental is paid from the wallet, which also holds the deposit: method must be wallet or voucher"
            ),
            detail={"field": "method"},
        )
    common.check_voucher_id(voucher_id)
    count = pricing.parse_quantity(quantity)
    listing = _rental_listing(session, listing_id)
    deposit_of(listing.settings or {})
    params = {"quantity": count, "options": pricing.clean_options(options)}
    txn, _ = common.start_and_pay(
        session, listing=listing, actor=actor, params=params, method=method, voucher_id=voucher_id
    )
    return txn


def _rental(session: Session, actor: Actor, transaction_id: int) -> Transaction:
    refusal = T("order {id} is not a neighbour rental", id=transaction_id)
    return common.order_of(session, actor, transaction_id, process=PROCESS, refusal=refusal)


def get_rental(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """A rental, for its renter, its owner or the operator (a staff read is audited)."""
    return _rental(session, actor, transaction_id)


def cancel(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """Cancel a rental before the handover: the rent and the deposit go back in full."""
    txn = _rental(session, actor, transaction_id)
    return transactions.act(session, actor=actor, transaction_id=txn.id, transition="cancel")


def handover(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """The owner confirms the item was handed over; the owner is paid the rent."""
    txn = _rental(session, actor, transaction_id)
    return engine.fire(session, transaction_id=txn.id, transition="handover", actor=actor, by="provider")


def return_item(session: Session, *, actor: Actor, transaction_id: int) -> Transaction:
    """The owner confirms a clean return; the deposit goes back to the renter in full."""
    txn = _rental(session, actor, transaction_id)
    return engine.fire(session, transaction_id=txn.id, transition="return", actor=actor, by="provider")


def dispute(
    session: Session, *, actor: Actor, transaction_id: int, reason: object, claim_fen: object
) -> Dispute:
    """The owner reports damage at the return and claims part of the deposit; the operator decides."""
    txn = _rental(session, actor, transaction_id)
    held = txn.deposit_fen
    if isinstance(claim_fen, bool) or not isinstance(claim_fen, int) or not 0 < claim_fen <= held:
        raise Invalid(
            T("claim_fen must be a whole number of fen from 1 to the {held} fen deposit", held=held),
            detail={"field": "claim_fen", "deposit_fen": held},
        )
    engine.fire(
        session,
        transaction_id=txn.id,
        transition="dispute",
        actor=actor,
        by="provider",
        params={"reason": reason if isinstance(reason, str) else ""},
    )
    return disputes.open_dispute(
        session, actor=actor, transaction_id=txn.id, reason=reason, claim_fen=claim_fen
    )


def settle(
    session: Session, *, actor: Actor, transaction_id: int, keep_fen: object, resolution: str = ""
) -> Transaction:
    """The operator settles a disputed rental: ``keep_fen`` of the deposit goes to the owner, the
    rest back to the renter. More than the deposit held is refused (``keep_fen``), nothing posted."""
    authorize(actor, "services.operate", what=f"order {transaction_id}")
    txn = _rental(session, actor, transaction_id)
    keep = _keep(keep_fen)
    if keep > txn.deposit_fen:
        raise Invalid(
            T("keep_fen {keep} is more than the {held} fen deposit", keep=keep, held=txn.deposit_fen),
            detail={"field": "keep_fen", "deposit_fen": txn.deposit_fen},
        )
    return engine.fire(
        session,
        transaction_id=txn.id,
        transition="settle",
        actor=actor,
        by="operator",
        params={"keep_fen": keep, "resolution": resolution},
    )


def open_dispute_of(session: Session, transaction_id: int) -> Dispute | None:
    """The open dispute of a rental, if any."""
    return session.scalar(
        select(Dispute).where(Dispute.transaction_id == transaction_id, Dispute.state == "open").limit(1)
    )
