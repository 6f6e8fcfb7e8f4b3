"""Pages of marketplace transactions: booking, paying, my orders, the provider's orders, reviews and disputes.

Phone-first and without JavaScript: every step is a form posted to the same service function the
JSON API calls; a refusal re-renders the page with the reason, having rolled back what was written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.context import current_language
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.i18n import T
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.finance import money
from zhishe.services import disputes, engine, reviews, transactions
from zhishe.services.models import Dispute, Listing, Provider, Slot, Transaction

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
#: Lines of the provider's quote form.
QUOTE_LINES = 5


def _str(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int(text: str, field: str, *, required: bool = True) -> int | None:
    if not text and not required:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise Invalid(T("{field} must be a whole number", field=field), detail={"field": field})
    return int(text)


def _fen(text: str, field: str) -> int:
    """An amount typed in yuan ("80" or "79.90") as whole fen."""
    return money.parse_yuan(text, field=field, allow_zero=True)


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form)
    return form


@dataclass
class _Row:
    """An order in a list, with what the page shows of it."""

    txn: Transaction
    listing: Listing | None
    slot: Slot | None
    state: str
    options: list[engine.Option]


def _row(session: Session, txn: Transaction, actor: Actor, language: str) -> _Row:
    process = engine.get_process(txn.process)
    return _Row(
        txn=txn,
        listing=session.get(Listing, txn.listing_id),
        slot=session.get(Slot, txn.slot_id) if txn.slot_id else None,
        state=process.state_label(txn.state, language),
        options=engine.available(txn, actor, session=session),
    )


# --- booking -------------------------------------------------------------------------------------------


@router.post("/services/listings/{listing_id}/book", response_class=HTMLResponse)
async def book(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Book from the listing page; a full slot offers its waitlist."""
    form = await _form(request)
    try:
        txn = transactions.book(
            session,
            actor=actor,
            listing_id=listing_id,
            slot_id=_int(_str(form, "slot_id"), "slot_id", required=False),
            quantity=_int(_str(form, "quantity") or "1", "quantity"),
            options={"extras": [e for e in form.getlist("extras") if isinstance(e, str)]},
            note=_str(form, "note")[:2000],
        )
    except ZhisheError as exc:
        session.rollback()
        listing = session.get(Listing, listing_id)
        context = {
            "error": exc,
            "listing": listing,
            "waitlist_slot": exc.detail.get("slot_id") if exc.detail.get("waitlist") else None,
        }
        return render(request, "services/order_book_failed.html", context, status=exc.status_code)
    session.commit()
    return redirect(f"/services/orders/{txn.id}")


@router.post("/services/slots/{slot_id}/waitlist", response_class=HTMLResponse)
async def join_waitlist(slot_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Join a full slot's waitlist."""
    form = await _form(request)
    try:
        transactions.join_waitlist(
            session,
            actor=actor,
            slot_id=slot_id,
            quantity=_int(_str(form, "quantity") or "1", "quantity") or 1,
        )
    except ZhisheError as exc:
        session.rollback()
        return render(
            request,
            "services/order_book_failed.html",
            {"error": exc, "listing": None, "waitlist_slot": None},
            status=exc.status_code,
        )
    session.commit()
    return redirect("/services/orders?waitlist=1")


# --- the resident's orders ---------------------------------------------------------------------------


@router.get("/services/orders", response_class=HTMLResponse)
def my_orders(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """My orders, newest first."""
    after = request.query_params.get("after")
    page = transactions.list_orders(session, actor=actor, after=after, limit=30)
    language = current_language.get()
    rows = [_row(session, t, actor, language) for t in page.items]
    context = {
        "rows": rows,
        "next": page.next,
        "yuan": money.yuan_label,
        "joined": request.query_params.get("waitlist"),
    }
    return render(request, "services/order_list.html", context)


def _order_context(
    session: Session, actor: Actor, txn: Transaction, error: ZhisheError | None = None
) -> dict[str, Any]:
    language = current_language.get()
    process = engine.get_process(txn.process)
    row = _row(session, txn, actor, language)
    side = reviews.side_of(session, txn, actor)
    visible = reviews.list_reviews(session, actor=actor, transaction_id=txn.id)
    pay_with = (
        transactions.payment_transition(session, txn) if actor.user_id == txn.resident_user_id else None
    )
    vouchers: list[Any] = []
    if pay_with:
        try:
            from zhishe.services import vouchers as voucher_service

            vouchers = voucher_service.usable(session, user_id=txn.resident_user_id, txn=txn)
        except ImportError:  # pragma: no cover - vouchers ship with the marketplace
            vouchers = []
    others = [o for o in row.options if o.transition.name != pay_with and "hold" not in o.transition.actions]
    open_dispute = session.scalar(
        select(Dispute).where(Dispute.transaction_id == txn.id, Dispute.state == "open")
    )
    provider = session.get(Provider, txn.provider_id)
    events = transactions.events_of(session, txn)
    return {
        "row": row,
        "txn": txn,
        "provider": provider,
        "process": process,
        "events": [(e, process.state_label(e.to_state, language)) for e in events],
        "pay_with": pay_with,
        "vouchers": vouchers,
        "options": others,
        "fee": transactions.cancellation_fee(session, txn)
        if any(o.transition.name == "cancel" for o in others)
        else 0,
        "side": side,
        "reviews": visible,
        "may_review": side is not None
        and reviews.review_open(txn)
        and not any(r.side == side for r in visible),
        "dispute": open_dispute,
        "may_dispute": side is not None and open_dispute is None and txn.state != process.initial,
        "quote_lines": range(1, QUOTE_LINES + 1),
        "yuan": money.yuan_label,
        "error": error,
        "timezone": get_settings().tz,
    }


@router.get("/services/orders/{transaction_id}", response_class=HTMLResponse)
def order_page(transaction_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """One order: its status timeline and whatever the viewer may do next."""
    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    context = _order_context(session, actor, txn)
    context["done"] = request.query_params.get("done", "")
    return render(request, "services/order_detail.html", context)


def _failed(
    request: Request, session: Session, actor: Actor, transaction_id: int, exc: ZhisheError
) -> Response:
    session.rollback()
    txn = transactions.get_order(session, actor=actor, transaction_id=transaction_id)
    context = _order_context(session, actor, txn, exc)
    context["done"] = ""
    return render(request, "services/order_detail.html", context, status=exc.status_code)


@router.post("/services/orders/{transaction_id}/pay", response_class=HTMLResponse)
async def pay(transaction_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Pay by wallet, voucher or at the service; the gateway shows its pending checkout."""
    form = await _form(request)
    try:
        result = transactions.pay(
            session,
            actor=actor,
            transaction_id=transaction_id,
            method=_str(form, "method"),
            voucher_id=_int(_str(form, "voucher_id"), "voucher_id", required=False),
        )
    except ZhisheError as exc:
        return _failed(request, session, actor, transaction_id, exc)
    session.commit()
    if isinstance(result, dict):
        return render(request, "services/order_checkout.html", {"checkout": result, "yuan": money.yuan_label})
    return redirect(f"/services/orders/{transaction_id}?done=pay")


def _visit_at(text: str) -> str:
    """A ``datetime-local`` value (platform time) as ISO 8601 with its offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(T("visit_at must be a date and time"), detail={"field": "visit_at"}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=get_settings().tz)
    return moment.isoformat()


def _action_params(form: FormData, transition: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    reason = _str(form, "reason")
    if reason:
        params["reason"] = reason[:500]
    if transition == "schedule_visit":
        params["visit_at"] = _visit_at(_str(form, "visit_at"))
    if transition == "quote":
        lines = []
        for index in range(1, QUOTE_LINES + 1):
            label, amount = _str(form, f"label_{index}"), _str(form, f"amount_{index}")
            if label or amount:
                lines.append({"label": label, "amount_fen": _fen(amount, f"amount_{index}")})
        params["lines"] = lines
    return params


@router.post("/services/orders/{transaction_id}/actions/{transition}", response_class=HTMLResponse)
async def act(
    transaction_id: IdPath, transition: str, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Take a step of the order's process (accept, decline, quote, deliver, cancel, no-show...)."""
    form = await _form(request)
    back = _str(form, "back")
    try:
        transactions.act(
            session,
            actor=actor,
            transaction_id=transaction_id,
            transition=transition[:32],
            params=_action_params(form, transition),
        )
    except ZhisheError as exc:
        return _failed(request, session, actor, transaction_id, exc)
    session.commit()
    if back == "provider":
        return redirect(f"/provider/orders?done={transaction_id}")
    return redirect(f"/services/orders/{transaction_id}?done={transition[:32]}")


@router.post("/services/orders/{transaction_id}/reviews", response_class=HTMLResponse)
async def review(transaction_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Review the order from my side."""
    form = await _form(request)
    try:
        rating = _int(_str(form, "rating"), "rating")
        reviews.submit(
            session, actor=actor, transaction_id=transaction_id, rating=rating, text=_str(form, "text")
        )
    except ZhisheError as exc:
        return _failed(request, session, actor, transaction_id, exc)
    session.commit()
    return redirect(f"/services/orders/{transaction_id}?done=review")


@router.post("/services/orders/{transaction_id}/disputes", response_class=HTMLResponse)
async def dispute(
    transaction_id: IdPath, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Open a dispute on the order."""
    form = await _form(request)
    try:
        claim = _fen(_str(form, "claim") or "0", "claim")
        disputes.open_dispute(
            session, actor=actor, transaction_id=transaction_id, reason=_str(form, "reason"), claim_fen=claim
        )
    except ZhisheError as exc:
        return _failed(request, session, actor, transaction_id, exc)
    session.commit()
    return redirect(f"/services/orders/{transaction_id}?done=dispute")


# --- the provider's queue ----------------------------------------------------------------------------


#: Transitions the provider's queue offers as one-click buttons (the rest need the order page).
_QUICK = ("accept", "decline", "start_work", "deliver", "complete", "no_show")


@router.get("/provider/orders", response_class=HTMLResponse)
def provider_orders(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The provider's orders, filtered by state, with their next steps."""
    state = request.query_params.get("state") or None
    page = transactions.list_orders(
        session, actor=actor, as_provider=True, state=state, after=request.query_params.get("after"), limit=50
    )
    language = current_language.get()
    rows = [_row(session, t, actor, language) for t in page.items]
    states = sorted(
        {
            s
            for name in ("instant_booking", "request_to_book", "quote_repair")
            for s in engine.get_process(name).states
        }
    )
    context = {
        "rows": rows,
        "next": page.next,
        "state": state or "",
        "states": states,
        "quick": _QUICK,
        "yuan": money.yuan_label,
        "done": request.query_params.get("done", ""),
    }
    return render(request, "services/order_provider.html", context)


# --- the operator's disputes ---------------------------------------------------------------------------


def _disputes_page(
    request: Request, session: Session, actor: Actor, error: ZhisheError | None = None
) -> Response:
    state = request.query_params.get("state") or "open"
    page = disputes.list_disputes(
        session,
        actor=actor,
        state=state if state in ("open", "resolved") else "open",
        after=request.query_params.get("after"),
    )
    rows = []
    for item in page.items:
        txn = session.get(Transaction, item.transaction_id)
        listing = session.get(Listing, txn.listing_id) if txn else None
        rows.append((item, txn, listing))
    context = {
        "rows": rows,
        "next": page.next,
        "state": state,
        "yuan": money.yuan_label,
        "error": error,
        "done": request.query_params.get("done", ""),
    }
    return render(
        request, "services/order_disputes.html", context, status=error.status_code if error else 200
    )


@router.get("/operator/disputes", response_class=HTMLResponse)
def operator_disputes(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The operator's dispute queue, oldest first, with each one's deadline."""
    return _disputes_page(request, session, actor)


@router.post("/operator/disputes/{dispute_id}/resolve", response_class=HTMLResponse)
async def resolve(dispute_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Resolve a dispute with an award refunded to the resident."""
    form = await _form(request)
    try:
        award = _fen(_str(form, "award") or "0", "award")
        disputes.resolve(
            session, actor=actor, dispute_id=dispute_id, award_fen=award, resolution=_str(form, "resolution")
        )
    except ZhisheError as exc:
        session.rollback()
        return _disputes_page(request, session, actor, exc)
    session.commit()
    return redirect(f"/operator/disputes?done={dispute_id}")
