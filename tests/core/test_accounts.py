"""Web login, sessions, throttling, CSRF and API tokens."""

from __future__ import annotations

from datetime import timedelta

from helpers import PASSWORD, bearer, csrf_of, login
from zhishe.core import clock


def test_login_sets_a_httponly_samesite_session_cookie(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    response = login(client, "env.steward")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "zhishe_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in tests; Secure is set when served over https
    assert client.get("/api/v1/me").json()["username"] == "env.steward"


def test_session_cookie_is_secure_over_https(app, world):
    from fastapi.testclient import TestClient

    org = world.org("dept-env")
    world.user("env.steward", org)
    with TestClient(app, base_url="https://testserver") as secure:
        response = login(secure, "env.steward")
        assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_refused_and_audited(client, world, db):
    org = world.org("dept-env")
    world.user("env.steward", org)
    response = login(client, "env.steward", "wrong-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text or "用户名或密码错误" in response.text
    from sqlalchemy import select

    from zhishe.core.audit.models import AuditEvent

    actions = db.scalars(select(AuditEvent.action)).all()
    assert "auth.login_failed" in actions


def test_sixth_attempt_within_fifteen_minutes_is_throttled_even_with_the_right_password(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    for _ in range(5):
        assert login(client, "env.steward", "wrong-password").status_code == 401
    response = login(client, "env.steward", PASSWORD)
    assert response.status_code == 429
    assert "later" in response.text or "稍后" in response.text


def test_throttle_ends_after_the_window(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    for _ in range(5):
        login(client, "env.steward", "wrong-password")
    later = clock.now() + timedelta(minutes=16)
    clock.set_clock(lambda: later)
    assert login(client, "env.steward", PASSWORD).status_code == 303


def test_form_post_without_csrf_token_is_refused(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    response = client.post("/login", data={"username": "env.steward", "password": PASSWORD})
    assert response.status_code == 403
    login(client, "env.steward")
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 403


def test_cookie_api_write_needs_the_csrf_header(client, world):
    org = world.org("bureau", kind="data_bureau")
    world.user("bureau.admin", org, role="admin")
    login(client, "bureau.admin")
    body = {"code": "dept-x", "name_zh": "部门", "kind": "department"}
    assert client.post("/api/v1/orgs", json=body).status_code == 403
    token = csrf_of(client)
    assert client.post("/api/v1/orgs", json=body, headers={"X-CSRF-Token": token}).status_code == 201


def test_logout_ends_the_session(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    login(client, "env.steward")
    token = csrf_of(client)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_token_is_shown_once_stored_hashed_and_revocable(client, world, db):
    from sqlalchemy import select

    from zhishe.core.accounts.models import ApiToken

    org = world.org("dept-env")
    user = world.user("env.steward", org)
    headers = bearer(db, user, ["catalog:read", "accounts:read"])
    secret = headers["Authorization"].split()[1]
    stored = db.scalars(select(ApiToken)).one()
    assert secret not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["via"] == "token" and me["scopes"] == ["accounts:read", "catalog:read"]
    listed = client.get("/api/v1/tokens", headers=headers).json()["items"]
    assert listed and "token" not in listed[0] and secret not in str(listed)
    db.expire_all()
    from zhishe.core.accounts.service import actor_for_user, revoke_token

    revoke_token(session=db, actor=actor_for_user(user), token_id=stored.id)
    db.commit()
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "this API token was revoked"


def test_expired_token_is_refused(client, world, db):
    org = world.org("dept-env")
    user = world.user("env.steward", org)
    headers = bearer(db, user)
    later = clock.now() + timedelta(days=91)
    clock.set_clock(lambda: later)
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_token_scope_limits_what_it_can_do(client, world, db):
    org = world.org("dept-env")
    user = world.user("env.admin", org, role="admin")
    headers = bearer(db, user, ["catalog:read"])
    response = client.get("/api/v1/users", headers=headers)
    assert response.status_code == 403
    assert "accounts:read" in response.json()["error"]["message"]


def test_token_created_through_the_api_is_returned_once(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    login(client, "env.steward")
    token = csrf_of(client)
    created = client.post(
        "/api/v1/tokens",
        json={"name": "etl", "scopes": ["catalog:read"], "expires_in_days": 30},
        headers={"X-CSRF-Token": token},
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("zs_")
    again = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).json()
    assert all("token" not in item for item in again["items"])


def test_unknown_scope_is_named(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    login(client, "env.steward")
    response = client.post(
        "/api/v1/tokens",
        json={"name": "x", "scopes": ["everything"]},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 422
    assert "everything" in response.json()["error"]["message"]


def test_malformed_authorization_header_is_a_clear_401(client, world):
    response = client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]["message"]
    assert response.headers["x-request-id"]
