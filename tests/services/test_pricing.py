"""Prices are computed on the server from the listing's rules: base, surcharges by option, weekend
and evening, the member discount, and the commission; bad quantities and extras are refused by name,
and whatever price a client sends is ignored."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sworld import MONDAY, SHANGHAI, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Invalid
from zhishe.finance import money
from zhishe.finance.models import Membership, MembershipPlan
from zhishe.services import pricing
from zhishe.services.models import Listing

SATURDAY_10 = datetime(2026, 11, 7, 10, 0, tzinfo=SHANGHAI)
TUESDAY_19 = datetime(2026, 11, 3, 19, 0, tzinfo=SHANGHAI)

RULES: dict[str, Any] = {
    "unit": "hour",
    "unit_fen": 5000,
    "min_units": 2,
    "surcharges": [
        {
            "code": "weekend",
            "name_zh": "周末",
            "name_en": "Weekend",
            "kind": "fixed",
            "amount": 2000,
            "when": "weekend",
        },
        {
            "code": "evening",
            "name_zh": "夜间",
            "name_en": "Evening",
            "kind": "percent",
            "amount": 2500,
            "when": "evening",
        },
        {
            "code": "tools",
            "name_zh": "自带工具",
            "name_en": "Tools",
            "kind": "fixed",
            "amount": 1500,
            "when": "option",
        },
        {
            "code": "travel",
            "name_zh": "上门费",
            "name_en": "Travel",
            "kind": "fixed",
            "amount": 500,
            "when": "always",
        },
    ],
}


def _listing(sw: ServicesWorld, rules: dict[str, Any] | None = None) -> Listing:
    return sw.listing(sw.providers["clean"], "housekeeping", price_rules=rules or RULES)


def _quote(sw: ServicesWorld, listing: Listing, quantity: object = 2, **options: Any) -> pricing.Quote:
    return pricing.quote(
        sw.session, listing=listing, resident_user_id=sw.users["res1"].id, quantity=quantity, options=options
    )


def test_base_is_unit_price_times_quantity_but_never_below_the_minimum(sw: ServicesWorld) -> None:
    listing = _listing(sw)
    three = _quote(sw, listing, 3, starts_at=MONDAY.isoformat())
    one = _quote(sw, listing, 1, starts_at=MONDAY.isoformat())
    assert three.lines[0][3] == 15000 and three.billed_units == 3
    assert one.lines[0][3] == 10000 and one.billed_units == 2  # at least 2 hours are billed
    assert three.price_fen == 15000 + 500  # the "always" travel fee
    assert [line[0] for line in three.lines] == ["base", "travel"]


def test_weekend_and_evening_surcharges_follow_the_local_start_time(sw: ServicesWorld) -> None:
    listing = _listing(sw)
    saturday = _quote(sw, listing, 2, starts_at=SATURDAY_10.isoformat())
    evening = _quote(sw, listing, 2, starts_at=TUESDAY_19.isoformat())
    utc_evening = _quote(sw, listing, 2, starts_at="2026-11-03T11:00:00+00:00")  # 19:00 in Shanghai
    assert dict((c, a) for c, _, _, a in saturday.lines)["weekend"] == 2000
    assert "evening" not in {line[0] for line in saturday.lines}
    assert dict((c, a) for c, _, _, a in evening.lines)["evening"] == 2500  # 25 % of the 10,000 base
    assert utc_evening.price_fen == evening.price_fen


def test_the_time_given_as_at_is_used_when_no_start_is_sent(sw: ServicesWorld) -> None:
    quote = pricing.quote(
        sw.session, listing=_listing(sw), resident_user_id=None, quantity=2, options={}, at=SATURDAY_10
    )
    assert "weekend" in {line[0] for line in quote.lines}


def test_option_surcharges_apply_only_when_chosen_and_unknown_extras_are_named(sw: ServicesWorld) -> None:
    listing = _listing(sw)
    plain = _quote(sw, listing, starts_at=MONDAY.isoformat())
    tools = _quote(sw, listing, extras=["tools"], starts_at=MONDAY.isoformat())
    assert tools.price_fen - plain.price_fen == 1500
    assert tools.extras == ["tools"]
    with pytest.raises(Invalid) as caught:
        _quote(sw, listing, extras=["tools", "gold_plating", "weekend"])
    assert caught.value.detail["field"] == "extras"
    assert caught.value.detail["unknown"] == ["gold_plating", "weekend"]


@pytest.mark.parametrize("bad", [0, -1, -5, 1.5, 2.0, True, False, "abc", "2.5", None, 1001, [2]])
def test_bad_quantities_are_refused_naming_quantity(sw: ServicesWorld, bad: object) -> None:
    with pytest.raises(Invalid) as caught:
        _quote(sw, _listing(sw), bad)
    assert caught.value.detail["field"] == "quantity"


def test_a_client_sent_price_fee_or_commission_is_ignored(sw: ServicesWorld) -> None:
    listing = _listing(sw)
    honest = _quote(sw, listing, 3, starts_at=MONDAY.isoformat())
    hostile = _quote(
        sw,
        listing,
        3,
        starts_at=MONDAY.isoformat(),
        price=1,
        price_fen=1,
        fee=0,
        commission=0,
        commission_bps=0,
    )
    assert hostile.as_json() == honest.as_json()
    assert hostile.price_fen == 15500
    assert pricing.clean_options({"price_fen": 1, "Fee": 2, "extras": ["tools"]}) == {"extras": ["tools"]}


def test_commission_uses_the_category_default_or_the_providers_contract(sw: ServicesWorld) -> None:
    listing = _listing(sw, {"unit": "visit", "unit_fen": 9999, "min_units": 1, "surcharges": []})
    default = _quote(sw, listing, 1)
    assert (default.commission_bps, default.commission_fen) == (1500, 1500)  # 1499.85 rounds to 1500
    sw.providers["clean"].commission_overrides = {"housekeeping": 500}
    sw.session.commit()
    contract = _quote(sw, listing, 1)
    assert (contract.commission_bps, contract.commission_fen) == (500, 500)  # 499.95 -> 500


def test_rounding_is_half_to_even_on_integers() -> None:
    assert money.bps_of(5, 5000) == 2  # 2.5 -> 2
    assert money.bps_of(15, 5000) == 8  # 7.5 -> 8
    assert money.bps_of(10001, 1) == 1  # 1.0001 -> 1
    assert money.bps_of(0, 10_000) == 0


def test_a_members_discount_is_a_line_and_lowers_price_and_commission(sw: ServicesWorld) -> None:
    plan = MembershipPlan(
        code="gold", name_zh="金卡", name_en="Gold", annual_fee_fen=19900, discount_bps=1000
    )
    sw.session.add(plan)
    sw.session.flush()
    sw.session.add(
        Membership(
            plan_id=plan.id,
            user_id=sw.users["res1"].id,
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            fee_fen=19900,
            created_at=clock.now(),
        )
    )
    sw.session.commit()
    listing = _listing(sw)
    member = _quote(sw, listing, 2, starts_at=MONDAY.isoformat())
    other = pricing.quote(
        sw.session,
        listing=listing,
        resident_user_id=sw.users["res2"].id,
        quantity=2,
        options={"starts_at": MONDAY.isoformat()},
    )
    assert other.discount_fen == 0 and other.price_fen == 10500
    assert member.discount_fen == 1050
    assert member.lines[-1] == ("member_discount", "会员折扣（金卡）", "Member discount (Gold)", -1050)
    assert member.price_fen == 9450 and member.commission_fen == money.bps_of(9450, 1500)
    assert member.as_json()["membership_plan"] == "gold"


def test_a_membership_box_prices_the_period_chosen(sw: ServicesWorld) -> None:
    listing = sw.listing(
        sw.providers["farm"],
        "fresh_food",
        "membership_box",
        price_rules={"unit": "box", "unit_fen": 8800, "min_units": 1, "surcharges": []},
        settings={"periods": {"month": 30000, "year": 300000}},
        availability="none",
    )
    assert _quote(sw, listing, 1, period="year").price_fen == 300000
    assert _quote(sw, listing, 1).price_fen == 30000  # the first period by default
    with pytest.raises(Invalid) as caught:
        _quote(sw, listing, 1, period="decade")
    assert caught.value.detail["field"] == "period"


def test_a_garbled_start_time_is_refused_by_name(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid) as caught:
        _quote(sw, _listing(sw), 2, starts_at="next tuesday")
    assert caught.value.detail["field"] == "starts_at"


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"unit": "week", "unit_fen": 1}, "price_rules.unit"),
        ({"unit": "hour", "unit_fen": -1}, "price_rules.unit_fen"),
        ({"unit": "hour", "unit_fen": 1.5}, "price_rules.unit_fen"),
        ({"unit": "hour", "unit_fen": 100, "min_units": 0}, "price_rules.min_units"),
        (
            {
                "unit": "hour",
                "unit_fen": 100,
                "surcharges": [{"code": "x", "kind": "percent", "amount": 10001}],
            },
            "price_rules.surcharges[0].amount",
        ),
        (
            {
                "unit": "hour",
                "unit_fen": 100,
                "surcharges": [{"code": "x", "amount": 1, "when": "sometimes"}],
            },
            "price_rules.surcharges[0].when",
        ),
        (
            {
                "unit": "hour",
                "unit_fen": 100,
                "surcharges": [{"code": "x", "amount": 1}, {"code": "x", "amount": 2}],
            },
            "price_rules.surcharges[1].code",
        ),
        ("not rules", "price_rules"),
    ],
)
def test_price_rules_are_checked_field_by_field(rules: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        pricing.check_price_rules(rules)
    assert caught.value.detail["field"] == field


_surcharge = st.fixed_dictionaries(
    {
        "code": st.sampled_from(["a", "b", "c", "d", "e"]),
        "kind": st.sampled_from(["fixed", "percent"]),
        "amount": st.integers(0, 10_000),
        "when": st.sampled_from(["always", "option", "weekend", "evening"]),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    unit_fen=st.integers(0, 1_000_000),
    min_units=st.integers(1, 10),
    surcharges=st.lists(_surcharge, max_size=5, unique_by=lambda s: s["code"]),
    quantity=st.integers(1, 1000),
    start_hours=st.integers(0, 24 * 7),
    pick=st.sets(st.sampled_from(["a", "b", "c", "d", "e"])),
    override=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_any_quote_sums_its_lines_is_never_negative_and_commission_never_exceeds_price(
    sw: ServicesWorld,
    unit_fen: int,
    min_units: int,
    surcharges: list[dict[str, Any]],
    quantity: int,
    start_hours: int,
    pick: set[str],
    override: int | None,
) -> None:
    provider = sw.providers["clean"]
    provider.commission_overrides = {} if override is None else {"housekeeping": override}
    rules = {"unit": "hour", "unit_fen": unit_fen, "min_units": min_units, "surcharges": surcharges}
    listing = Listing(
        id=10**6,
        provider_id=provider.id,
        category_code="housekeeping",
        process="instant_booking",
        price_rules=rules,
        settings={},
    )
    extras = sorted(
        code for code in pick if any(s["code"] == code and s["when"] == "option" for s in surcharges)
    )
    starts = MONDAY + timedelta(hours=start_hours)
    quote = pricing.quote(
        sw.session,
        listing=listing,
        resident_user_id=None,
        quantity=quantity,
        options={"extras": extras, "starts_at": starts.isoformat(), "price_fen": -5},
    )
    assert quote.price_fen == sum(line[3] for line in quote.lines)
    assert quote.price_fen >= 0
    assert 0 <= quote.commission_fen <= quote.price_fen
    assert quote.lines[0][3] == unit_fen * max(quantity, min_units)
