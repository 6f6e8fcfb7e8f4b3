"""EV charging routes under ``/api/v1/energy/charging``: sessions at a park (each arrival and
departure plans the park again; a departure bills the resident charging), the current plan, and its
OCPP 1.6 ``SetChargingProfile`` requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.energy import evcharging
from zhishe.energy.models import ChargingPlan, ChargingSession

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/energy/charging", tags=["energy"])


class SessionCreate(BaseModel):
    """A car at the park: when it came (or will), when it leaves, what it wants and can take."""

    arrival: datetime
    departure: datetime
    energy_kwh: float = Field(gt=0, le=500)
    max_kw: float = Field(gt=0, le=500)
    phase: str = Field("", description="L1, L2, L3, L1L2L3 or empty when not known")
    connector_id: int = Field(1, ge=1, le=1000)
    transaction_id: int = Field(0, ge=0, le=2**31 - 1)
    user_id: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=2**62,
        description="The resident charging, billed when the car leaves; none when unknown",
    )


class SessionLeave(BaseModel):
    """The charger's meter figure for the session, if known."""

    delivered_kwh: float | None = Field(None, ge=0, le=500)


def _session(row: ChargingSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "site_id": row.site_id,
        "connector_id": row.connector_id,
        "transaction_id": row.transaction_id,
        "arrival": row.arrival.isoformat(),
        "departure": row.departure.isoformat(),
        "energy_kwh": row.energy_kwh,
        "max_kw": row.max_kw,
        "phase": row.phase,
        "delivered_kwh": round(row.delivered_kwh, 4),
        "state": row.state,
        "user_id": row.user_id,
        "left_at": row.left_at.isoformat() if row.left_at else None,
    }


def _plan(row: ChargingPlan) -> dict[str, Any]:
    return {
        "id": row.id,
        "site_id": row.site_id,
        "made_at": row.made_at.isoformat(),
        "reason": row.reason,
    } | row.result


@router.get("/{site_id}/sessions")
def list_sessions(
    site_id: IdPath, session: SessionDep, actor: CurrentActor, all: bool = False
) -> list[dict[str, Any]]:
    """Sessions present or expected at the park (``all=true``: every one)."""
    return [
        _session(r)
        for r in evcharging.list_sessions(session=session, actor=actor, site_id=site_id, present=not all)
    ]


@router.post("/{site_id}/sessions", status_code=201)
def add_session(
    site_id: IdPath, body: SessionCreate, session: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    """A car arrives or is booked (``user_id``: the resident charging, billed when it leaves); the
    park is planned again and the plan is in the answer."""
    row, plan = evcharging.add_session(session=session, actor=actor, site_id=site_id, **body.model_dump())
    return {"session": _session(row), "plan": _plan(plan)}


@router.post("/sessions/{session_id}/leave")
def leave(session_id: IdPath, body: SessionLeave, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """A car leaves: its resident, if any, is billed for the energy delivered; the park is planned again."""
    row, plan = evcharging.leave(
        session=session, actor=actor, session_id=session_id, delivered_kwh=body.delivered_kwh
    )
    return {"session": _session(row), "plan": _plan(plan)}


@router.post("/{site_id}/plan", status_code=201)
def replan(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Plan the park again now (after a forecast changed, say)."""
    return _plan(evcharging.replan(session=session, actor=actor, site_id=site_id, reason="asked"))


@router.get("/{site_id}/plan")
def current_plan(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The park's current plan: per slot the base load, the cars' load and the grid load, per car its power."""
    return _plan(evcharging.latest_plan(session=session, actor=actor, site_id=site_id))


@router.get("/{site_id}/ocpp")
def ocpp_profiles(site_id: IdPath, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """OCPP 1.6 ``SetChargingProfile.req`` payloads (TxProfile, Absolute) for every car of the plan."""
    return evcharging.profiles(session=session, actor=actor, site_id=site_id)
