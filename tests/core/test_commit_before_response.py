"""A route's writes are committed before its response starts: a client that follows a redirect or
reads right after a 201 always sees them, and a failed commit can never follow a success answer."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from helpers import bearer
from zhishe.core.accounts.models import Organisation
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker


def test_the_write_is_visible_when_the_response_starts(app, db, world):
    bureau = world.org("bureau", kind="data_bureau")
    admin = world.user("bureau.admin", bureau, role="admin")
    headers = bearer(db, admin)
    seen: list[bool] = []

    async def watching(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def spy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "POST":
                with get_sessionmaker(get_settings().database_url)() as other:
                    seen.append(
                        other.scalar(select(Organisation).where(Organisation.code == "dept-new")) is not None
                    )
            await send(message)

        await app(scope, receive, spy)

    with TestClient(watching) as client:
        response = client.post(
            "/api/v1/orgs",
            json={"code": "dept-new", "name_zh": "新部门", "kind": "department"},
            headers=headers,
        )
    assert response.status_code == 201, response.text
    assert seen == [True]
