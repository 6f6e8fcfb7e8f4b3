"""The revenue pages: the profit model with its what-if panel (a GET form), the operator's
stream pages, and the resident's membership page (buy and cancel without JavaScript)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from finance.revenue_world import balanced, entries, fund, transaction
from helpers import csrf_of, login
from services.sworld import MONDAY, ServicesWorld
from zhishe.finance import ads, ledger, memberships


def test_the_profit_page_shows_the_month_the_trends_and_the_what_if_projection(
    sw: ServicesWorld, client: Any
) -> None:
    clean = sw.listing(sw.providers["clean"], "housekeeping")
    transaction(sw, clean, "res1", MONDAY - timedelta(days=40), captured_fen=10_000, commission_fen=1_500)
    login(client, "op-analyst")
    client.cookies.set("zhishe_lang", "en")
    page = client.get("/finance/profit?from=2026-09&to=2026-11&commission.housekeeping=3000")
    assert page.status_code == 200, page.text[:500]
    text = page.text
    row = text.split('data-month="2026-09" data-stream="marketplace">', 1)[1].split("</tr>", 1)[0]
    assert "¥100.00" in row and "¥15.00" in row and "15.00%" in row
    projected = text.split('data-category="housekeeping">', 1)[1].split("</tr>", 1)[0]
    assert "¥5.00" in projected and "¥10.00" in projected  # today's commission a month, and doubled
    assert "elasticity is not modelled" in text
    assert "/static/vendor/plotly.min.js" in text and "cdn" not in text.lower()
    bad = client.get("/finance/profit?from=2026-9")
    assert bad.status_code == 422 and "from must be a month" in bad.text


def test_residents_and_providers_may_not_open_the_operator_pages(sw: ServicesWorld, client: Any) -> None:
    login(client, "res1")
    for path in (
        "/finance/profit",
        "/finance/costs",
        "/finance/ads",
        "/finance/memberships",
        "/finance/data-plans",
        "/finance/energy",
    ):
        assert client.get(path).status_code == 403, path


def test_the_operator_pages_list_and_enter_with_csrf(sw: ServicesWorld, client: Any) -> None:
    login(client, "op-admin")
    client.cookies.set("zhishe_lang", "en")
    for path in ("/finance/memberships", "/finance/ads", "/finance/data-plans", "/finance/energy"):
        assert client.get(path).status_code == 200, path
    token = csrf_of(client, "/finance/costs")
    added = client.post(
        "/finance/costs",
        data={
            "csrf_token": token,
            "month": "2026-11",
            "stream": "energy",
            "label": "充电桩维护",
            "amount": "12.34",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    bad = client.post(
        "/finance/costs",
        data={"csrf_token": token, "month": "2026-11", "stream": "energy", "label": "x", "amount": "-1"},
    )
    assert bad.status_code == 422 and "amount must be" in bad.text
    csv = "month,stream,label,amount\n2026-11,data,服务器,10\n2026-11,data,带宽,1.999\n"
    refused = client.post(
        "/finance/costs", data={"csrf_token": token}, files={"file": ("c.csv", csv.encode(), "text/csv")}
    )
    assert refused.status_code == 422 and "Row 3" in refused.text
    no_token = client.post(
        "/finance/costs", data={"month": "2026-11", "stream": "energy", "label": "x", "amount": "1"}
    )
    assert no_token.status_code == 403
    listed = client.get("/finance/costs").text
    assert "充电桩维护" in listed and "¥12.34" in listed and "服务器" not in listed
    sw.session.expire_all()
    assert ledger.balance(sw.session, "Expenses:Operating:Energy") == 1_234 and entries(sw.session) == 1


def test_a_resident_buys_and_cancels_a_membership_on_the_phone_page(sw: ServicesWorld, client: Any) -> None:
    plan = memberships.create_plan(
        session=sw.session, actor=sw.actor("op-admin"), code="gold", name_zh="金卡会员", annual_fee_fen=12_000
    )
    sw.session.commit()
    login(client, "res1")
    page = client.get("/services/membership")
    assert page.status_code == 200 and "金卡会员" in page.text and "¥120.00" in page.text
    assert 'name="viewport"' in page.text
    token = csrf_of(client, "/services/membership")
    short = client.post(
        "/services/membership", data={"csrf_token": token, "action": "buy", "plan_id": str(plan.id)}
    )
    assert short.status_code == 409  # an empty wallet: refused, nothing kept
    sw.session.expire_all()
    assert memberships.active_plan(sw.session, sw.users["res1"].id) is None
    fund(sw.session, sw.users["res1"].id, 12_000)
    bought = client.post(
        "/services/membership",
        data={"csrf_token": token, "action": "buy", "plan_id": str(plan.id)},
        follow_redirects=False,
    )
    assert bought.status_code == 303
    assert "2027-11-01" in client.get("/services/membership").text
    cancelled = client.post(
        "/services/membership", data={"csrf_token": token, "action": "cancel"}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    sw.session.expire_all()
    assert ledger.balance(sw.session, ledger.wallet(sw.users["res1"].id)) == -11_000
    assert balanced(sw.session)


def test_the_ad_include_links_through_the_click_counter(sw: ServicesWorld, client: Any) -> None:
    from zhishe.core.web.shell import environment

    slot = ads.create_slot(
        session=sw.session, actor=sw.actor("op-admin"), code="n", placement="notices", name_zh="公告"
    )
    booking = ads.book(
        session=sw.session,
        actor=sw.actor("op-admin"),
        slot_id=slot.id,
        org_id=sw.orgs["farm"].id,
        starts_on=MONDAY.date(),
        ends_on=MONDAY.date(),
        headline="<b>蔬菜</b>",
        link="https://farm.example/a",
    )
    sw.session.commit()
    shown = ads.serve(sw.session, "notices")
    html = environment().get_template("finance/revenue_ad_slot.html").render(ad=shown, _=lambda s, **k: s)
    assert f'href="/ads/{booking.id}/click"' in html and "&lt;b&gt;" in html
    sw.session.commit()
    click = client.get(f"/ads/{booking.id}/click", follow_redirects=False)
    assert click.status_code == 303 and click.headers["location"] == "https://farm.example/a"
    sw.session.refresh(booking)
    assert (booking.impressions, booking.clicks) == (1, 1)
