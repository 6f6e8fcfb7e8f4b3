"""The exchange tests' world: the environment bureau owns datasets, the water bureau asks for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from catalog.catalog_world import AIR_COLUMNS, AIR_CSV, CatalogWorld
from zhishe.core import clock

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A Friday; the following Sunday (2026-09-20) is a make-up working day before National Day.
START = datetime(2026, 9, 18, 10, 0, tzinfo=SHANGHAI)


class ExchangeWorld(CatalogWorld):
    """Datasets of every sharing class, owned by the environment bureau and already imported."""

    def __init__(self, world: Any, db: Any, client: Any) -> None:
        super().__init__(world, db, client)
        self.now = START
        clock.set_clock(lambda: self.now)
        for slug, sharing in (
            ("air", "conditional"),
            ("open-air", "unconditional"),
            ("secret-air", "not_shared"),
        ):
            self.create(slug, columns=AIR_COLUMNS, sharing_class=sharing, legal_basis="《环境保护法》")
            assert self.upload(slug, AIR_CSV).status_code == 201

    def at(self, when: datetime) -> None:
        """Move the platform clock."""
        self.now = when

    def ask(self, who: str = "water.steward", **changes: Any) -> Any:
        body: dict[str, Any] = {
            "dataset": "air",
            "purpose": "防汛调度需要空气质量监测数据",
            "legal_basis": "《政务数据共享管理办法》第十条",
            "columns": ["station", "day", "pm25"],
            "row_filter": {"column": "station", "op": "=", "value": "东四"},
            "starts_on": "2026-09-18",
            "expires_on": "2026-10-31",
            "mode": "export",
            "submit": True,
        }
        body.update(changes)
        return self.client.post("/api/v1/exchange/requests", json=body, headers=self.h(who))

    def act(self, request_id: int, action: str, who: str = "env.steward", **body: Any) -> Any:
        return self.client.post(
            f"/api/v1/exchange/requests/{request_id}/{action}", json=body or None, headers=self.h(who)
        )

    def granted(self, who: str = "env.steward", **changes: Any) -> dict[str, Any]:
        """A submitted and approved request (active at once)."""
        response = self.ask(**changes)
        assert response.status_code == 201, response.text
        approved = self.act(response.json()["id"], "approve", who=who)
        assert approved.status_code == 200, approved.text
        return dict(approved.json())

    def rows(self, who: str = "water.analyst", dataset: str = "air", **params: Any) -> Any:
        return self.client.get(
            f"/api/v1/exchange/datasets/{dataset}/rows", params=params, headers=self.h(who)
        )
