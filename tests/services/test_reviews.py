"""Two-sided blind reviews: hidden until both sides have reviewed or the 7-day window closes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.orders_kit import act, paid
from services.sworld import MONDAY, ServicesWorld
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.services import engine, reviews
from zhishe.services.models import Provider, Transaction


def _delivered(sw: ServicesWorld) -> Transaction:
    txn, _ = paid(sw)
    return act(sw, "clean-staff", txn, "deliver")


def _review(
    sw: ServicesWorld, who: str, txn: Transaction, rating: object = 5, text: object = "很好"
) -> object:
    done = reviews.submit(sw.session, actor=sw.actor(who), transaction_id=txn.id, rating=rating, text=text)
    sw.session.commit()
    return done


def _seen_by(sw: ServicesWorld, who: str | None, txn: Transaction) -> list[tuple[str, int]]:
    actor = sw.actor(who) if who else None
    return [(r.side, r.rating) for r in reviews.list_reviews(sw.session, actor=actor, transaction_id=txn.id)]


def test_a_review_stays_hidden_from_the_other_side_and_the_public_until_both_have_reviewed(
    sw: ServicesWorld,
) -> None:
    txn = _delivered(sw)
    _review(sw, "res1", txn, 4)
    assert _seen_by(sw, "res1", txn) == [("resident", 4)]
    assert _seen_by(sw, "clean-admin", txn) == []
    assert _seen_by(sw, None, txn) == []
    assert _seen_by(sw, "res2", txn) == []
    provider = sw.session.get(Provider, txn.provider_id)
    assert provider is not None and provider.rating_count == 0
    _review(sw, "clean-admin", txn, 5)
    sw.session.refresh(txn)
    assert txn.state == "reviewed" and txn.timer_at is None
    assert sorted(_seen_by(sw, None, txn)) == [("provider", 5), ("resident", 4)]
    sw.session.refresh(provider)
    assert (provider.rating_sum, provider.rating_count) == (4, 1)


def test_the_window_closing_publishes_a_lone_review(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    _review(sw, "res1", txn, 3)
    assert engine.run_timers(sw.session, MONDAY + timedelta(days=6)) == 0
    assert engine.sweep(sw.session, MONDAY + timedelta(days=7)) == {"timers_fired": 1}
    sw.session.refresh(txn)
    assert txn.state == "reviewed"
    assert _seen_by(sw, None, txn) == [("resident", 3)]
    with pytest.raises(Conflict, match="takes no reviews"):
        _review(sw, "clean-admin", txn)


def test_each_side_reviews_once(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    _review(sw, "res1", txn)
    with pytest.raises(Conflict, match="already reviewed"):
        _review(sw, "res1", txn)


def test_reviews_open_only_after_delivery(sw: ServicesWorld) -> None:
    txn, _ = paid(sw)
    with pytest.raises(Conflict, match="takes no reviews"):
        _review(sw, "res1", txn)


@pytest.mark.parametrize(
    ("rating", "text", "field"),
    [(0, "", "rating"), (6, "", "rating"), ("5", "", "rating"), (5, "x" * 2001, "text")],
)
def test_a_bad_rating_or_text_is_refused_by_name(
    sw: ServicesWorld, rating: object, text: object, field: str
) -> None:
    txn = _delivered(sw)
    with pytest.raises(Invalid) as caught:
        _review(sw, "res1", txn, rating, text)
    assert caught.value.detail["field"] == field


def test_strangers_cannot_review(sw: ServicesWorld) -> None:
    txn = _delivered(sw)
    with pytest.raises(NotFound):
        _review(sw, "res2", txn)
    with pytest.raises(Forbidden):
        _review(sw, "op-admin", txn)
