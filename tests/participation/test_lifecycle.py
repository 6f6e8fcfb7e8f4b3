"""A street-light report's whole life, with the clock under the test's control, through the resident
pages, the staff pages and the JSON API: filed with a photo; a neighbour at the same spot is offered
it and says "me too"; routed to the city's street-lights team; accepted; paused for parts (the
deadline stops and moves by exactly the working time waited); overdue and escalated up the ladder
(the public page shows the overdue badge); resolved through the API; reopened by the resident; resolved
again; confirmed; closed, as Open311 also says."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from helpers import bearer, csrf_of, login
from participation.pworld import B1, MONDAY, SHANGHAI, ParticipationWorld
from zhishe.core import clock
from zhishe.core.notifications.models import Notification
from zhishe.participation import escalation
from zhishe.participation.models import Photo, Request, RequestUpdate
from zhishe.participation.sla import WorkCalendar
from zhishe.participation.staff_pages import router as staff_router


@pytest.fixture(autouse=True)
def _staff_routes(app: Any) -> None:
    """The staff pages are part of the app (included here only if the app does not yet)."""
    if not any(getattr(r, "path", "").startswith("/work") for r in app.routes):
        app.include_router(staff_router)


class Moments:
    """The test's clock: ``now`` is what every part of the platform sees."""

    def __init__(self) -> None:
        self.now = MONDAY
        clock.set_clock(lambda: self.now)

    def to(self, moment: datetime) -> datetime:
        assert moment >= self.now, "time only moves forward"
        self.now = moment
        return moment


@pytest.fixture()
def moments() -> Iterator[Moments]:
    yield Moments()
    clock.set_clock(None)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _report_form(**extra: str) -> dict[str, str]:
    return {
        "category": "streetlight",
        "where": "position",
        "lat": str(B1[0]),
        "long": str(B1[1]),
        "description": "1号楼门口的路灯不亮",
        "attribute[pole_number]": "C1-017",
        "attribute[light_state]": "out",
        **extra,
    }


def _post(client: Any, path: str, data: dict[str, Any], page: str) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_of(client, page)}, follow_redirects=False)


def _order(pw: ParticipationWorld, order_id: int) -> Request:
    pw.session.expire_all()
    found = pw.session.get(Request, order_id)
    assert found is not None
    return found


def _notified(pw: ParticipationWorld, username: str, kind: str) -> list[Notification]:
    query = select(Notification).where(
        Notification.user_id == pw.users[username].id, Notification.kind == kind
    )
    return list(pw.session.scalars(query))


def _file_report(client: Any, pw: ParticipationWorld) -> int:
    """res1 files the report through the resident page, with a photo (multipart)."""
    login(client, "res1")
    token = csrf_of(client, "/participate/report/new?category=streetlight")
    filed = client.post(
        "/participate/report",
        data={**_report_form(), "csrf_token": token},
        files={"photo": ("lamp.png", _png(), "image/png")},
        follow_redirects=False,
    )
    assert filed.status_code == 303, filed.text[:500]
    found = re.match(r"^/participate/requests/(\d+)\?filed=1$", filed.headers["location"])
    assert found is not None
    return int(found.group(1))


def test_a_report_from_filing_to_closing(client: Any, pw: ParticipationWorld, moments: Moments) -> None:
    # --- submit ------------------------------------------------------------------------------
    order_id = _file_report(client, pw)
    order = _order(pw, order_id)
    assert order.reporter_user_id == pw.users["res1"].id and order.channel == "web"
    assert pw.session.scalar(select(func.count()).where(Photo.request_id == order_id)) == 1

    # --- route: category x area -> the city's street-lights team ------------------------------
    assert (order.org_id, order.team_id, order.state) == (
        pw.orgs["city"].id,
        pw.teams["lights"].id,
        "assigned",
    )
    deadline = order.expected_at
    assert deadline == datetime(2026, 11, 6, 0, 0, tzinfo=SHANGHAI)  # 3 working days after Monday
    assert [n.link for n in _notified(pw, "city-worker", "participation.order")] == [
        f"/work/orders/{order_id}"
    ]

    # --- a neighbour at the same spot is offered the open report, and says "me too" -----------
    near = client.get(
        "/api/v1/participation/requests/nearby",
        params={"category": "streetlight", "lat": B1[0], "long": B1[1]},
    )
    assert near.status_code == 200 and [r["id"] for r in near.json()] == [order_id]
    login(client, "res2")
    token = csrf_of(client, "/participate/report/new?category=streetlight")
    offered = client.post(
        "/participate/report",
        data={**_report_form(description="路灯坏了"), "csrf_token": token},
        files={"photo": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert offered.status_code == 200 and 'id="nearby-list"' in offered.text
    assert f'action="/participate/requests/{order_id}/support"' in offered.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', offered.text).group(1)
    supported = client.post(
        f"/participate/requests/{order_id}/support", data={"csrf_token": token}, follow_redirects=False
    )
    assert supported.status_code == 303
    assert pw.session.scalar(select(func.count()).select_from(Request)) == 1  # no duplicate was filed
    assert _order(pw, order_id).supporters == 1

    # --- accept through the staff queue and the order page ------------------------------------
    login(client, "city-worker")
    queue = client.get("/work")
    assert f'<tr data-id="{order_id}"' in queue.text
    path = f"/work/orders/{order_id}"
    assert _post(client, path, {"action": "accept"}, page=path).status_code == 303
    order = _order(pw, order_id)
    assert (order.state, order.assignee_user_id) == ("accepted", pw.users["city-worker"].id)

    # --- pause for parts a whole working day: the clock stops -------------------------------
    paused = moments.to(MONDAY + timedelta(days=1))  # Tuesday 10:00
    login(client, "city-worker")
    waited = _post(client, path, {"action": "wait", "reason": "parts", "note": "等待灯泡"}, page=path)
    assert waited.status_code == 303
    order = _order(pw, order_id)
    assert (order.state, order.wait_reason, order.paused_at) == ("waiting", "parts", paused)
    resumed = moments.to(MONDAY + timedelta(days=2))  # Wednesday 10:00
    assert _order(pw, order_id).expected_at == deadline  # the deadline did not move while waiting
    assert escalation.sweep(session=pw.session, now=resumed).escalated == 0
    pw.session.commit()
    login(client, "city-worker")
    assert "等待灯泡" in client.get(path).text
    assert _post(client, path, {"action": "resume"}, page=path).status_code == 303
    order = _order(pw, order_id)
    calendar = WorkCalendar.load(pw.session)
    waited_seconds = calendar.working_seconds(paused, resumed)
    assert waited_seconds == calendar.day_seconds  # one working day
    assert order.state == "in_progress" and order.paused_at is None
    assert calendar.working_seconds(deadline, order.expected_at) == waited_seconds
    new_deadline = order.expected_at
    assert new_deadline == datetime(2026, 11, 7, 0, 0, tzinfo=SHANGHAI)

    # --- time passes the deadline: escalated to the team lead and the department head ---------
    late = moments.to(datetime(2026, 11, 9, 10, 0, tzinfo=SHANGHAI))  # the next Monday
    result = escalation.sweep(session=pw.session, now=late)
    pw.session.commit()
    assert result.escalated == 1
    order = _order(pw, order_id)
    assert order.escalation_level == 2
    assert _notified(pw, "city-lead", "participation.escalation.team_lead")
    assert _notified(pw, "city-head", "participation.escalation.department_head")
    assert not _notified(pw, "bureau-admin", "participation.escalation.bureau")
    public = client.get(f"/participate/requests/{order_id}")
    assert 'class="badge overdue"' in public.text
    login(client, "city-lead")
    staff_view = client.get(path).text
    assert 'id="overdue"' in staff_view and 'id="escalation"' in staff_view
    assert staff_view.count('data-kind="escalation"') == 2
    assert f'<tr data-id="{order_id}"' in client.get("/work?overdue=yes").text

    # --- resolved through the API ---------------------------------------------------------------
    moments.to(late + timedelta(hours=2))
    headers = bearer(pw.session, pw.users["city-worker"], ["participation:read", "participation:write"])
    resolved = client.post(
        f"/api/v1/participation/requests/{order_id}/actions",
        json={"action": "resolve", "note": "已更换灯泡"},
        headers=headers,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["state"] == "resolved" and resolved.json()["within_sla"] is False
    assert 'class="badge overdue"' not in client.get(f"/participate/requests/{order_id}").text

    # --- the resident reopens it with a reason -------------------------------------------------
    moments.to(late + timedelta(hours=5))
    login(client, "res1")
    status = f"/participate/requests/{order_id}"
    no_reason = _post(client, f"{status}/confirm", {"fixed": "0", "reason": ""}, page=status)
    assert no_reason.status_code == 422 and _order(pw, order_id).state == "resolved"
    reopened = _post(client, f"{status}/confirm", {"fixed": "0", "reason": "晚上还是不亮"}, page=status)
    assert reopened.status_code == 303
    order = _order(pw, order_id)
    assert (order.state, order.reopen_count, order.confirmation) == ("reopened", 1, "reopened")
    assert order.escalation_level == 0 and order.expected_at > late

    # --- staff resolve again ---------------------------------------------------------------------
    moments.to(late + timedelta(days=1))
    login(client, "city-worker")
    page = client.get(path).text
    assert "晚上还是不亮" in page
    assert _post(client, path, {"action": "resolve", "note": "更换了镇流器"}, page=path).status_code == 303
    assert _order(pw, order_id).state == "resolved"

    # --- the resident confirms: closed -----------------------------------------------------------
    login(client, "res1")
    confirmed = _post(client, f"{status}/confirm", {"fixed": "1", "satisfaction": "4"}, page=status)
    assert confirmed.status_code == 303
    order = _order(pw, order_id)
    assert (order.state, order.confirmation, order.satisfaction) == ("closed", "confirmed", 4)
    assert order.closed_at is not None

    kinds = list(
        pw.session.scalars(
            select(RequestUpdate.kind).where(RequestUpdate.request_id == order_id).order_by(RequestUpdate.id)
        )
    )
    for kind in ("support", "escalation", "reopen", "confirm"):
        assert kind in kinds

    # --- Open311 says closed too ------------------------------------------------------------------
    open311 = client.get(f"/open311/v2/requests/{order_id}.json")
    assert open311.status_code == 200, open311.text
    assert [(r["service_request_id"], r["status"]) for r in open311.json()] == [(str(order_id), "closed")]


def test_an_order_waiting_past_its_deadline_is_neither_overdue_nor_escalated(
    client: Any, pw: ParticipationWorld, moments: Moments
) -> None:
    order_id = _file_report(client, pw)
    login(client, "city-worker")
    path = f"/work/orders/{order_id}"
    assert _post(client, path, {"action": "accept"}, page=path).status_code == 303
    assert _post(client, path, {"action": "wait", "reason": "weather"}, page=path).status_code == 303
    later = moments.to(datetime(2026, 11, 16, 10, 0, tzinfo=SHANGHAI))  # long past the first deadline
    assert escalation.sweep(session=pw.session, now=later).escalated == 0
    pw.session.commit()
    order = _order(pw, order_id)
    assert order.escalation_level == 0 and order.state == "waiting"
    assert 'class="badge overdue"' not in client.get(f"/participate/requests/{order_id}").text


def test_the_resident_can_no_longer_reopen_after_the_window(
    client: Any, pw: ParticipationWorld, moments: Moments
) -> None:
    order_id = _file_report(client, pw)
    login(client, "city-worker")
    path = f"/work/orders/{order_id}"
    assert _post(client, path, {"action": "resolve", "note": "修好了"}, page=path).status_code == 303
    moments.to(MONDAY + timedelta(days=30))
    login(client, "res1")
    status = f"/participate/requests/{order_id}"
    refused = _post(client, f"{status}/confirm", {"fixed": "0", "reason": "又坏了"}, page=status)
    assert refused.status_code == 409
    assert _order(pw, order_id).state == "resolved"
