"""Pages of the other revenue streams and the operator's profit model: ``/finance/memberships``,
``/finance/ads``, ``/finance/data-plans``, ``/finance/energy``, ``/finance/costs`` and
``/finance/profit`` (with the what-if panel) for the operator; ``/services/membership`` for
residents (phone-first); and ``/ads/{id}/click``, where an ad's link goes through.

Every form posts with a CSRF token and calls the same service function as the API; a refused
form is shown again with the reason, and nothing it tried is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from zhishe.core import clock
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.deps import IdPath, SessionDep
from zhishe.core.errors import Invalid, ZhisheError
from zhishe.core.i18n import T, localize
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.finance import ads, costs, dataplans, energyfees, memberships, money, periods, profit, whatif

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Builder = Callable[[Session, Actor], dict[str, Any]]


def _int(form: FormData, name: str) -> int:
    value = str(form.get(name) or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 13:
        raise Invalid(T("{field} must be a whole number", field=name), detail={"field": name})
    return int(value)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _day(form: FormData, name: str) -> date:
    try:
        return date.fromisoformat(_text(form, name))
    except ValueError as exc:
        raise Invalid(
            T("{field} must be a date written YYYY-MM-DD", field=name), detail={"field": name}
        ) from exc


def _show(
    request: Request,
    session: Session,
    actor: Actor,
    template: str,
    build: Builder,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    context = build(session, actor)
    context["error"] = error
    return render(request, template, context, status=status)


async def _post(
    request: Request,
    session: Session,
    actor: Actor,
    template: str,
    build: Builder,
    act: Callable[[FormData], object],
    back: str,
) -> Response:
    """Check the form's CSRF token, do ``act``; on a refusal roll back and show the page again."""
    form = await request.form()
    check_csrf(request, form)
    try:
        act(form)
    except ZhisheError as exc:
        session.rollback()
        return _show(request, session, actor, template, build, localize(exc.message), exc.status_code)
    return redirect(back)


# --- ads: the click-through ------------------------------------------------------------------------


@router.get("/ads/{booking_id}/click")
def ad_click(booking_id: IdPath, session: SessionDep) -> RedirectResponse:
    """Count a click on an ad and go to its link."""
    return RedirectResponse(ads.click(session, booking_id), status_code=303)


# --- residents: membership -------------------------------------------------------------------------


def _resident_membership(session: Session, actor: Actor) -> dict[str, Any]:
    authorize(actor, "services.browse")
    current = memberships.active_membership(session, actor.user_id) if actor.user_id else None
    return {
        "plans": memberships.list_plans(session=session),
        "current": current,
        "current_plan": memberships.get_plan_or_raise(session=session, plan_id=current.plan_id)
        if current
        else None,
        "refund": memberships.refund_for(current, periods.local_today()) if current else None,
    }


@router.get("/services/membership", response_class=HTMLResponse)
def resident_membership(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """A resident's membership: the plans, theirs, buy and cancel."""
    return _show(request, session, actor, "finance/revenue_membership.html", _resident_membership)


@router.post("/services/membership")
async def resident_membership_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Buy (``action=buy``, ``plan_id``) or cancel (``action=cancel``) one's membership."""

    def act(form: FormData) -> None:
        if _text(form, "action") == "cancel":
            current = memberships.active_membership(session, actor.user_id or 0)
            if current is None:
                raise Invalid(T("you have no active membership"), detail={"field": "action"})
            memberships.cancel(session=session, actor=actor, membership_id=current.id)
        else:
            memberships.buy(session=session, actor=actor, plan_id=_int(form, "plan_id"))

    return await _post(
        request,
        session,
        actor,
        "finance/revenue_membership.html",
        _resident_membership,
        act,
        "/services/membership",
    )


# --- operator: memberships -------------------------------------------------------------------------


def _memberships(session: Session, actor: Actor) -> dict[str, Any]:
    rows = memberships.list_memberships(session=session, actor=actor)
    return {
        "plans": memberships.list_plans(session=session, active_only=False),
        "rows": rows,
        "may_manage": can(actor, "finance.manage"),
    }


@router.get("/finance/memberships", response_class=HTMLResponse)
def memberships_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Membership plans and the memberships sold."""
    return _show(request, session, actor, "finance/revenue_memberships.html", _memberships)


@router.post("/finance/memberships")
async def memberships_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a plan, or record a desk payment for a resident."""

    def act(form: FormData) -> None:
        if _text(form, "action") == "desk":
            memberships.buy(
                session=session,
                actor=actor,
                plan_id=_int(form, "plan_id"),
                user_id=_int(form, "user_id"),
                method="desk",
            )
        else:
            memberships.create_plan(
                session=session,
                actor=actor,
                code=_text(form, "code"),
                name_zh=_text(form, "name_zh"),
                name_en=_text(form, "name_en"),
                annual_fee_fen=money.parse_yuan(_text(form, "annual_fee"), field="annual_fee"),
                discount_bps=_int(form, "discount_bps"),
                priority_hours=_int(form, "priority_hours"),
            )

    return await _post(
        request, session, actor, "finance/revenue_memberships.html", _memberships, act, "/finance/memberships"
    )


# --- operator: ads ---------------------------------------------------------------------------------


def _ads(session: Session, actor: Actor) -> dict[str, Any]:
    rows = ads.list_bookings(session=session, actor=actor)
    return {
        "slots": ads.list_slots(session=session),
        "rows": rows,
        "may_manage": can(actor, "finance.manage"),
    }


@router.get("/finance/ads", response_class=HTMLResponse)
def ads_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Ad slots, bookings with impressions and clicks, and billing."""
    return _show(request, session, actor, "finance/revenue_ads.html", _ads)


@router.post("/finance/ads")
async def ads_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a slot, book one for a merchant, or bill what is due."""

    def act(form: FormData) -> None:
        action = _text(form, "action")
        if action == "bill":
            ads.bill(session, actor=actor)
        elif action == "slot":
            ads.create_slot(
                session=session,
                actor=actor,
                code=_text(form, "code"),
                placement=_text(form, "placement"),
                name_zh=_text(form, "name_zh"),
                day_fen=_int(form, "day_fen"),
                per_thousand_impressions_fen=_int(form, "per_thousand_impressions_fen"),
                per_click_fen=_int(form, "per_click_fen"),
            )
        else:
            ads.book(
                session=session,
                actor=actor,
                slot_id=_int(form, "slot_id"),
                org_id=_int(form, "org_id"),
                starts_on=_day(form, "starts_on"),
                ends_on=_day(form, "ends_on"),
                headline=_text(form, "headline"),
                body=_text(form, "body"),
                link=_text(form, "link"),
            )

    return await _post(request, session, actor, "finance/revenue_ads.html", _ads, act, "/finance/ads")


# --- operator: data plans --------------------------------------------------------------------------


def _data(session: Session, actor: Actor) -> dict[str, Any]:
    rows = dataplans.list_subscriptions(session=session, actor=actor)
    return {
        "plans": dataplans.list_plans(session=session),
        "rows": rows,
        "may_manage": can(actor, "finance.manage"),
    }


@router.get("/finance/data-plans", response_class=HTMLResponse)
def data_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Data plans and the enterprises' subscriptions."""
    return _show(request, session, actor, "finance/revenue_data.html", _data)


@router.post("/finance/data-plans")
async def data_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a data plan, or bill the months that have begun."""

    def act(form: FormData) -> None:
        if _text(form, "action") == "bill":
            dataplans.bill(session, actor=actor)
        else:
            dataplans.create_plan(
                session=session,
                actor=actor,
                code=_text(form, "code"),
                name_zh=_text(form, "name_zh"),
                monthly_fee_fen=money.parse_yuan(_text(form, "monthly_fee"), field="monthly_fee"),
                per_minute=_int(form, "per_minute"),
                per_day=_int(form, "per_day"),
            )

    return await _post(
        request, session, actor, "finance/revenue_data.html", _data, act, "/finance/data-plans"
    )


# --- operator: energy ------------------------------------------------------------------------------


def _energy(session: Session, actor: Actor) -> dict[str, Any]:
    rows = energyfees.list_charges(session=session, actor=actor)
    return {"rows": rows, "may_manage": can(actor, "finance.manage")}


@router.get("/finance/energy", response_class=HTMLResponse)
def energy_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """EV charging fees and demand-response incentives posted."""
    return _show(request, session, actor, "finance/revenue_energy.html", _energy)


@router.post("/finance/energy")
async def energy_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Pay a demand-response incentive to a household (once per reference)."""

    def act(form: FormData) -> None:
        energyfees.pay_incentive(
            session=session,
            actor=actor,
            source_ref=_text(form, "source_ref"),
            user_id=_int(form, "user_id"),
            amount_fen=money.parse_yuan(_text(form, "amount"), field="amount"),
        )

    return await _post(
        request, session, actor, "finance/revenue_energy.html", _energy, act, "/finance/energy"
    )


# --- operator: costs -------------------------------------------------------------------------------


def _costs(session: Session, actor: Actor) -> dict[str, Any]:
    return {
        "rows": costs.list_costs(session=session, actor=actor),
        "streams": costs.COST_STREAMS,
        "may_manage": can(actor, "finance.manage"),
    }


@router.get("/finance/costs", response_class=HTMLResponse)
def costs_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """Operating costs: entered, imported, listed."""
    return _show(request, session, actor, "finance/revenue_costs.html", _costs)


@router.post("/finance/costs")
async def costs_post(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Enter one cost, or import a CSV file (all rows or none)."""
    form = await request.form()
    check_csrf(request, form)
    upload = form.get("file")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(5 * 1024 * 1024 + 1)
            if len(data) > 5 * 1024 * 1024:
                raise Invalid(T("the file is larger than {n} MB", n=5), detail={"field": "file"})
            costs.import_csv(session=session, actor=actor, data=data, filename=upload.filename)
        else:
            costs.create(
                session=session,
                actor=actor,
                month=_text(form, "month"),
                stream=_text(form, "stream"),
                label=_text(form, "label"),
                amount_fen=money.parse_yuan(_text(form, "amount")),
            )
    except ZhisheError as exc:
        session.rollback()
        return _show(
            request,
            session,
            actor,
            "finance/revenue_costs.html",
            _costs,
            localize(exc.message),
            exc.status_code,
        )
    return redirect("/finance/costs")


# --- operator: the profit model --------------------------------------------------------------------


def _charts(model: profit.ProfitReport) -> dict[str, Any]:
    """The series the trend charts draw (yuan for readability; the table keeps fen)."""
    series: dict[str, Any] = {"months": model.months, "revenue": {}, "margin": {}}
    for stream in profit.STREAMS:
        rows = [model.row(m, stream) for m in model.months]
        series["revenue"][stream] = [r["revenue_fen"] / 100 for r in rows]
        series["margin"][stream] = [r["margin_fen"] / 100 for r in rows]
    series["take_rate"] = [(model.row(m, "marketplace")["take_rate_bps"] or 0) / 100 for m in model.months]
    series["active_residents"] = [m["active_residents"] for m in model.marketplace]
    return series


@router.get("/finance/profit", response_class=HTMLResponse)
def profit_page(request: Request, session: SessionDep, actor: PageActor) -> HTMLResponse:
    """The profit model over a month range, its trend charts and the what-if panel."""
    params = dict(request.query_params)
    this_month = periods.month_of(clock.now())
    first = params.get("from") or periods.add_month(this_month, -5)
    last = params.get("to") or this_month
    error = ""
    try:
        model = profit.report(session=session, actor=actor, first=first, last=last)
    except Invalid as exc:
        error = localize(exc.message)
        first, last = periods.add_month(this_month, -5), this_month
        model = profit.report(session=session, actor=actor, first=first, last=last)
    what_params = {k: v for k, v in params.items() if k not in ("from", "to", "lang")}
    try:
        projection = whatif.run(session=session, actor=actor, what=whatif.parse_params(what_params))
    except Invalid as exc:
        error = error or localize(exc.message)
        projection = whatif.run(session=session, actor=actor, what=whatif.WhatIf())
    return render(
        request,
        "finance/profit.html",
        {
            "model": model,
            "first": first,
            "last": last,
            "streams": profit.STREAMS,
            "projection": projection,
            "params": what_params,
            "assumptions": whatif.ASSUMPTIONS,
            "charts": json.dumps(_charts(model)),
            "error": error,
        },
        status=422 if error else 200,
    )
