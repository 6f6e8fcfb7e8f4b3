"""The rules of open data: opening a dataset, drafting a release through the privacy gate,
publishing it, and reading what is published.

A release is made from one dataset version through the dataset's de-identification policy:

    draft (computed, with its risk report; staff of the owner only) -> published (public, immutable)
    draft -> discarded

A draft that does not meet its policy cannot be published, nor can a dataset whose personal or
sensitive columns have no rule. A definition change (a column removed, retyped or given another
unit since the last release) needs a note. Published releases stay available under their
number; the newest is what the portal shows by default.

Reads of published releases are public and not audited (they are the public portal). Making a
draft reads the internal version, which is audited like any other read of internal data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhishe.catalog import reads
from zhishe.catalog import service as catalog
from zhishe.catalog.models import Dataset
from zhishe.catalog.schemas import SharingClass
from zhishe.catalog.types import ROW_ID, Classification, ColumnType
from zhishe.core import clock, events
from zhishe.core.areas import service as areas
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.opendata import privacy, timeliness
from zhishe.opendata.models import OpenDataset, Release, UsageDay
from zhishe.opendata.store import ReleaseStore

__all__ = [
    "CADENCES",
    "PublicDataset",
    "configure",
    "discard",
    "draft_release",
    "get_release_or_raise",
    "open_settings",
    "public_dataset",
    "public_release",
    "publish_release",
    "release_store",
    "releases_of",
    "usage_of",
    "use",
]

CADENCES = ("hourly", "daily", "weekly", "monthly", "quarterly", "annual", "irregular", "never")
_PRIVATE = {Classification.PERSONAL.value, Classification.SENSITIVE.value}
_CLOSABLE: set[ReleaseStore] = set()


def release_store() -> ReleaseStore:
    """The serving store of this deployment's releases (one per process, keeping its connections)."""
    settings = get_settings()
    store = _store_at(str(settings.opendata_dir / "releases"), settings.timezone)
    _CLOSABLE.add(store)
    return store


@lru_cache(maxsize=4)
def _store_at(root: str, timezone: str) -> ReleaseStore:
    return ReleaseStore(Path(root), timezone=timezone)


def forget_store() -> None:
    """Close the cached stores' connections (after their files were replaced, as in tests)."""
    for store in list(_CLOSABLE):
        store.close()
    _store_at.cache_clear()
    forget_served()


# -- opening a dataset ------------------------------------------------------------------------------


def open_settings(session: Session, dataset: Dataset) -> OpenDataset:
    """The dataset's open-data settings, created with defaults on first use (not yet stored)."""
    found = session.scalar(select(OpenDataset).where(OpenDataset.dataset_id == dataset.id))
    if found is not None:
        return found
    now = clock.now()
    cadence = dataset.accrual_periodicity if dataset.accrual_periodicity in CADENCES else "irregular"
    found = OpenDataset(
        dataset_id=dataset.id,
        policy={},
        cadence=cadence,
        featured=False,
        order_by=[dataset.time_column] if dataset.time_column else [],
        chart={},
        dp_budget=get_settings().opendata_dp_budget,
        dp_spent=0.0,
        created_at=now,
        updated_at=now,
    )
    session.add(found)
    session.flush()
    return found


def configure(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    policy: Mapping[str, Any] | None = None,
    cadence: str | None = None,
    featured: bool | None = None,
    order_by: list[str] | None = None,
    chart: Mapping[str, Any] | None = None,
    dp_budget: float | None = None,
) -> OpenDataset:
    """Set how a dataset is opened (owner's stewards and admins). The policy is validated now."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    settings = open_settings(session, found)
    types = _types(found)
    if policy is not None:
        settings.policy = privacy.parse_policy(policy, types).to_json()
    if cadence is not None:
        if cadence not in CADENCES:
            raise Invalid(f"cadence must be one of {', '.join(CADENCES)}", detail={"field": "cadence"})
        settings.cadence = cadence
    if featured is not None:
        if featured and not actor.is_platform_admin:
            raise Invalid(
                "only the data bureau features datasets on the portal", detail={"field": "featured"}
            )
        settings.featured = featured
    if order_by is not None:
        unknown = [c for c in order_by if c not in types]
        if unknown:
            raise Invalid(
                T("dataset {slug} has no column(s): {columns}", slug=found.slug, columns=", ".join(unknown)),
                detail={"field": "order_by"},
            )
        settings.order_by = list(order_by)
    if chart is not None:
        settings.chart = _chart(dict(chart), types)
    if dp_budget is not None:
        if not 0 < dp_budget <= 100:
            raise Invalid("the ε budget must be above 0 and at most 100", detail={"field": "dp_budget"})
        if dp_budget < settings.dp_spent:
            raise Invalid(
                f"the ε budget cannot go below what is already spent ({settings.dp_spent:g})",
                detail={"field": "dp_budget"},
            )
        settings.dp_budget = dp_budget
    settings.updated_at = clock.now()
    record(
        session=session,
        actor=actor,
        action="opendata.configure",
        object_type="dataset",
        object_id=found.slug,
        object_org_id=found.owner_org_id,
        detail={"cadence": settings.cadence, "model": settings.policy.get("model", "")},
    )
    return settings


def _chart(chart: dict[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    if not chart:
        return {}
    kind = chart.get("kind", "line")
    if kind not in {"line", "bar"}:
        raise Invalid("the chart kind must be line or bar", detail={"field": "chart.kind"})
    for axis in ("x", "y"):
        if chart.get(axis) not in types:
            raise Invalid(
                f"the chart's {axis} must be a column of the dataset", detail={"field": f"chart.{axis}"}
            )
    return {"kind": kind, "x": chart["x"], "y": chart["y"]}


def _types(dataset: Dataset) -> dict[str, str]:
    return {c.name: c.type for c in dataset.columns}


# -- drafting and publishing ------------------------------------------------------------------------


def draft_release(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    version: int | None = None,
    policy: Mapping[str, Any] | None = None,
) -> Release:
    """Compute a release from ``version`` (the latest by default) through the policy, with its
    risk report. Refused when a personal or sensitive column has no rule, when the dataset is not
    shared at all, or when a differentially private release would exceed the ε budget."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    if found.sharing_class == SharingClass.NOT_SHARED:
        raise Invalid(
            T("dataset {slug} is not shared (不予共享) and cannot be opened", slug=found.slug),
            detail={"dataset": found.slug},
        )
    if found.current_version is None:
        raise Invalid(T("dataset {slug} has no data yet", slug=found.slug), detail={"dataset": found.slug})
    settings = open_settings(session, found)
    chosen = _policy(found, policy if policy is not None else settings.policy)
    model = chosen.model
    if found.sharing_class == SharingClass.CONDITIONAL and model.type == "none":
        raise Invalid(
            T(
                "dataset {slug} is shared on conditions: open it through k-anonymity or differential privacy",
                slug=found.slug,
            ),
            detail={"field": "model"},
        )
    at = version if version is not None else found.current_version
    epsilon: float | None = None
    if isinstance(model, privacy.DPModel):
        epsilon = model.epsilon
        if epsilon > settings.dp_budget - settings.dp_spent + 1e-12:
            raise _budget_spent(found, epsilon, settings)
    source = _read_version(session, actor, found, at)
    key = get_settings().pseudonym_secret()
    hierarchies = area_hierarchies(session) if _uses_hierarchy(chosen) else {}
    if isinstance(model, privacy.DPModel):
        dp = privacy.dp_release(source, chosen, key=key, hierarchies=hierarchies)
        # ε is spent when the noisy answer is computed, whether or not it is published. The check
        # above read the budget earlier (another draft may have spent it since): spend only if it
        # still fits, in one statement, else the answer is thrown away unseen and nothing is spent.
        spent = session.execute(
            update(OpenDataset)
            .where(
                OpenDataset.id == settings.id,
                OpenDataset.dp_spent + dp.epsilon <= OpenDataset.dp_budget + 1e-12,
            )
            .values(dp_spent=OpenDataset.dp_spent + dp.epsilon)
            .execution_options(synchronize_session=False)
        )
        session.refresh(settings)
        if not spent.rowcount:  # type: ignore[attr-defined]
            raise _budget_spent(found, dp.epsilon, settings)
        table = dp.table
        report: dict[str, Any] = {
            **dp.to_json(),
            "meets_policy": True,
            "reasons": [],
            "epsilon_spent": round(settings.dp_spent, 6),
            "epsilon_remaining": round(max(settings.dp_budget - settings.dp_spent, 0.0), 6),
        }
        epsilon = dp.epsilon
    else:
        released = privacy.anonymise(source, chosen, key=key, hierarchies=hierarchies)
        table = released.table
        report = (
            released.report.to_json()
            if released.report is not None
            else {"meets_policy": True, "reasons": [], "records": table.num_rows}
        )
    result = _Result(table=table, report=report)
    now = clock.now()
    draft = Release(
        dataset_id=found.id,
        state="draft",
        source_version=at,
        model=model.type,
        policy=chosen.to_json(),
        risk=result.report,
        columns=_release_columns(found, result.table.schema, chosen),
        row_count=result.table.num_rows,
        epsilon=epsilon,
        store_key="",
        created_at=now,
        created_by=actor.username,
    )
    previous = _latest_published(session, found.id)
    changes = timeliness.schema_changes(previous.columns if previous else [], draft.columns)
    draft.changes = [c.to_json() for c in changes] if previous else []
    draft.definition_changed = bool(previous) and timeliness.is_definition_change(changes)
    session.add(draft)
    session.flush()
    draft.store_key = f"{found.slug}-{draft.id}"
    order = [c for c in settings.order_by if c in result.table.column_names]
    built = release_store().build(draft.store_key, result.table, order_by=order)
    draft.order_by = list(built.order_by)
    draft.temporal_start, draft.temporal_end = _span(result.table, found.time_column)
    version_row = reads.get_version_or_raise(session=session, actor=actor, dataset=found.id, version=at)
    draft.freshness = dict(version_row.profile.get("freshness") or {})
    record(
        session=session,
        actor=actor,
        action="opendata.draft",
        object_type="release",
        object_id=draft.id,
        object_org_id=found.owner_org_id,
        detail={"dataset": found.slug, "version": at, "model": model.type, "rows": draft.row_count},
    )
    return draft


def _budget_spent(dataset: Dataset, need: float, settings: OpenDataset) -> Invalid:
    """The refusal of a differentially private release that needs more ε than is left."""
    left = settings.dp_budget - settings.dp_spent
    return Invalid(
        T(
            "the privacy budget of {slug} is spent: this release needs ε {need}, {left} is left",
            slug=dataset.slug,
            need=f"{need:g}",
            left=f"{max(left, 0):g}",
        ),
        detail={"field": "epsilon", "budget": settings.dp_budget, "spent": settings.dp_spent},
    )


@dataclass(frozen=True, slots=True)
class _Result:
    table: pa.Table
    report: dict[str, Any]


def _policy(dataset: Dataset, stored: Mapping[str, Any]) -> privacy.Policy:
    """The policy to release with: ``stored``, with every column it does not name kept when the
    column is public or internal. A personal or sensitive column must have a rule of its own, and
    may be kept only as a quasi-identifier or sensitive attribute of k-anonymity, or inside
    differentially private aggregates."""
    columns = dict(stored.get("columns") or {}) if isinstance(stored, Mapping) else {}
    raw_model = stored.get("model") if isinstance(stored, Mapping) else None
    if isinstance(raw_model, Mapping) and raw_model.get("type") == "dp":
        # only the dimensions and the measures are released, as noisy aggregates
        used = set(raw_model.get("dimensions") or []) | {
            m.get("column") for m in raw_model.get("measures") or [] if isinstance(m, Mapping)
        }
        for c in dataset.columns:
            columns.setdefault(c.name, "keep" if c.name in used else "drop")
    missing = [c.name for c in dataset.columns if c.classification in _PRIVATE and c.name not in columns]
    if missing:
        raise Invalid(
            T(
                "column(s) {columns} of {slug} hold personal or sensitive data and have no rule in the policy",
                columns=", ".join(missing),
                slug=dataset.slug,
            ),
            detail={"field": "policy", "columns": missing},
        )
    for c in dataset.columns:
        columns.setdefault(c.name, "keep")
    policy = privacy.parse_policy({**dict(stored), "columns": columns}, _types(dataset))
    model = policy.model
    guarded: set[str] = set()
    if isinstance(model, privacy.KAnonymity):
        guarded = set(model.quasi_identifiers) | set(model.sensitive)
    exposed = [
        c.name
        for c in dataset.columns
        if c.classification in _PRIVATE
        and policy.columns[c.name].kind == "keep"
        and c.name not in guarded
        and not isinstance(model, privacy.DPModel)
    ]
    if exposed:
        raise Invalid(
            T(
                "column(s) {columns} of {slug} are personal or sensitive: keep them only as quasi-identifiers or "
                "sensitive attributes of k-anonymity, or drop, pseudonymise, generalise or suppress them",
                columns=", ".join(exposed),
                slug=dataset.slug,
            ),
            detail={"field": "policy", "columns": exposed},
        )
    return policy


def _uses_hierarchy(policy: privacy.Policy) -> bool:
    return any(rule.method == "hierarchy" for rule in policy.columns.values())


def area_hierarchies(session: Session) -> dict[str, privacy.Hierarchy]:
    """The area list as hierarchies for generalisation: ``areas.unit`` (unit → building →
    community → subdistrict → district) and ``areas.building`` (building → community → …), each
    keyed by area code and by Chinese name."""
    chains = areas.ancestry(session)
    result: dict[str, privacy.Hierarchy] = {}
    from zhishe.core.areas.models import LEVELS

    for leaf in ("unit", "building", "community"):
        above = LEVELS[: LEVELS.index(leaf)][::-1]
        paths: dict[Hashable, list[str]] = {
            value: [chain[level] for level in above]
            for value, chain in chains.items()
            if leaf in chain and len(chain) == len(above) + 1 and all(level in chain for level in above)
        }
        if paths:
            result[f"areas.{leaf}"] = privacy.Hierarchy(paths, levels=above)
    return result


def _read_version(session: Session, actor: Actor, dataset: Dataset, version: int) -> pa.Table:
    """The whole version as Arrow, read (and audited) through the catalog like any internal read."""
    with tempfile.TemporaryDirectory(prefix="zhishe-release-") as tmp:
        path = Path(tmp) / "source.parquet"
        reads.export_rows(
            session=session, actor=actor, dataset=dataset.id, fmt="parquet", dest=path, version=version
        )
        table = pq.read_table(path)
    if ROW_ID in table.column_names:
        table = table.drop_columns([ROW_ID])
    return table


def _release_columns(dataset: Dataset, schema: pa.Schema, policy: privacy.Policy) -> list[dict[str, Any]]:
    declared = {c.name: c for c in dataset.columns}
    result = []
    for field in schema:
        column = declared.get(field.name)
        given = policy.columns.get(field.name)
        rule = (
            (given.kind if given.kind != "generalise" else f"generalise:{given.method}")
            if given
            else "aggregate"
        )
        model = policy.model
        if isinstance(model, privacy.KAnonymity) and field.name in model.quasi_identifiers:
            rule = "quasi_identifier" if rule == "keep" else f"quasi_identifier, {rule}"
        elif isinstance(model, privacy.KAnonymity) and field.name in model.sensitive:
            rule = "sensitive_attribute"
        elif isinstance(model, privacy.DPModel) and field.name not in model.dimensions:
            rule = "aggregate"
        result.append(
            {
                "name": field.name,
                "type": _type_name(field.type, column.type if column else "string"),
                "unit": column.unit if column else "",
                "description": column.description if column else "",
                "rule": rule,
            }
        )
    return result


def _type_name(arrow: pa.DataType, declared: str) -> str:
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return ColumnType.STRING.value
    if pa.types.is_integer(arrow):
        return ColumnType.INTEGER.value
    if pa.types.is_floating(arrow):
        return ColumnType.DECIMAL.value
    if pa.types.is_boolean(arrow):
        return ColumnType.BOOLEAN.value
    if pa.types.is_date(arrow):
        return ColumnType.DATE.value
    if pa.types.is_timestamp(arrow):
        return ColumnType.DATETIME.value
    if pa.types.is_struct(arrow):
        return ColumnType.POINT.value
    return declared


def _span(table: pa.Table, time_column: str | None) -> tuple[str, str]:
    if not time_column or time_column not in table.column_names or table.num_rows == 0:
        return "", ""
    column = table.column(time_column)
    if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return "", ""
    import pyarrow.compute as pc

    bounds = pc.min_max(column).as_py()
    low, high = bounds["min"], bounds["max"]
    return (low.isoformat() if low else "", high.isoformat() if high else "")


def publish_release(*, session: Session, actor: Actor, release_id: int, note: str = "") -> Release:
    """Publish a draft under the next number. Refused if it misses its policy, or if it changes a
    definition without a note."""
    draft = get_release_or_raise(session=session, release_id=release_id)
    found = catalog.get_or_raise(session=session, dataset=draft.dataset_id)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    if draft.state != "draft":
        raise Conflict(T("release {id} is already {state}", id=draft.id, state=draft.state))
    if not draft.risk.get("meets_policy", False):
        reasons = "; ".join(draft.risk.get("reasons") or []) or "the policy is not met"
        raise Invalid(
            T(
                "this release does not meet its privacy policy and cannot be published: {reasons}",
                reasons=reasons,
            ),
            detail={"risk": draft.risk},
        )
    # Compare with the release this one will follow, which may have been published after the draft
    # was made: a change measured at drafting time could be stale (or missing, when nothing was
    # published yet), and a definition change must not slip out without its note.
    previous = _latest_published(session, found.id)
    changes = timeliness.schema_changes(previous.columns, draft.columns) if previous else []
    draft.changes = [c.to_json() for c in changes]
    draft.definition_changed = timeliness.is_definition_change(changes)
    note = note.strip()
    if draft.definition_changed and not note:
        raise Invalid(
            T("this release changes the definition of the data: say what changed in a note"),
            detail={"field": "note", "changes": draft.changes},
        )
    if len(note) > 4000:
        raise Invalid("the note may have at most 4,000 characters", detail={"field": "note"})
    now = clock.now()
    number = (session.scalar(select(func.max(Release.number)).where(Release.dataset_id == found.id)) or 0) + 1
    draft.number, draft.state, draft.note = number, "published", note
    draft.published_at, draft.published_by = now, actor.username
    settings = open_settings(session, found)
    settings.latest_release, settings.last_published_at, settings.overdue_since = number, now, None
    forget_served()
    settings.updated_at = now
    try:
        session.flush()
    except IntegrityError as exc:  # another publish took this number at the same moment
        raise Conflict(
            T("another release of {slug} was published at the same time; try again", slug=found.slug)
        ) from exc
    record(
        session=session,
        actor=actor,
        action="opendata.publish",
        object_type="release",
        object_id=draft.id,
        object_org_id=found.owner_org_id,
        detail={"dataset": found.slug, "number": number, "version": draft.source_version},
    )
    events.publish(
        events.Event(
            "opendata.release_published", {"dataset_id": found.id, "slug": found.slug, "number": number}
        ),
        session,
    )
    return draft


def discard(*, session: Session, actor: Actor, release_id: int) -> None:
    """Throw a draft away (its ε, if any, stays spent)."""
    draft = get_release_or_raise(session=session, release_id=release_id)
    found = catalog.get_or_raise(session=session, dataset=draft.dataset_id)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    if draft.state != "draft":
        raise Conflict(
            T("only drafts can be discarded; release {id} is {state}", id=draft.id, state=draft.state)
        )
    release_store().remove(draft.store_key)
    session.delete(draft)
    record(
        session=session,
        actor=actor,
        action="opendata.discard",
        object_type="release",
        object_id=release_id,
        object_org_id=found.owner_org_id,
        detail={"dataset": found.slug},
    )


def get_release_or_raise(*, session: Session, release_id: int) -> Release:
    """A release or draft by id (callers check who may see drafts)."""
    found = session.get(Release, release_id)
    if found is None:
        raise NotFound(T("no release has the id {id}", id=release_id))
    return found


def drafts_of(*, session: Session, actor: Actor, dataset: int | str) -> list[Release]:
    """The drafts of a dataset (its owner's stewards and admins)."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    return list(
        session.scalars(
            select(Release)
            .where(Release.dataset_id == found.id, Release.state == "draft")
            .order_by(Release.id.desc())
        )
    )


def _latest_published(session: Session, dataset_id: int) -> Release | None:
    return session.scalar(
        select(Release)
        .where(Release.dataset_id == dataset_id, Release.state == "published")
        .order_by(Release.number.desc())
        .limit(1)
    )


# -- the public side --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicDataset:
    """What the portal knows of an open dataset: its metadata, settings and published releases."""

    dataset: Dataset
    settings: OpenDataset
    releases: list[Release]

    @property
    def latest(self) -> Release:
        """The newest published release."""
        return self.releases[0]


def public_dataset(*, session: Session, slug: str) -> PublicDataset:
    """An open dataset by slug; NotFound unless it has a published release."""
    found = session.scalar(select(Dataset).where(Dataset.slug == slug))
    releases = releases_of(session, found.id) if found is not None else []
    if found is None or not releases:
        raise NotFound(T("no open dataset is called {slug}", slug=slug), detail={"dataset": slug})
    return PublicDataset(dataset=found, settings=open_settings(session, found), releases=releases)


def releases_of(session: Session, dataset_id: int) -> list[Release]:
    """Published releases of a dataset, newest first."""
    return list(
        session.scalars(
            select(Release)
            .where(Release.dataset_id == dataset_id, Release.state == "published")
            .order_by(Release.number.desc())
        )
    )


def public_release(opened: PublicDataset, number: int | None) -> Release:
    """Release ``number`` of an open dataset (the newest when None)."""
    if number is None:
        return opened.latest
    for release in opened.releases:
        if release.number == number:
            return release
    raise NotFound(
        T("{slug} has no release {number}", slug=opened.dataset.slug, number=number),
        detail={"parameter": "version"},
    )


def published_datasets(session: Session) -> list[PublicDataset]:
    """Every open dataset with its releases, most recently published first."""
    rows = session.scalars(
        select(Release).where(Release.state == "published").order_by(Release.number.desc())
    )
    by_dataset: dict[int, list[Release]] = {}
    for release in rows:
        by_dataset.setdefault(release.dataset_id, []).append(release)
    if not by_dataset:
        return []
    datasets = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(by_dataset)))}
    settings = {
        s.dataset_id: s
        for s in session.scalars(select(OpenDataset).where(OpenDataset.dataset_id.in_(by_dataset)))
    }
    result = [
        PublicDataset(dataset=datasets[i], settings=settings[i], releases=rels)
        for i, rels in by_dataset.items()
        if i in settings
    ]
    result.sort(key=lambda p: p.latest.published_at or p.latest.created_at, reverse=True)
    return result


def use(
    session: Session, dataset_id: int, *, day: date | None = None, downloads: int = 0, api_calls: int = 0
) -> None:
    """Add downloads and API calls to a dataset's counts of ``day`` (today in the platform timezone)."""
    today = day or clock.now().astimezone(get_settings().tz).date()
    bumped = session.execute(
        update(UsageDay)
        .where(UsageDay.dataset_id == dataset_id, UsageDay.day == today)
        .values(downloads=UsageDay.downloads + downloads, api_calls=UsageDay.api_calls + api_calls)
    )
    if bumped.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(UsageDay(dataset_id=dataset_id, day=today, downloads=downloads, api_calls=api_calls))
    except IntegrityError:  # another writer made the day's row first (or the dataset is gone)
        session.execute(
            update(UsageDay)
            .where(UsageDay.dataset_id == dataset_id, UsageDay.day == today)
            .values(downloads=UsageDay.downloads + downloads, api_calls=UsageDay.api_calls + api_calls)
        )


def usage_of(session: Session, dataset_id: int) -> dict[str, int]:
    """All-time downloads and API calls of a dataset (stored, plus this process's pending counts)."""
    from zhishe.opendata import usage

    pending: dict[str, int] = {"downloads": 0, "api_calls": 0}
    for (dataset, _day, kind), n in usage.pending().items():
        if dataset == dataset_id:
            pending[kind] += n
    row = session.execute(
        select(
            func.coalesce(func.sum(UsageDay.downloads), 0), func.coalesce(func.sum(UsageDay.api_calls), 0)
        ).where(UsageDay.dataset_id == dataset_id)
    ).one()
    return {
        "downloads": int(row[0]) + pending["downloads"],
        "api_calls": int(row[1]) + pending["api_calls"],
    }


def today() -> date:
    """Today in the platform timezone."""
    return clock.now().astimezone(get_settings().tz).date()


def report_problem(
    *,
    session: Session,
    slug: str,
    kind: str,
    problem: str,
    column: str = "",
    period: str = "",
    contact: str = "",
    release: int | None = None,
) -> Any:
    """Open a data issue to the owner of an open dataset, from anyone (the exchange's issue model)."""
    from zhishe.exchange import issues

    opened = public_dataset(session=session, slug=slug)
    chosen = public_release(opened, release)
    if (
        column
        and column in {c["name"] for c in chosen.columns}
        and column not in {c.name for c in opened.dataset.columns}
    ):
        # a column of the release only (a differentially private aggregate): name it in the text
        problem, column = f"[{column}] {problem}", ""
    if column and column not in {c["name"] for c in chosen.columns}:
        raise Invalid(
            T("dataset {slug} has no column(s): {columns}", slug=slug, columns=column),
            detail={"field": "column"},
        )
    return issues.file_public_issue(
        session=session,
        dataset=opened.dataset,
        version=chosen.source_version,
        kind=kind,
        problem=problem,
        column=column,
        period=period,
        contact=contact,
    )


def slug_of(session: Session, dataset_id: int) -> str:
    """A dataset's slug by id."""
    return session.scalar(select(Dataset.slug).where(Dataset.id == dataset_id)) or ""


def read_settings(*, session: Session, actor: Actor, dataset: int | str) -> OpenDataset:
    """A dataset's open-data settings (its owner's stewards and admins)."""
    found = catalog.get_or_raise(session=session, dataset=dataset)
    authorize(actor, "opendata.publish", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    return open_settings(session, found)


def describe(session: Session, opened: PublicDataset, language: str) -> dict[str, Any]:
    """The portal's view of an open dataset, without its releases."""
    from zhishe.core.accounts.models import Organisation
    from zhishe.opendata import portal

    d, latest = opened.dataset, opened.latest
    org = session.get(Organisation, d.owner_org_id)
    publisher = (org.name_en if language == "en" and org.name_en else org.name_zh) if org else ""
    freshness = latest.freshness or {}
    base = f"/opendata/api/v1/datasets/{d.slug}"
    links = {
        "page": f"/opendata/datasets/{d.slug}",
        "query": f"{base}/query.json",
        "dcat": f"/opendata/datasets/{d.slug}.jsonld",
        **{f"download_{fmt}": f"{base}/download.{fmt}" for fmt in portal.formats_of(opened)},
    }
    return {
        "slug": d.slug,
        "title": d.title(language),
        "title_zh": d.title_zh,
        "title_en": d.title_en,
        "description": d.description(language),
        "theme": d.theme,
        "keywords": list(d.keywords or []),
        "publisher": publisher,
        "licence": d.licence,
        "cadence": opened.settings.cadence,
        "overdue_days": portal.overdue_days(opened),
        "missing_periods": [str(p) for p in freshness.get("missing_periods") or []],
        "missing_count": int(freshness.get("missing_count") or 0),
        **usage_of(session, d.id),
        "columns": latest.columns,
        "links": links,
    }


def suggested_policy(dataset: Dataset) -> dict[str, Any]:
    """A starting policy for the owner's editor: keep what is public or internal, drop what is
    personal or sensitive, no privacy model. The owner refines it before drafting."""
    return {
        "columns": {c.name: "drop" if c.classification in _PRIVATE else "keep" for c in dataset.columns},
        "model": {"type": "none"},
    }


@dataclass(frozen=True, slots=True)
class ServedRelease:
    """What the query path needs of a published release, as plain values that outlive a session."""

    dataset_id: int
    slug: str
    number: int
    store_key: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]
    row_count: int
    title_zh: str

    @property
    def types(self) -> dict[str, str]:
        """Column name → type."""
        return dict(self.columns)

    @property
    def point_column(self) -> str | None:
        """The first point column, if any (for GeoJSON)."""
        return next((name for name, kind in self.columns if kind == "point"), None)


#: How long a process trusts its cached answer to "which release is the newest" (other processes
#: may publish); releases named by number never change, and a publish in this process clears it.
SERVED_TTL_SECONDS = 2.0
_served: dict[tuple[str, int | None], tuple[float, ServedRelease]] = {}


def served_release(session: Session, slug: str, number: int | None) -> ServedRelease:
    """Release ``number`` (the newest when None) of an open dataset, cached for the query path."""
    import time

    found = cached_release(slug, number)
    if found is not None:
        return found
    key = (slug, number)
    now = time.monotonic()
    opened = public_dataset(session=session, slug=slug)
    release = public_release(opened, number)
    value = ServedRelease(
        dataset_id=opened.dataset.id,
        slug=slug,
        number=release.number or 0,
        store_key=release.store_key,
        columns=tuple((str(c["name"]), str(c["type"])) for c in release.columns),
        order_by=tuple(release.order_by or ()),
        row_count=release.row_count,
        title_zh=opened.dataset.title_zh,
    )
    if len(_served) > 4096:
        _served.clear()
    _served[key] = (now, value)
    return value


def cached_release(slug: str, number: int | None) -> ServedRelease | None:
    """What ``served_release`` would answer from its cache, without the database; None if it would
    have to look (never seen, or the newest release's answer is older than ``SERVED_TTL_SECONDS``)."""
    import time

    hit = _served.get((slug, number))
    if hit is not None and (number is not None or time.monotonic() - hit[0] < SERVED_TTL_SECONDS):
        return hit[1]
    return None


def forget_served() -> None:
    """Drop the cached releases (after a publish, and between tests)."""
    _served.clear()


def chart_of(
    chosen: Mapping[str, Any], columns: list[dict[str, Any]], time_column: str | None
) -> dict[str, Any]:
    """The chart of a release: the owner's choice if its columns are still there, else a line of the
    first numeric column over the time column, else none."""
    names = {str(c["name"]): str(c["type"]) for c in columns}
    if chosen and chosen.get("x") in names and chosen.get("y") in names:
        return dict(chosen)
    numeric = next((n for n, t in names.items() if t in {"integer", "decimal"}), None)
    if time_column and names.get(time_column) in {"date", "datetime"} and numeric:
        return {"kind": "line", "x": time_column, "y": numeric}
    return {}
