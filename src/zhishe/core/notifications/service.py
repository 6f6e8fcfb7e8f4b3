"""Sending notifications to users or to an organisation's staff, listing and marking them read."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import User
from zhishe.core.auth import STAFF_ROLES, Actor
from zhishe.core.errors import Forbidden
from zhishe.core.i18n import T, stored
from zhishe.core.notifications.models import Notification
from zhishe.core.pagination import Page, keyset_page

__all__ = ["list_for", "mark_read", "notify_org", "notify_users", "unread_count"]


def notify_users(
    *, session: Session, user_ids: Iterable[int], kind: str, message: str, link: str = ""
) -> int:
    """One notification per user (duplicates ignored); returns how many were written."""
    now = clock.now()
    data = stored(message)
    ids = sorted(set(user_ids))
    session.add_all(
        Notification(user_id=user_id, kind=kind, message=data, link=link, created_at=now) for user_id in ids
    )
    return len(ids)


def notify_org(
    *,
    session: Session,
    org_id: int,
    kind: str,
    message: str,
    link: str = "",
    roles: Iterable[str] | None = None,
) -> int:
    """Notify every active staff user of an organisation (or only those with one of ``roles``)."""
    wanted = [str(r) for r in roles] if roles is not None else [str(r) for r in STAFF_ROLES]
    ids = session.scalars(
        select(User.id).where(User.org_id == org_id, User.is_active.is_(True), User.role.in_(wanted))
    ).all()
    return notify_users(session=session, user_ids=ids, kind=kind, message=message, link=link)


def _own(actor: Actor) -> int:
    if actor.user_id is None:
        raise Forbidden(T("notifications belong to users; this actor is not a user"))
    return actor.user_id


def list_for(
    *, session: Session, actor: Actor, unread_only: bool = False, after: str | None = None, limit: int = 50
) -> Page[Notification]:
    """The actor's own notifications, newest first."""
    query = select(Notification).where(Notification.user_id == _own(actor))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return keyset_page(session, query, Notification.id, after=after, limit=limit, newest_first=True)


def unread_count(*, session: Session, actor: Actor) -> int:
    """How many of the actor's notifications are unread (0 for actors that are not users)."""
    if actor.user_id is None:
        return 0
    query = select(func.count()).where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
    return session.scalar(query) or 0


def mark_read(*, session: Session, actor: Actor, ids: Iterable[int] | None = None) -> int:
    """Mark the actor's notifications read: the given ones, or all; returns how many changed."""
    query = update(Notification).where(Notification.user_id == _own(actor), Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    result = session.execute(query.values(read_at=clock.now()))
    return int(getattr(result, "rowcount", 0) or 0)
