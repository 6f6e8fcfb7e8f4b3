"""In a real browser at phone width: a resident finds a housekeeping service within 3 km, books a
slot and pays with the elderly-care voucher; the provider marks it delivered; both review, and each
side's review appears to the other only once both have reviewed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpers import PASSWORD
from services.sworld import MONDAY, build
from zhishe.finance import ledger
from zhishe.services import vouchers
from zhishe.services.models import Review, Transaction, Voucher

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


def _phone(browser, base: str, username: str, start: str):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{base}/login?next={start}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form button.primary")
    page.wait_for_url(f"**{start}")
    return context, page


def _fits(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"


def test_a_resident_books_with_a_voucher_and_reviews_stay_blind_until_both_sides_review(
    live_server, browser, world, db
):
    sw = build(world)
    near = sw.listing(sw.providers["clean"], "housekeeping", title_zh="日常保洁", title_en="Home cleaning")
    far = sw.listing(sw.providers["far"], "housekeeping", title_zh="远郊保洁", title_en="Far cleaning")
    slot = sw.slot(near, MONDAY + timedelta(days=1))
    sw.slot(far, MONDAY + timedelta(days=1))
    programme = vouchers.create_programme(
        session=db,
        actor=sw.actor("op-steward"),
        data={
            "code": "ElderlyCare",
            "name_zh": "居家养老服务补贴",
            "name_en": "Elderly-care subsidy",
            "kind": "government_subsidy",
            "amount_fen": 20000,
            "period": "monthly",
            "eligibility": {"min_age": 60},
            "categories": ["housekeeping"],
            "valid_from": "2026-11-01",
            "valid_until": "2027-10-31",
        },
    )
    vouchers.fund_programme(
        session=db,
        actor=sw.actor("op-steward"),
        programme_id=programme.id,
        amount_fen=100_000,
        memo="区民政拨款",
    )
    vouchers.issue_due(db, MONDAY)
    db.commit()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    resident, page = _phone(browser, live_server, "res1", "/services")
    page.fill("input[name=q]", "保洁")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(f"a[href='/services/listings/{near.id}']")
    assert page.locator(f"a[href='/services/listings/{far.id}']").count() == 0  # 10 km away: out of radius
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "services-discover.png"), full_page=True)
    page.click(f"a[href='/services/listings/{near.id}']")
    page.check(f"input[name=slot_id][value='{slot.id}']")
    page.click("form.book button")
    page.wait_for_selector("#pay")
    page.check("input[name=method][value=voucher]")
    page.select_option("select[name=voucher_id]", index=1)
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "services-pay.png"), full_page=True)
    page.click("#pay button.primary")
    page.wait_for_selector("#state")
    db.expire_all()
    txn = db.query(Transaction).one()
    assert txn.state == "booked" and txn.subsidy_fen == txn.price_fen == 10000
    assert db.query(Voucher).one().state == "used"

    provider, staff = _phone(browser, live_server, "clean-staff", "/provider/orders")
    staff.click(f"form[action='/services/orders/{txn.id}/actions/deliver'] button")
    staff.wait_for_load_state()
    db.expire_all()
    assert db.get(Transaction, txn.id).state == "delivered"

    page.goto(f"{live_server}/services/orders/{txn.id}")
    page.check("#review-form input[name=rating][value='5']")
    page.fill("#review-form textarea[name=text]", "阿姨很细心，准时")
    page.click("#review-form button")
    page.wait_for_selector("#reviews")
    staff.goto(f"{live_server}/services/orders/{txn.id}")
    assert "阿姨很细心" not in staff.content()  # blind: the provider cannot read it yet
    staff.check("#review-form input[name=rating][value='4']")
    staff.fill("#review-form textarea[name=text]", "客户很友善")
    staff.click("#review-form button")
    staff.wait_for_selector("#reviews")
    assert "阿姨很细心" in staff.content()  # both sides reviewed: published
    page.goto(f"{live_server}/services/orders/{txn.id}")
    assert "客户很友善" in page.content()
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "services-order.png"), full_page=True)
    db.expire_all()
    assert all(r.published_at is not None for r in db.query(Review).all())
    assert all(total == 0 for total in ledger.totals_by_currency(db).values())
    resident.close()
    provider.close()
