"""Which part of a dataset one read may see: the read scope.

The owner's staff (and platform admins) see everything. Other member organisations see the
public and internal columns of a 无条件共享 dataset with no request; anything more, and any row of
a 有条件共享 dataset, needs an active grant. Grants are kept by the exchange, which registers a
*grant finder* and a *use recorder* here at start-up (``zhishe.hooks.install``); the catalog only
knows their shape. With no finder registered, nothing beyond the open view is readable.

A grant is used only when the open view is not enough, or when the caller names it. The scope it
gives is its columns (plus the open ones), its row filter (ANDed to the caller's), the versions it
covers and its access mode; its expiry is checked against the clock on every read. A read outside
every grant is refused with a message naming what is outside, and the refusal is audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from zhishe.catalog.lake import filters as lake_filters
from zhishe.catalog.models import Dataset
from zhishe.catalog.types import Classification, ColumnSpec
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.errors import Forbidden, Invalid
from zhishe.core.i18n import T

__all__ = [
    "OPEN_CLASSES",
    "Channel",
    "GrantView",
    "ReadScope",
    "Use",
    "filter_columns",
    "note_use",
    "read_scope",
    "register_grant_finder",
    "register_use_recorder",
    "where_from_text",
]

OPEN_CLASSES = frozenset({Classification.PUBLIC, Classification.INTERNAL})

Channel = Literal["query", "export", "aggregate", "derived"]


@dataclass(frozen=True, slots=True)
class GrantView:
    """What one active grant lets its holder read."""

    id: int
    columns: tuple[str, ...]
    row_filter: dict[str, Any] | None
    min_version: int | None
    mode: str  #: query | export | subscription
    purpose: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReadScope:
    """The part of a dataset one read may see."""

    columns: list[ColumnSpec]  #: readable columns, in the dataset's order
    row_filter: dict[str, Any] | None  #: rows are limited to this (a grant's), or None
    grant: GrantView | None  #: the grant read through, if any
    known: list[ColumnSpec]  #: the columns a filter is compiled against (the grant's filter may use more)

    @property
    def names(self) -> list[str]:
        """The readable column names, in order."""
        return [c.name for c in self.columns]

    def where(self, user_filter: dict[str, Any] | None) -> dict[str, Any] | None:
        """The caller's filter ANDed with the scope's row filter."""
        if self.row_filter is None:
            return user_filter
        if user_filter is None:
            return self.row_filter
        return {"and": [self.row_filter, user_filter]}


@dataclass(frozen=True, slots=True)
class Use:
    """One read through a grant, for the owner's usage page."""

    grant_id: int
    dataset_id: int
    actor: Actor
    action: str
    version: int
    columns: list[str]
    rows: int


GrantFinder = Callable[[Session, Actor, Dataset], list[GrantView]]
UseRecorder = Callable[[Session, Use], None]
_finders: list[GrantFinder] = []
_recorders: list[UseRecorder] = []


def register_grant_finder(finder: GrantFinder) -> None:
    """Let ``finder(session, actor, dataset)`` supply the actor's active grants on a dataset."""
    if finder not in _finders:
        _finders.append(finder)


def register_use_recorder(recorder: UseRecorder) -> None:
    """Let ``recorder(session, use)`` keep a record of each read through a grant."""
    if recorder not in _recorders:
        _recorders.append(recorder)


def note_use(session: Session, use: Use) -> None:
    """Tell the recorders about a read through a grant."""
    for recorder in _recorders:
        recorder(session, use)


def where_from_text(text: str | None, *, name: str = "where") -> dict[str, Any] | None:
    """A JSON filter given as text (a query parameter or a command option), or None when empty;
    Invalid naming ``name`` when it is not a JSON object."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"{name}: not valid JSON ({exc.msg} at position {exc.pos})", detail={"parameter": name}
        ) from exc
    if not isinstance(value, dict):
        raise Invalid(f"{name}: must be a JSON object", detail={"parameter": name})
    return value


def filter_columns(where: dict[str, Any] | None) -> set[str]:
    """Every column a (JSON) filter refers to; the filter's structure is validated on the way."""
    if not where:
        return set()
    names: set[str] = set()

    def walk(node: lake_filters.Filter) -> None:
        if isinstance(node, lake_filters.Condition):
            names.add(node.column)
        elif isinstance(node, lake_filters.Not):
            walk(node.filter)
        else:
            for part in node.filters:
                walk(part)

    walk(lake_filters.parse_filter(where))
    return names


def _refuse(
    session: Session,
    actor: Actor,
    dataset: Dataset,
    message: str,
    detail: dict[str, Any],
    *,
    audit: bool = True,
) -> Forbidden:
    """Audit a refused read and return the error to raise (the audit event is kept)."""
    if not audit:
        return Forbidden(message, detail={"dataset": dataset.slug, **detail})
    record(
        session=session,
        actor=actor,
        action="dataset.read_refused",
        object_type="dataset",
        object_id=dataset.id,
        object_org_id=dataset.owner_org_id,
        detail={"reason": str(message), **detail},
    )
    return Forbidden(message, detail={"dataset": dataset.slug, **detail}, keep_writes=True)


def _specs(dataset: Dataset) -> list[ColumnSpec]:
    from zhishe.catalog.service import column_specs

    return column_specs(dataset)


def read_scope(
    *,
    session: Session,
    actor: Actor,
    dataset: Dataset,
    wanted: Sequence[str] | None = None,
    filtered_on: Sequence[str] = (),
    version: int | None = None,
    channel: Channel = "query",
    grant_id: int | None = None,
    audit_refusal: bool = True,
) -> ReadScope:
    """The scope of a read of ``wanted`` columns (all readable ones if None), filtered or ordered
    on ``filtered_on`` columns, at ``version``, by ``channel``; or Forbidden (audited unless
    ``audit_refusal`` is false, for pages that only ask what to show) naming what lies outside
    what the actor may read."""
    authorize(actor, "dataset.read", org_id=dataset.owner_org_id, what=f"dataset {dataset.slug}")

    def refuse(
        session: Session, actor: Actor, dataset: Dataset, message: str, detail: dict[str, Any]
    ) -> Forbidden:
        return _refuse(session, actor, dataset, message, detail, audit=audit_refusal)

    from zhishe.catalog.schemas import SharingClass
    from zhishe.catalog.service import is_owner

    specs = _specs(dataset)
    known = {c.name for c in specs}
    asked = [*(wanted or ()), *filtered_on]
    unknown = sorted({n for n in asked if n not in known})
    if unknown:
        raise Invalid(f"unknown column(s): {', '.join(unknown)}", detail={"columns": unknown})
    if is_owner(actor, dataset) and grant_id is None:
        return ReadScope(columns=specs, row_filter=None, grant=None, known=specs)
    if dataset.sharing_class == SharingClass.NOT_SHARED:
        raise refuse(
            session, actor, dataset, T("dataset {slug} is not shared (不予共享)", slug=dataset.slug), {}
        )
    open_specs = [c for c in specs if c.classification in OPEN_CLASSES]
    if dataset.sharing_class != SharingClass.UNCONDITIONAL:
        open_specs = []
    open_names = {c.name for c in open_specs}
    need = {n for n in asked if n not in open_names}
    if grant_id is None and open_specs and not need:
        return ReadScope(columns=open_specs, row_filter=None, grant=None, known=open_specs)
    grants = [g for f in _finders for g in f(session, actor, dataset)]
    if grant_id is not None:
        grants = [g for g in grants if g.id == grant_id]
        if not grants:
            raise refuse(
                session,
                actor,
                dataset,
                T(
                    "grant #{grant} is not an active grant of yours on dataset {slug}",
                    grant=grant_id,
                    slug=dataset.slug,
                ),
                {"grant": grant_id},
            )
    if not grants:
        if open_specs:
            hidden = sorted(need)
            raise refuse(
                session,
                actor,
                dataset,
                T(
                    "you may not read the column(s): {columns}; they need an approved request",
                    columns=", ".join(hidden),
                ),
                {"columns": hidden},
            )
        raise refuse(
            session,
            actor,
            dataset,
            T(
                "the rows of dataset {slug} are shared on approved request (有条件共享); you hold no active grant",
                slug=dataset.slug,
            ),
            {},
        )
    covering = [g for g in grants if need <= set(g.columns)]
    if not covering:
        allowed = set().union(*(set(g.columns) for g in grants))
        outside = sorted(need - allowed) or sorted(need)
        raise refuse(
            session,
            actor,
            dataset,
            T("the column(s) {columns} are outside your grant", columns=", ".join(outside)),
            {"columns": outside, "grants": [g.id for g in grants]},
        )
    if channel == "export":
        exportable = [g for g in covering if g.mode in {"export", "subscription"}]
        if not exportable:
            raise refuse(
                session,
                actor,
                dataset,
                T("your grant #{grant} allows queries, not bulk export", grant=covering[0].id),
                {"grant": covering[0].id, "mode": covering[0].mode},
            )
        covering = exportable
    if version is not None:
        in_range = [g for g in covering if g.min_version is None or version >= g.min_version]
        if not in_range:
            first = min(g.min_version or 0 for g in covering)
            raise refuse(
                session,
                actor,
                dataset,
                T(
                    "version {version} is outside your grant, which covers versions from {first} on",
                    version=version,
                    first=first,
                ),
                {"version": version, "first_version": first},
            )
        covering = in_range
    chosen = max(covering, key=lambda g: (len(g.columns), g.expires_at))
    names = open_names | set(chosen.columns)
    return ReadScope(
        columns=[c for c in specs if c.name in names],
        row_filter=chosen.row_filter,
        grant=chosen,
        known=specs,
    )
