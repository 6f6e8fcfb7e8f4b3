"""Public data requests end to end: filed by anyone (API and form), routed, supported, answered in
working days, overdue after the deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from helpers import csrf_of, login
from opendata.open_world import SHANGHAI, OpenWorld
from zhishe.core.audit.models import AuditEvent

REQUESTS = "/opendata/api/v1/requests"


def file(ow: OpenWorld, **body: Any) -> dict[str, Any]:
    made = ow.client.post(
        REQUESTS, json={"title": "小区停车位数据", "description": "各小区车位数与使用率", **body}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def staff(ow: OpenWorld, who: str, request_id: int, verb: str, **body: Any) -> Any:
    return ow.client.post(f"/api/v1/opendata/requests/{request_id}/{verb}", json=body, headers=ow.h(who))


def notifications(ow: OpenWorld, who: str) -> list[dict[str, Any]]:
    got = ow.client.get("/api/v1/notifications", headers=ow.h(who))
    assert got.status_code == 200, got.text
    return list(got.json()["items"])


def shanghai(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(SHANGHAI)


# -- filing -----------------------------------------------------------------------------------------


def test_an_anonymous_request_goes_to_the_chosen_department_with_a_working_day_deadline(
    ow: OpenWorld,
) -> None:
    filed = file(ow, owner_org_id=ow.env.id, contact="li@example.cn", purpose="研究")
    assert filed["state"] == "open" and filed["owner_org_id"] == ow.env.id and filed["owner"] == "生态环境局"
    assert filed["contact"] == ""  # never echoed to the public, not even to the requester's browser
    assert filed["supporters"] == 0 and filed["overdue"] is False and filed["answer"] is None
    # Friday 18 September: Sunday 20th is a make-up working day, so the 5th working day is Thursday 24th
    assert shanghai(filed["due_at"]) == datetime(2026, 9, 25, 0, 0, tzinfo=SHANGHAI)

    unchosen = file(ow)
    assert unchosen["owner_org_id"] == ow.bureau.id


def test_an_unknown_dataset_or_owner_is_refused(ow: OpenWorld) -> None:
    refused = ow.client.post(REQUESTS, json={"title": "x", "description": "y", "dataset": "nope"})
    assert refused.status_code == 422 and refused.json()["error"]["detail"]["field"] == "dataset"
    refused = ow.client.post(REQUESTS, json={"title": "x", "description": "y", "owner_org_id": 99999})
    assert refused.status_code == 422 and refused.json()["error"]["detail"]["field"] == "owner_org_id"
    refused = ow.client.post(REQUESTS, json={"title": "   ", "description": "y"})
    assert refused.status_code == 422 and refused.json()["error"]["detail"]["field"] == "title"
    assert ow.client.get(REQUESTS).json() == []


def test_a_request_naming_an_open_dataset_goes_to_its_owner(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    ow.register(households=10)
    filed = file(ow, dataset="air", owner_org_id=ow.water.id)  # the dataset wins
    assert filed["owner_org_id"] == ow.env.id and filed["owner"] == "生态环境局"
    # a dataset that is not open is not named to the public: the same answer as an unknown one
    hidden = ow.client.post(REQUESTS, json={"title": "户籍", "description": "要", "dataset": "register"})
    unknown = ow.client.post(REQUESTS, json={"title": "户籍", "description": "要", "dataset": "nothing"})
    assert hidden.status_code == unknown.status_code == 422
    assert hidden.json()["error"]["message"].replace("register", "X") == unknown.json()["error"][
        "message"
    ].replace("nothing", "X")


def test_the_deadline_skips_the_national_day_holiday(ow: OpenWorld) -> None:
    ow.at(datetime(2026, 9, 29, 16, 0, tzinfo=SHANGHAI))  # Tuesday before National Day
    filed = file(ow, owner_org_id=ow.env.id)
    # 30 Sep (1), 1–7 Oct holiday, 8 (2), 9 (3), Saturday 10 Oct a make-up working day (4), 12 (5)
    assert shanghai(filed["due_at"]) == datetime(2026, 10, 13, 0, 0, tzinfo=SHANGHAI)
    ow.at(datetime(2026, 10, 12, 23, 59, tzinfo=SHANGHAI))
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["overdue"] is False
    ow.at(datetime(2026, 10, 13, 0, 0, 1, tzinfo=SHANGHAI))
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["overdue"] is True


def test_the_form_files_a_request_with_csrf_and_shows_the_deadline(ow: OpenWorld) -> None:
    c = ow.client
    form = c.get("/opendata/requests/new")
    assert form.status_code == 200
    assert f'<option value="{ow.water.id}">水务局</option>' in form.text
    token = csrf_of(c, "/opendata/requests/new")
    data = {
        "title": "供水管网漏损率",
        "description": "按月的漏损率",
        "purpose": "学术研究",
        "contact": "13912345678",
        "owner_org_id": str(ow.water.id),
    }
    refused = c.post("/opendata/requests/new", data=data, follow_redirects=False)  # no token
    assert refused.status_code == 403
    sent = c.post("/opendata/requests/new", data={**data, "csrf_token": token}, follow_redirects=False)
    assert sent.status_code in (302, 303), sent.text
    where = sent.headers["location"]
    assert where.startswith("/opendata/requests/") and where.endswith("?filed=1")
    page = c.get(where)
    assert page.status_code == 200
    assert "供水管网漏损率" in page.text and "水务局" in page.text
    assert 'id="filed"' in page.text and "2026-09-25" in page.text
    assert "13912345678" not in page.text

    listed = c.get(REQUESTS).json()
    assert [(r["title"], r["owner_org_id"], r["contact"]) for r in listed] == [
        ("供水管网漏损率", ow.water.id, "")
    ]

    # a bad form comes back with the error and the values kept
    bad = c.post("/opendata/requests/new", data={"csrf_token": token, "title": "", "description": "x"})
    assert bad.status_code == 422
    assert 'id="request-form"' in bad.text


def test_the_form_without_a_department_goes_to_the_bureau(ow: OpenWorld) -> None:
    token = csrf_of(ow.client, "/opendata/requests/new")
    sent = ow.client.post(
        "/opendata/requests/new",
        data={"csrf_token": token, "title": "公交站客流", "description": "每站每日", "owner_org_id": ""},
        follow_redirects=False,
    )
    assert sent.status_code in (302, 303)
    (only,) = ow.client.get(REQUESTS).json()
    assert only["owner_org_id"] == ow.bureau.id


# -- support --------------------------------------------------------------------------------------


def test_support_counts_once_per_person(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id)
    url = f"{REQUESTS}/{filed['id']}/support"
    assert ow.client.post(url).json()["supporters"] == 1
    assert ow.client.post(url).json()["supporters"] == 1  # the same anonymous visitor again
    other_browser = ow.client.post(url, headers={"User-Agent": "another browser"})
    assert other_browser.json()["supporters"] == 2
    assert ow.client.post(url, headers=ow.h("resident.li")).json()["supporters"] == 3
    assert ow.client.post(url, headers=ow.h("resident.li")).json()["supporters"] == 3
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["supporters"] == 3

    token = csrf_of(ow.client, f"/opendata/requests/{filed['id']}")
    via_page = ow.client.post(
        f"/opendata/requests/{filed['id']}/support", data={"csrf_token": token}, follow_redirects=False
    )
    assert via_page.status_code in (302, 303)
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["supporters"] == 3  # same browser as before

    assert staff(ow, "env.steward", filed["id"], "decline", reason="不属于本局").status_code == 200
    assert ow.client.post(url, headers={"User-Agent": "late"}).status_code == 409


# -- the contact -------------------------------------------------------------------------------------


def test_the_contact_is_shown_to_the_owner_only(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id, contact="li@example.cn")
    one = f"{REQUESTS}/{filed['id']}"
    assert ow.client.get(one).json()["contact"] == ""
    assert ow.client.get(one, headers=ow.h("water.steward")).json()["contact"] == ""
    assert ow.client.get(one, headers=ow.h("resident.li")).json()["contact"] == ""
    assert ow.client.get(one, headers=ow.h("env.analyst")).json()["contact"] == ""
    assert ow.client.get(one, headers=ow.h("env.steward")).json()["contact"] == "li@example.cn"
    assert ow.client.get(one, headers=ow.h("bureau.admin")).json()["contact"] == "li@example.cn"
    listed = ow.client.get(REQUESTS, headers=ow.h("env.admin")).json()
    assert [r["contact"] for r in listed] == ["li@example.cn"]
    assert [r["contact"] for r in ow.client.get(REQUESTS).json()] == [""]

    # pages: hidden from visitors, shown to the owner; each sight of it is audited
    assert "li@example.cn" not in ow.client.get(f"/opendata/requests/{filed['id']}").text
    login(ow.client, "env.steward")
    assert "li@example.cn" in ow.client.get(f"/opendata/requests/{filed['id']}").text
    ow.db.rollback()
    seen = ow.db.scalars(
        select(AuditEvent.actor).where(AuditEvent.action == "opendata.request.read_contact")
    ).all()
    assert set(seen) == {"env.steward", "bureau.admin", "env.admin"}


# -- answering ---------------------------------------------------------------------------------------


def test_the_owner_answers_with_a_published_release(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id)
    refused = staff(ow, "env.steward", filed["id"], "answer", dataset="air")
    assert refused.status_code == 422  # nothing is published yet
    ow.open_air(hours=2)
    ow.release("air")
    answered = staff(ow, "env.steward", filed["id"], "answer", dataset="air", release=1)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["state"] == "answered" and body["answer"] == "/opendata/datasets/air/releases/1"
    assert body["closed_at"] is not None and body["overdue"] is False
    public = ow.client.get(f"{REQUESTS}/{filed['id']}").json()
    assert public["answer"] == "/opendata/datasets/air/releases/1"
    assert ow.client.get(public["answer"]).status_code == 200
    assert staff(ow, "env.steward", filed["id"], "decline", reason="x").status_code == 409  # closed

    newest = file(ow, owner_org_id=ow.env.id)
    answered = staff(ow, "env.admin", newest["id"], "answer", dataset="air")
    assert answered.json()["answer"] == "/opendata/datasets/air/releases/2"  # the newest by default
    missing = file(ow, owner_org_id=ow.env.id)
    assert staff(ow, "env.admin", missing["id"], "answer", dataset="air", release=9).status_code == 422
    assert staff(ow, "env.admin", missing["id"], "answer", dataset="nope").status_code == 422


def test_the_owner_declines_with_a_public_reason(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id)
    assert staff(ow, "env.steward", filed["id"], "decline", reason="   ").status_code == 422
    declined = staff(ow, "env.steward", filed["id"], "decline", reason="涉及个人信息，不予开放")
    assert declined.status_code == 200
    public = ow.client.get(f"{REQUESTS}/{filed['id']}").json()
    assert public["state"] == "declined" and public["reason"] == "涉及个人信息，不予开放"
    assert "涉及个人信息" in ow.client.get(f"/opendata/requests/{filed['id']}").text
    assert [r["id"] for r in ow.client.get(REQUESTS, params={"state": "declined"}).json()] == [filed["id"]]
    assert ow.client.get(REQUESTS, params={"state": "open"}).json() == []


def test_the_bureau_routes_a_request_to_the_owner_who_is_told(ow: OpenWorld) -> None:
    filed = file(ow)  # to the bureau
    assert any(n["kind"] == "opendata.request" for n in notifications(ow, "bureau.admin"))
    assert notifications(ow, "water.steward") == []
    ow.at(datetime(2026, 9, 29, 9, 0, tzinfo=SHANGHAI))
    routed = staff(ow, "bureau.admin", filed["id"], "route", owner_org_id=ow.water.id)
    assert routed.status_code == 200, routed.text
    assert routed.json()["owner_org_id"] == ow.water.id and routed.json()["owner"] == "水务局"
    # the deadline starts again from the routing, across National Day
    assert shanghai(routed.json()["due_at"]) == datetime(2026, 10, 13, 0, 0, tzinfo=SHANGHAI)
    told = [n for n in notifications(ow, "water.steward") if n["kind"] == "opendata.request"]
    assert len(told) == 1 and told[0]["link"] == f"/opendata/requests/{filed['id']}"
    assert notifications(ow, "water.analyst") == []  # stewards and admins only

    # the bureau's staff may still act; the old owner's department never could
    assert staff(ow, "env.steward", filed["id"], "decline", reason="x").status_code == 403
    assert staff(ow, "bureau.admin", filed["id"], "route", owner_org_id=99999).status_code == 422
    assert staff(ow, "water.steward", filed["id"], "route", owner_org_id=ow.env.id).status_code == 200
    assert staff(ow, "water.steward", filed["id"], "decline", reason="x").status_code == 403


def test_the_owner_is_notified_of_a_new_request(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id, title="噪声监测数据")
    for who in ("env.steward", "env.admin"):
        (told,) = [n for n in notifications(ow, who) if n["kind"] == "opendata.request"]
        assert "噪声监测数据" in told["message"] and told["link"] == f"/opendata/requests/{filed['id']}"
    assert notifications(ow, "env.analyst") == []
    assert notifications(ow, "water.steward") == []


def test_others_cannot_answer_decline_or_route(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id)
    ow.open_air(hours=2)
    for who in ("water.steward", "resident.li", "env.analyst", "police.steward"):
        assert staff(ow, who, filed["id"], "answer", dataset="air").status_code == 403, who
        assert staff(ow, who, filed["id"], "decline", reason="no").status_code == 403, who
        assert staff(ow, who, filed["id"], "route", owner_org_id=ow.water.id).status_code == 403, who
    anonymous = ow.client.post(f"/api/v1/opendata/requests/{filed['id']}/decline", json={"reason": "no"})
    assert anonymous.status_code == 401
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["state"] == "open"
    # the bureau's analysts may answer any request
    assert staff(ow, "bureau.analyst", filed["id"], "answer", dataset="air").status_code == 200


def test_the_owner_answers_through_the_page(ow: OpenWorld) -> None:
    filed = file(ow, owner_org_id=ow.env.id)
    ow.open_air(hours=2)
    login(ow.client, "water.steward")
    page = ow.client.get(f"/opendata/requests/{filed['id']}")
    assert 'id="answer"' not in page.text
    login(ow.client, "env.steward")
    page = ow.client.get(f"/opendata/requests/{filed['id']}")
    assert 'id="answer"' in page.text
    token = csrf_of(ow.client, f"/opendata/requests/{filed['id']}")
    done = ow.client.post(
        f"/opendata/requests/{filed['id']}/close",
        data={"csrf_token": token, "action": "answer", "dataset": "air", "release": ""},
        follow_redirects=False,
    )
    assert done.status_code in (302, 303)
    assert ow.client.get(f"{REQUESTS}/{filed['id']}").json()["answer"] == "/opendata/datasets/air/releases/1"


# -- overdue ---------------------------------------------------------------------------------------


def test_requests_past_their_deadline_are_listed_as_overdue(ow: OpenWorld) -> None:
    late = file(ow, owner_org_id=ow.env.id, title="迟复")
    answered = file(ow, owner_org_id=ow.env.id, title="已复")
    assert staff(ow, "env.steward", answered["id"], "decline", reason="无此数据").status_code == 200
    assert ow.client.get(REQUESTS, params={"state": "overdue"}).json() == []

    ow.at(datetime(2026, 9, 24, 23, 59, tzinfo=SHANGHAI))
    assert ow.client.get(REQUESTS, params={"state": "overdue"}).json() == []
    ow.at(datetime(2026, 9, 25, 0, 0, tzinfo=SHANGHAI) + timedelta(minutes=1))
    later = file(ow, owner_org_id=ow.env.id, title="新的")
    overdue = ow.client.get(REQUESTS, params={"state": "overdue"}).json()
    assert [(r["id"], r["overdue"]) for r in overdue] == [(late["id"], True)]
    everything = {r["id"]: r["overdue"] for r in ow.client.get(REQUESTS).json()}
    assert everything == {late["id"]: True, answered["id"]: False, later["id"]: False}
    page = ow.client.get("/opendata/requests", params={"state": "overdue"})
    assert page.status_code == 200 and "迟复" in page.text and "新的" not in page.text
    assert ow.client.get(REQUESTS, params={"state": "lost"}).status_code == 422
