"""The what-if panel: projections from the last three months' activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from finance.revenue_world import balanced, fund, transaction
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Invalid
from zhishe.finance import ledger, memberships, whatif


def activity(sw: ServicesWorld) -> None:
    """Aug-Oct 2026: housekeeping (15 %) and repairs (12 %), a promotion, two memberships."""
    clean = sw.listing(sw.providers["clean"], "housekeeping")
    fix = sw.listing(sw.providers["fix"], "repair")
    for days_back in (40, 70, 90):
        transaction(
            sw, clean, "res1", MONDAY - timedelta(days=days_back), captured_fen=20_000, commission_fen=3_000
        )
        transaction(
            sw, fix, "res2", MONDAY - timedelta(days=days_back), captured_fen=10_000, commission_fen=1_200
        )
    transaction(sw, clean, "res3", MONDAY, captured_fen=99_000, commission_fen=14_850)  # November: outside
    ledger.post(
        sw.session,
        kind="promotion",
        stream="marketplace",
        lines=[("Expenses:Promotions:NewUser", 3_000), ("Assets:Bank", -3_000)],
        at=MONDAY - timedelta(days=40),
    )
    plan = memberships.create_plan(
        session=sw.session, actor=sw.actor("op-admin"), code="gold", name_zh="金卡", annual_fee_fen=12_000
    )
    for who in ("res4", "res5"):
        fund(sw.session, sw.users[who].id, 12_000)
        with clock.frozen(MONDAY - timedelta(days=50)):
            memberships.buy(session=sw.session, actor=sw.actor(who), plan_id=plan.id)
    sw.session.commit()


def line(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(x for x in result["categories"] if x["category"] == code)


def test_doubling_a_commission_rate_doubles_that_categorys_projected_commission(sw: ServicesWorld) -> None:
    activity(sw)
    base = whatif.run(session=sw.session, actor=sw.actor("op-analyst"), what=whatif.WhatIf())
    assert base["window"] == ["2026-08", "2026-09", "2026-10"]
    assert line(base, "housekeeping")["projected_fen"] == 3_000 == line(base, "housekeeping")["baseline_fen"]
    doubled = whatif.project(sw.session, whatif.parse_params({"commission.housekeeping": "3000"}))
    assert line(doubled, "housekeeping")["projected_fen"] == 2 * line(base, "housekeeping")["projected_fen"]
    assert line(doubled, "repair")["projected_fen"] == line(base, "repair")["projected_fen"] == 1_200
    market = next(s for s in doubled["streams"] if s["stream"] == "marketplace")
    assert (market["baseline_fen"], market["projected_fen"]) == (4_200, 7_200)
    assert doubled["revenue"]["projected_fen"] - base["revenue"]["projected_fen"] == 3_000
    assert len(doubled["assumptions"]) == 5
    assert balanced(sw.session)


def test_membership_price_and_subsidy_level_change_the_projection(sw: ServicesWorld) -> None:
    activity(sw)
    result = whatif.project(
        sw.session, whatif.parse_params({"membership_fee_fen": "18000", "subsidy_bps": "5000"})
    )
    membership = next(s for s in result["streams"] if s["stream"] == "membership")
    assert (membership["baseline_fen"], membership["projected_fen"]) == (8_000, 12_000)  # 2 sold in 3 months
    assert result["promotions"] == {"baseline_fen": 1_000, "projected_fen": 500}
    assert result["margin"]["projected_fen"] - result["margin"]["baseline_fen"] == 4_000 + 500


@pytest.mark.parametrize(
    "params",
    [
        {"commission.housekeeping": "-1"},
        {"commission.housekeeping": "1.5"},
        {"commission.nosuch": "100"},
        {"subsidy_bps": "x"},
        {"ending": "2026-1"},
    ],
)
def test_bad_parameters_are_refused_naming_them(sw: ServicesWorld, params: dict[str, str]) -> None:
    with pytest.raises(Invalid) as refused:
        whatif.project(sw.session, whatif.parse_params(params))
    assert refused.value.detail["field"] == next(iter(params))
