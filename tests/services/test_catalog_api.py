"""The catalogue's JSON API: categories, providers, licences (multipart, sniffed), listings, slots,
batches, discovery and the price preview, with errors in the platform envelope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from helpers import bearer
from services.sworld import HOURLY, MONDAY, ServicesWorld
from zhishe.services.models import Licence, Listing, Slot

API = "/api/v1/services"
SCOPES = ["services:read", "services:write"]


def _auth(sw: ServicesWorld, user: str) -> dict[str, str]:
    return bearer(sw.session, sw.users[user], scopes=SCOPES)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    return dict(body["error"])


def _published(client: Any, sw: ServicesWorld) -> int:
    staff = _auth(sw, "clean-staff")
    made = client.post(
        f"{API}/listings",
        headers=staff,
        json={
            "title_zh": "日常保洁",
            "title_en": "Home cleaning",
            "category": "housekeeping",
            "process": "instant_booking",
            "price_rules": HOURLY,
            "price_fen": 1,
        },
    )
    assert made.status_code == 201, made.text
    listing_id = int(made.json()["id"])
    assert client.post(f"{API}/listings/{listing_id}/publish", headers=staff).json()["status"] == "active"
    return listing_id


def test_categories_are_public_and_only_the_operator_creates_them(client: Any, sw: ServicesWorld) -> None:
    codes = [c["code"] for c in client.get(f"{API}/categories").json()]
    assert "housekeeping" in codes
    body = {"code": "pet_care", "name_zh": "宠物照护", "commission_bps": 1100}
    _error(client.post(f"{API}/categories", headers=_auth(sw, "res1"), json=body), 403)
    made = client.post(f"{API}/categories", headers=_auth(sw, "op-steward"), json=body)
    assert made.status_code == 201 and made.json()["commission_bps"] == 1100
    changed = client.put(
        f"{API}/categories/pet_care", headers=_auth(sw, "op-steward"), json={"licence_kinds": ["pet"]}
    )
    assert changed.json()["licence_kinds"] == ["pet"]


def test_provider_profile_edit_and_operator_suspension(client: Any, sw: ServicesWorld) -> None:
    pid = sw.providers["clean"].id
    patched = client.patch(
        f"{API}/providers/{pid}", headers=_auth(sw, "clean-admin"), json={"radius_m": 5000}
    )
    assert patched.json()["radius_m"] == 5000
    error = _error(
        client.patch(f"{API}/providers/{pid}", headers=_auth(sw, "clean-admin"), json={"radius_m": 60000}),
        422,
    )
    assert error["detail"]["field"] == "radius_m"
    _error(
        client.patch(f"{API}/providers/{pid}", headers=_auth(sw, "fix-admin"), json={"radius_m": 100}), 403
    )
    op = _auth(sw, "op-dispatcher")
    assert (
        client.post(f"{API}/providers/{pid}/suspend", headers=op, json={"reason": "投诉"}).json()["status"]
        == "suspended"
    )
    resident_view = client.get(f"{API}/providers", headers=_auth(sw, "res1")).json()["items"]
    assert pid not in [p["id"] for p in resident_view]
    assert "commission_overrides" not in resident_view[0]
    operator_view = client.get(f"{API}/providers", headers=op).json()["items"]
    assert pid in [p["id"] for p in operator_view] and "commission_overrides" in operator_view[0]
    assert (
        client.post(f"{API}/providers/{pid}/reinstate", headers=op, json={"reason": "ok"}).json()["status"]
        == "active"
    )
    terms = client.put(
        f"{API}/providers/{pid}/commissions", headers=op, json={"commission_overrides": {"housekeeping": 600}}
    )
    assert terms.json()["commission_overrides"] == {"housekeeping": 600}


def test_licence_upload_is_sniffed_and_downloads_are_limited(client: Any, sw: ServicesWorld) -> None:
    admin = _auth(sw, "clean-admin")
    form = {"kind": "housekeeping", "number": "HK-9", "expires_on": "2027-10-31"}
    before = sw.session.scalar(select(func.count()).select_from(Licence))
    fake = client.post(
        f"{API}/licences",
        headers=admin,
        data=form,
        files={"file": ("licence.pdf", b"MZ\x90\x00not a pdf", "application/pdf")},
    )
    assert _error(fake, 422)["detail"]["field"] == "file"
    sw.session.expire_all()
    assert sw.session.scalar(select(func.count()).select_from(Licence)) == before
    good = client.post(
        f"{API}/licences",
        headers=admin,
        data=form,
        files={"file": ("hk.pdf", b"%PDF-1.7 real", "application/octet-stream")},
    )
    assert good.status_code == 201 and good.json()["content_type"] == "application/pdf"
    url = good.json()["file"]
    download = client.get(url, headers=_auth(sw, "clean-staff"))
    assert download.status_code == 200 and download.content == b"%PDF-1.7 real"
    assert client.get(url, headers=_auth(sw, "op-analyst")).status_code == 200
    _error(client.get(url, headers=_auth(sw, "fix-admin")), 403)
    _error(client.get(url, headers=_auth(sw, "res1")), 403)
    listed = client.get(f"{API}/licences", headers=admin).json()["items"]
    assert "HK-9" in [row["number"] for row in listed]


def test_a_listing_is_created_published_found_and_quoted_with_factors(client: Any, sw: ServicesWorld) -> None:
    listing_id = _published(client, sw)
    resident = _auth(sw, "res1")
    found = client.get(f"{API}/listings", headers=resident, params={"q": "保洁"}).json()
    [item] = found["items"]
    assert item["listing"]["id"] == listing_id
    assert set(item["factors"]) >= {
        "distance_m",
        "rating",
        "response_minutes",
        "price_fen",
        "score",
        "components",
    }
    assert item["factors"]["price_fen"] == 10000
    far = client.get(f"{API}/listings", headers=_auth(sw, "res-far"), params={"q": "保洁"}).json()
    assert far["items"] == []
    detail = client.get(f"{API}/listings/{listing_id}", headers=resident).json()
    assert detail["factors"]["distance_m"] > 0 and detail["slots"] == []


def test_the_quote_ignores_a_client_price_and_names_a_bad_quantity(client: Any, sw: ServicesWorld) -> None:
    listing_id = _published(client, sw)
    resident = _auth(sw, "res1")
    saturday = "2026-11-07T10:00:00+08:00"
    honest = client.get(
        f"{API}/listings/{listing_id}/quote", headers=resident, params={"quantity": 3, "starts_at": saturday}
    ).json()
    hostile = client.get(
        f"{API}/listings/{listing_id}/quote",
        headers=resident,
        params={"quantity": 3, "starts_at": saturday, "price_fen": 1, "commission_fen": 0},
    ).json()
    assert honest == hostile and honest["price_fen"] == 17000
    for bad in ("-1", "0", "1.5", "abc", "100000"):
        error = _error(
            client.get(f"{API}/listings/{listing_id}/quote", headers=resident, params={"quantity": bad}), 422
        )
        assert error["detail"]["field"] == "quantity"
    listing = sw.session.get(Listing, listing_id)
    assert listing is not None and "price_fen" not in listing.settings


def test_slots_and_hostile_slot_input(client: Any, sw: ServicesWorld) -> None:
    listing_id = _published(client, sw)
    staff = _auth(sw, "clean-staff")
    tomorrow = MONDAY + timedelta(days=1)
    backwards = client.post(
        f"{API}/listings/{listing_id}/slots",
        headers=staff,
        json={"starts_at": tomorrow.isoformat(), "ends_at": (tomorrow - timedelta(hours=1)).isoformat()},
    )
    assert _error(backwards, 422)["detail"]["field"] == "ends_at"
    sw.session.expire_all()
    assert sw.session.scalar(select(func.count()).select_from(Slot)) == 0
    made = client.post(
        f"{API}/listings/{listing_id}/slots",
        headers=staff,
        json={
            "starts_at": tomorrow.isoformat(),
            "ends_at": (tomorrow + timedelta(hours=2)).isoformat(),
            "capacity": 2,
        },
    )
    assert made.status_code == 201 and made.json()["free"] == 2
    weekly = client.post(
        f"{API}/listings/{listing_id}/slots/weekly",
        headers=staff,
        json={
            "weekdays": [6, 7],
            "start_time": "14:00",
            "end_time": "16:00",
            "from_date": "2026-11-02",
            "until_date": "2026-11-15",
        },
    )
    assert len(weekly.json()["items"]) == 4
    slots = client.get(f"{API}/listings/{listing_id}/slots", headers=_auth(sw, "res1")).json()["items"]
    assert len(slots) == 5
    _error(
        client.post(
            f"{API}/listings/{listing_id}/slots",
            headers=_auth(sw, "fix-admin"),
            json={"starts_at": tomorrow.isoformat(), "ends_at": (tomorrow + timedelta(hours=2)).isoformat()},
        ),
        403,
    )


def test_another_providers_staff_cannot_edit_your_listing(client: Any, sw: ServicesWorld) -> None:
    listing_id = _published(client, sw)
    error = _error(
        client.patch(
            f"{API}/listings/{listing_id}", headers=_auth(sw, "fix-admin"), json={"title_zh": "抢走"}
        ),
        403,
    )
    assert error["type"] == "forbidden"
    _error(client.post(f"{API}/listings/{listing_id}/withdraw", headers=_auth(sw, "farm-admin")), 403)
    assert (
        client.get(f"{API}/listings/{listing_id}", headers=_auth(sw, "res1")).json()["title_zh"] == "日常保洁"
    )


def test_stock_batches_through_the_api(client: Any, sw: ServicesWorld) -> None:
    farm = _auth(sw, "farm-admin")
    made = client.post(
        f"{API}/listings",
        headers=farm,
        json={
            "title_zh": "有机蔬菜箱",
            "category": "fresh_food",
            "process": "instant_booking",
            "availability": "stock",
            "price_rules": {"unit": "box", "unit_fen": 8800},
        },
    )
    listing_id = made.json()["id"]
    batch = client.post(
        f"{API}/listings/{listing_id}/batches", headers=farm, json={"quantity": 30, "label": "第1批"}
    )
    assert batch.status_code == 201 and batch.json()["remaining"] == 30
    error = _error(
        client.post(f"{API}/listings/{listing_id}/batches", headers=farm, json={"quantity": 0}), 422
    )
    assert error["detail"]["field"] == "quantity"
    assert len(client.get(f"{API}/listings/{listing_id}/batches", headers=farm).json()["items"]) == 1


def test_search_without_a_building_is_a_clear_error(client: Any, sw: ServicesWorld) -> None:
    error = _error(client.get(f"{API}/listings", headers=_auth(sw, "op-admin")), 422)
    assert error["detail"]["field"] == "building"


def test_nul_characters_in_text_and_search_are_handled_without_a_server_error(
    client: Any, sw: ServicesWorld
) -> None:
    pid = sw.providers["clean"].id
    error = _error(
        client.patch(f"{API}/providers/{pid}", headers=_auth(sw, "clean-admin"), json={"name_zh": "a\x00b"}),
        422,
    )
    assert error["detail"]["field"] == "name_zh"
    assert (
        client.get(f"{API}/listings", headers=_auth(sw, "res1"), params={"q": "保\x00洁"}).status_code == 200
    )
    _error(client.put(f"{API}/categories/bad%00code", headers=_auth(sw, "op-admin"), json={}), 404)
