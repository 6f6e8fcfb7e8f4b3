"""In a real browser: log in, import a CSV through the page, see the preview and the chart,
switch the language to English and back."""

from __future__ import annotations

import pytest

from helpers import PASSWORD

pytestmark = pytest.mark.browser

CSV = "day,station,pm25\n" + "".join(
    f"2026-01-{d:02d},{s},{10 + d * (2 if s == '东四' else 1)}.5\n"
    for d in range(1, 29)
    for s in ("东四", "天坛")
)


def _wait_for(page, selector: str) -> None:
    """Wait for ``selector``; on a timeout, fail with what the page shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector, timeout=30000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{selector} did not appear on {page.url}:\n{page.inner_text('body')[:2000]}"
        ) from None


def test_login_import_preview_chart_and_language(live_server, page, world, tmp_path):
    org = world.org("dept-env", name="生态环境局")
    world.user("env.steward", org, role="steward")
    from sqlalchemy import select

    from zhishe.catalog.schemas import DatasetCreate
    from zhishe.catalog.service import create_dataset
    from zhishe.core.accounts.models import User
    from zhishe.core.accounts.service import actor_for_user

    user = world.session.scalar(select(User).where(User.username == "env.steward"))
    create_dataset(
        session=world.session,
        actor=actor_for_user(user),
        dataset_in=DatasetCreate(
            slug="air",
            title_zh="空气质量日报",
            title_en="Daily air quality",
            sharing_class="unconditional",
            accrual_periodicity="daily",
            time_column=None,
        ),
    )
    world.session.commit()

    page.goto(f"{live_server}/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.fill("input[name=username]", "env.steward")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    csv_path = tmp_path / "air.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    page.goto(f"{live_server}/datasets/air/import")
    page.set_input_files("input[name=file]", str(csv_path))
    page.click("#upload-form button")
    _wait_for(page, "#confirm-form")
    assert page.locator("select[data-col=pm25]").input_value() == "decimal"
    assert page.locator("select[data-col=day]").input_value() == "date"
    page.click("#confirm")
    _wait_for(page, "#see-preview")
    page.click("#see-preview")
    page.wait_for_selector("#preview-table")
    cells = page.locator("#preview-table tbody tr").first.locator("td").all_inner_texts()
    assert cells == ["2026-01-01", "东四", "12.5"]
    assert page.locator("#preview-table tbody tr").count() == 25
    page.click("#next-page")
    page.wait_for_selector("#preview-table")
    assert page.locator("#preview-table tbody tr").count() == 25

    page.goto(f"{live_server}/datasets/air?tab=chart")
    page.wait_for_selector("#chart[data-drawn='1']")
    assert page.locator("#chart .main-svg").count() >= 1

    assert "数据目录" in page.locator("nav.nav").inner_text()
    page.click("a[data-lang=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Catalog" in page.locator("nav.nav").inner_text()
    page.goto(f"{live_server}/catalog")
    assert "Catalog" in page.locator("h1").inner_text()
    page.click("a[data-lang=zh-CN]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "数据目录" in page.locator("h1").inner_text()


def test_phone_width_shows_a_usable_menu(live_server, browser, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "env.steward")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert not page.locator("nav.nav").is_visible()
    page.click("label.nav-button")
    assert page.locator("nav.nav a[href='/catalog']").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392
    context.close()
