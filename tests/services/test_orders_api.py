"""The JSON API of orders: booking (a client's price ignored), paying, actions, reviews, disputes,
waitlists and FHIR, with the hostile cases answered in the platform's error envelope."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from helpers import bearer
from services.orders_kit import cleaning, entries, fund, slot_in
from services.sworld import MONDAY, ServicesWorld
from zhishe.services.models import Slot, Transaction

SCOPES = ["services:read", "services:write"]


def _h(sw: ServicesWorld, who: str) -> dict[str, str]:
    return bearer(sw.session, sw.users[who], scopes=SCOPES)


def _booked(client: Any, sw: ServicesWorld, who: str = "res1") -> tuple[dict[str, Any], Slot]:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    reply = client.post(
        f"/api/v1/services/listings/{listing.id}/book",
        json={
            "slot_id": slot.id,
            "quantity": 2,
            "price_fen": 1,
            "commission_fen": 0,
            "options": {"price_fen": 1},
        },
        headers=_h(sw, who),
    )
    assert reply.status_code == 201, reply.text
    return reply.json(), slot


def test_booking_ignores_a_client_price_and_answers_the_server_price(client: Any, sw: ServicesWorld) -> None:
    order, _ = _booked(client, sw)
    assert order["price_fen"] == 10_000 and order["state"] == "pending_payment"
    assert order["fhir_status"] == "pending"
    assert datetime.fromisoformat(order["timer_at"]) == MONDAY + timedelta(minutes=15)
    assert {a["transition"] for a in order["available"]} == {"pay", "cancel"}
    assert order["events"][0]["transition"] == "start"


def test_a_negative_quantity_is_a_422_naming_the_field_and_nothing_is_written(
    client: Any, sw: ServicesWorld
) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    reply = client.post(
        f"/api/v1/services/listings/{listing.id}/book",
        json={"slot_id": slot.id, "quantity": -2},
        headers=_h(sw, "res1"),
    )
    assert reply.status_code == 422
    body = reply.json()
    assert body["error"]["detail"]["field"] == "quantity" and body["request_id"]
    sw.session.expire_all()
    assert sw.session.query(Transaction).count() == 0 and sw.session.get(Slot, slot.id).booked == 0  # type: ignore[union-attr]


def test_pay_deliver_review_and_fhir_through_the_api(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    order, slot = _booked(client, sw)
    oid = order["id"]
    res, staff = _h(sw, "res1"), _h(sw, "clean-staff")
    paid = client.post(
        f"/api/v1/services/orders/{oid}/pay", json={"method": "wallet", "amount_fen": 1}, headers=res
    )
    assert paid.status_code == 200 and paid.json()["state"] == "booked"
    assert paid.json()["cancellation_fee_fen"] == 0
    mine = client.get("/api/v1/services/orders", headers=res).json()
    assert [o["id"] for o in mine["items"]] == [oid]
    queue = client.get("/api/v1/services/orders?as=provider", headers=staff).json()
    assert [o["id"] for o in queue["items"]] == [oid]
    delivered = client.post(f"/api/v1/services/orders/{oid}/actions/deliver", headers=staff)
    assert delivered.status_code == 200 and delivered.json()["state"] == "delivered"
    first = client.post(
        f"/api/v1/services/orders/{oid}/reviews", json={"rating": 5, "text": "干净"}, headers=res
    )
    assert first.status_code == 201 and first.json()["published"] is False
    assert client.get(f"/api/v1/services/orders/{oid}/reviews").json() == []
    client.post(f"/api/v1/services/orders/{oid}/reviews", json={"rating": 4}, headers=staff)
    assert len(client.get(f"/api/v1/services/orders/{oid}/reviews").json()) == 2
    fhir = client.get(f"/api/v1/services/orders/{oid}/fhir", headers=res)
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    resource = fhir.json()
    assert resource["resourceType"] == "Appointment" and resource["status"] == "fulfilled"
    assert datetime.fromisoformat(resource["start"]) == slot.starts_at and len(resource["participant"]) == 2


def test_someone_elses_order_is_404_and_a_wrong_step_is_409(client: Any, sw: ServicesWorld) -> None:
    order, _ = _booked(client, sw)
    oid = order["id"]
    assert client.get(f"/api/v1/services/orders/{oid}", headers=_h(sw, "res2")).status_code == 404
    assert (
        client.post(f"/api/v1/services/orders/{oid}/actions/cancel", headers=_h(sw, "res2")).status_code
        == 404
    )
    wrong = client.post(f"/api/v1/services/orders/{oid}/actions/deliver", headers=_h(sw, "clean-admin"))
    assert wrong.status_code == 409 and wrong.json()["error"]["type"] == "conflict"
    assert "cannot deliver an order that is pending_payment" in wrong.json()["error"]["message"]
    other = client.post(f"/api/v1/services/orders/{oid}/actions/accept", headers=_h(sw, "res1"))
    assert other.status_code == 409


def test_a_full_slot_offers_the_waitlist_which_a_resident_joins(client: Any, sw: ServicesWorld) -> None:
    order, slot = _booked(client, sw)
    full = client.post(
        f"/api/v1/services/listings/{order['listing_id']}/book",
        json={"slot_id": slot.id, "quantity": 2},
        headers=_h(sw, "res2"),
    )
    assert full.status_code == 409 and full.json()["error"]["detail"]["waitlist"].endswith(
        f"/slots/{slot.id}/waitlist"
    )
    joined = client.post(
        f"/api/v1/services/slots/{slot.id}/waitlist", json={"quantity": 2}, headers=_h(sw, "res2")
    )
    assert joined.status_code == 201 and joined.json()["state"] == "waiting"


def test_disputes_are_opened_listed_and_resolved(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    order, _ = _booked(client, sw)
    oid = order["id"]
    client.post(f"/api/v1/services/orders/{oid}/pay", json={"method": "wallet"}, headers=_h(sw, "res1"))
    client.post(f"/api/v1/services/orders/{oid}/actions/deliver", headers=_h(sw, "clean-staff"))
    opened = client.post(
        f"/api/v1/services/orders/{oid}/disputes",
        json={"reason": "迟到", "claim_fen": 2000},
        headers=_h(sw, "res1"),
    )
    assert opened.status_code == 201
    op = _h(sw, "op-steward")
    queue = client.get("/api/v1/services/disputes", headers=op).json()
    assert [d["id"] for d in queue["items"]] == [opened.json()["id"]]
    assert client.get("/api/v1/services/disputes", headers=_h(sw, "res1")).status_code == 403
    before = entries(sw)
    too_much = client.post(
        f"/api/v1/services/disputes/{opened.json()['id']}/resolve",
        json={"award_fen": 99_999, "resolution": "x"},
        headers=op,
    )
    assert too_much.status_code == 422 and too_much.json()["error"]["detail"]["field"] == "award_fen"
    assert entries(sw) == before
    done = client.post(
        f"/api/v1/services/disputes/{opened.json()['id']}/resolve",
        json={"award_fen": 2000, "resolution": "退一部分"},
        headers=op,
    )
    assert done.status_code == 200 and done.json()["state"] == "resolved"


def test_a_quote_is_sent_with_params_through_the_action_route(client: Any, sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["fix"], "repair", "quote_repair", availability="none")
    booked = client.post(
        f"/api/v1/services/listings/{listing.id}/book", json={}, headers=_h(sw, "res1")
    ).json()
    quoted = client.post(
        f"/api/v1/services/orders/{booked['id']}/actions/quote",
        json={"lines": [{"label": "换阀门", "amount_fen": 15_000}]},
        headers=_h(sw, "fix-admin"),
    )
    assert quoted.status_code == 200 and quoted.json()["price_fen"] == 15_000
    bad = client.post(
        f"/api/v1/services/orders/{booked['id']}/actions/quote",
        json={"lines": [{"label": "x", "amount_fen": -5}]},
        headers=_h(sw, "fix-admin"),
    )
    assert bad.status_code == 422 and bad.json()["error"]["detail"]["field"] == "lines[0].amount_fen"
