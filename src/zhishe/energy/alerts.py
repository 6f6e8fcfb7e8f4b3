"""The alert queue: alerts raised by the detectors, each with the words saying why, and the
acknowledge and resolve actions.

Raising is idempotent: the same site, kind, subject and start time is one alert however often the
detectors run. A new alert notifies the household's residents and the operator's dispatchers. An
inactivity alert is also published on the core event bus as ``energy.inactivity_alert``, so that
the elderly-care capability can take it up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock, events
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role
from zhishe.core.errors import Conflict, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.energy.models import Alert
from zhishe.iot import service as iot
from zhishe.iot.models import Site, SiteMember

__all__ = [
    "STATES",
    "NewAlert",
    "acknowledge",
    "get_alert_or_raise",
    "list_alerts",
    "raise_alerts",
    "read_alert",
    "resolve",
]

STATES = ("open", "acknowledged", "resolved")
INACTIVITY_EVENT = "energy.inactivity_alert"


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What a detector found, to be raised on a site."""

    kind: str
    subject: str
    started_at: datetime
    reason: str
    params: dict[str, Any]
    severity: str = "warning"
    ended_at: datetime | None = None
    datastream_id: int | None = None


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in params.items()}


def raise_alerts(*, session: Session, site: Site, found: Iterable[NewAlert]) -> list[Alert]:
    """Store the alerts not raised before; notify and publish the new ones. Returns the new ones."""
    created: list[Alert] = []
    for item in found:
        exists = session.scalars(
            select(Alert.id).where(
                Alert.site_id == site.id,
                Alert.kind == item.kind,
                Alert.subject == item.subject,
                Alert.started_at == item.started_at,
            )
        ).first()
        if exists is not None:
            continue
        alert = Alert(
            site_id=site.id,
            datastream_id=item.datastream_id,
            kind=item.kind,
            subject=item.subject,
            severity=item.severity,
            started_at=item.started_at,
            ended_at=item.ended_at,
            reason=item.reason,
            params=_json_params(item.params),
            state="open",
            raised_at=clock.now(),
        )
        session.add(alert)
        session.flush()
        created.append(alert)
        record(
            session=session,
            actor=None,
            action="energy.alert.raise",
            object_type="energy_alert",
            object_id=alert.id,
            object_org_id=site.org_id,
            detail={"site": site.code, "kind": item.kind, "subject": item.subject},
        )
        message = T("alert at {site}: {kind}", site=site.name, kind=item.kind)
        residents = session.scalars(select(SiteMember.user_id).where(SiteMember.site_id == site.id)).all()
        notifications.notify_users(
            session=session,
            user_ids=residents,
            kind="energy.alert",
            message=message,
            link=f"/energy/alerts/{alert.id}",
        )
        notifications.notify_org(
            session=session,
            org_id=site.org_id,
            kind="energy.alert",
            message=message,
            link=f"/energy/alerts/{alert.id}",
            roles=[Role.DISPATCHER, Role.ADMIN],
        )
        if item.kind == "inactivity":
            events.publish(
                events.Event(
                    INACTIVITY_EVENT,
                    {
                        "alert_id": alert.id,
                        "site_id": site.id,
                        "site": site.code,
                        "started_at": item.started_at.isoformat(),
                        "reason": item.reason,
                        "params": alert.params,
                    },
                ),
                session,
            )
    return created


def get_alert_or_raise(*, session: Session, alert_id: int) -> Alert:
    """The alert with this id, or NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(T("there is no alert {id}", id=alert_id), detail={"alert": alert_id})
    return alert


def read_alert(*, session: Session, actor: Actor, alert_id: int) -> Alert:
    """One alert ``actor`` may see (audited)."""
    alert = get_alert_or_raise(session=session, alert_id=alert_id)
    site = _visible(session, actor, alert)
    record(
        session=session,
        actor=actor,
        action="energy.alert.read",
        object_type="energy_alert",
        object_id=alert.id,
        object_org_id=site.org_id,
    )
    return alert


def _visible(session: Session, actor: Actor, alert: Alert) -> Site:
    site = iot.get_site_or_raise(session=session, site_id=alert.site_id)
    iot.site_access(session=session, actor=actor, site=site)
    return site


def list_alerts(
    *,
    session: Session,
    actor: Actor,
    site_id: int | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts ``actor`` may see, newest first: their household's, or their organisation's sites'."""
    query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
    if state:
        query = query.where(Alert.state == state)
    if site_id is not None:
        site = iot.get_site_or_raise(session=session, site_id=site_id)
        iot.site_access(session=session, actor=actor, site=site)
        query = query.where(Alert.site_id == site_id)
    else:
        sites = [s.id for s in iot.list_sites(session=session, actor=actor, limit=100_000)]
        query = query.where(Alert.site_id.in_(sites))
    alerts = list(session.scalars(query))
    record(
        session=session,
        actor=actor,
        action="energy.alert.list",
        object_type="iot_site",
        object_id=site_id or 0,
        detail={"count": len(alerts)},
    )
    return alerts


def _change(session: Session, actor: Actor, alert_id: int, to: str, note: str) -> Alert:
    alert = get_alert_or_raise(session=session, alert_id=alert_id)
    site = _visible(session, actor, alert)
    if alert.state == "resolved":
        raise Conflict(T("the alert is already resolved"), detail={"state": alert.state})
    if to == "acknowledged" and alert.state != "open":
        raise Conflict(T("only an open alert can be acknowledged"), detail={"state": alert.state})
    now = clock.now()
    if to == "acknowledged":
        alert.acknowledged_at, alert.acknowledged_by = now, actor.username
    else:
        alert.resolved_at, alert.resolved_by = now, actor.username
    alert.state = to
    if note:
        alert.note = (alert.note + "\n" if alert.note else "") + note
    session.flush()
    record(
        session=session,
        actor=actor,
        action=f"energy.alert.{'acknowledge' if to == 'acknowledged' else 'resolve'}",
        object_type="energy_alert",
        object_id=alert.id,
        object_org_id=site.org_id,
        detail={"note": note[:200]} if note else {},
    )
    return alert


def acknowledge(*, session: Session, actor: Actor, alert_id: int, note: str = "") -> Alert:
    """Say the alert has been seen and is being handled."""
    return _change(session, actor, alert_id, "acknowledged", note)


def resolve(*, session: Session, actor: Actor, alert_id: int, note: str = "") -> Alert:
    """Close the alert, with a note of what was found or done."""
    return _change(session, actor, alert_id, "resolved", note)
