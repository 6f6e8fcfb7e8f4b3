"""Wallets: top-ups at the desk and through the gateway, balance and history, and concurrent spends
that can never overdraw a wallet (on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from services.moneykit import assert_zero_sum, make_txn, top_up
from services.sworld import ServicesWorld
from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.core.errors import Conflict, Forbidden, Invalid
from zhishe.finance import ledger
from zhishe.services import payments, wallet
from zhishe.services.models import Transaction


@pytest.fixture(autouse=True)
def _ledger_sums_to_zero(sw: ServicesWorld) -> Iterator[None]:
    yield
    assert_zero_sum(sw.session)


def test_operator_tops_up_at_the_desk_and_the_resident_sees_it(sw: ServicesWorld) -> None:
    s = sw.session
    uid = sw.users["res1"].id
    row = wallet.top_up(
        session=s, actor=sw.actor("op-dispatcher"), user_id=uid, amount_fen=20_000, via="cash"
    )
    s.commit()
    assert row.state == "done" and row.entry_id is not None
    assert wallet.balance(session=s, actor=sw.actor("res1"), user_id=uid) == 20_000
    assert ledger.balance(s, "Assets:Cash") == 20_000
    page = wallet.history(session=s, actor=sw.actor("res1"), user_id=uid)
    assert [(line.kind, line.amount_fen) for line in page.items] == [("top_up", 20_000)]


def test_a_resident_may_not_top_up_at_the_desk_nor_read_another_wallet(sw: ServicesWorld) -> None:
    s = sw.session
    with pytest.raises(Forbidden):
        wallet.top_up(
            session=s, actor=sw.actor("res1"), user_id=sw.users["res1"].id, amount_fen=100, via="bank"
        )
    with pytest.raises(Forbidden):
        wallet.balance(session=s, actor=sw.actor("res2"), user_id=sw.users["res1"].id)


def test_bad_top_up_amounts_name_the_field(sw: ServicesWorld) -> None:
    for bad in (0, -5, 10**9, 1.5, True):
        with pytest.raises(Invalid) as raised:
            wallet.top_up(
                session=sw.session,
                actor=sw.actor("op-admin"),
                user_id=sw.users["res1"].id,
                amount_fen=bad,
                via="bank",  # type: ignore[arg-type]
            )
        assert raised.value.detail["field"] == "amount_fen"


def test_a_gateway_top_up_waits_for_the_callback(sw: ServicesWorld) -> None:
    s = sw.session
    uid = sw.users["res1"].id
    row = wallet.top_up(session=s, actor=sw.actor("res1"), user_id=uid, amount_fen=5_000, via="gateway")
    s.commit()
    assert row.state == "pending" and row.reference.startswith("ZST")
    assert ledger.balance(s, ledger.wallet(uid)) == 0


def test_concurrent_spends_never_overdraw_a_wallet(sw: ServicesWorld) -> None:
    s = sw.session
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    uid = sw.users["res1"].id
    top_up(s, uid, 10_000)
    ids = [make_txn(s, listing, sw.users["res1"], price_fen=4_000).id for _ in range(6)]
    s.commit()
    maker = get_sessionmaker(get_settings().database_url)
    barrier = threading.Barrier(len(ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def spend(txn_id: int) -> None:
        with maker() as session:
            txn = session.get(Transaction, txn_id)
            assert txn is not None
            barrier.wait()
            try:
                payments.hold(session, txn=txn, actor=None, method="wallet")
                session.commit()
                result = "ok"
            except Conflict:
                session.rollback()
                result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=spend, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused", "refused", "refused"]
    s.rollback()
    assert ledger.balance(s, ledger.wallet(uid)) == -2_000
    assert ledger.balance(s, ledger.escrow_of()) == -8_000
