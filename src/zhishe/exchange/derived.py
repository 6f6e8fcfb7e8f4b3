"""Derived datasets: a grantee's DuckDB SELECT over the views its grants give it, materialised as a
versioned dataset of its own, with lineage to every source version.

The query is checked by ``sqlguard`` (one SELECT, only the granted views, only allow-listed
functions) and runs on a locked-down DuckDB connection. Each granted view is read through THE read
function with the grant's scope (columns, rows, versions, expiry), so a derived dataset can never
hold more than its owner may read; every such read is audited like any other.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.catalog import flows, reads
from zhishe.catalog import service as catalog
from zhishe.catalog.lake._schema import column_type_of
from zhishe.catalog.models import Dataset
from zhishe.catalog.schemas import ColumnIn, DatasetCreate
from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, Role, authorize
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.exchange import sqlguard
from zhishe.exchange.models import DerivedDataset, Grant, LineageEdge
from zhishe.exchange.service import live_at

__all__ = [
    "GrantedView",
    "create",
    "granted_views",
    "lineage",
    "list_derived",
    "mark_stale",
    "refresh",
    "view_name",
]

_MAX_ROWS = 5_000_000


@dataclass(frozen=True, slots=True)
class GrantedView:
    """A view a grantee's SQL may use: one live grant on one dataset."""

    name: str
    grant_id: int
    dataset_id: int
    slug: str
    columns: list[str]


def view_name(slug: str) -> str:
    """The SQL name of a dataset's granted view: its slug with dashes as underscores."""
    return re.sub(r"[^a-z0-9_]", "_", slug.lower())


def granted_views(*, session: Session, actor: Actor) -> list[GrantedView]:
    """The views the actor's organisation may query: one per dataset with a live grant (the widest)."""
    authorize(actor, "exchange.request", org_id=actor.org_id)
    rows = session.execute(
        select(Grant, Dataset.slug)
        .join(Dataset, Dataset.id == Grant.dataset_id)
        .where(
            Grant.grantee_org_id == actor.org_id,
            live_at(clock.now()),
        )
        .order_by(Grant.id)
    ).all()
    best: dict[int, tuple[Grant, str]] = {}
    for grant, slug in rows:
        kept = best.get(grant.dataset_id)
        if kept is None or len(grant.columns) > len(kept[0].columns):
            best[grant.dataset_id] = (grant, slug)
    return [
        GrantedView(view_name(slug), g.id, g.dataset_id, slug, list(g.columns))
        for g, slug in sorted(best.values(), key=lambda item: item[1])
    ]


def _materialise(session: Session, actor: Actor, sql: str) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """Run ``sql`` over the granted views it names; return the result and, per view, (dataset id,
    version read)."""
    views = {v.name: v for v in granted_views(session=session, actor=actor)}
    used = sqlguard.referenced_views(sql, views.keys())
    if not used:
        raise Invalid("the query reads none of your granted views", detail={"field": "sql"})
    folder = Path(tempfile.mkdtemp(prefix="zhishe-derive-"))
    try:
        tables: dict[str, Any] = {}
        versions: dict[str, tuple[int, int]] = {}
        for name in used:
            view = views[name]
            source = catalog.get_or_raise(session=session, dataset=view.dataset_id)
            if source.current_version is None:
                raise Invalid(
                    T("dataset {slug} has no versions yet; import a file first", slug=source.slug),
                    detail={"view": name},
                )
            path = folder / f"{name}.parquet"
            reads.export_rows(
                session=session,
                actor=actor,
                dataset=view.dataset_id,
                fmt="parquet",
                dest=path,
                version=source.current_version,
                grant=view.grant_id,
                channel="derived",
            )
            tables[name] = pq.read_table(path)
            versions[name] = (view.dataset_id, source.current_version)
        result = sqlguard.run(sql, tables, max_rows=_MAX_ROWS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result, versions


def _columns_of(result: pa.Table) -> list[ColumnIn]:
    columns = []
    for field in result.schema:
        kind = column_type_of(field.type)
        if kind is None:
            raise Invalid(
                f"result column {field.name!r} has the type {field.type}, which a dataset cannot store; "
                "cast it (e.g. CAST(x AS VARCHAR))",
                detail={"column": field.name},
            )
        if not re.fullmatch(r"[^\x00-\x1f\"`]{1,100}", field.name):
            raise Invalid(
                f"result column {field.name!r} needs a plain name; give it an alias",
                detail={"column": field.name},
            )
        columns.append(ColumnIn(name=field.name, type=kind, classification="internal"))
    if len({c.name for c in columns}) != len(columns):
        raise Invalid("two result columns have the same name; give them aliases", detail={"field": "sql"})
    return columns


def _write(session: Session, actor: Actor, dataset: Dataset, result: pa.Table, note: str) -> int:
    session.commit()  # the import commits in transactions of its own
    report = flows.import_table(
        maker=get_sessionmaker(get_settings().database_url),
        actor=actor,
        dataset=dataset.id,
        table=result,
        mode="replace",
        note=note,
        filename=f"{dataset.slug}.parquet",
    )
    session.expire_all()
    if report.version is None:
        raise Invalid(report.message or "the derived rows were refused", detail={"dataset": dataset.slug})
    return report.version


def _lineage(session: Session, dataset_id: int, version: int, versions: dict[str, tuple[int, int]]) -> None:
    now = clock.now()
    for source_id, source_version in sorted(set(versions.values())):
        session.add(
            LineageEdge(
                derived_dataset_id=dataset_id,
                derived_version=version,
                source_dataset_id=source_id,
                source_version=source_version,
                created_at=now,
            )
        )


def create(
    *, session: Session, actor: Actor, slug: str, title_zh: str, title_en: str = "", sql: str
) -> DerivedDataset:
    """Register a derived dataset and materialise its first version."""
    authorize(actor, "exchange.request", org_id=actor.org_id)
    if actor.role not in {Role.ADMIN, Role.STEWARD}:
        raise Forbidden(T("only stewards and administrators may register derived datasets"))
    result, versions = _materialise(session, actor, sql)
    normalised = sqlguard.validate(sql, versions.keys())  # the views it read were granted just now
    dataset = catalog.create_dataset(
        session=session,
        actor=actor,
        dataset_in=DatasetCreate(
            slug=slug,
            title_zh=title_zh,
            title_en=title_en,
            owner_org_id=actor.org_id,
            sharing_class="conditional",
            accrual_periodicity="irregular",
            description_zh="由已获授权数据派生：" + ", ".join(sorted(versions)),
            description_en="Derived from granted views: " + ", ".join(sorted(versions)),
            source="SQL: " + normalised,
            columns=_columns_of(result),
        ),
    )
    assert actor.org_id is not None
    derived = DerivedDataset(
        dataset_id=dataset.id,
        owner_org_id=actor.org_id,
        sql=normalised,
        sources={name: dataset_id for name, (dataset_id, _v) in versions.items()},
        created_at=clock.now(),
    )
    session.add(derived)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="exchange.derived.create",
        object_type="dataset",
        object_id=dataset.id,
        object_org_id=actor.org_id,
        detail={"sources": {k: list(v) for k, v in versions.items()}},
    )
    derived_id, dataset_id = derived.id, dataset.id
    version = _write(session, actor, dataset, result, "derived: first version")
    derived = session.get(DerivedDataset, derived_id)  # type: ignore[assignment]
    assert derived is not None
    _lineage(session, dataset_id, version, versions)
    derived.refreshed_at = clock.now()
    return derived


def _derived_or_raise(session: Session, dataset: int | str) -> tuple[Dataset, DerivedDataset]:
    found = catalog.get_or_raise(session=session, dataset=dataset)
    derived = session.scalar(select(DerivedDataset).where(DerivedDataset.dataset_id == found.id))
    if derived is None:
        raise NotFound(
            T("dataset {slug} is not a derived dataset", slug=found.slug), detail={"dataset": found.slug}
        )
    return found, derived


def refresh(*, session: Session, actor: Actor, dataset: int | str) -> int:
    """Run the query again over the sources' current versions; returns the new version."""
    found, derived = _derived_or_raise(session, dataset)
    authorize(actor, "dataset.write", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    result, versions = _materialise(session, actor, derived.sql)
    expected = {c.name: c.type for c in found.columns}
    got = {c.name: c.type.value for c in _columns_of(result)}
    if expected != got:
        raise Conflict(
            T(
                "the result columns of {slug}'s query changed; register a new derived dataset",
                slug=found.slug,
            ),
            detail={"expected": expected, "got": got},
        )
    derived_id, dataset_id = derived.id, found.id
    version = _write(session, actor, found, result, "derived: refreshed")
    derived = session.get(DerivedDataset, derived_id)  # type: ignore[assignment]
    assert derived is not None
    _lineage(session, dataset_id, version, versions)
    derived.refreshed_at = clock.now()
    derived.is_stale = False
    record(
        session=session,
        actor=actor,
        action="exchange.derived.refresh",
        object_type="dataset",
        object_id=dataset_id,
        object_org_id=derived.owner_org_id,
        detail={"version": version, "sources": {k: list(v) for k, v in versions.items()}},
    )
    return version


def list_derived(*, session: Session, actor: Actor) -> list[tuple[DerivedDataset, Dataset]]:
    """The derived datasets of the actor's organisation."""
    authorize(actor, "exchange.read", org_id=actor.org_id)
    return [
        (d, ds)
        for d, ds in session.execute(
            select(DerivedDataset, Dataset)
            .join(Dataset, Dataset.id == DerivedDataset.dataset_id)
            .where(DerivedDataset.owner_org_id == actor.org_id)
            .order_by(Dataset.slug)
        )
    ]


def mark_stale(session: Session, *, dataset_id: int, version: int) -> int:
    """A source got a new version: mark the datasets derived from it stale and tell their owners."""
    stale = 0
    for derived in session.scalars(select(DerivedDataset).where(DerivedDataset.is_stale.is_(False))):
        if dataset_id not in set(derived.sources.values()):
            continue
        derived.is_stale = True
        target = session.get(Dataset, derived.dataset_id)
        source = session.get(Dataset, dataset_id)
        if target is None or source is None:
            continue
        notifications.notify_org(
            session=session,
            org_id=derived.owner_org_id,
            kind="exchange.derived",
            message=T(
                "{source} has a new version {version}; refresh the derived dataset {slug}",
                source=source.slug,
                version=version,
                slug=target.slug,
            ),
            link=f"/exchange/lineage/{target.slug}",
            roles=[Role.ADMIN, Role.STEWARD],
        )
        stale += 1
    return stale


def lineage(*, session: Session, actor: Actor, dataset: int | str) -> dict[str, Any]:
    """Upstream and downstream datasets of a dataset, as a graph: nodes and edges (with versions)."""
    found = catalog.read_dataset(session=session, actor=actor, dataset=dataset)
    nodes: dict[int, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []

    def node(ds_id: int, role: str) -> None:
        ds = session.get(Dataset, ds_id)
        if ds is not None and ds_id not in nodes:
            nodes[ds_id] = {
                "id": ds.id,
                "slug": ds.slug,
                "title": ds.title_zh,
                "role": role,
                "version": ds.current_version,
            }

    node(found.id, "self")
    frontier, seen = [found.id], {found.id}
    while frontier:  # upstream, transitively
        current = frontier.pop()
        latest = session.scalars(
            select(LineageEdge)
            .where(LineageEdge.derived_dataset_id == current)
            .order_by(LineageEdge.derived_version.desc(), LineageEdge.id)
        ).all()
        newest = latest[0].derived_version if latest else None
        for edge in latest:
            if edge.derived_version != newest:
                continue
            node(edge.source_dataset_id, "upstream")
            edges.append(
                {
                    "from": edge.source_dataset_id,
                    "to": current,
                    "source_version": edge.source_version,
                    "derived_version": edge.derived_version,
                }
            )
            if edge.source_dataset_id not in seen:
                seen.add(edge.source_dataset_id)
                frontier.append(edge.source_dataset_id)
    frontier = [found.id]
    while frontier:  # downstream, transitively
        current = frontier.pop()
        for derived in session.scalars(select(DerivedDataset)):
            if current in set(derived.sources.values()):
                node(derived.dataset_id, "downstream")
                link = {"from": current, "to": derived.dataset_id, "stale": derived.is_stale}
                if link not in edges:
                    edges.append(link)
                if derived.dataset_id not in seen:
                    seen.add(derived.dataset_id)
                    frontier.append(derived.dataset_id)
    return {"nodes": list(nodes.values()), "edges": edges}
