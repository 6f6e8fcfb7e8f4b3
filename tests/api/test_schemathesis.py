"""Property-based API testing from /openapi.json: no generated request may cause a 500, and every
JSON error uses the platform's envelope (Open311's, under /open311, its spec's list of errors)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from helpers import bearer

AIR_CSV = b"station,day,pm25\nA,2026-01-01,1.5\nB,2026-01-02,2.5\n"


def _check_operation(operation: Any, headers: dict[str, str], failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        label = f"{case.method} {case.formatted_path}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400 and "application/json" in str(response.headers.get("content-type")):
            body = response.json()
            if case.formatted_path.startswith("/open311/"):  # Open311's own error shape, by its spec
                if not (
                    isinstance(body, list) and body and all(set(e) == {"code", "description"} for e in body)
                ):
                    failures.append(f"{label}: not Open311's error list: {str(body)[:300]}")
            elif set(body) != {"error", "request_id"} or not body["error"].get("message"):
                failures.append(f"{label}: not the error envelope: {str(body)[:300]}")

    run()


def test_no_generated_request_causes_a_server_error(app: Any, world: Any, db: Any, client: Any) -> None:
    bureau = world.org("bureau", kind="data_bureau")
    admin = world.user("bureau.admin", bureau, role="admin")
    headers = bearer(db, admin)
    created = client.post(
        "/api/v1/datasets",
        headers=headers,
        json={
            "slug": "air",
            "title_zh": "空气",
            "sharing_class": "unconditional",
            "owner_org_id": bureau.id,
            "columns": [
                {"name": "station", "type": "string", "is_key": True},
                {"name": "day", "type": "date"},
                {"name": "pm25", "type": "decimal"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    assert (
        client.post(
            "/api/v1/datasets/air/imports", headers=headers, files={"file": ("a.csv", AIR_CSV, "text/csv")}
        ).status_code
        == 201
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        _check_operation(operation, headers, failures)
        checked += 1
    assert checked >= 20
    assert failures == []
