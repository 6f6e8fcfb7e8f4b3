"""Demand-response routes under ``/api/v1/energy/dr``, shaped after OpenADR 3.0's programs, events
and reports (``programName``, ``intervalPeriod`` with an ISO 8601 ``duration``, ``targets``,
``payloadDescriptors``, ``intervals`` of ``payloads``), with Zhishe's own fields beside them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from zhishe.core.deps import CurrentActor, IdPath, SessionDep
from zhishe.energy import demand
from zhishe.energy.models import DemandEvent, DemandProgram

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/energy/dr", tags=["energy"])


class ProgramCreate(BaseModel):
    """A programme (OpenADR 3 ``program``)."""

    org_id: int = Field(ge=1, le=2**62)
    programName: str = Field(min_length=1, max_length=200)
    programLongName: str = Field("", max_length=2000)
    incentive_fen_per_kwh: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=demand.MAX_INCENTIVE_FEN_PER_KWH,
        description="What a household is paid per kWh it sheds in an event, in fen; none when nothing is paid.",
    )


class EventCreate(BaseModel):
    """An event (OpenADR 3 ``event``): a window, a target reduction in kW and the households."""

    programID: int = Field(ge=1, le=2**62)
    eventName: str = Field("", max_length=200)
    start: datetime
    end: datetime
    target_kw: float = Field(gt=0, le=1e6, description="The reduction asked for, in kW.")
    site_ids: list[int] = Field(min_length=1, max_length=10_000)
    baseline: str = Field("high_x_of_y", description="high_x_of_y (10 of 10 similar days) or forecast")


class OptOut(BaseModel):
    """The household that opts out."""

    site_id: int = Field(ge=1, le=2**62)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes or not hours else "")


def _program(p: DemandProgram) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "objectType": "PROGRAM",
        "createdDateTime": p.created_at.isoformat(),
        "programName": p.name,
        "programLongName": p.description,
        "retailerName": str(p.org_id),
        "incentive_fen_per_kwh": p.incentive_fen_per_kwh,
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "DISPATCH_SETPOINT_RELATIVE",
                "units": "KW",
            }
        ],
    }


def _event(session: Any, e: DemandEvent) -> dict[str, Any]:
    participants = demand.participants_of(session=session, event_id=e.id)
    return {
        "id": str(e.id),
        "objectType": "EVENT",
        "programID": str(e.program_id),
        "eventName": e.name,
        "createdDateTime": e.created_at.isoformat(),
        "intervalPeriod": {"start": e.start.isoformat(), "duration": _duration(e.end - e.start)},
        "targets": [
            {"type": "RESOURCE_NAME", "values": [str(p.site_id) for p in participants if not p.opted_out]}
        ],
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "DISPATCH_SETPOINT_RELATIVE",
                "units": "KW",
            }
        ],
        "intervals": [
            {"id": 0, "payloads": [{"type": "DISPATCH_SETPOINT_RELATIVE", "values": [-e.target_kw]}]}
        ],
        "state": e.state,
        "baseline": e.baseline,
        "optedOut": [str(p.site_id) for p in participants if p.opted_out],
    }


@router.get("/programs")
def list_programs(session: SessionDep, actor: CurrentActor, org_id: int) -> list[dict[str, Any]]:
    """An organisation's programmes."""
    return [_program(p) for p in demand.list_programs(session=session, actor=actor, org_id=org_id)]


@router.post("/programs", status_code=201)
def create_program(body: ProgramCreate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create a programme (``incentive_fen_per_kwh``: paid per kWh a household sheds, none if empty)."""
    return _program(
        demand.create_program(
            session=session,
            actor=actor,
            org_id=body.org_id,
            name=body.programName,
            description=body.programLongName,
            incentive_fen_per_kwh=body.incentive_fen_per_kwh,
        )
    )


@router.get("/events")
def list_events(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Events you run or take part in, newest first."""
    return [_event(session, e) for e in demand.list_events(session=session, actor=actor)]


@router.post("/events", status_code=201)
def create_event(body: EventCreate, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Create an event; the households' residents are notified and may opt out until it starts."""
    event = demand.create_event(
        session=session,
        actor=actor,
        program_id=body.programID,
        name=body.eventName,
        start=body.start,
        end=body.end,
        target_kw=body.target_kw,
        site_ids=body.site_ids,
        baseline=body.baseline,
    )
    return _event(session, event)


@router.get("/events/{event_id}")
def read_event(event_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """One event you run or take part in."""
    found = next((e for e in demand.list_events(session=session, actor=actor) if e.id == event_id), None)
    if found is None:
        demand.get_event_or_raise(session=session, event_id=event_id)
        from zhishe.core.errors import Forbidden

        raise Forbidden("you neither run nor take part in this event")
    return _event(session, found)


@router.post("/events/{event_id}/opt-out")
def opt_out(event_id: IdPath, body: OptOut, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Take your household out of the event (until it starts)."""
    demand.opt_out(session=session, actor=actor, event_id=event_id, site_id=body.site_id)
    return _event(session, demand.get_event_or_raise(session=session, event_id=event_id))


@router.post("/events/{event_id}/cancel")
def cancel(event_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Cancel an event that has not ended."""
    return _event(session, demand.cancel_event(session=session, actor=actor, event_id=event_id))


@router.post("/events/{event_id}/report", status_code=201)
def make_report(event_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """Measure the delivered reduction of an ended event (OpenADR 3 ``report``)."""
    demand.make_report(session=session, actor=actor, event_id=event_id)
    return read_report(event_id, session, actor)


@router.get("/events/{event_id}/report")
def read_report(event_id: IdPath, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The event's latest report, as you may see it."""
    shown = demand.read_report(session=session, actor=actor, event_id=event_id)
    event = demand.get_event_or_raise(session=session, event_id=event_id)
    resources = [
        {
            "resourceName": str(h["site"]),
            "reduction_kwh": h["reduction_kwh"],
            "incentive_fen": h.get("incentive_fen"),
            "intervalPeriod": {"start": event.start.isoformat(), "duration": "PT15M"},
            "intervals": [
                {
                    "id": i,
                    "payloads": [
                        {"type": "BASELINE", "values": [h["baseline_kw"][i]]},
                        {"type": "DEMAND", "values": [h["actual_kw"][i]]},
                    ],
                }
                for i in range(len(h["actual_kw"]))
            ],
        }
        for h in shown.get("per_household", [])
    ]
    return {
        "objectType": "REPORT",
        "programID": str(event.program_id),
        "eventID": str(event.id),
        "clientName": "zhishe",
        "reportName": f"delivered reduction of event {event.id}",
        "payloadDescriptors": [
            {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": "BASELINE", "units": "KW"},
            {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": "DEMAND", "units": "KW"},
        ],
        "resources": resources,
        "summary": {k: v for k, v in shown.items() if k != "per_household"},
    }
