"""The pages of group buys, membership boxes and neighbour rentals through the real app, logged in
through the real form: joining a group and watching it form, subscribing to a box, the provider's
delivery button, the refund shown before a cancel, and a rental's handover, damage report and
settlement, with refusals shown on the page and nothing posted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import csrf_of, login
from services.specialkit import assert_balanced, entries, fund, neighbour
from services.sworld import ServicesWorld
from zhishe.finance import ledger
from zhishe.services.models import BoxDelivery, GroupBuy, Transaction

START_FEN = 300_000


@pytest.fixture()
def kit(sw: ServicesWorld, world: Any) -> dict[str, Any]:
    """A group buy, a box and a neighbour's parking space; res1..res3 hold ¥3,000."""
    owner = neighbour(sw, world)
    fund(sw, ("res1", "res2", "res3"), START_FEN)
    farm = sw.providers["farm"]
    return {
        "group": sw.listing(
            farm,
            "group_buy",
            "group_buy",
            title_zh="脐橙拼团",
            title_en="Orange group buy",
            price_rules={"unit": "unit", "unit_fen": 2_500, "min_units": 1, "surcharges": []},
            settings={"group_min": 2, "group_hours": 24},
            availability="none",
        ),
        "box": sw.listing(
            farm,
            "fresh_food",
            "membership_box",
            title_zh="蔬菜周箱",
            title_en="Vegetable box",
            price_rules={"unit": "box", "unit_fen": 1_000, "min_units": 1, "surcharges": []},
            settings={
                "plans": {
                    "month": {"periods": 3, "every_days": 7},
                    "year": {"periods": 52, "every_days": 7, "discount_bps": 1000},
                }
            },
            availability="none",
        ),
        "parking": sw.listing(
            owner,
            "rental",
            "neighbour_rental",
            title_zh="车位B-12",
            title_en="Parking B-12",
            price_rules={"unit": "day", "unit_fen": 5_000, "min_units": 1, "surcharges": []},
            settings={"deposit_fen": 50_000},
            availability="none",
        ),
    }


def _as(client: Any, name: str) -> None:
    assert login(client, name).status_code == 303
    client.cookies.set("zhishe_lang", "en")


def _post(client: Any, page: str, action: str, **fields: Any) -> Any:
    data = {"csrf_token": csrf_of(client, page), **fields}
    return client.post(action, data=data, follow_redirects=False)


def test_residents_join_a_group_on_its_page_and_see_it_form(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    page = f"/services/group-buys/{kit['group'].id}"
    _as(client, "res1")
    first = client.get(page)
    assert first.status_code == 200 and 'id="no-group"' in first.text and 'id="join"' in first.text
    joined = _post(client, page, f"{page}/join", quantity="1", price_fen="1")
    assert joined.status_code == 303
    group_page = joined.headers["location"]
    shown = client.get(group_page).text
    assert "1 of 2 members" in shown and 'id="my-place"' in shown and 'id="join"' not in shown
    assert "23 h" in shown or "24 h" in shown
    _as(client, "res2")
    assert _post(client, page, f"{page}/join", quantity="1").status_code == 303
    shown = client.get(group_page).text
    assert "2 of 2 members" in shown and "every member has been charged" in shown
    assert sw.session.scalar(select(GroupBuy.state)) == "formed"
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 2_500
    assert_balanced(sw)


def test_a_refused_join_is_shown_on_the_page_and_nothing_is_posted(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    page = f"/services/group-buys/{kit['group'].id}"
    _as(client, "res1")
    before = entries(sw)
    refused = _post(client, page, f"{page}/join", quantity="-1")
    assert refused.status_code == 422 and 'id="form-error"' in refused.text and "quantity" in refused.text
    assert entries(sw) == before
    assert client.post(f"{page}/join", data={"quantity": "1"}).status_code == 403  # no CSRF token
    assert sw.session.scalar(select(func.count()).select_from(Transaction)) == 0
    assert_balanced(sw)


def test_a_box_is_subscribed_delivered_and_cancelled_with_the_refund_shown_first(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    plans = f"/services/box-plans/{kit['box'].id}"
    _as(client, "res1")
    shown = client.get(plans).text
    assert "¥30.00" in shown and "¥468.00" in shown  # 3 boxes; 52 boxes less 10 %
    made = _post(client, plans, plans, plan="month")
    assert made.status_code == 303
    box_page = made.headers["location"]
    order_id = int(re.findall(r"\d+", box_page)[0])
    assert "Pause deliveries" in client.get(box_page).text
    _as(client, "farm-admin")
    farm_view = client.get(box_page).text
    assert "Mark delivered" in farm_view and "Pause deliveries" not in farm_view
    first = sw.session.scalar(
        select(BoxDelivery.id).where(BoxDelivery.transaction_id == order_id).order_by(BoxDelivery.id)
    )
    done = _post(client, box_page, f"/services/deliveries/{first}/delivered", order=str(order_id))
    assert done.status_code == 303
    _as(client, "res1")
    confirm = client.get(f"{box_page}/cancel").text
    assert re.search(r'id="refund">¥20\.00<', confirm) and "Cancel and refund ¥20.00" in confirm
    assert _post(client, f"{box_page}/cancel", f"{box_page}/cancel").status_code == 303
    assert "Cancelled" in client.get(box_page).text or "cancelled" in client.get(box_page).text
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 1_000
    before = entries(sw)
    again = _post(client, box_page, f"{box_page}/pause")
    assert again.status_code == 409 and 'id="form-error"' in again.text
    assert entries(sw) == before
    assert_balanced(sw)


def test_a_rental_is_handed_over_disputed_and_settled_in_part_on_its_page(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    form = f"/services/rent/{kit['parking'].id}"
    _as(client, "res1")
    assert "¥500.00" in client.get(form).text
    made = _post(client, form, form, quantity="2")
    assert made.status_code == 303
    rental = made.headers["location"]
    assert "Confirm handover" not in client.get(rental).text
    _as(client, "wang")
    assert "Confirm handover" in client.get(rental).text
    assert _post(client, rental, f"{rental}/handover").status_code == 303
    claimed = _post(client, rental, f"{rental}/dispute", reason="地锁损坏", claim_yuan="200")
    assert claimed.status_code == 303
    assert "¥200.00" in client.get(rental).text
    _as(client, "op-dispatcher")
    before = entries(sw)
    too_much = _post(client, rental, f"{rental}/settle", keep_yuan="500.01")
    assert too_much.status_code == 422 and "keep_fen" in too_much.text
    not_money = _post(client, rental, f"{rental}/settle", keep_yuan="1e3")
    assert not_money.status_code == 422 and "keep_yuan" in not_money.text
    assert entries(sw) == before
    assert _post(client, rental, f"{rental}/settle", keep_yuan="150.5").status_code == 303
    assert -ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == START_FEN - 10_000 - 15_050
    assert_balanced(sw)


def test_another_resident_cannot_open_someone_elses_rental(
    client: Any, sw: ServicesWorld, kit: dict[str, Any]
) -> None:
    form = f"/services/rent/{kit['parking'].id}"
    _as(client, "res1")
    rental = _post(client, form, form, quantity="1").headers["location"]
    _as(client, "res2")
    assert client.get(rental).status_code == 404
    assert_balanced(sw)
