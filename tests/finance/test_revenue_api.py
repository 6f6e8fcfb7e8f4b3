"""The revenue streams' JSON API: the envelope on bad input, server-side prices, replays, CSV
imports, the profit model and the what-if projection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from finance.revenue_world import balanced, entries, fund, tariff, transaction
from helpers import bearer
from services.sworld import MONDAY, ServicesWorld
from zhishe.finance import ledger

API = "/api/v1/finance"
WRITE = ["finance:read", "finance:write"]
RESIDENT = ["services:read", "services:write"]


def op(sw: ServicesWorld) -> dict[str, str]:
    headers: dict[str, str] = bearer(sw.session, sw.users["op-admin"], WRITE)
    return headers


def test_a_client_sent_fee_is_ignored_when_buying_a_membership(sw: ServicesWorld, client: Any) -> None:
    made = client.post(
        f"{API}/membership-plans",
        json={"code": "gold", "name_zh": "金卡", "annual_fee_fen": 12_000, "discount_bps": 500},
        headers=op(sw),
    )
    assert made.status_code == 201, made.text
    assert client.get(f"{API}/membership-plans").json()[0]["annual_fee_fen"] == 12_000
    fund(sw.session, sw.users["res1"].id, 20_000)
    bought = client.post(
        f"{API}/memberships",
        json={"plan_id": made.json()["id"], "fee_fen": 1, "annual_fee_fen": 1, "price_fen": 1},
        headers=bearer(sw.session, sw.users["res1"], RESIDENT),
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["fee_fen"] == 12_000
    sw.session.expire_all()
    assert ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == -8_000
    mine = client.get(f"{API}/memberships", headers=bearer(sw.session, sw.users["res1"], RESIDENT))
    assert [m["state"] for m in mine.json()["items"]] == ["active"]
    cancelled = client.post(
        f"{API}/memberships/{bought.json()['id']}/cancel",
        headers=bearer(sw.session, sw.users["res1"], RESIDENT),
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert balanced(sw.session)


def test_bad_amounts_get_the_envelope_naming_the_field_and_post_nothing(
    sw: ServicesWorld, client: Any
) -> None:
    headers = op(sw)
    for body in (
        {"month": "2026-11", "stream": "data", "label": "x", "amount_fen": -100},
        {"month": "2026-11", "stream": "data", "label": "x", "amount_fen": 10.5},
        {"month": "2026-11", "stream": "data", "label": "x", "amount_fen": "100"},
    ):
        answer = client.post(f"{API}/costs", json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        payload = answer.json()
        assert set(payload) == {"error", "request_id"} and "amount_fen" in str(payload["error"])
    answer = client.post(
        f"{API}/costs",
        json={"month": "2026-13", "stream": "data", "label": "x", "amount_fen": 1},
        headers=headers,
    )
    assert answer.status_code == 422 and answer.json()["error"]["detail"]["field"] == "month"
    sw.session.expire_all()
    assert entries(sw.session) == 0


def test_a_cost_csv_with_a_bad_row_is_refused_whole_and_a_good_one_is_posted(
    sw: ServicesWorld, client: Any
) -> None:
    headers = {**op(sw), "Content-Type": "text/csv"}
    bad = "month,stream,label,amount\n2026-11,data,服务器,100\n2026-11,data,带宽,abc\n"
    answer = client.post(f"{API}/costs/import", content=bad.encode(), headers=headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["detail"]["errors"][0]["row"] == 3
    sw.session.expire_all()
    assert entries(sw.session) == 0
    good = "month,stream,label,amount\n2026-11,data,服务器,100\n2026-11,energy,维护,0.5\n"
    answer = client.post(f"{API}/costs/import", content=good.encode(), headers=headers)
    assert answer.status_code == 201, answer.text
    assert [c["amount_fen"] for c in answer.json()["items"]] == [10_000, 50]
    assert len(client.get(f"{API}/costs?month=2026-11", headers=op(sw)).json()["items"]) == 2


def test_ads_through_the_api_overlap_is_409_a_javascript_link_is_422_and_clicks_redirect(
    sw: ServicesWorld, client: Any
) -> None:
    slot = client.post(
        f"{API}/ad-slots",
        json={"code": "home", "placement": "home", "name_zh": "首页", "day_fen": 500, "per_click_fen": 10},
        headers=op(sw),
    ).json()
    farm = bearer(sw.session, sw.users["farm-admin"], WRITE)
    body = {
        "slot_id": slot["id"],
        "org_id": sw.orgs["farm"].id,
        "starts_on": "2026-11-02",
        "ends_on": "2026-11-05",
    }
    made = client.post(
        f"{API}/ad-bookings", json={**body, "headline": "蔬菜", "link": "https://farm.example"}, headers=farm
    )
    assert made.status_code == 201, made.text
    clash = client.post(f"{API}/ad-bookings", json={**body, "headline": "又一个"}, headers=farm)
    assert clash.status_code == 409 and clash.json()["error"]["type"] == "conflict"
    js = client.post(
        f"{API}/ad-bookings",
        json={
            **body,
            "starts_on": "2026-11-10",
            "ends_on": "2026-11-11",
            "headline": "x",
            "link": "javascript:alert(1)",
        },
        headers=farm,
    )
    assert js.status_code == 422 and js.json()["error"]["detail"]["field"] == "link"
    served = client.get(f"{API}/ads/serve?placement=home").json()
    assert served["headline"] == "蔬菜"
    click = client.get(served["click_url"], follow_redirects=False)
    assert click.status_code in (302, 303, 307) and click.headers["location"] == "https://farm.example"
    billed = client.post(f"{API}/ads/bill", headers=op(sw))
    assert billed.json() == {"bookings": 1, "billed_fen": 500 + 10}
    assert client.post(f"{API}/ads/bill", headers=op(sw)).json()["bookings"] == 0
    sw.session.expire_all()
    assert balanced(sw.session)


def test_an_energy_charge_replay_answers_200_and_posts_nothing(sw: ServicesWorld, client: Any) -> None:
    tariff(sw)
    start = MONDAY.replace(hour=12)
    body = {
        "kind": "ev_charging",
        "source_ref": "cs-100",
        "user_id": sw.users["res1"].id,
        "kwh_milli": 4_000,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(hours=1)).isoformat(),
        "total_fen": 1,
    }
    first = client.post(f"{API}/energy/charges", json=body, headers=op(sw))
    assert first.status_code == 201, first.text
    assert first.json()["total_fen"] == 200 + 320 and first.json()["replay"] is False
    sw.session.expire_all()
    before = entries(sw.session)
    again = client.post(f"{API}/energy/charges", json=body, headers=op(sw))
    assert again.status_code == 200 and again.json()["replay"] is True
    sw.session.expire_all()
    assert entries(sw.session) == before
    missing = client.post(
        f"{API}/energy/charges",
        json={"kind": "dr_incentive", "source_ref": "d1", "user_id": sw.users["res1"].id},
        headers=op(sw),
    )
    assert missing.status_code == 422 and missing.json()["error"]["detail"]["field"] == "amount_fen"


def test_profit_and_whatif_over_the_api(sw: ServicesWorld, client: Any) -> None:
    clean = sw.listing(sw.providers["clean"], "housekeeping")
    transaction(sw, clean, "res1", MONDAY - timedelta(days=40), captured_fen=10_000, commission_fen=1_500)
    answer = client.get(f"{API}/profit?from=2026-09&to=2026-11", headers=op(sw))
    assert answer.status_code == 200, answer.text
    row = next(r for r in answer.json()["rows"] if r["month"] == "2026-09" and r["stream"] == "marketplace")
    assert (row["gmv_fen"], row["revenue_fen"], row["take_rate_bps"]) == (10_000, 1_500, 1_500)
    bad = client.get(f"{API}/profit?from=2026-9", headers=op(sw))
    assert bad.status_code == 422 and bad.json()["error"]["detail"]["field"] == "from"
    projected = client.get(f"{API}/whatif?commission.housekeeping=3000", headers=op(sw)).json()
    line = next(c for c in projected["categories"] if c["category"] == "housekeeping")
    assert (line["baseline_fen"], line["projected_fen"]) == (500, 1_000)
    resident = bearer(sw.session, sw.users["res1"], ["finance:read"])
    assert client.get(f"{API}/profit?from=2026-11", headers=resident).status_code == 403
