"""The order pages: booking from the listing page, paying, the provider's queue, reviews, disputes
and the operator's dispute queue, all through forms with CSRF tokens and no JavaScript."""

from __future__ import annotations

from typing import Any

from helpers import csrf_of, login
from services.orders_kit import cleaning, fund, slot_in
from services.sworld import ServicesWorld
from zhishe.services.models import Dispute, Transaction


def _english(client: Any, who: str) -> None:
    login(client, who)
    client.cookies.set("zhishe_lang", "en")


def _book(client: Any, sw: ServicesWorld) -> Transaction:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    _english(client, "res1")
    token = csrf_of(client, "/services/orders")
    reply = client.post(
        f"/services/listings/{listing.id}/book",
        data={"csrf_token": token, "slot_id": str(slot.id), "quantity": "2", "price_fen": "1"},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    txn = sw.session.query(Transaction).one()
    assert reply.headers["location"] == f"/services/orders/{txn.id}"
    return txn


def test_a_resident_books_pays_and_sees_the_timeline(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    txn = _book(client, sw)
    page = client.get(f"/services/orders/{txn.id}")
    assert page.status_code == 200
    assert 'id="pay"' in page.text and "¥100.00" in page.text and "waiting for payment" in page.text
    token = csrf_of(client, f"/services/orders/{txn.id}")
    paid = client.post(
        f"/services/orders/{txn.id}/pay",
        data={"csrf_token": token, "method": "wallet"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    page = client.get(f"/services/orders/{txn.id}")
    assert "booked" in page.text and 'id="pay"' not in page.text
    assert "Cancelling now is free." in page.text
    mine = client.get("/services/orders")
    assert f"/services/orders/{txn.id}" in mine.text


def test_a_form_without_its_csrf_token_is_refused(client: Any, sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    login(client, "res1")
    reply = client.post(
        f"/services/listings/{listing.id}/book", data={"slot_id": str(slot.id), "quantity": "2"}
    )
    assert reply.status_code == 403
    assert sw.session.query(Transaction).count() == 0


def test_a_full_slot_shows_the_waitlist_offer(client: Any, sw: ServicesWorld) -> None:
    listing = cleaning(sw)
    slot = slot_in(sw, listing)
    slot.booked = 1
    sw.session.commit()
    _english(client, "res2")
    token = csrf_of(client, "/services/orders")
    reply = client.post(
        f"/services/listings/{listing.id}/book",
        data={"csrf_token": token, "slot_id": str(slot.id), "quantity": "2"},
    )
    assert reply.status_code == 409 and "fully booked" in reply.text
    assert f'action="/services/slots/{slot.id}/waitlist"' in reply.text
    joined = client.post(
        f"/services/slots/{slot.id}/waitlist",
        data={"csrf_token": token, "quantity": "2"},
        follow_redirects=False,
    )
    assert joined.status_code == 303 and joined.headers["location"] == "/services/orders?waitlist=1"


def test_the_provider_queue_delivers_and_both_sides_review(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    txn = _book(client, sw)
    token = csrf_of(client, f"/services/orders/{txn.id}")
    client.post(f"/services/orders/{txn.id}/pay", data={"csrf_token": token, "method": "wallet"})
    _english(client, "clean-staff")
    queue = client.get("/provider/orders")
    assert queue.status_code == 200 and f"#{txn.id}" in queue.text and "mark delivered" in queue.text
    token = csrf_of(client, "/provider/orders")
    done = client.post(
        f"/services/orders/{txn.id}/actions/deliver",
        data={"csrf_token": token, "back": "provider"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/provider/orders?done={txn.id}"
    client.post(
        f"/services/orders/{txn.id}/reviews", data={"csrf_token": token, "rating": "4", "text": "准时"}
    )
    _english(client, "res1")
    page = client.get(f"/services/orders/{txn.id}")
    assert 'id="review-form"' in page.text and "准时" not in page.text  # blind until both have reviewed
    token = csrf_of(client, f"/services/orders/{txn.id}")
    client.post(
        f"/services/orders/{txn.id}/reviews", data={"csrf_token": token, "rating": "5", "text": "很干净"}
    )
    page = client.get(f"/services/orders/{txn.id}")
    assert "准时" in page.text and "很干净" in page.text and "completed" in page.text


def test_a_bad_rating_re_renders_the_order_with_the_reason(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    txn = _book(client, sw)
    token = csrf_of(client, f"/services/orders/{txn.id}")
    client.post(f"/services/orders/{txn.id}/pay", data={"csrf_token": token, "method": "wallet"})
    reply = client.post(f"/services/orders/{txn.id}/reviews", data={"csrf_token": token, "rating": "9"})
    assert reply.status_code == 422 and 'id="form-error"' in reply.text and "rating must be" in reply.text


def test_a_stranger_gets_404_for_an_order_page(client: Any, sw: ServicesWorld) -> None:
    txn = _book(client, sw)
    login(client, "res2")
    assert client.get(f"/services/orders/{txn.id}").status_code == 404


def test_the_operator_resolves_a_dispute_from_its_queue(client: Any, sw: ServicesWorld) -> None:
    fund(sw, "res1")
    txn = _book(client, sw)
    token = csrf_of(client, f"/services/orders/{txn.id}")
    client.post(f"/services/orders/{txn.id}/pay", data={"csrf_token": token, "method": "wallet"})
    opened = client.post(
        f"/services/orders/{txn.id}/disputes",
        data={"csrf_token": token, "reason": "没来", "claim": "20"},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    dispute = sw.session.query(Dispute).one()
    assert dispute.claim_fen == 2_000
    _english(client, "op-steward")
    queue = client.get("/operator/disputes")
    assert queue.status_code == 200 and "没来" in queue.text
    token = csrf_of(client, "/operator/disputes")
    bad = client.post(
        f"/operator/disputes/{dispute.id}/resolve",
        data={"csrf_token": token, "award": "5", "resolution": "x"},
    )
    assert bad.status_code == 422 and "award_fen" in bad.text  # nothing captured yet to refund
    done = client.post(
        f"/operator/disputes/{dispute.id}/resolve",
        data={"csrf_token": token, "award": "0", "resolution": "已协调"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    login(client, "res1")
    assert client.get("/operator/disputes").status_code == 403


def test_the_provider_quotes_a_repair_from_the_order_page(client: Any, sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["fix"], "repair", "quote_repair", availability="none")
    login(client, "res1")
    token = csrf_of(client, "/services/orders")
    client.post(f"/services/listings/{listing.id}/book", data={"csrf_token": token, "quantity": "1"})
    txn = sw.session.query(Transaction).one()
    _english(client, "fix-admin")
    page = client.get(f"/services/orders/{txn.id}")
    assert 'id="quote-form"' in page.text
    token = csrf_of(client, f"/services/orders/{txn.id}")
    reply = client.post(
        f"/services/orders/{txn.id}/actions/quote",
        data={
            "csrf_token": token,
            "label_1": "换阀门",
            "amount_1": "150",
            "label_2": "上门费",
            "amount_2": "30.50",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 303
    sw.session.refresh(txn)
    assert txn.state == "quoted" and txn.price_fen == 18_050
