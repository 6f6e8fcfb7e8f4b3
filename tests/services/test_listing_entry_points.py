"""A listing's page leads each process to its own way in: a group buy to joining the group, a
membership box to choosing a plan, a rental to renting; slot bookings keep the booking form."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import login
from services.specialkit import neighbour
from services.sworld import ServicesWorld


@pytest.mark.parametrize(
    ("process", "category", "settings", "entry"),
    [
        ("group_buy", "group_buy", {"group_min": 3, "group_hours": 48}, "/services/group-buys/"),
        (
            "membership_box",
            "fresh_food",
            {"plans": {"month": {"periods": 4, "every_days": 7}}},
            "/services/box-plans/",
        ),
    ],
)
def test_the_listing_page_leads_to_the_process_entry_page(
    sw: ServicesWorld, client: Any, process: str, category: str, settings: dict[str, Any], entry: str
) -> None:
    listing = sw.listing(
        sw.providers["farm"],
        category,
        process,
        title_zh="有机蔬菜",
        price_rules={"unit": "box", "unit_fen": 3900, "min_units": 1, "surcharges": []},
        settings=settings,
        availability="none",
    )
    login(client, "res1")
    page = client.get(f"/services/listings/{listing.id}")
    assert page.status_code == 200
    assert f'href="{entry}{listing.id}"' in page.text and 'class="book stack"' not in page.text
    assert client.get(f"{entry}{listing.id}").status_code == 200


def test_a_rental_listing_leads_to_renting(sw: ServicesWorld, client: Any, world: Any) -> None:
    owner = neighbour(sw, world)
    listing = sw.listing(
        owner,
        "rental",
        "neighbour_rental",
        title_zh="地下车位出租",
        price_rules={"unit": "day", "unit_fen": 2000, "min_units": 1, "surcharges": []},
        settings={"deposit_fen": 50000},
        availability="none",
        cancellation_policy={},
    )
    login(client, "res1")
    page = client.get(f"/services/listings/{listing.id}")
    assert f'href="/services/rent/{listing.id}"' in page.text


def test_a_slot_listing_keeps_the_booking_form(sw: ServicesWorld, client: Any) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    login(client, "res1")
    page = client.get(f"/services/listings/{listing.id}")
    assert 'class="book stack"' in page.text and "/services/group-buys/" not in page.text
