"""The process engine: runs the state machines declared in ``services/processes/`` (their format,
loading and validation are in ``process_defs``).

Running: ``start`` creates a transaction in ``initial`` after the start actions; ``fire`` takes a
transition from the current state, checked against the actor, with the transaction's row locked;
``run_timers`` fires the due timers, each order in its own database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, object_session

from zhishe.core import clock, events
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound, ZhisheError
from zhishe.core.i18n import T
from zhishe.services.models import Listing, Provider, Transaction, TransactionEvent
from zhishe.services.process_defs import (
    ACTOR_KINDS,
    BY_KINDS,
    FHIR_STATUSES,
    Process,
    ProcessError,
    State,
    Transition,
    action,
    action_fn,
    get_process,
    guard,
    guard_fn,
    load_processes,
    parse_duration,
    parse_process,
    registered_actions,
)

__all__ = [
    "ACTOR_KINDS",
    "FHIR_STATUSES",
    "Context",
    "Option",
    "Process",
    "ProcessError",
    "State",
    "Transition",
    "action",
    "actor_kinds",
    "available",
    "fire",
    "get_process",
    "guard",
    "load_processes",
    "parse_duration",
    "parse_process",
    "registered_actions",
    "run_timers",
    "start",
    "sweep",
]

log = logging.getLogger(__name__)


# --- running ----------------------------------------------------------------------------------------


@dataclass
class Context:
    """What an action sees: the transaction (locked), the transition, who acts and with what."""

    session: Session
    txn: Transaction
    transition: str
    actor: Actor | None
    by: str
    params: dict[str, Any]
    now: datetime
    #: Facts the actions want kept on the transaction's event (amounts, reasons).
    detail: dict[str, Any] = field(default_factory=dict)
    #: A timer an action arms instead of the declared ones: ``(at, transition)``.
    timer: tuple[datetime, str] | None = None

    @cached_property
    def listing(self) -> Listing:
        """The transaction's listing."""
        found = self.session.get(Listing, self.txn.listing_id)
        assert found is not None
        return found

    @cached_property
    def provider(self) -> Provider:
        """The transaction's provider."""
        found = self.session.get(Provider, self.txn.provider_id)
        assert found is not None
        return found

    def arm(self, at: datetime, transition: str) -> None:
        """Arm ``transition`` at ``at`` once this transition is done (e.g. a group-buy deadline)."""
        self.timer = (at, transition)


@dataclass(frozen=True, slots=True)
class Option:
    """A transition an actor may take now, and as whom."""

    transition: Transition
    by: str


def _provider_org(session: Session, txn: Transaction) -> int | None:
    provider = session.get(Provider, txn.provider_id)
    return provider.org_id if provider else None


def actor_kinds(session: Session, txn: Transaction, actor: Actor | None) -> list[str]:
    """The parts ``actor`` may play in ``txn``: resident, provider, operator (in that order)."""
    if actor is None:
        return []
    kinds = []
    if actor.user_id is not None and actor.user_id == txn.resident_user_id:
        kinds.append("resident")
    if can(actor, "services.provide", org_id=_provider_org(session, txn)):
        kinds.append("provider")
    if can(actor, "services.operate"):
        kinds.append("operator")
    return kinds


def _check_actor(session: Session, txn: Transaction, actor: Actor | None, kind: str, name: str) -> None:
    if kind == "resident":
        if actor is None or actor.user_id != txn.resident_user_id:
            raise Forbidden(
                T("only the resident who booked may {transition} this order", transition=name),
                detail={"transition": name},
            )
    elif kind == "provider":
        if actor is None:
            raise Forbidden(T("only staff of this provider may do this"), detail={"transition": name})
        authorize(actor, "services.provide", org_id=_provider_org(session, txn), what=f"order {txn.id}")
    elif kind == "operator":
        if actor is None:
            raise Forbidden(T("only the operator may do this"), detail={"transition": name})
        authorize(actor, "services.operate", what=f"order {txn.id}")
    elif actor is not None and actor.via != "cli":
        raise Forbidden(
            T("{transition} happens on its own and cannot be taken by hand", transition=name),
            detail={"transition": name},
        )


def _lock(session: Session, transaction_id: int) -> Transaction:
    txn = session.scalar(
        select(Transaction)
        .where(Transaction.id == transaction_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if txn is None:
        raise NotFound(T("there is no order {id}", id=transaction_id), detail={"transaction": transaction_id})
    return txn


def _run(ctx: Context, names: Iterable[str]) -> None:
    for name in names:
        action_fn(name)(ctx)


def _arm(
    process: Process, txn: Transaction, settings: Mapping[str, Any], ctx_timer: tuple[datetime, str] | None
) -> None:
    """Arm the earliest timer of the transaction's state (or the one an action asked for)."""
    if ctx_timer is not None:
        txn.timer_at, txn.timer_transition = ctx_timer
        return
    best: tuple[datetime, str] | None = None
    for t in process.outgoing(txn.state):
        if t.delay is not None:
            at = txn.state_entered_at + t.delay.resolve(settings)
            if best is None or at < best[0]:
                best = (at, t.name)
    txn.timer_at, txn.timer_transition = best if best else (None, "")


def _record_step(
    ctx: Context, process: Process, transition: str, before: str, org_id: int | None
) -> TransactionEvent:
    txn = ctx.txn
    detail = dict(ctx.detail)
    reason = ctx.params.get("reason")
    if isinstance(reason, str) and reason.strip():
        detail.setdefault("reason", reason.strip()[:500])
    event = TransactionEvent(
        transaction_id=txn.id,
        at=ctx.now,
        transition=transition,
        from_state=before,
        to_state=txn.state,
        actor_kind="system" if ctx.by == "gateway" else ctx.by,
        actor_user_id=ctx.actor.user_id if ctx.actor else None,
        detail=detail,
    )
    ctx.session.add(event)
    record(
        session=ctx.session,
        actor=ctx.actor,
        action=f"services.order.{transition}",
        object_type="services_transaction",
        object_id=txn.id,
        object_org_id=org_id,
        detail={"process": process.name, "from": before, "to": txn.state, "by": ctx.by, **detail},
    )
    ctx.session.flush()
    events.publish(
        events.Event(
            "services.order.transition",
            {
                "id": txn.id,
                "process": process.name,
                "transition": transition,
                "from": before,
                "to": txn.state,
            },
        ),
        ctx.session,
    )
    return event


_START_KEYS = ("slot_id", "batch_id", "group_id", "quantity", "options", "note")


def _start_values(params: Mapping[str, Any]) -> dict[str, Any]:
    quantity = params.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 999:
        raise Invalid(T("quantity must be a whole number from 1 to 999"), detail={"field": "quantity"})
    options = params.get("options") or {}
    if not isinstance(options, dict) or len(str(options)) > 4000:
        raise Invalid(T("options must be a small JSON object"), detail={"field": "options"})
    note = params.get("note") or ""
    if not isinstance(note, str) or len(note) > 2000:
        raise Invalid(T("the note is at most 2000 characters"), detail={"field": "note"})
    values: dict[str, Any] = {"quantity": quantity, "options": options, "note": note.strip()}
    for key in ("slot_id", "batch_id", "group_id"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise Invalid(T("{field} must be a positive id", field=key), detail={"field": key})
        values[key] = value
    return values


def start(
    session: Session, *, listing: Listing, actor: Actor, params: Mapping[str, Any] | None = None
) -> Transaction:
    """Start a transaction of ``listing``'s process for the resident ``actor``: run the start actions
    (pricing, availability...), create the transaction in the initial state and arm its timers.
    Raises before or inside the caller's transaction; the caller rolls back on error."""
    authorize(actor, "services.book", what=f"listing {listing.id}")
    if actor.user_id is None:
        raise Forbidden(T("sign in to book community services"))
    process = get_process(listing.process)
    given = dict(params or {})
    values = _start_values(given)
    now = clock.now()
    txn = Transaction(
        process=process.name,
        listing_id=listing.id,
        provider_id=listing.provider_id,
        resident_user_id=actor.user_id,
        state=process.initial,
        state_entered_at=now,
        timer_transition="",
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(txn)
    session.flush()
    ctx = Context(
        session=session, txn=txn, transition="start", actor=actor, by="resident", params=given, now=now
    )
    _run(ctx, process.start_actions)
    txn.state = process.initial
    txn.state_entered_at = now
    _arm(process, txn, listing.settings or {}, ctx.timer)
    _record_step(ctx, process, "start", "", _provider_org(session, txn))
    return txn


def _pick(process: Process, txn: Transaction, name: str, kind: str) -> Transition:
    here = [t for t in process.outgoing(txn.state) if t.name == name]
    if not here:
        allowed = sorted({t.name for t in process.outgoing(txn.state)})
        raise Conflict(
            T(
                "cannot {transition} an order that is {state}; allowed now: {allowed}",
                transition=name,
                state=txn.state,
                allowed=", ".join(allowed) or "-",
            ),
            detail={"transition": name, "state": txn.state, "allowed": allowed},
        )
    for t in here:
        if kind in t.actors:
            return t
    who = sorted({a for t in here for a in t.actors})
    raise Forbidden(
        T("only the {who} may {transition} this order", who=" / ".join(who), transition=name),
        detail={"transition": name, "actors": who},
    )


def _guard_reason(ctx: Context, t: Transition) -> str | None:
    return guard_fn(t.guard)(ctx) if t.guard else None


def fire(
    session: Session,
    *,
    transaction_id: int,
    transition: str,
    actor: Actor | None,
    by: str,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Transaction:
    """Take ``transition`` on a transaction as ``by`` (resident, provider, operator, timer, system or
    gateway): check it is allowed from the current state for this actor, lock the row, run the
    actions in order, move the state, log the step and re-arm the timers. An error raised by any
    action aborts the transition; the caller's rollback undoes what the actions wrote."""
    if by not in BY_KINDS:
        raise Invalid(T("by must be one of {values}", values=", ".join(BY_KINDS)), detail={"by": by})
    kind = "system" if by == "gateway" else by
    txn = _lock(session, transaction_id)
    process = get_process(txn.process)
    declared = _pick(process, txn, transition, kind)
    _check_actor(session, txn, actor, kind, transition)
    moment = now or clock.now()
    ctx = Context(
        session=session,
        txn=txn,
        transition=transition,
        actor=actor,
        by=by,
        params=dict(params or {}),
        now=moment,
    )
    reason = _guard_reason(ctx, declared)
    if reason:
        raise Conflict(reason, detail={"transition": transition, "state": txn.state})
    before = txn.state
    _run(ctx, declared.actions)
    txn.state = declared.to
    txn.state_entered_at = moment
    txn.updated_at = moment
    _arm(process, txn, ctx.listing.settings or {}, ctx.timer)
    _record_step(ctx, process, transition, before, ctx.provider.org_id)
    return txn


def available(txn: Transaction, actor: Actor | None, *, session: Session | None = None) -> list[Option]:
    """The transitions ``actor`` may take on ``txn`` now (guards checked), with the part they play."""
    session = session or object_session(txn)
    if session is None or actor is None:
        return []
    process = get_process(txn.process)
    kinds = actor_kinds(session, txn, actor)
    options: list[Option] = []
    seen: set[str] = set()
    for t in process.outgoing(txn.state):
        kind = next((k for k in kinds if k in t.actors), None)
        if kind is None or t.name in seen:
            continue
        ctx = Context(
            session=session, txn=txn, transition=t.name, actor=actor, by=kind, params={}, now=clock.now()
        )
        if _guard_reason(ctx, t):
            continue
        seen.add(t.name)
        options.append(Option(t, kind))
    return options


def run_timers(
    session: Session,
    now: datetime | None = None,
    *,
    limit: int = 1000,
    fired_log: list[tuple[int, str, str]] | None = None,
) -> int:
    """Fire every timer due at ``now`` (default: the clock), oldest first, each order committed on its
    own so that one failing order does not hold back the rest; returns how many fired. Running it
    again fires nothing twice: a fired timer is re-armed for the new state or cleared. It commits
    (and rolls back failures), so give it a session of its own. ``fired_log`` collects
    ``(transaction id, transition, new state)`` of each timer fired."""
    moment = now or clock.now()
    fired = 0
    failed: set[int] = set()
    while True:
        query = (
            select(Transaction.id)
            .where(Transaction.timer_at.is_not(None), Transaction.timer_at <= moment)
            .order_by(Transaction.timer_at, Transaction.id)
            .limit(limit)
        )
        if failed:
            query = query.where(Transaction.id.not_in(failed))
        due = list(session.scalars(query))
        if not due:
            return fired
        for transaction_id in due:
            try:
                txn = _lock(session, transaction_id)
                if txn.timer_at is None or txn.timer_at > moment or not txn.timer_transition:
                    session.rollback()  # fired meanwhile by another worker
                    continue
                name = txn.timer_transition
                done = fire(
                    session,
                    transaction_id=transaction_id,
                    transition=name,
                    actor=None,
                    by="timer",
                    now=moment,
                )
                state = done.state
                session.commit()
                fired += 1
                if fired_log is not None:
                    fired_log.append((transaction_id, name, state))
            except (ZhisheError, SQLAlchemyError) as exc:
                session.rollback()
                failed.add(transaction_id)
                log.warning("timer of order %s failed: %s", transaction_id, exc)


def sweep(session: Session, now: datetime | None = None) -> dict[str, int]:
    """The marketplace's periodic work: fire due timers (payment expiry, auto-decline, review windows)."""
    return {"timers_fired": run_timers(session, now)}
