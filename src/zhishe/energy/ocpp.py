"""A car's plan as an OCPP 1.6 ``SetChargingProfile`` request carrying a ``TxProfile``.

The payload follows OCPP 1.6 (edition 2) section 6.43 and its JSON schema
(``urn:OCPP:1.6:2019:12:SetChargingProfileRequest``): ``connectorId`` and ``csChargingProfiles``
with ``chargingProfileId``, ``transactionId``, ``stackLevel``, ``chargingProfilePurpose``
(``TxProfile``), ``chargingProfileKind`` (``Absolute``) and a ``chargingSchedule`` of
``duration`` (seconds), ``startSchedule`` (ISO 8601 with offset), ``chargingRateUnit`` (``W`` or
``A``), ``chargingSchedulePeriod`` (``startPeriod`` seconds from the start, ``limit``,
``numberPhases``) and optionally ``minChargingRate``.

Choices:

- the schedule starts when the plan does, or at the car's arrival if that is later, truncated to
  the second; it lasts until the car's departure or the end of the plan, whichever is first;
- one period per planned slot, consecutive periods with the same limit merged;
- limits are rounded down, so a charge point never gets more than the plan: whole watts in ``W``,
  tenths of an ampere in ``A`` (the schema's ``multipleOf 0.1``);
- ``numberPhases`` is 1 for a car on ``L1``, ``L2`` or ``L3`` and 3 otherwise (three-phase, or
  unknown: OCPP's own default). In ``A`` the current per phase is ``W / (voltage * phases)``,
  which for a car of unknown phase never gives more power than planned however it is wired.
"""

from __future__ import annotations

import math
from datetime import UTC, tzinfo
from typing import Any, Literal

from zhishe.core.errors import Invalid
from zhishe.energy.charging import ChargingPlan

__all__ = ["set_charging_profile"]


def set_charging_profile(
    plan: ChargingPlan,
    *,
    session_id: str,
    connector_id: int,
    transaction_id: int,
    charging_profile_id: int,
    stack_level: int = 0,
    charging_rate_unit: Literal["W", "A"] = "W",
    voltage_v: float = 230.0,
    min_charging_rate: float | None = None,
    timezone: tzinfo = UTC,
) -> dict[str, Any]:
    """The OCPP 1.6 ``SetChargingProfile.req`` payload for one session of ``plan``."""
    for name, value in (
        ("connector_id", connector_id),
        ("transaction_id", transaction_id),
        ("charging_profile_id", charging_profile_id),
        ("stack_level", stack_level),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Invalid(
                f"{name} is {value!r}; it must be a whole number, zero or more", detail={"field": name}
            )
    if connector_id == 0:
        raise Invalid(
            "connector_id 0 is the whole charge point; a TxProfile needs a connector",
            detail={"field": "connector_id"},
        )
    if charging_rate_unit not in ("W", "A"):
        raise Invalid(
            f"charging_rate_unit {charging_rate_unit!r} must be 'W' or 'A'",
            detail={"field": "charging_rate_unit"},
        )
    if not (math.isfinite(voltage_v) and voltage_v > 0):
        raise Invalid(f"voltage_v is {voltage_v}; it must be above zero", detail={"field": "voltage_v"})
    if min_charging_rate is not None and not (math.isfinite(min_charging_rate) and min_charging_rate >= 0):
        raise Invalid(
            f"min_charging_rate is {min_charging_rate}; it must be zero or more",
            detail={"field": "min_charging_rate"},
        )
    item = plan.session(session_id)
    session = item.session
    phases = 1 if session.phase in ("L1", "L2", "L3") else 3
    start = max(plan.start, session.arrival).replace(microsecond=0)
    stop = min(session.departure, plan.end)
    duration = max(math.ceil((stop - start).total_seconds()), 1)

    def limit(power_kw: float) -> float:
        watts = power_kw * 1000.0
        if charging_rate_unit == "W":
            return float(math.floor(watts + 1e-6))
        return math.floor(watts / (voltage_v * phases) * 10 + 1e-6) / 10

    periods: list[dict[str, Any]] = []
    for t, power in enumerate(item.power_kw):
        begin, end = plan.slot_starts[t], plan.slot_end(t)
        if end <= start or begin >= stop:
            continue
        offset = max(int((begin - start).total_seconds()), 0)
        rate = limit(power)
        if periods and periods[-1]["limit"] == rate:
            continue
        periods.append({"startPeriod": offset, "limit": rate, "numberPhases": phases})
    if not periods:
        periods.append({"startPeriod": 0, "limit": 0.0, "numberPhases": phases})
    periods[0]["startPeriod"] = 0
    schedule: dict[str, Any] = {
        "duration": duration,
        "startSchedule": start.astimezone(timezone).isoformat(),
        "chargingRateUnit": charging_rate_unit,
        "chargingSchedulePeriod": periods,
    }
    if min_charging_rate is not None:
        schedule["minChargingRate"] = math.floor(min_charging_rate * 10 + 1e-6) / 10
    return {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": charging_profile_id,
            "transactionId": transaction_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": schedule,
        },
    }
