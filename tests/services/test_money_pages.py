"""The resident's wallet page and a provider's statements page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import login
from services.moneykit import assert_zero_sum, make_txn, programme, top_up
from services.sworld import ServicesWorld
from zhishe.finance import settlement
from zhishe.services import payments, vouchers


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def test_the_wallet_page_shows_balance_movements_and_vouchers(sw: ServicesWorld, client: Any) -> None:
    s = sw.session
    programme(s)
    vouchers.issue_due(s)
    top_up(s, sw.users["res1"].id, 12_345)
    s.commit()
    login(client, "res1")
    client.cookies.set("zhishe_lang", "en")
    page = client.get("/services/wallet")
    assert page.status_code == 200
    assert "¥123.45" in page.text and "¥200.00" in page.text and "Elderly-care voucher" in page.text
    assert 'name="viewport"' in page.text


def test_a_provider_admin_sees_its_own_statements_only(sw: ServicesWorld, client: Any) -> None:
    s = sw.session
    for key, category in (("clean", "housekeeping"), ("fix", "repair")):
        txn = make_txn(s, sw.listing(sw.providers[key], category), sw.users["res2"], price_fen=5_000)
        payments.hold(s, txn=txn, actor=None, method="pay_at_service")
        payments.capture(s, txn=txn, actor=None)
    settlement.run(s, actor=sw.actor("op-admin"), month="2026-11")
    s.commit()
    login(client, "clean-admin")
    page = client.get("/provider/statements")
    assert page.status_code == 200
    assert "洁家家政" in page.text and "快修维修" not in page.text
    login(client, "clean-staff")
    assert client.get("/provider/statements").status_code == 403
