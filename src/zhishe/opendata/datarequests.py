"""Public data requests: anyone asks for data that is not open yet; the owner answers in time.

    open -> answered (a release that answers it is linked) | declined (with a public reason)

A request is routed to the department that owns the data: the owner of the dataset it names, the
department the requester chose, or else the data bureau, which may route it on. Its reply deadline
counts working days on the exchange's calendar. Requests and answers are public; the requester's
contact is shown only to the owner. Supporters are counted once each, by a keyed hash of who they
are (a signed-in user, or the address and browser of an anonymous one); nothing else is kept.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhishe.catalog.models import Dataset
from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, OrgKind, Role, authorize, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.exchange import workdays
from zhishe.opendata.models import DataRequest, DataRequestSupport, Release

__all__ = [
    "STATES",
    "RequestView",
    "answer",
    "decline",
    "file_request",
    "get_or_raise",
    "list_requests",
    "owners",
    "reply_days",
    "route",
    "support",
]

STATES = ("open", "answered", "declined")
_ROUTABLE = (
    OrgKind.DEPARTMENT,
    OrgKind.DATA_BUREAU,
    OrgKind.OPERATOR,
    OrgKind.CLINIC,
    OrgKind.COMMUNITY_COMMITTEE,
)


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as shown to someone: the contact only when they may see it."""

    request: DataRequest
    owner_name: str
    contact: str
    overdue: bool
    release_number: int | None
    dataset_slug: str | None


def owners(session: Session) -> list[Organisation]:
    """Organisations a request can be routed to."""
    return list(
        session.scalars(
            select(Organisation).where(Organisation.kind.in_(_ROUTABLE)).order_by(Organisation.id)
        )
    )


def _bureau(session: Session) -> Organisation:
    found = accounts.first_org_of_kind(session=session, kind=OrgKind.DATA_BUREAU)
    if found is None:
        raise NotFound("there is no data bureau to receive data requests")
    return found


def _text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise Invalid(T("{field} is required", field=field), detail={"field": field})
    if len(value) > limit:
        raise Invalid(
            T("{field} may have at most {limit} characters", field=field, limit=f"{limit:,}"),
            detail={"field": field},
        )
    if "\x00" in value:
        raise Invalid(T("{field} contains a NUL character", field=field), detail={"field": field})
    return value


def file_request(
    *,
    session: Session,
    title: str,
    description: str,
    purpose: str = "",
    contact: str = "",
    owner_org_id: int | None = None,
    dataset: str | None = None,
) -> DataRequest:
    """File a public request (no login needed). Routed and given its reply deadline at once."""
    title = _text(title, "title", 200)
    description = _text(description, "description", 4000)
    purpose = _text(purpose, "purpose", 4000, required=False)
    contact = _text(contact, "contact", 254, required=False)
    found: Dataset | None = None
    if dataset:
        # only open datasets can be named: the public must not learn what the internal catalog holds
        found = session.scalar(
            select(Dataset).where(
                Dataset.slug == dataset.strip(),
                Dataset.id.in_(select(Release.dataset_id).where(Release.state == "published")),
            )
        )
        if found is None:
            raise Invalid(T("no open dataset is called {slug}", slug=dataset), detail={"field": "dataset"})
    if found is not None:
        owner_id = found.owner_org_id
    elif owner_org_id is not None:
        org = session.get(Organisation, owner_org_id)
        if org is None or org.kind not in _ROUTABLE:
            raise Invalid("choose a department from the list", detail={"field": "owner_org_id"})
        owner_id = org.id
    else:
        owner_id = _bureau(session).id
    now = clock.now()
    request = DataRequest(
        title=title,
        description=description,
        purpose=purpose,
        contact=contact,
        owner_org_id=owner_id,
        dataset_id=found.id if found else None,
        state="open",
        supporters=0,
        created_at=now,
        due_at=workdays.reply_deadline(session, now, reply_days()),
    )
    session.add(request)
    session.flush()
    record(
        session=session,
        actor=None,
        action="opendata.request.file",
        object_type="data_request",
        object_id=request.id,
        object_org_id=owner_id,
        detail={"title": title},
    )
    notifications.notify_org(
        session=session,
        org_id=owner_id,
        kind="opendata.request",
        message=T("the public asked for data: {title}", title=title),
        link=f"/opendata/requests/{request.id}",
        roles=[Role.ADMIN, Role.STEWARD],
    )
    return request


def reply_days() -> int:
    """Working days an owner has to answer a public data request."""
    return get_settings().exchange_reply_days


def get_or_raise(*, session: Session, request_id: int) -> DataRequest:
    """A request by id."""
    found = session.get(DataRequest, request_id)
    if found is None:
        raise NotFound(T("no data request has the number {id}", id=request_id))
    return found


def view(session: Session, request: DataRequest, actor: Actor | None) -> RequestView:
    """A request as ``actor`` (None: the public) may see it."""
    owner = session.get(Organisation, request.owner_org_id)
    release = session.get(Release, request.release_id) if request.release_id else None
    slug = None
    if release is not None:
        slug = session.scalar(select(Dataset.slug).where(Dataset.id == release.dataset_id))
    elif request.dataset_id is not None:
        slug = session.scalar(select(Dataset.slug).where(Dataset.id == request.dataset_id))
    sees_contact = actor is not None and can(actor, "opendata.answer", org_id=request.owner_org_id)
    if sees_contact and request.contact:
        record(
            session=session,
            actor=actor,
            action="opendata.request.read_contact",
            object_type="data_request",
            object_id=request.id,
            object_org_id=request.owner_org_id,
        )
    return RequestView(
        request=request,
        owner_name=owner.name_zh if owner else "",
        contact=request.contact if sees_contact else "",
        overdue=request.state == "open" and request.due_at <= clock.now(),
        release_number=release.number if release else None,
        dataset_slug=slug,
    )


def list_requests(
    *, session: Session, state: str | None = None, owner_org_id: int | None = None, limit: int = 100
) -> list[DataRequest]:
    """Requests, newest first (public)."""
    query = select(DataRequest).order_by(DataRequest.id.desc()).limit(min(max(limit, 1), 500))
    if state:
        if state not in STATES and state != "overdue":
            raise Invalid(
                f"state must be one of {', '.join(STATES)} or overdue", detail={"parameter": "state"}
            )
        if state == "overdue":
            query = query.where(DataRequest.state == "open", DataRequest.due_at <= clock.now())
        else:
            query = query.where(DataRequest.state == state)
    if owner_org_id is not None:
        query = query.where(DataRequest.owner_org_id == owner_org_id)
    return list(session.scalars(query))


def support(*, session: Session, request_id: int, who: str) -> DataRequest:
    """Add one supporter (``who`` identifies them; only its keyed hash is kept). Idempotent."""
    request = get_or_raise(session=session, request_id=request_id)
    if request.state != "open":
        raise Conflict(T("this request is closed"))
    key = get_settings().secret().encode()
    supporter = hmac.new(key, f"request-support:{who}".encode(), hashlib.sha256).hexdigest()
    try:
        with session.begin_nested():
            session.add(DataRequestSupport(request_id=request.id, supporter=supporter, at=clock.now()))
    except IntegrityError:
        return request  # already counted
    session.execute(
        update(DataRequest).where(DataRequest.id == request.id).values(supporters=DataRequest.supporters + 1)
    )
    session.refresh(request)
    return request


def _closable(session: Session, actor: Actor, request_id: int) -> DataRequest:
    request = get_or_raise(session=session, request_id=request_id)
    authorize(actor, "opendata.answer", org_id=request.owner_org_id, what=f"data request {request.id}")
    if request.state != "open":
        raise Conflict(T("this request is already {state}", state=request.state))
    return request


def answer(
    *, session: Session, actor: Actor, request_id: int, dataset: str, number: int | None = None
) -> DataRequest:
    """Close a request with the published release that answers it (the newest when no number)."""
    request = _closable(session, actor, request_id)
    found = session.scalar(select(Dataset).where(Dataset.slug == dataset))
    query = select(Release).where(Release.state == "published")
    if found is not None:
        query = query.where(Release.dataset_id == found.id)
        query = query.where(Release.number == number) if number else query.order_by(Release.number.desc())
    release = session.scalar(query.limit(1)) if found is not None else None
    if release is None:
        raise Invalid(
            T("{slug} has no published release to answer with", slug=dataset), detail={"field": "dataset"}
        )
    return _close(session, actor, request, "answered", release_id=release.id)


def decline(*, session: Session, actor: Actor, request_id: int, reason: str) -> DataRequest:
    """Close a request with a public reason."""
    request = _closable(session, actor, request_id)
    return _close(session, actor, request, "declined", reason=_text(reason, "reason", 4000))


def _close(
    session: Session,
    actor: Actor,
    request: DataRequest,
    state: str,
    *,
    release_id: int | None = None,
    reason: str = "",
) -> DataRequest:
    request.state, request.closed_at, request.closed_by = state, clock.now(), actor.username
    request.release_id, request.reason = release_id, reason
    record(
        session=session,
        actor=actor,
        action=f"opendata.request.{state}",
        object_type="data_request",
        object_id=request.id,
        object_org_id=request.owner_org_id,
        detail={"release_id": release_id, "reason": reason[:200]},
    )
    return request


def route(*, session: Session, actor: Actor, request_id: int, owner_org_id: int) -> DataRequest:
    """Send an open request to another owner (the data bureau, or its current owner). The reply
    deadline starts again from now."""
    request = _closable(session, actor, request_id)
    org = session.get(Organisation, owner_org_id)
    if org is None or org.kind not in _ROUTABLE:
        raise Invalid("choose a department from the list", detail={"field": "owner_org_id"})
    now = clock.now()
    previous, request.owner_org_id = request.owner_org_id, org.id
    request.due_at = workdays.reply_deadline(session, now, reply_days())
    record(
        session=session,
        actor=actor,
        action="opendata.request.route",
        object_type="data_request",
        object_id=request.id,
        object_org_id=org.id,
        detail={"from": previous, "to": org.id},
    )
    notifications.notify_org(
        session=session,
        org_id=org.id,
        kind="opendata.request",
        message=T("the public asked for data: {title}", title=request.title),
        link=f"/opendata/requests/{request.id}",
        roles=[Role.ADMIN, Role.STEWARD],
    )
    return request


def reply_hours(session: Session) -> list[float]:
    """Hours from filing to closing of every closed request."""
    rows = session.execute(
        select(DataRequest.created_at, DataRequest.closed_at).where(DataRequest.closed_at.is_not(None))
    )
    return [(closed - created).total_seconds() / 3600 for created, closed in rows if closed is not None]


def counts(session: Session) -> dict[str, int]:
    """Requests by state, and how many open ones are overdue."""
    result = {state: 0 for state in STATES}
    for state, n in session.execute(select(DataRequest.state, func.count()).group_by(DataRequest.state)):
        result[str(state)] = int(n)
    result["overdue"] = int(
        session.scalar(
            select(func.count()).where(DataRequest.state == "open", DataRequest.due_at <= clock.now())
        )
        or 0
    )
    return result


def closed_in(session: Session, start: datetime, end: datetime) -> int:
    """Requests closed in [start, end)."""
    return int(
        session.scalar(
            select(func.count()).where(DataRequest.closed_at >= start, DataRequest.closed_at < end)
        )
        or 0
    )
