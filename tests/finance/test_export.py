"""Ledger exports: Beancount text that Beancount itself parses and balances, and CSV with one row per
posting."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

import pytest

from services.moneykit import assert_zero_sum, make_txn, programme, top_up
from services.sworld import ServicesWorld
from zhishe.core.errors import Forbidden, Invalid
from zhishe.finance import export, money
from zhishe.services import payments, vouchers
from zhishe.services.models import Voucher


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def _activity(sw: ServicesWorld) -> None:
    s = sw.session
    programme(s, code="Elderly_Care")
    vouchers.issue_due(s)
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    top_up(s, sw.users["res1"].id, 50_000)
    voucher = s.query(Voucher).filter_by(user_id=sw.users["res1"].id).one()
    txn = make_txn(s, listing, sw.users["res1"], price_fen=30_001)
    payments.hold(s, txn=txn, actor=None, method="wallet", voucher_id=voucher.id)
    payments.capture(s, txn=txn, actor=None)
    payments.refund(s, txn=txn, actor=None, amount_fen=1_234, reason='said "late"')
    s.commit()


def test_beancount_export_parses_and_balances(sw: ServicesWorld) -> None:
    loader = pytest.importorskip("beancount.loader")
    _activity(sw)
    text = "".join(export.beancount(sw.session, actor=sw.actor("op-analyst")))
    assert "open Liabilities:Subsidy:Elderly-Care CNY" in text
    assert "  Liabilities:Wallets:U" in text and "-500.00 CNY" in text
    entries, errors, _options = loader.load_string(text)
    assert errors == []
    transactions = [e for e in entries if type(e).__name__ == "Transaction"]
    assert len(transactions) == 5
    assert all(sum(p.units.number for p in t.postings) == 0 for t in transactions)
    assert {int(t.meta["entry_id"]) for t in transactions} == set(range(1, 6))


def test_csv_export_has_one_row_per_posting_in_fen_and_yuan(sw: ServicesWorld) -> None:
    _activity(sw)
    rows = list(csv.DictReader(io.StringIO("".join(export.csv_rows(sw.session, actor=sw.actor("op-admin"))))))
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert sum(int(r["amount_fen"]) for r in rows) == 0
    refund = [r for r in rows if r["kind"] == "refund"]
    assert refund and all(r["ref_type"] == "transaction" for r in refund)
    assert {r["amount"] for r in rows if r["amount_fen"] == "-50000"} == {"-500.00"}


def test_the_date_range_filters_entries(sw: ServicesWorld) -> None:
    _activity(sw)
    start, end = export.parse_range("2026-11-03", "2026-11-30")
    text = "".join(export.beancount(sw.session, actor=sw.actor("op-admin"), start=start, end=end))
    assert " * " not in text
    with pytest.raises(Invalid) as raised:
        export.parse_range("yesterday", None)
    assert raised.value.detail["field"] == "from"


def test_only_the_operator_may_export(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        export.csv_rows(sw.session, actor=sw.actor("clean-admin"))


def test_yuan_is_exact() -> None:
    assert [money.yuan(v) for v in (0, 5, -5, 100, -123456, 10**12)] == [
        "0.00",
        "0.05",
        "-0.05",
        "1.00",
        "-1234.56",
        "10000000000.00",
    ]
    assert date(2026, 11, 2).isoformat() == "2026-11-02"
