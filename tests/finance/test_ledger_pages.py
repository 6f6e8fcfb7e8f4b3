"""The operator's ledger, settlements and voucher-programme pages (forms with CSRF, no JS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import csrf_of, login
from services.moneykit import assert_zero_sum, make_txn, top_up
from services.sworld import ServicesWorld
from zhishe.finance import ledger
from zhishe.services import payments


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


@pytest.fixture()
def activity(sw: ServicesWorld) -> None:
    s = sw.session
    top_up(s, sw.users["res1"].id, 20_000)
    txn = make_txn(s, sw.listing(sw.providers["clean"], "housekeeping"), sw.users["res1"], price_fen=10_000)
    payments.hold(s, txn=txn, actor=None, method="wallet")
    payments.capture(s, txn=txn, actor=None)
    s.commit()


def test_the_ledger_page_shows_accounts_entries_and_a_zero_trial_balance(
    sw: ServicesWorld, client: Any, activity: None
) -> None:
    login(client, "op-analyst")
    page = client.get("/finance/ledger")
    assert page.status_code == 200
    assert "Income:Commission" in page.text and "-15.00" in page.text
    assert '<td class="total">0.00</td>' in page.text
    login(client, "res1")
    assert client.get("/finance/ledger").status_code == 403


def test_settlements_are_computed_from_the_page_and_downloaded(
    sw: ServicesWorld, client: Any, activity: None
) -> None:
    login(client, "op-admin")
    token = csrf_of(client, "/finance/settlements?month=2026-11")
    refused = client.post("/finance/settlements/run", data={"month": "2026-11", "csrf_token": "wrong"})
    assert refused.status_code == 403
    done = client.post(
        "/finance/settlements/run", data={"month": "2026-11", "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    page = client.get("/finance/settlements?month=2026-11")
    assert "洁家家政" in page.text and "85.00" in page.text
    download = client.get("/finance/settlements.csv?month=2026-11")
    assert download.headers["content-type"].startswith("text/csv") and "85.00" in download.text
    assert client.get("/finance/settlements?month=november").status_code == 422


def test_a_programme_is_created_and_funded_from_the_page(sw: ServicesWorld, client: Any) -> None:
    login(client, "op-admin")
    token = csrf_of(client, "/finance/vouchers")
    form = {
        "csrf_token": token,
        "code": "ElderlyCare",
        "name_zh": "居家养老服务券",
        "name_en": "Elderly care",
        "kind": "government_subsidy",
        "amount": "200",
        "period": "monthly",
        "min_age": "60",
        "categories": "housekeeping, elderly_visit",
        "valid_from": "2026-11-01",
        "valid_until": "2027-10-31",
    }
    assert client.post("/finance/vouchers", data=form, follow_redirects=False).status_code == 303
    page = client.get("/finance/vouchers")
    assert "ElderlyCare" in page.text and "居家养老服务券" in page.text
    fund = client.post(
        "/finance/vouchers/1/fund", data={"csrf_token": token, "amount": "5000.50"}, follow_redirects=False
    )
    assert fund.status_code == 303
    sw.session.rollback()
    assert ledger.balance(sw.session, "Liabilities:Subsidy:ElderlyCare") == -500_050
    bad = client.post("/finance/vouchers/1/fund", data={"csrf_token": token, "amount": "-3"})
    assert bad.status_code == 422
    issued = client.post("/finance/vouchers/issue-due", data={"csrf_token": token}, follow_redirects=False)
    assert issued.status_code == 303
