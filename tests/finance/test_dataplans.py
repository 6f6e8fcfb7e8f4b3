"""Data-service subscriptions: tokens checked against the enterprise, monthly billing, and the
plan's higher quota in the open-data API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from finance.revenue_world import balanced, entries
from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.config import reset_settings
from zhishe.core.errors import Forbidden, Invalid
from zhishe.finance import ads, dataplans, ledger
from zhishe.opendata import apptokens
from zhishe.opendata.api import _limiter


def plan(sw: ServicesWorld) -> int:
    made = dataplans.create_plan(
        session=sw.session,
        actor=sw.actor("op-admin"),
        code="pro",
        name_zh="专业版",
        monthly_fee_fen=50_000,
        per_minute=100,
        per_day=10_000,
    )
    sw.session.commit()
    return int(made.id)


def token(sw: ServicesWorld, username: str) -> tuple[int, str]:
    row, secret = apptokens.create(session=sw.session, actor=sw.actor(username), name="数据应用")
    sw.session.commit()
    return row.id, secret


def test_subscribing_bills_the_first_month_and_each_month_as_it_begins(sw: ServicesWorld) -> None:
    plan_id = plan(sw)
    token_id, _ = token(sw, "dev-admin")
    sub = dataplans.subscribe(
        session=sw.session,
        actor=sw.actor("dev-admin"),
        org_id=sw.orgs["dev"].id,
        plan_id=plan_id,
        app_token_ids=[token_id],
    )
    sw.session.commit()
    receivable = ads.receivable(sw.orgs["dev"].id)
    assert ledger.balance(sw.session, receivable) == 50_000
    assert dataplans.token_quota(sw.session, token_id) == (100, 10_000)
    before = entries(sw.session)
    assert dataplans.bill(sw.session, MONDAY + timedelta(days=20)) == {"subscriptions": 0, "billed_fen": 0}
    assert entries(sw.session) == before
    assert dataplans.bill(sw.session, MONDAY + timedelta(days=62)) == {
        "subscriptions": 1,
        "billed_fen": 100_000,
    }
    sw.session.commit()
    assert sub.months_paid == 3
    assert ledger.balance(sw.session, "Income:DataServices") == -150_000
    with clock.frozen(MONDAY + timedelta(days=100)):  # past what was billed: no quota until billed
        assert dataplans.token_quota(sw.session, token_id) is None
    dataplans.cancel(session=sw.session, actor=sw.actor("dev-admin"), subscription_id=sub.id)
    assert dataplans.token_quota(sw.session, token_id) is None
    assert balanced(sw.session)


def test_a_token_of_another_organisation_is_refused_and_nothing_is_billed(sw: ServicesWorld) -> None:
    plan_id = plan(sw)
    mine, _ = token(sw, "dev-admin")
    theirs, _ = token(sw, "res1")
    with pytest.raises(Invalid) as refused:
        dataplans.subscribe(
            session=sw.session,
            actor=sw.actor("dev-admin"),
            org_id=sw.orgs["dev"].id,
            plan_id=plan_id,
            app_token_ids=[mine, theirs],
        )
    sw.session.rollback()
    assert refused.value.detail == {"field": "app_token_ids", "tokens": [theirs]}
    assert entries(sw.session) == 0
    assert dataplans.token_quota(sw.session, mine) is None
    with pytest.raises(Invalid):
        dataplans.subscribe(
            session=sw.session,
            actor=sw.actor("dev-admin"),
            org_id=sw.orgs["dev"].id,
            plan_id=plan_id,
            app_token_ids=[999],
        )
    with pytest.raises(Forbidden):  # another enterprise's admin
        dataplans.subscribe(
            session=sw.session,
            actor=sw.actor("farm-admin"),
            org_id=sw.orgs["dev"].id,
            plan_id=plan_id,
            app_token_ids=[mine],
        )
    assert entries(sw.session) == 0


@pytest.fixture()
def strict_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A default app-token limit of 2 calls a minute, with a fresh limiter."""
    monkeypatch.setenv("ZHISHE_OPENDATA_RATE_TOKEN", "2")
    reset_settings()
    _limiter.cache_clear()
    apptokens.register_quota_finder(dataplans.token_quota)
    try:
        yield
    finally:
        monkeypatch.undo()
        reset_settings()
        _limiter.cache_clear()


def test_a_subscribed_token_gets_the_plans_quota_in_the_open_data_api(
    sw: ServicesWorld, client: Any, strict_limit: None
) -> None:
    plan_id = plan(sw)
    _, plain = token(sw, "dev-admin")
    paid_id, paid = token(sw, "dev-admin")
    dataplans.subscribe(
        session=sw.session,
        actor=sw.actor("dev-admin"),
        org_id=sw.orgs["dev"].id,
        plan_id=plan_id,
        app_token_ids=[paid_id],
    )
    sw.session.commit()
    with clock.frozen(MONDAY):
        url = "/opendata/api/v1/datasets"
        codes = [client.get(url, headers={"X-App-Token": plain}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]  # over the default limit without the plan
        answers = [client.get(url, headers={"X-App-Token": paid}) for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert answers[0].headers["x-ratelimit-limit"] == "100"
