"""Bookings as FHIR R4 ``Appointment`` resources: the status from the process's state map, the
start and end from the slot (or the repair visit; for goods, the moment of the order), the resident
and the listing as participants."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, object_session

from zhishe.core.accounts.models import User
from zhishe.services import engine
from zhishe.services.models import Listing, Provider, Slot, Transaction

__all__ = ["appointment"]

#: How long a repair visit is assumed to take when only its start is known.
VISIT_LENGTH = timedelta(hours=1)
#: The statuses R4 lets an Appointment have without a start and an end (invariant app-3).
_UNTIMED = frozenset({"proposed", "cancelled", "waitlist"})
_PARTICIPANT_STATUS = {"proposed": "needs-action", "pending": "needs-action", "cancelled": "declined"}


def _when(session: Session, txn: Transaction) -> tuple[datetime, datetime] | None:
    slot = session.get(Slot, txn.slot_id) if txn.slot_id else None
    if slot is not None:
        return slot.starts_at, slot.ends_at
    visit = (txn.options or {}).get("visit_at")
    if isinstance(visit, str):
        try:
            start = datetime.fromisoformat(visit)
        except ValueError:
            return None
        return start, start + VISIT_LENGTH
    return None


def appointment(txn: Transaction, *, session: Session | None = None) -> dict[str, Any]:
    """The transaction as a minimal, valid FHIR R4 Appointment."""
    session = session or object_session(txn)
    assert session is not None
    process = engine.get_process(txn.process)
    status = process.fhir_status(txn.state)
    listing = session.get(Listing, txn.listing_id)
    provider = session.get(Provider, txn.provider_id)
    resident = session.get(User, txn.resident_user_id)
    who = _PARTICIPANT_STATUS.get(status, "accepted")
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(txn.id),
        "meta": {"lastUpdated": txn.updated_at.isoformat()},
        "status": status,
        "serviceType": [{"text": listing.title_zh if listing else ""}],
        "description": listing.title_zh if listing else "",
        "created": txn.created_at.isoformat(),
        "participant": [
            {
                "actor": {
                    "reference": f"Patient/{txn.resident_user_id}",
                    "display": resident.display_name if resident else "",
                },
                "required": "required",
                "status": who,
            },
            {
                "actor": {
                    "reference": f"HealthcareService/{txn.listing_id}",
                    "display": provider.name_zh if provider else "",
                },
                "required": "required",
                "status": who,
            },
        ],
    }
    if status == "cancelled":
        resource["cancelationReason"] = {"text": process.state_label(txn.state, "en")}
    when = _when(session, txn)
    if when is None and status not in _UNTIMED:
        # goods from stock have no appointment time: R4 (app-3) still wants one, so the order's
        # own moment stands for it
        when = (txn.created_at, txn.created_at)
    if when is not None:
        resource["start"], resource["end"] = when[0].isoformat(), when[1].isoformat()
        minutes = int((when[1] - when[0]).total_seconds() // 60)
        if minutes > 0:
            resource["minutesDuration"] = minutes
    return resource
