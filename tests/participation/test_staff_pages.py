"""The staff work-order pages: the queue with its filters, team tabs, paging and all-or-nothing bulk
actions; one order's action forms (transfer, not ours, duplicate, joint orders...); response
templates; routing rules; the map; who may see them; and the audit trail of their reads."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from helpers import csrf_of, login
from participation.pworld import B1, B2, MONDAY, ParticipationWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.config import reset_settings
from zhishe.participation import service
from zhishe.participation.models import Request, RequestUpdate, ResponseTemplate, RoutingRule
from zhishe.participation.staff_pages import router as staff_router

_ANSWERS: dict[str, dict[str, Any]] = {
    "streetlight": {"pole_number": "P-7", "light_state": "out"},
    "garbage": {"bin_type": ["kitchen"]},
    "leak": {"flow": 3},
    "noise": {"noticed_at": "2026-11-01T22:00:00+08:00"},
}


@pytest.fixture(autouse=True)
def _staff_routes(app: Any) -> None:
    """The staff pages are part of the app (included here only if the app does not yet)."""
    if not any(getattr(r, "path", "").startswith("/work") for r in app.routes):
        app.include_router(staff_router)


@pytest.fixture()
def at_monday() -> Iterator[None]:
    clock.set_clock(lambda: MONDAY)
    yield
    clock.set_clock(None)


def _report(
    pw: ParticipationWorld,
    code: str = "streetlight",
    *,
    who: str = "res1",
    where: tuple[float, float] = B1,
    text: str = "路灯不亮",
) -> Request:
    request = service.submit(
        session=pw.session,
        actor=pw.actor(who),
        category_code=code,
        description=text,
        lat=where[0],
        lon=where[1],
        answers=_ANSWERS[code],
    )
    pw.session.commit()
    return request


def _act(pw: ParticipationWorld, who: str, request: Request, action: str, **values: Any) -> None:
    service.act(session=pw.session, actor=pw.actor(who), request_id=request.id, action=action, **values)
    pw.session.commit()


def _ids_in_queue(page_html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page_html)]


def _post(client: Any, path: str, data: dict[str, Any], page: str | None = None) -> Any:
    token = csrf_of(client, page or path)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def _fresh(pw: ParticipationWorld, request: Request) -> Request:
    pw.session.expire_all()
    found = pw.session.get(Request, request.id)
    assert found is not None
    return found


# --- the queue ------------------------------------------------------------------------------------


def test_the_queue_shows_my_team_by_default_and_filters_by_team_state_category_and_deadline(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    lights = [_report(pw) for _ in range(3)]
    garbage = _report(pw, "garbage", where=B2, text="垃圾满了")  # routed to the city, no team
    leak = _report(pw, "leak", text="水管漏水")  # the water department's
    _act(pw, "city-lead", lights[0], "accept")
    login(client, "city-lead")

    mine = client.get("/work")
    assert mine.status_code == 200
    assert _ids_in_queue(mine.text) == [r.id for r in lights]
    lights_tab = re.search(r'<a href="/work\?team=(\d+)&amp;state=open" class="on">路灯班', mine.text)
    assert lights_tab is not None and int(lights_tab.group(1)) == pw.teams["lights"].id

    everything = client.get("/work?team=all")
    assert _ids_in_queue(everything.text) == [*[r.id for r in lights], garbage.id]
    assert leak.id not in _ids_in_queue(everything.text)

    assert _ids_in_queue(client.get("/work?team=all&state=accepted").text) == [lights[0].id]
    assert _ids_in_queue(client.get("/work?team=all&state=new").text) == [garbage.id]
    assert _ids_in_queue(client.get("/work?team=all&category=garbage").text) == [garbage.id]
    assert _ids_in_queue(client.get(f"/work?team={pw.teams['lights'].id}&state=assigned").text) == [
        lights[1].id,
        lights[2].id,
    ]

    # the garbage SLA is 8 working hours; the street lights' 3 working days
    clock.set_clock(lambda: MONDAY + timedelta(days=1, hours=5))
    login(client, "city-lead")  # a web session lasts hours, not days
    late = client.get("/work?team=all&overdue=yes")
    assert _ids_in_queue(late.text) == [garbage.id]
    assert "overdue-row" in late.text
    assert _ids_in_queue(client.get("/work?team=all&overdue=no").text) == [r.id for r in lights]

    bad = client.get("/work?state=sleeping")
    assert bad.status_code == 422 and "状态必须是以下之一" in bad.text


def test_the_queue_pages_by_keyset(client: Any, pw: ParticipationWorld, at_monday: None) -> None:
    orders = [_report(pw) for _ in range(5)]
    login(client, "city-worker")
    first = client.get("/work?limit=2")
    assert _ids_in_queue(first.text) == [orders[0].id, orders[1].id]
    next_link = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))
    second = client.get(next_link)
    assert _ids_in_queue(second.text) == [orders[2].id, orders[3].id]
    third = client.get(html.unescape(re.search(r'href="([^"]+)" rel="next"', second.text).group(1)))
    assert _ids_in_queue(third.text) == [orders[4].id]
    assert 'rel="next"' not in third.text
    assert client.get("/work?after=garbage").status_code == 422


def test_bulk_assign_is_all_or_nothing_and_names_the_refused_order(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    a, b, c = (
        _report(pw, "garbage", where=B2),
        _report(pw, "garbage", where=B2),
        _report(pw, "garbage", where=B2),
    )
    _act(pw, "city-lead", c, "resolve", note="清运完毕")
    login(client, "city-lead")
    worker = pw.users["city-worker"].id
    lights = pw.teams["lights"].id

    refused = _post(
        client,
        "/work/bulk",
        {
            "ids": [a.id, b.id, c.id],
            "action": "assign",
            "team_id": lights,
            "assignee_user_id": worker,
            "back": "/work?team=all",
        },
        page="/work?team=all",
    )
    assert refused.status_code == 409
    assert f"#{c.id}" in refused.text
    for order in (a, b):
        fresh = _fresh(pw, order)
        assert fresh.state == "new" and fresh.assignee_user_id is None and fresh.team_id is None

    done = _post(
        client,
        "/work/bulk",
        {
            "ids": [a.id, b.id],
            "action": "assign",
            "team_id": lights,
            "assignee_user_id": worker,
            "back": "/work?team=all&state=open",
        },
        page="/work?team=all",
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/work?team=all&state=open&done=2"
    for order in (a, b):
        fresh = _fresh(pw, order)
        assert (fresh.state, fresh.team_id, fresh.assignee_user_id) == ("assigned", lights, worker)
    assert (
        '<p class="success" role="status" id="done">已更新 2 个工单。'
        in client.get(done.headers["location"]).text
    )

    nothing = _post(client, "/work/bulk", {"action": "accept", "back": "//evil.example/"}, page="/work")
    assert nothing.status_code == 422
    outside = _post(
        client,
        "/work/bulk",
        {"ids": [a.id], "action": "accept", "back": "https://evil.example/"},
        page="/work",
    )
    assert outside.status_code == 303 and outside.headers["location"].startswith("/work?done=1")


def test_the_bulk_form_refuses_a_missing_security_token(client: Any, pw: ParticipationWorld) -> None:
    order = _report(pw)
    login(client, "city-lead")
    response = client.post("/work/bulk", data={"ids": [order.id], "action": "accept"}, follow_redirects=False)
    assert response.status_code == 403
    assert _fresh(pw, order).state == "assigned"


# --- one order ------------------------------------------------------------------------------------


def test_each_action_form_moves_the_order_and_refusals_rerender_the_page(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    order = _report(pw)
    path = f"/work/orders/{order.id}"
    login(client, "city-worker")
    page = client.get(path)
    assert page.status_code == 200
    assert 'value="accept"' in page.text and 'value="close"' not in page.text
    assert "res1" in page.text  # the reporter, for staff

    def do(action: str, **extra: Any) -> Any:
        return _post(client, path, {"action": action, **extra})

    assert do("accept").status_code == 303
    assert do("start").status_code == 303
    bad_reason = do("wait", reason="holiday")
    assert bad_reason.status_code == 422 and 'name="reason" class="field-error"' in bad_reason.text
    assert _fresh(pw, order).state == "in_progress"
    assert do("wait", reason="parts", note="等灯泡").status_code == 303
    fresh = _fresh(pw, order)
    assert (fresh.state, fresh.wait_reason) == ("waiting", "parts") and fresh.paused_at is not None
    assert do("resume").status_code == 303
    assert do("internal_note", note="备件已到仓库").status_code == 303
    assert do("comment", note="今天下午修理").status_code == 303
    refused = do("resume")  # not waiting: the page comes back with the reason, nothing changes
    assert refused.status_code == 409
    assert 'id="error"' in refused.text and "in_progress" in refused.text
    assert 'value="resolve"' in refused.text
    not_mine = do("close")  # closing is the dispatcher's
    assert not_mine.status_code == 403 and 'id="error"' in not_mine.text
    assert _fresh(pw, order).state == "in_progress"
    assert do("resolve", note="已更换灯泡").status_code == 303
    assert _fresh(pw, order).state == "resolved"

    login(client, "city-lead")
    assert do("close").status_code == 303
    assert _fresh(pw, order).state == "closed"
    assert do("reopen", note="居民反映仍不亮").status_code == 303
    assert _fresh(pw, order).state == "reopened"
    assert do("reject").status_code == 422  # a rejection needs its public reason
    assert do("reject", note="该路灯属小区物业管理").status_code == 303
    fresh = _fresh(pw, order)
    assert fresh.state == "rejected" and fresh.public_reason == "该路灯属小区物业管理"

    entries = list(pw.session.scalars(select(RequestUpdate).where(RequestUpdate.request_id == order.id)))
    internal = [u for u in entries if u.text == "备件已到仓库"]
    public = [u for u in entries if u.text == "今天下午修理"]
    assert len(internal) == 1 and internal[0].public is False
    assert len(public) == 1 and public[0].public is True
    timeline = client.get(path).text
    assert "备件已到仓库" in timeline and "已更换灯泡" in timeline


def test_a_duplicate_links_to_its_original(client: Any, pw: ParticipationWorld, at_monday: None) -> None:
    original, repeat = _report(pw), _report(pw, who="res2")
    login(client, "city-lead")
    path = f"/work/orders/{repeat.id}"
    assert _post(client, path, {"action": "duplicate", "of_id": "abc"}).status_code == 422
    assert _post(client, path, {"action": "duplicate", "of_id": original.id}).status_code == 303
    fresh = _fresh(pw, repeat)
    assert (fresh.state, fresh.duplicate_of_id) == ("duplicate", original.id)
    assert f'href="/work/orders/{repeat.id}"' in client.get(f"/work/orders/{original.id}").text


def test_transfer_and_not_ours_name_who_is_responsible(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    order = _report(pw)
    login(client, "city-lead")
    path = f"/work/orders/{order.id}"
    water, city = pw.orgs["water"], pw.orgs["city"]
    no_reason = _post(client, path, {"action": "transfer", "org_id": water.id})
    assert no_reason.status_code == 422
    wrong_team = _post(
        client,
        path,
        {"action": "transfer", "org_id": water.id, "team_id": pw.teams["lights"].id, "note": "x"},
    )
    assert wrong_team.status_code == 422 and _fresh(pw, order).org_id == city.id
    moved = _post(
        client,
        path,
        {"action": "transfer", "org_id": water.id, "team_id": pw.teams["repair"].id, "note": "是井盖漏水"},
    )
    assert moved.status_code == 303
    fresh = _fresh(pw, order)
    assert (fresh.org_id, fresh.team_id, fresh.state) == (water.id, pw.teams["repair"].id, "assigned")
    # once transferred, the city no longer works it; the water department does
    assert client.get(path).status_code == 403

    login(client, "water-worker")
    page = client.get(path)
    assert page.status_code == 200 and "是井盖漏水" in page.text
    assert _post(client, path, {"action": "not_ours", "note": "路灯归城管"}).status_code == 422
    handed = _post(client, path, {"action": "not_ours", "responsible": city.id, "note": "路灯归城管"})
    assert handed.status_code == 303
    fresh = _fresh(pw, order)
    assert fresh.org_id == city.id and fresh.state == "new"
    assert "城管局" in fresh.public_reason
    last = pw.session.scalars(
        select(RequestUpdate).where(RequestUpdate.request_id == order.id).order_by(RequestUpdate.id.desc())
    ).first()
    assert (
        last is not None and last.kind == "transfer" and "城管局" in last.text and "路灯归城管" in last.text
    )


def test_a_joint_order_closes_only_when_every_department_is_done(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    order = _report(pw, text="路灯杆倒地压坏水管")
    login(client, "city-lead")
    path = f"/work/orders/{order.id}"
    empty_task = _post(
        client,
        f"{path}/split",
        {"part_org": [pw.orgs["water"].id, ""], "part_team": ["", ""], "part_task": ["", ""]},
        page=path,
    )
    assert empty_task.status_code == 422
    split = _post(
        client,
        f"{path}/split",
        {
            "part_org": [pw.orgs["city"].id, pw.orgs["water"].id, ""],
            "part_team": [pw.teams["lights"].id, pw.teams["repair"].id, ""],
            "part_task": ["扶正灯杆", "修复水管", ""],
        },
        page=path,
    )
    assert split.status_code == 303
    children = list(
        pw.session.scalars(select(Request).where(Request.parent_id == order.id).order_by(Request.id))
    )
    assert [c.org_id for c in children] == [pw.orgs["city"].id, pw.orgs["water"].id]
    assert _fresh(pw, order).state == "in_progress"
    page = client.get(path).text
    assert "扶正灯杆" in page and "修复水管" in page and f'data-child="{children[1].id}"' in page

    early = _post(client, path, {"action": "resolve", "note": "完成"})
    assert early.status_code == 409 and _fresh(pw, order).state == "in_progress"

    assert (
        _post(
            client, f"/work/orders/{children[0].id}", {"action": "resolve", "note": "灯杆已扶正"}
        ).status_code
        == 303
    )
    assert _fresh(pw, order).state == "in_progress"

    login(client, "water-worker")
    child = f"/work/orders/{children[1].id}"
    assert _post(client, child, {"action": "resolve", "note": "水管已修复"}).status_code == 303
    assert _fresh(pw, order).state == "resolved"

    login(client, "city-lead")
    assert _post(client, path, {"action": "close"}).status_code == 303
    assert _fresh(pw, order).state == "closed"
    # residents never see the internal tasks
    login(client, "res1")
    assert client.get(f"/work/orders/{children[0].id}").status_code in (403, 404)


# --- templates, routing, map ----------------------------------------------------------------------


def test_response_templates_are_added_and_fill_the_note(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    order = _report(pw)
    login(client, "city-lead")
    assert _post(client, "/work/templates", {"title": "", "text": "x"}).status_code == 422
    added = _post(client, "/work/templates", {"title": "已修复", "text": "您好，路灯已修复，感谢反映。"})
    assert added.status_code == 303
    row = pw.session.scalar(select(ResponseTemplate).where(ResponseTemplate.org_id == pw.orgs["city"].id))
    assert row is not None and row.title == "已修复"
    assert "您好，路灯已修复，感谢反映。" in client.get("/work/templates").text

    page = client.get(f"/work/orders/{order.id}?template={row.id}").text
    note = re.search(r'<textarea id="note"[^>]*>([^<]*)</textarea>', page)
    assert note is not None and note.group(1) == "您好，路灯已修复，感谢反映。"
    blank = re.search(
        r'<textarea id="note"[^>]*>([^<]*)</textarea>', client.get(f"/work/orders/{order.id}").text
    )
    assert blank is not None and blank.group(1) == ""

    login(client, "water-worker")  # another organisation's templates are its own
    assert "已修复" not in client.get("/work/templates").text


def test_the_routing_page_lists_rules_by_name_and_lets_configurers_change_them(
    client: Any, pw: ParticipationWorld
) -> None:
    login(client, "city-lead")
    page = client.get("/work/routing")
    assert page.status_code == 200
    assert (
        "路灯故障" in page.text and "路灯班" in page.text and "grid1" in page.text and "运营公司" in page.text
    )
    assert 'id="rule-new"' not in page.text
    before = pw.session.query(RoutingRule).count()
    refused = _post(client, "/work/routing", {"org_id": pw.orgs["water"].id, "category": "noise"})
    assert refused.status_code == 403

    login(client, "bureau-admin")
    assert 'id="rule-new"' in client.get("/work/routing").text
    bad = _post(client, "/work/routing", {"org_id": pw.orgs["water"].id, "assignee": "nobody"})
    assert bad.status_code == 422 and "nobody" in bad.text
    added = _post(
        client,
        "/work/routing",
        {
            "category": "noise",
            "area": "C1-B2",
            "org_id": pw.orgs["water"].id,
            "team_id": pw.teams["repair"].id,
            "priority": "5",
        },
    )
    assert added.status_code == 303
    pw.session.expire_all()
    rule = pw.session.scalar(select(RoutingRule).where(RoutingRule.area_id == pw.areas["B2"].id))
    assert rule is not None and (rule.org_id, rule.team_id, rule.priority) == (
        pw.orgs["water"].id,
        pw.teams["repair"].id,
        5,
    )
    assert _post(client, "/work/routing", {"delete": rule.id}).status_code == 303
    pw.session.expire_all()
    assert pw.session.query(RoutingRule).count() == before


def _map_data(page_html: str) -> dict[str, Any]:
    raw = re.search(r'<script type="application/json" id="work-map-data">(.*?)</script>', page_html, re.S)
    assert raw is not None
    return json.loads(raw.group(1))


def test_the_map_draws_the_queue_points_without_external_addresses(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    a = _report(pw)
    b = _report(pw, where=B2, text="</script><b>x</b>")
    _act(pw, "city-lead", b, "accept")
    login(client, "city-lead")
    page = client.get("/work/map?team=all")
    assert page.status_code == 200
    data = _map_data(page.text)
    assert [(p["id"], p["lat"], p["lon"], p["state"]) for p in data["points"]] == [
        (a.id, B1[0], B1[1], "assigned"),
        (b.id, B2[0], B2[1], "accepted"),
    ]
    assert all(p["url"] == f"/work/orders/{p['id']}" for p in data["points"])
    assert data["tiles"] is None
    assert {x["name"] for x in data["buildings"]} >= {"1号楼", "2号楼"}
    assert "http://" not in page.text and "https://" not in page.text
    assert (
        "/static/vendor/plotly.min.js" in page.text and "scattermap" in page.text and "white-bg" in page.text
    )
    assert "<b>x</b>" not in page.text  # user text cannot break out of the embedded JSON

    accepted = _map_data(client.get("/work/map?team=all&state=accepted").text)
    assert [p["id"] for p in accepted["points"]] == [b.id]

    clock.set_clock(lambda: MONDAY + timedelta(days=10))
    login(client, "city-lead")
    late = _map_data(client.get("/work/map?team=all").text)
    assert all(p["overdue"] and p["colour"] == "#d93025" for p in late["points"])


@pytest.fixture()
def tile_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    monkeypatch.setenv("ZHISHE_MAP_TILE_URL", url)
    reset_settings()
    yield url
    monkeypatch.delenv("ZHISHE_MAP_TILE_URL")
    reset_settings()


def test_a_configured_tile_url_becomes_the_map_layer(
    client: Any, pw: ParticipationWorld, tile_url: str
) -> None:
    _report(pw)
    login(client, "city-worker")
    assert _map_data(client.get("/work/map").text)["tiles"] == tile_url


# --- who may see them -----------------------------------------------------------------------------


def test_residents_get_403_and_visitors_are_sent_to_log_in(client: Any, pw: ParticipationWorld) -> None:
    order = _report(pw)
    for path in ("/work", f"/work/orders/{order.id}", "/work/map", "/work/routing", "/work/templates"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303, 307), path
        assert response.headers["location"].startswith("/login"), path
    login(client, "res1")
    for path in ("/work", f"/work/orders/{order.id}", "/work/map", "/work/routing", "/work/templates"):
        assert client.get(path).status_code == 403, path
    token = csrf_of(client, "/")
    refused = client.post(f"/work/orders/{order.id}", data={"action": "accept", "csrf_token": token})
    assert refused.status_code == 403
    assert _fresh(pw, order).state == "assigned"


def test_another_departments_staff_cannot_see_or_move_the_order(client: Any, pw: ParticipationWorld) -> None:
    order = _report(pw)
    login(client, "water-worker")
    assert client.get(f"/work/orders/{order.id}").status_code == 403
    assert _post(client, f"/work/orders/{order.id}", {"action": "accept"}, page="/work").status_code == 403
    assert _fresh(pw, order).state == "assigned"
    assert client.get(f"/work?org={pw.orgs['city'].id}").status_code == 403

    login(client, "bureau-dispatcher")  # the data bureau looks at any organisation's queue
    page = client.get(f"/work?org={pw.orgs['city'].id}&team=all")
    assert page.status_code == 200 and _ids_in_queue(page.text) == [order.id]
    assert 'id="org-picker"' in page.text


def test_reading_the_queue_and_an_order_is_audited(client: Any, pw: ParticipationWorld) -> None:
    order = _report(pw)
    login(client, "city-lead")
    client.get("/work")
    client.get(f"/work/orders/{order.id}")
    pw.session.expire_all()
    events = list(
        pw.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.actor_user_id == pw.users["city-lead"].id)
            .order_by(AuditEvent.id)
        )
    )
    actions = [(e.action, e.object_id) for e in events]
    assert ("participation.queue.read", str(pw.orgs["city"].id)) in actions
    assert ("participation.request.read", str(order.id)) in actions


def test_the_order_page_shows_every_kind_of_answer(
    client: Any, pw: ParticipationWorld, at_monday: None
) -> None:
    leak, garbage, noise = _report(pw, "leak"), _report(pw, "garbage", where=B2), _report(pw, "noise")
    login(client, "water-worker")
    assert re.search(r"<dd>3</dd>", client.get(f"/work/orders/{leak.id}").text)
    login(client, "city-lead")
    assert "<dd>kitchen</dd>" in client.get(f"/work/orders/{garbage.id}").text
    assert "<dd>2026-11-01 22:00</dd>" in client.get(f"/work/orders/{noise.id}").text
