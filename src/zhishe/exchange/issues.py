"""Data issues: a reader reports what is wrong in a dataset version, the owner triages it, fixes it
with a new version (an import, or a cell edited in the browser with a reason), everyone using the
data hears of the correction with a diff summary, and the reporter confirms or reopens.

States::

    open -> accepted | rejected | needs_info
    needs_info -> open (the reporter answers)
    accepted | open | reopened -> fixed (linked to the version that fixes it)
    fixed -> confirmed | reopened (the reporter)
    reopened -> accepted | rejected | needs_info
"""

from __future__ import annotations

import statistics
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.catalog import flows
from zhishe.catalog import reads as catalog_reads
from zhishe.catalog import service as catalog
from zhishe.catalog.lake.filters import coerce_value
from zhishe.catalog.models import Dataset
from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize, can, system_actor
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.core.pagination import Page, keyset_page
from zhishe.exchange.models import DataIssue, DataIssueEvent, Grant
from zhishe.exchange.service import live_at

__all__ = [
    "KINDS",
    "comment",
    "confirm",
    "file_issue",
    "file_public_issue",
    "fix_by_edit",
    "fix_with_version",
    "get_issue_or_raise",
    "list_issues",
    "reopen",
    "thread",
    "triage",
    "turnaround",
]

KINDS = ("value", "missing_period", "definition")
_TRIAGE = {"accepted", "rejected", "needs_info"}
_FIXABLE = {"open", "accepted", "reopened", "needs_info"}


def _event(
    session: Session, issue: DataIssue, actor: Actor, kind: str, body: str = "", state: str = ""
) -> None:
    session.add(
        DataIssueEvent(
            issue_id=issue.id,
            at=clock.now(),
            actor=actor.username,
            org_id=actor.org_id,
            kind=kind,
            state=state,
            body=body,
        )
    )
    record(
        session=session,
        actor=actor,
        action=f"exchange.issue.{kind if kind == 'comment' else state}",
        object_type="data_issue",
        object_id=issue.id,
        object_org_id=issue.owner_org_id,
        detail={"dataset": issue.dataset_id, "state": issue.state},
    )


def _is_owner_side(actor: Actor, issue: DataIssue) -> bool:
    return can(actor, "exchange.answer", org_id=issue.owner_org_id) and (
        actor.org_id == issue.owner_org_id or actor.is_platform_admin
    )


def _is_reporter(actor: Actor, issue: DataIssue) -> bool:
    return (actor.user_id is not None and actor.user_id == issue.reporter_user_id) or (
        actor.org_id is not None and actor.org_id == issue.reporter_org_id and actor.is_staff
    )


def file_issue(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    kind: str,
    problem: str,
    version: int | None = None,
    key_values: dict[str, Any] | None = None,
    column: str = "",
    suggested_value: str = "",
    period: str = "",
) -> DataIssue:
    """Report a problem in a dataset version the actor may read."""
    found = catalog.read_dataset(session=session, actor=actor, dataset=dataset)
    if catalog.is_restricted(actor, found):
        raise Forbidden(
            T("dataset {slug} is not shared (不予共享)", slug=found.slug), detail={"dataset": found.slug}
        )
    return _open_issue(
        session,
        found,
        actor=actor,
        kind=kind,
        problem=problem,
        version=version,
        key_values=key_values,
        column=column,
        suggested_value=suggested_value,
        period=period,
    )


def file_public_issue(
    *,
    session: Session,
    dataset: Dataset,
    version: int | None,
    kind: str,
    problem: str,
    column: str = "",
    period: str = "",
    contact: str = "",
) -> DataIssue:
    """Open an issue reported by the public on open data. The caller (the open-data portal) has
    checked that the dataset is open; the reporter is anonymous, with an optional contact that
    only the owner sees. A wrong value needs the column but not the row's key."""
    contact = contact.strip()
    if len(contact) > 254:
        raise Invalid("the contact may have at most 254 characters", detail={"field": "contact"})
    return _open_issue(
        session,
        dataset,
        actor=system_actor("opendata-public"),
        kind=kind,
        problem=problem,
        version=version,
        column=column,
        period=period,
        contact=contact,
        public=True,
    )


def _open_issue(
    session: Session,
    found: Dataset,
    *,
    actor: Actor,
    kind: str,
    problem: str,
    version: int | None = None,
    key_values: dict[str, Any] | None = None,
    column: str = "",
    suggested_value: str = "",
    period: str = "",
    contact: str = "",
    public: bool = False,
) -> DataIssue:
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", detail={"field": "kind"})
    problem = problem.strip()
    if not problem:
        raise Invalid("say what is wrong", detail={"field": "problem"})
    if len(problem) > 4000 or len(suggested_value) > 4000:
        raise Invalid(
            "the problem and the suggested value may have at most 4,000 characters",
            detail={"field": "problem"},
        )
    names = {c.name for c in found.columns}
    keys = {c.name for c in found.columns if c.is_key}
    key_values = dict(key_values or {})
    if kind == "value" and (column or not public):
        if column not in names:
            raise Invalid(
                T("dataset {slug} has no column(s): {columns}", slug=found.slug, columns=column or "—"),
                detail={"field": "column"},
            )
        if not key_values and not public:
            raise Invalid("name the affected row by its key values", detail={"field": "key_values"})
    unknown = sorted(set(key_values) - names)
    if unknown:
        raise Invalid(
            T("dataset {slug} has no column(s): {columns}", slug=found.slug, columns=", ".join(unknown)),
            detail={"field": "key_values"},
        )
    if keys and key_values and set(key_values) != keys:
        raise Invalid(
            f"name the row by all of its key columns: {', '.join(sorted(keys))}",
            detail={"field": "key_values"},
        )
    if kind == "missing_period" and not period.strip():
        raise Invalid("name the missing period, e.g. 2026-03", detail={"field": "period"})
    at = version if version is not None else found.current_version
    if at is not None and found.current_version is not None and not 0 <= at <= found.current_version:
        raise Invalid(f"dataset {found.slug} has no version {at}", detail={"field": "version"})
    now = clock.now()
    issue = DataIssue(
        dataset_id=found.id,
        owner_org_id=found.owner_org_id,
        version=at,
        kind=kind,
        key_values={k: str(v) for k, v in key_values.items()},
        column=column,
        problem=problem,
        suggested_value=suggested_value.strip(),
        period=period.strip()[:40],
        reporter="public" if public else actor.username,
        reporter_user_id=actor.user_id,
        reporter_org_id=actor.org_id,
        reporter_contact=contact,
        state="open",
        created_at=now,
        updated_at=now,
    )
    session.add(issue)
    session.flush()
    _event(session, issue, actor, "state", problem, "open")
    notifications.notify_org(
        session=session,
        org_id=found.owner_org_id,
        kind="exchange.issue",
        message=(
            T("the public reported a problem with the open data {slug}", slug=found.slug)
            if public
            else T("a data issue was reported on {slug}", slug=found.slug)
        ),
        link=f"/exchange/issues/{issue.id}",
        roles=[Role.ADMIN, Role.STEWARD],
    )
    return issue


def get_issue_or_raise(*, session: Session, actor: Actor, issue_id: int) -> DataIssue:
    """An issue the actor may see: the owner's, the reporter's, or the bureau's."""
    issue = session.get(DataIssue, issue_id)
    if issue is None:
        raise NotFound(T("data issue #{id} does not exist", id=issue_id), detail={"issue": issue_id})
    if not (
        _is_owner_side(actor, issue)
        or _is_reporter(actor, issue)
        or can(actor, "exchange.bureau")
        or can(actor, "exchange.read", org_id=issue.owner_org_id)
    ):
        raise Forbidden(T("you may not see data issue #{id}", id=issue_id), detail={"issue": issue_id})
    return issue


def list_issues(
    *,
    session: Session,
    actor: Actor,
    box: str = "incoming",
    dataset_id: int | None = None,
    state: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[DataIssue]:
    """Issues on the actor's organisation's datasets (``incoming``) or reported by it (``outgoing``)."""
    authorize(actor, "exchange.read", org_id=actor.org_id)
    query = select(DataIssue)
    if box == "incoming":
        query = query.where(DataIssue.owner_org_id == actor.org_id)
    elif box == "outgoing":
        query = query.where(DataIssue.reporter_org_id == actor.org_id)
    elif box == "all":
        authorize(actor, "exchange.bureau")
    else:
        raise Invalid(f"box must be incoming, outgoing or all, not {box!r}", detail={"parameter": "box"})
    if dataset_id is not None:
        query = query.where(DataIssue.dataset_id == dataset_id)
    if state:
        query = query.where(DataIssue.state == state)
    return keyset_page(session, query, DataIssue.id, after=after, limit=limit, newest_first=True)


def thread(*, session: Session, actor: Actor, issue_id: int) -> list[DataIssueEvent]:
    """The issue's conversation and state changes, oldest first."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    return list(
        session.scalars(
            select(DataIssueEvent).where(DataIssueEvent.issue_id == issue.id).order_by(DataIssueEvent.id)
        )
    )


def _move(issue: DataIssue, allowed: set[str], to: str) -> None:
    if issue.state not in allowed:
        raise Conflict(
            T("data issue #{id} is {state}; it cannot become {to}", id=issue.id, state=issue.state, to=to),
            detail={"state": issue.state, "to": to},
        )
    issue.state = to
    issue.updated_at = clock.now()


def _tell_reporter(session: Session, issue: DataIssue, message: str) -> None:
    if issue.reporter_user_id is not None:
        notifications.notify_users(
            session=session,
            user_ids=[issue.reporter_user_id],
            kind="exchange.issue",
            message=message,
            link=f"/exchange/issues/{issue.id}",
        )


def triage(*, session: Session, actor: Actor, issue_id: int, state: str, reason: str = "") -> DataIssue:
    """The owner accepts, rejects (with a reason) or asks for more information (with a question)."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    if not _is_owner_side(actor, issue):
        raise Forbidden(T("only stewards and administrators of the owning organisation may answer this"))
    if state not in _TRIAGE:
        raise Invalid(
            f"state must be accepted, rejected or needs_info, not {state!r}", detail={"field": "state"}
        )
    if state in {"rejected", "needs_info"} and not reason.strip():
        raise Invalid("give a reason (or the question to the reporter)", detail={"field": "reason"})
    _move(issue, {"open", "reopened", "needs_info", "accepted"} - {state}, state)
    _event(session, issue, actor, "state", reason.strip(), state)
    _tell_reporter(session, issue, T("data issue #{id} is now {state}", id=issue.id, state=state))
    return issue


def comment(*, session: Session, actor: Actor, issue_id: int, body: str) -> DataIssue:
    """Add to the thread; the reporter's answer to a question puts the issue back to open."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    body = body.strip()
    if not body or len(body) > 4000:
        raise Invalid("a comment needs between 1 and 4,000 characters", detail={"field": "body"})
    if not (_is_owner_side(actor, issue) or _is_reporter(actor, issue)):
        raise Forbidden(T("only the owner and the reporter may write in this thread"))
    _event(session, issue, actor, "comment", body)
    if issue.state == "needs_info" and _is_reporter(actor, issue):
        _move(issue, {"needs_info"}, "open")
        _event(session, issue, actor, "state", "", "open")
    return issue


def fix_with_version(
    *, session: Session, actor: Actor, issue_id: int, version: int, note: str = ""
) -> DataIssue:
    """Link the version that fixes the issue (made by an import), close it and tell everyone."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    if not _is_owner_side(actor, issue):
        raise Forbidden(T("only stewards and administrators of the owning organisation may answer this"))
    dataset = catalog.get_or_raise(session=session, dataset=issue.dataset_id)
    if dataset.current_version is None or not 0 <= version <= dataset.current_version:
        raise Invalid(f"dataset {dataset.slug} has no version {version}", detail={"field": "version"})
    if issue.version is not None and version <= issue.version:
        raise Invalid(
            T(
                "version {version} is not newer than the version the issue was reported on ({old})",
                version=version,
                old=issue.version,
            ),
            detail={"field": "version"},
        )
    _move(issue, _FIXABLE, "fixed")
    issue.fixed_version = version
    issue.fixed_at = clock.now()
    _event(session, issue, actor, "state", note.strip(), "fixed")
    _announce_fix(session, actor, dataset, issue)
    return issue


def _announce_fix(session: Session, actor: Actor, dataset: Dataset, issue: DataIssue) -> None:
    """Tell the reporter and every live grantee of the dataset, with a diff summary."""
    assert issue.fixed_version is not None
    before = issue.version if issue.version is not None else max(issue.fixed_version - 1, 0)
    summary = ""
    if before != issue.fixed_version:
        diff = catalog_reads.diff_versions(
            session=session,
            actor=system_actor("exchange"),
            dataset=dataset.id,
            from_version=before,
            to_version=issue.fixed_version,
            sample=0,
        )
        summary = f"+{diff.added} −{diff.removed} ~{diff.changed}"
    message = T(
        "dataset {slug} was corrected in version {version} ({summary}), fixing data issue #{id}",
        slug=dataset.slug,
        version=issue.fixed_version,
        summary=summary or "—",
        id=issue.id,
    )
    _tell_reporter(session, issue, message)
    grantees = session.scalars(
        select(Grant.grantee_org_id).where(
            Grant.dataset_id == dataset.id,
            live_at(clock.now()),
        )
    ).all()
    for org_id in sorted(set(grantees)):
        notifications.notify_org(
            session=session,
            org_id=org_id,
            kind="exchange.correction",
            message=message,
            link=f"/exchange/issues/{issue.id}",
        )


def fix_by_edit(
    *,
    session: Session,
    actor: Actor,
    issue_id: int,
    value: str,
    reason: str,
    key_values: dict[str, Any] | None = None,
    column: str | None = None,
) -> DataIssue:
    """Correct one cell in the browser: a new version (an upsert of that row) with the reason as
    its note, linked to the issue. The dataset needs key columns to name the row."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    if not _is_owner_side(actor, issue):
        raise Forbidden(T("only stewards and administrators of the owning organisation may answer this"))
    if not reason.strip():
        raise Invalid("a correction needs a reason", detail={"field": "reason"})
    if issue.state not in _FIXABLE:
        raise Conflict(
            T(
                "data issue #{id} is {state}; it cannot become {to}",
                id=issue.id,
                state=issue.state,
                to="fixed",
            )
        )
    dataset = catalog.get_or_raise(session=session, dataset=issue.dataset_id)
    keys = [c.name for c in dataset.columns if c.is_key]
    if not keys:
        raise Invalid(
            T(
                "dataset {slug} has no key columns, so a row cannot be edited in place; import a corrected file",
                slug=dataset.slug,
            ),
            detail={"dataset": dataset.slug},
        )
    target = column or issue.column
    where_values = dict(key_values or issue.key_values)
    if set(where_values) != set(keys):
        raise Invalid(
            f"name the row by all of its key columns: {', '.join(keys)}", detail={"field": "key_values"}
        )
    if target not in {c.name for c in dataset.columns}:
        raise Invalid(f"unknown column {target!r}", detail={"field": "column"})
    where = {"and": [{"column": k, "op": "=", "value": v} for k, v in where_values.items()]}
    page = catalog_reads.read_rows(session=session, actor=actor, dataset=dataset.id, where=where, limit=2)
    if page.rows.num_rows != 1:
        raise NotFound(
            T(
                "no single row of {slug} has the key {key}",
                slug=dataset.slug,
                key=", ".join(f"{k}={v}" for k, v in where_values.items()),
            ),
            detail={"key_values": where_values},
        )
    row = page.rows
    specs = {c.name: c for c in catalog.column_specs(dataset)}
    new_value = coerce_value(specs[target], value) if value != "" else None
    index = row.column_names.index(target)
    array = (
        pa.array([new_value], type=row.schema.field(index).type)
        if new_value is not None
        else pa.nulls(1, row.schema.field(index).type)
    )
    row = row.set_column(index, row.schema.field(index), array)
    # The import commits in transactions of its own; end this one first so that SQLite's single
    # writer is free (what was written so far is the audit of the read above).
    session.commit()
    report = flows.import_table(
        maker=get_sessionmaker(get_settings().database_url),
        actor=actor,
        dataset=dataset.id,
        table=row,
        mode="upsert",
        note=reason.strip(),
        filename=f"edit of issue {issue.id}.parquet",
    )
    session.expire_all()  # the import changed the dataset in other transactions
    if report.version is None:
        raise Invalid(report.message or "the corrected row was refused", detail={"issue": issue.id})
    record(
        session=session,
        actor=actor,
        action="dataset.cell_edit",
        object_type="dataset",
        object_id=dataset.id,
        object_org_id=dataset.owner_org_id,
        detail={"issue": issue.id, "column": target, "key": where_values, "version": report.version},
    )
    return fix_with_version(
        session=session, actor=actor, issue_id=issue.id, version=report.version, note=reason
    )


def confirm(*, session: Session, actor: Actor, issue_id: int) -> DataIssue:
    """The reporter confirms the fix."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    if not _is_reporter(actor, issue):
        raise Forbidden(T("only the reporter may confirm or reopen data issue #{id}", id=issue.id))
    _move(issue, {"fixed"}, "confirmed")
    _event(session, issue, actor, "state", "", "confirmed")
    return issue


def reopen(*, session: Session, actor: Actor, issue_id: int, reason: str) -> DataIssue:
    """The reporter says the fix did not fix it."""
    issue = get_issue_or_raise(session=session, actor=actor, issue_id=issue_id)
    if not _is_reporter(actor, issue):
        raise Forbidden(T("only the reporter may confirm or reopen data issue #{id}", id=issue.id))
    if not reason.strip():
        raise Invalid("say why the issue is not fixed", detail={"field": "reason"})
    _move(issue, {"fixed", "rejected"}, "reopened")
    issue.fixed_version, issue.fixed_at = None, None
    _event(session, issue, actor, "state", reason.strip(), "reopened")
    notifications.notify_org(
        session=session,
        org_id=issue.owner_org_id,
        kind="exchange.issue",
        message=T("data issue #{id} was reopened", id=issue.id),
        link=f"/exchange/issues/{issue.id}",
        roles=[Role.ADMIN, Role.STEWARD],
    )
    return issue


def turnaround(*, session: Session, actor: Actor) -> dict[str, Any]:
    """Hours from filing to the fixed version, per dataset and per owner: count, median, P90."""
    authorize(actor, "exchange.read", org_id=actor.org_id)
    rows = session.execute(
        select(DataIssue.dataset_id, DataIssue.owner_org_id, DataIssue.created_at, DataIssue.fixed_at).where(
            DataIssue.fixed_at.is_not(None)
        )
    ).all()
    if not can(actor, "exchange.bureau"):
        rows = [r for r in rows if r[1] == actor.org_id]

    def summary(hours: list[float]) -> dict[str, float | int]:
        ordered = sorted(hours)
        p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
        return {
            "count": len(ordered),
            "median_hours": round(statistics.median(ordered), 2),
            "p90_hours": round(p90, 2),
        }

    by_dataset: dict[int, list[float]] = {}
    by_owner: dict[int, list[float]] = {}
    for dataset_id, owner, created, fixed in rows:
        if fixed is None:
            continue
        hours = (fixed - created).total_seconds() / 3600
        by_dataset.setdefault(dataset_id, []).append(hours)
        by_owner.setdefault(owner, []).append(hours)
    return {
        "by_dataset": {k: summary(v) for k, v in sorted(by_dataset.items())},
        "by_owner": {k: summary(v) for k, v in sorted(by_owner.items())},
    }
