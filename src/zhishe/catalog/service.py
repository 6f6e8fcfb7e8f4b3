"""The catalog's rules for datasets themselves: registering, searching, describing, their
schemas and definition changes.

Who may read which columns and rows is in ``catalog.access``; reading rows, profiles, diffs and
exports in ``catalog.reads``; imports in ``catalog.flows``.
"""

from __future__ import annotations

from sqlalchemy import Text, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhishe.catalog.models import Dataset, DatasetColumn, DatasetVersion, DefinitionChange, ImportJob
from zhishe.catalog.schemas import ColumnIn, DatasetCreate, DatasetUpdate, SharingClass
from zhishe.catalog.types import Classification, ColumnSpec, ColumnType
from zhishe.core import clock
from zhishe.core.accounts.service import get_org_or_raise
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.pagination import Page, is_number, keyset_page

__all__ = [
    "column_specs",
    "create_dataset",
    "get_or_raise",
    "is_overdue",
    "is_restricted",
    "lake_uri",
    "list_datasets",
    "read_dataset",
    "set_columns",
    "update_dataset",
]


def lake_uri(dataset_id: int) -> str:
    """Where a dataset's Delta table lives."""
    root = get_settings().lake_uri.rstrip("/")
    return f"{root}/ds_{dataset_id}"


def column_specs(dataset: Dataset) -> list[ColumnSpec]:
    """The dataset's schema as column specs, in order."""
    return [
        ColumnSpec(
            name=c.name,
            type=ColumnType(c.type),
            unit=c.unit,
            description=c.description,
            is_key=c.is_key,
            classification=Classification(c.classification),
        )
        for c in dataset.columns
    ]


def get_or_raise(*, session: Session, dataset: int | str) -> Dataset:
    """The dataset by id or slug, or NotFound."""
    if isinstance(dataset, int) or (isinstance(dataset, str) and is_number(dataset)):
        found = session.get(Dataset, int(dataset))
    else:
        found = session.scalar(select(Dataset).where(Dataset.slug == dataset))
    if found is None:
        raise NotFound(
            T("dataset {dataset} does not exist", dataset=dataset), detail={"dataset": str(dataset)}
        )
    return found


def is_owner(actor: Actor, dataset: Dataset) -> bool:
    """The actor belongs to the owning organisation (or is a platform admin)."""
    return actor.is_platform_admin or actor.org_id == dataset.owner_org_id


def is_restricted(actor: Actor, dataset: Dataset) -> bool:
    """Only title, owner and legal basis may be shown (不予共享, seen from outside its owner)."""
    return dataset.sharing_class == SharingClass.NOT_SHARED and not is_owner(actor, dataset)


def is_overdue(dataset: Dataset) -> bool:
    """The dataset missed its declared cadence."""
    return dataset.overdue_after is not None and clock.now() > dataset.overdue_after


def read_dataset(*, session: Session, actor: Actor, dataset: int | str) -> Dataset:
    """A dataset's metadata, if the actor may see the catalog."""
    found = get_or_raise(session=session, dataset=dataset)
    authorize(actor, "dataset.read", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    return found


def list_datasets(
    *,
    session: Session,
    actor: Actor,
    q: str | None = None,
    theme: str | None = None,
    owner_org_id: int | None = None,
    sharing_class: str | None = None,
    cadence: str | None = None,
    overdue: bool | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[Page[Dataset], dict[str, dict[str, int]]]:
    """Search the catalog; return a page and facet counts (theme, owner, sharing class, cadence)."""
    authorize(actor, "dataset.read", org_id=actor.org_id)
    base = select(Dataset)
    if q:
        pattern = f"%{q.strip().lower()}%"
        base = base.where(
            or_(
                func.lower(Dataset.title_zh).like(pattern),
                func.lower(Dataset.title_en).like(pattern),
                func.lower(Dataset.description_zh).like(pattern),
                func.lower(Dataset.description_en).like(pattern),
                func.lower(Dataset.slug).like(pattern),
                func.lower(func.cast(Dataset.keywords, Text())).like(pattern),
            )
        )
    facet_filters = {
        "theme": (Dataset.theme, theme),
        "owner": (Dataset.owner_org_id, owner_org_id),
        "sharing_class": (Dataset.sharing_class, sharing_class),
        "cadence": (Dataset.accrual_periodicity, cadence),
    }
    facets: dict[str, dict[str, int]] = {}
    for name, (column, _value) in facet_filters.items():
        stmt = base
        for other, (other_col, other_value) in facet_filters.items():
            if other != name and other_value not in (None, ""):
                stmt = stmt.where(other_col == other_value)
        sub = stmt.subquery()
        rows = session.execute(select(sub.c[column.key], func.count()).group_by(sub.c[column.key])).all()
        facets[name] = {str(k): int(n) for k, n in rows if k not in (None, "")}
    stmt = base
    for _name, (column, value) in facet_filters.items():
        if value not in (None, ""):
            stmt = stmt.where(column == value)
    if overdue:
        stmt = stmt.where(Dataset.overdue_after.is_not(None), Dataset.overdue_after < clock.now())
    return keyset_page(session, stmt, Dataset.id, after=after, limit=limit), facets


def _column_rows(columns: list[ColumnIn]) -> list[DatasetColumn]:
    return [
        DatasetColumn(
            position=i,
            name=c.name,
            type=c.type.value,
            unit=c.unit,
            description=c.description,
            is_key=c.is_key,
            classification=c.classification.value,
        )
        for i, c in enumerate(columns)
    ]


def create_dataset(*, session: Session, actor: Actor, dataset_in: DatasetCreate) -> Dataset:
    """Register a dataset (its schema may come now or from its first import)."""
    owner_id = dataset_in.owner_org_id or actor.org_id
    if owner_id is None:
        raise Invalid(
            "owner_org_id is required when acting from the command line", detail={"field": "owner_org_id"}
        )
    owner = get_org_or_raise(session=session, org_id=owner_id)
    authorize(actor, "dataset.write", org_id=owner.id, what=f"a dataset of {owner.code}")
    if session.scalar(select(Dataset.id).where(Dataset.slug == dataset_in.slug)) is not None:
        raise Conflict(f"a dataset with slug {dataset_in.slug!r} exists", detail={"field": "slug"})
    now = clock.now()
    data = dataset_in.model_dump(exclude={"columns", "owner_org_id", "slug"})
    dataset = Dataset(
        slug=dataset_in.slug,
        owner_org_id=owner.id,
        created_at=now,
        updated_at=now,
        row_count=0,
        next_row_id=0,
        **data,
    )
    dataset.columns = _column_rows(dataset_in.columns)
    session.add(dataset)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a dataset with slug {dataset_in.slug!r} exists", detail={"field": "slug"}) from exc
    record(
        session=session,
        actor=actor,
        action="dataset.create",
        object_type="dataset",
        object_id=dataset.id,
        object_org_id=owner.id,
        detail={"slug": dataset.slug, "sharing_class": dataset.sharing_class},
    )
    return dataset


_TRACKED = ("type", "unit", "description", "classification", "is_key")


def _definition_changes(dataset: Dataset, columns: list[ColumnIn], actor: Actor) -> list[DefinitionChange]:
    old = {c.name: c for c in dataset.columns}
    new = {c.name: c for c in columns}
    now = clock.now()
    changes: list[DefinitionChange] = []

    def change(column: str, field: str, before: object, after: object) -> None:
        changes.append(
            DefinitionChange(
                dataset_id=dataset.id,
                after_version=dataset.current_version,
                changed_at=now,
                actor=actor.username,
                column=column,
                field=field,
                old="" if before is None else str(before),
                new="" if after is None else str(after),
            )
        )

    for name in old.keys() - new.keys():
        change(name, "removed", old[name].type, None)
    for name in new.keys() - old.keys():
        change(name, "added", None, new[name].type.value)
    for name in old.keys() & new.keys():
        for field in _TRACKED:
            before = getattr(old[name], field)
            after = getattr(new[name], field)
            after = after.value if hasattr(after, "value") else after
            if before != after:
                change(name, field, before, after)
    return sorted(changes, key=lambda c: (c.column, c.field))


def set_columns(
    *, session: Session, actor: Actor, dataset: Dataset, columns: list[ColumnIn]
) -> list[DefinitionChange]:
    """Replace the column definitions; every change after the first version is recorded."""
    authorize(actor, "dataset.write", org_id=dataset.owner_org_id, what=f"dataset {dataset.slug}")
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise Invalid(f"duplicate column name(s): {', '.join(dupes)}", detail={"field": "columns"})
    if not columns:
        raise Invalid("a dataset needs at least one column", detail={"field": "columns"})
    if dataset.time_column and dataset.time_column not in names:
        raise Invalid(
            f"time_column {dataset.time_column!r} is not one of the columns", detail={"field": "columns"}
        )
    changes = _definition_changes(dataset, columns, actor) if dataset.columns else []
    if dataset.current_version is not None:
        for item in changes:
            session.add(item)
    existing = {c.name: c for c in dataset.columns}
    rows: list[DatasetColumn] = []
    for i, c in enumerate(columns):
        row = existing.get(c.name) or DatasetColumn(name=c.name)
        row.position, row.type, row.unit, row.description = i, c.type.value, c.unit, c.description
        row.is_key, row.classification = c.is_key, c.classification.value
        rows.append(row)
    dataset.columns = rows
    dataset.updated_at = clock.now()
    session.flush()
    if changes or not existing:
        record(
            session=session,
            actor=actor,
            action="dataset.schema",
            object_type="dataset",
            object_id=dataset.id,
            object_org_id=dataset.owner_org_id,
            detail={"changes": [f"{c.column}.{c.field}: {c.old} → {c.new}" for c in changes][:50]},
        )
    return changes


def update_dataset(
    *, session: Session, actor: Actor, dataset: int | str, dataset_in: DatasetUpdate
) -> Dataset:
    """Change metadata and/or column definitions."""
    found = get_or_raise(session=session, dataset=dataset)
    authorize(actor, "dataset.write", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    changes = dataset_in.model_dump(exclude_unset=True, exclude={"columns"})
    for key in ("title_zh", "sharing_class", "accrual_periodicity"):
        if key in changes and changes[key] is None:
            raise Invalid(f"{key} may not be null", detail={"field": key})
    merged_class = changes.get("sharing_class", found.sharing_class)
    merged_basis = changes.get("legal_basis", found.legal_basis) or ""
    if merged_class == SharingClass.NOT_SHARED and not merged_basis.strip():
        raise Invalid(
            "a dataset that is not shared (不予共享) needs a legal basis", detail={"field": "legal_basis"}
        )
    start = changes.get("temporal_start", found.temporal_start)
    end = changes.get("temporal_end", found.temporal_end)
    if start and end and end < start:
        raise Invalid("temporal_end is before temporal_start", detail={"field": "temporal_end"})
    time_column = changes.get("time_column", found.time_column)
    names = [c.name for c in (dataset_in.columns if dataset_in.columns is not None else found.columns)]
    if time_column and time_column not in names:
        raise Invalid(
            f"time_column {time_column!r} is not one of the columns", detail={"field": "time_column"}
        )
    for key, value in changes.items():
        setattr(found, key, value.value if isinstance(value, SharingClass) else value)
    found.updated_at = clock.now()
    if changes:
        record(
            session=session,
            actor=actor,
            action="dataset.update",
            object_type="dataset",
            object_id=found.id,
            object_org_id=found.owner_org_id,
            detail={"fields": sorted(changes)},
        )
    if dataset_in.columns is not None:
        set_columns(session=session, actor=actor, dataset=found, columns=dataset_in.columns)
    return found


def stats(*, session: Session, actor: Actor) -> dict[str, int]:
    """Counts for the home page."""
    if not can(actor, "dataset.read", org_id=actor.org_id):
        return {"datasets": 0, "overdue": 0, "versions": 0}
    return {
        "datasets": session.scalar(select(func.count()).select_from(Dataset)) or 0,
        "overdue": session.scalar(
            select(func.count())
            .select_from(Dataset)
            .where(Dataset.overdue_after.is_not(None), Dataset.overdue_after < clock.now())
        )
        or 0,
        "versions": session.scalar(select(func.count()).select_from(DatasetVersion)) or 0,
    }


def recent(*, session: Session, actor: Actor, limit: int = 8) -> list[Dataset]:
    """Recently updated datasets."""
    if not can(actor, "dataset.read", org_id=actor.org_id):
        return []
    return list(session.scalars(select(Dataset).order_by(Dataset.updated_at.desc()).limit(limit)))


def jobs_of(*, session: Session, dataset_id: int, limit: int = 10) -> list[ImportJob]:
    """Recent import jobs of a dataset."""
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.dataset_id == dataset_id)
            .order_by(ImportJob.created_at.desc())
            .limit(limit)
        )
    )
