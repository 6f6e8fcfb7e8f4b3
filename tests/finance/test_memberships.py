"""Annual memberships: plans, buying from the wallet or at the desk, the plan in force, and the
pro-rata refund of whole unused months on cancelling."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from finance.revenue_world import balanced, entries, fund
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger, memberships


def plan(sw: ServicesWorld, fee: int = 12_000, code: str = "gold") -> int:
    created = memberships.create_plan(
        session=sw.session,
        actor=sw.actor("op-admin"),
        code=code,
        name_zh="金卡会员",
        name_en="Gold",
        annual_fee_fen=fee,
        discount_bps=500,
        priority_hours=24,
    )
    sw.session.commit()
    return int(created.id)


def test_a_resident_buys_a_year_from_the_wallet_and_holds_the_plan_for_twelve_months(
    sw: ServicesWorld,
) -> None:
    plan_id = plan(sw)
    user = sw.users["res1"]
    fund(sw.session, user.id, 20_000)
    bought = memberships.buy(session=sw.session, actor=sw.actor("res1"), plan_id=plan_id)
    sw.session.commit()
    assert (bought.starts_on, bought.ends_on) == (date(2026, 11, 2), date(2027, 11, 1))
    assert ledger.balance(sw.session, ledger.wallet(user.id)) == -8_000
    assert ledger.balance(sw.session, "Income:Membership") == -12_000
    found = memberships.active_plan(sw.session, user.id, MONDAY + timedelta(days=300))
    assert found is not None and found.discount_bps == 500 and found.priority_hours == 24
    assert memberships.active_plan(sw.session, user.id, MONDAY + timedelta(days=366)) is None
    assert memberships.active_plan(sw.session, sw.users["res2"].id, MONDAY) is None
    with pytest.raises(Conflict):
        memberships.buy(session=sw.session, actor=sw.actor("res1"), plan_id=plan_id)
    assert balanced(sw.session)


def test_a_short_wallet_is_refused_and_nothing_is_posted(sw: ServicesWorld) -> None:
    plan_id = plan(sw)
    fund(sw.session, sw.users["res1"].id, 5_000)
    before = entries(sw.session)
    with pytest.raises(Conflict):
        memberships.buy(session=sw.session, actor=sw.actor("res1"), plan_id=plan_id)
    sw.session.rollback()
    assert entries(sw.session) == before
    assert memberships.active_plan(sw.session, sw.users["res1"].id, MONDAY) is None
    assert balanced(sw.session)


def test_operator_staff_record_a_desk_payment_and_residents_may_not(sw: ServicesWorld) -> None:
    plan_id = plan(sw)
    with pytest.raises(Forbidden):
        memberships.buy(session=sw.session, actor=sw.actor("res1"), plan_id=plan_id, method="desk")
    with pytest.raises(Forbidden):
        memberships.buy(
            session=sw.session, actor=sw.actor("res1"), plan_id=plan_id, user_id=sw.users["res2"].id
        )
    memberships.buy(
        session=sw.session,
        actor=sw.actor("op-steward"),
        plan_id=plan_id,
        user_id=sw.users["res2"].id,
        method="desk",
    )
    sw.session.commit()
    assert ledger.balance(sw.session, "Assets:Bank") == 12_000
    assert memberships.active_plan(sw.session, sw.users["res2"].id, MONDAY) is not None
    assert balanced(sw.session)


def test_cancelling_refunds_the_whole_unused_months_to_where_the_fee_came_from(sw: ServicesWorld) -> None:
    plan_id = plan(sw, fee=12_000)
    user = sw.users["res1"]
    fund(sw.session, user.id, 12_000)
    bought = memberships.buy(session=sw.session, actor=sw.actor("res1"), plan_id=plan_id)
    sw.session.commit()
    # 2027-01-10: the months from Nov 2, Dec 2 and Jan 2 have begun; nine are unused
    with clock.frozen(MONDAY + timedelta(days=69)):
        assert memberships.refund_for(bought, date(2027, 1, 10)) == (9, 9_000)
        memberships.cancel(session=sw.session, actor=sw.actor("res1"), membership_id=bought.id)
        sw.session.commit()
        assert memberships.active_plan(sw.session, user.id) is None
    assert ledger.balance(sw.session, ledger.wallet(user.id)) == -9_000
    assert ledger.balance(sw.session, "Income:Refunds:Membership") == 9_000
    with pytest.raises(Conflict):
        memberships.cancel(session=sw.session, actor=sw.actor("res1"), membership_id=bought.id)
    assert balanced(sw.session)


def test_the_refund_rounds_half_to_even_and_keeps_the_month_in_progress(sw: ServicesWorld) -> None:
    plan_id = plan(sw, fee=9_999)
    memberships.buy(
        session=sw.session,
        actor=sw.actor("op-admin"),
        plan_id=plan_id,
        user_id=sw.users["res3"].id,
        method="desk",
    )
    sw.session.commit()
    bought = memberships.active_membership(sw.session, sw.users["res3"].id)
    assert bought is not None
    assert memberships.refund_for(bought, date(2026, 11, 2)) == (11, 9_166)  # 9999 * 11 / 12 = 9165.75
    assert memberships.refund_for(bought, date(2027, 10, 2)) == (0, 0)
    memberships.cancel(session=sw.session, actor=sw.actor("op-admin"), membership_id=bought.id)
    sw.session.commit()
    assert ledger.balance(sw.session, "Assets:Bank") == 9_999 - 9_166
    assert balanced(sw.session)


@pytest.mark.parametrize(
    ("field", "value"),
    [("annual_fee_fen", -100), ("annual_fee_fen", 99.5), ("discount_bps", 20_000), ("code", "has space")],
)
def test_a_bad_plan_is_refused_naming_the_field(sw: ServicesWorld, field: str, value: object) -> None:
    values: dict[str, object] = {"code": "x", "name_zh": "会员", "annual_fee_fen": 100, "discount_bps": 0}
    values[field] = value
    with pytest.raises(Invalid) as refused:
        memberships.create_plan(session=sw.session, actor=sw.actor("op-admin"), **values)  # type: ignore[arg-type]
    assert refused.value.detail["field"] == field
    assert memberships.list_plans(session=sw.session) == []


def test_only_the_operator_creates_plans(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        memberships.create_plan(
            session=sw.session, actor=sw.actor("res1"), code="x", name_zh="会员", annual_fee_fen=100
        )
