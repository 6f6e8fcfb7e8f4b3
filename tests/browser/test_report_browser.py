"""In a real browser at phone width: a resident files a report with a photo, using the phone's
position, and reads its status page; a neighbour at the same spot is offered "me too" for it and
takes it instead of filing a duplicate."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from helpers import PASSWORD
from participation.pworld import B1, MONDAY, build
from zhishe.core import clock
from zhishe.participation import photos
from zhishe.participation.models import Request, Support

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


def _photo() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 15.12)
    image = Image.new("RGB", (320, 240), (40, 40, 60))
    image.paste((250, 220, 120), (140, 20, 180, 60))  # a lamp
    image.paste((90, 90, 90), (156, 60, 164, 240))  # its pole
    out = BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _phone(browser, base: str, username: str):
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": B1[0], "longitude": B1[1], "accuracy": 8},
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{base}/login?next=/participate")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form button.primary")
    page.wait_for_url("**/participate")
    return context, page


def _fits(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"


def test_a_resident_files_with_a_photo_and_a_neighbour_is_offered_me_too(live_server, browser, world, db):
    pw = build(world)
    clock.set_clock(lambda: MONDAY)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    context, page = _phone(browser, live_server, "res1")
    page.click("#report-button")
    page.click("a[data-category=streetlight]")
    page.wait_for_selector("#report-form")
    page.fill("input[name='attribute[pole_number]']", "P-0042")
    page.check("input[name='attribute[light_state]'][value=out]")
    page.click("#locate")
    page.wait_for_function("document.querySelector('input[name=lat]').value !== ''")
    assert page.is_checked("input[name=where][value=position]")
    assert float(page.input_value("input[name=lat]")) == pytest.approx(B1[0], abs=1e-5)
    page.fill("textarea[name=description]", "路灯不亮，晚上很黑")
    page.set_input_files(
        "input[name=photo] >> nth=0",
        files=[{"name": "lamp.jpg", "mimeType": "image/jpeg", "buffer": _photo()}],
    )
    page.wait_for_timeout(300)  # let the nearby lookup answer (nothing is near yet)
    assert page.is_hidden("#nearby")
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "participation-report-new.png"), full_page=True)
    page.click("#send")
    page.wait_for_url("**/participate/requests/*")
    request_id = int(page.url.split("/participate/requests/")[1].split("?")[0])
    page.wait_for_function(
        "(() => { const i = document.querySelector('#photos img'); return i && i.naturalWidth > 0 })()"
    )
    assert page.is_visible("#flash") and "P-0042" in page.inner_text("main")
    _fits(page)
    page.screenshot(path=str(SCREENSHOTS / "participation-status.png"), full_page=True)
    context.close()

    pw.session.expire_all()
    stored = photos.list_photos(session=pw.session, request_id=request_id)
    assert len(stored) == 1 and not Image.open(photos.path_of(stored[0])).getexif(), (
        "no GPS in the stored copy"
    )

    context, page = _phone(browser, live_server, "res2")
    page.goto(f"{live_server}/participate/report/new?category=streetlight")
    # offered at once for the home building, and again for the phone's position
    page.wait_for_selector("#nearby .me-too")
    page.click("#locate")
    page.wait_for_function("document.querySelector('input[name=lat]').value !== ''")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("#nearby .me-too")
    assert f"#{request_id}" in page.inner_text("#nearby")
    _fits(page)
    page.locator("#nearby .me-too").first.click()
    page.wait_for_url(f"**/participate/requests/{request_id}?done=support")
    assert page.is_visible("#you-support") and "1" in page.inner_text("#supporters")
    context.close()

    pw.session.expire_all()
    assert pw.session.get(Support, (request_id, pw.users["res2"].id)) is not None
    assert pw.session.query(Request).count() == 1, "no duplicate was filed"
