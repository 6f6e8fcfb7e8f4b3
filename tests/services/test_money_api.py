"""The money routes under /api/v1/services: wallet, top-ups, vouchers, programmes, checkout and the
gateway callback, in the platform's error envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import bearer
from services.moneykit import assert_zero_sum, entries, key_pair, make_txn, signed
from services.sworld import ServicesWorld
from zhishe.finance import ledger
from zhishe.services import gateway
from zhishe.services.models import GatewayCallback, Payment

_RW = ["services:read", "services:write", "finance:read", "finance:write"]
_KEYS = key_pair(seed=11)


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def _as(sw: ServicesWorld, name: str) -> dict[str, str]:
    return bearer(sw.session, sw.users[name], scopes=_RW)


def test_operator_tops_up_and_the_resident_reads_the_wallet(sw: ServicesWorld, client: Any) -> None:
    uid = sw.users["res1"].id
    made = client.post(
        "/api/v1/services/wallet/top-up",
        json={"user_id": uid, "amount_fen": 8_800, "via": "bank"},
        headers=_as(sw, "op-admin"),
    )
    assert made.status_code == 201, made.text
    got = client.get("/api/v1/services/wallet", headers=_as(sw, "res1")).json()
    assert got["balance_fen"] == 8_800 and got["history"][0]["kind"] == "top_up"
    assert got["history"][0]["at"].endswith("+00:00")
    refused = client.get(f"/api/v1/services/wallet?user_id={uid}", headers=_as(sw, "res2"))
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "forbidden"


def test_a_gateway_top_up_is_paid_by_a_signed_callback(sw: ServicesWorld, client: Any) -> None:
    gateway.install_public_key(_KEYS.public_pem())
    try:
        made = client.post(
            "/api/v1/services/wallet/top-up",
            json={"amount_fen": 3_000, "via": "gateway"},
            headers=_as(sw, "res1"),
        )
        assert made.status_code == 201
        checkout = made.json()["checkout"]
        bad = client.post(
            "/api/v1/services/gateway/callback",
            data={
                **signed(_KEYS, reference=checkout["reference"], amount_fen=3_000, status="SUCCESS"),
                "amount_fen": "1",
            },
        )
        assert bad.status_code == 403 and bad.json()["error"]["detail"]["field"] == "signature"
        good = client.post(
            "/api/v1/services/gateway/callback",
            data=signed(_KEYS, reference=checkout["reference"], amount_fen=3_000, status="SUCCESS"),
        )
        assert good.status_code == 200, good.text
        replay = client.post(
            "/api/v1/services/gateway/callback",
            json=signed(_KEYS, reference=checkout["reference"], amount_fen=3_000, status="SUCCESS"),
        )
        assert replay.status_code == 409
    finally:
        gateway.public_key_path().unlink(missing_ok=True)
    sw.session.rollback()
    rows = sw.session.query(GatewayCallback).order_by(GatewayCallback.id).all()
    assert [r.verified for r in rows] == [False, True, False]
    assert ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == -3_000


def test_a_client_supplied_amount_or_fee_is_ignored_at_checkout(sw: ServicesWorld, client: Any) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    txn = make_txn(sw.session, listing, sw.users["res1"], price_fen=12_345)
    sw.session.commit()
    answer = client.post(
        f"/api/v1/services/orders/{txn.id}/gateway-checkout",
        json={"amount_fen": 1, "price_fen": 1, "commission_fen": 0, "fee_fen": 0},
        headers=_as(sw, "res1"),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["amount_fen"] == 12_345
    sw.session.rollback()
    assert sw.session.query(Payment).filter_by(transaction_id=txn.id).one().amount_fen == 12_345


def test_voucher_programmes_are_created_funded_and_issued(sw: ServicesWorld, client: Any) -> None:
    op = _as(sw, "op-admin")
    made = client.post(
        "/api/v1/services/voucher-programmes",
        json={
            "code": "ElderlyCare",
            "name_zh": "居家养老服务券",
            "kind": "government_subsidy",
            "amount_fen": 20_000,
            "eligibility": {"min_age": 60},
            "categories": ["housekeeping"],
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
            "commission_fen": 5,
        },
        headers=op,
    )
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert (
        client.post(
            f"/api/v1/services/voucher-programmes/{pid}/fund", json={"amount_fen": 100_000}, headers=op
        ).status_code
        == 201
    )
    assert client.post("/api/v1/services/voucher-programmes/issue-due", headers=op).json() == {"issued": 1}
    mine = client.get("/api/v1/services/vouchers", headers=_as(sw, "res1")).json()["items"]
    assert [v["amount_fen"] for v in mine] == [20_000]
    assert client.get("/api/v1/services/vouchers", headers=_as(sw, "res2")).json()["items"] == []
    changed = client.patch(f"/api/v1/services/voucher-programmes/{pid}", json={"active": False}, headers=op)
    assert changed.json()["active"] is False
    refused = client.post("/api/v1/services/voucher-programmes/issue-due", headers=_as(sw, "res1"))
    assert refused.status_code == 403


def test_bad_programme_input_is_a_422_naming_the_field_and_writes_nothing(
    sw: ServicesWorld, client: Any
) -> None:
    before = entries(sw.session)
    answer = client.post(
        "/api/v1/services/voucher-programmes",
        json={
            "code": "bad code!",
            "name_zh": "x",
            "kind": "government_subsidy",
            "amount_fen": 100,
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
        },
        headers=_as(sw, "op-admin"),
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["detail"]["field"] == "code"
    assert (
        client.get("/api/v1/services/voucher-programmes", headers=_as(sw, "op-admin")).json()["items"] == []
    )
    assert entries(sw.session) == before
