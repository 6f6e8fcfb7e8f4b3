"""Reading datasets: THE read function (``read_rows``), aggregates, versions, quality profiles,
diffs and exports. Every function asks ``access.read_scope`` which columns, rows and versions the
actor may see (the open view, or an exchange grant's), runs the read through ``catalog.lake``
(DuckDB over the Delta table, never concatenated SQL) and audits it; reads through a grant are
also noted for the owner's usage page. Lake errors are already the platform's errors (Invalid,
Conflict, NotFound) and pass through unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.catalog import lake
from zhishe.catalog.access import Channel, ReadScope, Use, filter_columns, note_use, read_scope
from zhishe.catalog.models import Dataset, DatasetVersion, DefinitionChange
from zhishe.catalog.service import (
    get_or_raise,
    is_owner,
    is_restricted,
    lake_uri,
    read_dataset,
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
    grant: int | None = None,
) -> lake.Page:
    """THE read function: rows of a dataset version the actor may see, filtered, ordered, keyset-paged.

    ``grant`` names the exchange grant to read through (by default the open view, or else the
    grant that covers the columns asked for)."""
    found = get_or_raise(session=session, dataset=dataset)
    order_names = [name for name, _direction in order or []]
    scope = read_scope(
        session=session,
        actor=actor,
        dataset=found,
        wanted=select,
        filtered_on=[*filter_columns(where), *order_names],
        version=version,
        grant_id=grant,
    )
    chosen = select or scope.names
    at = _version_or_latest(found, version)
    if not 1 <= limit <= 10000:
        raise Invalid("limit must be between 1 and 10000", detail={"parameter": "limit"})
    combined = scope.where(where)
    page = lake.read(
        lake_uri(found.id),
        columns=scope.known,
        version=at,
        select=chosen,
        where=lake.parse_filter(combined) if combined else None,
        order=_directions(order),
        after=after,
        limit=limit,
        with_total=with_total,
    )
    _audit_read(
        session,
        actor,
        found,
        scope,
        action="dataset.read",
        version=at,
        columns=chosen,
        rows=page.rows.num_rows,
        extra={"where": where},
    )
    return page


def _audit_read(
    session: Session,
    actor: Actor,
    found: Dataset,
    scope: ReadScope,
    *,
    action: str,
    version: int,
    columns: list[str],
    rows: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """The audit event of a read, and the grant use when it went through a grant."""
    detail: dict[str, Any] = {"version": version, "columns": columns, "rows": rows, **(extra or {})}
    if scope.grant is not None:
        detail["grant"] = scope.grant.id
        detail["purpose"] = scope.grant.purpose
    record(
        session=session,
        actor=actor,
        action=action,
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail=detail,
    )
    if scope.grant is not None:
        note_use(
            session,
            Use(
                grant_id=scope.grant.id,
                dataset_id=found.id,
                actor=actor,
                action=action,
                version=version,
                columns=columns,
                rows=rows,
            ),
        )


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
    """Grouped measures for a chart, over the columns and rows the actor may read."""
    found = get_or_raise(session=session, dataset=dataset)
    used = [*group_by, *(m[1] for m in measures if m[1]), *([time_bucket[0]] if time_bucket else [])]
    scope = read_scope(
        session=session, actor=actor, dataset=found, wanted=used, version=version, channel="aggregate"
    )
    at = _version_or_latest(found, version)
    result = lake.aggregate(
        lake_uri(found.id),
        columns=scope.known,
        version=at,
        group_by=group_by,
        measures=measures,  # type: ignore[arg-type]
        where=lake.parse_filter(scope.row_filter) if scope.row_filter else None,
        time_bucket=time_bucket,
        limit=limit,  # type: ignore[arg-type]
    )
    _audit_read(
        session,
        actor,
        found,
        scope,
        action="dataset.aggregate",
        version=at,
        columns=used,
        rows=result.num_rows,
        extra={"group_by": group_by},
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
    scope = read_scope(session=session, actor=actor, dataset=found, version=version)
    _whole_version_only(found, scope, "profile")
    visible = set(scope.names)
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
    scope = read_scope(session=session, actor=actor, dataset=found, version=min(from_version, to_version))
    _whole_version_only(found, scope, "diff")
    visible = scope.columns
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
    grant: int | None = None,
    channel: Channel = "export",
) -> int:
    """Write the rows the actor may see to ``dest`` in ``fmt``; return the row count. ``channel`` is
    ``derived`` when the rows feed a derived dataset's query (allowed by query grants too)."""
    found = get_or_raise(session=session, dataset=dataset)
    if fmt not in {"csv", "json", "ndjson", "parquet"}:
        raise Invalid(
            f"unknown export format {fmt!r}; use csv, json, ndjson or parquet", detail={"parameter": "format"}
        )
    scope = read_scope(
        session=session,
        actor=actor,
        dataset=found,
        wanted=select,
        filtered_on=sorted(filter_columns(where)),
        version=version,
        channel=channel,
        grant_id=grant,
    )
    chosen = select or scope.names
    at = _version_or_latest(found, version)
    combined = scope.where(where)
    count = lake.export(
        lake_uri(found.id),
        columns=scope.known,
        version=at,
        select=chosen,
        where=lake.parse_filter(combined) if combined else None,
        fmt=fmt,
        dest=dest,
    )  # type: ignore[arg-type]
    _audit_read(
        session,
        actor,
        found,
        scope,
        action="dataset.export",
        version=at,
        columns=chosen,
        rows=count,
        extra={"format": fmt},
    )
    return count


def _whole_version_only(found: Dataset, scope: ReadScope, what: str) -> None:
    """Refuse summaries of a whole version (profile, diff) to a reader limited to some rows."""
    if scope.row_filter is None:
        return
    message = (
        T(
            "the quality profile covers every row of dataset {slug}; your grant is limited to some rows",
            slug=found.slug,
        )
        if what == "profile"
        else T(
            "a version diff covers every row of dataset {slug}; your grant is limited to some rows",
            slug=found.slug,
        )
    )
    raise Forbidden(message, detail={"dataset": found.slug, "grant": scope.grant.id if scope.grant else None})


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
