"""In a real browser: request another department's data, answer it in one click, read through
the grant, revoke it."""

from __future__ import annotations

import json

import pytest

from exchange.exchange_world import ExchangeWorld
from helpers import PASSWORD

pytestmark = pytest.mark.browser


def _login(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _wait_for(page, selector: str) -> None:
    """Wait for ``selector``; on a timeout, fail with what the page shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector, timeout=30000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{selector} did not appear on {page.url}:\n{page.inner_text('body')[:2000]}"
        ) from None


def _json(page, url: str) -> tuple[int, dict]:
    response = page.goto(url)
    return response.status, json.loads(page.inner_text("body"))


def test_request_approve_read_and_revoke_in_the_browser(live_server, page, world, db, client):
    ExchangeWorld(world, db, client)
    _login(page, live_server, "water.steward")
    page.goto(f"{live_server}/datasets/air")
    page.click("#request-access")
    _wait_for(page, "#request-form")
    page.fill("textarea[name=purpose]", "防汛调度需要空气质量数据")
    page.fill("textarea[name=legal_basis]", "《政务数据共享管理办法》第十条")
    for column in ("station", "day", "pm25"):
        page.check(f"input[name=columns][value={column}]")
    page.select_option("select[name=cond_col_0]", "station")
    page.select_option("select[name=cond_op_0]", "=")
    page.fill("input[name=cond_val_0]", "东四")
    page.fill("input[name=expires_on]", "2026-12-31")
    page.select_option("select[name=mode]", "export")
    page.click("#submit-request")
    _wait_for(page, "#state")
    request_url = page.url
    assert "/exchange/requests/" in request_url
    status, body = _json(page, f"{live_server}/api/v1/exchange/datasets/air/rows")
    assert status == 403 and "有条件共享" in body["error"]["message"]

    _login(page, live_server, "env.steward")
    page.goto(f"{live_server}/exchange?tab=incoming")
    page.click("button[data-approve]")
    _wait_for(page, "#grant")
    assert page.locator("#state").inner_text() in {"active", "有效"}

    _login(page, live_server, "water.steward")
    status, body = _json(page, f"{live_server}/api/v1/exchange/datasets/air/rows")
    assert status == 200
    assert body["columns"] == ["station", "day", "pm25"]
    assert {r["station"] for r in body["rows"]} == {"东四"}
    page.goto(f"{live_server}/notifications")
    assert page.locator("#notifications li").count() >= 1

    _login(page, live_server, "env.steward")
    page.goto(request_url)
    page.fill("#revoke-form input[name=reason]", "用途已结束")
    page.click("#revoke-form button")
    _wait_for(page, "#state")
    _login(page, live_server, "water.steward")
    status, _body = _json(page, f"{live_server}/api/v1/exchange/datasets/air/rows")
    assert status == 403
