"""In a real browser: a resident opens their energy page on a phone and sees today's load curve,
cost and alerts; the operator opens the community page and sees the transformer's load drawn."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import PASSWORD
from iot.iot_world import DAY, build
from zhishe.core import clock
from zhishe.iot import history, ingest

pytestmark = pytest.mark.browser


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form button.primary")
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_household_page_on_a_phone_and_the_community_page(live_server, browser, world, db):
    iw = build(world)
    now = DAY + timedelta(hours=20)
    clock.set_clock(lambda: now)
    for i in range(1, 7):
        stream = iw.stream(f"H{i}-electricity", "energy")
        readings = [
            ingest.Incoming(
                q,
                stream.id,
                (DAY + timedelta(minutes=15 * q)).isoformat(),
                100 + 0.1 * i * q + (0.05 * q if q >= 72 else 0),
            )
            for q in range(81)
        ]
        ingest.store(session=iw.session, readings=readings, device=iw.devices[f"H{i}-electricity"])
    iw.session.commit()
    history.flush(session=iw.session)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = phone.new_page()
    page.set_default_timeout(20000)
    _login(page, live_server, "resident0")
    page.goto(f"{live_server}/energy")
    page.wait_for_url(f"**/energy/home/{iw.households[0].id}")
    page.wait_for_selector("#load-chart[data-drawn='1']")
    assert "kWh" in page.locator("#today-kwh").inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"
    phone.close()

    desktop = browser.new_context(viewport={"width": 1280, "height": 900})
    page = desktop.new_page()
    page.set_default_timeout(20000)
    _login(page, live_server, "op-steward")
    page.goto(f"{live_server}/energy/community/{iw.transformer.id}")
    page.wait_for_selector("#community-chart[data-drawn='1']")
    assert "kW" in page.locator("#peak").inner_text()
    desktop.close()
