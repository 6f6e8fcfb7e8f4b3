"""Monthly settlement statements: a month of generated activity (captures, refunds, vouchers, pay
at service, cancellation fees, deposits, a correction) reconciles to zero for every provider, and
payouts post Dr payable Cr bank."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from services.moneykit import assert_zero_sum, make_txn, programme, top_up
from services.sworld import SHANGHAI, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger, settlement
from zhishe.finance.models import Entry
from zhishe.services import payments, vouchers
from zhishe.services.models import Voucher

NOV_1 = datetime(2026, 11, 1, 0, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def _at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def test_a_simple_month_reads_as_expected(sw: ServicesWorld) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    top_up(s, sw.users["res1"].id, 100_000)
    a = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1500)
    payments.hold(s, txn=a, actor=None, method="wallet")
    payments.capture(s, txn=a, actor=None)
    payments.refund(s, txn=a, actor=None, amount_fen=2_000, reason="late")
    b = make_txn(s, listing, sw.users["res2"], price_fen=6_000, commission_bps=1500)
    payments.hold(s, txn=b, actor=None, method="pay_at_service")
    payments.capture(s, txn=b, actor=None)
    s.commit()
    (statement,) = settlement.compute(s, "2026-11")
    assert statement.gross_fen == 16_000
    assert statement.commission_fen == 1_500 + 900
    assert statement.refunds_fen == 2_000 - 300
    assert statement.collected_fen == 6_000
    assert statement.net_payable_fen == 16_000 - 2_400 - 1_700 - 6_000
    assert statement.difference_fen == 0
    assert -ledger.balance(s, ledger.provider_payable(listing.provider_id)) == statement.net_payable_fen


def test_a_generated_month_reconciles_to_zero_for_every_provider(sw: ServicesWorld) -> None:
    s = sw.session
    rng = random.Random(2026)
    prog = programme(s, categories=[])
    listings = [
        sw.listing(sw.providers["clean"], "housekeeping"),
        sw.listing(sw.providers["fix"], "repair", title_zh="维修"),
        sw.listing(sw.providers["farm"], "fresh_food", title_zh="蔬菜箱"),
    ]
    residents = [sw.users[f"res{i}"] for i in range(1, 6)]
    for resident in residents:
        top_up(s, resident.id, 10_000_000)
    _at(datetime(2026, 10, 31, 23, 50, tzinfo=SHANGHAI))  # October: outside the month
    late = make_txn(s, listings[0], residents[0], price_fen=5_000)
    payments.hold(s, txn=late, actor=None, method="wallet")
    payments.capture(s, txn=late, actor=None)
    s.commit()
    captured: list[int] = []
    for n in range(240):
        _at(NOV_1 + timedelta(minutes=n * 170 + 1))
        listing = rng.choice(listings)
        resident = rng.choice(residents)
        txn = make_txn(
            s,
            listing,
            resident,
            price_fen=rng.randrange(1_000, 40_000),
            commission_bps=rng.choice([800, 1000, 1500]),
        )
        method = rng.choice(["wallet", "wallet", "pay_at_service", "voucher"])
        voucher_id = None
        if method == "voucher" or rng.random() < 0.2:
            prog.period = "once" if n % 2 else "monthly"
            voucher = s.query(Voucher).filter_by(user_id=resident.id, state="issued").first()
            if voucher is None and resident.id == residents[0].id:
                vouchers.issue_due(s)
                voucher = s.query(Voucher).filter_by(user_id=resident.id, state="issued").first()
            voucher_id = voucher.id if voucher is not None else None
        if method == "voucher" and (voucher_id is None or txn.price_fen > 20_000):
            method = "wallet"
        payments.hold(s, txn=txn, actor=None, method=method, voucher_id=voucher_id)
        roll = rng.random()
        if roll < 0.15:
            payments.release(s, txn=txn, actor=None)  # cancelled in time
        elif roll < 0.3 and method != "pay_at_service":
            payments.capture(s, txn=txn, actor=None, amount_fen=max(1, txn.price_fen // 2))
            payments.release(s, txn=txn, actor=None)  # a late-cancellation fee
        else:
            payments.capture(s, txn=txn, actor=None)
            captured.append(txn.id)
            if rng.random() < 0.25:
                part = rng.randrange(1, txn.captured_fen + 1)
                payments.refund(s, txn=txn, actor=None, amount_fen=part, reason="generated refund")
        if n % 40 == 0:
            rental = make_txn(s, listing, resident, price_fen=0)
            payments.hold_deposit(s, txn=rental, actor=None, amount_fen=30_000)
            payments.settle_deposit(s, txn=rental, actor=None, keep_fen=rng.randrange(0, 30_001))
        s.commit()
    first_capture = s.query(Entry).filter_by(kind="capture", ref_id=captured[0]).one()
    ledger.reverse_entry(
        s, actor=sw.actor("op-admin"), entry_id=first_capture.id, reason="posted to the wrong order"
    )
    _at(datetime(2026, 11, 30, 23, 59, tzinfo=SHANGHAI))
    settlement.payout(s, actor=sw.actor("op-admin"), provider_id=listings[1].provider_id, amount_fen=1_000)
    _at(datetime(2026, 12, 1, 0, 1, tzinfo=SHANGHAI))  # December: outside the month
    early = make_txn(s, listings[0], residents[1], price_fen=7_000)
    payments.hold(s, txn=early, actor=None, method="wallet")
    payments.capture(s, txn=early, actor=None)
    s.commit()

    rows = settlement.run(s, actor=sw.actor("op-admin"), month="2026-11")
    s.commit()
    assert {r.provider_id for r in rows} == {lst.provider_id for lst in listings}
    for row in rows:
        assert row.net_payable_fen == row.ledger_movement_fen, (
            f"provider {row.provider_id} does not reconcile"
        )
        assert row.gross_fen > 0 and row.commission_fen > 0 and row.entries > 50
    assert sum(r.subsidies_fen for r in rows) > 0 and sum(r.refunds_fen for r in rows) > 0
    assert sum(r.collected_fen for r in rows) > 0
    # the three months together account for every fen of each payable
    for listing in listings:
        pid = listing.provider_id
        months = [settlement.compute(s, m, provider_id=pid) for m in ("2026-10", "2026-11", "2026-12")]
        total = sum(st.ledger_movement_fen for month in months for st in month)
        paid = 1_000 if pid == listings[1].provider_id else 0
        assert total - paid == -ledger.balance(s, ledger.provider_payable(pid))


def test_a_provider_admin_sees_only_its_own_statements(sw: ServicesWorld) -> None:
    s = sw.session
    for key, category in (("clean", "housekeeping"), ("fix", "repair")):
        listing = sw.listing(sw.providers[key], category)
        txn = make_txn(s, listing, sw.users["res2"], price_fen=5_000)
        payments.hold(s, txn=txn, actor=None, method="pay_at_service")
        payments.capture(s, txn=txn, actor=None)
    settlement.run(s, actor=sw.actor("op-steward"), month="2026-11")
    s.commit()
    assert len(settlement.list_settlements(s, actor=sw.actor("op-analyst"), month="2026-11")) == 2
    own = settlement.list_settlements(s, actor=sw.actor("clean-admin"), month="2026-11")
    assert [r.provider_id for r in own] == [sw.providers["clean"].id]
    with pytest.raises(Forbidden):
        settlement.list_settlements(s, actor=sw.actor("clean-admin"), provider_id=sw.providers["fix"].id)
    with pytest.raises(Forbidden):
        settlement.list_settlements(s, actor=sw.actor("clean-staff"))
    with pytest.raises(Forbidden):
        settlement.run(s, actor=sw.actor("clean-admin"), month="2026-11")


def test_a_payout_cannot_exceed_what_is_owed(sw: ServicesWorld) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    top_up(s, sw.users["res1"].id, 10_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1000)
    payments.hold(s, txn=txn, actor=None, method="wallet")
    payments.capture(s, txn=txn, actor=None)
    s.commit()
    pid = listing.provider_id
    with pytest.raises(Conflict):
        settlement.payout(s, actor=sw.actor("op-admin"), provider_id=pid, amount_fen=9_001)
    s.rollback()
    settlement.payout(s, actor=sw.actor("op-admin"), provider_id=pid, amount_fen=9_000)
    s.commit()
    assert ledger.balance(s, ledger.provider_payable(pid)) == 0
    assert ledger.balance(s, "Assets:Bank") == 10_000 - 9_000
    assert [amount for _, amount in settlement.list_payouts(s, actor=sw.actor("op-analyst"))] == [9_000]


def test_a_bad_month_names_the_field(sw: ServicesWorld) -> None:
    for bad in ("2026-13", "nov", "2026-1", ""):
        with pytest.raises(Invalid) as raised:
            settlement.compute(sw.session, bad)
        assert raised.value.detail["field"] == "month"
