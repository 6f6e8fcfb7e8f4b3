"""In a real browser, as the public: find open data by a Chinese search, open the dataset, filter
its preview, download the CSV for Excel (with its byte-order mark), and report a problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendata.open_world import OpenWorld

pytestmark = pytest.mark.browser

BOM = b"\xef\xbb\xbf"


def _wait_for(page, selector: str) -> None:
    """Wait for ``selector``; on a timeout, fail with what the page shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(selector, timeout=30000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{selector} did not appear on {page.url}:\n{page.inner_text('body')[:2000]}"
        ) from None


def test_search_open_filter_download_and_report_a_problem(live_server, page, world, db, client):
    ow = OpenWorld(world, db, client)
    ow.open_air()

    page.goto(f"{live_server}/opendata")
    page.fill("#portal-search", "空气")
    page.press("#portal-search", "Enter")
    _wait_for(page, "#results li.hit")
    assert "/opendata/datasets?q=" in page.url
    assert page.locator("#results li.hit").count() == 1
    page.click("#results a[href='/opendata/datasets/air']")
    _wait_for(page, "#preview")
    assert page.locator("h1").inner_text().startswith("空气质量")
    assert page.locator("#preview tbody tr").count() == 25
    _wait_for(page, "#opendata-chart[data-drawn='1']")  # the chart asked the query API and drew
    assert page.locator("#chart-status").inner_text() == "144 points"

    page.select_option("#filter-column", "station")
    page.fill("#filter-value", "天坛")
    page.click("#preview-filter button.primary")
    _wait_for(page, "#preview-total")
    assert "value=%E5%A4%A9%E5%9D%9B" in page.url
    stations = page.locator("#preview tbody tr td:first-child").all_inner_texts()
    assert len(stations) == 25 and set(stations) == {"天坛"}
    assert "48" in page.locator("#preview-total").inner_text()

    with page.expect_download() as caught:
        page.click("#download-csv-bom")
    download = caught.value
    assert download.suggested_filename == "air-v1.csv"
    content = Path(download.path()).read_bytes()
    assert content.startswith(BOM) and content.count(BOM) == 1
    text = content[len(BOM) :].decode("utf-8")
    assert text.startswith('"station","observed_at","pm25","aqi","location_lat","location_lon"\r\n')
    assert "东四" in text and "天坛" in text and "奥体中心" in text
    assert len(text.strip().splitlines()) == 1 + 144

    page.select_option("#problem-form select[name=kind]", "value")
    page.select_option("#problem-form select[name=column]", "pm25")
    page.fill("#problem-form textarea[name=problem]", "天坛站 9 月 2 日凌晨的 PM2.5 数值异常")
    page.fill("#problem-form input[name=contact]", "reader@example.org")
    page.click("#problem-form button.primary")
    _wait_for(page, "#reported")
    confirmation = page.locator("#reported").inner_text()
    assert "1" in confirmation  # the number
    assert page.url.endswith("/opendata/datasets/air/problems")
