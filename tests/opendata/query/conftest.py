"""A small release, built once per session, for the query-engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from odq_data import make_table

from zhishe.opendata.store import ReleaseStore


@pytest.fixture(scope="session")
def release_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseStore]:
    root: Path = tmp_path_factory.mktemp("releases")
    store = ReleaseStore(root)
    store.build("rel1", make_table(), order_by=["ts"])
    yield store
    store.close()
