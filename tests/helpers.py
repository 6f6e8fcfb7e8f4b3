"""Helpers shared by the tests: logging in through the real form, CSRF tokens, bearer tokens."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy.orm import Session

PASSWORD = "correct-horse-1"
IN_CI = os.environ.get("CI") == "true"


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Log in through the real form (CSRF included), as a fresh visitor; return the response."""
    client.cookies.clear()
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )


def csrf_of(client: Any, path: str = "/") -> str:
    """The CSRF token embedded in a page's forms."""
    page = client.get(path)
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def bearer(session: Session, user: Any, scopes: list[str] | None = None) -> dict[str, str]:
    """An Authorization header with a fresh token for ``user``."""
    from zhishe.core.accounts.schemas import TokenCreate
    from zhishe.core.accounts.service import actor_for_user, create_token

    _token, secret = create_token(
        session=session,
        actor=actor_for_user(user),
        token_in=TokenCreate(
            name="test",
            scopes=scopes
            or [
                "catalog:read",
                "catalog:write",
                "accounts:read",
                "accounts:write",
                "audit:read",
                "exchange:read",
                "exchange:write",
                "opendata:write",
                "iot:read",
                "iot:write",
            ],
        ),
    )
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def require_service(name: str, available: bool, reason: str) -> None:
    """Skip with a reason when a real server is absent, except under CI=true where it must run."""
    if not available:
        if IN_CI:
            pytest.fail(f"{name} is required under CI=true: {reason}")
        pytest.skip(f"{name} not available: {reason}")
