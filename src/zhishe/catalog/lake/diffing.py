"""Differences between two versions of a table: rows added, removed and changed, computed in DuckDB.

How rows are matched:

- With key columns, rows match on the key (a NULL-safe full outer join). A matched row is
  changed when any other column present in both versions differs (``IS DISTINCT FROM``).
- Without keys, rows first match on `ROW_ID`, which an upsert keeps for a row it updates in
  place; a matched row is changed when any column differs. The rows left unmatched on either
  side are then compared by content (a multiset difference, ``EXCEPT ALL``), so a ``replace``
  that re-writes identical rows under new ids reports nothing, and only content that really
  appeared or disappeared counts as added or removed.

Only columns present in both versions are compared; a column whose type changed is compared as
text. Columns added or removed are reported under `schema_changes`, not as row changes. With
duplicated keys a key matches several rows and the counts count pairs: `profile` reports
duplicated keys.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
from sqlglot import exp

from zhishe.catalog.lake._schema import key_names, schema_changes, stored_types
from zhishe.catalog.lake._sql import Params, col, duck, run
from zhishe.catalog.lake._table import Uri, dataset, open_table, table_schema
from zhishe.catalog.lake.errors import LakeQueryError, LakeSchemaError
from zhishe.catalog.lake.render import rows_to_dicts
from zhishe.catalog.types import ROW_ID, ColumnSpec

__all__ = ["VersionDiff", "diff"]

MAX_SAMPLE = 1000


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed between two versions (JSON-able apart from being a dataclass)."""

    from_version: int
    to_version: int
    matched_on: Literal["key", "row_id"]
    key: list[str]
    added: int
    removed: int
    changed: int
    per_column_changes: dict[str, int]
    schema_changes: dict[str, Any]
    #: "added" and "removed": row dicts; "changed": {"key", "before", "after"} with the changed columns
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    compare: list[str]  # non-key columns in both versions
    retyped: set[str]
    a_names: list[str]  # stored columns of each version, without the row id
    b_names: list[str]


def diff(
    uri: Uri,
    *,
    columns: list[ColumnSpec],
    from_version: int,
    to_version: int,
    sample: int = 20,
    hide: Collection[str] = (),
) -> VersionDiff:
    """Rows added, removed and changed going from `from_version` to `to_version` (either order).

    Rows match on the declared key columns, or on the row id then content when there are none
    (see the module docstring). At most `sample` example rows of each kind are returned.
    Columns named in `hide` are left out entirely (the reader may not see them).
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= MAX_SAMPLE:
        raise LakeQueryError(f"sample must be between 0 and {MAX_SAMPLE}", detail={"sample": sample})
    table_a = open_table(uri, from_version)
    table_b = open_table(uri, to_version)
    # columns the caller may not see are neither compared nor shown, nor named in schema changes
    types_a = {k: v for k, v in stored_types(table_schema(table_a)).items() if k not in hide}
    types_b = {k: v for k, v in stored_types(table_schema(table_b)).items() if k not in hide}
    changes = schema_changes(types_a, types_b)
    keys = key_names(columns)
    for key in keys:
        if key not in types_a or key not in types_b:
            version = from_version if key not in types_a else to_version
            raise LakeSchemaError(
                f"key column {key!r} is not in version {version}; cannot match rows on it",
                detail={"column": key, "version": version},
            )
    common = [name for name in types_b if name in types_a]
    plan = _Plan(
        compare=[name for name in common if name not in keys],
        retyped={name for name in common if types_a[name] != types_b[name]},
        a_names=list(types_a),
        b_names=list(types_b),
    )
    relations = {"a": dataset(table_a), "b": dataset(table_b)}
    with duck(relations) as con:
        if keys:
            counts, samples = _by_key(con, plan, keys, sample)
        else:
            counts, samples = _by_row_id(con, plan, common, sample)
    return VersionDiff(
        from_version=int(table_a.version()),
        to_version=int(table_b.version()),
        matched_on="key" if keys else "row_id",
        key=keys,
        added=counts["added"],
        removed=counts["removed"],
        changed=counts["changed"],
        per_column_changes={name: counts[f"col:{name}"] for name in plan.compare},
        schema_changes=changes,
        samples=samples,
    )


def _value(name: str, side: str, plan: _Plan) -> exp.Expr:
    """A compared value: the column itself, or its text when its type changed between versions."""
    if name in plan.retyped:
        return exp.Cast(this=col(name, side), to=exp.DataType.build("VARCHAR"))
    return col(name, side)


def _differs(name: str, plan: _Plan) -> exp.Expr:
    return exp.NullSafeNEQ(this=_value(name, "a", plan), expression=_value(name, "b", plan))


def _any_differs(names: Sequence[str], plan: _Plan) -> exp.Expr:
    if not names:
        return exp.false()
    return exp.or_(*(_differs(n, plan) for n in names))


def _present(side: str) -> exp.Expr:
    return exp.Not(this=exp.Is(this=col(ROW_ID, side), expression=exp.Null()))


def _absent(side: str) -> exp.Expr:
    return exp.Is(this=col(ROW_ID, side), expression=exp.Null())


def _counted(condition: exp.Expr, alias: str) -> exp.Expr:
    counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))
    return exp.alias_(counted, alias, quoted=True)


def _one_row(con: duckdb.DuckDBPyConnection, query: exp.Expr) -> dict[str, Any]:
    row: dict[str, Any] = run(con, query, Params()).to_pylist()[0]
    return row


def _side_rows(side: str, names: list[str]) -> list[exp.Expr]:
    return [exp.alias_(col(n, side), n, quoted=True) for n in names]


def _changed_samples(
    con: duckdb.DuckDBPyConnection,
    base: exp.Select,
    key_columns: list[tuple[str, str]],
    plan: _Plan,
    limit: int,
) -> list[dict[str, Any]]:
    """Changed rows as {"key", "before", "after"}, showing only the columns that changed."""
    if limit == 0:
        return []
    outputs: list[exp.Expr] = [
        exp.alias_(col(name, side), f"k{i}", quoted=True) for i, (name, side) in enumerate(key_columns)
    ]
    for i, name in enumerate(plan.compare):
        outputs += [
            exp.alias_(col(name, "a"), f"a{i}", quoted=True),
            exp.alias_(col(name, "b"), f"b{i}", quoted=True),
            exp.alias_(_differs(name, plan), f"d{i}", quoted=True),
        ]
    query = base.select(*outputs, append=False).order_by(col(ROW_ID, "b")).limit(limit)
    result: list[dict[str, Any]] = []
    for row in rows_to_dicts(run(con, query, Params())):
        changed = [i for i in range(len(plan.compare)) if row[f"d{i}"]]
        result.append(
            {
                "key": {name: row[f"k{i}"] for i, (name, _) in enumerate(key_columns)},
                "before": {plan.compare[i]: row[f"a{i}"] for i in changed},
                "after": {plan.compare[i]: row[f"b{i}"] for i in changed},
            }
        )
    return result


def _by_key(
    con: duckdb.DuckDBPyConnection, plan: _Plan, keys: list[str], sample: int
) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    on = exp.and_(*(exp.NullSafeEQ(this=_value(k, "a", plan), expression=_value(k, "b", plan)) for k in keys))
    joined = exp.select(exp.Star()).from_("a").join("b", on=on, join_type="full outer")
    both = exp.and_(_present("a"), _present("b"))
    outputs = [
        _counted(_absent("a"), "added"),
        _counted(_absent("b"), "removed"),
        _counted(exp.and_(both, _any_differs(plan.compare, plan)), "changed"),
        *(_counted(exp.and_(both, _differs(n, plan)), f"col:{n}") for n in plan.compare),
    ]
    counts = _one_row(con, joined.select(*outputs, append=False))
    samples: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    if sample:
        added = joined.select(*_side_rows("b", plan.b_names), append=False).where(_absent("a"))
        samples["added"] = rows_to_dicts(run(con, added.order_by(col(ROW_ID, "b")).limit(sample), Params()))
        removed = joined.select(*_side_rows("a", plan.a_names), append=False).where(_absent("b"))
        samples["removed"] = rows_to_dicts(
            run(con, removed.order_by(col(ROW_ID, "a")).limit(sample), Params())
        )
        changed = joined.where(exp.and_(both, _any_differs(plan.compare, plan)))
        samples["changed"] = _changed_samples(con, changed, [(k, "b") for k in keys], plan, sample)
    return {k: int(v or 0) for k, v in counts.items()}, samples


def _by_row_id(
    con: duckdb.DuckDBPyConnection, plan: _Plan, common: list[str], sample: int
) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    on = exp.EQ(this=col(ROW_ID, "a"), expression=col(ROW_ID, "b"))
    matched = exp.select(exp.Star()).from_("a").join("b", on=on, join_type="inner")
    outputs = [
        _counted(_any_differs(plan.compare, plan), "changed"),
        *(_counted(_differs(n, plan), f"col:{n}") for n in plan.compare),
    ]
    counts: dict[str, int] = {
        k: int(v or 0) for k, v in _one_row(con, matched.select(*outputs, append=False)).items()
    }
    added_rows = _content_difference("b", "a", common, plan)
    removed_rows = _content_difference("a", "b", common, plan)
    for name, rows in (("added", added_rows), ("removed", removed_rows)):
        total = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)).from_(
            exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("d")))
        )
        counts[name] = int(_one_row(con, total)["n"])
    samples: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    if sample:
        for name, rows in (("added", added_rows), ("removed", removed_rows)):
            ordered = exp.select(exp.Star()).from_(
                exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("d")))
            )
            ordered = ordered.order_by(
                *(exp.Literal.number(i + 1) for i in range(max(1, len(common))))
            ).limit(sample)
            samples[name] = rows_to_dicts(run(con, ordered, Params()))
        changed = matched.where(_any_differs(plan.compare, plan))
        samples["changed"] = _changed_samples(con, changed, [(ROW_ID, "b")], plan, sample)
    return counts, samples


def _content_difference(side: str, other: str, common: list[str], plan: _Plan) -> exp.Expr:
    """Rows of `side` whose id `other` lacks, minus (as a multiset) such rows of `other`."""

    def unmatched(this: str, that: str) -> exp.Select:
        missing = exp.Not(
            this=exp.Exists(
                this=exp.select(exp.Literal.number(1))
                .from_(that)
                .where(exp.EQ(this=col(ROW_ID, that), expression=col(ROW_ID, this)))
            )
        )
        values: list[exp.Expr] = (
            [exp.alias_(_value(n, this, plan), n, quoted=True) for n in common]
            if common
            else [exp.alias_(col(ROW_ID, this), ROW_ID, quoted=True)]
        )
        return exp.select(*values).from_(this).where(missing)

    if not common:  # nothing to compare by content: every unmatched row counts
        return unmatched(side, other)
    return exp.Except(this=unmatched(side, other), expression=unmatched(other, side), distinct=False)
