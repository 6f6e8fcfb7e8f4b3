"""`zhishe finance settle|export|trial-balance|payout` and `zhishe services vouchers-issue|
wallet-top-up|gateway-key` end to end on the test database."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.moneykit import assert_zero_sum, key_pair, make_txn, programme
from services.sworld import ServicesWorld
from zhishe.cli import app
from zhishe.finance import ledger
from zhishe.services import gateway, payments

runner = CliRunner()


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_money_commands_from_top_up_to_export(sw: ServicesWorld, tmp_path: Path) -> None:
    s = sw.session
    programme(s)
    s.commit()
    assert "1 vouchers issued" in zs("services", "vouchers-issue")
    assert "¥150.00" in zs("services", "wallet-top-up", "res1", "15000", "--via", "cash")
    assert "--via" in zs("services", "wallet-top-up", "res1", "100", "--via", "gold", code=1)
    s.rollback()
    txn = make_txn(s, sw.listing(sw.providers["clean"], "housekeeping"), sw.users["res1"], price_fen=10_000)
    payments.hold(s, txn=txn, actor=None, method="wallet")
    payments.capture(s, txn=txn, actor=None)
    s.commit()
    settled = zs("finance", "settle", "--month", "2026-11")
    assert "0 with a reconciliation difference" in settled and "85.00" in settled
    assert "balanced" in zs("finance", "trial-balance")
    out = tmp_path / "ledger.beancount"
    assert "entries written" in zs("finance", "export", "--format", "beancount", "--out", str(out))
    assert "open Income:Commission CNY" in out.read_text(encoding="utf-8")
    table = tmp_path / "ledger.csv"
    zs(
        "finance",
        "export",
        "--format",
        "csv",
        "--out",
        str(table),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
    )
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert (
        sum(int(r["amount_fen"]) for r in rows) == 0 and len(rows) == 2 + 2 + 2 + 3
    )  # fund, top-up, hold, capture
    zs("finance", "payout", str(sw.providers["clean"].id), "8500")
    s.rollback()
    assert ledger.balance(s, ledger.provider_payable(sw.providers["clean"].id)) == 0
    assert "month" in zs("finance", "settle", "--month", "11/2026", code=1)


def test_the_gateway_key_is_installed_from_a_file(sw: ServicesWorld, tmp_path: Path) -> None:
    pem = tmp_path / "gateway.pem"
    pem.write_text(key_pair(seed=5).public_pem(), encoding="ascii")
    try:
        assert "2048 bits" in zs("services", "gateway-key", str(pem))
    finally:
        gateway.public_key_path().unlink(missing_ok=True)
    bad = tmp_path / "bad.pem"
    bad.write_text("nothing", encoding="ascii")
    zs("services", "gateway-key", str(bad), code=1)
