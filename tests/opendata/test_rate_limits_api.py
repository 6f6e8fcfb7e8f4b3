"""Rate limits of the public open-data API: per address without a token, per app token with one;
429 with Retry-After past the limit; app tokens registered, listed, revoked; bad tokens refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import csrf_of, login
from opendata.open_world import OpenWorld
from zhishe.core.config import reset_settings
from zhishe.opendata.api import _limiter

QUERY = "/opendata/api/v1/datasets/air/query.json"
TOKENS = "/api/v1/opendata/app-tokens"
DOWNLOAD = "/opendata/api/v1/datasets/air/download.csv"
ANONYMOUS, PER_TOKEN, WINDOW = 2, 3, 12


@pytest.fixture()
def limited(ow: OpenWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenWorld]:
    """``air`` open, with small limits per 12 s: 2 calls per address, 3 per app token (a new call
    every 6 s and 4 s); small enough to reach at once, long enough to hold on a busy machine."""
    ow.open_air()
    monkeypatch.setenv("ZHISHE_OPENDATA_RATE_ANONYMOUS", str(ANONYMOUS))
    monkeypatch.setenv("ZHISHE_OPENDATA_RATE_TOKEN", str(PER_TOKEN))
    monkeypatch.setenv("ZHISHE_OPENDATA_RATE_WINDOW", str(WINDOW))
    reset_settings()
    _limiter.cache_clear()  # a fresh limiter: no hits counted by other tests
    try:
        yield ow
    finally:
        monkeypatch.undo()
        reset_settings()
        _limiter.cache_clear()


def call(ow: OpenWorld, token: str | None = None) -> Any:
    headers = {"X-App-Token": token} if token is not None else {}
    return ow.client.get(QUERY, params={"$limit": "1"}, headers=headers)


def too_many(response: Any) -> int:
    """Assert a 429 in the error envelope with a Retry-After; return the seconds to wait."""
    assert response.status_code == 429, response.text[:300]
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["error"]["type"] == "rate_limited"
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= WINDOW
    assert body["error"]["detail"]["retry_after"] == wait
    return wait


def register_app(ow: OpenWorld, username: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Register an app as a user logged in through the form; returns the answer and the headers
    a cookie-authenticated API call needs."""
    assert login(ow.client, username).status_code in (302, 303)
    headers = {"X-CSRF-Token": csrf_of(ow.client, "/opendata/developers")}
    created = ow.client.post(TOKENS, json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    return dict(created.json()), headers


def test_anonymous_callers_get_429_with_retry_after_and_may_call_again_after_it(limited: OpenWorld) -> None:
    for remaining in range(ANONYMOUS - 1, -1, -1):
        # the last allowed call a download: every public route counts and says so
        answer = call(limited) if remaining else limited.client.get(DOWNLOAD)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-ratelimit-limit"] == str(ANONYMOUS)
        assert answer.headers["x-ratelimit-remaining"] == str(remaining)
    wait = too_many(call(limited))
    assert too_many(limited.client.get("/opendata/api/v1/datasets/air")) >= 1  # the whole public API
    assert limited.client.get("/opendata/datasets/air").status_code == 200  # pages are not limited
    time.sleep(wait)
    assert call(limited).status_code == 200
    too_many(call(limited))


def test_an_app_token_has_its_own_limit_and_is_shown_once_listed_and_revocable(limited: OpenWorld) -> None:
    created, headers = register_app(limited, "env.analyst", "空气质量小程序")
    secret = created["token"]
    assert (
        secret.startswith("zat_") and created["prefix"] == secret[:10] and created["name"] == "空气质量小程序"
    )

    listed = limited.client.get(TOKENS, headers=headers)
    assert listed.status_code == 200
    assert [(t["name"], t["prefix"]) for t in listed.json()] == [("空气质量小程序", secret[:10])]
    assert "token" not in listed.json()[0] and secret not in listed.text  # shown once only
    page = limited.client.get("/opendata/developers")
    assert f"{secret[:10]}…" in page.text and secret not in page.text

    limited.client.cookies.clear()  # the public from here on
    for _ in range(ANONYMOUS):
        assert call(limited).status_code == 200
    too_many(call(limited))
    for remaining in range(PER_TOKEN - 1, -1, -1):  # the address is spent, the token is not
        answer = call(limited, secret)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-ratelimit-limit"] == str(PER_TOKEN)
        assert answer.headers["x-ratelimit-remaining"] == str(remaining)
    too_many(call(limited, secret))

    other, _ = register_app(limited, "water.analyst", "另一个应用")
    limited.client.cookies.clear()
    assert call(limited, other["token"]).status_code == 200  # each token counts on its own

    _, headers = register_app(limited, "env.analyst", "第二个")
    mine = limited.client.get(TOKENS, headers=headers).json()
    assert [t["name"] for t in mine] == ["第二个", "空气质量小程序"]  # newest first, only mine
    first_id = next(t["id"] for t in mine if t["name"] == "空气质量小程序")
    assert limited.client.delete(f"{TOKENS}/{first_id}", headers=headers).status_code == 204
    assert [t["name"] for t in limited.client.get(TOKENS, headers=headers).json()] == ["第二个"]
    assert limited.client.delete(f"{TOKENS}/{first_id}", headers=headers).status_code == 404
    other_id = limited.client.get(
        TOKENS, headers={"Authorization": limited.h("water.analyst")["Authorization"]}
    )
    assert other_id.status_code == 200
    theirs = other_id.json()[0]["id"]
    assert limited.client.delete(f"{TOKENS}/{theirs}", headers=headers).status_code == 404  # not mine

    limited.client.cookies.clear()
    forbidden(call(limited, secret))  # revoked: refused at once


def forbidden(response: Any) -> None:
    assert response.status_code == 403, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "forbidden" and error["detail"]["header"] == "X-App-Token"
    assert "X-App-Token" in error["message"]


def test_unknown_or_malformed_app_tokens_are_refused_naming_the_header(limited: OpenWorld) -> None:
    for bad in ("zat_" + "x" * 32, "not-a-token", "zat_", "zat_" + "y" * 200, "Bearer zat_abc"):
        forbidden(call(limited, bad))
    forbidden(
        limited.client.get(
            "/opendata/api/v1/sql", params={"query": "SELECT 1"}, headers={"X-App-Token": "zat_no"}
        )
    )
    # refusals of a bad token do not spend the caller's anonymous calls
    for _ in range(ANONYMOUS):
        assert call(limited).status_code == 200


def test_app_tokens_need_a_login(limited: OpenWorld) -> None:
    anonymous = limited.client.post(TOKENS, json={"name": "x"})
    assert anonymous.status_code == 401
    assert limited.client.get(TOKENS).status_code == 401
    page = limited.client.get("/opendata/developers")
    assert page.status_code == 200 and 'href="/login?next=/opendata/developers"' in page.text
    headers = limited.h("env.analyst")
    for name in ("", "x" * 101):
        assert limited.client.post(TOKENS, json={"name": name}, headers=headers).status_code == 422
