"""Concurrent writers: each ends as its own version or as a conflict, and the table stays readable."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import COLUMNS, make_row, table_of

from zhishe.catalog.lake import LakeConflictError, WriteResult, count, read, versions, write_version
from zhishe.catalog.types import ROW_ID


def run_together(jobs: list[tuple[str, int, int]], uri: str) -> list[WriteResult | LakeConflictError]:
    """Run (mode, first row id, rows) writes in threads released at the same moment."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Any] = [None] * len(jobs)

    def work(index: int, mode: str, start: int, rows: int) -> None:
        data = table_of([make_row(start + i) for i in range(rows)])
        barrier.wait()
        try:
            outcomes[index] = write_version(
                uri,
                data,
                columns=COLUMNS,
                mode=mode,  # type: ignore[arg-type]
                row_id_start=start,
                metadata={"job": str(index)},
            )
        except LakeConflictError as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=work, args=(i, *job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(o is not None for o in outcomes), "a writer neither committed nor raised"
    return outcomes


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_concurrent_writers_end_as_distinct_versions_or_a_conflict(tmp_path: Path, mode: str) -> None:
    uri = str(tmp_path / "t")
    write_version(uri, table_of([make_row(0)]), columns=COLUMNS, mode="append", row_id_start=0, metadata={})
    jobs = [(mode, 1000 * (i + 1), 50) for i in range(6)]
    outcomes = run_together(jobs, uri)
    committed = [o for o in outcomes if isinstance(o, WriteResult)]
    conflicts = [o for o in outcomes if isinstance(o, LakeConflictError)]
    assert committed, "at least one writer must win"
    assert len(committed) + len(conflicts) == len(jobs)
    assert len({r.version for r in committed}) == len(committed)
    history = versions(uri)
    assert [v.version for v in history] == list(range(len(committed), -1, -1))
    winners = {str(i) for i, o in enumerate(outcomes) if isinstance(o, WriteResult)}
    assert {v.metadata["job"] for v in history if v.version > 0} == winners
    # Every committed version reads back whole: its rows are exactly the batches written so far.
    for result in committed:
        rows = read(uri, columns=COLUMNS, version=result.version, select=[ROW_ID], limit=10_000).rows
        ids = rows.column(ROW_ID).to_pylist()
        assert len(ids) == len(set(ids)) == result.row_count
        assert count(uri, columns=COLUMNS, version=result.version) == result.row_count
    if mode == "append":
        assert not conflicts, "appends do not conflict with each other"
        assert count(uri, columns=COLUMNS) == 1 + 6 * 50


def test_concurrent_first_writes_create_the_table_once(tmp_path: Path) -> None:
    uri = str(tmp_path / "new")
    outcomes = run_together([("append", 1000 * (i + 1), 10) for i in range(4)], uri)
    committed = [o for o in outcomes if isinstance(o, WriteResult)]
    assert committed
    assert len({r.version for r in committed}) == len(committed)
    assert count(uri, columns=COLUMNS) == 10 * len(committed)
    assert sorted(v.version for v in versions(uri)) == list(range(len(committed)))
