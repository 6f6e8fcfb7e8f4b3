"""The ledger routes under /api/v1/finance: accounts, entries, reversal, settlements, payouts and
streamed exports; operator only, except a provider's own statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import bearer
from services.moneykit import assert_zero_sum, make_txn, top_up
from services.sworld import ServicesWorld
from zhishe.services import payments

_RW = ["services:read", "services:write", "finance:read", "finance:write"]


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def _as(sw: ServicesWorld, name: str) -> dict[str, str]:
    return bearer(sw.session, sw.users[name], scopes=_RW)


@pytest.fixture()
def booked(sw: ServicesWorld) -> Any:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    top_up(s, sw.users["res1"].id, 20_000)
    txn = make_txn(s, listing, sw.users["res1"], price_fen=10_000, commission_bps=1500)
    payments.hold(s, txn=txn, actor=None, method="wallet")
    payments.capture(s, txn=txn, actor=None)
    s.commit()
    return txn


def test_accounts_entries_and_trial_balance(sw: ServicesWorld, client: Any, booked: Any) -> None:
    op = _as(sw, "op-analyst")
    names = {
        a["name"]: a["balance_fen"]
        for a in client.get("/api/v1/finance/accounts", headers=op).json()["items"]
    }
    assert names["Income:Commission"] == -1_500
    assert (
        client.get("/api/v1/finance/trial-balance", headers=op).json()["currencies"]["CNY"]["total_fen"] == 0
    )
    first = client.get("/api/v1/finance/entries?limit=2", headers=op)
    assert first.status_code == 200 and 'rel="next"' in first.headers["link"]
    body = first.json()
    assert [e["kind"] for e in body["items"]] == ["capture", "hold"]
    rest = client.get(f"/api/v1/finance/entries?limit=2&after={body['next']}", headers=op).json()
    assert [e["kind"] for e in rest["items"]] == ["top_up"] and rest["next"] is None
    filtered = client.get(
        f"/api/v1/finance/entries?ref_type=transaction&ref_id={booked.id}&kind=capture", headers=op
    ).json()
    assert sum(p["amount_fen"] for p in filtered["items"][0]["postings"]) == 0
    assert (
        client.get("/api/v1/finance/entries?from=soon", headers=op).json()["error"]["detail"]["field"]
        == "from"
    )
    assert client.get("/api/v1/finance/accounts", headers=_as(sw, "res1")).status_code == 403


def test_an_entry_is_reversed_with_a_reason(sw: ServicesWorld, client: Any, booked: Any) -> None:
    op = _as(sw, "op-admin")
    capture = client.get("/api/v1/finance/entries?kind=capture", headers=op).json()["items"][0]
    assert (
        client.post(
            f"/api/v1/finance/entries/{capture['id']}/reverse", json={"reason": ""}, headers=op
        ).status_code
        == 422
    )
    made = client.post(
        f"/api/v1/finance/entries/{capture['id']}/reverse", json={"reason": "wrong order"}, headers=op
    )
    assert made.status_code == 201 and made.json()["reverses_id"] == capture["id"]
    again = client.post(
        f"/api/v1/finance/entries/{capture['id']}/reverse", json={"reason": "again"}, headers=op
    )
    assert again.status_code == 409
    assert client.get("/api/v1/finance/entries/999999", headers=op).status_code == 404


def test_settlements_run_and_read_and_a_payout(sw: ServicesWorld, client: Any, booked: Any) -> None:
    op = _as(sw, "op-admin")
    run = client.post("/api/v1/finance/settlements/run?month=2026-11", headers=op).json()["items"]
    assert run[0]["net_payable_fen"] == 8_500 and run[0]["difference_fen"] == 0
    own = client.get("/api/v1/finance/settlements?month=2026-11", headers=_as(sw, "clean-admin")).json()[
        "items"
    ]
    assert [r["provider_id"] for r in own] == [sw.providers["clean"].id]
    assert client.get("/api/v1/finance/settlements", headers=_as(sw, "fix-admin")).json()["items"] == []
    assert client.post("/api/v1/finance/settlements/run?month=2026-99", headers=op).status_code == 422
    paid = client.post(
        "/api/v1/finance/payouts",
        json={"provider_id": sw.providers["clean"].id, "amount_fen": 8_500},
        headers=op,
    )
    assert paid.status_code == 201
    assert client.get("/api/v1/finance/payouts", headers=op).json()["items"][0]["amount_fen"] == 8_500
    too_much = client.post(
        "/api/v1/finance/payouts", json={"provider_id": sw.providers["clean"].id, "amount_fen": 1}, headers=op
    )
    assert too_much.status_code == 409


def test_exports_stream_beancount_and_csv(sw: ServicesWorld, client: Any, booked: Any) -> None:
    op = _as(sw, "op-analyst")
    text = client.get("/api/v1/finance/export.beancount", headers=op)
    assert text.status_code == 200 and "open Income:Commission CNY" in text.text
    assert "  Income:Commission  -15.00 CNY" in text.text
    table = client.get("/api/v1/finance/export.csv?from=2026-11-01&to=2026-11-30", headers=op)
    assert table.headers["content-type"].startswith("text/csv")
    assert len(table.text.strip().splitlines()) == 1 + 2 + 2 + 3
    assert client.get("/api/v1/finance/export.csv", headers=_as(sw, "clean-admin")).status_code == 403
