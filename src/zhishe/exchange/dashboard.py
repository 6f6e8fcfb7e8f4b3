"""The data bureau's dashboard of the exchange, and its figures published as datasets.

Every figure is computed from the exchange's own tables and the audit chain, and each one can be
written as a version of a dataset owned by the data bureau (``publish``), so that evaluation and
anyone with access can use it like any other data.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.catalog import flows
from zhishe.catalog.models import Dataset
from zhishe.catalog.types import ColumnType
from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.models import AuditEvent
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.errors import NotFound
from zhishe.exchange import issues, service
from zhishe.exchange.models import Grant, ShareRequest

__all__ = ["FIGURES", "figures", "publish"]

_READ_ACTIONS = ("dataset.read", "dataset.export", "dataset.aggregate")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def figures(*, session: Session, actor: Actor) -> dict[str, Any]:
    """Every figure of the dashboard (data bureau staff only)."""
    authorize(actor, "exchange.bureau")
    service.refresh(session)
    now = clock.now()
    by_state = {
        state: int(n)
        for state, n in session.execute(select(ShareRequest.state, func.count()).group_by(ShareRequest.state))
    }
    reply_hours: dict[int, list[float]] = defaultdict(list)
    for owner, submitted, answered in session.execute(
        select(ShareRequest.owner_org_id, ShareRequest.submitted_at, ShareRequest.answered_at).where(
            ShareRequest.answered_at.is_not(None), ShareRequest.submitted_at.is_not(None)
        )
    ):
        if answered is not None and submitted is not None:
            reply_hours[owner].append((answered - submitted).total_seconds() / 3600)
    reply = {
        owner: {
            "answered": len(hours),
            "median_hours": round(statistics.median(hours), 2),
            "p90_hours": round(_quantile(hours, 0.9), 2),
        }
        for owner, hours in sorted(reply_hours.items())
    }
    overdue = [
        {"id": r.id, "dataset_id": r.dataset_id, "owner_org_id": r.owner_org_id, "due_at": r.due_at}
        for r in session.scalars(
            select(ShareRequest)
            .where(ShareRequest.state == "submitted", ShareRequest.due_at <= now)
            .order_by(ShareRequest.due_at)
        )
    ]
    requested = Counter(session.scalars(select(ShareRequest.dataset_id).where(ShareRequest.state != "draft")))
    expiring = [
        {
            "id": g.id,
            "dataset_id": g.dataset_id,
            "grantee_org_id": g.grantee_org_id,
            "expires_at": g.expires_at,
        }
        for g in session.scalars(
            select(Grant)
            .where(
                Grant.revoked_at.is_(None),
                Grant.expires_at > now,
                Grant.expires_at <= now + timedelta(days=14),
            )
            .order_by(Grant.expires_at)
        )
    ]
    reads = session.execute(
        select(AuditEvent.object_id, AuditEvent.org_id, func.count())
        .where(AuditEvent.action.in_(_READ_ACTIONS), AuditEvent.object_type == "dataset")
        .group_by(AuditEvent.object_id, AuditEvent.org_id)
    ).all()
    return {
        "requests_by_state": by_state,
        "reply_time_by_owner": reply,
        "overdue": overdue,
        "most_requested": [{"dataset_id": d, "requests": n} for d, n in requested.most_common(10)],
        "expiring_grants": expiring,
        "reads": [
            {"dataset_id": int(d), "org_id": o, "reads": int(n)}
            for d, o, n in sorted(reads, key=lambda r: -int(r[2]))
            if str(d).isdigit()
        ],
        "turnaround": issues.turnaround(session=session, actor=actor),
    }


#: The dashboard's figures published as datasets: slug -> (title zh, title en, columns).
FIGURES: dict[str, tuple[str, str, list[tuple[str, ColumnType]]]] = {
    "exchange-requests-by-state": (
        "数据共享申请状态统计",
        "Sharing requests by state",
        [("state", ColumnType.STRING), ("requests", ColumnType.INTEGER)],
    ),
    "exchange-reply-time": (
        "各部门共享申请答复时长",
        "Time to reply to sharing requests, per owner",
        [
            ("owner", ColumnType.STRING),
            ("answered", ColumnType.INTEGER),
            ("median_hours", ColumnType.DECIMAL),
            ("p90_hours", ColumnType.DECIMAL),
        ],
    ),
    "exchange-reads": (
        "数据集读取次数（按机构）",
        "Reads per dataset and organisation",
        [("dataset", ColumnType.STRING), ("organisation", ColumnType.STRING), ("reads", ColumnType.INTEGER)],
    ),
    "exchange-overdue-requests": (
        "超期未答复的共享申请",
        "Sharing requests past their reply deadline",
        [
            ("request", ColumnType.INTEGER),
            ("dataset", ColumnType.STRING),
            ("owner", ColumnType.STRING),
            ("due_at", ColumnType.DATETIME),
        ],
    ),
    "exchange-most-requested": (
        "申请最多的数据集",
        "Most requested datasets",
        [("dataset", ColumnType.STRING), ("requests", ColumnType.INTEGER)],
    ),
    "exchange-expiring-grants": (
        "14 天内到期的授权",
        "Grants expiring within 14 days",
        [
            ("grant", ColumnType.INTEGER),
            ("dataset", ColumnType.STRING),
            ("grantee", ColumnType.STRING),
            ("expires_at", ColumnType.DATETIME),
        ],
    ),
    "exchange-correction-turnaround": (
        "数据纠错周期（按数据集）",
        "Correction turnaround per dataset",
        [
            ("dataset", ColumnType.STRING),
            ("fixed", ColumnType.INTEGER),
            ("median_hours", ColumnType.DECIMAL),
            ("p90_hours", ColumnType.DECIMAL),
        ],
    ),
}


def _rows(session: Session, data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    orgs = {o.id: o.code for o in session.scalars(select(Organisation))}
    slugs = {d.id: d.slug for d in session.scalars(select(Dataset))}
    return {
        "exchange-requests-by-state": [
            {"state": s, "requests": n} for s, n in sorted(data["requests_by_state"].items())
        ],
        "exchange-reply-time": [
            {"owner": orgs.get(o, str(o)), **v} for o, v in data["reply_time_by_owner"].items()
        ],
        "exchange-reads": [
            {
                "dataset": slugs.get(r["dataset_id"], str(r["dataset_id"])),
                "organisation": orgs.get(r["org_id"], ""),
                "reads": r["reads"],
            }
            for r in data["reads"]
        ],
        "exchange-overdue-requests": [
            {
                "request": r["id"],
                "dataset": slugs.get(r["dataset_id"], ""),
                "owner": orgs.get(r["owner_org_id"], ""),
                "due_at": r["due_at"],
            }
            for r in data["overdue"]
        ],
        "exchange-most-requested": [
            {"dataset": slugs.get(r["dataset_id"], str(r["dataset_id"])), "requests": r["requests"]}
            for r in data["most_requested"]
        ],
        "exchange-expiring-grants": [
            {
                "grant": g["id"],
                "dataset": slugs.get(g["dataset_id"], ""),
                "grantee": orgs.get(g["grantee_org_id"], ""),
                "expires_at": g["expires_at"],
            }
            for g in data["expiring_grants"]
        ],
        "exchange-correction-turnaround": [
            {
                "dataset": slugs.get(d, str(d)),
                "fixed": v["count"],
                "median_hours": v["median_hours"],
                "p90_hours": v["p90_hours"],
            }
            for d, v in data["turnaround"]["by_dataset"].items()
        ],
    }


def publish(*, session: Session, actor: Actor) -> dict[str, int | None]:
    """Write each figure as a new version of its dataset (created, owned by the data bureau, on
    first use). Returns the version written per dataset (None when the figure has no rows)."""
    authorize(actor, "exchange.bureau")
    bureau = accounts.first_org_of_kind(session=session, kind=OrgKind.DATA_BUREAU)
    if bureau is None:
        raise NotFound("there is no data bureau organisation to own the figures")
    return flows.publish_figures(
        session=session,
        actor=actor,
        owner_org_id=bureau.id,
        figures=FIGURES,
        rows=_rows(session, figures(session=session, actor=actor)),
        note="dashboard figures",
        description=(
            "由数据共享交换平台自动生成的统计。",
            "Figures of the data exchange, computed by the platform.",
        ),
    )
