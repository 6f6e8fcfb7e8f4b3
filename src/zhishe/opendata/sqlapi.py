"""The validator of the open-data portal's read-only SQL endpoint, over every published release.

A dataset is addressed by its slug, which reads its latest release, or by ``slug@N``, which reads
release N. Slugs contain hyphens, so write names in double quotes::

    SELECT district, count(*) FROM "air-quality@3" WHERE pm25 > 75 GROUP BY district

Unquoted names work when they are plain identifiers (``SELECT * FROM parks``). Names are matched
exactly (lower case, as slugs are). CTEs are fine.

The checks are those of ``core.sqlsafe``, shared with the exchange's derived datasets: exactly one
read-only query, only the given tables, only the allow-listed functions (``ALLOWED_FUNCTIONS``:
math, text, dates, casts to basic types, aggregates, windows), and limits on size and nesting.
The result is capped at ``DEFAULT_ROWS`` rows unless the caller asks for up to ``MAX_ROWS``; a query
without a LIMIT gets one (one more than the cap, to tell that rows were cut off). Every refusal is
``BadQuery`` naming the parameter ``sql`` (or ``rows``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from zhishe.core import sqlsafe
from zhishe.core.errors import Invalid
from zhishe.opendata.soql import BadQuery, check_text

__all__ = ["ALLOWED_FUNCTIONS", "DEFAULT_ROWS", "MAX_ROWS", "WORDING", "ValidatedSql", "validate_sql"]

#: Rows returned unless the caller asks for another cap.
DEFAULT_ROWS = 1_000
#: The largest row cap a caller may ask for.
MAX_ROWS = 50_000
#: Functions an endpoint query may call (the list shared with derived datasets).
ALLOWED_FUNCTIONS = sqlsafe.ALLOWED_FUNCTIONS
#: How refusals name this endpoint's tables.
WORDING = sqlsafe.Wording(
    query="an open-data SQL query",
    reads="the SQL endpoint reads only published datasets",
    table='a published dataset ("slug" or "slug@version")',
    tables="the published datasets",
)


@dataclass(frozen=True)
class ValidatedSql:
    """A query that passed: the SQL to run, the releases it reads and how many rows to return."""

    sql: str
    #: Table name as written → release key, for ``ReleaseStore.execute(keys, ...)``.
    keys: dict[str, str]
    #: Rows to return at most.
    row_cap: int

    @property
    def fetch_rows(self) -> int:
        """Rows to fetch: one more than the cap, so that a cut-off result can be told."""
        return self.row_cap + 1

    def cut(self, result: pa.Table) -> tuple[pa.Table, bool]:
        """`result` cut to the row cap, and whether rows were cut off."""
        return result.slice(0, self.row_cap), result.num_rows > self.row_cap


def validate_sql(
    text: str | bytes,
    tables: Mapping[str, Mapping[str, str]],
    *,
    keys: Mapping[str, str] | None = None,
    rows: int | str | None = None,
) -> ValidatedSql:
    """`text` checked as one read-only query over `tables`; BadQuery naming ``sql`` or ``rows`` if not.

    `tables` maps each name a query may use (``"air-quality"``, ``"air-quality@3"``) to its columns
    (name → type; informative). `keys` maps names to release keys (default: the name itself).
    `rows` is the row cap asked for (default ``DEFAULT_ROWS``, at most ``MAX_ROWS``).
    """
    cap = _row_cap(rows)
    sql = check_text("sql", text)
    try:
        checked = sqlsafe.check(sql, tables.keys(), wording=WORDING, functions=ALLOWED_FUNCTIONS)
    except Invalid as exc:
        raise BadQuery(f"sql: {exc.message}", detail={"parameter": "sql", **exc.detail}) from None
    root = checked.root
    final = checked.sql
    if isinstance(root, exp.Query) and root.args.get("limit") is None and root.args.get("fetch") is None:
        try:
            final = root.limit(cap + 1, copy=True).sql(dialect="duckdb", comments=False)
        except Exception:  # sqlglot cannot add the LIMIT; the store's row cap still applies
            final = checked.sql
    mapping = keys if keys is not None else {name: name for name in tables}
    return ValidatedSql(sql=final, keys={name: mapping[name] for name in checked.views}, row_cap=cap)


def _row_cap(rows: int | str | None) -> int:
    if rows is None:
        return DEFAULT_ROWS
    text = str(rows).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9 or not 1 <= int(text) <= MAX_ROWS:
        raise BadQuery(
            f"rows: {text[:40]!r} is not a whole number from 1 to {MAX_ROWS:,}",
            detail={"parameter": "rows", "max": MAX_ROWS},
        )
    return int(text)
