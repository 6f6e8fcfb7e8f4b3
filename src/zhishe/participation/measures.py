"""The figures participation is judged by, kept as datasets of the data bureau so that exchange,
open data and evaluation can use them:

- ``participation-performance``: per month, category and department: reports, share closed within
  the SLA, P50 and P90 hours to close, reopen rate within the confirmation window, share with a
  public update within 48 h, duplicate rate, resident-confirmed fix rate, and satisfaction (1–5);
- ``participation-suggestions``: per month and department, suggestions whose response fell due,
  answered, answered on time, and the share on time;
- ``participation-requests``: the 12345-style request records, without personal data: no reporter,
  no description, no coordinates; the place only as its community.

Each publish commits a new version of each dataset (``replace``), through the catalog's import, so
it is validated, versioned and audited like any other import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.catalog import flows
from zhishe.catalog.schemas import ColumnIn, DatasetCreate
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation
from zhishe.core.areas.models import Area
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.participation.models import Category, Request, Suggestion

__all__ = ["DATASETS", "performance", "publish", "request_records", "suggestion_timeliness"]

_CLOSED = {"resolved", "closed", "duplicate", "rejected"}


@dataclass(frozen=True, slots=True)
class MeasureSet:
    """One dataset of measures: its slug, titles and columns."""

    slug: str
    title_zh: str
    title_en: str
    description: str
    columns: tuple[tuple[str, str, str, str], ...]  # name, type, unit, description


DATASETS = (
    MeasureSet(
        "participation-performance",
        "诉求办理绩效",
        "Report handling performance",
        "Per month (of filing), category and department.",
        (
            ("month", "string", "", "Month the reports were filed (YYYY-MM, platform time)"),
            ("category", "string", "", "Report category (Open311 service_code)"),
            ("department", "string", "", "Organisation responsible"),
            ("reports", "integer", "reports", "Reports filed (duplicates included)"),
            ("resolved", "integer", "reports", "Of those, resolved or closed"),
            ("within_sla_share", "decimal", "ratio", "Resolved within the SLA / resolved"),
            ("p50_hours_to_close", "decimal", "h", "Median hours from filing to resolution"),
            ("p90_hours_to_close", "decimal", "h", "90th percentile hours from filing to resolution"),
            ("reopen_rate", "decimal", "ratio", "Reopened within the confirmation window / resolved"),
            (
                "public_update_48h_share",
                "decimal",
                "ratio",
                "With a public staff update within 48 h / reports",
            ),
            ("duplicate_rate", "decimal", "ratio", "Marked duplicate / reports"),
            (
                "confirmed_fix_rate",
                "decimal",
                "ratio",
                "Fix confirmed by the resident / resolved with a resident",
            ),
            ("satisfaction_mean", "decimal", "1-5", "Mean satisfaction given on closing"),
            ("satisfaction_count", "integer", "ratings", "Ratings given"),
        ),
    ),
    MeasureSet(
        "participation-suggestions",
        "建言献策答复及时率",
        "Suggestions answered on time",
        "Per month the response fell due and department.",
        (
            ("month", "string", "", "Month the response fell due (YYYY-MM)"),
            ("department", "string", "", "Organisation that must answer"),
            ("due", "integer", "suggestions", "Responses that fell due"),
            ("answered", "integer", "suggestions", "Answered"),
            ("answered_on_time", "integer", "suggestions", "Answered by the deadline"),
            ("on_time_share", "decimal", "ratio", "Answered on time / due"),
        ),
    ),
    MeasureSet(
        "participation-requests",
        "12345 诉求记录（去标识）",
        "Service request records (de-identified)",
        "One row per public report, without personal data.",
        (
            ("request_id", "integer", "", "Report number"),
            ("category", "string", "", "Category (Open311 service_code)"),
            ("category_group", "string", "", "Category group"),
            ("department", "string", "", "Organisation responsible"),
            ("channel", "string", "", "How it was filed"),
            ("community", "string", "", "Community (the only place given)"),
            ("requested_at", "datetime", "", "Filed"),
            ("status", "string", "", "Open311 status"),
            ("state", "string", "", "Internal state"),
            ("expected_at", "datetime", "", "SLA deadline"),
            ("resolved_at", "datetime", "", "Resolved"),
            ("within_sla", "boolean", "", "Resolved within the SLA"),
            ("reopen_count", "integer", "", "Times reopened"),
            ("supporters", "integer", "", "Residents who said 'me too'"),
            ("satisfaction", "integer", "1-5", "Satisfaction on closing"),
        ),
    ),
)


def _month(moment: datetime) -> str:
    return moment.astimezone(get_settings().tz).strftime("%Y-%m")


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _public_requests(session: Session) -> Iterable[Request]:
    return session.scalars(select(Request).where(Request.parent_id.is_(None)).order_by(Request.id)).yield_per(
        5000
    )


def _names(session: Session) -> tuple[dict[int, Category], dict[int, str]]:
    categories = {c.id: c for c in session.scalars(select(Category))}
    orgs = {o.id: o.name_zh for o in session.scalars(select(Organisation))}
    return categories, orgs


def performance(session: Session) -> list[dict[str, Any]]:
    """The performance rows, per month, category and department."""
    categories, orgs = _names(session)
    groups: dict[tuple[str, str, str], list[Request]] = defaultdict(list)
    for request in _public_requests(session):
        category = categories[request.category_id]
        org = orgs.get(request.org_id, "") if request.org_id else ""
        groups[(_month(request.requested_at), category.code, org)].append(request)
    window = timedelta(hours=48)
    rows = []
    for (month, code, org), requests in sorted(groups.items()):
        resolved = [r for r in requests if r.resolved_at is not None and r.state in {"resolved", "closed"}]
        hours = np.array(
            [(r.resolved_at - r.requested_at).total_seconds() / 3600 for r in resolved if r.resolved_at]
        )
        with_resident = [r for r in resolved if r.reporter_user_id is not None]
        ratings = [r.satisfaction for r in requests if r.satisfaction is not None]
        rows.append(
            {
                "month": month,
                "category": code,
                "department": org,
                "reports": len(requests),
                "resolved": len(resolved),
                "within_sla_share": _share(sum(1 for r in resolved if r.within_sla), len(resolved)),
                "p50_hours_to_close": round(float(np.percentile(hours, 50)), 2) if hours.size else None,
                "p90_hours_to_close": round(float(np.percentile(hours, 90)), 2) if hours.size else None,
                "reopen_rate": _share(sum(1 for r in resolved if r.reopen_count), len(resolved)),
                "public_update_48h_share": _share(
                    sum(
                        1
                        for r in requests
                        if r.first_public_update_at is not None
                        and r.first_public_update_at - r.requested_at <= window
                    ),
                    len(requests),
                ),
                "duplicate_rate": _share(sum(1 for r in requests if r.state == "duplicate"), len(requests)),
                "confirmed_fix_rate": _share(
                    sum(1 for r in with_resident if r.confirmation == "confirmed"), len(with_resident)
                ),
                "satisfaction_mean": round(sum(ratings) / len(ratings), 3) if ratings else None,
                "satisfaction_count": len(ratings),
            }
        )
    return rows


def suggestion_timeliness(session: Session) -> list[dict[str, Any]]:
    """Suggestions whose response fell due, per month and department, and how many were on time."""
    _, orgs = _names(session)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for suggestion in session.scalars(select(Suggestion).where(Suggestion.response_due_at.is_not(None))):
        assert suggestion.response_due_at is not None
        key = (
            _month(suggestion.response_due_at),
            orgs.get(suggestion.org_id, "") if suggestion.org_id else "",
        )
        answered = suggestion.responded_at is not None
        counts[key][0] += 1
        counts[key][1] += answered
        counts[key][2] += answered and suggestion.responded_at <= suggestion.response_due_at  # type: ignore[operator]
    return [
        {
            "month": month,
            "department": org,
            "due": due,
            "answered": answered,
            "answered_on_time": on_time,
            "on_time_share": _share(on_time, due),
        }
        for (month, org), (due, answered, on_time) in sorted(counts.items())
    ]


def request_records(session: Session) -> list[dict[str, Any]]:
    """The public reports without personal data."""
    categories, orgs = _names(session)
    areas = {a.id: a for a in session.scalars(select(Area))}

    def community(area_id: int | None) -> str:
        seen = 0
        while area_id is not None and seen < 10:
            area = areas.get(area_id)
            if area is None:
                return ""
            if area.level == "community":
                return area.name_zh
            area_id, seen = area.parent_id, seen + 1
        return ""

    rows = []
    for r in _public_requests(session):
        category = categories[r.category_id]
        rows.append(
            {
                "request_id": r.id,
                "category": category.code,
                "category_group": category.group,
                "department": orgs.get(r.org_id, "") if r.org_id else "",
                "channel": r.channel,
                "community": community(r.area_id),
                "requested_at": r.requested_at,
                "status": "closed" if r.state in _CLOSED else "open",
                "state": r.state,
                "expected_at": r.expected_at,
                "resolved_at": r.resolved_at,
                "within_sla": r.within_sla,
                "reopen_count": r.reopen_count,
                "supporters": r.supporters,
                "satisfaction": r.satisfaction,
            }
        )
    return rows


_ARROW = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
}


def _table(spec: MeasureSet, rows: list[dict[str, Any]]) -> pa.Table:
    schema = pa.schema([(name, _ARROW[kind]) for name, kind, _u, _d in spec.columns])
    return pa.Table.from_pylist(rows, schema=schema)


def _bureau(session: Session) -> Organisation:
    bureau = accounts.first_org_of_kind(session=session, kind=OrgKind.DATA_BUREAU)
    if bureau is None:
        raise Invalid(T("there is no data bureau organisation to own the measures"))
    return bureau


def _dataset_in(spec: MeasureSet, owner: Organisation) -> DatasetCreate:
    return DatasetCreate(
        slug=spec.slug,
        title_zh=spec.title_zh,
        title_en=spec.title_en,
        description_zh=spec.title_zh,
        description_en=spec.description,
        theme="public-services",
        keywords=["12345", "participation", "Open311"],
        accrual_periodicity="daily",
        sharing_class="unconditional",
        source="Zhishe participation (reports, work orders, suggestions)",
        owner_org_id=owner.id,
        columns=[
            ColumnIn(name=n, type=k, unit=u, description=d, classification="public", is_key=n == "request_id")
            for n, k, u, d in spec.columns
        ],
    )


def publish(*, session: Session, actor: Actor) -> dict[str, int]:
    """Recompute the measures and commit a version of each dataset that has rows; returns slug -> version."""
    owner = _bureau(session)
    authorize(actor, "dataset.write", org_id=owner.id, what="participation measures")
    builders = {
        "participation-performance": performance,
        "participation-suggestions": suggestion_timeliness,
        "participation-requests": request_records,
    }
    datasets = [(_dataset_in(spec, owner), _table(spec, builders[spec.slug](session))) for spec in DATASETS]
    return flows.publish_tables(
        session=session, actor=actor, datasets=datasets, note="participation measures"
    )
