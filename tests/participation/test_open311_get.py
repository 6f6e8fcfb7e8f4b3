"""Open311 conformance: GET requests (filters, the 90-day window, the 1,000 cap, paging), one request,
FixMyStreet's servicerequestupdates, and what is never shown (joint-order children, reporters)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert

from participation.pworld import B1, MONDAY, SHANGHAI, ParticipationWorld
from zhishe.core import clock
from zhishe.participation import service
from zhishe.participation.models import Request

REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
UPDATE_FIELDS = [
    "update_id",
    "service_request_id",
    "status",
    "state",
    "updated_datetime",
    "description",
    "media_url",
]
ANSWERS: dict[str, dict[str, Any]] = {
    "streetlight": {"pole_number": "P-9", "light_state": "flicker"},
    "garbage": {"bin_type": ["kitchen"]},
    "leak": {},
    "noise": {"noticed_at": "2026-11-01T23:00:00+08:00"},
}


def _file(pw: ParticipationWorld, at: datetime, code: str = "streetlight", **extra: Any) -> Request:
    clock.set_clock(lambda: at)
    row = service.submit(
        session=pw.session,
        actor=None,
        api_key=pw.api_key,
        channel="open311",
        category_code=code,
        description=extra.pop("description", f"{code} at {at.isoformat()}"),
        lat=extra.pop("lat", B1[0]),
        lon=extra.pop("lon", B1[1]),
        answers=ANSWERS[code],
        reporter=service.Reporter(name="王芳", email="wang@example.cn", phone="13900000000"),
        **extra,
    )
    pw.session.commit()
    clock.set_clock(lambda: MONDAY)
    return row


def _ids(answer: Any) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [int(r["service_request_id"]) for r in answer.json()]


def _error(answer: Any, code: int) -> str:
    assert answer.status_code == code, answer.text
    (error,) = answer.json()
    assert error["code"] == code
    return str(error["description"])


def test_a_listed_request_has_every_field_in_both_formats(client: Any, pw: ParticipationWorld) -> None:
    filed = _file(pw, MONDAY, zipcode="100020")
    (record,) = client.get("/open311/v2/requests.json").json()
    assert list(record) == REQUEST_FIELDS
    assert record["service_request_id"] == str(filed.id)
    assert record["status"] == "open"
    assert record["status_notes"] is None
    assert record["service_name"] == "路灯故障" and record["service_code"] == "streetlight"
    assert record["agency_responsible"] == "城管局"
    assert record["service_notice"] == "3 working days"
    assert record["requested_datetime"] == "2026-11-02T10:00:00+08:00"
    assert record["updated_datetime"].endswith("+08:00")
    assert filed.expected_at is not None
    assert record["expected_datetime"] == filed.expected_at.astimezone(SHANGHAI).isoformat()
    assert record["address"] is None and record["address_id"] == "C1-B1" and record["zipcode"] == "100020"
    assert (record["lat"], record["long"]) == (pytest.approx(B1[0]), pytest.approx(B1[1]))
    assert record["media_url"] is None

    answer = client.get("/open311/v2/requests.xml")
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(answer.content)
    assert root.tag == "service_requests"
    (item,) = root.findall("request")
    assert [c.tag for c in item] == REQUEST_FIELDS
    assert item.findtext("service_request_id") == str(filed.id)
    assert item.findtext("requested_datetime") == "2026-11-02T10:00:00+08:00"
    assert item.findtext("lat") == str(B1[0])
    notes = item.find("status_notes")
    assert notes is not None and notes.text is None
    for private in ("王芳", "wang@example.cn", "13900000000"):
        assert private not in answer.text and private not in str(record)


def test_english_names_of_service_and_agency(client: Any, pw: ParticipationWorld) -> None:
    _file(pw, MONDAY)
    (record,) = client.get("/open311/v2/requests.json?lang=en").json()
    assert record["service_name"] == "Street light out"
    assert record["agency_responsible"] == "city"


def test_status_filter_and_closed_states(client: Any, pw: ParticipationWorld) -> None:
    opened = _file(pw, MONDAY - timedelta(hours=3))
    resolved = _file(pw, MONDAY - timedelta(hours=2))
    rejected = _file(pw, MONDAY - timedelta(hours=1), code="garbage")
    service.act(session=pw.session, actor=pw.actor("city-lead"), request_id=resolved.id, action="resolve")
    service.act(
        session=pw.session,
        actor=pw.actor("op-dispatcher"),
        request_id=rejected.id,
        action="reject",
        note="这是私人区域",
    )
    pw.session.commit()
    assert _ids(client.get("/open311/v2/requests.json?status=open")) == [opened.id]
    assert _ids(client.get("/open311/v2/requests.json?status=closed")) == [rejected.id, resolved.id]
    both = [rejected.id, resolved.id, opened.id]
    assert _ids(client.get("/open311/v2/requests.json?status=open,closed")) == both
    assert _ids(client.get("/open311/v2/requests.json")) == both
    by_id = {r["service_request_id"]: r for r in client.get("/open311/v2/requests.json").json()}
    assert by_id[str(resolved.id)]["status"] == "closed"
    assert by_id[str(opened.id)]["status"] == "open"
    assert "status" in _error(client.get("/open311/v2/requests.json?status=pending"), 400)


def test_service_code_filter_takes_a_comma_list(client: Any, pw: ParticipationWorld) -> None:
    lights = _file(pw, MONDAY - timedelta(hours=3))
    garbage = _file(pw, MONDAY - timedelta(hours=2), code="garbage")
    leak = _file(pw, MONDAY - timedelta(hours=1), code="leak")
    assert _ids(client.get("/open311/v2/requests.json?service_code=leak")) == [leak.id]
    assert _ids(client.get("/open311/v2/requests.json?service_code=streetlight,garbage")) == [
        garbage.id,
        lights.id,
    ]
    assert _ids(client.get("/open311/v2/requests.json?service_code=potholes")) == []


def test_comma_separated_ids_ignore_every_other_filter(client: Any, pw: ParticipationWorld) -> None:
    old = _file(pw, MONDAY - timedelta(days=200))
    new = _file(pw, MONDAY)
    answer = client.get(
        "/open311/v2/requests.json",
        params={
            "service_request_id": f"{old.id}, {new.id},999999",
            "status": "closed",
            "service_code": "leak",
        },
    )
    assert sorted(_ids(answer)) == sorted([old.id, new.id])
    assert "service_request_id" in _error(
        client.get("/open311/v2/requests.json?service_request_id=1,abc"), 400
    )
    too_many = ",".join(str(i) for i in range(1, 1002))
    assert "service_request_id" in _error(
        client.get(f"/open311/v2/requests.json?service_request_id={too_many}"), 400
    )


def test_date_window_is_inclusive_and_spans_at_most_90_days(client: Any, pw: ParticipationWorld) -> None:
    day = timedelta(days=1)
    early = _file(pw, MONDAY - 60 * day)
    middle = _file(pw, MONDAY - 30 * day)
    late = _file(pw, MONDAY)
    window = {"start_date": (MONDAY - 60 * day).isoformat(), "end_date": (MONDAY - 30 * day).isoformat()}
    assert _ids(client.get("/open311/v2/requests.json", params=window)) == [middle.id, early.id]
    from_utc = {"start_date": "2026-10-03T02:00:00Z"}  # = 10:00 in Shanghai, to 90 days later
    assert _ids(client.get("/open311/v2/requests.json", params=from_utc)) == [late.id, middle.id]
    just_after = {"start_date": "2026-10-03T02:00:01Z"}
    assert _ids(client.get("/open311/v2/requests.json", params=just_after)) == [late.id]
    assert _ids(client.get("/open311/v2/requests.json", params={"end_date": "2026-09-10"})) == [early.id]
    # an offset whose + arrived as a space, and a date without offset (read in Asia/Shanghai)
    assert _ids(client.get("/open311/v2/requests.json?start_date=2026-11-02T10:00:00 08:00")) == [late.id]
    assert _ids(client.get("/open311/v2/requests.json?start_date=2026-11-02T10:00:00")) == [late.id]
    exactly = {"start_date": "2026-08-04T10:00:00+08:00", "end_date": "2026-11-02T10:00:00+08:00"}
    assert _ids(client.get("/open311/v2/requests.json", params=exactly)) == [late.id, middle.id, early.id]

    too_wide = {"start_date": "2026-08-01T00:00:00+08:00", "end_date": "2026-11-02T00:00:00+08:00"}
    assert "90 天" in _error(client.get("/open311/v2/requests.json", params=too_wide), 400)
    backwards = {"start_date": "2026-11-02T00:00:00+08:00", "end_date": "2026-11-01T00:00:00+08:00"}
    assert "end_date" in _error(client.get("/open311/v2/requests.json", params=backwards), 400)
    assert "start_date" in _error(client.get("/open311/v2/requests.json?start_date=yesterday"), 400)
    assert "end_date" in _error(client.get("/open311/v2/requests.json?end_date=2026-13-01"), 400)
    answer = client.get("/open311/v2/requests.xml", params=too_wide)
    assert answer.status_code == 400
    assert "90 天" in (ET.fromstring(answer.content).findtext("error/description") or "")


def test_default_window_is_the_last_90_days(client: Any, pw: ParticipationWorld) -> None:
    _file(pw, MONDAY - timedelta(days=91))
    inside = _file(pw, MONDAY - timedelta(days=89))
    assert _ids(client.get("/open311/v2/requests.json")) == [inside.id]


def _bulk(pw: ParticipationWorld, count: int) -> list[int]:
    """``count`` plain requests, one a minute up to MONDAY (the newest has the highest id)."""
    category = pw.categories["leak"].id
    rows = [
        {
            "category_id": category,
            "token": f"bulk{i:06d}",
            "requested_at": MONDAY - timedelta(minutes=count - i),
            "updated_at": MONDAY - timedelta(minutes=count - i),
            "description": f"bulk {i}",
            "address": "somewhere",
        }
        for i in range(count)
    ]
    pw.session.execute(insert(Request), rows)
    pw.session.commit()
    return [r.id for r in pw.session.query(Request.id).order_by(Request.id.desc())]


def test_at_most_1000_records_and_paging(client: Any, pw: ParticipationWorld) -> None:
    clock.set_clock(lambda: MONDAY)
    newest_first = _bulk(pw, 1005)
    first = client.get("/open311/v2/requests.json")
    assert _ids(first) == newest_first[:1000]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    following = urlsplit(link[1 : link.index(">")])
    assert parse_qs(following.query) == {"page": ["2"]}
    assert _ids(client.get(f"{following.path}?{following.query}")) == newest_first[1000:]
    assert "link" not in client.get("/open311/v2/requests.json?page=2").headers
    third = client.get("/open311/v2/requests.json?page_size=10&page=3&status=open")
    assert _ids(third) == newest_first[20:30]
    assert parse_qs(urlsplit(third.headers["link"][1:-13]).query) == {
        "page_size": ["10"],
        "status": ["open"],
        "page": ["4"],
    }
    assert len(_ids(client.get("/open311/v2/requests.json?page_size=1000"))) == 1000
    assert _ids(client.get("/open311/v2/requests.json?page=500")) == []
    for bad in ("page_size=1001", "page_size=0", "page=0", "page=two", "page_size=-5"):
        assert bad.split("=")[0] in _error(client.get(f"/open311/v2/requests.json?{bad}"), 400)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_one_request_is_a_list_of_one_and_unknown_ids_are_404(
    client: Any, pw: ParticipationWorld, fmt: str
) -> None:
    filed = _file(pw, MONDAY)
    answer = client.get(f"/open311/v2/requests/{filed.id}.{fmt}")
    assert answer.status_code == 200
    if fmt == "json":
        assert [r["service_request_id"] for r in answer.json()] == [str(filed.id)]
    else:
        root = ET.fromstring(answer.content)
        assert root.tag == "service_requests"
        assert [r.findtext("service_request_id") for r in root.findall("request")] == [str(filed.id)]
    for unknown in (str(filed.id + 1000), "abc", "99999999999999999999", "0"):
        missing = client.get(f"/open311/v2/requests/{unknown}.{fmt}")
        assert missing.status_code == 404
        if fmt == "xml":
            assert ET.fromstring(missing.content).findtext("error/code") == "404"
        else:
            assert missing.json()[0]["code"] == 404


def test_joint_order_children_never_appear(client: Any, pw: ParticipationWorld) -> None:
    parent = _file(pw, MONDAY - timedelta(hours=1), code="leak")
    children = service.split(
        session=pw.session,
        actor=pw.actor("bureau-dispatcher"),
        request_id=parent.id,
        parts=[(pw.orgs["water"].id, pw.teams["repair"].id, "修水管"), (pw.orgs["city"].id, None, "修路面")],
    )
    pw.session.commit()
    assert _ids(client.get("/open311/v2/requests.json")) == [parent.id]
    ids = ",".join(str(c.id) for c in children)
    assert _ids(client.get(f"/open311/v2/requests.json?service_request_id={ids}")) == []
    assert client.get(f"/open311/v2/requests/{children[0].id}.json").status_code == 404
    updates = client.get("/open311/v2/servicerequestupdates.json").json()
    assert {u["service_request_id"] for u in updates} == {str(parent.id)}


def test_service_request_updates_in_both_formats(client: Any, pw: ParticipationWorld) -> None:
    filed = _file(pw, MONDAY - timedelta(hours=2))
    clock.set_clock(lambda: MONDAY - timedelta(hours=1))
    service.act(
        session=pw.session,
        actor=pw.actor("city-lead"),
        request_id=filed.id,
        action="resolve",
        note="换了灯泡",
    )
    service.act(
        session=pw.session,
        actor=pw.actor("city-lead"),
        request_id=filed.id,
        action="comment",
        note="内部备注",
        public=False,
    )
    pw.session.commit()
    clock.set_clock(lambda: MONDAY)
    updates = client.get("/open311/v2/servicerequestupdates.json").json()
    assert updates, "the filed request has public updates"
    for update in updates:
        assert list(update) == UPDATE_FIELDS
        assert update["service_request_id"] == str(filed.id)
        assert update["updated_datetime"].endswith("+08:00")
    times = [u["updated_datetime"] for u in updates]
    assert times == sorted(times)
    last = updates[-1]
    assert (last["status"], last["state"], last["description"]) == ("closed", "resolved", "换了灯泡")
    assert updates[0]["status"] == "open" and updates[0]["state"] in ("new", "assigned")
    assert "内部备注" not in str(updates)

    root = ET.fromstring(client.get("/open311/v2/servicerequestupdates.xml").content)
    assert root.tag == "service_request_updates"
    items = root.findall("request_update")
    assert len(items) == len(updates)
    assert [c.tag for c in items[-1]] == UPDATE_FIELDS
    assert items[-1].findtext("description") == "换了灯泡"

    window = {"start_date": "2026-11-02T08:30:00+08:00", "end_date": "2026-11-02T09:30:00+08:00"}
    assert [
        u["state"] for u in client.get("/open311/v2/servicerequestupdates.json", params=window).json()
    ] == ["resolved"]
    paged = client.get("/open311/v2/servicerequestupdates.json?page_size=1&page=2").json()
    assert paged == updates[1:2]
    wide = {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-11-02T00:00:00+08:00"}
    assert "90 天" in _error(client.get("/open311/v2/servicerequestupdates.json", params=wide), 400)
    english = client.get("/open311/v2/servicerequestupdates.json?lang=en").json()
    assert english[0]["description"] == "report received"


def test_reads_answered_by_the_route_index_match_the_framework_s_answers(
    client: Any, pw: ParticipationWorld
) -> None:
    """Open311 reads are called by the route index itself (``routing.direct``): every answer, good or
    bad, is the one the framework's own handling gives, byte for byte but for the request id."""
    from zhishe.core.web.routing import RouteIndex

    filed = _file(pw, MONDAY)
    _file(pw, MONDAY - timedelta(hours=1), code="garbage")
    index = client.app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    paths = [
        "/open311/v2/services.json",
        "/open311/v2/services.xml?lang=en",
        "/open311/v2/services/streetlight.json",
        "/open311/v2/services/nosuch.json",
        f"/open311/v2/requests/{filed.id}.json",
        f"/open311/v2/requests/{filed.id}.xml",
        "/open311/v2/requests/99999.json",
        "/open311/v2/requests/1.csv",
        "/open311/v2/requests/x%00.json",
        "/open311/v2/requests.json?page_size=1&page=2",
        "/open311/v2/requests.json?status=open,closed&service_code=garbage",
        "/open311/v2/requests.json?start_date=yesterday",
        "/open311/v2/requests.json?description=%00",
        f"/open311/v2/tokens/{filed.token}.json",
        "/open311/v2/tokens/nope.json",
        "/open311/v2/servicerequestupdates.json",
    ]

    def answers() -> list[tuple[int, list[tuple[str, str]], bytes]]:
        out = []
        client.cookies.clear()  # ?lang=en sets the language cookie
        for path in paths:
            answer = client.get(path)
            headers = sorted((k, v) for k, v in answer.headers.items() if k not in ("x-request-id", "date"))
            out.append((answer.status_code, headers, answer.content))
        return out

    direct = answers()
    assert len(index._direct) == 6  # services, one service, requests, one request, tokens, updates
    index.direct_enabled = False
    try:
        framework = answers()
    finally:
        index.direct_enabled = True
    for path, mine, theirs in zip(paths, direct, framework, strict=True):
        assert mine == theirs, path
    assert {status for status, _, _ in direct} >= {200, 400, 404}


def test_a_direct_endpoint_must_take_the_request_then_strings() -> None:
    from zhishe.core.web import routing

    async def wrong(request: Any, number: int) -> Any:
        return None

    with pytest.raises(TypeError, match="must be a str"):
        routing.direct(wrong)

    def blocking(request: Any) -> Any:
        return None

    with pytest.raises(TypeError, match="is async"):
        routing.direct(blocking)  # type: ignore[arg-type]
