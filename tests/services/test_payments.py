"""Holding, capturing, releasing and refunding a transaction's money, deposits, and the ledger
entries each posts (balanced, in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.moneykit import assert_zero_sum, entries, make_txn, programme, top_up
from services.sworld import ServicesWorld
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger, money
from zhishe.services import payments, vouchers
from zhishe.services.models import Payment, Voucher


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


@pytest.fixture()
def listing(sw: ServicesWorld) -> Any:
    return sw.listing(sw.providers["clean"], "housekeeping")


def _balances(sw: ServicesWorld, user: str = "res1") -> dict[str, int]:
    pid = sw.providers["clean"].id
    return ledger.balances(
        sw.session,
        [
            ledger.wallet(sw.users[user].id),
            ledger.escrow_of(),
            ledger.provider_payable(pid),
            payments.COMMISSION,
            payments.COMMISSION_REFUNDS,
            "Liabilities:Subsidy:ElderlyCare",
            payments.collected_account(pid),
        ],
    )


def test_wallet_hold_then_capture_pays_the_provider_less_commission(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    top_up(s, sw.users["res1"].id, 30_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1500)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="wallet")
    b = _balances(sw)
    assert b[ledger.wallet(sw.users["res1"].id)] == -20_000
    assert b[ledger.escrow_of()] == -10_000
    payments.capture(s, txn=txn, actor=sw.actor("clean-admin"))
    s.commit()
    b = _balances(sw)
    assert b[ledger.escrow_of()] == 0
    assert b[ledger.provider_payable(sw.providers["clean"].id)] == -8_500
    assert b[payments.COMMISSION] == -1_500
    assert (txn.captured_fen, txn.commission_fen, txn.payment_method) == (10_000, 1_500, "wallet")


def test_a_wallet_without_enough_money_is_refused_and_nothing_is_posted(
    sw: ServicesWorld, listing: Any
) -> None:
    s = sw.session
    top_up(s, sw.users["res1"].id, 5_000)
    s.commit()
    before = entries(s)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000)
    with pytest.raises(Conflict, match="not enough balance"):
        payments.hold(s, txn=txn, actor=sw.actor("res1"), method="wallet")
    s.rollback()
    assert entries(s) == before
    assert ledger.balance(s, ledger.wallet(sw.users["res1"].id)) == -5_000


def test_cancellation_fee_is_captured_and_the_rest_released(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    uid = sw.users["res1"].id
    top_up(s, uid, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1500)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="wallet")
    payments.capture(s, txn=txn, actor=sw.actor("res1"), amount_fen=5_000)
    payments.release(s, txn=txn, actor=sw.actor("res1"))
    s.commit()
    b = _balances(sw)
    assert b[ledger.wallet(uid)] == -5_000
    assert b[ledger.escrow_of()] == 0
    assert b[ledger.provider_payable(sw.providers["clean"].id)] == -4_250
    assert b[payments.COMMISSION] == -750
    assert txn.captured_fen == 5_000 and txn.commission_fen == 750


def test_refund_after_capture_takes_back_the_provider_part_and_the_commission(
    sw: ServicesWorld, listing: Any
) -> None:
    s = sw.session
    uid = sw.users["res1"].id
    top_up(s, uid, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1500)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="wallet")
    payments.capture(s, txn=txn, actor=None)
    payments.refund(s, txn=txn, actor=sw.actor("op-admin"), amount_fen=4_000, reason="late arrival")
    payments.refund(s, txn=txn, actor=sw.actor("op-admin"), amount_fen=6_000, reason="complaint upheld")
    s.commit()
    b = _balances(sw)
    assert b[ledger.wallet(uid)] == -10_000
    assert b[ledger.provider_payable(sw.providers["clean"].id)] == 0
    assert b[payments.COMMISSION] + b[payments.COMMISSION_REFUNDS] == 0
    assert txn.refunded_fen == 10_000


def test_a_refund_larger_than_the_capture_is_refused_and_nothing_is_posted(
    sw: ServicesWorld, listing: Any
) -> None:
    s = sw.session
    top_up(s, sw.users["res1"].id, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000)
    payments.hold(s, txn=txn, actor=None, method="wallet")
    payments.capture(s, txn=txn, actor=None, amount_fen=3_000)
    payments.refund(s, txn=txn, actor=None, amount_fen=1_000, reason="partial")
    s.commit()
    before = entries(s)
    with pytest.raises(Invalid) as raised:
        payments.refund(s, txn=txn, actor=None, amount_fen=2_001, reason="too much")
    assert raised.value.detail["field"] == "amount_fen"
    assert "2001" in raised.value.message and "2000" in raised.value.message
    s.rollback()
    assert entries(s) == before
    assert txn.refunded_fen == 1_000


def test_voucher_with_pay_at_service_posts_subsidy_and_commission_only(
    sw: ServicesWorld, listing: Any
) -> None:
    s = sw.session
    prog = programme(s)
    vouchers.issue_due(s)
    voucher = s.query(Voucher).filter_by(user_id=sw.users["res1"].id, programme_id=prog.id).one()
    txn = make_txn(s, listing, sw.users["res1"], price_fen=30_000, commission_bps=1500)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="pay_at_service", voucher_id=voucher.id)
    assert txn.subsidy_fen == 20_000
    assert _balances(sw)[ledger.escrow_of()] == 0  # nothing is held for pay at service
    payments.capture(s, txn=txn, actor=sw.actor("clean-staff"))
    s.commit()
    b = _balances(sw)
    pid = sw.providers["clean"].id
    # the provider took ¥100 in cash; it is owed the ¥200 subsidy less the ¥45 commission
    assert b[ledger.provider_payable(pid)] == -(20_000 - 4_500)
    assert b["Liabilities:Subsidy:ElderlyCare"] == -(1_000_000 - 20_000)
    assert b[payments.COMMISSION] == -4_500
    assert b[payments.collected_account(pid)] == 0
    s.refresh(voucher)
    assert (voucher.state, voucher.used_fen, voucher.used_transaction_id) == ("used", 20_000, txn.id)


def test_voucher_covering_the_whole_price_needs_no_other_method(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    voucher = s.query(Voucher).filter_by(user_id=sw.users["res1"].id).one()
    txn = make_txn(s, listing, sw.users["res1"], price_fen=15_000)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="voucher", voucher_id=voucher.id)
    payments.capture(s, txn=txn, actor=None)
    payments.refund(s, txn=txn, actor=None, amount_fen=15_000, reason="not delivered")
    s.commit()
    # the whole subsidy went back to its fund
    assert ledger.balance(s, "Liabilities:Subsidy:ElderlyCare") == -1_000_000
    assert txn.payment_method == "voucher"


def test_release_before_capture_gives_the_voucher_back(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    uid = sw.users["res1"].id
    voucher = s.query(Voucher).filter_by(user_id=uid).one()
    top_up(s, uid, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=25_000)
    payments.hold(s, txn=txn, actor=sw.actor("res1"), method="wallet", voucher_id=voucher.id)
    assert ledger.balance(s, ledger.wallet(uid)) == -5_000
    payments.release(s, txn=txn, actor=sw.actor("res1"))
    s.commit()
    s.refresh(voucher)
    assert voucher.state == "issued" and voucher.used_transaction_id is None
    assert ledger.balance(s, ledger.wallet(uid)) == -10_000
    assert txn.subsidy_fen == 0


def test_a_stranger_may_not_move_a_transactions_money(sw: ServicesWorld, listing: Any) -> None:
    s = sw.session
    top_up(s, sw.users["res1"].id, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000)
    with pytest.raises(Forbidden):
        payments.hold(s, txn=txn, actor=sw.actor("res2"), method="wallet")
    with pytest.raises(Forbidden):
        payments.capture(s, txn=txn, actor=sw.actor("fix-admin"))


def test_unknown_method_names_the_field(sw: ServicesWorld, listing: Any) -> None:
    txn = make_txn(sw.session, listing, sw.users["res1"])
    with pytest.raises(Invalid) as raised:
        payments.hold(sw.session, txn=txn, actor=None, method="bitcoin")
    assert raised.value.detail["field"] == "method"


def test_deposit_is_held_and_partly_kept_after_a_dispute(sw: ServicesWorld) -> None:
    s = sw.session
    rental = sw.listing(sw.providers["fix"], "rental", "neighbour_rental")
    uid = sw.users["res2"].id
    top_up(s, uid, 60_000)
    txn = make_txn(s, rental, sw.users["res2"], price_fen=0)
    payments.hold_deposit(s, txn=txn, actor=sw.actor("res2"), amount_fen=50_000)
    assert ledger.balance(s, payments.DEPOSITS) == -50_000 and txn.deposit_fen == 50_000
    with pytest.raises(Invalid) as raised:
        payments.settle_deposit(s, txn=txn, actor=None, keep_fen=60_000)
    assert raised.value.detail["field"] == "keep_fen"
    payments.settle_deposit(s, txn=txn, actor=sw.actor("op-admin"), keep_fen=12_000)
    s.commit()
    assert ledger.balance(s, payments.DEPOSITS) == 0
    assert ledger.balance(s, ledger.provider_payable(sw.providers["fix"].id)) == -12_000
    assert ledger.balance(s, ledger.wallet(uid)) == -48_000
    assert txn.deposit_fen == 0
    kinds = sorted(p.kind for p in s.query(Payment).filter_by(transaction_id=txn.id))
    assert kinds == ["deposit_hold", "deposit_keep", "deposit_return"]


def test_commission_shares_round_half_to_even() -> None:
    assert money.share(25, 1, 10) == 2
    assert money.share(35, 1, 10) == 4
    assert money.share(-25, 1, 10) == -2
    assert money.share(10_001, 1500, 10_000) == 1500
