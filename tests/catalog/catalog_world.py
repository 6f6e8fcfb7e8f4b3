"""A small world for catalog tests: a bureau, two departments, a committee with a resident."""

from __future__ import annotations

from typing import Any

from helpers import bearer


class CatalogWorld:
    def __init__(self, world: Any, db: Any, client: Any) -> None:
        self.db, self.client = db, client
        self.bureau = world.org("bureau", kind="data_bureau")
        self.env = world.org("dept-env", name="生态环境局")
        self.water = world.org("dept-water", name="水务局")
        self.committee = world.org("committee", kind="community_committee")
        self.users = {
            "bureau.admin": world.user("bureau.admin", self.bureau, role="admin"),
            "env.admin": world.user("env.admin", self.env, role="admin"),
            "env.steward": world.user("env.steward", self.env, role="steward"),
            "env.analyst": world.user("env.analyst", self.env, role="analyst"),
            "water.steward": world.user("water.steward", self.water, role="steward"),
            "water.analyst": world.user("water.analyst", self.water, role="analyst"),
            "resident.li": world.user("resident.li", self.committee, role="resident"),
        }
        self._headers: dict[str, dict[str, str]] = {}

    def h(self, username: str) -> dict[str, str]:
        if username not in self._headers:
            self._headers[username] = bearer(self.db, self.users[username])
        return self._headers[username]

    def create(
        self,
        slug: str = "air",
        *,
        who: str = "env.steward",
        columns: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "slug": slug,
            "title_zh": "空气质量",
            "title_en": "Air quality",
            "sharing_class": "unconditional",
            "theme": "environment",
            "accrual_periodicity": "daily",
            **extra,
        }
        if columns is not None:
            body["columns"] = columns
        response = self.client.post("/api/v1/datasets", json=body, headers=self.h(who))
        assert response.status_code == 201, response.text
        return response.json()

    def upload(
        self, slug: str, content: bytes, filename: str = "data.csv", who: str = "env.steward", **params: Any
    ) -> Any:
        return self.client.post(
            f"/api/v1/datasets/{slug}/imports",
            params=params,
            headers=self.h(who),
            files={"file": (filename, content, "application/octet-stream")},
        )


AIR_COLUMNS = [
    {"name": "station", "type": "string", "is_key": True, "classification": "public"},
    {"name": "day", "type": "date", "is_key": True, "classification": "public"},
    {"name": "pm25", "type": "decimal", "unit": "µg/m³", "classification": "public"},
    {"name": "aqi", "type": "integer", "classification": "public"},
    {"name": "reporter_phone", "type": "string", "classification": "personal"},
]

AIR_CSV = (
    "station,day,pm25,aqi,reporter_phone\n"
    "东四,2026-01-01,35.5,50,13800000001\n"
    "东四,2026-01-02,80.1,110,13800000002\n"
    "天坛,2026-01-01,20.0,30,13800000003\n"
    "天坛,2026-01-02,,45,13800000004\n"
).encode()
