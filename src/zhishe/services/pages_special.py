"""Pages of group buys, membership boxes and neighbour rentals, phone-first and working without
JavaScript: a group's progress with its join form; subscribing to a box plan, the subscription with
its deliveries, pause and resume, and a cancel that shows the refund before it is confirmed; renting
a neighbour's listing, and the rental's handover, return, damage and settlement forms for the owner
and the operator. Every form posts to the same service functions as the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from zhishe.core.auth import Actor
from zhishe.core.context import current_language
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import NotFound, ZhisheError
from zhishe.core.i18n import T, localize
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.finance import money
from zhishe.services import boxes, engine, groupbuy, rentals
from zhishe.services.models import Listing, Transaction

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    return render(request, f"services/{template}", {"yuan": money.yuan_label, **context}, status=status)


def _listing(session: Session, listing_id: int) -> Listing:
    listing = session.get(Listing, listing_id)
    if listing is None or listing.status in {"draft", "withdrawn"}:
        raise NotFound(T("there is no listing {id}", id=listing_id), detail={"listing_id": listing_id})
    return listing


def _available(session: Session, txn: Transaction, actor: Actor) -> set[str]:
    return {option.transition.name for option in engine.available(txn, actor, session=session)}


async def _posted(
    request: Request, session: Session, action: Callable[[FormData], str], again: Callable[[str], Response]
) -> Response:
    """Run a form post: CSRF first, then ``action`` (returning where to go); on a refusal roll back
    and show the page again with the reason."""
    form = await request.form()
    check_csrf(request, form)
    try:
        target = action(form)
    except ZhisheError as exc:
        session.rollback()
        page = again(localize(exc.message))
        page.status_code = exc.status_code
        return page
    return redirect(target)


# --- group buys ----------------------------------------------------------------------------------------


def _group_page(
    request: Request,
    session: Session,
    actor: Actor,
    listing: Listing,
    view: groupbuy.GroupView | None,
    error: str = "",
) -> Response:
    can_join = view is None or (view.open and view.my_order is None)
    return _page(
        request,
        "special_group.html",
        {"listing": listing, "view": view, "can_join": can_join, "error": error},
        status=422 if error else 200,
    )


@router.get("/services/group-buys/{listing_id}")
def group_buy(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The group of a group-buy listing now taking members, and the join form."""
    view = groupbuy.current_group(session, actor=actor, listing_id=listing_id)
    return _group_page(request, session, actor, _listing(session, listing_id), view)


@router.get("/services/groups/{group_id}")
def group(group_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """One group's progress: members of the minimum, time left, my place."""
    view = groupbuy.get_group(session, actor=actor, group_id=group_id)
    return _group_page(request, session, actor, view.listing, view)


@router.post("/services/group-buys/{listing_id}/join")
async def join_group(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Join the group and pay from the wallet."""

    def act(form: FormData) -> str:
        txn, _ = groupbuy.join(
            session, actor=actor, listing_id=listing_id, method="wallet", quantity=form.get("quantity") or "1"
        )
        return f"/services/groups/{txn.group_id}"

    def again(message: str) -> Response:
        listing = _listing(session, listing_id)
        view = groupbuy.current_group(session, actor=actor, listing_id=listing_id)
        return _group_page(request, session, actor, listing, view, message)

    return await _posted(request, session, act, again)


# --- membership boxes -------------------------------------------------------------------------------------


def _plans_page(
    request: Request, session: Session, actor: Actor, listing_id: int, error: str = ""
) -> Response:
    prices = boxes.plan_prices(session, actor=actor, listing_id=listing_id)
    return _page(
        request,
        "special_box_new.html",
        {"listing": _listing(session, listing_id), "prices": prices, "error": error},
        status=422 if error else 200,
    )


@router.get("/services/box-plans/{listing_id}")
def box_plans(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A box listing's plans with their prices, and the subscribe form."""
    return _plans_page(request, session, actor, listing_id)


@router.post("/services/box-plans/{listing_id}")
async def subscribe(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Subscribe to the chosen plan, prepaid from the wallet."""

    def act(form: FormData) -> str:
        plan = form.get("plan")
        txn, _ = boxes.subscribe(
            session,
            actor=actor,
            listing_id=listing_id,
            plan=plan if isinstance(plan, str) else "",
            method="wallet",
        )
        return f"/services/boxes/{txn.id}"

    return await _posted(
        request, session, act, lambda message: _plans_page(request, session, actor, listing_id, message)
    )


def _box_page(request: Request, session: Session, actor: Actor, order_id: int, error: str = "") -> Response:
    view = boxes.get_subscription(session, actor=actor, transaction_id=order_id)
    process = engine.get_process(view.txn.process)
    return _page(
        request,
        "special_box.html",
        {
            "view": view,
            "state_label": process.state_label(view.txn.state, current_language.get()),
            "can": _available(session, view.txn, actor),
            "error": error,
        },
        status=422 if error else 200,
    )


@router.get("/services/boxes/{order_id}")
def box(order_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A box subscription: plan, deliveries, and what the viewer may do."""
    return _box_page(request, session, actor, order_id)


@router.get("/services/boxes/{order_id}/cancel")
def box_cancel_confirm(order_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Before cancelling: what will be refunded, to the fen."""
    view = boxes.get_subscription(session, actor=actor, transaction_id=order_id)
    return _page(
        request, "special_box_cancel.html", {"view": view, "can": _available(session, view.txn, actor)}
    )


def _box_step(step: Callable[..., Any]) -> Callable[..., Any]:
    async def route(order_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
        def act(form: FormData) -> str:
            step(session, actor=actor, transaction_id=order_id)
            return f"/services/boxes/{order_id}"

        return await _posted(
            request, session, act, lambda message: _box_page(request, session, actor, order_id, message)
        )

    route.__doc__ = step.__doc__
    return route


router.add_api_route("/services/boxes/{order_id}/pause", _box_step(boxes.pause), methods=["POST"])
router.add_api_route("/services/boxes/{order_id}/resume", _box_step(boxes.resume), methods=["POST"])
router.add_api_route("/services/boxes/{order_id}/cancel", _box_step(boxes.cancel), methods=["POST"])


@router.post("/services/deliveries/{delivery_id}/delivered")
async def delivered(delivery_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The provider marks a box delivered."""
    form = await request.form()
    check_csrf(request, form)
    order = form.get("order")
    order_id = int(order) if isinstance(order, str) and order.isdigit() else 0
    try:
        made = boxes.mark_delivered(session, actor=actor, delivery_id=delivery_id)
    except ZhisheError as exc:
        session.rollback()
        if not order_id:
            raise
        page = _box_page(request, session, actor, order_id, localize(exc.message))
        page.status_code = exc.status_code
        return page
    return redirect(f"/services/boxes/{made.transaction_id}")


# --- neighbour rentals ------------------------------------------------------------------------------------


def _rent_page(request: Request, session: Session, listing_id: int, error: str = "") -> Response:
    listing = _listing(session, listing_id)
    return _page(
        request,
        "special_rent_new.html",
        {"listing": listing, "deposit_fen": rentals.deposit_of(listing.settings or {}), "error": error},
        status=422 if error else 200,
    )


@router.get("/services/rent/{listing_id}")
def rent_form(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Renting a neighbour's listing: the price, the deposit and how many days."""
    if _listing(session, listing_id).process != rentals.PROCESS:
        raise NotFound(T("there is no listing {id}", id=listing_id), detail={"listing_id": listing_id})
    return _rent_page(request, session, listing_id)


@router.post("/services/rent/{listing_id}")
async def rent(listing_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Rent it: the rent and the deposit are held from the wallet."""

    def act(form: FormData) -> str:
        txn = rentals.rent(session, actor=actor, listing_id=listing_id, quantity=form.get("quantity") or "")
        return f"/services/rentals/{txn.id}"

    return await _posted(
        request, session, act, lambda message: _rent_page(request, session, listing_id, message)
    )


def _rental_page(
    request: Request, session: Session, actor: Actor, order_id: int, error: str = ""
) -> Response:
    txn = rentals.get_rental(session, actor=actor, transaction_id=order_id)
    process = engine.get_process(txn.process)
    return _page(
        request,
        "special_rental.html",
        {
            "txn": txn,
            "listing": session.get(Listing, txn.listing_id),
            "state_label": process.state_label(txn.state, current_language.get()),
            "deposit_asked": int((txn.quote or {}).get("deposit_fen", 0)),
            "dispute": rentals.open_dispute_of(session, txn.id),
            "can": _available(session, txn, actor),
            "error": error,
        },
        status=422 if error else 200,
    )


@router.get("/services/rentals/{order_id}")
def rental(order_id: IdPath, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A rental: rent, deposit, state, and the owner's and operator's buttons."""
    return _rental_page(request, session, actor, order_id)


@router.post("/services/rentals/{order_id}/{step}")
async def rental_step(
    order_id: IdPath, step: str, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Handover, return, damage report or settlement of a rental."""

    def act(form: FormData) -> str:
        if step == "handover":
            rentals.handover(session, actor=actor, transaction_id=order_id)
        elif step == "return":
            rentals.return_item(session, actor=actor, transaction_id=order_id)
        elif step == "dispute":
            claim = money.parse_yuan(form.get("claim_yuan"), field="claim_yuan", allow_zero=True)
            rentals.dispute(
                session, actor=actor, transaction_id=order_id, reason=form.get("reason"), claim_fen=claim
            )
        elif step == "settle":
            keep = money.parse_yuan(form.get("keep_yuan"), field="keep_yuan", allow_zero=True)
            rentals.settle(session, actor=actor, transaction_id=order_id, keep_fen=keep)
        elif step == "cancel":
            rentals.cancel(session, actor=actor, transaction_id=order_id)
        else:
            raise NotFound(T("there is no such step"), detail={"step": step[:32]})
        return f"/services/rentals/{order_id}"

    return await _posted(
        request, session, act, lambda message: _rental_page(request, session, actor, order_id, message)
    )
