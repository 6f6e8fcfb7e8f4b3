"""Who may do what: a matrix of roles and organisations against the catalog and admin endpoints."""

from __future__ import annotations

import pytest
from catalog_world import AIR_COLUMNS, AIR_CSV

ACTORS = [
    "bureau.admin",
    "env.admin",
    "env.steward",
    "env.analyst",
    "water.steward",
    "water.analyst",
    "resident.li",
    None,
]


@pytest.fixture()
def matrix_world(cw):
    cw.create("air", columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    cw.create("private", columns=AIR_COLUMNS, sharing_class="conditional")
    cw.upload("private", AIR_CSV)
    return cw


def _call(cw, who, method, url, **kwargs):
    headers = cw.h(who) if who else {}
    return cw.client.request(method, url, headers=headers, **kwargs)


# (method, url, body-or-None, {actor: expected status}); unspecified actors expect the default
CASES = [
    ("GET", "/api/v1/datasets", None, {"resident.li": 403, None: 401}, 200),
    ("GET", "/api/v1/datasets/air/rows", None, {"resident.li": 403, None: 401}, 200),
    (
        "GET",
        "/api/v1/datasets/air/rows?select=reporter_phone",
        None,
        {"bureau.admin": 200, "env.admin": 200, "env.steward": 200, "env.analyst": 200, None: 401},
        403,
    ),
    (
        "GET",
        "/api/v1/datasets/private/rows",
        None,
        {"bureau.admin": 200, "env.admin": 200, "env.steward": 200, "env.analyst": 200, None: 401},
        403,
    ),
    (
        "GET",
        "/api/v1/datasets/private/export",
        None,
        {"bureau.admin": 200, "env.admin": 200, "env.steward": 200, "env.analyst": 200, None: 401},
        403,
    ),
    (
        "PATCH",
        "/api/v1/datasets/air",
        {"description_en": "changed"},
        {"bureau.admin": 200, "env.admin": 200, "env.steward": 200, None: 401},
        403,
    ),
    ("GET", "/api/v1/users", None, {"bureau.admin": 200, "env.admin": 200, None: 401}, 403),
    (
        "POST",
        "/api/v1/orgs",
        {"code": "dept-new", "name_zh": "新部门", "kind": "department"},
        {"bureau.admin": 201, None: 401},
        403,
    ),
    (
        "GET",
        "/api/v1/audit/events",
        None,
        {"bureau.admin": 200, "env.admin": 200, "env.steward": 200, "water.steward": 200, None: 401},
        403,
    ),
    ("GET", "/api/v1/audit/verify", None, {"bureau.admin": 200, None: 401}, 403),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_role_matrix(matrix_world, case):
    method, url, body, expected, default = case
    for who in ACTORS:
        response = _call(matrix_world, who, method, url, json=body)
        want = expected.get(who, default)
        assert response.status_code == want, (
            f"{who} {method} {url}: {response.status_code} {response.text[:200]}"
        )


def test_other_departments_never_see_personal_columns_of_shared_data(matrix_world):
    rows = _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/air/rows").json()
    assert "reporter_phone" not in rows["columns"]
    assert all("reporter_phone" not in r for r in rows["rows"])
    export = _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/air/export?format=csv")
    assert "13800000001" not in export.text and "reporter_phone" not in export.text
    own = _call(matrix_world, "env.analyst", "GET", "/api/v1/datasets/air/rows").json()
    assert "reporter_phone" in own["columns"]


@pytest.mark.parametrize(
    "who,expected",
    [
        ("env.steward", 201),
        ("env.admin", 201),
        ("bureau.admin", 201),
        ("env.analyst", 403),
        ("water.steward", 403),
        ("resident.li", 403),
    ],
)
def test_who_may_import(matrix_world, who, expected):
    response = matrix_world.upload("air", AIR_CSV, who=who)
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    "who,org,expected",
    [
        ("env.steward", "env", 201),
        ("water.steward", "env", 403),
        ("env.analyst", "env", 403),
        ("bureau.admin", "water", 201),
        ("resident.li", "committee", 403),
    ],
)
def test_who_may_create_datasets_for_which_owner(cw, who, org, expected):
    owner = {"env": cw.env, "water": cw.water, "committee": cw.committee}[org]
    response = cw.client.post(
        "/api/v1/datasets",
        json={
            "slug": f"ds-{who.replace('.', '-')}",
            "title_zh": "x",
            "sharing_class": "unconditional",
            "owner_org_id": owner.id,
        },
        headers=cw.h(who),
    )
    assert response.status_code == expected, response.text


def test_org_admin_manages_only_their_own_users(cw):
    body = {"username": "env.new", "org_id": cw.env.id, "role": "analyst", "password": "long-enough-1"}
    assert cw.client.post("/api/v1/users", json=body, headers=cw.h("env.admin")).status_code == 201
    body = {"username": "water.new", "org_id": cw.water.id, "role": "analyst", "password": "long-enough-1"}
    assert cw.client.post("/api/v1/users", json=body, headers=cw.h("env.admin")).status_code == 403
    listed = cw.client.get("/api/v1/users", headers=cw.h("env.admin")).json()["items"]
    assert {u["org_id"] for u in listed} == {cw.env.id}
    body = {"username": "env.boss", "org_id": cw.env.id, "role": "admin", "password": "long-enough-1"}
    assert cw.client.post("/api/v1/users", json=body, headers=cw.h("env.steward")).status_code == 403


def test_every_read_of_rows_is_audited(matrix_world):
    from sqlalchemy import select

    from zhishe.core.audit.models import AuditEvent

    _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/air/rows")
    matrix_world.db.expire_all()
    reads = matrix_world.db.scalars(
        select(AuditEvent).where(AuditEvent.action == "dataset.read", AuditEvent.actor == "water.analyst")
    ).all()
    assert len(reads) == 1 and reads[0].object_org_id == matrix_world.env.id


def test_diff_seen_from_another_department_hides_personal_columns(matrix_world):
    change = "station,day,pm25,aqi,reporter_phone\n南城,2026-01-05,9,9,13899999999\n".encode()
    assert matrix_world.upload("air", change).status_code == 201
    diff = _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/air/diff?from=0&to=1").json()
    assert diff["added"] == 1
    assert "13899999999" not in str(diff) and "reporter_phone" not in str(diff)
    own = _call(matrix_world, "env.analyst", "GET", "/api/v1/datasets/air/diff?from=0&to=1").json()
    assert "13899999999" in str(own)


def test_quality_profile_hides_columns_the_reader_may_not_see(matrix_world):
    own = _call(matrix_world, "env.analyst", "GET", "/api/v1/datasets/air/versions/0/profile").json()
    assert "reporter_phone" in own["profile"]["columns"]
    other = _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/air/versions/0/profile").json()
    assert "reporter_phone" not in other["profile"]["columns"] and "1380000" not in str(other)
    refused = _call(matrix_world, "water.analyst", "GET", "/api/v1/datasets/private/versions/0/profile")
    assert refused.status_code == 403
    from helpers import login

    login(matrix_world.client, "water.analyst")
    page = matrix_world.client.get("/datasets/air?tab=quality")
    assert page.status_code == 200 and "13800000001" not in page.text and "reporter_phone" not in page.text
    page = matrix_world.client.get("/datasets/private?tab=quality")
    assert page.status_code == 200 and "13800000001" not in page.text
