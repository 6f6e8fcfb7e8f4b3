"""The exchange's rules: apply-reply requests, their deadlines and answers, the grants they
create, and the grant finder the catalog's read function consults on every read.

Request states::

    draft -> submitted -> approved | narrowed | rejected
    approved | narrowed -> active (when the period starts) -> expired (when it ends) | revoked
    approved | narrowed -> revoked

Every transition is audited. Time-driven transitions (start, expiry, escalation of overdue
requests) happen in ``refresh``, which runs before every list and on a timer; access itself never
waits for it: the grant finder compares the grant's period with the clock on every read.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from zhishe.catalog import service as catalog
from zhishe.catalog.access import GrantView, Use, filter_columns
from zhishe.catalog.lake import filters as lake_filters
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.models import Dataset
from zhishe.catalog.schemas import SharingClass
from zhishe.core import clock
from zhishe.core.accounts.models import Organisation, User
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, Role, authorize, can, system_actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.events import Event
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.core.pagination import Page, keyset_page
from zhishe.exchange import workdays
from zhishe.exchange.models import Grant, GrantUse, ShareRequest, Subscription
from zhishe.exchange.schemas import AccessMode, NarrowIn, RequestIn, RequestState

__all__ = [
    "approve",
    "create_request",
    "find_grants",
    "get_grant_or_raise",
    "get_request_or_raise",
    "grant_of",
    "is_overdue",
    "list_grants",
    "list_requests",
    "live_at",
    "narrow",
    "reassign",
    "record_use",
    "refresh",
    "reject",
    "revoke",
    "submit",
    "usage",
]

S = RequestState
_OPEN_STATES = (S.APPROVED, S.NARROWED, S.ACTIVE)


# ---------------------------------------------------------------- checks


def _check_scope(dataset: Dataset, columns: Sequence[str], row_filter: dict[str, Any] | None) -> None:
    """The columns exist, and the row filter is well formed, on existing columns, with values of
    the columns' types."""
    known = {c.name: c for c in catalog.column_specs(dataset)}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise Invalid(
            T("dataset {slug} has no column(s): {columns}", slug=dataset.slug, columns=", ".join(unknown)),
            detail={"field": "columns", "columns": unknown},
        )
    if len(set(columns)) != len(columns):
        raise Invalid("a column is named twice in columns", detail={"field": "columns"})
    if row_filter is None:
        return
    try:
        parsed = lake_filters.parse_filter(row_filter)
    except LakeQueryError as exc:
        raise Invalid(exc.message, detail={"field": "row_filter", **exc.detail}) from exc
    missing = sorted(filter_columns(row_filter) - set(known))
    if missing:
        raise Invalid(
            T("the row filter names unknown column(s): {columns}", columns=", ".join(missing)),
            detail={"field": "row_filter", "columns": missing},
        )

    def walk(node: lake_filters.Filter) -> None:
        if isinstance(node, lake_filters.Condition):
            values = node.value if isinstance(node.value, list | tuple) else [node.value]
            for value in values if node.value is not None else []:
                try:
                    lake_filters.coerce_value(known[node.column], value)
                except LakeQueryError as exc:
                    raise Invalid(
                        f"row_filter: {exc.message}", detail={"field": "row_filter", "column": node.column}
                    ) from exc
        elif isinstance(node, lake_filters.Not):
            walk(node.filter)
        else:
            for part in node.filters:
                walk(part)

    walk(parsed)


def _check_period(starts_on: date, expires_on: date) -> None:
    if expires_on < starts_on:
        raise Invalid("the period of use ends before it starts", detail={"field": "expires_on"})
    today = clock.now().astimezone(get_settings().tz).date()
    if expires_on < today:
        raise Invalid("the period of use has already ended", detail={"field": "expires_on"})
    if (expires_on - starts_on).days > 3 * 366:
        raise Invalid("a period of use may last at most three years", detail={"field": "expires_on"})


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=get_settings().tz)


# ---------------------------------------------------------------- reading requests


def get_request_or_raise(*, session: Session, actor: Actor, request_id: int) -> ShareRequest:
    """A request the actor may see: their organisation's, one addressed to it, or any for the bureau."""
    found = session.get(ShareRequest, request_id)
    if found is None:
        raise NotFound(
            T("sharing request #{id} does not exist", id=request_id), detail={"request": request_id}
        )
    if not (
        can(actor, "exchange.read", org_id=found.requester_org_id)
        or can(actor, "exchange.read", org_id=found.owner_org_id)
        or can(actor, "exchange.bureau")
    ):
        raise Forbidden(
            T("you may not see sharing request #{id}", id=request_id), detail={"request": request_id}
        )
    return found


def is_overdue(request: ShareRequest) -> bool:
    """Submitted and past its reply deadline."""
    return request.state == S.SUBMITTED and request.due_at is not None and clock.now() >= request.due_at


def list_requests(
    *,
    session: Session,
    actor: Actor,
    box: str = "outgoing",
    state: str | None = None,
    dataset_id: int | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[ShareRequest]:
    """Requests by box: ``outgoing`` (the actor's organisation asked), ``incoming`` (addressed to
    it, ordered by deadline), or ``all`` (the data bureau)."""
    refresh(session)
    query = select(ShareRequest)
    if box == "outgoing":
        authorize(actor, "exchange.read", org_id=actor.org_id)
        query = query.where(ShareRequest.requester_org_id == actor.org_id)
    elif box == "incoming":
        authorize(actor, "exchange.read", org_id=actor.org_id)
        query = query.where(ShareRequest.owner_org_id == actor.org_id, ShareRequest.state != S.DRAFT)
    elif box == "all":
        authorize(actor, "exchange.bureau")
        query = query.where(ShareRequest.state != S.DRAFT)
    else:
        raise Invalid(f"box must be outgoing, incoming or all, not {box!r}", detail={"parameter": "box"})
    if state:
        if state not in set(S):
            raise Invalid(f"unknown state {state!r}", detail={"parameter": "state"})
        query = query.where(ShareRequest.state == state)
    if dataset_id is not None:
        query = query.where(ShareRequest.dataset_id == dataset_id)
    if box == "incoming" and after is None:
        # the owner's queue: open requests by deadline first, then the rest newest first (one page)
        rows = list(
            session.scalars(
                query.order_by(
                    (ShareRequest.state != S.SUBMITTED), ShareRequest.due_at, ShareRequest.id.desc()
                ).limit(limit)
            )
        )
        return Page(items=rows, next=None)
    return keyset_page(session, query, ShareRequest.id, after=after, limit=limit, newest_first=True)


def grant_of(session: Session, request_id: int) -> Grant | None:
    """The grant an approved request created."""
    return session.scalar(select(Grant).where(Grant.request_id == request_id))


# ---------------------------------------------------------------- transitions


def _audit(session: Session, actor: Actor, request: ShareRequest, action: str, **detail: Any) -> None:
    record(
        session=session,
        actor=actor,
        action=f"exchange.request.{action}",
        object_type="share_request",
        object_id=request.id,
        object_org_id=request.owner_org_id,
        detail={"dataset": request.dataset_id, "state": request.state, **detail},
    )


def _move(request: ShareRequest, allowed: Sequence[str], to: str) -> None:
    if request.state not in allowed:
        raise Conflict(
            T(
                "sharing request #{id} is {state}; it cannot become {to}",
                id=request.id,
                state=request.state,
                to=to,
            ),
            detail={"state": request.state, "to": to},
        )
    request.state = to
    request.updated_at = clock.now()


def create_request(*, session: Session, actor: Actor, data: RequestIn) -> ShareRequest:
    """A draft request (or a submitted one, with ``data.submit``) from the actor's organisation."""
    authorize(actor, "exchange.request", org_id=actor.org_id)
    dataset = catalog.read_dataset(session=session, actor=actor, dataset=data.dataset)
    if dataset.sharing_class == SharingClass.NOT_SHARED:
        raise Forbidden(
            T("dataset {slug} is not shared (不予共享) and cannot be requested", slug=dataset.slug),
            detail={"dataset": dataset.slug},
        )
    if dataset.owner_org_id == actor.org_id:
        raise Invalid(
            T("dataset {slug} belongs to your own organisation; no request is needed", slug=dataset.slug),
            detail={"dataset": dataset.slug},
        )
    _check_scope(dataset, data.columns, data.row_filter)
    _check_period(data.starts_on, data.expires_on)
    now = clock.now()
    assert actor.org_id is not None  # exchange.request requires an organisation
    request = ShareRequest(
        dataset_id=dataset.id,
        owner_org_id=dataset.owner_org_id,
        requester_org_id=actor.org_id,
        requester_user_id=actor.user_id,
        requester=actor.username,
        purpose=data.purpose.strip(),
        legal_basis=data.legal_basis.strip(),
        columns=list(data.columns),
        row_filter=data.row_filter,
        min_version=data.min_version,
        starts_on=data.starts_on,
        expires_on=data.expires_on,
        mode=str(data.mode),
        state=S.DRAFT,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    _audit(session, actor, request, "create")
    if data.submit:
        submit(session=session, actor=actor, request_id=request.id)
    return request


def submit(*, session: Session, actor: Actor, request_id: int) -> ShareRequest:
    """Send a draft to the owner; the reply deadline starts now."""
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    authorize(actor, "exchange.request", org_id=request.requester_org_id)
    dataset = catalog.get_or_raise(session=session, dataset=request.dataset_id)
    if dataset.sharing_class == SharingClass.NOT_SHARED:
        raise Forbidden(
            T("dataset {slug} is not shared (不予共享) and cannot be requested", slug=dataset.slug),
            detail={"dataset": dataset.slug},
        )
    _check_scope(dataset, request.columns, request.row_filter)
    _check_period(request.starts_on, request.expires_on)
    _move(request, [S.DRAFT], S.SUBMITTED)
    request.submitted_at = clock.now()
    request.due_at = workdays.reply_deadline(session, request.submitted_at)
    _audit(session, actor, request, "submit", due_at=request.due_at.isoformat())
    notifications.notify_org(
        session=session,
        org_id=request.owner_org_id,
        kind="exchange.request",
        message=T("a sharing request for {slug} awaits your answer", slug=dataset.slug),
        link=f"/exchange/requests/{request.id}",
        roles=[Role.ADMIN, Role.STEWARD],
    )
    return request


def _answerer(session: Session, actor: Actor, request: ShareRequest, *, reply: bool = True) -> bool:
    """Authorise an answer: the owner's steward or admin, or a data bureau administrator in the
    owner's place (a reply only once the request is overdue; a revocation at any time).
    Returns whether the bureau acted for the owner."""
    if can(actor, "exchange.answer", org_id=request.owner_org_id) and actor.org_id == request.owner_org_id:
        return False
    if actor.is_platform_admin:
        if reply and request.state == S.SUBMITTED and not is_overdue(request):
            raise Forbidden(
                T(
                    "sharing request #{id} is not overdue; the data bureau answers in the owner's place "
                    "only after the deadline",
                    id=request.id,
                ),
                detail={
                    "request": request.id,
                    "due_at": request.due_at.isoformat() if request.due_at else None,
                },
            )
        return True
    authorize(actor, "exchange.answer", org_id=request.owner_org_id, what=f"sharing request #{request.id}")
    return False


def _grant(session: Session, request: ShareRequest) -> Grant:
    now = clock.now()
    grant = Grant(
        request_id=request.id,
        dataset_id=request.dataset_id,
        owner_org_id=request.owner_org_id,
        grantee_org_id=request.requester_org_id,
        purpose=request.purpose,
        columns=list(request.columns),
        row_filter=request.row_filter,
        min_version=request.min_version,
        mode=request.mode,
        starts_at=_start_of(request.starts_on),
        expires_at=_start_of(request.expires_on + timedelta(days=1)),
        created_at=now,
    )
    session.add(grant)
    session.flush()
    if request.mode == AccessMode.SUBSCRIPTION:
        session.add(Subscription(grant_id=grant.id, created_at=now, secret=secrets.token_urlsafe(32)))
    return grant


def _answered(session: Session, actor: Actor, request: ShareRequest, for_owner: bool, message: str) -> None:
    request.answered_at = clock.now()
    request.answered_by = actor.username
    request.answered_for_owner = for_owner
    notifications.notify_org(
        session=session,
        org_id=request.requester_org_id,
        kind="exchange.answer",
        message=message,
        link=f"/exchange/requests/{request.id}",
    )


def approve(*, session: Session, actor: Actor, request_id: int) -> ShareRequest:
    """Approve as asked; the grant is active from the start of the period."""
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    for_owner = _answerer(session, actor, request)
    _move(request, [S.SUBMITTED], S.APPROVED)
    grant = _grant(session, request)
    _answered(session, actor, request, for_owner, T("sharing request #{id} was approved", id=request.id))
    _audit(session, actor, request, "approve", grant=grant.id, for_owner=for_owner)
    refresh(session, only=request.id)
    return request


def narrow(*, session: Session, actor: Actor, request_id: int, data: NarrowIn) -> ShareRequest:
    """Approve with a narrower scope: fewer columns, an added row condition, later versions or a
    shorter period. The reason is required; widening anything is refused."""
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    for_owner = _answerer(session, actor, request)
    dataset = catalog.get_or_raise(session=session, dataset=request.dataset_id)
    changes: dict[str, Any] = {}
    if data.columns is not None:
        wider = [c for c in data.columns if c not in request.columns]
        if wider:
            raise Invalid(
                T(
                    "narrowing cannot add columns that were not asked for: {columns}",
                    columns=", ".join(wider),
                ),
                detail={"field": "columns", "columns": wider},
            )
        if sorted(data.columns) != sorted(request.columns):
            changes["columns"] = {"from": request.columns, "to": list(data.columns)}
            request.columns = list(data.columns)
    if data.row_filter is not None:
        _check_scope(dataset, request.columns, data.row_filter)
        combined = (
            data.row_filter if request.row_filter is None else {"and": [request.row_filter, data.row_filter]}
        )
        changes["row_filter"] = {"added": data.row_filter}
        request.row_filter = combined
    if data.min_version is not None:
        if request.min_version is not None and data.min_version < request.min_version:
            raise Invalid("narrowing cannot open earlier versions", detail={"field": "min_version"})
        changes["min_version"] = {"from": request.min_version, "to": data.min_version}
        request.min_version = data.min_version
    if data.starts_on is not None:
        if data.starts_on < request.starts_on:
            raise Invalid("narrowing cannot start the period earlier", detail={"field": "starts_on"})
        changes["starts_on"] = {"from": request.starts_on.isoformat(), "to": data.starts_on.isoformat()}
        request.starts_on = data.starts_on
    if data.expires_on is not None:
        if data.expires_on > request.expires_on:
            raise Invalid("narrowing cannot end the period later", detail={"field": "expires_on"})
        changes["expires_on"] = {"from": request.expires_on.isoformat(), "to": data.expires_on.isoformat()}
        request.expires_on = data.expires_on
    if not changes:
        raise Invalid(
            "nothing was narrowed; approve the request as it is instead", detail={"field": "columns"}
        )
    _check_period(request.starts_on, request.expires_on)
    _move(request, [S.SUBMITTED], S.NARROWED)
    request.narrowed = True
    request.reason = data.reason.strip()
    grant = _grant(session, request)
    _answered(
        session,
        actor,
        request,
        for_owner,
        T("sharing request #{id} was approved with a narrower scope", id=request.id),
    )
    _audit(
        session,
        actor,
        request,
        "narrow",
        grant=grant.id,
        for_owner=for_owner,
        reason=request.reason,
        **changes,
    )
    refresh(session, only=request.id)
    return request


def reject(*, session: Session, actor: Actor, request_id: int, reason: str) -> ShareRequest:
    """Refuse a request; the reason is required and shown to the requester."""
    reason = reason.strip()
    if not reason:
        raise Invalid("a rejection needs a reason", detail={"field": "reason"})
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    for_owner = _answerer(session, actor, request)
    _move(request, [S.SUBMITTED], S.REJECTED)
    request.reason = reason
    _answered(session, actor, request, for_owner, T("sharing request #{id} was rejected", id=request.id))
    _audit(session, actor, request, "reject", reason=reason, for_owner=for_owner)
    return request


def revoke(*, session: Session, actor: Actor, request_id: int, reason: str) -> ShareRequest:
    """End a grant before its time (owner or data bureau); access stops on the very next read."""
    reason = reason.strip()
    if not reason:
        raise Invalid("a revocation needs a reason", detail={"field": "reason"})
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    _answerer(session, actor, request, reply=False)
    _move(request, _OPEN_STATES, S.REVOKED)
    grant = grant_of(session, request.id)
    if grant is not None:
        grant.revoked_at = clock.now()
        grant.revoked_by = actor.username
        grant.revoke_reason = reason
    request.reason = reason
    notifications.notify_org(
        session=session,
        org_id=request.requester_org_id,
        kind="exchange.revoke",
        message=T("the grant of sharing request #{id} was revoked", id=request.id),
        link=f"/exchange/requests/{request.id}",
    )
    _audit(session, actor, request, "revoke", reason=reason)
    return request


def reassign(
    *, session: Session, actor: Actor, request_id: int, assignee: str, reason: str = ""
) -> ShareRequest:
    """The data bureau hands a submitted request to a named steward of the owner, with a new deadline."""
    authorize(actor, "exchange.bureau")
    if not actor.is_platform_admin:
        authorize(actor, "exchange.calendar")  # bureau administrators only
    request = get_request_or_raise(session=session, actor=actor, request_id=request_id)
    if request.state != S.SUBMITTED:
        raise Conflict(
            T(
                "sharing request #{id} is {state}; only submitted requests can be reassigned",
                id=request.id,
                state=request.state,
            ),
            detail={"state": request.state},
        )
    user = session.scalar(select(User).where(User.username == assignee))
    if user is None or user.org_id != request.owner_org_id or user.role not in {Role.ADMIN, Role.STEWARD}:
        raise Invalid(
            T("{user} is not a steward or administrator of the owning organisation", user=assignee),
            detail={"field": "assignee"},
        )
    request.assignee_user_id = user.id
    request.due_at = workdays.reply_deadline(session, clock.now())
    request.escalated_at = None
    request.updated_at = clock.now()
    notifications.notify_users(
        session=session,
        user_ids=[user.id],
        kind="exchange.assigned",
        message=T("the data bureau assigned sharing request #{id} to you", id=request.id),
        link=f"/exchange/requests/{request.id}",
    )
    _audit(
        session,
        actor,
        request,
        "reassign",
        assignee=assignee,
        reason=reason,
        due_at=request.due_at.isoformat(),
    )
    return request


def refresh(session: Session, *, only: int | None = None) -> int:
    """Apply the clock: start approved grants whose period began, expire those that ended, and
    escalate overdue requests to the data bureau (once each). Returns how many requests changed."""
    now = clock.now()
    robot = system_actor("exchange")
    changed = 0
    base = select(ShareRequest)
    if only is not None:
        base = base.where(ShareRequest.id == only)
    starting = session.scalars(
        base.join(Grant, Grant.request_id == ShareRequest.id).where(
            ShareRequest.state.in_([S.APPROVED, S.NARROWED]), Grant.starts_at <= now, Grant.expires_at > now
        )
    ).all()
    for request in starting:
        request.state, request.updated_at = S.ACTIVE, now
        _audit(session, robot, request, "activate")
        changed += 1
    ending = session.scalars(
        base.join(Grant, Grant.request_id == ShareRequest.id).where(
            ShareRequest.state.in_(_OPEN_STATES), Grant.expires_at <= now
        )
    ).all()
    for request in ending:
        request.state, request.updated_at = S.EXPIRED, now
        _audit(session, robot, request, "expire")
        changed += 1
    overdue = session.scalars(
        base.where(
            ShareRequest.state == S.SUBMITTED, ShareRequest.due_at <= now, ShareRequest.escalated_at.is_(None)
        )
    ).all()
    bureaus = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.DATA_BUREAU)).all()
    for request in overdue:
        # Claimed with a guarded UPDATE, so that two server workers never escalate it twice.
        claimed = session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == request.id, ShareRequest.escalated_at.is_(None))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        request.escalated_at = now
        _audit(session, robot, request, "escalate")
        for org_id in bureaus:
            notifications.notify_org(
                session=session,
                org_id=org_id,
                kind="exchange.overdue",
                message=T("sharing request #{id} is past its reply deadline", id=request.id),
                link=f"/exchange/requests/{request.id}",
                roles=[Role.ADMIN, Role.STEWARD],
            )
        notifications.notify_org(
            session=session,
            org_id=request.owner_org_id,
            kind="exchange.overdue",
            message=T("sharing request #{id} is past its reply deadline", id=request.id),
            link=f"/exchange/requests/{request.id}",
            roles=[Role.ADMIN, Role.STEWARD],
        )
        changed += 1
    if changed:
        session.flush()
    return changed


# ---------------------------------------------------------------- grants


def live_at(now: datetime) -> ColumnElement[bool]:
    """The SQL condition of a grant in force at ``now``: not revoked, started, not expired."""
    return and_(Grant.revoked_at.is_(None), Grant.starts_at <= now, Grant.expires_at > now)


def _is_live(grant: Grant, now: datetime) -> bool:
    return grant.revoked_at is None and grant.starts_at <= now < grant.expires_at


def find_grants(session: Session, actor: Actor, dataset: Dataset) -> list[GrantView]:
    """The actor's organisation's grants on ``dataset`` that are live at this instant."""
    if actor.org_id is None:
        return []
    rows = session.scalars(
        select(Grant).where(
            Grant.dataset_id == dataset.id,
            Grant.grantee_org_id == actor.org_id,
            live_at(clock.now()),
        )
    ).all()
    return [
        GrantView(
            id=g.id,
            columns=tuple(g.columns),
            row_filter=g.row_filter,
            min_version=g.min_version,
            mode=g.mode,
            purpose=g.purpose,
            expires_at=g.expires_at,
        )
        for g in rows
    ]


def record_use(session: Session, use: Use) -> None:
    """Keep one read through a grant, for the owner's usage page."""
    session.add(
        GrantUse(
            grant_id=use.grant_id,
            dataset_id=use.dataset_id,
            at=clock.now(),
            actor=use.actor.username,
            org_id=use.actor.org_id,
            action=use.action,
            version=use.version,
            columns=list(use.columns),
            rows=use.rows,
        )
    )


def get_grant_or_raise(*, session: Session, actor: Actor, grant_id: int) -> Grant:
    """A grant the actor's organisation holds or gave, or any for the data bureau."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(T("grant #{id} does not exist", id=grant_id), detail={"grant": grant_id})
    if not (
        can(actor, "exchange.read", org_id=grant.grantee_org_id)
        or can(actor, "exchange.read", org_id=grant.owner_org_id)
        or can(actor, "exchange.bureau")
    ):
        raise Forbidden(T("you may not see grant #{id}", id=grant_id), detail={"grant": grant_id})
    return grant


def is_live(grant: Grant) -> bool:
    """Whether the grant gives access at this instant."""
    return _is_live(grant, clock.now())


def list_grants(
    *,
    session: Session,
    actor: Actor,
    side: str = "held",
    live_only: bool = False,
    after: str | None = None,
    limit: int = 50,
) -> Page[Grant]:
    """Grants the actor's organisation holds (``held``) or has given (``given``)."""
    authorize(actor, "exchange.read", org_id=actor.org_id)
    if side not in {"held", "given"}:
        raise Invalid(f"side must be held or given, not {side!r}", detail={"parameter": "side"})
    column = Grant.grantee_org_id if side == "held" else Grant.owner_org_id
    query = select(Grant).where(column == actor.org_id)
    if live_only:
        query = query.where(live_at(clock.now()))
    return keyset_page(session, query, Grant.id, after=after, limit=limit, newest_first=True)


def usage(*, session: Session, actor: Actor, dataset: int | str) -> list[dict[str, Any]]:
    """Who read a dataset through grants, how often, how many rows, for which stated purpose."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    if not (can(actor, "exchange.answer", org_id=found.owner_org_id) or can(actor, "exchange.bureau")):
        raise Forbidden(
            T("only the owner of dataset {slug} and the data bureau may see its usage", slug=found.slug),
            detail={"dataset": found.slug},
        )
    rows = session.execute(
        select(
            GrantUse.grant_id,
            Grant.grantee_org_id,
            Grant.purpose,
            func.count(GrantUse.id),
            func.coalesce(func.sum(GrantUse.rows), 0),
            func.max(GrantUse.at),
        )
        .join(Grant, Grant.id == GrantUse.grant_id)
        .where(GrantUse.dataset_id == found.id)
        .group_by(GrantUse.grant_id, Grant.grantee_org_id, Grant.purpose)
        .order_by(func.count(GrantUse.id).desc())
    ).all()
    record(
        session=session,
        actor=actor,
        action="exchange.usage.read",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
    )
    return [
        {"grant_id": g, "org_id": o, "purpose": p, "reads": int(n), "rows": int(r), "last_read_at": last}
        for g, o, p, n, r, last in rows
    ]


# ---------------------------------------------------------------- subscriptions


def authorize_read(actor: Actor) -> None:
    """The actor may use the exchange at all (staff of a member organisation, or the bureau)."""
    authorize(actor, "exchange.read", org_id=actor.org_id)


def set_subscription(
    *, session: Session, actor: Actor, grant_id: int, webhook_url: str
) -> tuple[Subscription, str | None]:
    """Set (or clear) the webhook of a subscription grant; returns the subscription and, when a
    webhook was set, its new signing secret (shown once)."""
    from zhishe.exchange import webhooks

    grant = get_grant_or_raise(session=session, actor=actor, grant_id=grant_id)
    authorize(actor, "exchange.answer", org_id=grant.grantee_org_id, what=f"grant #{grant.id}")
    if actor.org_id != grant.grantee_org_id and not actor.is_platform_admin:
        raise Forbidden(T("only the grantee may subscribe through grant #{id}", id=grant.id))
    if grant.mode != AccessMode.SUBSCRIPTION:
        raise Conflict(
            T("grant #{id} is for {mode}, not a subscription to new versions", id=grant.id, mode=grant.mode),
            detail={"mode": grant.mode},
        )
    subscription = session.scalar(select(Subscription).where(Subscription.grant_id == grant.id))
    if subscription is None:
        subscription = Subscription(grant_id=grant.id, created_at=clock.now(), secret="")
        session.add(subscription)
    url = webhook_url.strip()
    secret: str | None = None
    if url:
        subscription.webhook_url = webhooks.check_url(url)
        secret = webhooks.new_secret()
        subscription.secret = secret
    else:
        subscription.webhook_url = ""
    subscription.is_active = True
    session.flush()
    record(
        session=session,
        actor=actor,
        action="exchange.subscription.set",
        object_type="grant",
        object_id=grant.id,
        object_org_id=grant.owner_org_id,
        detail={"webhook": bool(url)},
    )
    return subscription, secret


def deliveries(*, session: Session, actor: Actor, grant_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The webhook deliveries of a grant's subscription, newest first."""
    from zhishe.exchange.models import WebhookDelivery

    grant = get_grant_or_raise(session=session, actor=actor, grant_id=grant_id)
    rows = session.scalars(
        select(WebhookDelivery)
        .join(Subscription, Subscription.id == WebhookDelivery.subscription_id)
        .where(Subscription.grant_id == grant.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": d.id,
            "event": d.event,
            "status": d.status,
            "attempts": d.attempts,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "created_at": d.created_at,
            "next_attempt_at": d.next_attempt_at,
            "delivered_at": d.delivered_at,
        }
        for d in rows
    ]


def on_new_version(session: Session, *, dataset_id: int, version: int, summary: dict[str, Any]) -> int:
    """Tell every live subscription grant of a dataset about a new version: an in-app notification
    to the grantee's staff, and a webhook delivery where one is set. Returns how many grants."""
    dataset = catalog.get_or_raise(session=session, dataset=dataset_id)
    grants = session.scalars(
        select(Grant).where(
            Grant.dataset_id == dataset_id,
            Grant.mode == AccessMode.SUBSCRIPTION,
            live_at(clock.now()),
        )
    ).all()
    for grant in grants:
        if grant.min_version is not None and version < grant.min_version:
            continue
        notifications.notify_org(
            session=session,
            org_id=grant.grantee_org_id,
            kind="exchange.version",
            message=T("dataset {slug} has a new version {version}", slug=dataset.slug, version=version),
            link=f"/datasets/{dataset.slug}?tab=versions",
        )
        subscription = session.scalar(
            select(Subscription).where(Subscription.grant_id == grant.id, Subscription.is_active.is_(True))
        )
        if subscription is not None and subscription.webhook_url:
            from zhishe.exchange import webhooks

            webhooks.enqueue(
                session,
                subscription_id=subscription.id,
                event="dataset.version",
                payload={
                    "event": "dataset.version",
                    "dataset": {"id": dataset.id, "slug": dataset.slug},
                    "version": version,
                    "grant": grant.id,
                    "summary": summary,
                },
            )
    return len(grants)


def subscription_of(session: Session, grant_id: int) -> Subscription | None:
    """The subscription of a grant, if it has one."""
    return session.scalar(select(Subscription).where(Subscription.grant_id == grant_id))


def version_created(event: Event, session: Session) -> None:
    """The catalog committed a version: tell the dataset's subscribers (an event handler)."""
    payload = event.payload
    from zhishe.exchange import derived

    derived.mark_stale(session, dataset_id=int(payload["dataset_id"]), version=int(payload["version"]))
    on_new_version(
        session,
        dataset_id=int(payload["dataset_id"]),
        version=int(payload["version"]),
        summary={
            k: payload.get(k)
            for k in ("mode", "rows_inserted", "rows_updated", "rows_deleted", "row_count", "note")
        },
    )
