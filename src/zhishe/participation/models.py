"""Tables of citizen participation: service categories (Open311 services) and their questions,
routing rules and teams, requests (a resident's report and the work order it becomes), their
timeline, supports ("me too"), photos, Open311 API keys, suggestions, and emergency incidents.

A request is both the public report and the internal work order: ``state`` is the rich internal
state, and the binary Open311 ``status`` is derived from it. A joint work order is a parent request
with child requests (``parent_id``), one per department; children are internal and never listed
through Open311, and the parent closes only when every child is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "ApiKey",
    "Category",
    "CategoryAttribute",
    "Incident",
    "IncidentEntry",
    "IncidentNotice",
    "IncidentProposal",
    "IncidentRole",
    "IncidentTask",
    "Photo",
    "Request",
    "RequestUpdate",
    "Residence",
    "ResponseTemplate",
    "RoutingRule",
    "Suggestion",
    "SuggestionMilestone",
    "SuggestionSupport",
    "Support",
    "Team",
    "TeamMember",
]


# --- categories, routing ------------------------------------------------------------------------


class Category(Base):
    """A kind of problem residents can report (an Open311 service), with its SLA."""

    __tablename__ = "participation_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Open311 ``service_code``.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    #: Open311 ``group`` (e.g. 市容环境 / street cleaning).
    group: Mapped[str] = mapped_column(String(100), default="")
    #: Open311 ``keywords``: comma-separated.
    keywords: Mapped[str] = mapped_column(String(500), default="")
    #: Open311 ``type``: realtime | batch | blackbox.
    type: Mapped[str] = mapped_column(String(16), default="realtime")
    #: The SLA: ``sla_amount`` working hours or working days from submission.
    sla_amount: Mapped[int] = mapped_column(Integer, default=3)
    sla_unit: Mapped[str] = mapped_column(String(8), default="days")  # hours | days
    #: Open reports of this category within this many metres are offered as possible duplicates.
    nearby_metres: Mapped[int] = mapped_column(Integer, default=50)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def name(self, language: str) -> str:
        """The name in ``language``, falling back to Chinese."""
        return (self.name_en if language == "en" else self.name_zh) or self.name_zh

    def description(self, language: str) -> str:
        """The description in ``language``, falling back to Chinese."""
        return (self.description_en if language == "en" else self.description_zh) or self.description_zh


class CategoryAttribute(Base):
    """One question of a category (an Open311 service definition attribute)."""

    __tablename__ = "participation_category_attributes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("participation_categories.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(64))
    #: False for informational attributes that take no answer.
    variable: Mapped[bool] = mapped_column(Boolean, default=True)
    #: string | number | datetime | text | singlevaluelist | multivaluelist
    datatype: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    datatype_description: Mapped[str] = mapped_column(String(300), default="")
    order: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    #: ``[{"key": …, "name": …}]`` for the list datatypes.
    values: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    __table_args__ = (Index("uq_participation_attribute_code", "category_id", "code", unique=True),)


class Team(Base):
    """A team inside a department (or the operator's grid workers) that works orders."""

    __tablename__ = "participation_teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The team lead: first rung of the escalation ladder.
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TeamMember(Base):
    """A staff user of a team."""

    __tablename__ = "participation_team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("participation_teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class RoutingRule(Base):
    """Category x area -> department and team, or a community grid worker (网格员).

    An empty category or area matches any; the most specific rule wins (area before category
    wildcard), then the lowest ``priority``.
    """

    __tablename__ = "participation_routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_categories.id", ondelete="CASCADE"), nullable=True, index=True
    )
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True, index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("participation_teams.id"), nullable=True)
    #: A grid worker who takes the order directly.
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)


class Residence(Base):
    """Where a resident lives (a building or unit of the address list): the default location of their
    reports, and who is told when an incident notice is posted for an area."""

    __tablename__ = "participation_residences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)


# --- requests -------------------------------------------------------------------------------------


class Request(Base):
    """A resident's report (Open311 service request) and the work order it becomes."""

    __tablename__ = "participation_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("participation_categories.id"), index=True)
    #: Internal state: new, assigned, accepted, in_progress, waiting, resolved, closed, reopened,
    #: duplicate, rejected. Open311 ``status`` is ``closed`` for resolved/closed/duplicate/rejected.
    state: Mapped[str] = mapped_column(String(16), index=True, default="new")
    #: Why the order waits (parts, third_party, weather) while ``state`` is waiting.
    wait_reason: Mapped[str] = mapped_column(String(16), default="")
    #: The latest public status note (Open311 ``status_notes``).
    status_notes: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    #: What the resident answered to the category's attributes: ``{code: value or [values]}``.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # where
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    #: The building or unit of the address list (Open311 ``address_id`` is its code).
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True, index=True)
    zipcode: Mapped[str] = mapped_column(String(16), default="")
    # who (personal: never published)
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    reporter_name: Mapped[str] = mapped_column(String(200), default="")
    reporter_email: Mapped[str] = mapped_column(String(200), default="")
    reporter_phone: Mapped[str] = mapped_column(String(40), default="")
    #: web | app | wechat | phone | call_centre | open311 | staff
    channel: Mapped[str] = mapped_column(String(16), default="web")
    #: The Open311 key it came through, if any.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("participation_api_keys.id"), nullable=True)
    #: The staff user who filed on behalf of a caller.
    filed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: Open311 ``token``: handed out when the request is queued (``batch`` categories).
    token: Mapped[str] = mapped_column(String(40), unique=True)
    # who works it
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_teams.id"), nullable=True, index=True
    )
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    # when
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: The SLA deadline (Open311 ``expected_datetime``), moved later by the time spent waiting.
    expected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    #: When the current wait began (the SLA clock is stopped while set).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Escalation rungs reached: 0 none, 1 team lead warned (deadline near), 2 department head
    #: (deadline passed), 3 data bureau and street office (long past).
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    #: When the next escalation rung falls due (None when closed, waiting or at the top rung).
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_public_update_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Whether the order was resolved before its deadline (set at resolution).
    within_sla: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The resident's verdict on the fix: confirmed | reopened | "" (not given).
    confirmation: Mapped[str] = mapped_column(String(16), default="")
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # links
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_requests.id"), nullable=True, index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_requests.id"), nullable=True, index=True
    )
    suggestion_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_suggestions.id"), nullable=True, index=True
    )
    #: Public reason when rejected, or "not ours: …" text.
    public_reason: Mapped[str] = mapped_column(Text, default="")
    #: A photo's address given by an Open311 client (``media_url``) instead of an upload.
    media_url: Mapped[str] = mapped_column(String(1000), default="")
    #: Open311 ``service_notice``.
    service_notice: Mapped[str] = mapped_column(String(500), default="")
    supporters: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_participation_requests_open", "state", "expected_at"),
        # Open311's public lists page by offset, newest first, over top-level reports: with every
        # column they filter on in the index, skipping a page's predecessors reads no table rows.
        Index(
            "ix_participation_requests_public_time", "requested_at", "id", "parent_id", "state", "category_id"
        ),
    )


class RequestUpdate(Base):
    """One entry of a request's timeline (FixMyStreet ``servicerequestupdates`` when public)."""

    __tablename__ = "participation_request_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("participation_requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: state | note | info | transfer | escalation | support | confirm | reopen | link
    kind: Mapped[str] = mapped_column(String(16))
    #: The request's state after this update.
    state: Mapped[str] = mapped_column(String(16))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    text: Mapped[str] = mapped_column(Text, default="")
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Support(Base):
    """A resident's "me too" on a request: a support and a subscription to its updates."""

    __tablename__ = "participation_supports"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("participation_requests.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Photo(Base):
    """A photo of a request or update, stored cleaned (no EXIF) under the data directory."""

    __tablename__ = "participation_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("participation_requests.id", ondelete="CASCADE"), index=True
    )
    update_id: Mapped[int | None] = mapped_column(
        ForeignKey("participation_request_updates.id", ondelete="CASCADE"), nullable=True
    )
    #: SHA-256 of the stored (cleaned) bytes: also the file name.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """An Open311 ``api_key`` of an organisation's client (phone app, mini-program, call centre)."""

    __tablename__ = "participation_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    #: Requests a minute this key may post.
    per_minute: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ResponseTemplate(Base):
    """A canned public reply a team uses often."""

    __tablename__ = "participation_response_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


# --- suggestions ----------------------------------------------------------------------------------


class Suggestion(Base):
    """A resident's proposal (建言献策) for how the community is run."""

    __tablename__ = "participation_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: transport | environment | safety | services | health | housing | other
    domain: Mapped[str] = mapped_column(String(24), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: The department that must answer once the threshold is reached.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True, index=True)
    #: open | awaiting_response | accepted | declined | implemented
    state: Mapped[str] = mapped_column(String(24), default="open", index=True)
    supporters: Mapped[int] = mapped_column(Integer, default=0)
    threshold_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    response: Mapped[str] = mapped_column(Text, default="")
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    responded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: Percentage of the implementation done (accepted suggestions).
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SuggestionSupport(Base):
    """One resident's support of a suggestion."""

    __tablename__ = "participation_suggestion_supports"

    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("participation_suggestions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class SuggestionMilestone(Base):
    """A step of an accepted suggestion's implementation, shown publicly."""

    __tablename__ = "participation_suggestion_milestones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("participation_suggestions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    percent: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# --- emergency incidents --------------------------------------------------------------------------


class Incident(Base):
    """An emergency the operator or the data bureau coordinates departments through."""

    __tablename__ = "participation_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: flood | fire | gas_leak | outbreak | power_outage | water_outage | public_safety | other
    kind: Mapped[str] = mapped_column(String(24))
    #: 1 (minor) .. 4 (extraordinary), as China's four-level emergency scale (IV..I).
    severity: Mapped[int] = mapped_column(Integer)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: active | stable | closed
    state: Mapped[str] = mapped_column(String(12), default="active", index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    declared_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: manual | cluster | event
    source: Mapped[str] = mapped_column(String(12), default="manual")
    source_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    roles_complete_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IncidentRole(Base):
    """Someone's role in an incident: commander, liaison, scribe, participant or observer."""

    __tablename__ = "participation_incident_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("participation_incidents.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IncidentTask(Base):
    """A task of an incident, with an owner and a due time."""

    __tablename__ = "participation_incident_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("participation_incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentEntry(Base):
    """One line of an incident's timeline: everything that happened, in order."""

    __tablename__ = "participation_incident_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("participation_incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IncidentNotice(Base):
    """A public post of an incident: the situation and what residents should do."""

    __tablename__ = "participation_incident_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("participation_incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    situation: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text, default="")
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    notified: Mapped[int] = mapped_column(Integer, default=0)


class IncidentProposal(Base):
    """A cluster of reports (same category and area, more than N in M hours) proposed as an incident."""

    __tablename__ = "participation_incident_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("participation_categories.id"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    request_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    #: proposed | declared | dismissed
    state: Mapped[str] = mapped_column(String(12), default="proposed", index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("participation_incidents.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
