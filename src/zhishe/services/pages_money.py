"""Pages of residents' money: the wallet, vouchers and the gateway checkout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from zhishe.core.deps import SessionDep
from zhishe.core.errors import Forbidden
from zhishe.core.i18n import T
from zhishe.core.web.shell import PageActor, render
from zhishe.finance import settlement
from zhishe.services import payments, vouchers, wallet
from zhishe.services.models import VoucherProgramme

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/services/wallet")
def wallet_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The resident's wallet: balance, recent movements and usable vouchers (phone-first)."""
    if actor.user_id is None:
        raise Forbidden(T("sign in to use community services"))
    balance = wallet.balance(session=session, actor=actor, user_id=actor.user_id)
    history = wallet.history(session=session, actor=actor, user_id=actor.user_id, limit=30)
    mine = vouchers.mine(session=session, actor=actor)
    names = {
        p.id: p
        for p in session.query(VoucherProgramme).filter(
            VoucherProgramme.id.in_({v.programme_id for v in mine})
        )
    }
    return render(
        request,
        "services/money_wallet.html",
        {"balance": balance, "history": history.items, "vouchers": mine, "programmes": names},
    )


@router.get("/provider/statements")
def statements_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """A provider's monthly settlement statements (its administrators)."""
    rows = settlement.list_settlements(session, actor=actor)
    return render(
        request, "services/money_statements.html", {"rows": rows, "names": payments.provider_names(session)}
    )
