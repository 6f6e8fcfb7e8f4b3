"""In a real browser: a dispatcher of the city's street-lights team opens the work-order queue,
ticks two orders and assigns them to a worker in one go, opens one order, and looks at the map of
orders, which is drawn from the locally served Plotly bundle without any request leaving the site.
Screenshots of the three pages go to docs/screenshots/participation-*.png."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from helpers import PASSWORD
from participation.pworld import B1, B2, build
from zhishe.core import clock
from zhishe.participation import admin, escalation, service
from zhishe.participation.staff_pages import router as staff_router

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(autouse=True)
def _staff_routes(app: Any) -> None:
    """The staff pages are part of the app (included here only if the app does not yet)."""
    if not any(getattr(r, "path", "").startswith("/work") for r in app.routes):
        app.include_router(staff_router)


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 72), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _orders(session: Session, pw: Any) -> list[int]:
    """A small, lived-in queue: new, accepted, waiting, overdue and escalated orders."""
    real_now = clock.now()
    spots = [
        (B1[0], B1[1], "1号楼门口路灯不亮", "out"),
        (B1[0] + 0.0004, B1[1] + 0.0006, "小区东门路灯白天常亮", "day"),
        (B2[0] - 0.0003, B2[1], "2号楼北侧路灯闪烁", "flicker"),
        (B2[0] + 0.0005, B2[1] - 0.0012, "健身器材旁路灯不亮", "out"),
        (B1[0] - 0.0006, B1[1] + 0.0015, "停车场入口路灯不亮", "out"),
    ]
    ids = []
    for index, (lat, lon, text, state) in enumerate(spots):
        # the first two were filed ten days ago: past their deadline
        filed_at = real_now - timedelta(days=10 if index < 2 else 0, minutes=5 - index)
        clock.set_clock(lambda at=filed_at: at)
        order = service.submit(
            session=session,
            actor=pw.actor("res1" if index % 2 == 0 else "res2"),
            category_code="streetlight",
            description=text,
            lat=lat,
            lon=lon,
            answers={"pole_number": f"C1-0{index + 10}", "light_state": state},
            photos=[_png((220, 190, 60))] if index == 0 else (),
        )
        ids.append(order.id)
    clock.set_clock(None)
    service.support(session=session, actor=pw.actor("res3"), request_id=ids[0])
    lead = pw.actor("city-lead")
    service.act(session=session, actor=lead, request_id=ids[0], action="accept")
    service.act(session=session, actor=lead, request_id=ids[4], action="accept")
    service.act(
        session=session, actor=lead, request_id=ids[4], action="wait", reason="parts", note="等待灯泡到货"
    )
    garbage = service.submit(
        session=session,
        actor=pw.actor("res3"),
        category_code="garbage",
        description="2号楼垃圾桶满溢",
        lat=B2[0],
        lon=B2[1] + 0.0004,
        answers={"bin_type": ["kitchen", "other"]},
    )
    ids.append(garbage.id)
    escalation.sweep(session=session)
    admin.create_template(
        session=session,
        actor=lead,
        org_id=pw.orgs["city"].id,
        title="已派人处理",
        text="您好，我们已安排路灯班前往处理，预计两个工作日内修复。",
    )
    session.commit()
    return ids


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form button.primary")
    page.wait_for_url(lambda url: "/login" not in url)


def test_a_dispatcher_bulk_assigns_opens_an_order_and_sees_the_map(
    live_server: str, browser: Any, world: Any, db: Session
) -> None:
    pw = build(world)
    ids = _orders(db, pw)
    worker = pw.users["city-worker"]

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20000)
    outside: list[str] = []

    def _watch(request: Any) -> None:
        where = urlparse(request.url)
        if where.scheme in ("http", "https", "ws", "wss") and where.hostname != "127.0.0.1":
            outside.append(request.url)

    page.on("request", _watch)
    _login(page, live_server, "city-lead")

    page.goto(f"{live_server}/work")
    rows = page.locator("#queue tbody tr[data-id]")
    assert rows.count() == 5  # the street-lights team's orders; the garbage one is the city's, not the team's
    page.check(f"input[name=ids][value='{ids[1]}']")
    page.check(f"input[name=ids][value='{ids[2]}']")
    page.select_option("#bulk-action", "assign")
    page.select_option("#bulk-form select[name=team_id]", str(pw.teams["lights"].id))
    page.select_option("#bulk-form select[name=assignee_user_id]", str(worker.id))
    page.click("#bulk-form button.primary")
    page.wait_for_selector("#done")
    assert "2" in page.locator("#done").inner_text()
    for order_id in (ids[1], ids[2]):
        assert worker.username in page.locator(f"tr[data-id='{order_id}']").inner_text()
    assert page.locator(f"tr[data-id='{ids[0]}'].overdue-row").count() == 1
    page.screenshot(path=str(SHOTS / "participation-queue.png"), full_page=True)

    page.click(f"tr[data-id='{ids[0]}'] td.desc a")
    page.wait_for_url(f"**/work/orders/{ids[0]}")
    assert page.locator("#overdue").count() == 1 and page.locator("#escalation").count() == 1
    page.select_option("#template-picker", label="已派人处理")
    assert page.input_value("#note").startswith("您好，我们已安排路灯班")
    page.screenshot(path=str(SHOTS / "participation-order.png"), full_page=True)

    page.goto(f"{live_server}/work/map?team=all")
    page.wait_for_selector("#work-map[data-drawn='1']")
    drawn_as = page.get_attribute("#work-map", "data-kind")
    assert drawn_as in ("map", "flat")
    assert page.locator("#map-orders tbody tr").count() == 6
    page.wait_for_timeout(500)  # let the map finish painting before the picture
    page.screenshot(path=str(SHOTS / "participation-map.png"), full_page=True)
    assert outside == [], f"pages fetched from outside the site: {outside}"
    context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    page.set_default_timeout(20000)
    _login(page, live_server, "city-lead")
    for path in ("/work", f"/work/orders/{ids[0]}"):
        page.goto(f"{live_server}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
    phone.close()
