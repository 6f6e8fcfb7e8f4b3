"""Appending to the audit chain, reading it, and verifying it.

Each event's hash is SHA-256 over a canonical JSON of its fields and the previous event's hash.
Appenders first bump the single ``audit_head`` row, which takes the write lock (SQLite) or the row
lock (PostgreSQL), so concurrent appends form one chain and never fork it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent, AuditHead
from zhishe.core.auth import Actor, authorize
from zhishe.core.context import current_request_id
from zhishe.core.errors import Invalid
from zhishe.core.pagination import Page, keyset_page

__all__ = ["GENESIS", "VerifyResult", "ensure_head", "event_hash", "list_events", "record", "verify"]

GENESIS = "0" * 64


def _canonical(event: Any) -> bytes:
    fields = [
        event.id,
        event.occurred_at.isoformat(timespec="microseconds"),
        event.actor_user_id,
        event.actor,
        event.org_id,
        event.action,
        event.object_type,
        event.object_id,
        event.object_org_id,
        event.request_id,
        event.detail,
        event.prev_hash,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def event_hash(event: Any) -> str:
    """The SHA-256 (hex) an event should carry."""
    return hashlib.sha256(_canonical(event)).hexdigest()


def ensure_head(session: Session) -> None:
    """Create the chain's head row if the database has none yet."""
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, last_id=0, last_hash=GENESIS))
        session.flush()


def record(
    *,
    session: Session,
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: str | int,
    object_org_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the chain, inside the caller's transaction."""
    row = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(last_id=AuditHead.last_id + 1)
        .returning(AuditHead.last_id, AuditHead.last_hash)
    ).one_or_none()
    if row is None:
        ensure_head(session)
        return record(
            session=session,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_org_id=object_org_id,
            detail=detail,
        )
    new_id, prev_hash = row
    event = AuditEvent(
        id=new_id,
        occurred_at=clock.now(),
        actor_user_id=actor.user_id if actor else None,
        actor=(actor.username if actor else "anonymous")[:100],
        org_id=actor.org_id if actor else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        object_org_id=object_org_id,
        request_id=(current_request_id.get() or "")[:64],
        detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=event.hash))
    return event


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the chain."""

    ok: bool
    count: int
    broken_at: int | None = None
    reason: str = ""


def _walk(session: Session, batch: int = 5000) -> Iterator[Any]:
    """Every event as a plain row (not ORM objects, so the caller's session is left alone)."""
    table = AuditEvent.__table__
    last = 0
    while True:
        rows = session.execute(select(table).where(table.c.id > last).order_by(table.c.id).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify(*, session: Session, actor: Actor) -> VerifyResult:
    """Walk the whole chain and say whether it is intact, or which event breaks it and how."""
    authorize(actor, "audit.verify")
    expected_prev, expected_id, count = GENESIS, 1, 0
    for event in _walk(session):
        if event.id != expected_id:
            return VerifyResult(False, count, expected_id, f"event {expected_id} is missing")
        if event.prev_hash != expected_prev:
            return VerifyResult(
                False,
                count,
                event.id,
                f"event {event.id} does not follow event {event.id - 1}: prev_hash differs",
            )
        if event_hash(event) != event.hash:
            return VerifyResult(
                False, count, event.id, f"event {event.id} was altered: its contents do not match its hash"
            )
        expected_prev, expected_id, count = event.hash, event.id + 1, count + 1
    head = session.execute(select(AuditHead.__table__).where(AuditHead.__table__.c.id == 1)).first()
    if head is not None and (head.last_id != count or head.last_hash != expected_prev):
        return VerifyResult(
            False,
            count,
            head.last_id,
            f"the chain ends at event {count} but its head names event {head.last_id}",
        )
    return VerifyResult(True, count)


def list_events(
    *,
    session: Session,
    actor: Actor,
    user: str | None = None,
    org_id: int | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[AuditEvent]:
    """Events the actor may see, newest first. Stewards see events on their own organisation's objects."""
    authorize(actor, "audit.read")
    query = select(AuditEvent)
    if not actor.is_platform_admin:
        query = query.where(AuditEvent.object_org_id == actor.org_id)
    if user:
        query = query.where(AuditEvent.actor == user)
    if org_id is not None:
        query = query.where((AuditEvent.org_id == org_id) | (AuditEvent.object_org_id == org_id))
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if since and since.tzinfo is None:
        raise Invalid(
            "'since' needs a timezone offset, e.g. 2026-01-01T00:00:00+08:00", detail={"parameter": "since"}
        )
    if until and until.tzinfo is None:
        raise Invalid(
            "'until' needs a timezone offset, e.g. 2026-01-01T00:00:00+08:00", detail={"parameter": "until"}
        )
    if since:
        query = query.where(AuditEvent.occurred_at >= since)
    if until:
        query = query.where(AuditEvent.occurred_at < until)
    page = keyset_page(session, query, AuditEvent.id, after=after, limit=limit, newest_first=True)
    record(
        session=session,
        actor=actor,
        action="audit.read",
        object_type="audit",
        object_id="events",
        object_org_id=None if actor.is_platform_admin else actor.org_id,
        detail={"count": len(page.items)},
    )
    return page
