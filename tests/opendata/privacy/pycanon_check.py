"""An independent check of k-anonymity and l-diversity with pycanon, for any test to import."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pyarrow as pa
import pycanon.anonymity


def _frame(table: pa.Table, columns: Sequence[str]) -> object:
    """The columns as a pandas frame of strings, null written as a value of its own (pandas drops NaN keys)."""
    as_text = {c: table.column(c).cast(pa.string()).fill_null("<null>") for c in columns}
    return pa.table(as_text).to_pandas()


def assert_k_anonymous(
    table: pa.Table,
    qis: Sequence[str],
    k: int,
    sensitive: Sequence[str] = (),
    l: int | None = None,  # noqa: E741
) -> None:
    """Fail unless pycanon finds the table k-anonymous over `qis` (and l-diverse over `sensitive`)."""
    if table.num_rows == 0:
        return
    df = _frame(table, [*qis, *sensitive])
    with warnings.catch_warnings():  # pycanon's groupby warns under pandas 3
        warnings.simplefilter("ignore")
        found = pycanon.anonymity.k_anonymity(df, list(qis))
        found_l = pycanon.anonymity.l_diversity(df, list(qis), list(sensitive)) if l and sensitive else None
    assert found >= k, f"pycanon finds k={found}, wanted at least {k}"
    if l is not None and found_l is not None:
        assert found_l >= l, f"pycanon finds l={found_l}, wanted at least {l}"
