"""The portal's public statistics, each figure also published as a dataset.

Figures: datasets opened, releases per month, downloads and API calls per month, data requests
answered, and the median reply time to data requests. All are counted from the platform's own
tables; nothing is sampled.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.catalog import flows
from zhishe.catalog.types import ColumnType
from zhishe.core.accounts import service as accounts
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import NotFound
from zhishe.opendata import datarequests, service
from zhishe.opendata import usage as counters
from zhishe.opendata.models import Release, UsageDay

__all__ = ["FIGURES", "figures", "publish"]

FIGURES: dict[str, flows.Figure] = {
    "opendata-releases-per-month": (
        "开放数据每月发布数",
        "Open-data releases per month",
        [
            ("month", ColumnType.STRING),
            ("releases", ColumnType.INTEGER),
            ("datasets_opened", ColumnType.INTEGER),
        ],
    ),
    "opendata-usage-per-month": (
        "开放数据每月下载与调用",
        "Open-data downloads and API calls per month",
        [("month", ColumnType.STRING), ("downloads", ColumnType.INTEGER), ("api_calls", ColumnType.INTEGER)],
    ),
    "opendata-requests": (
        "公众数据需求答复情况",
        "Public data requests and replies",
        [
            ("open", ColumnType.INTEGER),
            ("answered", ColumnType.INTEGER),
            ("declined", ColumnType.INTEGER),
            ("overdue", ColumnType.INTEGER),
            ("median_reply_hours", ColumnType.DECIMAL),
        ],
    ),
}


def figures(session: Session) -> dict[str, Any]:
    """Every public figure (no login needed)."""
    pending = counters.pending()  # counted, not written yet (see `usage`)
    zone = get_settings().tz
    releases: Counter[str] = Counter()
    first_release: dict[int, str] = {}
    for dataset_id, published in session.execute(
        select(Release.dataset_id, Release.published_at)
        .where(Release.state == "published")
        .order_by(Release.published_at)
    ):
        if published is None:
            continue
        month = published.astimezone(zone).strftime("%Y-%m")
        releases[month] += 1
        first_release.setdefault(dataset_id, month)
    opened = Counter(first_release.values())
    usage: dict[str, dict[str, int]] = {}
    for day, downloads, calls in session.execute(
        select(UsageDay.day, UsageDay.downloads, UsageDay.api_calls)
    ):
        month = day.strftime("%Y-%m")
        entry = usage.setdefault(month, {"downloads": 0, "api_calls": 0})
        entry["downloads"] += int(downloads)
        entry["api_calls"] += int(calls)
    waiting = {"downloads": 0, "api_calls": 0}
    for (_dataset_id, day, kind), n in pending.items():
        entry = usage.setdefault(day.strftime("%Y-%m"), {"downloads": 0, "api_calls": 0})
        entry[kind] += n
        waiting[kind] += n
    hours = datarequests.reply_hours(session)
    counts = datarequests.counts(session)
    stored = session.execute(
        select(func.coalesce(func.sum(UsageDay.downloads), 0), func.coalesce(func.sum(UsageDay.api_calls), 0))
    ).one()
    totals = (int(stored[0]) + waiting["downloads"], int(stored[1]) + waiting["api_calls"])
    return {
        "datasets_opened": len(first_release),
        "releases": sum(releases.values()),
        "downloads": int(totals[0]),
        "api_calls": int(totals[1]),
        "requests": counts,
        "requests_answered": counts["answered"],
        "median_reply_hours": round(statistics.median(hours), 1) if hours else None,
        "per_month": [
            {
                "month": m,
                "releases": releases.get(m, 0),
                "datasets_opened": opened.get(m, 0),
                **usage.get(m, {"downloads": 0, "api_calls": 0}),
            }
            for m in sorted(set(releases) | set(usage))
        ],
    }


def publish(*, session: Session, actor: Actor) -> dict[str, int | None]:
    """Write the figures as versions of datasets owned by the data bureau (its staff only), and
    release them on the portal when the actor may publish the bureau's open data."""
    authorize(actor, "exchange.bureau")
    bureau = accounts.first_org_of_kind(session=session, kind=OrgKind.DATA_BUREAU)
    if bureau is None:
        raise NotFound("there is no data bureau organisation to own the figures")
    authorize(actor, "dataset.write", org_id=bureau.id, what="the open-data statistics")
    data = figures(session)
    rows = {
        "opendata-releases-per-month": [
            {"month": r["month"], "releases": r["releases"], "datasets_opened": r["datasets_opened"]}
            for r in data["per_month"]
        ],
        "opendata-usage-per-month": [
            {"month": r["month"], "downloads": r["downloads"], "api_calls": r["api_calls"]}
            for r in data["per_month"]
        ],
        "opendata-requests": [
            {
                "open": data["requests"]["open"],
                "answered": data["requests"]["answered"],
                "declined": data["requests"]["declined"],
                "overdue": data["requests"]["overdue"],
                "median_reply_hours": data["median_reply_hours"],
            }
        ],
    }
    written = flows.publish_figures(
        session=session,
        actor=actor,
        owner_org_id=bureau.id,
        figures=FIGURES,
        rows=rows,
        note="open-data statistics",
        description=(
            "由开放数据门户自动生成的统计。",
            "Figures of the open-data portal, computed by the platform.",
        ),
    )
    # and open them on the portal, a release per publication
    from zhishe.core.auth import can

    if can(actor, "opendata.publish", org_id=bureau.id):
        for slug, version in written.items():
            if version is None:
                continue
            service.configure(session=session, actor=actor, dataset=slug, cadence="daily")
            draft = service.draft_release(session=session, actor=actor, dataset=slug, version=version)
            service.publish_release(
                session=session, actor=actor, release_id=draft.id, note="open-data statistics"
            )
    return written
