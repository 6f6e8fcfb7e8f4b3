"""JSON routes of the ledger under /api/v1/finance: accounts, entries, reversals, settlements and exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from zhishe.core.auth import Actor
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.finance import export, ledger, settlement
from zhishe.finance.models import Account, Entry, Settlement

__all__ = ["entry_json", "router", "settlement_json"]

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def account_json(account: Account) -> dict[str, Any]:
    """An account with its balance."""
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind,
        "currency": account.currency,
        "owner_type": account.owner_type or None,
        "owner_id": account.owner_id,
        "balance_fen": account.balance_fen,
        "opened_at": _iso(account.opened_at),
    }


def entry_json(entry: Entry, postings: list[tuple[str, int, str]]) -> dict[str, Any]:
    """An entry with its postings."""
    return {
        "id": entry.id,
        "posted_at": _iso(entry.posted_at),
        "kind": entry.kind,
        "stream": entry.stream,
        "memo": entry.memo,
        "ref_type": entry.ref_type or None,
        "ref_id": entry.ref_id,
        "provider_id": entry.provider_id,
        "reverses_id": entry.reverses_id,
        "actor": entry.actor,
        "postings": [{"account": a, "amount_fen": f, "currency": c} for a, f, c in postings],
    }


def settlement_json(row: Settlement) -> dict[str, Any]:
    """A provider's monthly statement."""
    return {
        "id": row.id,
        "provider_id": row.provider_id,
        "month": row.month,
        "gross_fen": row.gross_fen,
        "commission_fen": row.commission_fen,
        "subsidies_fen": row.subsidies_fen,
        "refunds_fen": row.refunds_fen,
        "collected_fen": row.collected_fen,
        "net_payable_fen": row.net_payable_fen,
        "ledger_movement_fen": row.ledger_movement_fen,
        "difference_fen": row.net_payable_fen - row.ledger_movement_fen,
        "entries": row.entries,
        "computed_at": _iso(row.computed_at),
    }


@router.get("/accounts")
def accounts(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Every account with its balance."""
    return {"items": [account_json(a) for a in ledger.list_accounts(session, actor=actor)]}


@router.get("/trial-balance")
def trial_balance(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Debit and credit balances per currency; each total is zero."""
    return {"currencies": ledger.trial_balance(session, actor=actor)}


@router.get("/entries")
def entries(
    session: SessionDep,
    actor: CurrentActor,
    response: Response,
    after: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    kind: str | None = Query(None, max_length=32),
    account: str | None = Query(None, max_length=200),
    provider_id: int | None = Query(None, ge=1, le=2**62),
    ref_type: str | None = Query(None, max_length=32),
    ref_id: int | None = Query(None, ge=1, le=2**62),
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> dict[str, Any]:
    """Entries, newest first, by keyset pages, with filters."""
    start, end = export.parse_range(from_, to)
    page = ledger.list_entries(
        session,
        actor=actor,
        after=after,
        limit=limit,
        kind=kind,
        account_name=account,
        provider_id=provider_id,
        ref_type=ref_type,
        ref_id=ref_id,
        start=start,
        end=end,
    )
    legs = ledger.postings_of(session, [e.id for e in page.items])
    if page.next:
        response.headers["Link"] = f'<?after={page.next}>; rel="next"'
    return {"items": [entry_json(e, legs[e.id]) for e in page.items], "next": page.next}


@router.get("/entries/{entry_id}")
def entry(entry_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One entry with its postings."""
    found = ledger.get_entry(session, actor=actor, entry_id=entry_id)
    return entry_json(found, ledger.postings_of(session, [found.id])[found.id])


class ReverseIn(BaseModel):
    """Why an entry is corrected."""

    reason: str = Field(min_length=1, max_length=400)


@router.post("/entries/{entry_id}/reverse", status_code=201)
def reverse(entry_id: IdPath, body: ReverseIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Correct an entry by posting its reversal."""
    reversal = ledger.reverse_entry(session, actor=actor, entry_id=entry_id, reason=body.reason)
    return entry_json(reversal, ledger.postings_of(session, [reversal.id])[reversal.id])


@router.get("/settlements")
def settlements(
    session: SessionDep,
    actor: CurrentActor,
    month: str | None = Query(None, max_length=7),
    provider_id: int | None = Query(None, ge=1, le=2**62),
) -> dict[str, Any]:
    """Stored statements: all for the operator, its own for a provider's administrator."""
    rows = settlement.list_settlements(session, actor=actor, month=month, provider_id=provider_id)
    return {"items": [settlement_json(r) for r in rows]}


@router.post("/settlements/run")
def run_settlements(
    session: SessionDep, actor: CurrentActor, month: str = Query(max_length=7)
) -> dict[str, Any]:
    """Compute and store every provider's statement of ``month``."""
    return {"items": [settlement_json(r) for r in settlement.run(session, actor=actor, month=month)]}


class PayoutIn(BaseModel):
    """A payment to a provider."""

    provider_id: int = Field(ge=1, le=2**62)
    amount_fen: int = Field(gt=0, le=10**12)
    memo: str = Field("", max_length=400)


@router.get("/payouts")
def payouts(
    session: SessionDep, actor: CurrentActor, provider_id: int | None = Query(None, ge=1, le=2**62)
) -> dict[str, Any]:
    """Payouts to providers, newest first."""
    rows = settlement.list_payouts(session, actor=actor, provider_id=provider_id)
    return {
        "items": [
            {
                "entry_id": e.id,
                "provider_id": e.provider_id,
                "amount_fen": amount,
                "posted_at": _iso(e.posted_at),
                "memo": e.memo,
            }
            for e, amount in rows
        ]
    }


@router.post("/payouts", status_code=201)
def post_payout(body: PayoutIn, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Pay a provider out: Dr its payable, Cr the bank."""
    found = settlement.payout(
        session, actor=actor, provider_id=body.provider_id, amount_fen=body.amount_fen, memo=body.memo
    )
    return entry_json(found, ledger.postings_of(session, [found.id])[found.id])


def _stream(fmt: str, actor: Actor, start: datetime | None, end: datetime | None) -> Iterator[str]:
    """The export's chunks, read with a session of their own (the request's is closed by then)."""
    session = get_sessionmaker(get_settings().database_url)()
    try:
        make = export.beancount_chunks if fmt == "beancount" else export.csv_chunks
        yield from make(session, start, end, None)
    finally:
        session.close()


def _export(session: Any, actor: Actor, fmt: str, from_: str | None, to: str | None) -> StreamingResponse:
    start, end = export.parse_range(from_, to)
    if fmt == "beancount":
        export.beancount(session, actor=actor, start=start, end=end)
        media, name = "text/plain; charset=utf-8", "zhishe-ledger.beancount"
    else:
        export.csv_rows(session, actor=actor, start=start, end=end)
        media, name = "text/csv; charset=utf-8", "zhishe-ledger.csv"
    session.commit()
    return StreamingResponse(
        _stream(fmt, actor, start, end),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/export.beancount")
def export_beancount(
    session: SessionDep,
    actor: CurrentActor,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> StreamingResponse:
    """The ledger as Beancount text (streamed)."""
    return _export(session, actor, "beancount", from_, to)


@router.get("/export.csv")
def export_csv(
    session: SessionDep,
    actor: CurrentActor,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
) -> StreamingResponse:
    """The ledger as CSV, one row per posting (streamed)."""
    return _export(session, actor, "csv", from_, to)
