"""The profit model and the marketplace figures, checked against a small hand-computed month."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finance.revenue_world import balanced, fund, transaction
from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Forbidden, Invalid
from zhishe.finance import costs, ledger, memberships, profit
from zhishe.services import stats


def november(sw: ServicesWorld) -> None:
    """November 2026: four bookings by three residents, a membership, a cost, a promotion."""
    clean = sw.listing(sw.providers["clean"], "housekeeping")
    fix = sw.listing(sw.providers["fix"], "repair", title_zh="水管维修")
    transaction(sw, clean, "res1", MONDAY, captured_fen=10_000, commission_fen=1_500, subsidy_fen=2_000)
    transaction(
        sw,
        clean,
        "res1",
        MONDAY + timedelta(days=3),
        captured_fen=20_000,
        commission_fen=3_000,
        distance_m=3_500,
    )
    transaction(
        sw, fix, "res2", MONDAY + timedelta(days=5), captured_fen=5_000, commission_fen=600, distance_m=None
    )
    transaction(sw, fix, "res3", MONDAY + timedelta(days=6), state="cancelled_by_resident")
    transaction(
        sw, clean, "res4", MONDAY - timedelta(days=10), captured_fen=7_000, commission_fen=1_050
    )  # October
    ledger.post(
        sw.session,
        kind="promotion",
        stream="marketplace",
        lines=[("Expenses:Promotions:NewUser", 800), ("Assets:Bank", -800)],
    )
    plan = memberships.create_plan(
        session=sw.session, actor=sw.actor("op-admin"), code="gold", name_zh="金卡", annual_fee_fen=12_000
    )
    fund(sw.session, sw.users["res5"].id, 12_000)
    memberships.buy(session=sw.session, actor=sw.actor("res5"), plan_id=plan.id)
    costs.create(
        session=sw.session,
        actor=sw.actor("op-admin"),
        month="2026-11",
        stream="marketplace",
        label="客服",
        amount_fen=2_000,
    )
    costs.create(
        session=sw.session,
        actor=sw.actor("op-admin"),
        month="2026-11",
        stream="other",
        label="房租",
        amount_fen=9_000,
    )
    sw.session.commit()


def test_the_marketplace_figures_of_a_month_match_the_hand_count(sw: ServicesWorld) -> None:
    november(sw)
    nov = stats.monthly(sw.session, "2026-11", "2026-11")["2026-11"]
    assert (nov.bookings, nov.gmv_fen, nov.commission_fen, nov.subsidy_fen) == (4, 35_000, 5_100, 2_000)
    assert (nov.active_residents, nov.active_providers) == (3, 2)
    assert nov.bookings_per_resident == pytest.approx(1.3333)
    assert nov.repeat_rate == pytest.approx(0.3333)  # res1 of res1, res2, res3
    assert nov.within_3km_share == pytest.approx(0.6667)  # 2 of the 3 with a known distance
    assert nov.cancellation_rate == 0.25 and nov.no_show_rate == 0.0


def test_the_profit_rows_of_a_month_match_the_hand_computation(sw: ServicesWorld) -> None:
    november(sw)
    model = profit.report(session=sw.session, actor=sw.actor("op-analyst"), first="2026-10", last="2026-11")
    assert model.months == ["2026-10", "2026-11"]
    market = model.row("2026-11", "marketplace")
    assert market == {
        "month": "2026-11",
        "stream": "marketplace",
        "gmv_fen": 35_000,
        "revenue_fen": 5_100,
        "costs_fen": 2_000 + 800,
        "margin_fen": 5_100 - 2_800,
        "take_rate_bps": 1457,  # 5100 / 35000 = 14.571 %
    }
    assert model.row("2026-11", "membership")["revenue_fen"] == 12_000
    assert model.row("2026-11", "membership")["take_rate_bps"] is None
    assert model.row("2026-11", "other")["margin_fen"] == -9_000
    assert model.row("2026-10", "marketplace")["revenue_fen"] == 1_050
    total = next(t for t in model.totals if t["month"] == "2026-11")
    assert (total["revenue_fen"], total["costs_fen"], total["margin_fen"]) == (17_100, 11_800, 5_300)
    assert balanced(sw.session)


def test_refunds_and_reversals_reduce_the_revenue_of_their_month(sw: ServicesWorld) -> None:
    november(sw)
    ledger.post(
        sw.session,
        kind="refund",
        stream="marketplace",
        lines=[("Income:Refunds:Commission", 300), ("Assets:Bank", -300)],
        at=MONDAY + timedelta(days=7),
    )
    sw.session.commit()
    model = profit.compute(sw.session, "2026-11")
    assert model.row("2026-11", "marketplace")["revenue_fen"] == 5_100 - 300


def test_a_bad_month_range_names_the_parameter(sw: ServicesWorld) -> None:
    for first, last, field in (
        ("2026-13", None, "from"),
        ("2026-11", "2026-01", "to"),
        ("2020-01", "2026-01", "to"),
    ):
        with pytest.raises(Invalid) as refused:
            profit.compute(sw.session, first, last)
        assert refused.value.detail["field"] == field


def test_only_the_operator_reads_the_profit_model(sw: ServicesWorld) -> None:
    for who in ("res1", "clean-admin", "dev-admin"):
        with pytest.raises(Forbidden):
            profit.report(session=sw.session, actor=sw.actor(who), first="2026-11")
