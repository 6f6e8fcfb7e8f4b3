"""The profit model's figures as datasets owned by the operator, for evaluation and reporting:

- ``operator-profit-monthly``: per month and stream: gmv_fen, revenue_fen, costs_fen, margin_fen,
  take_rate_bps (see ``profit``);
- ``operator-marketplace-monthly``: the marketplace figures per month (see ``services.stats``).

Each publish commits a new version of each dataset (``replace``) through the catalog's import, so
it is validated, versioned and audited like any other import. The months covered run from the
first month with a ledger entry or a transaction to the current month (at most ``profit.MAX_MONTHS``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.catalog import flows
from zhishe.catalog.schemas import ColumnIn, DatasetCreate
from zhishe.core import clock
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation
from zhishe.core.auth import Actor, OrgKind, authorize
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance import profit
from zhishe.finance.models import Entry
from zhishe.finance.periods import add_month, month_of
from zhishe.services.models import Transaction

__all__ = ["DATASETS", "marketplace_rows", "profit_rows", "publish"]

#: slug -> (title zh, title en, description, columns: name, type, unit, description)
DATASETS: dict[str, tuple[str, str, str, tuple[tuple[str, str, str, str], ...]]] = {
    "operator-profit-monthly": (
        "运营方月度利润模型",
        "Operator profit model per month",
        "Per month and revenue stream: GMV, revenue, costs, contribution margin and take rate.",
        (
            ("month", "string", "", "Month (YYYY-MM, platform time)"),
            ("stream", "string", "", "Revenue stream"),
            ("gmv_fen", "integer", "fen", "Gross merchandise value (marketplace) or gross sales"),
            ("revenue_fen", "integer", "fen", "Revenue net of refunds"),
            ("costs_fen", "integer", "fen", "Operating costs and the stream's expenses"),
            ("margin_fen", "integer", "fen", "Contribution margin: revenue minus costs"),
            ("take_rate_bps", "integer", "bps", "Revenue / GMV (marketplace only)"),
        ),
    ),
    "operator-marketplace-monthly": (
        "社区服务市场月度指标",
        "Marketplace figures per month",
        "Per month: bookings, GMV, active residents and providers, repeat rate, 3-km share, subsidy, cancellations.",
        (
            ("month", "string", "", "Month (YYYY-MM, platform time)"),
            ("bookings", "integer", "transactions", "Transactions created"),
            ("gmv_fen", "integer", "fen", "Captured prices"),
            ("refunded_fen", "integer", "fen", "Refunded"),
            ("commission_fen", "integer", "fen", "Commission recorded"),
            ("subsidy_fen", "integer", "fen", "Vouchers and subsidies used"),
            ("active_residents", "integer", "residents", "Residents with a transaction"),
            ("active_providers", "integer", "providers", "Providers with a transaction"),
            ("bookings_per_resident", "decimal", "ratio", "Bookings / active residents"),
            ("repeat_rate", "decimal", "ratio", "Residents with 2+ transactions / active residents"),
            ("within_3km_share", "decimal", "ratio", "Transactions within 3 km / those with a distance"),
            ("cancellation_rate", "decimal", "ratio", "Cancelled / bookings"),
            ("no_show_rate", "decimal", "ratio", "No-shows / bookings"),
        ),
    ),
}
_ARROW = {"string": pa.string(), "integer": pa.int64(), "decimal": pa.float64()}


def _range(session: Session) -> tuple[str, str]:
    last = month_of(clock.now())
    starts = [
        session.scalar(select(func.min(Entry.posted_at))),
        session.scalar(select(func.min(Transaction.created_at))),
    ]
    known = [month_of(s) for s in starts if s is not None]
    first = min(known) if known else last
    return max(first, add_month(last, -(profit.MAX_MONTHS - 1))), last


def profit_rows(session: Session) -> list[dict[str, Any]]:
    """The rows of ``operator-profit-monthly``."""
    first, last = _range(session)
    return profit.compute(session, first, last).rows


def marketplace_rows(session: Session) -> list[dict[str, Any]]:
    """The rows of ``operator-marketplace-monthly``."""
    first, last = _range(session)
    return profit.compute(session, first, last).marketplace


def _operator(session: Session) -> Organisation:
    org = accounts.first_org_of_kind(session=session, kind=OrgKind.OPERATOR)
    if org is None:
        raise Invalid(T("there is no operator organisation to own the figures"))
    return org


def _dataset_in(slug: str, owner: Organisation) -> DatasetCreate:
    title_zh, title_en, description, columns = DATASETS[slug]
    return DatasetCreate(
        slug=slug,
        title_zh=title_zh,
        title_en=title_en,
        description_zh=title_zh,
        description_en=description,
        theme="economy",
        keywords=["finance", "marketplace", "profit"],
        accrual_periodicity="monthly",
        sharing_class="conditional",
        sharing_conditions="Operator figures: shared for evaluation and reporting on request.",
        source="Zhishe finance (ledger, operating costs, marketplace transactions)",
        owner_org_id=owner.id,
        columns=[
            ColumnIn(
                name=n,
                type=k,
                unit=u,
                description=d,
                classification="internal",
                is_key=n in ("month", "stream"),
            )
            for n, k, u, d in columns
        ],
    )


def publish(*, session: Session, actor: Actor) -> dict[str, int]:
    """Recompute the figures and commit a version of each dataset that has rows; slug -> version."""
    owner = _operator(session)
    authorize(actor, "dataset.write", org_id=owner.id, what="operator figures")
    builders = {"operator-profit-monthly": profit_rows, "operator-marketplace-monthly": marketplace_rows}
    datasets = []
    for slug, build in builders.items():
        columns = DATASETS[slug][3]
        schema = pa.schema([(n, _ARROW[k]) for n, k, _u, _d in columns])
        table = pa.Table.from_pylist(
            [{n: row.get(n) for n, *_ in columns} for row in build(session)], schema=schema
        )
        datasets.append((_dataset_in(slug, owner), table))
    return flows.publish_tables(session=session, actor=actor, datasets=datasets, note="operator figures")
