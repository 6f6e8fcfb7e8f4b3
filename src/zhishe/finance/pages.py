"""Pages of the ledger: accounts, entries, settlements and exports."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request, Response

from zhishe.core import clock
from zhishe.core.deps import SessionDep
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.core.web.shell import PageActor, check_csrf, redirect, render
from zhishe.finance import ledger, money, periods, settlement
from zhishe.services import payments, vouchers

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/finance/ledger")
def ledger_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Accounts with balances, recent entries and the trial balance (operator)."""
    accounts = ledger.list_accounts(session, actor=actor)
    recent = ledger.list_entries(session, actor=actor, limit=30).items
    return render(
        request,
        "finance/ledger_ledger.html",
        {
            "accounts": accounts,
            "entries": recent,
            "postings": ledger.postings_of(session, [e.id for e in recent]),
            "trial": ledger.trial_balance(session, actor=actor),
            "yuan": money.yuan,
        },
    )


@router.get("/finance/settlements")
def settlements_page(request: Request, session: SessionDep, actor: PageActor, month: str = "") -> Response:
    """A month's statements, with the run button and a CSV download (operator)."""
    chosen = periods.parse_month(month) if month else periods.month_of(clock.now())
    rows = settlement.list_settlements(session, actor=actor, month=chosen)
    return render(
        request,
        "finance/ledger_settlements.html",
        {"month": chosen, "rows": rows, "names": payments.provider_names(session), "yuan": money.yuan},
    )


@router.post("/finance/settlements/run")
async def run_settlements(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Compute and store the month's statements, then show them."""
    form = await request.form()
    check_csrf(request, form)
    month = periods.parse_month(str(form.get("month") or ""))
    settlement.run(session, actor=actor, month=month)
    return redirect(f"/finance/settlements?month={month}")


@router.get("/finance/settlements.csv")
def settlements_csv(session: SessionDep, actor: PageActor, month: str = "") -> Response:
    """The month's statements as CSV."""
    chosen = periods.parse_month(month) if month else periods.month_of(clock.now())
    rows = settlement.list_settlements(session, actor=actor, month=chosen)
    names = payments.provider_names(session)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = (
        "month",
        "provider_id",
        "provider",
        "gross",
        "commission",
        "subsidies",
        "refunds",
        "collected",
        "net_payable",
        "ledger_movement",
        "difference",
    )
    writer.writerow(columns)
    for r in rows:
        figures = (
            r.gross_fen,
            r.commission_fen,
            r.subsidies_fen,
            r.refunds_fen,
            r.collected_fen,
            r.net_payable_fen,
            r.ledger_movement_fen,
            r.net_payable_fen - r.ledger_movement_fen,
        )
        writer.writerow(
            [r.month, r.provider_id, names.get(r.provider_id, ""), *(money.yuan(v) for v in figures)]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="settlements-{chosen}.csv"'},
    )


@router.get("/finance/vouchers")
def vouchers_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Voucher programmes, their funds, and forms to create, fund and issue (operator)."""
    programmes = vouchers.list_programmes(session=session, actor=actor)
    funds = ledger.balances(session, [p.funding_account for p in programmes])
    return render(
        request,
        "finance/ledger_vouchers.html",
        {"programmes": programmes, "funds": funds, "yuan": money.yuan},
    )


@router.post("/finance/vouchers")
async def create_programme(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Create a programme from the form."""
    form = await request.form()
    check_csrf(request, form)
    min_age = str(form.get("min_age") or "").strip()
    tags = [t.strip() for t in str(form.get("tags_any") or "").split(",") if t.strip()]
    categories = [c.strip() for c in str(form.get("categories") or "").split(",") if c.strip()]
    eligibility: dict[str, Any] = {}
    if min_age:
        if not min_age.isdigit():
            raise Invalid(T("min_age must be a whole number of years"), detail={"field": "min_age"})
        eligibility["min_age"] = int(min_age)
    if tags:
        eligibility["tags_any"] = tags
    vouchers.create_programme(
        session=session,
        actor=actor,
        data={
            "code": str(form.get("code") or ""),
            "name_zh": str(form.get("name_zh") or ""),
            "name_en": str(form.get("name_en") or ""),
            "kind": str(form.get("kind") or ""),
            "period": str(form.get("period") or "monthly"),
            "amount_fen": money.parse_yuan(form.get("amount"), field="amount", allow_zero=True),
            "valid_from": str(form.get("valid_from") or ""),
            "valid_until": str(form.get("valid_until") or ""),
            "eligibility": eligibility,
            "categories": categories,
        },
    )
    return redirect("/finance/vouchers")


@router.post("/finance/vouchers/{programme_id}/fund")
async def fund_programme(
    programme_id: int, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Record money received for a subsidy programme."""
    form = await request.form()
    check_csrf(request, form)
    vouchers.fund_programme(
        session=session,
        actor=actor,
        programme_id=programme_id,
        amount_fen=money.parse_yuan(form.get("amount"), field="amount", allow_zero=True),
    )
    return redirect("/finance/vouchers")


@router.post("/finance/vouchers/issue-due")
async def issue_due(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Issue this period's vouchers now."""
    form = await request.form()
    check_csrf(request, form)
    from zhishe.core.auth import authorize

    authorize(actor, "finance.manage")
    vouchers.issue_due(session)
    return redirect("/finance/vouchers")
