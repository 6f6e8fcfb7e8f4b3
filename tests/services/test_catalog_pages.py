"""The catalogue's pages: resident discovery and listing detail (with the booking form), the
provider's shop (profile, licences, listings, slots) and the operator's provider list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from helpers import csrf_of, login
from services.sworld import MONDAY, ServicesWorld
from zhishe.services.models import Licence, Listing, Provider, Slot


def _as(client: Any, user: str) -> None:
    assert login(client, user).status_code in (302, 303)
    client.cookies.set("zhishe_lang", "en")


def test_the_discovery_page_shows_cards_with_every_factor_and_searches_in_chinese(
    client: Any, sw: ServicesWorld
) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    sw.listing(sw.providers["fix"], "repair", title_zh="水电维修", title_en="Plumbing")
    _as(client, "res1")
    page = client.get("/services", params={"q": "保洁"})
    assert page.status_code == 200
    assert f'data-listing="{listing.id}"' in page.text and "Plumbing" not in page.text
    assert "¥100.00" in page.text and "m away" in page.text and "Why here: score" in page.text
    assert "No ratings yet" in page.text and "Response time unknown" in page.text
    assert 'name="q"' in page.text and "/services?category=housekeeping" in page.text


def test_discovery_tells_a_user_without_a_building_to_set_it(client: Any, sw: ServicesWorld) -> None:
    _as(client, "op-admin")
    page = client.get("/services")
    assert page.status_code == 422 and "set your building" in page.text


def test_the_listing_page_shows_price_lines_free_slots_and_a_booking_form(
    client: Any, sw: ServicesWorld
) -> None:
    rules = {
        "unit": "hour",
        "unit_fen": 5000,
        "min_units": 2,
        "surcharges": [
            {
                "code": "tools",
                "name_zh": "自带工具",
                "name_en": "Own tools",
                "kind": "fixed",
                "amount": 1500,
                "when": "option",
            }
        ],
    }
    listing = sw.listing(sw.providers["clean"], "housekeeping", price_rules=rules)
    slot = sw.slot(listing, MONDAY + timedelta(days=1))
    full = sw.slot(listing, MONDAY + timedelta(days=2))
    full.booked = 1
    sw.session.commit()
    _as(client, "res1")
    page = client.get(f"/services/listings/{listing.id}")
    assert page.status_code == 200
    assert f'action="/services/listings/{listing.id}/book"' in page.text
    assert (
        f'name="slot_id" value="{slot.id}"' in page.text
        and f'name="slot_id" value="{full.id}"' not in page.text
    )
    assert 'name="quantity"' in page.text and 'name="extras" value="tools"' in page.text
    assert 'name="csrf_token"' in page.text and "¥100.00" in page.text and "Own tools" in page.text


def test_a_provider_creates_a_listing_adds_slots_and_publishes_it_through_the_forms(
    client: Any, sw: ServicesWorld
) -> None:
    _as(client, "clean-staff")
    token = csrf_of(client, "/provider/listings/new")
    form = {
        "csrf_token": token,
        "title_zh": "擦窗",
        "title_en": "Window cleaning",
        "category": "housekeeping",
        "process": "instant_booking",
        "availability": "slots",
        "unit": "visit",
        "unit_price": "80",
        "min_units": "1",
        "surcharges": "[]",
        "settings": "{}",
        "free_until_hours": "24",
        "late_fee_bps": "5000",
        "no_show_fee_bps": "10000",
        "price_fen": "1",
    }
    made = client.post("/provider/listings/new", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text
    listing = sw.session.scalar(select(Listing).where(Listing.title_zh == "擦窗"))
    assert listing is not None and listing.price_rules["unit_fen"] == 8000 and listing.status == "draft"
    slots = client.post(
        f"/provider/listings/{listing.id}/slots",
        data={
            "csrf_token": token,
            "from_date": "2026-11-03",
            "until_date": "2026-11-16",
            "start_time": "09:00",
            "end_time": "10:00",
            "capacity": "2",
            "weekdays": ["2", "4"],
        },
        follow_redirects=False,
    )
    assert slots.status_code == 303
    assert sw.session.scalar(select(func.count()).select_from(Slot).where(Slot.listing_id == listing.id)) == 4
    assert (
        client.post(
            f"/provider/listings/{listing.id}/publish", data={"csrf_token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    sw.session.expire_all()
    assert sw.session.get(Listing, listing.id).status == "active"  # type: ignore[union-attr]
    edit = client.get(f"/provider/listings/{listing.id}")
    assert "Window cleaning" in edit.text and "Add slots" in edit.text


def test_a_bad_slot_on_the_form_is_shown_and_nothing_is_added(client: Any, sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    _as(client, "clean-staff")
    token = csrf_of(client, f"/provider/listings/{listing.id}")
    page = client.post(
        f"/provider/listings/{listing.id}/slots",
        data={"csrf_token": token, "from_date": "2026-11-03", "start_time": "11:00", "end_time": "09:00"},
    )
    assert page.status_code == 422 and "ends_at must be after starts_at" in page.text
    assert sw.session.scalar(select(func.count()).select_from(Slot)) == 0


def test_another_providers_staff_cannot_open_or_edit_your_listing_page(
    client: Any, sw: ServicesWorld
) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping", status="draft")
    _as(client, "fix-admin")
    assert client.get(f"/provider/listings/{listing.id}").status_code == 404
    token = csrf_of(client, "/provider")
    assert (
        client.post(
            f"/provider/listings/{listing.id}", data={"csrf_token": token, "title_zh": "x"}
        ).status_code
        == 404
    )
    active = sw.listing(sw.providers["clean"], "housekeeping")
    assert (
        client.post(
            f"/provider/listings/{active.id}", data={"csrf_token": token, "title_zh": "x"}
        ).status_code
        == 403
    )
    sw.session.expire_all()
    assert sw.session.get(Listing, active.id).title_zh == "日常保洁"  # type: ignore[union-attr]


def test_the_shop_page_shows_licence_badges_and_refuses_a_fake_licence_file(
    client: Any, sw: ServicesWorld
) -> None:
    sw.licence(sw.providers["clean"], "food", (MONDAY + timedelta(days=10)).date())
    _as(client, "clean-admin")
    page = client.get("/provider")
    assert "expires in 10 days" in page.text and "valid" in page.text and "Upload a licence" in page.text
    before = sw.session.scalar(select(func.count()).select_from(Licence))
    token = csrf_of(client, "/provider")
    refused = client.post(
        "/provider/licences",
        data={"csrf_token": token, "kind": "food", "number": "F-1", "expires_on": "2027-11-01"},
        files={"file": ("licence.pdf", b"just text pretending", "application/pdf")},
    )
    assert refused.status_code == 422 and "not a PDF, JPEG or PNG" in refused.text
    sw.session.expire_all()
    assert sw.session.scalar(select(func.count()).select_from(Licence)) == before
    accepted = client.post(
        "/provider/licences",
        data={"csrf_token": token, "kind": "food", "number": "F-1", "expires_on": "2027-11-01"},
        files={"file": ("licence.png", b"\x89PNG\r\n\x1a\n....", "image/png")},
        follow_redirects=False,
    )
    assert accepted.status_code == 303


def test_a_form_without_its_csrf_token_is_refused(client: Any, sw: ServicesWorld) -> None:
    _as(client, "clean-admin")
    response = client.post(
        "/provider", data={"name_zh": "改名", "lat": "39.9", "lon": "116.4", "categories": ["repair"]}
    )
    assert response.status_code == 403
    sw.session.expire_all()
    assert sw.session.get(Provider, sw.providers["clean"].id).name_zh == "洁家家政"  # type: ignore[union-attr]


def test_the_operator_suspends_a_provider_and_sets_commissions_from_the_list(
    client: Any, sw: ServicesWorld
) -> None:
    pid = sw.providers["fix"].id
    _as(client, "op-steward")
    page = client.get("/operator/providers")
    assert page.status_code == 200 and f'data-provider="{pid}"' in page.text
    token = csrf_of(client, "/operator/providers")
    assert (
        client.post(
            f"/operator/providers/{pid}/suspend",
            data={"csrf_token": token, "reason": "投诉"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"/operator/providers/{pid}/commissions",
            data={"csrf_token": token, "bps[repair]": "900"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    sw.session.expire_all()
    fix = sw.session.get(Provider, pid)
    assert fix is not None and fix.status == "suspended" and fix.commission_overrides == {"repair": 900}
    refused = client.post(
        f"/operator/providers/{pid}/commissions", data={"csrf_token": token, "bps[repair]": "20000"}
    )
    assert refused.status_code == 422
    _as(client, "res1")
    assert client.get("/operator/providers").status_code == 403


def test_the_discovery_page_speaks_chinese_by_default(client: Any, sw: ServicesWorld) -> None:
    sw.listing(sw.providers["clean"], "housekeeping")
    assert login(client, "res1").status_code in (302, 303)
    page = client.get("/services")
    assert page.status_code == 200 and "日常保洁" in page.text and "洁家家政" in page.text
