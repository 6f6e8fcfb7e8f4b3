"""Emergency incidents through the web: the staff pages with login and CSRF, the public notice pages,
and the JSON API under /api/v1/participation/incidents."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import bearer, csrf_of, login
from participation.pworld import MONDAY, SHANGHAI, ParticipationWorld
from zhishe.core import clock
from zhishe.participation.models import Incident, IncidentProposal, IncidentRole, IncidentTask, Request

API = "/api/v1/participation/incidents"
SCOPES = ["participation:read", "participation:write"]


def token(pw: ParticipationWorld, user: Any, scopes: list[str] | None = None) -> dict[str, str]:
    return bearer(pw.session, user, scopes or SCOPES)


@pytest.fixture()
def monday(pw: ParticipationWorld) -> None:
    clock.set_clock(lambda: MONDAY)


def post_form(client: Any, path: str, data: dict[str, Any], page: str | None = None) -> Any:
    token = csrf_of(client, page or path)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def count(pw: ParticipationWorld, model: Any) -> int:
    pw.session.rollback()  # see what the app committed
    return pw.session.scalar(select(func.count()).select_from(model)) or 0


def only_incident(pw: ParticipationWorld) -> Incident:
    pw.session.rollback()
    return pw.session.scalars(select(Incident)).one()


# --- staff and public pages ------------------------------------------------------------------------------


def test_an_incident_end_to_end_through_the_pages(client: Any, pw: ParticipationWorld, monday: None) -> None:
    assert login(client, "op-dispatcher").status_code == 303
    page = client.get("/incidents")
    assert page.status_code == 200
    assert 'id="declare"' in page.text and 'id="proposals"' in page.text
    declared = post_form(
        client,
        "/incidents",
        {
            "kind": "water_outage",
            "severity": "2",
            "area_id": str(pw.areas["B1"].id),
            "title": "1号楼停水 <b>内部</b>",
            "description": "主管破裂",
            "departments": [str(pw.orgs["water"].id)],
        },
    )
    assert declared.status_code == 303
    incident = only_incident(pw)
    url = f"/incidents/{incident.id}"
    assert declared.headers["location"] == url
    detail = client.get(url)
    assert detail.status_code == 200
    assert "1号楼停水 &lt;b&gt;内部&lt;/b&gt;" in detail.text
    assert 'id="notice-form"' in detail.text and 'id="task-form"' in detail.text

    assert (
        post_form(
            client,
            url,
            {
                "action": "notice",
                "situation": "<script>alert(1)</script>停水至18时",
                "instructions": "到南门取水",
            },
        ).headers["location"]
        == f"{url}#notices"
    )
    assert post_form(client, url, {"action": "notice", "situation": "抢修开始"}).status_code == 303
    assert (
        post_form(
            client,
            url,
            {
                "action": "task",
                "title": "关闭上游阀门",
                "owner_user_id": str(pw.users["water-worker"].id),
                "due_at": "2026-11-02T12:00",
            },
        ).status_code
        == 303
    )
    task = pw.session.scalars(select(IncidentTask)).one()
    assert task.due_at == datetime(2026, 11, 2, 12, 0, tzinfo=SHANGHAI)
    assert task.org_id == pw.orgs["water"].id

    # the water department names its liaison
    login(client, "water-head")
    assert f'id="name-form-{pw.orgs["water"].id}"' in client.get(url).text
    named = post_form(
        client,
        url,
        {
            "action": "role",
            "role": "liaison",
            "org_id": str(pw.orgs["water"].id),
            "user_id": str(pw.users["water-worker"].id),
        },
    )
    assert named.status_code == 303
    pw.session.rollback()
    liaison = pw.session.scalars(
        select(IncidentRole).where(IncidentRole.role == "liaison", IncidentRole.org_id == pw.orgs["water"].id)
    ).one()
    assert liaison.user_id == pw.users["water-worker"].id

    # the owner marks the task done
    login(client, "water-worker")
    assert post_form(client, url, {"action": "done", "task_id": str(task.id)}).status_code == 303
    pw.session.rollback()
    assert pw.session.get(IncidentTask, task.id).done_at == MONDAY  # type: ignore[union-attr]

    # the public page: the notice, escaped; no title, timeline or staff names
    client.cookies.clear()
    public = client.get(f"/participate/incidents/{incident.id}")
    assert public.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;停水至18时" in public.text
    assert "<script>alert(1)" not in public.text
    assert public.text.index("抢修开始") < public.text.index("停水至18时")  # the latest first
    assert "到南门取水" in public.text  # the last instructions given stay in view
    assert "1号楼" in public.text  # the area's name
    for secret in ("内部", "主管破裂", "关闭上游阀门", "op-dispatcher", "water-worker", "water-head"):
        assert secret not in public.text
    listing = client.get("/participate/incidents")
    assert f'href="/participate/incidents/{incident.id}"' in listing.text

    # closing shows the review
    login(client, "op-dispatcher")
    assert (
        post_form(client, url, {"action": "state", "state": "closed", "note": "恢复供水"}).status_code == 303
    )
    closed = client.get(url)
    assert "<details open" in closed.text and 'id="r-first"' in closed.text
    assert 'id="notice-form"' not in closed.text and 'id="state-form"' not in closed.text
    assert only_incident(pw).state == "closed"
    assert "恢复供水" in closed.text  # the note is on the timeline
    assert f'href="/participate/incidents/{incident.id}"' not in client.get("/participate/incidents").text


def test_forms_need_the_csrf_token(client: Any, pw: ParticipationWorld, monday: None) -> None:
    login(client, "op-dispatcher")
    response = client.post(
        "/incidents",
        data={"kind": "fire", "severity": "1", "area_id": str(pw.areas["B1"].id), "title": "x"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert count(pw, Incident) == 0


def test_a_bad_form_shows_the_error_and_keeps_the_input(
    client: Any, pw: ParticipationWorld, monday: None
) -> None:
    login(client, "op-dispatcher")
    response = post_form(
        client,
        "/incidents",
        {"kind": "fire", "severity": "9", "area_id": str(pw.areas["B1"].id), "title": "厨房起火"},
    )
    assert response.status_code == 422
    assert 'id="error"' in response.text and "severity" in response.text
    assert 'value="厨房起火"' in response.text
    assert count(pw, Incident) == 0


def test_a_bad_action_shows_the_error_and_writes_nothing(
    client: Any, pw: ParticipationWorld, monday: None
) -> None:
    login(client, "op-dispatcher")
    post_form(
        client,
        "/incidents",
        {"kind": "fire", "severity": "1", "area_id": str(pw.areas["B1"].id), "title": "x"},
    )
    url = f"/incidents/{only_incident(pw).id}"
    for data in (
        {"action": "task", "title": "  "},
        {"action": "task", "title": "t", "due_at": "tomorrow"},
        {"action": "task", "title": "t", "due_at": "2026-11-02T09:00"},  # before now
    ):
        response = post_form(client, url, data)
        assert response.status_code == 422, data
        assert 'id="error"' in response.text
    assert count(pw, IncidentTask) == 0
    conflict = post_form(client, url, {"action": "state", "state": "active"})
    assert conflict.status_code == 409
    unknown = post_form(client, url, {"action": "explode"})
    assert unknown.status_code == 422


def test_staff_pages_refuse_others_cleanly(client: Any, pw: ParticipationWorld, monday: None) -> None:
    login(client, "op-dispatcher")
    post_form(
        client,
        "/incidents",
        {"kind": "fire", "severity": "1", "area_id": str(pw.areas["B1"].id), "title": "x"},
    )
    url = f"/incidents/{only_incident(pw).id}"
    login(client, "city-worker")
    assert client.get(url).status_code == 403
    assert client.get("/incidents/999999").status_code == 404
    assert 'id="declare"' not in client.get("/incidents").text
    refused = post_form(client, url, {"action": "entry", "text": "x"}, page="/incidents")
    assert refused.status_code == 403
    login(client, "res1")
    assert client.get("/incidents").status_code == 403
    client.cookies.clear()
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert client.get("/participate/incidents/999999").status_code == 404


def test_clusters_are_proposed_declared_and_dismissed_on_the_page(
    client: Any, pw: ParticipationWorld, monday: None
) -> None:
    for category in ("streetlight", "garbage"):
        for i in range(6):
            pw.session.add(
                Request(
                    category_id=pw.categories[category].id,
                    area_id=pw.areas["B2"].id,
                    token=uuid.uuid4().hex,
                    requested_at=MONDAY - timedelta(minutes=i),
                    updated_at=MONDAY,
                )
            )
    pw.session.commit()
    login(client, "op-dispatcher")
    assert post_form(client, "/incidents/proposals/detect", {}, page="/incidents").status_code == 303
    page = client.get("/incidents")
    pw.session.rollback()
    lights, garbage = pw.session.scalars(
        select(IncidentProposal).order_by(IncidentProposal.category_id)
    ).all()
    assert f'id="proposal-{lights.id}"' in page.text and f'id="proposal-{garbage.id}"' in page.text
    assert "路灯故障" in page.text and "幸福社区" in page.text
    declared = post_form(
        client,
        "/incidents",
        {
            "proposal_id": str(lights.id),
            "area_id": str(lights.area_id),
            "kind": "other",
            "severity": "1",
            "title": "路灯成片不亮",
        },
    )
    assert declared.status_code == 303
    dismissed = post_form(
        client, f"/incidents/proposals/{garbage.id}/dismiss", {"reason": "已清运"}, page="/incidents"
    )
    assert dismissed.status_code == 303
    pw.session.rollback()
    assert [
        p.state for p in pw.session.scalars(select(IncidentProposal).order_by(IncidentProposal.category_id))
    ] == [
        "declared",
        "dismissed",
    ]
    incident = only_incident(pw)
    assert incident.source == "cluster" and incident.area_id == pw.areas["C1"].id
    assert "由 6 条“路灯故障”报事聚集启动" in client.get(f"/incidents/{incident.id}").text
    login(client, "city-head")
    assert post_form(client, "/incidents/proposals/detect", {}, page="/incidents").status_code == 403


# --- JSON API ---------------------------------------------------------------------------------------------


def test_the_api_end_to_end(client: Any, pw: ParticipationWorld, monday: None) -> None:
    boss = token(pw, pw.users["op-dispatcher"])
    made = client.post(
        API,
        json={
            "kind": "flood",
            "severity": 3,
            "area_code": "C1",
            "title": "地下车库进水",
            "departments": [pw.orgs["water"].id],
        },
        headers=boss,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["kind"], body["severity"], body["state"], body["source"]) == ("flood", 3, "active", "manual")
    assert body["declared_at"] == "2026-11-02T10:00:00+08:00"
    path = f"{API}/{body['id']}"

    detail = client.get(path, headers=boss).json()
    assert detail["area_code"] == "C1"
    assert "command" in detail["may"] and "notice" in detail["may"]
    assert [(r["role"], r["user_id"]) for r in detail["roles"]][:1] == [
        ("commander", pw.users["op-dispatcher"].id)
    ]

    added = client.post(f"{path}/departments", json={"org_id": pw.orgs["city"].id}, headers=boss)
    assert added.status_code == 201 and [r["role"] for r in added.json()] == ["liaison", "participant"]

    water = token(pw, pw.users["water-head"])
    city = token(pw, pw.users["city-head"])
    role = {"role": "liaison", "org_id": pw.orgs["water"].id, "user_id": pw.users["water-worker"].id}
    refused = client.post(f"{path}/roles", json=role, headers=city)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "forbidden"
    named = client.post(f"{path}/roles", json=role, headers=water)
    assert named.status_code == 200 and named.json()["user_id"] == pw.users["water-worker"].id

    naive = client.post(f"{path}/tasks", json={"title": "t", "due_at": "2026-11-02T12:00:00"}, headers=boss)
    assert naive.status_code == 422 and "due_at" in naive.json()["error"]["message"]
    task = client.post(
        f"{path}/tasks",
        json={
            "title": "抽水",
            "owner_user_id": pw.users["water-worker"].id,
            "due_at": "2026-11-02T11:00:00+08:00",
        },
        headers=boss,
    )
    assert task.status_code == 201
    assert (
        task.json()["due_at"] == "2026-11-02T11:00:00+08:00" and task.json()["org_id"] == pw.orgs["water"].id
    )
    worker = token(pw, pw.users["water-worker"])
    done = client.post(f"{path}/tasks/{task.json()['id']}/done", json={"note": "完成"}, headers=worker)
    assert done.status_code == 200 and done.json()["done_at"] == "2026-11-02T10:00:00+08:00"
    assert done.json()["late"] is False

    entry = client.post(f"{path}/entries", json={"text": "水位下降"}, headers=worker)
    assert entry.status_code == 201
    kinds = [e["kind"] for e in client.get(f"{path}/entries", headers=boss).json()]
    assert kinds == ["declared", "department", "department", "role", "task", "task_done", "note"]

    notice = client.post(
        f"{path}/notices", json={"situation": "车库封闭", "instructions": "请勿进入"}, headers=boss
    )
    assert notice.status_code == 201 and notice.json()["notified"] == 3

    public = client.get(f"{API}/public/{body['id']}").json()
    assert public["area_code"] == "C1" and public["notices"][0]["situation"] == "车库封闭"
    assert "title" not in public and "author_user_id" not in public["notices"][0]
    assert [p["id"] for p in client.get(f"{API}/public").json()] == [body["id"]]

    assert client.post(f"{path}/severity", json={"severity": 4}, headers=boss).json()["severity"] == 4
    closed = client.post(f"{path}/state", json={"state": "closed"}, headers=boss)
    assert closed.status_code == 200 and closed.json()["closed_at"] == "2026-11-02T10:00:00+08:00"
    review = client.get(f"{path}/review", headers=boss).json()
    assert review["tasks"]["total"] == 1 and review["tasks"]["late"] == 0
    assert review["time_to_first_response_seconds"] == 0  # the water department answered at once
    again = client.post(f"{path}/state", json={"state": "active"}, headers=boss)
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"


def test_api_errors_use_the_envelope_and_name_the_field(
    client: Any, pw: ParticipationWorld, monday: None
) -> None:
    boss = token(pw, pw.users["op-dispatcher"])
    for body, field in (
        ({"kind": "tsunami", "severity": 1, "area_code": "C1", "title": "x"}, "kind"),
        ({"kind": "fire", "severity": 1, "area_code": "NOPE", "title": "x"}, "area_code"),
        ({"kind": "fire", "severity": 1, "title": "x"}, "area_id"),
        ({"kind": "fire", "severity": 1, "area_code": "C1", "title": ""}, "title"),
    ):
        response = client.post(API, json=body, headers=boss)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["type"] == "invalid" and error["detail"]["field"] == field
    assert client.post(API, json={"kind": "fire"}, headers=boss).status_code == 422
    assert client.get(API).status_code == 401
    resident = token(pw, pw.users["res1"])
    assert client.get(API, headers=resident).status_code == 403
    assert (
        client.post(
            API, json={"kind": "fire", "severity": 1, "area_code": "C1", "title": "x"}, headers=resident
        ).status_code
        == 403
    )
    assert client.get(f"{API}/999999", headers=boss).status_code == 404
    assert client.get(f"{API}/public/999999").status_code == 404
    assert count(pw, Incident) == 0


def test_api_lists_page_by_keyset(client: Any, pw: ParticipationWorld, monday: None) -> None:
    boss = token(pw, pw.users["op-dispatcher"])
    ids = [
        client.post(
            API, json={"kind": "fire", "severity": 1, "area_code": "C1-B1", "title": f"火情{i}"}, headers=boss
        ).json()["id"]
        for i in range(3)
    ]
    first = client.get(API, params={"limit": 2}, headers=boss)
    assert [i["id"] for i in first.json()["items"]] == ids[::-1][:2]
    assert 'rel="next"' in first.headers["link"]
    rest = client.get(API, params={"limit": 2, "after": first.json()["next"]}, headers=boss)
    assert [i["id"] for i in rest.json()["items"]] == [ids[0]] and rest.json()["next"] is None
    assert client.get(API, params={"state": "closed"}, headers=boss).json()["items"] == []
    assert client.get(API, params={"after": "garbage!"}, headers=boss).status_code == 422


def test_api_proposals(client: Any, pw: ParticipationWorld, monday: None) -> None:
    for i in range(6):
        pw.session.add(
            Request(
                category_id=pw.categories["leak"].id,
                area_id=pw.areas["B1"].id,
                token=uuid.uuid4().hex,
                requested_at=MONDAY - timedelta(minutes=i),
                updated_at=MONDAY,
            )
        )
    pw.session.commit()
    boss = token(pw, pw.users["op-dispatcher"])
    assert (
        client.post(f"{API}/proposals/detect", headers=token(pw, pw.users["water-head"])).status_code == 403
    )
    found = client.post(f"{API}/proposals/detect", headers=boss)
    assert found.status_code == 200
    (proposal,) = found.json()
    assert (proposal["category_code"], proposal["area_code"], proposal["count"]) == ("leak", "C1", 6)
    assert client.post(f"{API}/proposals/detect", headers=boss).json() == []
    assert [p["id"] for p in client.get(f"{API}/proposals", headers=boss).json()] == [proposal["id"]]
    dismissed = client.post(
        f"{API}/proposals/{proposal['id']}/dismiss", json={"reason": "误报"}, headers=boss
    )
    assert dismissed.json()["state"] == "dismissed"
    assert client.get(f"{API}/proposals", headers=boss).json() == []
    assert [
        p["state"] for p in client.get(f"{API}/proposals", params={"state": "dismissed"}, headers=boss).json()
    ] == ["dismissed"]


def test_cookie_api_calls_need_the_csrf_header(client: Any, pw: ParticipationWorld, monday: None) -> None:
    login(client, "op-dispatcher")
    body = {"kind": "fire", "severity": 1, "area_code": "C1-B1", "title": "x"}
    assert client.post(API, json=body).status_code == 403
    token = csrf_of(client, "/incidents")
    assert client.post(API, json=body, headers={"X-CSRF-Token": token}).status_code == 201
    assert count(pw, Incident) == 1


def test_tokens_need_the_participation_scopes(client: Any, pw: ParticipationWorld, monday: None) -> None:
    body = {"kind": "fire", "severity": 1, "area_code": "C1-B1", "title": "x"}
    made = client.post(API, json=body, headers=token(pw, pw.users["op-dispatcher"])).json()
    reader = token(pw, pw.users["op-dispatcher"], ["participation:read"])
    assert client.get(f"{API}/{made['id']}", headers=reader).status_code == 200
    refused = client.post(f"{API}/{made['id']}/entries", json={"text": "x"}, headers=reader)
    assert refused.status_code == 403 and refused.json()["error"]["detail"]["scope"] == "participation:write"
    assert client.post(API, json=body, headers=reader).status_code == 403
    other = token(pw, pw.users["op-dispatcher"], ["catalog:read"])
    assert client.get(API, headers=other).status_code == 403
    assert client.get(f"{API}/{made['id']}/review", headers=other).status_code == 403
    assert count(pw, Incident) == 1
