"""Suggestions through the JSON API and the pages: end to end with logins, tokens and CSRF, the
public view that never names the author, and text shown escaped."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import bearer, csrf_of, login
from participation.pworld import MONDAY, ParticipationWorld
from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.participation.models import Request, Suggestion

API = "/api/v1/participation/suggestions"
PAGES = "/participate/suggestions"
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture()
def threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """A threshold of two supports, so that res2 and res3 reach it."""
    monkeypatch.setattr(get_settings(), "suggestion_threshold", 2)
    clock.set_clock(lambda: MONDAY)
    return 2


def _tokens(pw: ParticipationWorld, *names: str) -> dict[str, dict[str, str]]:
    return {n: bearer(pw.session, pw.users[n], ["participation:write"]) for n in names}


def _report(pw: ParticipationWorld, org: str = "city") -> Request:
    now = clock.now()
    request = Request(
        category_id=pw.categories["streetlight"].id,
        description="灯不亮",
        address="幸福路口",
        token=secrets.token_hex(8),
        org_id=pw.orgs[org].id,
        requested_at=now,
        updated_at=now,
        reporter_name="王小明",
        reporter_phone="13800000000",
    )
    pw.session.add(request)
    pw.session.commit()
    return request


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    return dict(body["error"])


def test_the_api_runs_a_suggestion_from_posting_to_implementation(
    client: Any, pw: ParticipationWorld, threshold: int
) -> None:
    pw.users["res1"].display_name = "王小明"
    pw.session.commit()
    h = _tokens(pw, "res1", "res2", "res3", "bureau-dispatcher", "city-lead", "water-head")
    created = client.post(
        API,
        json={"domain": "transport", "title": "幸福路口加装红绿灯", "body": "孩子上学过马路危险"},
        headers=h["res1"],
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["author"] == "王*" and created.json()["state"] == "open"
    assert created.json()["created_at"].endswith("+08:00")

    anonymous = client.get(f"{API}/{sid}")
    assert anonymous.status_code == 200
    assert "res1" not in anonymous.text and "王小明" not in anonymous.text
    assert anonymous.json()["may"] == [] and anonymous.json()["supported"] is False

    for who in ("res2", "res3"):
        supported = client.post(f"{API}/{sid}/support", headers=h[who])
        assert supported.status_code == 200, supported.text
    body = supported.json()
    assert (body["state"], body["supporters"], body["threshold"]) == ("awaiting_response", 2, 2)
    assert body["response_due_at"] == "2026-11-24T00:00:00+08:00" and body["supported"] is True
    again = client.post(f"{API}/{sid}/support", headers=h["res3"])
    assert again.json()["supporters"] == 2
    late_withdraw = client.delete(f"{API}/{sid}/support", headers=h["res3"])
    assert late_withdraw.status_code == 409 and _error(late_withdraw)["type"] == "conflict"

    refused = client.post(f"{API}/{sid}/assign", json={"org_id": pw.orgs["city"].id}, headers=h["city-lead"])
    assert refused.status_code == 403 and _error(refused)["type"] == "forbidden"
    assigned = client.post(
        f"{API}/{sid}/assign", json={"org_id": pw.orgs["city"].id}, headers=h["bureau-dispatcher"]
    )
    assert assigned.status_code == 200 and assigned.json()["org_name"] == "城管局"

    for who in ("res1", "water-head"):
        refused = client.post(
            f"{API}/{sid}/respond", json={"decision": "accepted", "text": "x"}, headers=h[who]
        )
        assert refused.status_code == 403, refused.text
    bad = client.post(f"{API}/{sid}/respond", json={"decision": "yes", "text": "x"}, headers=h["city-lead"])
    assert bad.status_code == 422 and _error(bad)["detail"]["field"] == "decision"
    answered = client.post(
        f"{API}/{sid}/respond",
        json={"decision": "accepted", "text": "年内安装信号灯"},
        headers=h["city-lead"],
    )
    assert answered.status_code == 200 and answered.json()["on_time"] is True
    assert answered.json()["may"] == ["link", "milestone"]

    step = client.post(
        f"{API}/{sid}/milestones", json={"percent": 40, "text": "设计完成"}, headers=h["city-lead"]
    )
    assert step.status_code == 201 and step.json()["progress"] == 40
    back = client.post(f"{API}/{sid}/milestones", json={"percent": 10, "text": "x"}, headers=h["city-lead"])
    assert back.status_code == 422 and _error(back)["detail"]["field"] == "percent"
    report = _report(pw)
    linked = client.post(f"{API}/{sid}/links", json={"request_id": report.id}, headers=h["city-lead"])
    assert linked.status_code == 201, linked.text
    assert linked.json()["reports_count"] == 1
    public_report = linked.json()["reports"][0]
    assert public_report["url"] == f"/participate/requests/{report.id}" and public_report["status"] == "open"
    assert "13800000000" not in linked.text and "王小明" not in linked.text
    done = client.post(
        f"{API}/{sid}/milestones", json={"percent": 100, "text": "已启用"}, headers=h["city-lead"]
    )
    assert done.json()["state"] == "implemented"
    assert [m["percent"] for m in done.json()["milestones"]] == [40, 100]

    listed = client.get(API, params={"state": "implemented"})
    assert [s["id"] for s in listed.json()["items"]] == [sid] and listed.json()["items"][0][
        "reports_count"
    ] == 1
    unlinked = client.delete(f"{API}/{sid}/links/{report.id}", headers=h["city-lead"])
    assert unlinked.status_code == 200 and unlinked.json()["reports"] == []


def test_the_api_refuses_bad_input_and_strangers_with_the_envelope(
    client: Any, pw: ParticipationWorld, threshold: int
) -> None:
    h = _tokens(pw, "res1", "city-head")
    for body, field in (
        ({"domain": "weather", "title": "t", "body": "b"}, "domain"),
        ({"domain": "safety", "title": "", "body": "b"}, "title"),
    ):
        response = client.post(API, json=body, headers=h["res1"])
        assert response.status_code == 422 and _error(response)["detail"]["field"] == field
    missing = client.post(API, json={"domain": "safety"}, headers=h["res1"])
    assert missing.status_code == 422 and _error(missing)["type"] == "invalid"
    staff = client.post(API, json={"domain": "safety", "title": "t", "body": "b"}, headers=h["city-head"])
    assert staff.status_code == 403
    anonymous = client.post(API, json={"domain": "safety", "title": "t", "body": "b"})
    assert anonymous.status_code == 401
    assert pw.session.scalar(select(func.count()).select_from(Suggestion)) == 0
    assert client.get(f"{API}/12345").status_code == 404
    assert _error(client.get(API, params={"sort": "oldest"}))["detail"]["parameter"] == "sort"
    assert client.get(API, params={"after": "%%%"}).status_code == 422
    wrong_scope = bearer(pw.session, pw.users["res1"], ["catalog:read"])
    assert (
        client.post(
            API, json={"domain": "safety", "title": "t", "body": "b"}, headers=wrong_scope
        ).status_code
        == 403
    )


def test_the_api_list_pages_by_keyset_with_a_link_header(
    client: Any, pw: ParticipationWorld, threshold: int
) -> None:
    h = _tokens(pw, "res1")
    for i in range(3):
        client.post(API, json={"domain": "services", "title": f"建议{i}", "body": "内容"}, headers=h["res1"])
    first = client.get(API, params={"limit": 2, "sort": "supporters"})
    assert len(first.json()["items"]) == 2 and first.json()["next"]
    assert 'rel="next"' in first.headers["link"] and "sort=supporters" in first.headers["link"]
    rest = client.get(API, params={"limit": 2, "sort": "supporters", "after": first.json()["next"]})
    assert [s["title"] for s in first.json()["items"] + rest.json()["items"]] == ["建议2", "建议1", "建议0"]
    assert rest.json()["next"] is None and "link" not in rest.headers


def test_a_cookie_session_needs_the_csrf_header_on_the_api(client: Any, pw: ParticipationWorld) -> None:
    login(client, "res1")
    body = {"domain": "health", "title": "增设社区卫生站", "body": "老人看病远"}
    assert client.post(API, json=body).status_code == 403
    created = client.post(API, json=body, headers={"X-CSRF-Token": csrf_of(client, PAGES)})
    assert created.status_code == 201


def _form(client: Any, path: str, data: dict[str, str], page: str) -> Any:
    return client.post(path, data={"csrf_token": csrf_of(client, page), **data}, follow_redirects=False)


def test_residents_post_and_support_through_the_pages_with_csrf(
    client: Any, pw: ParticipationWorld, threshold: int
) -> None:
    anonymous = client.get(PAGES)
    assert anonymous.status_code == 200 and 'id="none"' in anonymous.text
    assert client.get(f"{PAGES}/new", follow_redirects=False).status_code == 303

    login(client, "res1")
    listing = client.get(PAGES)
    assert 'href="/participate/suggestions/new"' in listing.text
    form = client.get(f"{PAGES}/new")
    assert form.status_code == 200 and 'name="csrf_token"' in form.text
    no_token = client.post(f"{PAGES}/new", data={"domain": "safety", "title": "t", "body": "b"})
    assert no_token.status_code == 403
    wrong = _form(
        client, f"{PAGES}/new", {"domain": "safety", "title": "", "body": "保留我写的内容"}, f"{PAGES}/new"
    )
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text and "保留我写的内容" in wrong.text
    posted = _form(
        client,
        f"{PAGES}/new",
        {"domain": "safety", "title": SCRIPT, "body": f"正文 {SCRIPT}"},
        f"{PAGES}/new",
    )
    assert posted.status_code == 303
    path = posted.headers["location"]
    sid = int(path.rsplit("/", 1)[1])
    page = client.get(path)
    assert SCRIPT not in page.text and "&lt;script&gt;" in page.text
    assert 'id="support-form"' not in page.text  # not on one's own suggestion

    login(client, "res2")
    page = client.get(path)
    assert 'id="support-form"' in page.text
    assert _form(client, f"{path}/support", {"do": "support"}, path).status_code == 303
    page = client.get(path)
    assert 'id="withdraw-form"' in page.text and 'aria-valuenow="1"' in page.text
    assert _form(client, f"{path}/support", {"do": "withdraw"}, path).status_code == 303
    assert 'aria-valuenow="0"' in client.get(path).text
    _form(client, f"{path}/support", {"do": "support"}, path)
    login(client, "res3")
    _form(client, f"{path}/support", {"do": "support"}, path)
    page = client.get(path)
    assert re.search(r'id="due">[^<]*2026-11-23', page.text)
    assert pw.session.get(Suggestion, sid) is not None

    client.cookies.clear()
    public = client.get(path)
    assert "res1" not in public.text and 'id="respond-form"' not in public.text
    listed = client.get(PAGES, params={"domain": "safety"})
    assert SCRIPT not in listed.text and f'id="suggestion-{sid}"' in listed.text
    assert "2026-11-23" in listed.text and 'aria-valuenow="2"' in listed.text
    english = client.get(PAGES, params={"lang": "en", "state": "awaiting_response"})
    assert (
        "Awaiting response" in english.text and "Safety" in english.text and "待部门答复" not in english.text
    )
    assert "待部门答复" in client.get(PAGES, params={"lang": "zh-CN"}).text
    assert f'id="suggestion-{sid}"' not in client.get(PAGES, params={"domain": "transport"}).text
    anonymous_post = client.post(f"{path}/support", data={"do": "support"}, follow_redirects=False)
    assert anonymous_post.status_code == 303 and anonymous_post.headers["location"].startswith("/login")


def test_departments_assign_answer_report_progress_and_link_through_the_pages(
    client: Any, pw: ParticipationWorld, threshold: int
) -> None:
    h = _tokens(pw, "res1", "res2", "res3")
    sid = client.post(
        API, json={"domain": "transport", "title": "路口信号灯", "body": "危险"}, headers=h["res1"]
    ).json()["id"]
    for who in ("res2", "res3"):
        client.post(f"{API}/{sid}/support", headers=h[who])
    path = f"{PAGES}/{sid}"

    login(client, "bureau-dispatcher")
    page = client.get(path)
    assert 'id="assign-form"' in page.text and 'id="respond-form"' not in page.text
    assert _form(client, f"{path}/assign", {"org_id": str(pw.orgs["city"].id)}, path).status_code == 303
    bad = _form(client, f"{path}/assign", {"org_id": "abc"}, path)
    assert bad.status_code == 422 and "org_id" in bad.text

    login(client, "water-head")
    assert 'id="respond-form"' not in client.get(path).text
    assert _form(client, f"{path}/respond", {"decision": "accepted", "text": "x"}, path).status_code == 403

    login(client, "city-lead")
    page = client.get(path)
    assert 'id="respond-form"' in page.text and "城管局" in page.text
    answered = _form(client, f"{path}/respond", {"decision": "accepted", "text": f"计划 {SCRIPT}"}, path)
    assert answered.status_code == 303
    page = client.get(path)
    assert 'id="milestone-form"' in page.text and SCRIPT not in page.text and "&lt;script&gt;" in page.text
    assert re.search(r'id="answered">[^<]*<span class="badge public">', page.text)
    assert _form(client, f"{path}/milestones", {"percent": "60", "text": "施工中"}, path).status_code == 303
    back = _form(client, f"{path}/milestones", {"percent": "20", "text": "x"}, path)
    assert back.status_code == 422 and 'role="alert"' in back.text
    junk = _form(client, f"{path}/milestones", {"percent": "lots", "text": "x"}, path)
    assert junk.status_code == 422
    report = _report(pw)
    assert _form(client, f"{path}/links", {"request_id": str(report.id)}, path).status_code == 303
    page = client.get(path)
    assert f'href="/participate/requests/{report.id}"' in page.text
    assert re.search(r'id="reports-count">\s*1\s*<', page.text)
    assert 'aria-valuenow="60"' in page.text
    assert _form(client, f"{path}/unknown", {}, path).status_code == 422

    client.cookies.clear()
    public = client.get(path)
    assert (
        'id="milestone-form"' not in public.text
        and "施工中" in public.text
        and "13800000000" not in public.text
    )
