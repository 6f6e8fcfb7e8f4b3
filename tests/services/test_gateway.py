"""The online gateway adapter: checkouts, and signed callbacks verified with the gateway's public
key (a key pair made locally; no network). Hostile callbacks are recorded and post nothing."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import require_service
from services.moneykit import KeyPair, assert_zero_sum, entries, key_pair, make_txn, signed
from services.sworld import ServicesWorld
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger
from zhishe.services import gateway, payments, wallet
from zhishe.services.models import GatewayCallback, Payment, Transaction

_KEYS = key_pair()


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


@pytest.fixture()
def keys(sw: ServicesWorld) -> Iterator[KeyPair]:
    gateway.install_public_key(_KEYS.public_pem())
    yield _KEYS
    gateway.public_key_path().unlink(missing_ok=True)


def _callbacks(sw: ServicesWorld) -> list[tuple[bool, str]]:
    rows = sw.session.query(GatewayCallback).order_by(GatewayCallback.id).all()
    return [(row.verified, row.outcome) for row in rows]


def _top_up(sw: ServicesWorld, fen: int = 5_000) -> Any:
    row = wallet.top_up(
        session=sw.session, actor=sw.actor("res1"), user_id=sw.users["res1"].id, amount_fen=fen, via="gateway"
    )
    sw.session.commit()
    return row


def _refused(sw: ServicesWorld, body: dict[str, Any], error: type[Exception]) -> Exception:
    before = entries(sw.session)
    with pytest.raises(error) as raised:
        gateway.handle_callback(sw.session, body)
    sw.session.commit()  # the refusal's record is kept
    assert entries(sw.session) == before
    return raised.value


def test_a_signed_callback_credits_a_gateway_top_up(sw: ServicesWorld, keys: KeyPair) -> None:
    row = _top_up(sw)
    gateway.handle_callback(
        sw.session, signed(keys, reference=row.reference, amount_fen=5_000, status="SUCCESS")
    )
    sw.session.commit()
    assert row.state == "done"
    assert ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == -5_000
    assert ledger.balance(sw.session, payments.GATEWAY) == 5_000
    assert _callbacks(sw) == [(True, "top-up credited")]


def test_a_callback_with_a_bad_signature_is_refused_and_recorded(sw: ServicesWorld, keys: KeyPair) -> None:
    row = _top_up(sw)
    body = signed(keys, reference=row.reference, amount_fen=5_000, status="SUCCESS")
    body["amount_fen"] = 500_000  # tampered after signing
    error = _refused(sw, body, Forbidden)
    assert "signature" in str(error)
    forged = signed(key_pair(seed=99), reference=row.reference, amount_fen=5_000, status="SUCCESS")
    _refused(sw, forged, Forbidden)
    assert [v for v, _ in _callbacks(sw)] == [False, False]
    assert row.state == "pending"


def test_unknown_reference_wrong_amount_and_replay_are_refused(sw: ServicesWorld, keys: KeyPair) -> None:
    row = _top_up(sw)
    _refused(sw, signed(keys, reference="ZSNOPE", amount_fen=5_000, status="SUCCESS"), Invalid)
    error = _refused(sw, signed(keys, reference=row.reference, amount_fen=4_999, status="SUCCESS"), Invalid)
    assert isinstance(error, Invalid) and error.detail["field"] == "amount_fen"
    good = signed(keys, reference=row.reference, amount_fen=5_000, status="SUCCESS")
    gateway.handle_callback(sw.session, good)
    sw.session.commit()
    _refused(sw, good, Conflict)  # the same callback again
    assert [v for v, _ in _callbacks(sw)] == [False, False, True, False]
    assert ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == -5_000


def test_a_callback_missing_a_field_names_it(sw: ServicesWorld, keys: KeyPair) -> None:
    error = _refused(sw, {"reference": "x", "amount_fen": 1, "status": "SUCCESS"}, Invalid)
    assert isinstance(error, Invalid) and error.detail["field"] == "signature"


def test_order_checkout_then_callback_holds_the_money_and_books(sw: ServicesWorld, keys: KeyPair) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    txn = make_txn(s, listing, sw.users["res1"], price_fen=12_000)
    s.commit()
    order = payments.gateway_checkout(s, txn=txn, actor=sw.actor("res1"))
    again = payments.gateway_checkout(s, txn=txn, actor=sw.actor("res1"))
    s.commit()
    assert order["reference"] == again["reference"] and order["amount_fen"] == 12_000
    assert f"reference={order['reference']}" in order["order_string"]
    gateway.handle_callback(
        s, signed(keys, reference=order["reference"], amount_fen=12_000, status="SUCCESS")
    )
    s.commit()
    s.refresh(txn)
    assert txn.state == "booked" and txn.payment_method == "gateway"
    assert ledger.balance(s, ledger.escrow_of()) == -12_000
    payments.capture(s, txn=txn, actor=None)
    payments.refund(s, txn=txn, actor=None, amount_fen=2_000, reason="partly done")
    s.commit()
    # refunds through the gateway are paid out of the gateway account
    assert ledger.balance(s, payments.GATEWAY) == 10_000


def test_a_payment_for_an_order_that_expired_meanwhile_goes_back(sw: ServicesWorld, keys: KeyPair) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    txn = make_txn(s, listing, sw.users["res1"], price_fen=12_000)
    order = payments.gateway_checkout(s, txn=txn, actor=sw.actor("res1"))
    txn.state = "expired"
    s.commit()
    # the pending payment was not failed by a release, so the gateway's money arrives
    callback = gateway.handle_callback(
        s, signed(keys, reference=order["reference"], amount_fen=12_000, status="SUCCESS")
    )
    s.commit()
    assert "refunded" in callback.outcome
    assert ledger.balance(s, ledger.escrow_of()) == 0 and ledger.balance(s, payments.GATEWAY) == 0
    assert s.query(Transaction).filter_by(id=txn.id).one().state == "expired"


def test_the_checkout_amount_is_the_server_price(sw: ServicesWorld) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    txn = make_txn(s, listing, sw.users["res1"], price_fen=12_000)
    with pytest.raises(Forbidden):
        payments.gateway_checkout(s, txn=txn, actor=sw.actor("res2"))
    order = payments.gateway_checkout(s, txn=txn, actor=sw.actor("res1"))
    pending = s.query(Payment).filter_by(transaction_id=txn.id, method="gateway").one()
    assert (pending.state, pending.amount_fen, order["amount_fen"]) == ("pending", 12_000, 12_000)


def test_a_key_that_is_not_rsa_pem_is_refused() -> None:
    with pytest.raises(Invalid):
        gateway.parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    with pytest.raises(Invalid):
        gateway.parse_public_key("not a key")


def test_signatures_made_by_openssl_verify(tmp_path: Path) -> None:
    require_service("openssl", shutil.which("openssl") is not None, "the openssl command is not installed")
    key = tmp_path / "gateway.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True
    ).stdout.decode()
    message = gateway.canonical({"reference": "ZSO1", "amount_fen": "100", "status": "SUCCESS"}).encode()
    (tmp_path / "m").write_bytes(message)
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key), str(tmp_path / "m")],
        check=True,
        capture_output=True,
    ).stdout
    parsed = gateway.parse_public_key(public)
    assert gateway.verify_signature(message, signature, parsed)
    assert not gateway.verify_signature(message + b"x", signature, parsed)
    assert base64.b64encode(signature)
