"""Voucher programmes, issuing each period's vouchers to eligible residents, and the hostile uses:
twice, by someone ineligible, expired, for the wrong category. Each is refused and posts nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.moneykit import assert_zero_sum, entries, make_txn, programme, top_up
from services.sworld import MONDAY, SHANGHAI, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger
from zhishe.services import payments, vouchers
from zhishe.services.models import ResidentProfile, Voucher


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


@pytest.fixture()
def listing(sw: ServicesWorld) -> Any:
    return sw.listing(sw.providers["clean"], "housekeeping")


def _voucher(sw: ServicesWorld, user: str) -> Voucher:
    return sw.session.query(Voucher).filter_by(user_id=sw.users[user].id).one()


def test_issue_due_gives_only_eligible_residents_one_voucher_per_month(sw: ServicesWorld) -> None:
    s = sw.session
    programme(s)
    assert vouchers.issue_due(s) == 1  # only res1 is 60 or older
    assert vouchers.issue_due(s) == 0  # idempotent
    voucher = _voucher(sw, "res1")
    assert (voucher.period_key, voucher.amount_fen) == ("2026-11", 20_000)
    assert voucher.expires_at == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert vouchers.issue_due(s, MONDAY + timedelta(days=30)) == 1  # December's


def test_eligibility_by_tag_and_area(sw: ServicesWorld) -> None:
    s = sw.session
    programme(s, code="LowIncome", eligibility={"tags_any": ["low_income"], "area_codes": ["C1"]})
    assert vouchers.issue_due(s) == 1
    assert _voucher(sw, "res2").amount_fen == 20_000


def test_a_voucher_used_twice_is_refused_and_nothing_is_posted(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = _voucher(sw, "res1")
    first = make_txn(s, listing, sw.users["res1"], price_fen=20_000)
    payments.hold(s, txn=first, actor=sw.actor("res1"), method="voucher", voucher_id=voucher.id)
    payments.capture(s, txn=first, actor=None)
    s.commit()
    before = entries(s)
    second = make_txn(s, listing, sw.users["res1"], price_fen=20_000)
    with pytest.raises(Conflict, match="already been used"):
        payments.hold(s, txn=second, actor=sw.actor("res1"), method="voucher", voucher_id=voucher.id)
    s.rollback()
    assert entries(s) == before


def test_someone_elses_voucher_is_refused(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = _voucher(sw, "res1")
    top_up(s, sw.users["res3"].id, 50_000)
    s.commit()
    before = entries(s)
    txn = make_txn(s, listing, sw.users["res3"], price_fen=20_000)
    with pytest.raises(Forbidden):
        payments.hold(s, txn=txn, actor=sw.actor("res3"), method="wallet", voucher_id=voucher.id)
    s.rollback()
    assert entries(s) == before


def test_a_resident_no_longer_eligible_cannot_use_the_voucher(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = _voucher(sw, "res1")
    profile = s.get(ResidentProfile, sw.users["res1"].id)
    assert profile is not None
    profile.birth_year = 1990
    s.commit()
    before = entries(s)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=20_000)
    with pytest.raises(Invalid, match="no longer eligible") as raised:
        payments.hold(s, txn=txn, actor=sw.actor("res1"), method="pay_at_service", voucher_id=voucher.id)
    assert raised.value.detail["field"] == "voucher_id"
    s.rollback()
    assert entries(s) == before
    assert vouchers.usable(s, user_id=sw.users["res1"].id, txn=txn) == []


def test_an_expired_voucher_is_refused_and_swept(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = _voucher(sw, "res1")
    s.commit()
    december = datetime(2026, 12, 1, 0, 0, 1, tzinfo=SHANGHAI)
    clock.set_clock(lambda: december)
    before = entries(s)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=20_000)
    with pytest.raises(Invalid, match="expired"):
        payments.hold(s, txn=txn, actor=sw.actor("res1"), method="pay_at_service", voucher_id=voucher.id)
    s.rollback()
    assert entries(s) == before
    result = vouchers.sweep(s, december)
    s.commit()
    assert result["vouchers_expired"] == 1 and result["vouchers_issued"] == 1
    s.refresh(voucher)
    assert voucher.state == "expired"


def test_a_voucher_pays_only_for_its_categories(sw: ServicesWorld) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = _voucher(sw, "res1")
    repair = sw.listing(sw.providers["fix"], "repair", title_zh="水管维修", title_en="Plumbing")
    txn = make_txn(s, repair, sw.users["res1"], price_fen=20_000)
    with pytest.raises(Invalid, match="this kind of service"):
        payments.hold(s, txn=txn, actor=sw.actor("res1"), method="pay_at_service", voucher_id=voucher.id)
    assert vouchers.usable(s, user_id=sw.users["res1"].id, txn=txn) == []


def test_funding_a_government_programme_posts_bank_to_its_fund(sw: ServicesWorld) -> None:
    s = sw.session
    created = vouchers.create_programme(
        session=s,
        actor=sw.actor("op-admin"),
        data={
            "code": "ElderlyCare2027",
            "name_zh": "养老券",
            "kind": "government_subsidy",
            "amount_fen": 20_000,
            "valid_from": "2026-11-01",
            "valid_until": "2027-10-31",
            "eligibility": {"min_age": 60},
            "categories": ["housekeeping"],
        },
    )
    vouchers.fund_programme(
        session=s, actor=sw.actor("op-admin"), programme_id=created.id, amount_fen=500_000
    )
    s.commit()
    assert created.funding_account == "Liabilities:Subsidy:ElderlyCare2027"
    assert ledger.balance(s, created.funding_account) == -500_000
    assert ledger.balance(s, "Assets:Bank") == 500_000
    with pytest.raises(Forbidden):
        vouchers.fund_programme(session=s, actor=sw.actor("res1"), programme_id=created.id, amount_fen=1)


def test_a_promotion_is_an_expense_when_used(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s, code="Welcome", kind="operator_promotion", amount_fen=1_000, eligibility={}, categories=[])
    assert vouchers.issue_due(s) == 6
    voucher = _voucher(sw, "res4")
    top_up(s, sw.users["res4"].id, 10_000)
    txn = make_txn(s, listing, sw.users["res4"], price_fen=10_000)
    payments.hold(s, txn=txn, actor=sw.actor("res4"), method="wallet", voucher_id=voucher.id)
    payments.capture(s, txn=txn, actor=None)
    s.commit()
    assert ledger.balance(s, "Expenses:Promotions:Welcome") == 1_000
    assert ledger.balance(s, ledger.wallet(sw.users["res4"].id)) == -1_000
