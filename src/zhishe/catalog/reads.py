"""Reading datasets: THE read function (``read_rows``), aggregates, versions, quality profiles,
diffs and exports. Every function decides which columns the actor may see through
``service.readable_columns`` (and, with the exchange, which rows), runs the read through
``catalog.lake`` (DuckDB over the Delta table, never concatenated SQL) and audits it. Lake errors
are already the platform's errors (Invalid, Conflict, NotFound) and pass through unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.catalog import lake
from zhishe.catalog.models import Dataset, DatasetVersion, DefinitionChange
from zhishe.catalog.service import (
    get_or_raise,
    is_owner,
    is_restricted,
    lake_uri,
    read_dataset,
    readable_columns,
)
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T

__all__ = [
    "aggregate",
    "diff_to_dict",
    "diff_versions",
    "export_rows",
    "get_version_or_raise",
    "list_definition_changes",
    "list_versions",
    "read_profile",
    "read_rows",
]


def _directions(order: list[tuple[str, str]] | None) -> list[tuple[str, lake.Direction]] | None:
    """Validated (column, direction) pairs."""
    if not order:
        return None
    result: list[tuple[str, lake.Direction]] = []
    for name, direction in order:
        if direction not in ("asc", "desc"):
            raise Invalid(f"order: {direction!r} is not asc or desc", detail={"parameter": "order"})
        result.append((name, "asc" if direction == "asc" else "desc"))
    return result


def _version_or_latest(dataset: Dataset, version: int | None) -> int:
    if dataset.current_version is None:
        raise NotFound(
            T("dataset {slug} has no versions yet; import a file first", slug=dataset.slug),
            detail={"dataset": dataset.slug},
        )
    if version is None:
        return dataset.current_version
    if version < 0 or version > dataset.current_version:
        raise NotFound(
            T(
                "dataset {slug} has no version {version}; the latest is {latest}",
                slug=dataset.slug,
                version=version,
                latest=dataset.current_version,
            ),
            detail={"version": version, "latest": dataset.current_version},
        )
    return version


def read_rows(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    version: int | None = None,
    select: list[str] | None = None,
    where: dict[str, Any] | None = None,
    order: list[tuple[str, str]] | None = None,
    after: str | None = None,
    limit: int = 50,
    with_total: bool = False,
) -> lake.Page:
    """THE read function: rows of a dataset version the actor may see, filtered, ordered, keyset-paged."""
    found = get_or_raise(session=session, dataset=dataset)
    visible = readable_columns(actor=actor, dataset=found)
    names = [c.name for c in visible]
    chosen = select or names
    hidden = [c for c in chosen if c not in names]
    if hidden:
        known = {c.name for c in found.columns}
        unknown = [c for c in hidden if c not in known]
        if unknown:
            raise Invalid(f"unknown column(s): {', '.join(unknown)}", detail={"columns": unknown})
        raise Forbidden(
            T("you may not read the column(s): {columns}", columns=", ".join(hidden)),
            detail={"columns": hidden},
        )
    for name, _direction in order or []:
        if name not in names:
            raise Invalid(f"cannot order by {name!r}: not a column you may read", detail={"column": name})
    at = _version_or_latest(found, version)
    if not 1 <= limit <= 10000:
        raise Invalid("limit must be between 1 and 10000", detail={"parameter": "limit"})
    parsed = lake.parse_filter(where) if where else None
    page = lake.read(
        lake_uri(found.id),
        columns=visible,
        version=at,
        select=chosen,
        where=parsed,
        order=_directions(order),
        after=after,
        limit=limit,
        with_total=with_total,
    )
    record(
        session=session,
        actor=actor,
        action="dataset.read",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"version": at, "columns": len(chosen), "where": where, "rows": page.rows.num_rows},
    )
    return page


def aggregate(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    group_by: list[str],
    measures: list[lake.Measure],
    time_bucket: tuple[str, lake.TimeUnit] | None = None,
    version: int | None = None,
    limit: int = 1000,
) -> Any:
    """Grouped measures for a chart, over the columns the actor may read."""
    found = get_or_raise(session=session, dataset=dataset)
    visible = readable_columns(actor=actor, dataset=found)
    names = {c.name for c in visible}
    for name in [*group_by, *(m[1] for m in measures if m[1]), *([time_bucket[0]] if time_bucket else [])]:
        if name not in names:
            raise Invalid(f"unknown or unreadable column {name!r}", detail={"column": name})
    at = _version_or_latest(found, version)
    result = lake.aggregate(
        lake_uri(found.id),
        columns=visible,
        version=at,
        group_by=group_by,
        measures=measures,  # type: ignore[arg-type]
        time_bucket=time_bucket,
        limit=limit,  # type: ignore[arg-type]
    )
    record(
        session=session,
        actor=actor,
        action="dataset.aggregate",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"version": at, "group_by": group_by},
    )
    return result


def _described(*, session: Session, actor: Actor, dataset: int | str) -> Dataset:
    """A dataset whose versions and definitions the actor may see (not a 不予共享 one of others)."""
    found = read_dataset(session=session, actor=actor, dataset=dataset)
    if is_restricted(actor, found):
        raise Forbidden(T("dataset {slug} is not shared (不予共享)", slug=found.slug))
    return found


def list_versions(*, session: Session, actor: Actor, dataset: int | str) -> list[DatasetVersion]:
    """Every version of a dataset, newest first."""
    found = _described(session=session, actor=actor, dataset=dataset)
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == found.id)
            .order_by(DatasetVersion.version.desc())
        )
    )


def get_version_or_raise(
    *, session: Session, actor: Actor, dataset: int | str, version: int
) -> DatasetVersion:
    """One version's record (profile included)."""
    found = _described(session=session, actor=actor, dataset=dataset)
    row = session.scalar(
        select(DatasetVersion).where(DatasetVersion.dataset_id == found.id, DatasetVersion.version == version)
    )
    if row is None:
        raise NotFound(
            T("dataset {slug} has no version {version}", slug=found.slug, version=version),
            detail={"version": version},
        )
    return row


def read_profile(
    *, session: Session, actor: Actor, dataset: int | str, version: int | None = None
) -> dict[str, Any]:
    """A version's quality profile, reduced to the columns the actor may read (top values and
    duplicate keys are data too), and audited like any read."""
    found = get_or_raise(session=session, dataset=dataset)
    visible = {c.name for c in readable_columns(actor=actor, dataset=found)}
    at = _version_or_latest(found, version)
    row = get_version_or_raise(session=session, actor=actor, dataset=found.id, version=at)
    profile = dict(row.profile or {})
    profile["columns"] = {k: v for k, v in (profile.get("columns") or {}).items() if k in visible}
    keys = profile.get("keys")
    if keys and not set(keys.get("columns", [])) <= visible:
        profile.pop("keys")
    freshness = profile.get("freshness")
    if freshness and freshness.get("time_column") not in visible:
        profile.pop("freshness")
    record(
        session=session,
        actor=actor,
        action="dataset.profile",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"version": at},
    )
    return profile


def list_definition_changes(*, session: Session, actor: Actor, dataset: int | str) -> list[DefinitionChange]:
    """Changes of column definitions, newest first."""
    found = _described(session=session, actor=actor, dataset=dataset)
    return list(
        session.scalars(
            select(DefinitionChange)
            .where(DefinitionChange.dataset_id == found.id)
            .order_by(DefinitionChange.id.desc())
        )
    )


def diff_versions(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    from_version: int,
    to_version: int,
    sample: int = 20,
) -> Any:
    """Rows added, removed and changed between two versions, over the columns the actor may read."""
    found = get_or_raise(session=session, dataset=dataset)
    visible = readable_columns(actor=actor, dataset=found)
    a = _version_or_latest(found, from_version)
    b = _version_or_latest(found, to_version)
    names = {c.name for c in visible}
    hide: set[str] = set()
    if len(visible) < len(found.columns) or not is_owner(actor, found):
        snapshots = session.scalars(
            select(DatasetVersion.columns).where(
                DatasetVersion.dataset_id == found.id, DatasetVersion.version.in_([a, b])
            )
        )
        every = {c.name for c in found.columns} | {c["name"] for snap in snapshots for c in snap}
        hide = every - names
    result = lake.diff(
        lake_uri(found.id), columns=visible, from_version=a, to_version=b, sample=sample, hide=hide
    )
    record(
        session=session,
        actor=actor,
        action="dataset.diff",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"from": a, "to": b},
    )
    return result


def export_rows(
    *,
    session: Session,
    actor: Actor,
    dataset: int | str,
    fmt: lake.ExportFormat,
    dest: Path,
    version: int | None = None,
    select: list[str] | None = None,
    where: dict[str, Any] | None = None,
) -> int:
    """Write the rows the actor may see to ``dest`` in ``fmt``; return the row count."""
    found = get_or_raise(session=session, dataset=dataset)
    visible = readable_columns(actor=actor, dataset=found)
    if fmt not in {"csv", "json", "ndjson", "parquet"}:
        raise Invalid(
            f"unknown export format {fmt!r}; use csv, json, ndjson or parquet", detail={"parameter": "format"}
        )
    names = {c.name for c in visible}
    for name in select or []:
        if name not in names:
            raise Invalid(f"unknown or unreadable column {name!r}", detail={"column": name})
    at = _version_or_latest(found, version)
    count = lake.export(
        lake_uri(found.id),
        columns=visible,
        version=at,
        select=select or sorted(names, key=[c.name for c in visible].index),
        where=lake.parse_filter(where) if where else None,
        fmt=fmt,
        dest=dest,
    )  # type: ignore[arg-type]
    record(
        session=session,
        actor=actor,
        action="dataset.export",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"version": at, "format": fmt, "rows": count},
    )
    return count


def diff_to_dict(result: lake.VersionDiff) -> dict[str, Any]:
    """A version diff as JSON (the API, the page and the CLI show the same thing)."""
    samples = result.samples or {}
    schema = result.schema_changes or {}
    described = [f"{kind}: {', '.join(map(str, names))}" for kind, names in schema.items() if names]
    return {
        "from_version": result.from_version,
        "to_version": result.to_version,
        "matched_on": result.matched_on,
        "key": list(result.key),
        "added": result.added,
        "removed": result.removed,
        "changed": result.changed,
        "per_column_changes": dict(result.per_column_changes),
        "schema_changes": described,
        "schema": schema,
        "sample_added": samples.get("added", []),
        "sample_removed": samples.get("removed", []),
        "sample_changed": samples.get("changed", []),
    }
