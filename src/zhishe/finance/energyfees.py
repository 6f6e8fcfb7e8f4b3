"""Energy-service fees: EV charging billed to residents, and demand-response incentives paid to
households, posted to the ledger once per source event.

- **EV charging**: the energy is priced with the electricity tariff in force
  (``zhishe.energy.tariff.cost``, over 15-minute buckets from the start of the session, the kWh
  spread evenly over them; tier counting starts at zero for a charging session), plus a service
  fee per kWh (``SERVICE_FEN_PER_KWH``, or the ``finance_ev_service_fen_per_kwh`` setting when the
  deployment sets one). It is charged to the resident's wallet when the wallet holds enough;
  otherwise the whole amount is owed (``Assets:Receivable:Residents:U<user>``), never split.
  ``Dr`` wallet or receivable, ``Cr Income:Energy:Charging`` (energy) and ``Cr
  Income:Energy:Service`` (the fee).
- **Demand-response incentive**: ``Dr Expenses:Energy:DemandResponse`` ``Cr`` the household's
  wallet.
- Each is keyed by ``(kind, source_ref)``: a replay of the same session or incentive posts nothing
  and says so. They arrive from the energy capability's events (``on_event``) or the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid, NotFound
from zhishe.core.events import Event
from zhishe.core.i18n import T
from zhishe.core.notifications.service import notify_org
from zhishe.energy import service as energy
from zhishe.energy import tariff as tariffs
from zhishe.finance import ledger
from zhishe.finance.models import EnergyCharge
from zhishe.finance.money import check_fen, half_even

__all__ = [
    "EVENTS",
    "KINDS",
    "SERVICE_FEN_PER_KWH",
    "charge_ev",
    "list_charges",
    "on_event",
    "pay_incentive",
    "price_ev",
    "resident_receivable",
]

KINDS = ("ev_charging", "dr_incentive")
#: The energy capability's events this module posts from.
EVENTS = ("energy.charging_session_closed", "energy.dr_incentive_due")
#: Default service fee per kWh of EV charging, in fen.
SERVICE_FEN_PER_KWH = 80
#: Longest charging session priced, and most energy in one (milli-kWh).
_MAX_HOURS = 72
_MAX_KWH_MILLI = 500_000


def resident_receivable(user_id: int) -> str:
    """What a resident owes the operator when their wallet was short."""
    return f"Assets:Receivable:Residents:U{user_id}"


def _service_rate() -> int:
    value = getattr(get_settings(), "finance_ev_service_fen_per_kwh", SERVICE_FEN_PER_KWH)
    return int(value)


def _operator_org(session: Session) -> int:
    operator = accounts.first_org_of_kind(session=session, kind=OrgKind.OPERATOR)
    if operator is None:
        raise Invalid(T("there is no operator organisation whose tariff prices charging"))
    return operator.id


def price_ev(
    session: Session,
    *,
    kwh_milli: int,
    started_at: datetime,
    ended_at: datetime,
    tariff_org_id: int | None = None,
) -> dict[str, Any]:
    """The price of a charging session: energy at the tariff in force, plus the service fee."""
    if isinstance(kwh_milli, bool) or not isinstance(kwh_milli, int) or not 0 < kwh_milli <= _MAX_KWH_MILLI:
        raise Invalid(
            T("kwh_milli must be a whole number of watt-hours from 1 to {n}", n=_MAX_KWH_MILLI),
            detail={"field": "kwh_milli"},
        )
    if started_at.tzinfo is None or ended_at.tzinfo is None:
        raise Invalid(T("started_at and ended_at need a timezone offset"), detail={"field": "started_at"})
    if not started_at < ended_at <= started_at + timedelta(hours=_MAX_HOURS):
        raise Invalid(
            T("ended_at must be after started_at, at most {n} hours later", n=_MAX_HOURS),
            detail={"field": "ended_at"},
        )
    org_id = tariff_org_id if tariff_org_id is not None else _operator_org(session)
    priced = energy.tariffs_in_force(session=session, org_id=org_id, carrier="electricity")
    if not priced:
        raise Invalid(T("no electricity tariff is configured to price charging"), detail={"org_id": org_id})
    step = timedelta(minutes=15)
    n = max(1, -(-(ended_at - started_at) // step))
    share = Decimal(kwh_milli) / Decimal(1000) / Decimal(n)
    try:
        bill = tariffs.cost(
            [(started_at + i * step, share) for i in range(n)], priced, tz=get_settings().tz, interval="15min"
        )
    except Invalid as exc:
        raise Invalid(
            T("no electricity tariff is in force for this charging session: {reason}", reason=str(exc)),
            detail={"field": "started_at"},
        ) from exc
    energy_fen = int((bill.total * 100).to_integral_value())
    rate = _service_rate()
    service_fen = half_even(kwh_milli * rate, 1000)
    return {
        "energy_fen": energy_fen,
        "service_fen": service_fen,
        "total_fen": energy_fen + service_fen,
        "service_fen_per_kwh": rate,
        "lines": [
            {"tariff": line.tariff, "period": line.period, "kwh": str(line.kwh), "amount": str(line.amount)}
            for line in bill.lines
        ],
    }


def _existing(session: Session, kind: str, source_ref: str) -> EnergyCharge | None:
    return session.scalar(
        select(EnergyCharge).where(EnergyCharge.kind == kind, EnergyCharge.source_ref == source_ref)
    )


def _check_ref(source_ref: str) -> str:
    ref = (source_ref or "").strip()
    if not ref or len(ref) > 100:
        raise Invalid(T("source_ref must have 1 to 100 characters"), detail={"field": "source_ref"})
    return ref


def _claim(session: Session, charge: EnergyCharge) -> bool:
    """Insert the charge row; False when the same (kind, source_ref) got there first."""
    try:
        with session.begin_nested():
            session.add(charge)
            session.flush()
    except IntegrityError:
        return False
    return True


def _user(session: Session, user_id: int) -> User:
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise Invalid(T("user_id must be a user id"), detail={"field": "user_id"})
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(T("there is no user {id}", id=user_id), detail={"field": "user_id"})
    return user


def charge_ev(
    *,
    session: Session,
    actor: Actor | None,
    source_ref: str,
    user_id: int,
    kwh_milli: int,
    started_at: datetime,
    ended_at: datetime,
    tariff_org_id: int | None = None,
) -> tuple[EnergyCharge, bool]:
    """Bill a charging session to a resident once; returns the charge and whether it is new."""
    if actor is not None:
        authorize(actor, "finance.manage", what="energy charges")
    ref = _check_ref(source_ref)
    found = _existing(session, "ev_charging", ref)
    if found is not None:
        return found, False
    _user(session, user_id)
    price = price_ev(
        session, kwh_milli=kwh_milli, started_at=started_at, ended_at=ended_at, tariff_org_id=tariff_org_id
    )
    wallet = ledger.wallet(user_id)
    from_wallet = -ledger.balance(session, wallet) >= price["total_fen"]
    source = wallet if from_wallet else resident_receivable(user_id)
    charge = EnergyCharge(
        kind="ev_charging",
        source_ref=ref,
        user_id=user_id,
        kwh_milli=kwh_milli,
        energy_fen=price["energy_fen"],
        service_fen=price["service_fen"],
        total_fen=price["total_fen"],
        detail={
            "started_at": started_at.isoformat(),
            "ended_at": ended_at.isoformat(),
            "paid_from": "wallet" if from_wallet else "receivable",
            "service_fen_per_kwh": price["service_fen_per_kwh"],
            "lines": price["lines"],
        },
        at=clock.now(),
    )
    if not _claim(session, charge):
        again = _existing(session, "ev_charging", ref)
        assert again is not None
        return again, False
    entry = ledger.post(
        session,
        kind="ev_charging",
        stream="energy",
        lines=[
            (source, price["total_fen"]),
            ("Income:Energy:Charging", -price["energy_fen"]),
            ("Income:Energy:Service", -price["service_fen"]),
        ],
        memo=f"EV charging {ref}: {kwh_milli / 1000:.3f} kWh",
        ref_type="energy_charge",
        ref_id=charge.id,
        actor=actor,
        no_overdraft=[wallet] if from_wallet else [],
    )
    charge.entry_id = entry.id
    record(
        session=session,
        actor=actor,
        action="finance.energy.charge",
        object_type="energy_charge",
        object_id=charge.id,
        detail={
            "source_ref": ref,
            "user_id": user_id,
            "total_fen": charge.total_fen,
            "paid_from": charge.detail["paid_from"],
        },
    )
    return charge, True


def pay_incentive(
    *, session: Session, actor: Actor | None, source_ref: str, user_id: int, amount_fen: int
) -> tuple[EnergyCharge, bool]:
    """Pay a household's demand-response incentive into its wallet once; returns it and whether new."""
    if actor is not None:
        authorize(actor, "finance.manage", what="energy incentives")
    ref = _check_ref(source_ref)
    found = _existing(session, "dr_incentive", ref)
    if found is not None:
        return found, False
    _user(session, user_id)
    amount = check_fen(amount_fen)
    charge = EnergyCharge(
        kind="dr_incentive",
        source_ref=ref,
        user_id=user_id,
        total_fen=amount,
        detail={},
        at=clock.now(),
    )
    if not _claim(session, charge):
        again = _existing(session, "dr_incentive", ref)
        assert again is not None
        return again, False
    entry = ledger.post(
        session,
        kind="dr_incentive",
        stream="energy",
        lines=[("Expenses:Energy:DemandResponse", amount), (ledger.wallet(user_id), -amount)],
        memo=f"demand-response incentive {ref}",
        ref_type="energy_charge",
        ref_id=charge.id,
        actor=actor,
    )
    charge.entry_id = entry.id
    record(
        session=session,
        actor=actor,
        action="finance.energy.incentive",
        object_type="energy_charge",
        object_id=charge.id,
        detail={"source_ref": ref, "user_id": user_id, "amount_fen": amount},
    )
    return charge, True


def _moment(value: object, field: str) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise Invalid(T("{field} must be an ISO 8601 time", field=field), detail={"field": field}) from exc
    return moment


def _nothing_due(event: Event) -> bool:
    """Whether an energy event has no resident to bill or pay, or no energy or money to post."""
    payload = event.payload
    if payload.get("user_id") is None:
        return True
    amount = payload.get("kwh_milli" if event.name == "energy.charging_session_closed" else "amount_fen")
    return type(amount) is int and amount == 0


def on_event(event: Event, session: Any) -> None:
    """Post from an energy event. ``energy.charging_session_closed``: ``{"session_id", "user_id",
    "kwh_milli", "started_at", "ended_at"}`` (``tariff_org_id`` optional: whose tariff prices the
    energy, the operator's when absent); ``energy.dr_incentive_due``: ``{"event_id", "user_id",
    "amount_fen"}`` (``site_id`` optional, part of the key). Events without a resident to bill or
    pay are ignored: the operator bills them through the API; so are a session that delivered no
    energy and an incentive of nothing."""
    if _nothing_due(event):
        return
    payload = event.payload
    if event.name == "energy.charging_session_closed":
        try:
            with session.begin_nested():  # a session that cannot be priced must not keep the car in
                charge_ev(
                    session=session,
                    actor=None,
                    source_ref=f"charging:{payload['session_id']}",
                    user_id=payload["user_id"],
                    kwh_milli=payload["kwh_milli"],
                    started_at=_moment(payload["started_at"], "started_at"),
                    ended_at=_moment(payload["ended_at"], "ended_at"),
                    tariff_org_id=payload.get("tariff_org_id"),
                )
        except Invalid as exc:
            _unbilled(session, payload, exc)
    elif event.name == "energy.dr_incentive_due":
        site = f":{payload['site_id']}" if payload.get("site_id") is not None else f":u{payload['user_id']}"
        pay_incentive(
            session=session,
            actor=None,
            source_ref=f"dr:{payload['event_id']}{site}",
            user_id=payload["user_id"],
            amount_fen=payload["amount_fen"],
        )


def _unbilled(session: Session, payload: dict[str, Any], exc: Invalid) -> None:
    """A closed charging session that could not be priced (no tariff in force, too long): nothing is
    posted, the refusal is audited and the tariff's organisation is told, to bill it by hand."""
    record(
        session=session,
        actor=None,
        action="finance.energy.unbilled",
        object_type="energy_charging_session",
        object_id=str(payload.get("session_id")),
        object_org_id=payload.get("tariff_org_id"),
        detail={
            "reason": exc.message,
            "user_id": payload.get("user_id"),
            "kwh_milli": payload.get("kwh_milli"),
        },
    )
    org_id = payload.get("tariff_org_id")
    if isinstance(org_id, int):
        notify_org(
            session=session,
            org_id=org_id,
            kind="finance.energy",
            message=T(
                "charging session {id} could not be billed ({reason}); bill it through the energy charges",
                id=payload.get("session_id"),
                reason=exc.message,
            ),
            link="/finance/energy",
            roles=["admin", "steward"],
        )


def list_charges(
    *, session: Session, actor: Actor, kind: str | None = None, limit: int = 500
) -> list[EnergyCharge]:
    """Energy charges and incentives, newest first (audited)."""
    authorize(actor, "finance.read", what="energy charges")
    if kind is not None and kind not in KINDS:
        raise Invalid(T("kind must be one of {values}", values=", ".join(KINDS)), detail={"field": "kind"})
    query = select(EnergyCharge).order_by(EnergyCharge.id.desc()).limit(min(max(limit, 1), 5000))
    if kind:
        query = query.where(EnergyCharge.kind == kind)
    rows = list(session.scalars(query))
    record(
        session=session,
        actor=actor,
        action="finance.energy.read",
        object_type="energy_charge",
        object_id=kind or "*",
        detail={"rows": len(rows)},
    )
    return rows
