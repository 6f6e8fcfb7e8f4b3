"""Emergency incidents: declaring one (from scratch, from a cluster of reports, or from an event on
the core bus), naming people to its roles across departments, tasks with owners and reminders, the
timeline of everything that happened, public notices to the residents of the area, and the
post-incident review.

Decisions:

- Who declares: dispatchers, stewards and administrators of the operator or of the data bureau, and
  platform administrators. The declaring organisation coordinates the incident: the declarer becomes
  commander and the organisation gets open liaison and scribe places. Incidents declared from an
  event belong to the operator (else the data bureau) and wait for it to name a commander.
- Roles are commander, liaison, scribe, participant and observer. A department that joins gets open
  places (liaison and participant by default) that only its own administrators and dispatchers fill
  with its own active staff. There is one commander; naming another hands command over.
  ``roles_complete_at`` is when the last open place was filled; a new open place clears it.
- States: active ⇄ stable → closed. Closed is final: a flare-up is declared as a new incident (its
  ``source_detail`` may say which one it follows), so a review never changes after the fact. A closed
  incident takes only log entries (for the review).
- ``first_response_at`` is the first action by a person other than the declarer.
- Clusters: open reports of the last ``incident_cluster_hours`` hours, counted per category and per
  community (the report's area's community ancestor; a report with only a position counts for the
  community of the nearest building within 300 m, and is skipped otherwise). More than
  ``incident_cluster_reports`` of them make a proposal. While a proposal is open it grows with new
  reports instead of being proposed again; a declared one blocks new proposals until its incident
  closes, and a dismissed one until its window has passed.
- A notice is public from the moment it is posted: the public page of an incident exists only once it
  has a notice, and shows the notices, state, kind, severity and area — never the title, the
  description, the timeline or any staff name.
- ``detect_clusters`` and ``remind`` are sweeps for the scheduler; ``register`` subscribes
  ``on_event`` to the bus.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from zhishe.core import clock, events
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.areas.models import Area
from zhishe.core.audit.service import record
from zhishe.core.auth import STAFF_ROLES, Actor, OrgKind, Role, system_actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import Message, T, stored
from zhishe.core.notifications import service as notifications
from zhishe.core.pagination import Page, keyset_page
from zhishe.participation.models import (
    Category,
    Incident,
    IncidentEntry,
    IncidentNotice,
    IncidentProposal,
    IncidentRole,
    IncidentTask,
    Request,
    Residence,
)
from zhishe.participation.service import CLOSED_STATES, distance_m

__all__ = [
    "DECLARE_EVENT",
    "DEPARTMENT_ROLES",
    "KINDS",
    "OUTBREAK_EVENT",
    "ROLES",
    "SOURCES",
    "STATES",
    "Access",
    "IncidentView",
    "PublicIncident",
    "add_department",
    "add_entry",
    "add_task",
    "assign_role",
    "complete_task",
    "declare",
    "declare_choices",
    "declare_from_event",
    "detect_clusters",
    "detect_now",
    "dismiss_proposal",
    "entries",
    "get_incident",
    "incident_view",
    "is_late",
    "list_incidents",
    "list_proposals",
    "may_declare",
    "on_event",
    "proposal_labels",
    "public_incidents",
    "public_view",
    "publish_notice",
    "register",
    "release_role",
    "remind",
    "review",
    "set_severity",
    "set_state",
]

KINDS = ("flood", "fire", "gas_leak", "outbreak", "power_outage", "water_outage", "public_safety", "other")
ROLES = ("commander", "liaison", "scribe", "participant", "observer")
STATES = ("active", "stable", "closed")
SOURCES = ("manual", "cluster", "event")
#: Open places a joining department gets unless told otherwise.
DEPARTMENT_ROLES = ("liaison", "participant")
#: Open places of the coordinating organisation besides its commander.
_COMMAND_STAFF = ("liaison", "scribe")
_MOVES = {"active": frozenset({"stable", "closed"}), "stable": frozenset({"active", "closed"})}
_COORDINATING_KINDS = frozenset({OrgKind.OPERATOR, OrgKind.DATA_BUREAU})
_DECLARER_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER, Role.STEWARD})
#: Who names an organisation's people and handles its side of an incident.
_NAMER_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})
#: Tasks due within this much time (or overdue) get one reminder.
REMIND_BEFORE = timedelta(minutes=30)
#: A report with only a position counts for the nearest building within this distance.
NEAREST_BUILDING_METRES = 300.0
OUTBREAK_EVENT = "health.outbreak_alert"
DECLARE_EVENT = "participation.declare_incident"
_MAX_TITLE = 200
_MAX_TEXT = 4000
_MAX_DESCRIPTION = 10000


# --- small helpers ---------------------------------------------------------------------------------


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise Invalid(T("{field} must be text", field=name), detail={"field": name})
    if required and not text:
        raise Invalid(T("{field} is required", field=name), detail={"field": name})
    if len(text) > limit:
        raise Invalid(
            T("{field} is longer than {limit} characters", field=name, limit=limit), detail={"field": name}
        )
    return text


def _severity(value: object, name: str = "severity") -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise Invalid(T("{field} must be a whole number from 1 to 4", field=name), detail={"field": name})
    return value


def _kind(value: object, name: str = "kind") -> str:
    if value not in KINDS:
        raise Invalid(
            T("{field} must be one of {choices}", field=name, choices=", ".join(KINDS)),
            detail={"field": name},
        )
    return str(value)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(T("{field} needs a time zone offset", field=name), detail={"field": name})
    return value


def _get(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(T("there is no incident {id}", id=incident_id), detail={"incident": incident_id})
    return incident


def _roles(session: Session, incident_id: int) -> list[IncidentRole]:
    return list(
        session.scalars(
            select(IncidentRole).where(IncidentRole.incident_id == incident_id).order_by(IncidentRole.id)
        )
    )


def _org(session: Session, org_id: object, name: str = "org_id") -> Organisation:
    org = (
        session.get(Organisation, org_id)
        if isinstance(org_id, int) and not isinstance(org_id, bool)
        else None
    )
    if org is None or not org.is_active:
        raise Invalid(T("organisation {id} does not exist or is inactive", id=org_id), detail={"field": name})
    return org


def _staff_of(session: Session, user_id: object, org_id: int, name: str) -> User:
    user = session.get(User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None
    if user is None or not user.is_active or user.org_id != org_id or user.role not in STAFF_ROLES:
        raise Invalid(
            T("user {id} is not active staff of organisation {org}", id=user_id, org=org_id),
            detail={"field": name},
        )
    return user


def _local(value: datetime) -> str:
    return value.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(get_settings().tz).isoformat() if value is not None else None


def _seconds(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return int((later - earlier).total_seconds())


def _entry(
    session: Session,
    incident: Incident,
    actor: Actor | None,
    kind: str,
    message: str,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEntry:
    """Append a line to the timeline; a ``Message`` is kept so the line shows in the reader's language."""
    data = dict(detail or {})
    if isinstance(message, Message):
        data["message"] = stored(message)
    entry = IncidentEntry(
        incident_id=incident.id,
        at=at or clock.now(),
        kind=kind,
        text=str(message),
        actor_user_id=actor.user_id if actor else None,
        detail=data,
    )
    session.add(entry)
    return entry


def _audit(
    session: Session,
    actor: Actor | None,
    action: str,
    incident: Incident,
    detail: dict[str, Any] | None = None,
) -> None:
    record(
        session=session,
        actor=actor,
        action=f"participation.incident.{action}",
        object_type="participation_incident",
        object_id=incident.id,
        object_org_id=incident.org_id,
        detail=detail or {},
    )


def _touch(incident: Incident, actor: Actor, now: datetime) -> None:
    """Note the first response: the first action of a person other than the declarer."""
    if (
        incident.first_response_at is None
        and actor.user_id is not None
        and actor.user_id != incident.declared_by_user_id
    ):
        incident.first_response_at = now


def _open(incident: Incident) -> None:
    if incident.state == "closed":
        raise Conflict(
            T("incident {id} is closed; closed incidents are final", id=incident.id),
            detail={"state": incident.state},
        )


def _holders(rows: Iterable[IncidentRole], but: int | None = None) -> set[int]:
    return {r.user_id for r in rows if r.user_id is not None and r.user_id != but}


def _link(incident: Incident) -> str:
    return f"/incidents/{incident.id}"


def _check_complete(incident: Incident, rows: Sequence[IncidentRole], now: datetime) -> None:
    if all(r.user_id is not None for r in rows):
        if incident.roles_complete_at is None:
            incident.roles_complete_at = now
    else:
        incident.roles_complete_at = None


# --- the area tree -----------------------------------------------------------------------------------


class _Tree:
    """The area list in memory: parents, children, levels and positions."""

    def __init__(self, session: Session) -> None:
        self.areas = {a.id: a for a in session.scalars(select(Area))}
        self.children: dict[int, list[int]] = defaultdict(list)
        for area in self.areas.values():
            if area.parent_id is not None:
                self.children[area.parent_id].append(area.id)

    def community_of(self, area_id: int | None) -> int | None:
        """The area itself if it is a community, else its community ancestor (None above or outside one)."""
        seen: set[int] = set()
        while area_id is not None and area_id not in seen:
            seen.add(area_id)
            area = self.areas.get(area_id)
            if area is None:
                return None
            if area.level == "community":
                return area.id
            area_id = area.parent_id
        return None

    def descendants(self, area_id: int) -> set[int]:
        """The area and every area under it."""
        found = {area_id}
        todo = [area_id]
        while todo:
            for child in self.children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def nearest_building(self, lat: float, lon: float, within: float = NEAREST_BUILDING_METRES) -> int | None:
        best: tuple[float, int] | None = None
        for area in self.areas.values():
            if area.level != "building" or area.lat is None or area.lon is None:
                continue
            d = distance_m(lat, lon, area.lat, area.lon)
            if d <= within and (best is None or (d, area.id) < best):
                best = (d, area.id)
        return best[1] if best else None


# --- access ------------------------------------------------------------------------------------------


def may_declare(actor: Actor) -> bool:
    """Whether ``actor`` may declare incidents and handle the proposals of clusters."""
    return actor.is_platform_admin or (
        actor.org_kind in _COORDINATING_KINDS and actor.role in _DECLARER_ROLES and actor.org_id is not None
    )


def _sees_all(actor: Actor) -> bool:
    return actor.is_platform_admin or (actor.is_staff and actor.org_kind in _COORDINATING_KINDS)


@dataclass(frozen=True, slots=True)
class Access:
    """What an actor may do in one incident."""

    view: bool = False
    #: Change state and severity, bring in departments, set tasks.
    command: bool = False
    #: Write log entries on the timeline.
    log: bool = False
    #: Publish public notices.
    notice: bool = False
    #: Organisations whose people the actor may name.
    name_for: frozenset[int] = frozenset()
    #: The actor's own roles.
    roles: frozenset[str] = frozenset()


def _access(actor: Actor, incident: Incident, rows: Sequence[IncidentRole]) -> Access:
    mine = frozenset(r.role for r in rows if actor.user_id is not None and r.user_id == actor.user_id)
    involved = {r.org_id for r in rows}
    namer = actor.role in _NAMER_ROLES and actor.org_id is not None
    coordinator = actor.is_platform_admin or (namer and actor.org_id == incident.org_id)
    command = coordinator or "commander" in mine
    if actor.is_platform_admin:
        name_for = frozenset(involved)
    elif namer and actor.org_id in involved:
        name_for = frozenset({actor.org_id}) if actor.org_id is not None else frozenset()
    else:
        name_for = frozenset()
    view = command or bool(mine) or _sees_all(actor) or bool(name_for)
    return Access(
        view=view,
        command=command,
        log=command or bool(mine - {"observer"}),
        notice=command or "liaison" in mine,
        name_for=name_for,
        roles=mine,
    )


def _scoped(actor: Actor, *, write: bool) -> None:
    """Refuse a token that lacks the participation scope the call needs."""
    scope = "participation:write" if write else "participation:read"
    if actor.scopes is not None and scope not in actor.scopes:
        raise Forbidden(T("this token lacks the scope {scope}", scope=repr(scope)), detail={"scope": scope})


def _visible(
    session: Session, actor: Actor, incident_id: int, *, write: bool = False
) -> tuple[Incident, list[IncidentRole], Access]:
    _scoped(actor, write=write)
    incident = _get(session, incident_id)
    rows = _roles(session, incident.id)
    access = _access(actor, incident, rows)
    if not access.view:
        raise Forbidden(
            T(
                "only the incident's members, the operator and the data bureau may see incident {id}",
                id=incident.id,
            ),
            detail={"incident": incident.id},
        )
    return incident, rows, access


def _commanding(
    session: Session, actor: Actor, incident_id: int
) -> tuple[Incident, list[IncidentRole], Access]:
    incident, rows, access = _visible(session, actor, incident_id, write=True)
    if not access.command:
        raise Forbidden(
            T("only the commander and the coordinating organisation's dispatchers may do this"),
            detail={"incident": incident.id},
        )
    return incident, rows, access


# --- declaring -----------------------------------------------------------------------------------------


def _coordinating_org(session: Session, actor: Actor, org_id: int | None) -> Organisation:
    if org_id is not None:
        org = _org(session, org_id)
        if org.id != actor.org_id and not actor.is_platform_admin:
            raise Forbidden(
                T("you may declare incidents only for your own organisation"), detail={"field": "org_id"}
            )
    elif actor.org_id is not None and actor.org_kind in _COORDINATING_KINDS:
        org = _org(session, actor.org_id)
    else:
        found = None
        for kind in (OrgKind.OPERATOR, OrgKind.DATA_BUREAU):
            found = session.scalars(
                select(Organisation)
                .where(Organisation.kind == kind, Organisation.is_active.is_(True))
                .order_by(Organisation.id)
            ).first()
            if found is not None:
                break
        if found is None:
            raise Invalid(
                T("there is no operator or data bureau to coordinate the incident"),
                detail={"field": "org_id"},
            )
        org = found
    if org.kind not in _COORDINATING_KINDS:
        raise Invalid(
            T("only the operator or the data bureau coordinates incidents"), detail={"field": "org_id"}
        )
    return org


def _department_ids(session: Session, departments: Iterable[int], coordinator: int) -> list[int]:
    ids: list[int] = []
    for org_id in departments:
        org = _org(session, org_id, "departments")
        if org.id != coordinator and org.id not in ids:
            ids.append(org.id)
    return ids


def declare(
    *,
    session: Session,
    actor: Actor,
    kind: str,
    severity: int,
    area_id: int | None,
    title: str,
    description: str = "",
    source: str = "manual",
    source_detail: Mapping[str, Any] | None = None,
    proposal_id: int | None = None,
    org_id: int | None = None,
    departments: Sequence[int] = (),
) -> Incident:
    """Declare an incident; the declarer becomes commander. With ``proposal_id``, from a cluster of reports."""
    _scoped(actor, write=True)
    if not may_declare(actor):
        raise Forbidden(
            T("only dispatchers and administrators of the operator or the data bureau may declare incidents")
        )
    kind = _kind(kind)
    severity = _severity(severity)
    title = _text(title, "title", _MAX_TITLE)
    description = _text(description, "description", _MAX_DESCRIPTION, required=False)
    if source not in SOURCES:
        raise Invalid(
            T("source must be one of {choices}", choices=", ".join(SOURCES)), detail={"field": "source"}
        )
    proposal: IncidentProposal | None = None
    if proposal_id is not None:
        proposal = session.get(IncidentProposal, proposal_id)
        if proposal is None:
            raise NotFound(T("there is no proposal {id}", id=proposal_id), detail={"field": "proposal_id"})
        if proposal.state != "proposed":
            raise Conflict(
                T("proposal {id} is already {state}", id=proposal.id, state=proposal.state),
                detail={"field": "proposal_id", "state": proposal.state},
            )
        source = "cluster"
        area_id = proposal.area_id if area_id is None else area_id
    if area_id is None or session.get(Area, area_id) is None:
        raise Invalid(T("say which area the incident is in"), detail={"field": "area_id"})
    org = _coordinating_org(session, actor, org_id)
    dept_ids = _department_ids(session, departments, org.id)
    now = clock.now()
    detail = dict(source_detail or {})
    if proposal is not None:
        detail.update(
            proposal_id=proposal.id, category_id=proposal.category_id, request_ids=list(proposal.request_ids)
        )
    incident = Incident(
        kind=kind,
        severity=severity,
        area_id=area_id,
        title=title,
        description=description,
        state="active",
        org_id=org.id,
        declared_by_user_id=actor.user_id,
        declared_at=now,
        source=source,
        source_detail=detail,
    )
    session.add(incident)
    session.flush()
    commander = actor.user_id if actor.user_id is not None and actor.org_id == org.id else None
    rows = [
        IncidentRole(
            incident_id=incident.id,
            role="commander",
            org_id=org.id,
            user_id=commander,
            assigned_at=now if commander is not None else None,
        )
    ]
    rows += [IncidentRole(incident_id=incident.id, role=role, org_id=org.id) for role in _COMMAND_STAFF]
    session.add_all(rows)
    _entry(
        session,
        incident,
        actor,
        "declared",
        T("incident declared: {title} (severity {severity})", title=title, severity=severity),
        {"kind": kind, "severity": severity, "source": source},
        at=now,
    )
    if proposal is not None:
        proposal.state = "declared"
        proposal.incident_id = incident.id
        category = session.get(Category, proposal.category_id)
        _entry(
            session,
            incident,
            actor,
            "reports",
            T(
                "declared from {count} reports of {category}",
                count=len(proposal.request_ids),
                category=category.name_zh if category else proposal.category_id,
            ),
            {"request_ids": list(proposal.request_ids), "proposal_id": proposal.id},
            at=now,
        )
    session.flush()
    _audit(
        session,
        actor,
        "declare",
        incident,
        {
            "kind": kind,
            "severity": severity,
            "area_id": area_id,
            "source": source,
            "proposal_id": proposal_id,
        },
    )
    notifications.notify_users(
        session=session,
        user_ids=set(
            session.scalars(
                select(User.id).where(
                    User.org_id == org.id,
                    User.is_active.is_(True),
                    User.role.in_([str(r) for r in _NAMER_ROLES]),
                )
            )
        )
        - {actor.user_id or 0},
        kind="participation.incident",
        message=T("incident declared: {title}", title=title),
        link=_link(incident),
    )
    for dept in dept_ids:
        _join(session, actor, incident, _org(session, dept), DEPARTMENT_ROLES, now)
    _check_complete(incident, _roles(session, incident.id), now)
    session.flush()
    return incident


# --- departments and roles -------------------------------------------------------------------------------


def _join(
    session: Session, actor: Actor, incident: Incident, org: Organisation, roles: Sequence[str], now: datetime
) -> list[IncidentRole]:
    rows = [IncidentRole(incident_id=incident.id, role=role, org_id=org.id) for role in roles]
    session.add_all(rows)
    incident.roles_complete_at = None
    _entry(
        session,
        incident,
        actor,
        "department",
        T("{org} joined; open places: {roles}", org=org.name_zh, roles=", ".join(roles)),
        {"org_id": org.id, "roles": list(roles)},
        at=now,
    )
    session.flush()
    _audit(session, actor, "department", incident, {"org_id": org.id, "roles": list(roles)})
    notifications.notify_org(
        session=session,
        org_id=org.id,
        kind="participation.incident",
        message=T(
            "your organisation is asked to name its people for incident: {title}", title=incident.title
        ),
        link=_link(incident),
        roles=_NAMER_ROLES,
    )
    return rows


def add_department(
    *, session: Session, actor: Actor, incident_id: int, org_id: int, roles: Sequence[str] = DEPARTMENT_ROLES
) -> list[IncidentRole]:
    """Bring a department into the incident with open places its own people will fill."""
    incident, rows, _ = _commanding(session, actor, incident_id)
    _open(incident)
    org = _org(session, org_id)
    if org.id in {r.org_id for r in rows}:
        raise Conflict(
            T("{org} already takes part in this incident", org=org.name_zh), detail={"field": "org_id"}
        )
    wanted = list(roles)
    if not wanted or any(r not in ROLES or r == "commander" for r in wanted):
        raise Invalid(
            T("roles must be some of liaison, scribe, participant, observer"), detail={"field": "roles"}
        )
    now = clock.now()
    _touch(incident, actor, now)
    return _join(session, actor, incident, org, wanted, now)


def assign_role(
    *, session: Session, actor: Actor, incident_id: int, role: str, org_id: int, user_id: int
) -> IncidentRole:
    """Name a person of ``org_id`` to a role: fills an open place, or adds one. Naming a commander hands over."""
    incident, rows, access = _visible(session, actor, incident_id, write=True)
    if role not in ROLES:
        raise Invalid(T("role must be one of {choices}", choices=", ".join(ROLES)), detail={"field": "role"})
    if org_id not in {r.org_id for r in rows}:
        raise Invalid(
            T("organisation {id} has no place in this incident; bring the department in first", id=org_id),
            detail={"field": "org_id"},
        )
    if org_id not in access.name_for:
        raise Forbidden(
            T("only the administrators and dispatchers of an organisation may name its people"),
            detail={"field": "org_id"},
        )
    _open(incident)
    user = _staff_of(session, user_id, org_id, "user_id")
    now = clock.now()
    if role == "commander":
        if org_id != incident.org_id:
            raise Invalid(
                T("the commander comes from the coordinating organisation"), detail={"field": "org_id"}
            )
        row = next(r for r in rows if r.role == "commander")
        if row.user_id == user.id:
            return row
        previous = row.user_id
        message = T("command handed over to {user}", user=user.display_name or user.username)
    else:
        same = [r for r in rows if r.role == role and r.org_id == org_id and r.user_id == user.id]
        if same:
            return same[0]
        found = next((r for r in rows if r.role == role and r.org_id == org_id and r.user_id is None), None)
        if found is None:
            found = IncidentRole(incident_id=incident.id, role=role, org_id=org_id)
            session.add(found)
            rows.append(found)
        row, previous = found, None
        message = T("{user} is now {role}", user=user.display_name or user.username, role=role)
    row.user_id, row.assigned_at = user.id, now
    _check_complete(incident, rows, now)
    _touch(incident, actor, now)
    _entry(
        session,
        incident,
        actor,
        "role",
        message,
        {"role": role, "org_id": org_id, "user_id": user.id},
        at=now,
    )
    session.flush()
    _audit(
        session,
        actor,
        "role",
        incident,
        {"role": role, "org_id": org_id, "user_id": user.id, "previous": previous},
    )
    notifications.notify_users(
        session=session,
        user_ids=[user.id],
        kind="participation.incident",
        message=T("you are {role} in incident: {title}", role=role, title=incident.title),
        link=_link(incident),
    )
    return row


def release_role(*, session: Session, actor: Actor, incident_id: int, role_id: int) -> IncidentRole:
    """Stand a person down: the place stays, open, for the organisation to fill again (not the commander's)."""
    incident, rows, access = _visible(session, actor, incident_id, write=True)
    row = next((r for r in rows if r.id == role_id), None)
    if row is None:
        raise NotFound(
            T("incident {id} has no role {role}", id=incident.id, role=role_id), detail={"field": "role_id"}
        )
    if row.org_id not in access.name_for and not access.command:
        raise Forbidden(T("only the administrators and dispatchers of an organisation may name its people"))
    _open(incident)
    if row.role == "commander":
        raise Invalid(
            T("name another commander instead of standing the commander down"), detail={"field": "role_id"}
        )
    if row.user_id is None:
        raise Conflict(T("this place is already open"), detail={"field": "role_id"})
    now = clock.now()
    previous, row.user_id, row.assigned_at = row.user_id, None, None
    _check_complete(incident, rows, now)
    _touch(incident, actor, now)
    _entry(
        session, incident, actor, "role", T("a {role} stood down", role=row.role), {"role_id": row.id}, at=now
    )
    session.flush()
    _audit(session, actor, "release", incident, {"role_id": row.id, "user_id": previous})
    return row


# --- tasks -----------------------------------------------------------------------------------------------


def is_late(task: IncidentTask, closed_at: datetime | None = None) -> bool:
    """Done after its due time, or not done by the time the incident closed."""
    if task.done_at is not None:
        return task.due_at is not None and task.done_at > task.due_at
    return closed_at is not None


def add_task(
    *,
    session: Session,
    actor: Actor,
    incident_id: int,
    title: str,
    org_id: int | None = None,
    owner_user_id: int | None = None,
    due_at: datetime | None = None,
) -> IncidentTask:
    """A task for a department or a person, with a due time (reminded 30 minutes before)."""
    incident, rows, access = _visible(session, actor, incident_id, write=True)
    title = _text(title, "title", 300)
    involved = {r.org_id for r in rows}
    owner: User | None = None
    if owner_user_id is not None and org_id is None:
        found = session.get(User, owner_user_id) if isinstance(owner_user_id, int) else None
        org_id = found.org_id if found is not None else None
        if org_id is None:
            raise Invalid(T("user {id} does not exist", id=owner_user_id), detail={"field": "owner_user_id"})
    if org_id is not None and org_id not in involved:
        raise Invalid(
            T("organisation {id} has no place in this incident; bring the department in first", id=org_id),
            detail={"field": "org_id"},
        )
    own_liaison = "liaison" in access.roles and org_id is not None and org_id == actor.org_id
    if not (access.command or own_liaison):
        raise Forbidden(T("only the commander, the coordinators and a department's liaison may set tasks"))
    _open(incident)
    if owner_user_id is not None and org_id is not None:
        owner = _staff_of(session, owner_user_id, org_id, "owner_user_id")
    now = clock.now()
    if _aware(due_at, "due_at") is not None and due_at is not None and due_at <= now:
        raise Invalid(T("due_at must be later than now"), detail={"field": "due_at"})
    task = IncidentTask(
        incident_id=incident.id,
        title=title,
        org_id=org_id,
        owner_user_id=owner.id if owner else None,
        due_at=due_at,
        created_at=now,
    )
    session.add(task)
    session.flush()
    _touch(incident, actor, now)
    _entry(
        session,
        incident,
        actor,
        "task",
        T("task set: {title}", title=title),
        {"task_id": task.id, "org_id": org_id, "owner_user_id": task.owner_user_id, "due_at": _iso(due_at)},
        at=now,
    )
    _audit(
        session, actor, "task", incident, {"task_id": task.id, "org_id": org_id, "owner": task.owner_user_id}
    )
    message = T("new task in incident {incident}: {title}", incident=incident.title, title=title)
    _tell_task(session, task, message, _link(incident))
    session.flush()
    return task


def _tell_task(session: Session, task: IncidentTask, message: str, link: str) -> int:
    if task.owner_user_id is not None:
        return notifications.notify_users(
            session=session,
            user_ids=[task.owner_user_id],
            kind="participation.incident",
            message=message,
            link=link,
        )
    if task.org_id is not None:
        return notifications.notify_org(
            session=session,
            org_id=task.org_id,
            kind="participation.incident",
            message=message,
            link=link,
            roles=_NAMER_ROLES,
        )
    return 0


def complete_task(
    *, session: Session, actor: Actor, task_id: int, note: str = "", incident_id: int | None = None
) -> IncidentTask:
    """Mark a task done (its owner, the commander, or the owning department's dispatchers)."""
    task = session.get(IncidentTask, task_id)
    if task is None or (incident_id is not None and task.incident_id != incident_id):
        raise NotFound(T("there is no incident task {id}", id=task_id), detail={"task": task_id})
    incident, _rows, access = _visible(session, actor, task.incident_id, write=True)
    note = _text(note, "note", _MAX_TEXT, required=False)
    mine = actor.user_id is not None and task.owner_user_id == actor.user_id
    department = task.org_id is not None and task.org_id in access.name_for
    if not (mine or access.command or department):
        raise Forbidden(
            T("only the task's owner, its department's dispatchers or the commander may complete it")
        )
    _open(incident)
    if task.done_at is not None:
        raise Conflict(T("the task is already done"), detail={"task": task.id})
    now = clock.now()
    task.done_at = now
    late = is_late(task)
    _touch(incident, actor, now)
    _entry(
        session,
        incident,
        actor,
        "task_done",
        T("task done: {title}", title=task.title)
        if not note
        else T("task done: {title} — {note}", title=task.title, note=note),
        {"task_id": task.id, "late": late},
        at=now,
    )
    session.flush()
    _audit(session, actor, "task_done", incident, {"task_id": task.id, "late": late})
    return task


def remind(*, session: Session, now: datetime | None = None) -> list[IncidentTask]:
    """Sweep: remind owners of open tasks due within 30 minutes or overdue, once per task."""
    now = now or clock.now()
    due = list(
        session.scalars(
            select(IncidentTask)
            .join(Incident, Incident.id == IncidentTask.incident_id)
            .where(
                Incident.state != "closed",
                IncidentTask.done_at.is_(None),
                IncidentTask.reminded_at.is_(None),
                IncidentTask.due_at.is_not(None),
                IncidentTask.due_at <= now + REMIND_BEFORE,
            )
            .order_by(IncidentTask.due_at, IncidentTask.id)
        )
    )
    reminded: list[IncidentTask] = []
    for task in due:
        if task.due_at is None or (task.owner_user_id is None and task.org_id is None):
            continue
        incident = _get(session, task.incident_id)
        if task.due_at < now:
            message = T("task overdue since {due}: {title}", due=_local(task.due_at), title=task.title)
        else:
            message = T("task due at {due}: {title}", due=_local(task.due_at), title=task.title)
        count = _tell_task(session, task, message, _link(incident))
        task.reminded_at = now
        _entry(session, incident, None, "reminder", message, {"task_id": task.id, "notified": count}, at=now)
        _audit(session, None, "task_remind", incident, {"task_id": task.id, "notified": count})
        reminded.append(task)
    session.flush()
    return reminded


# --- timeline, state, severity --------------------------------------------------------------------------


def add_entry(*, session: Session, actor: Actor, incident_id: int, text: str) -> IncidentEntry:
    """A free-text line on the timeline (members other than observers; also after closing, for the review)."""
    incident, _rows, access = _visible(session, actor, incident_id, write=True)
    if not access.log:
        raise Forbidden(T("observers and visitors may read the timeline but not write on it"))
    text = _text(text, "text", _MAX_TEXT)
    now = clock.now()
    _touch(incident, actor, now)
    entry = _entry(session, incident, actor, "note", text, at=now)
    session.flush()
    _audit(session, actor, "entry", incident, {"entry_id": entry.id})
    return entry


def entries(*, session: Session, actor: Actor, incident_id: int) -> list[IncidentEntry]:
    """The whole timeline, oldest first (audited)."""
    incident, _rows, _ = _visible(session, actor, incident_id)
    found = _entries(session, incident.id)
    _audit(session, actor, "read_timeline", incident, {"count": len(found)})
    return found


def _entries(session: Session, incident_id: int) -> list[IncidentEntry]:
    return list(
        session.scalars(
            select(IncidentEntry)
            .where(IncidentEntry.incident_id == incident_id)
            .order_by(IncidentEntry.at, IncidentEntry.id)
        )
    )


def set_state(*, session: Session, actor: Actor, incident_id: int, state: str, note: str = "") -> Incident:
    """Move between active and stable, or close (final)."""
    incident, rows, _ = _commanding(session, actor, incident_id)
    if state not in STATES:
        raise Invalid(
            T("state must be one of {choices}", choices=", ".join(STATES)), detail={"field": "state"}
        )
    note = _text(note, "note", _MAX_TEXT, required=False)
    _open(incident)
    if state not in _MOVES[incident.state]:
        raise Conflict(T("the incident is already {state}", state=state), detail={"state": incident.state})
    now = clock.now()
    previous, incident.state = incident.state, state
    if state == "closed":
        incident.closed_at = now
    _touch(incident, actor, now)
    message = T("state: {old} → {new}", old=previous, new=state)
    _entry(
        session,
        incident,
        actor,
        "state",
        message if not note else T("state: {old} → {new} — {note}", old=previous, new=state, note=note),
        {"from": previous, "to": state},
        at=now,
    )
    session.flush()
    _audit(session, actor, "state", incident, {"from": previous, "to": state})
    notifications.notify_users(
        session=session,
        user_ids=_holders(rows, actor.user_id),
        kind="participation.incident",
        message=T("incident {title} is now {state}", title=incident.title, state=state),
        link=_link(incident),
    )
    return incident


def set_severity(
    *, session: Session, actor: Actor, incident_id: int, severity: int, note: str = ""
) -> Incident:
    """Raise or lower the severity (1..4)."""
    incident, _rows, _ = _commanding(session, actor, incident_id)
    severity = _severity(severity)
    note = _text(note, "note", _MAX_TEXT, required=False)
    _open(incident)
    if severity == incident.severity:
        raise Conflict(
            T("the severity is already {severity}", severity=severity), detail={"field": "severity"}
        )
    now = clock.now()
    previous, incident.severity = incident.severity, severity
    _touch(incident, actor, now)
    _entry(
        session,
        incident,
        actor,
        "severity",
        T("severity: {old} → {new}", old=previous, new=severity),
        {"from": previous, "to": severity, "note": note},
        at=now,
    )
    session.flush()
    _audit(session, actor, "severity", incident, {"from": previous, "to": severity})
    return incident


# --- notices ---------------------------------------------------------------------------------------------


def _residents_in(session: Session, area_id: int | None) -> list[int]:
    if area_id is None:
        return []
    inside = _Tree(session).descendants(area_id)
    return sorted(
        set(
            session.scalars(
                select(Residence.user_id)
                .join(User, User.id == Residence.user_id)
                .where(Residence.area_id.in_(inside), User.is_active.is_(True))
            )
        )
    )


def publish_notice(
    *, session: Session, actor: Actor, incident_id: int, situation: str, instructions: str = ""
) -> IncidentNotice:
    """Post the current situation and instructions publicly, and notify every resident of the area."""
    incident, _rows, access = _visible(session, actor, incident_id, write=True)
    if not access.notice:
        raise Forbidden(T("only the commander and liaisons may publish notices"))
    situation = _text(situation, "situation", _MAX_TEXT)
    instructions = _text(instructions, "instructions", _MAX_TEXT, required=False)
    _open(incident)
    now = clock.now()
    notice = IncidentNotice(
        incident_id=incident.id,
        at=now,
        situation=situation,
        instructions=instructions,
        author_user_id=actor.user_id,
    )
    session.add(notice)
    session.flush()
    residents = _residents_in(session, incident.area_id)
    notice.notified = notifications.notify_users(
        session=session,
        user_ids=residents,
        kind="participation.incident_notice",
        message=T("emergency notice: {situation}", situation=situation[:120]),
        link=f"/participate/incidents/{incident.id}",
    )
    _touch(incident, actor, now)
    _entry(
        session,
        incident,
        actor,
        "notice",
        T("public notice posted; {count} residents notified", count=notice.notified),
        {"notice_id": notice.id, "notified": notice.notified},
        at=now,
    )
    session.flush()
    _audit(session, actor, "notice", incident, {"notice_id": notice.id, "notified": notice.notified})
    return notice


def _notices(session: Session, incident_id: int) -> list[IncidentNotice]:
    return list(
        session.scalars(
            select(IncidentNotice)
            .where(IncidentNotice.incident_id == incident_id)
            .order_by(IncidentNotice.at.desc(), IncidentNotice.id.desc())
        )
    )


@dataclass(frozen=True, slots=True)
class PublicIncident:
    """What the public sees of an incident: no title, description, timeline or staff names."""

    id: int
    kind: str
    severity: int
    state: str
    area: Area | None
    declared_at: datetime
    closed_at: datetime | None
    #: Newest first.
    notices: list[IncidentNotice]


def _public(session: Session, incident: Incident, notices: list[IncidentNotice]) -> PublicIncident:
    return PublicIncident(
        id=incident.id,
        kind=incident.kind,
        severity=incident.severity,
        state=incident.state,
        area=session.get(Area, incident.area_id) if incident.area_id is not None else None,
        declared_at=incident.declared_at,
        closed_at=incident.closed_at,
        notices=notices,
    )


def public_incidents(*, session: Session) -> list[PublicIncident]:
    """Incidents still going on that have a public notice, newest first (public)."""
    with_notice = select(IncidentNotice.incident_id)
    found = list(
        session.scalars(
            select(Incident)
            .where(Incident.state != "closed", Incident.id.in_(with_notice))
            .order_by(Incident.declared_at.desc(), Incident.id.desc())
        )
    )
    by_incident: dict[int, list[IncidentNotice]] = defaultdict(list)
    for notice in session.scalars(
        select(IncidentNotice)
        .where(IncidentNotice.incident_id.in_([i.id for i in found]))
        .order_by(IncidentNotice.at.desc(), IncidentNotice.id.desc())
    ):
        by_incident[notice.incident_id].append(notice)
    return [_public(session, i, by_incident[i.id]) for i in found]


def public_view(*, session: Session, incident_id: int) -> PublicIncident:
    """One incident's public page: its notices (latest first), state, kind, severity and area (public)."""
    incident = session.get(Incident, incident_id)
    notices = _notices(session, incident_id) if incident is not None else []
    if incident is None or not notices:
        raise NotFound(
            T("there is no public incident {id}", id=incident_id), detail={"incident": incident_id}
        )
    return _public(session, incident, notices)


# --- reading and review ----------------------------------------------------------------------------------


def get_incident(*, session: Session, actor: Actor, incident_id: int) -> Incident:
    """One incident for its members, the operator and the data bureau (audited)."""
    incident, _rows, _ = _visible(session, actor, incident_id)
    _audit(session, actor, "read", incident)
    return incident


def list_incidents(
    *, session: Session, actor: Actor, state: str | None = None, after: str | None = None, limit: int = 50
) -> Page[Incident]:
    """Incidents the actor may see, newest first: all for the operator and the bureau, else their own (audited)."""
    _scoped(actor, write=False)
    if not (actor.is_staff or actor.is_platform_admin):
        raise Forbidden(T("only staff may see incidents; residents see the public notices"))
    if state is not None and state not in STATES:
        raise Invalid(
            T("state must be one of {choices}", choices=", ".join(STATES)), detail={"parameter": "state"}
        )
    if not 1 <= limit <= 200:
        raise Invalid(T("limit must be between 1 and 200"), detail={"parameter": "limit"})
    query = select(Incident)
    if state is not None:
        query = query.where(Incident.state == state)
    if not _sees_all(actor):
        conditions = []
        if actor.user_id is not None:
            conditions.append(IncidentRole.user_id == actor.user_id)
        if actor.role in _NAMER_ROLES and actor.org_id is not None:
            conditions.append(IncidentRole.org_id == actor.org_id)
        mine = select(IncidentRole.incident_id).where(or_(*conditions)) if conditions else None
        query = query.where(Incident.id.in_(mine)) if mine is not None else query.where(Incident.id == -1)
    page = keyset_page(session, query, Incident.id, after=after, limit=limit, newest_first=True)
    record(
        session=session,
        actor=actor,
        action="participation.incident.list",
        object_type="participation_incident",
        object_id=0,
        detail={"state": state, "count": len(page.items)},
    )
    return page


def _figures(
    session: Session, incident: Incident, rows: Sequence[IncidentRole], now: datetime
) -> dict[str, Any]:
    tasks = list(session.scalars(select(IncidentTask).where(IncidentTask.incident_id == incident.id)))
    notices = _notices(session, incident.id)
    timeline = _entries(session, incident.id)
    end = incident.closed_at or now
    durations = {"active": 0.0, "stable": 0.0}
    cursor, current = incident.declared_at, "active"
    for entry in timeline:
        if entry.kind == "state" and entry.detail.get("to") in STATES:
            if current in durations:
                durations[current] += (entry.at - cursor).total_seconds()
            cursor, current = entry.at, str(entry.detail["to"])
    if current in durations:
        durations[current] += (end - cursor).total_seconds()
    late = [t for t in tasks if is_late(t, incident.closed_at)]
    done = [t for t in tasks if t.done_at is not None]
    return {
        "incident_id": incident.id,
        "state": incident.state,
        "declared_at": _iso(incident.declared_at),
        "first_response_at": _iso(incident.first_response_at),
        "roles_complete_at": _iso(incident.roles_complete_at),
        "closed_at": _iso(incident.closed_at),
        "time_to_first_response_seconds": _seconds(incident.first_response_at, incident.declared_at),
        "time_to_all_roles_seconds": _seconds(incident.roles_complete_at, incident.declared_at),
        "duration_seconds": _seconds(end, incident.declared_at),
        "time_active_seconds": int(durations["active"]),
        "time_stable_seconds": int(durations["stable"]),
        "roles": {
            "total": len(rows),
            "filled": sum(1 for r in rows if r.user_id is not None),
            "open": sum(1 for r in rows if r.user_id is None),
        },
        "tasks": {
            "total": len(tasks),
            "done": len(done),
            "done_on_time": sum(1 for t in done if not is_late(t)),
            "late": len(late),
            "late_task_ids": sorted(t.id for t in late),
            "unfinished": len(tasks) - len(done),
            "overdue_open": sum(
                1 for t in tasks if t.done_at is None and t.due_at is not None and t.due_at < now
            ),
        },
        "notices": len(notices),
        "residents_notified": sum(n.notified for n in notices),
        "entries": len(timeline),
    }


def review(*, session: Session, actor: Actor, incident_id: int) -> dict[str, Any]:
    """The post-incident review figures (any time, for those who may see the incident; audited)."""
    incident, rows, _ = _visible(session, actor, incident_id)
    figures = _figures(session, incident, rows, clock.now())
    _audit(session, actor, "review", incident)
    return figures


@dataclass(slots=True)
class IncidentView:
    """Everything the staff page of an incident shows."""

    incident: Incident
    area: Area | None
    access: Access
    roles: list[IncidentRole]
    tasks: list[IncidentTask]
    entries: list[IncidentEntry]
    #: Newest first.
    notices: list[IncidentNotice]
    figures: dict[str, Any]
    orgs: dict[int, Organisation] = field(default_factory=dict)
    people: dict[int, User] = field(default_factory=dict)
    #: Staff the actor may name, by organisation.
    candidates: dict[int, list[User]] = field(default_factory=dict)
    #: Organisations the actor may bring in.
    joinable: list[Organisation] = field(default_factory=list)


def incident_view(*, session: Session, actor: Actor, incident_id: int) -> IncidentView:
    """An incident with its roles, tasks, timeline, notices and review figures (audited)."""
    incident, rows, access = _visible(session, actor, incident_id)
    tasks = list(
        session.scalars(
            select(IncidentTask).where(IncidentTask.incident_id == incident.id).order_by(IncidentTask.id)
        )
    )
    timeline = _entries(session, incident.id)
    notices = _notices(session, incident.id)
    org_ids = {r.org_id for r in rows} | {t.org_id for t in tasks if t.org_id is not None}
    if incident.org_id is not None:
        org_ids.add(incident.org_id)
    user_ids = (
        {r.user_id for r in rows if r.user_id is not None}
        | {t.owner_user_id for t in tasks if t.owner_user_id is not None}
        | {e.actor_user_id for e in timeline if e.actor_user_id is not None}
        | {n.author_user_id for n in notices if n.author_user_id is not None}
    )
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    candidates: dict[int, list[User]] = {}
    command_orgs = set(access.name_for) | (set(org_ids) if access.command else set())
    if command_orgs:
        staff = session.scalars(
            select(User)
            .where(
                User.org_id.in_(command_orgs),
                User.is_active.is_(True),
                User.role.in_([str(r) for r in STAFF_ROLES]),
            )
            .order_by(User.username)
        )
        for user in staff:
            candidates.setdefault(user.org_id, []).append(user)
    joinable: list[Organisation] = []
    if access.command and incident.state != "closed":
        joinable = list(
            session.scalars(
                select(Organisation)
                .where(Organisation.is_active.is_(True), Organisation.id.not_in({r.org_id for r in rows}))
                .order_by(Organisation.code)
            )
        )
    _audit(session, actor, "read", incident)
    return IncidentView(
        incident=incident,
        area=session.get(Area, incident.area_id) if incident.area_id is not None else None,
        access=access,
        roles=rows,
        tasks=tasks,
        entries=timeline,
        notices=notices,
        figures=_figures(session, incident, rows, clock.now()),
        orgs=orgs,
        people=people,
        candidates=candidates,
        joinable=joinable,
    )


# --- clusters of reports ---------------------------------------------------------------------------------


def detect_clusters(*, session: Session, now: datetime | None = None) -> list[IncidentProposal]:
    """Sweep: propose an incident for each category and community with more than N open reports in M hours.

    Returns the new proposals; an open proposal of the same category and community grows instead.
    """
    settings = get_settings()
    now = now or clock.now()
    start = now - timedelta(hours=settings.incident_cluster_hours)
    reports = session.execute(
        select(Request.id, Request.category_id, Request.area_id, Request.lat, Request.lon).where(
            Request.requested_at >= start,
            Request.requested_at <= now,
            Request.state.not_in(CLOSED_STATES),
            Request.parent_id.is_(None),
        )
    ).all()
    if len(reports) <= settings.incident_cluster_reports:
        return []
    tree = _Tree(session)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for report_id, category_id, area_id, lat, lon in reports:
        community = tree.community_of(area_id) if area_id is not None else None
        if area_id is None and lat is not None and lon is not None:
            community = tree.community_of(tree.nearest_building(lat, lon))
        if community is not None:
            groups[(category_id, community)].append(report_id)
    created: list[IncidentProposal] = []
    for (category_id, area_id), ids in sorted(groups.items()):
        if len(ids) <= settings.incident_cluster_reports:
            continue
        ids.sort()
        earlier = list(
            session.scalars(
                select(IncidentProposal).where(
                    IncidentProposal.category_id == category_id, IncidentProposal.area_id == area_id
                )
            )
        )
        open_one = next((p for p in earlier if p.state == "proposed"), None)
        if open_one is not None:
            grown = sorted(set(open_one.request_ids) | set(ids))
            if len(grown) != len(open_one.request_ids):
                open_one.request_ids, open_one.count, open_one.window_end = grown, len(grown), now
            continue
        if any(_blocks(session, p, start) for p in earlier):
            continue
        proposal = IncidentProposal(
            category_id=category_id,
            area_id=area_id,
            count=len(ids),
            window_start=start,
            window_end=now,
            request_ids=ids,
            state="proposed",
            created_at=now,
        )
        session.add(proposal)
        session.flush()
        record(
            session=session,
            actor=None,
            action="participation.incident.propose",
            object_type="participation_incident_proposal",
            object_id=proposal.id,
            detail={"category_id": category_id, "area_id": area_id, "count": len(ids)},
        )
        category = session.get(Category, category_id)
        area = tree.areas.get(area_id)
        message = T(
            "{count} reports of {category} in {area} within {hours} hours: declare an incident?",
            count=len(ids),
            category=category.name_zh if category else category_id,
            area=area.name_zh if area else area_id,
            hours=settings.incident_cluster_hours,
        )
        for org_id in session.scalars(
            select(Organisation.id).where(
                Organisation.kind == OrgKind.OPERATOR, Organisation.is_active.is_(True)
            )
        ):
            notifications.notify_org(
                session=session,
                org_id=org_id,
                kind="participation.incident_proposal",
                message=message,
                link="/incidents#proposals",
                roles=[Role.DISPATCHER],
            )
        created.append(proposal)
    session.flush()
    return created


def detect_now(*, session: Session, actor: Actor) -> list[IncidentProposal]:
    """Run the cluster sweep at once, for those who may declare (audited)."""
    _scoped(actor, write=True)
    if not may_declare(actor):
        raise Forbidden(
            T("only dispatchers and administrators of the operator or the data bureau see proposals")
        )
    found = detect_clusters(session=session)
    record(
        session=session,
        actor=actor,
        action="participation.incident.detect",
        object_type="participation_incident_proposal",
        object_id=0,
        detail={"new": [p.id for p in found]},
    )
    return found


def _blocks(session: Session, proposal: IncidentProposal, start: datetime) -> bool:
    """Whether an earlier proposal keeps the same cluster from being proposed again."""
    if proposal.state == "declared" and proposal.incident_id is not None:
        incident = session.get(Incident, proposal.incident_id)
        if incident is not None and incident.state != "closed":
            return True
    return proposal.window_end >= start


def list_proposals(
    *, session: Session, actor: Actor, state: str | None = "proposed"
) -> list[IncidentProposal]:
    """Proposals of clusters, newest first, for those who may declare (audited)."""
    _scoped(actor, write=False)
    if not may_declare(actor):
        raise Forbidden(
            T("only dispatchers and administrators of the operator or the data bureau see proposals")
        )
    if state is not None and state not in ("proposed", "declared", "dismissed"):
        raise Invalid(T("state must be proposed, declared or dismissed"), detail={"parameter": "state"})
    query = select(IncidentProposal).order_by(IncidentProposal.created_at.desc(), IncidentProposal.id.desc())
    if state is not None:
        query = query.where(IncidentProposal.state == state)
    found = list(session.scalars(query.limit(200)))
    record(
        session=session,
        actor=actor,
        action="participation.incident.proposals",
        object_type="participation_incident_proposal",
        object_id=0,
        detail={"state": state, "count": len(found)},
    )
    return found


def dismiss_proposal(
    *, session: Session, actor: Actor, proposal_id: int, reason: str = ""
) -> IncidentProposal:
    """Turn a proposal down (the reason is kept in the audit log)."""
    _scoped(actor, write=True)
    if not may_declare(actor):
        raise Forbidden(
            T("only dispatchers and administrators of the operator or the data bureau see proposals")
        )
    reason = _text(reason, "reason", _MAX_TEXT, required=False)
    proposal = session.get(IncidentProposal, proposal_id)
    if proposal is None:
        raise NotFound(T("there is no proposal {id}", id=proposal_id), detail={"proposal": proposal_id})
    if proposal.state != "proposed":
        raise Conflict(
            T("proposal {id} is already {state}", id=proposal.id, state=proposal.state),
            detail={"state": proposal.state},
        )
    proposal.state = "dismissed"
    session.flush()
    record(
        session=session,
        actor=actor,
        action="participation.incident.dismiss",
        object_type="participation_incident_proposal",
        object_id=proposal.id,
        detail={"reason": reason},
    )
    return proposal


def proposal_labels(
    *, session: Session, proposals: Sequence[IncidentProposal]
) -> dict[int, tuple[Category | None, Area | None]]:
    """The category and area of each proposal, for display."""
    return {
        p.id: (session.get(Category, p.category_id), session.get(Area, p.area_id) if p.area_id else None)
        for p in proposals
    }


def declare_choices(*, session: Session) -> tuple[list[Area], list[Organisation]]:
    """Areas an incident may cover (districts to buildings) and organisations that may take part."""
    areas = list(session.scalars(select(Area).where(Area.level != "unit").order_by(Area.code)))
    orgs = list(
        session.scalars(
            select(Organisation).where(Organisation.is_active.is_(True)).order_by(Organisation.code)
        )
    )
    return areas, orgs


# --- the event bus ---------------------------------------------------------------------------------------


def _payload_area(session: Session, payload: Mapping[str, Any]) -> Area:
    area: Area | None = None
    if payload.get("area_id") is not None:
        value = payload["area_id"]
        area = session.get(Area, value) if isinstance(value, int) and not isinstance(value, bool) else None
        if area is None:
            raise Invalid(
                T("payload area_id {id} is no known area", id=value), detail={"field": "payload.area_id"}
            )
    elif payload.get("area_code"):
        area = session.scalars(select(Area).where(Area.code == str(payload["area_code"]))).first()
        if area is None:
            raise Invalid(
                T("payload area_code {code} is no known area", code=payload["area_code"]),
                detail={"field": "payload.area_code"},
            )
    else:
        raise Invalid(
            T("the event's payload must name area_code or area_id"), detail={"field": "payload.area_code"}
        )
    return area


def declare_from_event(session: Session, event: events.Event) -> Incident | None:
    """Declare an incident for an event on the bus, as the system; a repeat of an event already
    handled by an open incident is added to its timeline instead. Other events are ignored."""
    payload = dict(event.payload)
    if event.name == OUTBREAK_EVENT:
        kind = "outbreak"
        key = str(payload.get("disease") or "")
    elif event.name == DECLARE_EVENT:
        kind = _kind(payload.get("kind", "other"), "payload.kind")
        key = str(payload.get("dedupe_key") or "")
    else:
        return None
    area = _payload_area(session, payload)
    severity = _severity(payload.get("severity", 2), "payload.severity")
    title = _text(payload.get("title"), "payload.title", _MAX_TITLE)
    description = _text(
        payload.get("description", ""), "payload.description", _MAX_DESCRIPTION, required=False
    )
    org_id: int | None = None
    if payload.get("org_code"):
        org_id = session.scalars(
            select(Organisation.id).where(Organisation.code == str(payload["org_code"]))
        ).first()
        if org_id is None:
            raise Invalid(T("payload org_code names no organisation"), detail={"field": "payload.org_code"})
    system = system_actor("incidents")
    if key:
        for incident in session.scalars(
            select(Incident).where(
                Incident.source == "event",
                Incident.kind == kind,
                Incident.area_id == area.id,
                Incident.state != "closed",
            )
        ):
            if incident.source_detail.get("event") == event.name and incident.source_detail.get("key") == key:
                _entry(
                    session,
                    incident,
                    system,
                    "event",
                    T("the alert was raised again: {title}", title=title),
                    {"payload": payload},
                )
                session.flush()
                _audit(session, system, "event_repeat", incident, {"event": event.name})
                return incident
    return declare(
        session=session,
        actor=system,
        kind=kind,
        severity=severity,
        area_id=area.id,
        title=title,
        description=description,
        source="event",
        source_detail={"event": event.name, "key": key, "payload": payload},
        org_id=org_id,
    )


def on_event(event: events.Event, session: Any) -> None:
    """The bus handler: declares incidents for outbreak alerts and generic declare requests."""
    declare_from_event(session, event)


def register() -> None:
    """Subscribe ``on_event`` to the events that declare incidents (idempotent), for a process that
    does not run ``zhishe.hooks.install`` (which subscribes it already: do not do both)."""
    events.subscribe(OUTBREAK_EVENT, on_event)
    events.subscribe(DECLARE_EVENT, on_event)
