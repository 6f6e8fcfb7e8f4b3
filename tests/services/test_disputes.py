"""Disputes: a work order through participation when it has a complaint category, else the
operator's queue with a deadline; resolved with an award refunded from the capture."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.orders_kit import act, balanced, entries, paid, wallet_of
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.participation.models import Category, Request
from zhishe.services import disputes
from zhishe.services.models import Dispute, Transaction


def _delivered(sw: ServicesWorld) -> Transaction:
    txn, _ = paid(sw)
    return act(sw, "clean-staff", txn, "deliver")


def _open(sw: ServicesWorld, txn: Transaction, who: str = "res1", claim: object = 3_000) -> Dispute:
    dispute = disputes.open_dispute(
        sw.session, actor=sw.actor(who), transaction_id=txn.id, reason="没有打扫厨房", claim_fen=claim
    )
    sw.session.commit()
    return dispute


def test_without_a_complaint_category_a_dispute_waits_in_the_operator_queue_for_3_working_days(
    sw: ServicesWorld,
) -> None:
    txn = _delivered(sw)
    dispute = _open(sw, txn)
    assert dispute.request_id is None and dispute.state == "open"
    # opened on Monday: due at the end of Thursday, the third working day after
    assert dispute.due_at == (MONDAY + timedelta(days=4)).replace(hour=0)
    queue = disputes.list_disputes(sw.session, actor=sw.actor("op-dispatcher"))
    assert [d.id for d in queue.items] == [dispute.id]


def test_with_a_complaint_category_a_dispute_opens_a_work_order(sw: ServicesWorld) -> None:
    sw.session.add(
        Category(
            code="complaint",
            name_zh="消费投诉",
            name_en="Complaints",
            keywords="投诉,complaint",
            created_at=MONDAY,
        )
    )
    sw.session.commit()
    txn = _delivered(sw)
    dispute = _open(sw, txn)
    assert dispute.request_id is not None
    request = sw.session.get(Request, dispute.request_id)
    assert request is not None and f"订单 {txn.id}" in request.description


def test_resolving_with_an_award_refunds_the_resident(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    dispute = _open(sw, txn)
    done = disputes.resolve(
        sw.session,
        actor=sw.actor("op-steward"),
        dispute_id=dispute.id,
        award_fen=3_000,
        resolution="部分退款",
    )
    sw.session.commit()
    assert done.state == "resolved" and done.awarded_fen == 3_000
    sw.session.refresh(txn)
    assert txn.refunded_fen == 3_000 and wallet_of(sw, "res1") == 93_000
    assert balanced(sw)
    with pytest.raises(Conflict, match="already resolved"):
        disputes.resolve(
            sw.session, actor=sw.actor("op-steward"), dispute_id=dispute.id, award_fen=0, resolution="again"
        )


def test_an_award_larger_than_the_capture_is_refused_and_nothing_is_posted(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    dispute = _open(sw, txn)
    before = entries(sw)
    with pytest.raises(Invalid) as caught:
        disputes.resolve(
            sw.session,
            actor=sw.actor("op-steward"),
            dispute_id=dispute.id,
            award_fen=10_001,
            resolution="全额",
        )
    assert caught.value.detail["field"] == "award_fen"
    sw.session.rollback()
    assert entries(sw) == before and sw.session.get(Dispute, dispute.id).state == "open"  # type: ignore[union-attr]


def test_only_the_operator_resolves_and_only_parties_open(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    with pytest.raises(NotFound):
        _open(sw, txn, "res2")
    dispute = _open(sw, txn)
    for who in ("res1", "clean-admin", "op-analyst"):
        with pytest.raises(Forbidden):
            disputes.resolve(
                sw.session, actor=sw.actor(who), dispute_id=dispute.id, award_fen=0, resolution="no"
            )
    with pytest.raises(Forbidden):
        disputes.list_disputes(sw.session, actor=sw.actor("clean-admin"))


def test_one_open_dispute_per_order_and_a_claim_within_the_price(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    with pytest.raises(Invalid) as caught:
        _open(sw, txn, claim=10_001)
    assert caught.value.detail["field"] == "claim_fen"
    sw.session.rollback()
    _open(sw, txn)
    clock.set_clock(lambda: MONDAY + timedelta(hours=1))
    with pytest.raises(Conflict, match="already has an open dispute"):
        _open(sw, txn, "clean-admin")
