"""The online payment gateway adapter: checkouts, and the gateway's signed callbacks.

A checkout opens a pending payment with a unique reference and returns what the client needs to
pay: the reference, the amount, and the order string, signed by the platform (HMAC-SHA256 with a
key derived from the secret key) so that the gateway's page can refuse a tampered one.

The gateway then calls ``POST /api/v1/services/gateway/callback`` with ``reference``,
``amount_fen``, ``status`` (``SUCCESS`` or ``FAILED``) and ``signature``: an RSA-SHA256
(PKCS #1 v1.5) signature, base64, over the other fields sorted by name and joined as
``key=value&key=value`` (the convention of the common Chinese gateways). It is verified with the
gateway's public key, a PEM file installed with ``zhishe services gateway-key PATH`` into
``<data_dir>/gateway/public_key.pem``. Verification needs only the public key, so it is done here
with integer arithmetic (RFC 8017, section 8.2.2) and no extra dependency.

Every callback is kept as a ``GatewayCallback`` row. A bad signature, an unknown reference, a wrong
amount or a replay is refused with a clear error, recorded with ``verified`` False, and nothing is
posted. A good one marks the payment done and posts it in the same database transaction: for an
order, Dr ``Assets:Gateway`` Cr ``Liabilities:Escrow`` and then the order's ``pay`` transition; for
a wallet top-up, Dr ``Assets:Gateway`` Cr the wallet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, can
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Forbidden, Invalid, ZhisheError
from zhishe.core.i18n import T
from zhishe.finance import ledger
from zhishe.services import payments
from zhishe.services.models import GatewayCallback, Payment, Transaction, WalletTopUp

__all__ = [
    "RsaPublicKey",
    "canonical",
    "checkout",
    "handle_callback",
    "install_public_key",
    "new_reference",
    "parse_public_key",
    "public_key_path",
    "verify_signature",
]

#: The DER prefix of a SHA-256 DigestInfo (RFC 8017, section 9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
#: rsaEncryption, 1.2.840.113549.1.1.1
_RSA_OID = bytes.fromhex("2a864886f70d010101")
_MIN_BITS = 2048
_FIELDS = ("reference", "amount_fen", "status")


# --- keys and signatures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key: modulus and exponent."""

    n: int
    e: int


def _der(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """Read one DER element of ``tag`` at ``pos``; return its contents and the next position."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError("unexpected DER element")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER element")
    return data[pos : pos + length], pos + length


def _rsa_sequence(body: bytes) -> RsaPublicKey:
    n_bytes, pos = _der(body, 0, 0x02)
    e_bytes, _ = _der(body, pos, 0x02)
    return RsaPublicKey(int.from_bytes(n_bytes, "big"), int.from_bytes(e_bytes, "big"))


def parse_public_key(pem: str) -> RsaPublicKey:
    """An RSA public key from PEM (``PUBLIC KEY`` or ``RSA PUBLIC KEY``); ``Invalid`` otherwise."""
    try:
        lines = [line.strip() for line in pem.strip().splitlines() if line.strip()]
        if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
            raise ValueError("not PEM")
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
        top, _ = _der(der, 0, 0x30)
        if "RSA PUBLIC KEY" in lines[0]:
            key = _rsa_sequence(top)
        else:
            algorithm, pos = _der(top, 0, 0x30)
            oid, _ = _der(algorithm, 0, 0x06)
            if oid != _RSA_OID:
                raise ValueError("not an RSA key")
            bits, _ = _der(top, pos, 0x03)
            if not bits or bits[0] != 0:
                raise ValueError("bad bit string")
            inner, _ = _der(bits[1:], 0, 0x30)
            key = _rsa_sequence(inner)
    except (ValueError, IndexError) as exc:
        raise Invalid(
            T("the gateway key is not an RSA public key in PEM form"),
            detail={"field": "key", "reason": str(exc)},
        ) from None
    if key.n.bit_length() < _MIN_BITS or key.e < 3 or key.e % 2 == 0:
        raise Invalid(
            T("the gateway key must be an RSA key of at least {bits} bits", bits=_MIN_BITS),
            detail={"field": "key"},
        )
    return key


def verify_signature(message: bytes, signature: bytes, key: RsaPublicKey) -> bool:
    """Whether ``signature`` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
    size = (key.n.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    value = int.from_bytes(signature, "big")
    if value >= key.n:
        return False
    encoded = pow(value, key.e, key.n).to_bytes(size, "big")
    digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)


def public_key_path() -> Path:
    """Where the gateway's public key is kept."""
    return get_settings().data_dir / "gateway" / "public_key.pem"


def install_public_key(pem: str) -> RsaPublicKey:
    """Check and install the gateway's public key (replacing any previous one)."""
    key = parse_public_key(pem)
    path = public_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pem.strip() + "\n", encoding="ascii")
    return key


def _public_key() -> RsaPublicKey | None:
    path = public_key_path()
    if not path.is_file():
        return None
    return parse_public_key(path.read_text(encoding="ascii", errors="replace"))


def canonical(fields: dict[str, Any]) -> str:
    """The signed text of a callback: every field but ``signature``, sorted, ``key=value&...``."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("signature", "sign_type"))


# --- checkout -------------------------------------------------------------------------------------


def new_reference(prefix: str = "O") -> str:
    """A fresh unique payment reference (out_trade_no)."""
    return f"ZS{prefix}{clock.now().strftime('%Y%m%d')}{secrets.token_hex(8).upper()}"


def _order_string(reference: str, amount_fen: int, currency: str, subject: str) -> tuple[str, str]:
    order = f"amount_fen={amount_fen}&currency={currency}&reference={reference}&subject={subject}"
    key = hmac.new(get_settings().secret().encode(), b"zhishe gateway orders", hashlib.sha256).digest()
    return order, base64.b64encode(hmac.new(key, order.encode(), hashlib.sha256).digest()).decode()


def order_for(reference: str, amount_fen: int, currency: str, subject: str) -> dict[str, Any]:
    """What a client needs to pay ``amount_fen`` at the gateway under ``reference``."""
    order, signature = _order_string(reference, amount_fen, currency, subject)
    return {
        "reference": reference,
        "amount_fen": amount_fen,
        "currency": currency,
        "order_string": order,
        "signature": signature,
    }


def checkout(
    session: Session, *, txn: Transaction, actor: Actor | None, voucher_id: int | None = None
) -> dict[str, Any]:
    """Open (or return the already open) pending gateway payment of ``txn`` for its price less a
    voucher, which is reserved now."""
    if actor is not None and actor.user_id != txn.resident_user_id and not can(actor, "services.operate"):
        raise Forbidden(
            T("only the resident who ordered may pay for this order"), detail={"transaction": txn.id}
        )
    pending = session.scalar(
        select(Payment).where(
            Payment.transaction_id == txn.id,
            Payment.method == "gateway",
            Payment.kind == "hold",
            Payment.state == "pending",
        )
    )
    if pending is None:
        now = payments.position(session, txn)
        if now.held_fen > 0 or now.method or now.captured_fen > 0:
            raise Conflict(T("this transaction is already paid for"), detail={"transaction": txn.id})
        subsidy = now.reserved_subsidy_fen
        if voucher_id is not None and subsidy == 0:
            from zhishe.services import vouchers

            subsidy = vouchers.redeem(session, voucher_id=voucher_id, txn=txn, actor=actor)
            txn.voucher_id = voucher_id
            txn.subsidy_fen = subsidy
            session.add(
                Payment(
                    transaction_id=txn.id,
                    method="voucher",
                    kind="hold",
                    amount_fen=subsidy,
                    state="done",
                    created_at=clock.now(),
                )
            )
        amount = txn.price_fen - subsidy
        if amount <= 0:
            raise Invalid(T("nothing is left to pay online"), detail={"field": "voucher_id"})
        pending = Payment(
            transaction_id=txn.id,
            method="gateway",
            kind="hold",
            amount_fen=amount,
            state="pending",
            reference=new_reference("O"),
            created_at=clock.now(),
        )
        session.add(pending)
        txn.updated_at = clock.now()
        session.flush()
        record(
            session=session,
            actor=actor,
            action="services.payment.checkout",
            object_type="services_transaction",
            object_id=txn.id,
            detail={"reference": pending.reference, "amount_fen": amount},
        )
    order = order_for(pending.reference, pending.amount_fen, txn.currency or "CNY", f"order-{txn.id}")
    return {**order, "transaction_id": txn.id}


# --- callbacks ------------------------------------------------------------------------------------


def _refuse(session: Session, row: GatewayCallback, error: ZhisheError) -> ZhisheError:
    """Record why a callback was refused; the error keeps that record (and nothing else was written)."""
    row.verified = False
    row.outcome = error.message[:200]
    session.add(row)
    session.flush()
    error.keep_writes = True
    return error


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in body.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def handle_callback(session: Session, body: dict[str, Any]) -> GatewayCallback:
    """Verify and apply one gateway callback (see the module docstring). Refusals raise, with the
    ``GatewayCallback`` row written and ``keep_writes`` set so that it is committed."""
    fields = _fields(body)
    row = GatewayCallback(
        received_at=clock.now(),
        reference=fields.get("reference", "")[:64],
        verified=False,
        body=json.dumps(body, ensure_ascii=False, default=str)[:10_000],
    )
    missing = [name for name in (*_FIELDS, "signature") if not fields.get(name)]
    if missing:
        raise _refuse(
            session,
            row,
            Invalid(T("the callback lacks {field}", field=missing[0]), detail={"field": missing[0]}),
        )
    key = _public_key()
    if key is None:
        raise _refuse(
            session, row, Conflict(T("no gateway public key is installed"), detail={"field": "signature"})
        )
    try:
        signature = base64.b64decode(fields["signature"], validate=True)
    except ValueError:
        signature = b""
    if not verify_signature(canonical(fields).encode(), signature, key):
        raise _refuse(
            session, row, Forbidden(T("the callback's signature is not valid"), detail={"field": "signature"})
        )
    amount_text, status = fields["amount_fen"], fields["status"]
    if not amount_text.isascii() or not amount_text.isdigit():
        raise _refuse(
            session,
            row,
            Invalid(T("amount_fen must be a whole number of fen"), detail={"field": "amount_fen"}),
        )
    if status not in ("SUCCESS", "FAILED"):
        raise _refuse(
            session, row, Invalid(T("status must be SUCCESS or FAILED"), detail={"field": "status"})
        )
    reference, amount = fields["reference"], int(amount_text)
    payment = session.scalar(
        select(Payment).where(Payment.reference == reference, Payment.method == "gateway")
    )
    top_up = None if payment is not None else _top_up(session, reference)
    target: Payment | WalletTopUp | None = payment or top_up
    if target is None:
        raise _refuse(
            session,
            row,
            Invalid(T("unknown payment reference {ref}", ref=reference[:64]), detail={"field": "reference"}),
        )
    if target.amount_fen != amount:
        raise _refuse(
            session,
            row,
            Invalid(
                T(
                    "amount_fen {amount} does not match the {expected} fen of this payment",
                    amount=amount,
                    expected=target.amount_fen,
                ),
                detail={"field": "amount_fen"},
            ),
        )
    if target.state != "pending":
        raise _refuse(
            session,
            row,
            Conflict(
                T("this payment was already settled ({state})", state=target.state),
                detail={"field": "reference"},
            ),
        )
    if status == "FAILED":
        target.state = "failed"
        row.outcome = "failed"
    elif payment is not None:
        row.outcome = _paid_order(session, payment)
    else:
        from zhishe.services import wallet

        assert top_up is not None
        wallet.confirm_top_up(session, top_up, actor=None)
        row.outcome = "top-up credited"
    row.verified = True
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=None,
        action="services.gateway.callback",
        object_type="services_gateway_callback",
        object_id=row.id,
        detail={"reference": reference, "status": status, "outcome": row.outcome},
    )
    return row


def _top_up(session: Session, reference: str) -> WalletTopUp | None:
    from zhishe.services import wallet

    return wallet.get_top_up(session, reference)


def _paid_order(session: Session, payment: Payment) -> str:
    """Post a confirmed order payment into escrow and fire the order's ``pay`` transition; if the
    order can no longer be paid (it expired meanwhile), the money goes straight back."""
    txn = session.get(Transaction, payment.transaction_id)
    assert txn is not None
    entry = ledger.post(
        session,
        kind="hold",
        lines=[(payments.GATEWAY, payment.amount_fen), (ledger.escrow_of(), -payment.amount_fen)],
        memo=f"gateway payment {payment.reference}",
        ref_type="transaction",
        ref_id=txn.id,
        provider_id=txn.provider_id,
        currency=txn.currency or "CNY",
    )
    payment.state = "done"
    payment.entry_id = entry.id
    txn.payment_method = "gateway"
    session.flush()
    try:
        with session.begin_nested():
            from zhishe.services import engine  # the process engine, loaded when first needed

            engine.fire(session, transaction_id=txn.id, transition="pay", actor=None, by="gateway")
    except ZhisheError as exc:
        session.refresh(txn)
        payments.release(session, txn=txn, actor=None)
        return f"paid but the order could not take it ({exc.message[:80]}): refunded"[:200]
    return "paid"
