"""The JSON API of group buys, membership boxes and neighbour rentals, through the real app: the
happy paths end to end, errors in the platform envelope naming the field, a client-sent price
ignored, and nothing posted when a request is refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from helpers import bearer
from services.specialkit import assert_balanced, entries, fund, neighbour
from services.sworld import ServicesWorld
from zhishe.finance import ledger
from zhishe.services.models import BoxDelivery, Listing

API = "/api/v1/services"
SCOPES = ["services:read", "services:write"]
START_FEN = 300_000


@pytest.fixture()
def kit(sw: ServicesWorld, world: Any) -> dict[str, Any]:
    """Three listings (a group buy, a box, a parking space of neighbour Wang), funded residents and
    their tokens."""
    owner = neighbour(sw, world)
    fund(sw, ("res1", "res2", "res3"), START_FEN)
    farm = sw.providers["farm"]
    group = sw.listing(
        farm,
        "group_buy",
        "group_buy",
        title_zh="脐橙拼团",
        price_rules={"unit": "unit", "unit_fen": 2_500, "min_units": 1, "surcharges": []},
        settings={"group_min": 3, "group_hours": 24},
        availability="none",
    )
    box = sw.listing(
        farm,
        "fresh_food",
        "membership_box",
        title_zh="蔬菜周箱",
        price_rules={"unit": "box", "unit_fen": 1_001, "min_units": 1, "surcharges": []},
        settings={"plans": {"month": {"periods": 3, "every_days": 7}}},
        availability="none",
    )
    parking = sw.listing(
        owner,
        "rental",
        "neighbour_rental",
        title_zh="车位B-12",
        price_rules={"unit": "day", "unit_fen": 5_000, "min_units": 1, "surcharges": []},
        settings={"deposit_fen": 50_000},
        availability="none",
    )
    tokens = {
        name: bearer(sw.session, sw.users[name], SCOPES)
        for name in ("res1", "res2", "res3", "farm-admin", "wang", "op-dispatcher")
    }
    return {"group": group, "box": box, "parking": parking, "tokens": tokens}


def test_three_residents_form_a_group_and_a_client_price_is_ignored(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    listing: Listing = kit["group"]
    url = f"{API}/listings/{listing.id}/group/join"
    first = client.post(
        url,
        json={"method": "wallet", "price_fen": 1, "options": {"price_fen": 1}},
        headers=kit["tokens"]["res1"],
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["order"]["price_fen"] == 2_500 and body["order"]["state"] == "joined"
    assert body["group"]["members"] == 1 and body["group"]["missing"] == 2
    for name in ("res2", "res3"):
        assert client.post(url, json={"method": "wallet"}, headers=kit["tokens"][name]).status_code == 201
    group = client.get(f"{API}/groups/{body['group']['id']}", headers=kit["tokens"]["res1"]).json()
    assert group["state"] == "formed" and group["members"] == 3 and group["my_order_state"] == "formed"
    current = client.get(f"{API}/listings/{listing.id}/group", headers=kit["tokens"]["res1"]).json()
    assert current["group"]["id"] == group["id"]
    assert_balanced(sw)


def test_joining_twice_answers_409_and_posts_nothing(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    url = f"{API}/listings/{kit['group'].id}/group/join"
    assert client.post(url, json={"method": "wallet"}, headers=kit["tokens"]["res1"]).status_code == 201
    before = entries(sw)
    again = client.post(url, json={"method": "wallet"}, headers=kit["tokens"]["res1"])
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"
    assert entries(sw) == before
    assert_balanced(sw)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "wallet", "quantity": -3}, "quantity"),
        ({"method": "pay_at_service"}, "method"),
        ({"method": "wallet", "options": ["x"]}, "options"),
    ],
)
def test_bad_joins_answer_422_naming_the_field(
    client: Any, sw: ServicesWorld, kit: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    before = entries(sw)
    response = client.post(
        f"{API}/listings/{kit['group'].id}/group/join", json=body, headers=kit["tokens"]["res1"]
    )
    assert response.status_code == 422
    envelope = response.json()
    assert envelope["error"]["type"] == "invalid" and envelope["error"]["detail"]["field"] == field
    assert "request_id" in envelope
    assert entries(sw) == before
    assert_balanced(sw)


def test_a_box_is_subscribed_delivered_and_cancelled_with_a_pro_rata_refund(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    res1 = kit["tokens"]["res1"]
    made = client.post(
        f"{API}/listings/{kit['box'].id}/box/subscribe", json={"plan": "month", "price_fen": 3}, headers=res1
    )
    assert made.status_code == 201, made.text
    box = made.json()["box"]
    assert box["price_fen"] == 3_003 and [d["value_fen"] for d in box["deliveries"]] == [1_001, 1_001, 1_001]
    order_id = box["id"]
    first = box["deliveries"][0]["id"]
    refused = client.post(f"{API}/deliveries/{first}/delivered", headers=res1)
    assert refused.status_code in (403, 404)
    done = client.post(f"{API}/deliveries/{first}/delivered", headers=kit["tokens"]["farm-admin"])
    assert done.status_code == 200, done.text
    assert done.json()["box"]["delivered_fen"] == 1_001
    assert (
        client.post(f"{API}/orders/{order_id}/box/pause", headers=res1).json()["order"]["state"] == "paused"
    )
    assert (
        client.post(f"{API}/orders/{order_id}/box/resume", headers=res1).json()["order"]["state"] == "active"
    )
    preview = client.get(f"{API}/orders/{order_id}/box", headers=res1).json()["box"]
    assert preview["refund_if_cancelled_fen"] == 2_002
    cancelled = client.post(f"{API}/orders/{order_id}/box/cancel", headers=res1).json()
    assert cancelled["refunded_fen"] == 2_002 and cancelled["order"]["state"] == "cancelled"
    assert cancelled["box"]["delivered_fen"] + cancelled["refunded_fen"] == 3_003
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 1_001
    before = entries(sw)
    paused = client.post(f"{API}/orders/{order_id}/box/pause", headers=res1)
    assert paused.status_code == 409 and entries(sw) == before
    assert_balanced(sw)


def test_a_rental_dispute_is_settled_by_the_operator_in_part(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    rented = client.post(
        f"{API}/listings/{kit['parking'].id}/rent",
        json={"quantity": 2, "deposit_fen": 1},
        headers=kit["tokens"]["res1"],
    )
    assert rented.status_code == 201, rented.text
    order = rented.json()
    assert order["price_fen"] == 10_000 and order["deposit_fen"] == 50_000
    wang = kit["tokens"]["wang"]
    base = f"{API}/orders/{order['id']}/rental"
    assert client.post(f"{base}/handover", headers=wang).json()["state"] == "in_use"
    claim = client.post(f"{base}/dispute", json={"reason": "地锁损坏", "claim_fen": 20_000}, headers=wang)
    assert claim.status_code == 201 and claim.json()["claim_fen"] == 20_000
    op = kit["tokens"]["op-dispatcher"]
    before = entries(sw)
    too_much = client.post(f"{base}/settle", json={"keep_fen": 50_001}, headers=op)
    assert too_much.status_code == 422 and too_much.json()["error"]["detail"]["field"] == "keep_fen"
    assert client.post(f"{base}/settle", json={"keep_fen": 1}, headers=wang).status_code == 403
    assert entries(sw) == before
    settled = client.post(f"{base}/settle", json={"keep_fen": 15_000}, headers=op)
    assert settled.status_code == 200 and settled.json()["state"] == "settled"
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 10_000 - 15_000
    assert_balanced(sw)


def test_a_clean_return_through_the_api_returns_the_whole_deposit(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    order = client.post(
        f"{API}/listings/{kit['parking'].id}/rent", json={"quantity": 1}, headers=kit["tokens"]["res1"]
    ).json()
    wang = kit["tokens"]["wang"]
    client.post(f"{API}/orders/{order['id']}/rental/handover", headers=wang)
    returned = client.post(f"{API}/orders/{order['id']}/rental/return", headers=wang)
    assert returned.json()["state"] == "returned" and returned.json()["deposit_fen"] == 0
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 5_000
    assert_balanced(sw)


def test_anonymous_callers_are_refused(client: Any, sw: ServicesWorld, kit: dict[str, Any]) -> None:
    assert client.post(f"{API}/listings/{kit['group'].id}/group/join", json={}).status_code == 401
    assert (
        client.post(f"{API}/listings/{kit['box'].id}/box/subscribe", json={"plan": "month"}).status_code
        == 401
    )
    delivery = sw.session.scalar(select(BoxDelivery.id).limit(1))
    assert delivery is None
    assert_balanced(sw)
