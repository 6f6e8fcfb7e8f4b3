"""JSON routes of the other revenue streams and the profit model under /api/v1/finance:
membership plans and memberships, ad slots, bookings, serving, clicks and billing, data plans and
subscriptions, energy charges, operating costs (one by one or a CSV import), the profit model and
the what-if projection. Prices and fees are computed by the services: any price a client sends is
ignored (the request shapes have no such field)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, StrictInt

from zhishe.core.auth import can
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance import ads, costs, dataplans, energyfees, memberships, profit, whatif
from zhishe.finance.models import (
    AdBooking,
    AdSlot,
    CostEntry,
    DataPlan,
    DataSubscription,
    EnergyCharge,
    Membership,
    MembershipPlan,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])
_ID = Field(ge=1, le=2**62)
Fen = Annotated[StrictInt, Field(ge=0, le=10**12)]
#: Largest CSV of costs accepted (bytes).
MAX_CSV_BYTES = 5 * 1024 * 1024


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _items(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": rows, "next": None}


# --- shapes ----------------------------------------------------------------------------------------


def plan_json(plan: MembershipPlan) -> dict[str, Any]:
    """A membership plan as JSON."""
    return {
        "id": plan.id,
        "code": plan.code,
        "name_zh": plan.name_zh,
        "name_en": plan.name_en,
        "annual_fee_fen": plan.annual_fee_fen,
        "discount_bps": plan.discount_bps,
        "priority_hours": plan.priority_hours,
        "active": plan.active,
    }


def membership_json(m: Membership) -> dict[str, Any]:
    """A membership as JSON."""
    return {
        "id": m.id,
        "plan_id": m.plan_id,
        "user_id": m.user_id,
        "starts_on": _iso(m.starts_on),
        "ends_on": _iso(m.ends_on),
        "fee_fen": m.fee_fen,
        "state": m.state,
        "entry_id": m.entry_id,
        "created_at": _iso(m.created_at),
    }


def slot_json(s: AdSlot) -> dict[str, Any]:
    """An ad slot as JSON."""
    return {
        "id": s.id,
        "code": s.code,
        "placement": s.placement,
        "name_zh": s.name_zh,
        "name_en": s.name_en,
        "day_fen": s.day_fen,
        "per_thousand_impressions_fen": s.per_thousand_impressions_fen,
        "per_click_fen": s.per_click_fen,
    }


def booking_json(b: AdBooking) -> dict[str, Any]:
    """An ad booking as JSON."""
    return {
        "id": b.id,
        "slot_id": b.slot_id,
        "org_id": b.org_id,
        "starts_on": _iso(b.starts_on),
        "ends_on": _iso(b.ends_on),
        "headline": b.headline,
        "body": b.body,
        "link": b.link,
        "click_url": f"/ads/{b.id}/click" if b.link else None,
        "impressions": b.impressions,
        "clicks": b.clicks,
        "billed_impressions": b.billed_impressions,
        "billed_clicks": b.billed_clicks,
        "billed_fen": b.billed_fen,
        "state": b.state,
    }


def data_plan_json(p: DataPlan) -> dict[str, Any]:
    """A data plan as JSON."""
    return {
        "id": p.id,
        "code": p.code,
        "name_zh": p.name_zh,
        "name_en": p.name_en,
        "monthly_fee_fen": p.monthly_fee_fen,
        "per_minute": p.per_minute,
        "per_day": p.per_day,
    }


def subscription_json(s: DataSubscription) -> dict[str, Any]:
    """A data subscription as JSON."""
    return {
        "id": s.id,
        "plan_id": s.plan_id,
        "org_id": s.org_id,
        "starts_on": _iso(s.starts_on),
        "months_paid": s.months_paid,
        "state": s.state,
        "app_token_ids": list(s.app_token_ids or []),
    }


def charge_json(c: EnergyCharge) -> dict[str, Any]:
    """An energy charge or incentive as JSON."""
    return {
        "id": c.id,
        "kind": c.kind,
        "source_ref": c.source_ref,
        "user_id": c.user_id,
        "kwh_milli": c.kwh_milli,
        "energy_fen": c.energy_fen,
        "service_fen": c.service_fen,
        "total_fen": c.total_fen,
        "detail": c.detail,
        "entry_id": c.entry_id,
        "at": _iso(c.at),
    }


def cost_json(c: CostEntry) -> dict[str, Any]:
    """An operating cost as JSON."""
    return {
        "id": c.id,
        "month": c.month,
        "stream": c.stream,
        "label": c.label,
        "amount_fen": c.amount_fen,
        "entry_id": c.entry_id,
        "created_at": _iso(c.created_at),
    }


class PlanIn(BaseModel):
    """A new membership plan."""

    code: str = Field(min_length=1, max_length=64)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    annual_fee_fen: Fen
    discount_bps: StrictInt = Field(0, ge=0, le=10_000)
    priority_hours: StrictInt = Field(0, ge=0, le=720)


class PlanUpdate(BaseModel):
    """Changes to a membership plan."""

    annual_fee_fen: Fen | None = None
    discount_bps: StrictInt | None = Field(None, ge=0, le=10_000)
    priority_hours: StrictInt | None = Field(None, ge=0, le=720)
    active: bool | None = None


class MembershipIn(BaseModel):
    """Buying a membership (the fee is the plan's: nothing here sets a price)."""

    plan_id: int = _ID
    user_id: int | None = Field(None, ge=1, le=2**62)
    method: Literal["wallet", "desk"] = "wallet"


class SlotIn(BaseModel):
    """A new ad slot."""

    code: str = Field(min_length=1, max_length=64)
    placement: Literal["home", "notices"]
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    day_fen: Fen = 0
    per_thousand_impressions_fen: Fen = 0
    per_click_fen: Fen = 0


class BookingIn(BaseModel):
    """A merchant's booking of a slot (what it costs is computed when billed)."""

    slot_id: int = _ID
    org_id: int = _ID
    starts_on: date
    ends_on: date
    headline: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=2000)
    link: str = Field("", max_length=500)


class DataPlanIn(BaseModel):
    """A new data plan."""

    code: str = Field(min_length=1, max_length=64)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    monthly_fee_fen: Fen
    per_minute: StrictInt = Field(ge=1, le=10**9)
    per_day: StrictInt = Field(ge=1, le=10**9)


class SubscriptionIn(BaseModel):
    """An enterprise's subscription for some of its app tokens."""

    org_id: int = _ID
    plan_id: int = _ID
    app_token_ids: list[StrictInt] = Field(min_length=1, max_length=50)


class EnergyChargeIn(BaseModel):
    """An EV charging session to bill, or a demand-response incentive to pay."""

    kind: Literal["ev_charging", "dr_incentive"]
    source_ref: str = Field(min_length=1, max_length=100)
    user_id: int = _ID
    kwh_milli: StrictInt | None = Field(None, ge=1, le=500_000)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    amount_fen: Fen | None = None


class CostIn(BaseModel):
    """An operating cost."""

    month: str = Field(min_length=7, max_length=7)
    stream: str = Field(min_length=1, max_length=16)
    label: str = Field(min_length=1, max_length=200)
    amount_fen: StrictInt = Field(ge=1, le=10**12)


# --- memberships -----------------------------------------------------------------------------------


@router.get("/membership-plans")
def list_membership_plans(session: SessionDep) -> list[dict[str, Any]]:
    """The membership plans on sale (public prices)."""
    return [plan_json(p) for p in memberships.list_plans(session=session)]


@router.post("/membership-plans", status_code=201)
def create_membership_plan(data: PlanIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a membership plan (operator)."""
    return plan_json(memberships.create_plan(session=session, actor=actor, **data.model_dump()))


@router.patch("/membership-plans/{plan_id}")
def update_membership_plan(
    plan_id: IdPath, data: PlanUpdate, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Change a plan's price, discount, priority or availability (operator)."""
    return plan_json(
        memberships.update_plan(session=session, actor=actor, plan_id=plan_id, **data.model_dump())
    )


@router.get("/memberships")
def list_memberships(
    session: SessionDep, actor: CurrentActor, user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> dict[str, Any]:
    """Memberships: the operator sees everyone's (or one resident's), a resident their own."""
    if user_id is None and not can(actor, "finance.read"):
        user_id = actor.user_id
    rows = memberships.list_memberships(session=session, actor=actor, user_id=user_id)
    return _items([membership_json(m) for m in rows])


@router.post("/memberships", status_code=201)
def buy_membership(data: MembershipIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Buy a year of a plan: for oneself from the wallet, or (operator) for a resident."""
    return membership_json(memberships.buy(session=session, actor=actor, **data.model_dump()))


@router.post("/memberships/{membership_id}/cancel")
def cancel_membership(membership_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Cancel a membership; its whole unused months are refunded."""
    return membership_json(memberships.cancel(session=session, actor=actor, membership_id=membership_id))


# --- advertising -----------------------------------------------------------------------------------


@router.get("/ad-slots")
def list_ad_slots(session: SessionDep) -> list[dict[str, Any]]:
    """The ad slots and their rates."""
    return [slot_json(s) for s in ads.list_slots(session=session)]


@router.post("/ad-slots", status_code=201)
def create_ad_slot(data: SlotIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create an ad slot (operator)."""
    return slot_json(ads.create_slot(session=session, actor=actor, **data.model_dump()))


@router.get("/ad-bookings")
def list_ad_bookings(
    session: SessionDep, actor: CurrentActor, org_id: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> dict[str, Any]:
    """Ad bookings: all (operator) or one merchant's."""
    return _items([booking_json(b) for b in ads.list_bookings(session=session, actor=actor, org_id=org_id)])


@router.post("/ad-bookings", status_code=201)
def book_ad(data: BookingIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Book a slot for a merchant for a date range."""
    return booking_json(ads.book(session=session, actor=actor, **data.model_dump()))


@router.post("/ad-bookings/{booking_id}/cancel")
def cancel_ad(booking_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Cancel a booking (what ran is billed)."""
    return booking_json(ads.cancel_booking(session=session, actor=actor, booking_id=booking_id))


@router.get("/ads/serve")
def serve_ad(
    session: SessionDep, placement: Annotated[str, Query(pattern="^(home|notices)$")]
) -> dict[str, Any] | None:
    """The ad running on a placement now (an impression is counted), or null."""
    booking = ads.serve(session, placement)
    if booking is None:
        return None
    return {
        "id": booking.id,
        "headline": booking.headline,
        "body": booking.body,
        "click_url": f"/ads/{booking.id}/click",
    }


@router.get("/ads/{booking_id}/click", response_class=RedirectResponse, status_code=303)
def click_ad(booking_id: IdPath, session: SessionDep) -> RedirectResponse:
    """Count a click and go to the ad's link."""
    return RedirectResponse(ads.click(session, booking_id), status_code=303)


@router.post("/ads/bill")
def bill_ads(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Post what the ad bookings owe so far (idempotent)."""
    return ads.bill(session, actor=actor)


# --- data plans ------------------------------------------------------------------------------------


@router.get("/data-plans")
def list_data_plans(session: SessionDep) -> list[dict[str, Any]]:
    """The data plans and their quotas."""
    return [data_plan_json(p) for p in dataplans.list_plans(session=session)]


@router.post("/data-plans", status_code=201)
def create_data_plan(data: DataPlanIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a data plan (operator)."""
    return data_plan_json(dataplans.create_plan(session=session, actor=actor, **data.model_dump()))


@router.get("/data-subscriptions")
def list_data_subscriptions(
    session: SessionDep, actor: CurrentActor, org_id: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> dict[str, Any]:
    """Data subscriptions: all (operator) or one enterprise's."""
    rows = dataplans.list_subscriptions(session=session, actor=actor, org_id=org_id)
    return _items([subscription_json(s) for s in rows])


@router.post("/data-subscriptions", status_code=201)
def subscribe(data: SubscriptionIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Subscribe an enterprise's app tokens to a plan (the first month is billed)."""
    return subscription_json(dataplans.subscribe(session=session, actor=actor, **data.model_dump()))


@router.post("/data-subscriptions/{subscription_id}/cancel")
def cancel_subscription(subscription_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Cancel a subscription; its quota stops now."""
    return subscription_json(dataplans.cancel(session=session, actor=actor, subscription_id=subscription_id))


@router.post("/data-subscriptions/bill")
def bill_data(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Bill the months that have begun (idempotent)."""
    return dataplans.bill(session, actor=actor)


# --- energy ----------------------------------------------------------------------------------------


@router.get("/energy/charges")
def list_energy_charges(
    session: SessionDep,
    actor: CurrentActor,
    kind: Annotated[Literal["ev_charging", "dr_incentive"] | None, Query()] = None,
) -> dict[str, Any]:
    """Energy charges and incentives posted."""
    return _items([charge_json(c) for c in energyfees.list_charges(session=session, actor=actor, kind=kind)])


def _needed(value: Any, field: str) -> Any:
    if value is None:
        raise Invalid(T("{field} is needed", field=field), detail={"field": field})
    return value


@router.post("/energy/charges", status_code=201)
def post_energy_charge(
    data: EnergyChargeIn, response: Response, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Bill a charging session or pay an incentive, once per ``(kind, source_ref)``: a replay
    answers 200 with ``"replay": true`` and posts nothing."""
    if data.kind == "ev_charging":
        charge, new = energyfees.charge_ev(
            session=session,
            actor=actor,
            source_ref=data.source_ref,
            user_id=data.user_id,
            kwh_milli=_needed(data.kwh_milli, "kwh_milli"),
            started_at=_needed(data.started_at, "started_at"),
            ended_at=_needed(data.ended_at, "ended_at"),
        )
    else:
        charge, new = energyfees.pay_incentive(
            session=session,
            actor=actor,
            source_ref=data.source_ref,
            user_id=data.user_id,
            amount_fen=_needed(data.amount_fen, "amount_fen"),
        )
    if not new:
        response.status_code = 200
    return {**charge_json(charge), "replay": not new}


# --- costs -----------------------------------------------------------------------------------------


@router.get("/costs")
def list_costs(
    session: SessionDep, actor: CurrentActor, month: Annotated[str | None, Query(max_length=7)] = None
) -> dict[str, Any]:
    """Operating costs (of one month when given)."""
    return _items([cost_json(c) for c in costs.list_costs(session=session, actor=actor, month=month)])


@router.post("/costs", status_code=201)
def create_cost(data: CostIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Enter an operating cost (posted at once)."""
    return cost_json(costs.create(session=session, actor=actor, **data.model_dump()))


@router.post("/costs/import", status_code=201)
async def import_costs(request: Request, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Import costs from a CSV body (``month,stream,label,amount`` in yuan): all rows or none."""
    data = await request.body()
    if len(data) > MAX_CSV_BYTES:
        raise Invalid(
            T("the file is larger than {n} MB", n=MAX_CSV_BYTES // 1024 // 1024), detail={"field": "file"}
        )
    imported = costs.import_csv(session=session, actor=actor, data=data)
    return _items([cost_json(c) for c in imported])


# --- the profit model ------------------------------------------------------------------------------


@router.get("/profit")
def get_profit(
    session: SessionDep,
    actor: CurrentActor,
    first: Annotated[str, Query(alias="from", max_length=7)],
    last: Annotated[str | None, Query(alias="to", max_length=7)] = None,
) -> dict[str, Any]:
    """The profit model per month and stream, with the marketplace figures."""
    return profit.report(session=session, actor=actor, first=first, last=last).as_json()


@router.get("/whatif")
def get_whatif(request: Request, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The projected monthly revenue under new parameters (``commission.<category>`` in bps,
    ``membership_fee_fen``, ``subsidy_bps``, ``ending``) from the last three months' activity."""
    what = whatif.parse_params(dict(request.query_params))
    return whatif.run(session=session, actor=actor, what=what)
