"""Helpers of the group buy, membership box and neighbour rental tests: wallets funded at the
service desk, the neighbour who rents out a parking space, and the ledger checks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from services.sworld import B1, ServicesWorld
from zhishe.finance import ledger
from zhishe.finance.models import Entry
from zhishe.services import wallet
from zhishe.services.models import Provider


def fund(sw: ServicesWorld, names: Iterable[str], fen: int) -> None:
    """Put ``fen`` in each named resident's wallet (a bank top-up by the operator), committed."""
    for name in names:
        wallet.top_up(
            session=sw.session,
            actor=sw.actor("op-steward"),
            user_id=sw.users[name].id,
            amount_fen=fen,
            via="bank",
        )
    sw.session.commit()


def neighbour(sw: ServicesWorld, world: Any) -> Provider:
    """Neighbour Wang, a one-person provider organisation (user ``wang``) renting things out in B1."""
    sw.orgs["wang"] = world.org("wang", kind="service_provider", name="王先生的车位")
    sw.users["wang"] = world.user("wang", sw.orgs["wang"], role="admin")
    return sw.provider("wang", "wang", B1, ["rental"], radius_m=1000)


def entries(sw: ServicesWorld) -> int:
    """How many ledger entries there are (the session's objects are read afresh afterwards)."""
    sw.session.expire_all()
    return int(sw.session.scalar(select(func.count()).select_from(Entry)) or 0)


def assert_balanced(sw: ServicesWorld) -> None:
    """Every currency's postings sum to zero."""
    assert all(total == 0 for total in ledger.totals_by_currency(sw.session).values())


def held(sw: ServicesWorld, name: str = "res1") -> int:
    """What a resident's wallet holds, in fen."""
    return -ledger.balance(sw.session, ledger.wallet(sw.users[name].id))
