"""The JSON API of reports and work orders: residents file and follow, staff work the queue, and
configurers set categories, teams, routing rules and templates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from helpers import bearer
from participation.pworld import B1, ParticipationWorld
from zhishe.core.audit.models import AuditEvent

SCOPES = ["participation:read", "participation:write"]


def _headers(pw: ParticipationWorld, user: str) -> dict[str, str]:
    return bearer(pw.session, pw.users[user], SCOPES)


def _file(client: Any, pw: ParticipationWorld, user: str = "res1", **extra: Any) -> dict[str, Any]:
    body = {
        "category": "streetlight",
        "description": "<b>灯</b>不亮",
        "lat": B1[0],
        "long": B1[1],
        "answers": {"pole_number": "A-9", "light_state": "flicker"},
        **extra,
    }
    response = client.post("/api/v1/participation/requests", json=body, headers=_headers(pw, user))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_resident_files_and_the_public_sees_no_work_order_fields(
    client: Any, pw: ParticipationWorld
) -> None:
    filed = _file(client, pw)
    assert (filed["status"], filed["state"], filed["category"]) == ("open", "assigned", "streetlight")
    public = client.get(f"/api/v1/participation/requests/{filed['id']}").json()
    assert "reporter" not in public and "channel" not in public
    assert [u["kind"] for u in public["updates"]] == ["state", "state"]
    staff = client.get(
        f"/api/v1/participation/requests/{filed['id']}", headers=_headers(pw, "city-worker")
    ).json()
    assert staff["channel"] == "app" and "reporter" in staff
    reads = pw.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "participation.request.read")
    )
    assert list(reads) == ["participation.request.read"]


def test_bad_reports_get_clear_errors(client: Any, pw: ParticipationWorld) -> None:
    headers = _headers(pw, "res1")
    bad = client.post(
        "/api/v1/participation/requests",
        json={"category": "streetlight", "lat": B1[0], "long": B1[1], "answers": {"light_state": "out"}},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["detail"]["field"] == "attribute[pole_number]"
    out_of_range = client.post(
        "/api/v1/participation/requests",
        json={"category": "streetlight", "lat": 123, "long": 0},
        headers=headers,
    )
    assert out_of_range.status_code == 422
    unknown = client.post(
        "/api/v1/participation/requests", json={"category": "nope", "address": "x"}, headers=headers
    )
    assert unknown.status_code == 404
    anonymous = client.post("/api/v1/participation/requests", json={"category": "leak", "address": "x"})
    assert anonymous.status_code == 401


def test_nearby_support_info_and_confirm(client: Any, pw: ParticipationWorld) -> None:
    filed = _file(client, pw)
    near = client.get(
        "/api/v1/participation/requests/nearby",
        params={"category": "streetlight", "lat": B1[0], "long": B1[1]},
    ).json()
    assert [n["id"] for n in near] == [filed["id"]] and near[0]["distance_m"] == 0
    supported = client.post(
        f"/api/v1/participation/requests/{filed['id']}/support", headers=_headers(pw, "res2")
    )
    assert supported.json() == {"id": filed["id"], "supporters": 1}
    info = client.post(
        f"/api/v1/participation/requests/{filed['id']}/info",
        json={"text": "旁边也坏了"},
        headers=_headers(pw, "res2"),
    )
    assert info.status_code == 201
    early = client.post(
        f"/api/v1/participation/requests/{filed['id']}/confirm",
        json={"fixed": True},
        headers=_headers(pw, "res1"),
    )
    assert early.status_code == 409


def test_staff_work_the_queue(client: Any, pw: ParticipationWorld) -> None:
    ids = [_file(client, pw)["id"] for _ in range(3)]
    worker = _headers(pw, "city-worker")
    page = client.get("/api/v1/participation/queue", params={"limit": 2}, headers=worker)
    assert [r["id"] for r in page.json()["items"]] == ids[:2]
    assert 'rel="next"' in page.headers["Link"]
    rest = client.get("/api/v1/participation/queue", params={"after": page.json()["next"]}, headers=worker)
    assert [r["id"] for r in rest.json()["items"]] == ids[2:]
    assert client.get("/api/v1/participation/queue", headers=_headers(pw, "res1")).status_code == 403
    accepted = client.post(
        f"/api/v1/participation/requests/{ids[0]}/actions", json={"action": "accept"}, headers=worker
    ).json()
    assert (accepted["state"], accepted["assignee_user_id"]) == ("accepted", pw.users["city-worker"].id)
    wrong = client.post(
        f"/api/v1/participation/requests/{ids[0]}/actions", json={"action": "resume"}, headers=worker
    )
    assert wrong.status_code == 409 and "cannot resume" in wrong.json()["error"]["message"]
    bad_wait = client.post(
        f"/api/v1/participation/requests/{ids[0]}/actions",
        json={"action": "wait", "reason": "lunch"},
        headers=worker,
    )
    assert bad_wait.status_code == 422 and bad_wait.json()["error"]["detail"]["field"] == "reason"
    lead = _headers(pw, "city-lead")
    bulk = client.post(
        "/api/v1/participation/queue/bulk",
        json={"ids": ids[1:], "action": "assign", "assignee_user_id": pw.users["city-worker"].id},
        headers=lead,
    )
    assert bulk.status_code == 200 and {r["assignee_user_id"] for r in bulk.json()} == {
        pw.users["city-worker"].id
    }
    split = client.post(
        f"/api/v1/participation/requests/{ids[1]}/split",
        json={"parts": [{"org_id": pw.orgs["water"].id, "task": "查看管线"}]},
        headers=lead,
    )
    assert split.status_code == 201 and split.json()[0]["parent_id"] == ids[1]
    child = split.json()[0]["id"]
    assert client.get(f"/api/v1/participation/requests/{child}").status_code == 404


def test_configuration_endpoints(client: Any, pw: ParticipationWorld) -> None:
    admin = _headers(pw, "bureau-admin")
    spec = {
        "service_name": "井盖缺失",
        "type": "realtime",
        "sla_amount": 2,
        "sla_unit": "hours",
        "attributes": [
            {"code": "depth", "datatype": "number", "required": True, "order": 1, "description": "深度"},
            {
                "code": "where",
                "datatype": "singlevaluelist",
                "order": 2,
                "description": "位置",
                "values": [{"key": "road", "name": "车行道"}, {"key": "walk", "name": "人行道"}],
            },
        ],
    }
    put = client.put("/api/v1/participation/categories/manhole", json=spec, headers=admin)
    assert put.status_code == 200 and [a["code"] for a in put.json()["attributes"]] == ["depth", "where"]
    broken = {**spec, "attributes": [{"code": "x", "datatype": "colour"}]}
    refused = client.put("/api/v1/participation/categories/manhole", json=broken, headers=admin)
    assert (
        refused.status_code == 422 and refused.json()["error"]["detail"]["field"] == "attributes[0].datatype"
    )
    empty_list = {**spec, "attributes": [{"code": "x", "datatype": "singlevaluelist"}]}
    assert (
        client.put("/api/v1/participation/categories/manhole", json=empty_list, headers=admin).status_code
        == 422
    )
    assert (
        client.put(
            "/api/v1/participation/categories/manhole", json=spec, headers=_headers(pw, "city-head")
        ).status_code
        == 403
    )
    team = client.post(
        "/api/v1/participation/teams",
        json={"org_id": pw.orgs["city"].id, "name": "井盖班", "lead_user_id": pw.users["city-lead"].id},
        headers=_headers(pw, "city-head"),
    )
    assert team.status_code == 201
    rule = client.post(
        "/api/v1/participation/routing-rules",
        json={"category": "manhole", "org_id": pw.orgs["city"].id, "team_id": team.json()["id"]},
        headers=admin,
    )
    assert rule.status_code == 201
    routed = _file(client, pw, category="manhole", answers={"depth": 1.5}, address="路口")
    assert routed["org_id"] == pw.orgs["city"].id and routed["state"] == "assigned"
    foreign_team = client.post(
        "/api/v1/participation/routing-rules",
        json={"category": "manhole", "org_id": pw.orgs["water"].id, "team_id": team.json()["id"]},
        headers=admin,
    )
    assert foreign_team.status_code == 422
    template = client.post(
        "/api/v1/participation/templates",
        json={"org_id": pw.orgs["city"].id, "title": "已派单", "text": "已安排人员处理"},
        headers=_headers(pw, "city-lead"),
    )
    assert template.status_code == 201
    listed = client.get(
        "/api/v1/participation/templates",
        params={"org_id": pw.orgs["city"].id},
        headers=_headers(pw, "city-worker"),
    )
    assert [t["title"] for t in listed.json()] == ["已派单"]
    assert (
        client.delete(f"/api/v1/participation/routing-rules/{rule.json()['id']}", headers=admin).status_code
        == 204
    )
