"""JSON routes of residents' money under /api/v1/services: wallet, vouchers, payments and the gateway callback."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.services import gateway, payments, vouchers, wallet
from zhishe.services.models import Voucher, VoucherProgramme, WalletTopUp

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
_FEN = Field(gt=0, le=10**12)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def voucher_json(voucher: Voucher) -> dict[str, Any]:
    """A voucher as JSON."""
    return {
        "id": voucher.id,
        "programme_id": voucher.programme_id,
        "period_key": voucher.period_key,
        "amount_fen": voucher.amount_fen,
        "state": voucher.state,
        "expires_at": _iso(voucher.expires_at),
        "used_transaction_id": voucher.used_transaction_id,
        "used_fen": voucher.used_fen,
        "issued_at": _iso(voucher.issued_at),
    }


def programme_json(programme: VoucherProgramme) -> dict[str, Any]:
    """A voucher programme as JSON."""
    return {
        "id": programme.id,
        "code": programme.code,
        "name_zh": programme.name_zh,
        "name_en": programme.name_en,
        "kind": programme.kind,
        "funding_account": programme.funding_account,
        "amount_fen": programme.amount_fen,
        "period": programme.period,
        "eligibility": programme.eligibility,
        "categories": programme.categories,
        "valid_from": programme.valid_from.isoformat(),
        "valid_until": programme.valid_until.isoformat(),
        "active": programme.active,
    }


def _top_up_json(row: WalletTopUp) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "amount_fen": row.amount_fen,
        "via": row.via,
        "state": row.state,
        "reference": row.reference or None,
        "entry_id": row.entry_id,
        "created_at": _iso(row.created_at),
    }


# --- wallet ---------------------------------------------------------------------------------------


@router.get("/wallet")
def get_wallet(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    user_id: int | None = Query(None, ge=1, le=2**62),
    after: str | None = None,
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    """A wallet's balance and its movements, newest first (your own, or any for the operator)."""
    owner = user_id or actor.user_id
    if owner is None:
        raise Invalid(T("user_id is required"), detail={"field": "user_id"})
    balance = wallet.balance(session=session, actor=actor, user_id=owner)
    page = wallet.history(session=session, actor=actor, user_id=owner, after=after, limit=limit)
    if page.next:
        response.headers["Link"] = f'<?after={page.next}>; rel="next"'
    return {
        "user_id": owner,
        "balance_fen": balance,
        "history": [
            {
                "entry_id": h.entry_id,
                "at": _iso(h.at),
                "kind": h.kind,
                "memo": h.memo,
                "amount_fen": h.amount_fen,
            }
            for h in page.items
        ],
        "next": page.next,
    }


class TopUpIn(BaseModel):
    """A top-up: at the desk (``bank``/``cash``, operator staff) or ``gateway`` (the resident)."""

    user_id: int | None = Field(None, ge=1, le=2**62)
    amount_fen: int = Field(gt=0, le=10**12)
    via: Literal["bank", "cash", "gateway"]


@router.post("/wallet/top-up", status_code=201)
def post_top_up(body: TopUpIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Top up a wallet; a gateway top-up answers with the order to pay at the gateway."""
    owner = body.user_id or actor.user_id
    if owner is None:
        raise Invalid(T("user_id is required"), detail={"field": "user_id"})
    row = wallet.top_up(session=session, actor=actor, user_id=owner, amount_fen=body.amount_fen, via=body.via)
    data = _top_up_json(row)
    if row.via == "gateway":
        data["checkout"] = gateway.order_for(row.reference, row.amount_fen, "CNY", f"top-up-{row.id}")
    return data


# --- vouchers -------------------------------------------------------------------------------------


@router.get("/vouchers")
def my_vouchers(session: SessionDep, actor: CurrentActor, all: bool = False) -> dict[str, Any]:
    """Your vouchers (usable ones, or ``all=true`` for used and expired too)."""
    return {
        "items": [voucher_json(v) for v in vouchers.mine(session=session, actor=actor, include_spent=all)]
    }


class ProgrammeIn(BaseModel):
    """A new voucher programme."""

    code: str = Field(min_length=1, max_length=48)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    kind: Literal["government_subsidy", "operator_promotion"]
    amount_fen: int = _FEN
    period: Literal["monthly", "once"] = "monthly"
    eligibility: dict[str, Any] = Field(default_factory=dict)
    categories: list[str] = Field(default_factory=list)
    valid_from: date
    valid_until: date


class ProgrammeUpdate(BaseModel):
    """Changes to a programme (only the fields given)."""

    name_zh: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    eligibility: dict[str, Any] | None = None
    categories: list[str] | None = None
    amount_fen: int | None = Field(None, gt=0, le=10**12)
    valid_until: date | None = None
    active: bool | None = None


class FundIn(BaseModel):
    """Money received for a government subsidy."""

    amount_fen: int = _FEN
    memo: str = Field("", max_length=400)


@router.get("/voucher-programmes")
def list_programmes(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Every voucher programme (operator)."""
    return {"items": [programme_json(p) for p in vouchers.list_programmes(session=session, actor=actor)]}


@router.post("/voucher-programmes", status_code=201)
def create_programme(body: ProgrammeIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a voucher programme (operator's finance staff)."""
    return programme_json(vouchers.create_programme(session=session, actor=actor, data=body.model_dump()))


@router.post("/voucher-programmes/issue-due")
def issue_due(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Issue this period's vouchers to every eligible resident now (idempotent)."""
    from zhishe.core.auth import authorize

    authorize(actor, "finance.manage")
    return {"issued": vouchers.issue_due(session)}


@router.get("/voucher-programmes/{programme_id}")
def get_programme(programme_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One programme."""
    return programme_json(vouchers.get_programme(session=session, actor=actor, programme_id=programme_id))


@router.patch("/voucher-programmes/{programme_id}")
def update_programme(
    programme_id: IdPath, body: ProgrammeUpdate, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Change a programme."""
    data = body.model_dump(exclude_unset=True)
    return programme_json(
        vouchers.update_programme(session=session, actor=actor, programme_id=programme_id, data=data)
    )


@router.post("/voucher-programmes/{programme_id}/fund", status_code=201)
def fund_programme(
    programme_id: IdPath, body: FundIn, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """Record money received for a government subsidy programme."""
    entry = vouchers.fund_programme(
        session=session, actor=actor, programme_id=programme_id, amount_fen=body.amount_fen, memo=body.memo
    )
    return {"entry_id": entry.id, "amount_fen": body.amount_fen}


# --- the gateway ----------------------------------------------------------------------------------


class CheckoutIn(BaseModel):
    """What the resident chooses at checkout (any price, fee or amount sent is ignored)."""

    model_config = {"extra": "ignore"}
    voucher_id: int | None = Field(None, ge=1, le=2**62)


@router.post("/orders/{transaction_id}/gateway-checkout", status_code=201)
def gateway_checkout(
    transaction_id: IdPath, session: SessionDep, actor: CurrentActor, body: CheckoutIn | None = None
) -> dict[str, Any]:
    """Open the online payment of an order: the server-computed amount, a reference and the signed order."""
    txn = payments.get_transaction(session, transaction_id)
    return payments.gateway_checkout(
        session, txn=txn, actor=actor, voucher_id=body.voucher_id if body is not None else None
    )


@router.post("/gateway/callback")
async def gateway_callback(request: Request, session: SessionDep) -> dict[str, Any]:
    """The gateway's signed notice of a payment (JSON or a form); refusals are recorded."""
    raw = await request.body()
    if len(raw) > 10_000:
        raise Invalid(T("the callback is too large"), detail={"field": "body"})
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Invalid(T("the callback body must be a JSON object"), detail={"field": "body"})
    else:
        form = await request.form()
        body = {key: value for key, value in form.items() if isinstance(value, str)}
    row = gateway.handle_callback(session, body)
    return {"id": row.id, "reference": row.reference, "outcome": row.outcome}
