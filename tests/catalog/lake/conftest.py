"""Fixtures for the dataset store: a fresh table location and a writer that allocates row ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import COLUMNS, table_of

from zhishe.catalog.lake import WriteResult, write_version
from zhishe.catalog.types import ColumnSpec


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """A fresh table location."""
    return str(tmp_path / "dataset")


@pytest.fixture
def writer(uri: str) -> Callable[..., WriteResult]:
    """Write rows to `uri`, allocating row ids the way the catalog will (increasing, never reused)."""
    state = {"next": 1}

    def write(
        rows: list[dict[str, Any]],
        mode: str = "append",
        columns: list[ColumnSpec] = COLUMNS,
        metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        result = write_version(
            uri,
            table_of(rows, columns),
            columns=columns,
            mode=mode,  # type: ignore[arg-type]
            row_id_start=state["next"],
            metadata=metadata or {},
        )
        state["next"] = result.next_row_id
        return result

    return write
