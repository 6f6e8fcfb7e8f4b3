"""Helpers of the money tests: transactions made straight from the world's factories (not through
the process engine), voucher programmes, ledger counts, the zero-sum check, and an RSA key pair
for the gateway made here with integer arithmetic (no network, no extra package)."""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.finance import ledger
from zhishe.finance.models import Entry, Posting
from zhishe.services.models import Listing, Transaction, VoucherProgramme


def make_txn(
    session: Session,
    listing: Listing,
    user: Any,
    *,
    price_fen: int = 10_000,
    commission_bps: int = 1500,
    state: str = "pending_payment",
) -> Transaction:
    """A transaction of ``listing`` for ``user`` at ``price_fen``, with the quote pricing would give."""
    now = clock.now()
    commission = price_fen * commission_bps // 10_000
    txn = Transaction(
        process=listing.process,
        listing_id=listing.id,
        provider_id=listing.provider_id,
        resident_user_id=user.id,
        state=state,
        state_entered_at=now,
        quantity=1,
        quote={"price_fen": price_fen, "commission_bps": commission_bps, "commission_fen": commission},
        price_fen=price_fen,
        commission_fen=commission,
        created_at=now,
        updated_at=now,
    )
    session.add(txn)
    session.flush()
    return txn


def entries(session: Session) -> int:
    """How many ledger entries there are."""
    return int(session.scalar(select(func.count(Entry.id))) or 0)


def postings(session: Session) -> int:
    """How many ledger postings there are."""
    return int(session.scalar(select(func.count(Posting.id))) or 0)


def assert_zero_sum(session: Session) -> None:
    """The sum of every posting is zero per currency, and every account balance matches its postings."""
    session.rollback()
    for currency, total in ledger.totals_by_currency(session).items():
        assert total == 0, f"the ledger does not sum to zero in {currency}: {total}"


def top_up(session: Session, user_id: int, fen: int) -> None:
    """Put ``fen`` in a wallet the way the service desk does (ledger only)."""
    ledger.post(
        session,
        kind="top_up",
        stream="wallet",
        lines=[("Assets:Bank", fen), (ledger.wallet(user_id), -fen)],
        ref_type="test",
    )


def programme(
    session: Session,
    *,
    code: str = "ElderlyCare",
    kind: str = "government_subsidy",
    amount_fen: int = 20_000,
    eligibility: dict[str, Any] | None = None,
    categories: list[str] | None = None,
    period: str = "monthly",
    fund_fen: int = 1_000_000,
) -> VoucherProgramme:
    """A voucher programme (¥200 a month for residents aged 60+ by default), funded."""
    from zhishe.services import vouchers

    row = VoucherProgramme(
        code=code,
        name_zh="居家养老服务券",
        name_en="Elderly-care voucher",
        kind=kind,
        funding_account=vouchers.funding_account_name(kind, code),
        amount_fen=amount_fen,
        period=period,
        eligibility={"min_age": 60} if eligibility is None else eligibility,
        categories=["housekeeping", "elderly_visit"] if categories is None else categories,
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 12, 31),
        active=True,
    )
    session.add(row)
    session.flush()
    if kind == "government_subsidy" and fund_fen:
        ledger.post(
            session,
            kind="subsidy_fund",
            lines=[("Assets:Bank", fund_fen), (row.funding_account, -fund_fen)],
            ref_type="test",
        )
    return row


# --- an RSA key pair for the gateway ------------------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _probably_prime(n: int, rng: random.Random) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probably_prime(candidate, rng):
            return candidate


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(raw)) + raw


def _der_len(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _seq(body: bytes) -> bytes:
    return b"\x30" + _der_len(len(body)) + body


@dataclass(frozen=True)
class KeyPair:
    """An RSA key pair: signs like the gateway does, and gives its public key as PEM."""

    n: int
    e: int
    d: int

    def public_pem(self) -> str:
        rsa = _seq(_der_int(self.n) + _der_int(self.e))
        algorithm = _seq(bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
        bits = b"\x03" + _der_len(len(rsa) + 1) + b"\x00" + rsa
        der = _seq(algorithm + bits)
        text = base64.b64encode(der).decode()
        body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
        return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"

    def sign(self, message: bytes) -> str:
        size = (self.n.bit_length() + 7) // 8
        info = _SHA256_PREFIX + hashlib.sha256(message).digest()
        encoded = b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info
        return base64.b64encode(
            pow(int.from_bytes(encoded, "big"), self.d, self.n).to_bytes(size, "big")
        ).decode()


def key_pair(seed: int = 7, bits: int = 2048) -> KeyPair:
    """A deterministic RSA key pair of ``bits`` bits."""
    rng = random.Random(seed)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e and (p * q).bit_length() == bits:
            return KeyPair(n=p * q, e=e, d=pow(e, -1, phi))


def signed(keys: KeyPair, **fields: Any) -> dict[str, Any]:
    """A callback body signed by ``keys`` the way the gateway signs it."""
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
    return {**fields, "signature": keys.sign(text.encode())}
