"""Residents' report pages through the real app: filing step by step with questions of every kind,
photos and the three ways of saying where; errors that keep what was typed; the nearby step that
offers "me too"; the status page, adding information, confirming or reopening within the window;
the call-centre entry; and the photos route."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO
from typing import Any

import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select

from helpers import csrf_of, login
from participation.pworld import B1, MONDAY, ParticipationWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.participation import photos, service
from zhishe.participation.models import Photo, Request, Support

FORM = "/participate/report/new?category={code}"


@pytest.fixture(autouse=True)
def _monday() -> None:
    clock.set_clock(lambda: MONDAY)


def _jpeg(colour: tuple[int, int, int] = (200, 40, 40), gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    if gps:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        ifd[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 15.12)
    out = BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _form(client: Any, code: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"csrf_token": csrf_of(client, FORM.format(code=code)), "category": code}
    data.update(fields)
    return data


def _streetlight(client: Any, **extra: Any) -> dict[str, Any]:
    fields = {
        "attribute[pole_number]": "P-0042",
        "attribute[light_state]": "flicker",
        "where": "position",
        "lat": str(B1[0]),
        "long": str(B1[1]),
        "description": "The lamp by the gate flickers all night",
    }
    fields.update(extra)
    return _form(client, "streetlight", **fields)


def _file(client: Any, data: dict[str, Any], files: Any = None) -> Any:
    return client.post("/participate/report", data=data, files=files, follow_redirects=False)


def _new_id(response: Any) -> int:
    assert response.status_code == 303, response.text[:2000]
    found = re.match(r"^/participate/requests/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def _count(pw: ParticipationWorld, model: Any = Request) -> int:
    pw.session.expire_all()
    return int(pw.session.scalar(select(func.count()).select_from(model)) or 0)


# --- getting there ----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in_to_file_but_see_the_start_page(client, pw):
    start = client.get("/participate")
    assert start.status_code == 200 and 'href="/participate/report/new"' in start.text
    assert "/participate/suggestions" in start.text
    new = client.get("/participate/report/new?category=streetlight", follow_redirects=False)
    assert new.status_code == 303
    assert new.headers["location"] == "/login?next=/participate/report/new%3Fcategory%3Dstreetlight"
    post = client.post("/participate/report", data={"category": "streetlight"}, follow_redirects=False)
    assert post.status_code == 303 and post.headers["location"].startswith("/login")


def test_the_category_picker_groups_categories_and_each_form_asks_its_questions(client, pw):
    login(client, "res1")
    picker = client.get("/participate/report/new?lang=en")
    assert picker.status_code == 200
    for text in ("市政设施", "市容环境", "供水", "Street light out", "Overflowing garbage", "Noise"):
        assert text in picker.text
    assert 'href="/participate/report/new?category=leak"' in picker.text

    lights = client.get(FORM.format(code="streetlight")).text
    assert 'type="text" name="attribute[pole_number]"' in lights and "required" in lights
    assert lights.count('type="radio" name="attribute[light_state]"') == 3
    assert "Do not touch fallen wires; call 95598." in lights  # a notice, not a question
    assert "attribute[safety_note]" not in lights
    garbage = client.get(FORM.format(code="garbage")).text
    assert garbage.count('type="checkbox" name="attribute[bin_type]"') == 3
    assert (
        'type="number" step="any" inputmode="decimal" name="attribute[flow]"'
        in client.get(FORM.format(code="leak")).text
    )
    noise = client.get(FORM.format(code="noise")).text
    assert 'type="datetime-local" name="attribute[noticed_at]"' in noise
    assert '<textarea name="attribute[details]"' in noise
    # where: a position, the resident's home preselected among the community's buildings, or text
    assert 'name="lat"' in lights and 'name="long"' in lights and 'name="address"' in lights
    assert re.search(r'<option value="C1-B1-U1"[^>]*selected', lights), "res1's home unit is preselected"
    assert '<option value="C1-B2"' in lights
    assert lights.count('type="file" name="photo"') == 3
    assert 'id="locate"' in lights and "navigator.geolocation" in lights
    assert 'enctype="multipart/form-data"' in lights


def test_an_unknown_category_is_not_found(client, pw):
    login(client, "res1")
    assert client.get(FORM.format(code="nope")).status_code == 404


# --- filing -----------------------------------------------------------------------------------------


def test_a_resident_files_a_report_with_photos_and_reads_its_status_page(client, pw):
    login(client, "res1")
    data = _streetlight(client)
    files = [
        ("photo", ("one.jpg", _jpeg(), "image/jpeg")),
        ("photo", ("two.jpg", _jpeg((0, 0, 200)), "image/jpeg")),
    ]
    files.append(("photo", ("", b"", "application/octet-stream")))  # an input left empty
    response = _file(client, data, files)
    request_id = _new_id(response)
    assert response.headers["location"].endswith("?filed=1")

    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None
    assert row.reporter_user_id == pw.users["res1"].id and row.channel == "web"
    assert row.answers == {"pole_number": "P-0042", "light_state": "flicker"}
    assert row.lat == pytest.approx(B1[0]) and row.area_id == pw.areas["B1"].id
    assert row.org_id == pw.orgs["city"].id and row.expected_at is not None
    stored = photos.list_photos(session=pw.session, request_id=request_id)
    assert len(stored) == 2
    for photo in stored:
        data_on_disk = photos.path_of(photo).read_bytes()
        assert b"SpyCam" not in data_on_disk and not Image.open(BytesIO(data_on_disk)).getexif()
    assert pw.session.scalar(
        select(func.count()).where(
            AuditEvent.action == "participation.request.submit", AuditEvent.object_id == str(request_id)
        )
    )

    page = client.get(response.headers["location"] + "&lang=en")
    assert page.status_code == 200
    assert "Street light out" in page.text and "P-0042" in page.text and "Flickering" in page.text
    assert "The lamp by the gate flickers all night" in page.text
    assert 'id="flash"' in page.text
    assert pw.areas["B1"].name("en") in page.text.split('id="where"')[1][:200]  # the building, not who
    for photo in stored:
        assert f'src="/participate/photos/{photo.id}"' in page.text
    assert 'id="expected"' in page.text and 'id="timeline"' in page.text and "report received" in page.text

    shot = client.get(f"/participate/photos/{stored[0].id}")
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
    assert shot.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in shot.headers["cache-control"] and shot.headers["etag"] == f'"{stored[0].sha256}"'
    assert b"SpyCam" not in shot.content
    again = client.get(f"/participate/photos/{stored[0].id}", headers={"If-None-Match": shot.headers["etag"]})
    assert again.status_code == 304 and not again.content
    client.cookies.clear()
    assert client.get(f"/participate/photos/{stored[0].id}").status_code == 200, "public for anyone"
    assert client.get(f"/participate/requests/{request_id}").status_code == 200


@pytest.mark.parametrize(
    ("code", "fields", "stored"),
    [
        (
            "garbage",
            {"attribute[bin_type]": ["kitchen", "other"]},
            {"bin_type": ["kitchen", "other"]},
        ),
        ("leak", {"attribute[flow]": "2.5"}, {"flow": 2.5}),
        (
            "noise",
            {"attribute[noticed_at]": "2026-11-01T22:30", "attribute[details]": "drilling\nat night"},
            {"noticed_at": "2026-11-01T22:30:00+08:00", "details": "drilling\nat night"},
        ),
    ],
)
def test_every_kind_of_question_is_answered_through_the_form(client, pw, code, fields, stored):
    login(client, "res1")
    data = _form(client, code, where="building", address_id="C1-B2", description="see answers", **fields)
    request_id = _new_id(_file(client, data))
    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None and row.answers == stored and row.area_id == pw.areas["B2"].id


def test_a_report_can_say_where_in_words(client, pw):
    login(client, "res3")
    data = _form(
        client, "leak", where="address", address="东门停车场入口", address_id="C1-B2", lat="1", long="2"
    )
    request_id = _new_id(_file(client, data))
    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None and row.address == "东门停车场入口"
    assert row.area_id is None and row.lat is None, "only the chosen way of saying where counts"


def test_errors_come_back_next_to_the_field_with_the_values_kept_and_nothing_written(client, pw):
    login(client, "res1")
    data = _streetlight(client, **{"attribute[pole_number]": "", "description": "keep what I typed"})
    response = _file(client, data)
    assert response.status_code == 422
    assert 'id="error-attribute-pole_number"' in response.text
    assert "keep what I typed" in response.text
    assert re.search(r'value="flicker" checked', response.text), "the chosen answer is kept"
    assert f'value="{B1[0]}"' in response.text
    assert _count(pw) == 0

    bad_lat = _file(client, _streetlight(client, lat="north"))
    assert bad_lat.status_code == 422 and 'id="error-lat"' in bad_lat.text and "north" in bad_lat.text
    out_of_range = _file(client, _streetlight(client, lat="91"))
    assert out_of_range.status_code == 422 and 'id="error-lat"' in out_of_range.text
    no_place = _file(client, _streetlight(client, where="address", address=""))
    assert no_place.status_code == 422 and 'id="error-address"' in no_place.text
    wrong_choice = _file(client, _streetlight(client, **{"attribute[light_state]": "exploded"}))
    assert wrong_choice.status_code == 422 and 'id="error-attribute-light_state"' in wrong_choice.text
    assert _count(pw) == 0 and _count(pw, Photo) == 0


def test_a_bad_photo_is_refused_naming_it_and_nothing_is_written(client, pw):
    login(client, "res1")
    html = b"<html><script>alert(1)</script></html>"
    response = _file(
        client,
        _streetlight(client),
        [("photo", ("a.jpg", _jpeg(), "image/jpeg")), ("photo", ("b.jpg", html, "image/jpeg"))],
    )
    assert response.status_code == 422
    assert 'id="error-photos"' in response.text and "photo2" in response.text
    assert 'id="photos-again"' in response.text
    limit = 10_000_000
    big = b"\xff\xd8\xff\xe0" + b"\x00" * limit
    too_big = _file(client, _streetlight(client), [("photo", ("big.jpg", big, "image/jpeg"))])
    assert too_big.status_code == 413 and "8,000,000" in too_big.text
    four = [("photo", (f"{i}.jpg", _jpeg(), "image/jpeg")) for i in range(4)]
    assert _file(client, _streetlight(client), four).status_code == 422
    assert _count(pw) == 0 and _count(pw, Photo) == 0


def test_a_form_without_its_security_token_is_refused(client, pw):
    login(client, "res1")
    data = _streetlight(client)
    data["csrf_token"] = "forged"
    assert _file(client, data).status_code == 403
    assert _count(pw) == 0


def test_script_in_a_description_is_shown_escaped(client, pw):
    login(client, "res1")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    request_id = _new_id(_file(client, _streetlight(client, description=evil)))
    client.cookies.clear()
    page = client.get(f"/participate/requests/{request_id}")
    assert "&lt;script&gt;alert(" in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<script>alert(" not in page.text and "<img src=x" not in page.text


# --- nearby and "me too" --------------------------------------------------------------------------------


def test_the_nearby_step_offers_me_too_and_it_works(client, pw):
    login(client, "res1")
    first = _new_id(_file(client, _streetlight(client)))

    login(client, "res2")
    near = _file(client, _streetlight(client, lat=str(B1[0] + 0.0001)))  # about 11 m away
    assert near.status_code == 200 and 'id="nearby-list"' in near.text
    assert f'action="/participate/requests/{first}/support"' in near.text
    assert 'id="file-anyway"' in near.text and 'name="confirm" value="1"' in near.text
    assert 'name="attribute[pole_number]" value="P-0042"' in near.text, "the answers go along"
    assert _count(pw) == 1

    token = csrf_of(client, f"/participate/requests/{first}")
    supported = client.post(
        f"/participate/requests/{first}/support", data={"csrf_token": token}, follow_redirects=False
    )
    assert supported.status_code == 303 and supported.headers["location"].endswith("?done=support")
    pw.session.expire_all()
    assert pw.session.get(Support, (first, pw.users["res2"].id)) is not None
    row = pw.session.get(Request, first)
    assert row is not None and row.supporters == 1
    page = client.get(f"/participate/requests/{first}?lang=en").text
    assert "1 resident has the same problem" in page and 'id="you-support"' in page
    assert 'id="add-info"' in page and 'id="me-too"' not in page
    # saying it again changes nothing
    client.post(f"/participate/requests/{first}/support", data={"csrf_token": token})
    pw.session.expire_all()
    assert pw.session.get(Request, first).supporters == 1  # type: ignore[union-attr]
    assert _count(pw) == 1


def test_the_nearby_step_also_checks_the_chosen_building_and_can_be_passed(client, pw):
    login(client, "res1")
    first = _new_id(_file(client, _streetlight(client)))
    login(client, "res2")
    data = _streetlight(client, where="building", address_id="C1-B1", lat="", long="")
    near = _file(client, data)
    assert near.status_code == 200 and f"/participate/requests/{first}/support" in near.text
    data["confirm"] = "1"
    second = _new_id(_file(client, data, [("photo", ("p.jpg", _jpeg(), "image/jpeg"))]))
    assert second != first and _count(pw) == 2
    assert len(photos.list_photos(session=pw.session, request_id=second)) == 1
    far = _file(client, _streetlight(client, where="building", address_id="C1-B2"))
    assert far.status_code == 303, "nothing open within 50 m of building 2"


def test_nearby_json_lists_open_reports_of_the_category_nearest_first(client, pw):
    login(client, "res1")
    first = _new_id(_file(client, _streetlight(client)))
    found = client.get(f"/participate/nearby.json?category=streetlight&lat={B1[0]}&long={B1[1]}").json()
    assert found["radius_m"] == 50
    assert [i["id"] for i in found["items"]] == [first] and found["items"][0]["mine"] is True
    assert found["items"][0]["url"] == f"/participate/requests/{first}"
    other = client.get(f"/participate/nearby.json?category=leak&lat={B1[0]}&long={B1[1]}").json()
    assert other["items"] == []
    bad = client.get(
        "/participate/nearby.json?category=streetlight&lat=abc&long=1", headers={"Accept": "application/json"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["detail"]["field"] == "lat"


# --- follow-up ----------------------------------------------------------------------------------------


def test_the_reporter_adds_information_that_goes_to_the_department_only(client, pw):
    login(client, "res1")
    request_id = _new_id(_file(client, _streetlight(client)))
    token = csrf_of(client, f"/participate/requests/{request_id}")
    added = client.post(
        f"/participate/requests/{request_id}/info",
        data={"csrf_token": token, "text": "The pole is leaning too"},
        files=[("photo", ("lean.jpg", _jpeg(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"].endswith("?done=info")
    pw.session.expire_all()
    staff_view = service.timeline(session=pw.session, actor=pw.actor("city-lead"), request_id=request_id)
    info = [u for u in staff_view if u.kind == "info"]
    assert [u.text for u in info] == ["The pole is leaning too"] and not info[0].public
    photo = photos.list_photos(session=pw.session, request_id=request_id, update_id=info[0].id)[0]
    pw.session.commit()  # the staff read was audited: release the write lock
    assert client.get(f"/participate/photos/{photo.id}").status_code == 200, "its author sees it"
    login(client, "city-lead")
    assert client.get(f"/participate/photos/{photo.id}").status_code == 200, "the department sees it"
    login(client, "res3")
    assert client.get(f"/participate/photos/{photo.id}").status_code == 404
    client.cookies.clear()
    assert client.get(f"/participate/photos/{photo.id}").status_code == 404
    assert "The pole is leaning too" not in client.get(f"/participate/requests/{request_id}").text

    login(client, "res3")  # neither reporter nor supporter
    page = client.get(f"/participate/requests/{request_id}").text
    assert 'id="add-info"' not in page and 'id="me-too"' in page
    refused = client.post(
        f"/participate/requests/{request_id}/info",
        data={"csrf_token": csrf_of(client, f"/participate/requests/{request_id}"), "text": "hi"},
    )
    assert refused.status_code == 403


def _resolve(pw: ParticipationWorld, request_id: int) -> None:
    service.act(session=pw.session, actor=pw.actor("city-lead"), request_id=request_id, action="resolve")
    pw.session.commit()


def test_the_reporter_reopens_with_a_reason_or_confirms_the_fix_within_the_window(client, pw):
    login(client, "res1")
    request_id = _new_id(_file(client, _streetlight(client)))
    url = f"/participate/requests/{request_id}"
    assert 'id="confirm"' not in client.get(url).text, "nothing to confirm before it is resolved"
    _resolve(pw, request_id)
    page = client.get(url).text
    assert 'id="confirm-fixed"' in page and 'id="confirm-reopen"' in page
    token = csrf_of(client, url)

    no_reason = client.post(f"{url}/confirm", data={"csrf_token": token, "fixed": "0", "reason": " "})
    assert no_reason.status_code == 422 and 'id="error-reason"' in no_reason.text
    reopened = client.post(
        f"{url}/confirm",
        data={"csrf_token": token, "fixed": "0", "reason": "Still dark tonight"},
        follow_redirects=False,
    )
    assert reopened.status_code == 303
    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None and row.state == "reopened" and row.confirmation == "reopened"
    assert "Still dark tonight" in client.get(url).text

    _resolve(pw, request_id)
    fixed = client.post(
        f"{url}/confirm",
        data={"csrf_token": token, "fixed": "1", "satisfaction": "4"},
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None and row.state == "closed" and row.satisfaction == 4
    assert 'id="confirm"' not in client.get(url).text

    login(client, "res2")  # only the reporter answers
    other = client.post(f"{url}/confirm", data={"csrf_token": csrf_of(client, url), "fixed": "1"})
    assert other.status_code == 403


def test_after_the_window_the_reporter_can_no_longer_reopen(client, pw):
    login(client, "res1")
    request_id = _new_id(_file(client, _streetlight(client)))
    url = f"/participate/requests/{request_id}"
    _resolve(pw, request_id)
    clock.set_clock(lambda: MONDAY + timedelta(days=13, hours=23))
    login(client, "res1")  # a web login lasts hours, not days
    assert 'id="confirm-reopen"' in client.get(url).text
    clock.set_clock(lambda: MONDAY + timedelta(days=14, minutes=1))
    login(client, "res1")
    page = client.get(url).text
    assert 'id="confirm"' not in page
    token = csrf_of(client, url)
    late = client.post(f"{url}/confirm", data={"csrf_token": token, "fixed": "0", "reason": "broken again"})
    assert late.status_code == 409 and "14" in late.text
    pw.session.expire_all()
    assert pw.session.get(Request, request_id).state == "resolved"  # type: ignore[union-attr]


def test_my_reports_and_the_start_page_list_own_supported_and_nearby_reports(client, pw):
    login(client, "res1")
    own = _new_id(_file(client, _streetlight(client)))
    login(client, "res3")
    other = _new_id(_file(client, _form(client, "leak", where="building", address_id="C1-B1")))
    login(client, "res1")
    client.post(
        f"/participate/requests/{other}/support",
        data={"csrf_token": csrf_of(client, f"/participate/requests/{other}")},
    )
    mine = client.get("/participate/mine").text
    own_part, supported_part = mine.split('id="supported"', 1)
    assert f"/participate/requests/{own}" in own_part and f"/participate/requests/{other}" not in own_part
    assert f"/participate/requests/{other}" in supported_part
    start = client.get("/participate").text
    assert f"/participate/requests/{own}" in start.split('id="near-home"')[0]
    assert f"/participate/requests/{other}" in start.split('id="near-home"')[1]


# --- the call-centre entry --------------------------------------------------------------------------


def test_the_call_centre_files_for_a_caller_recording_the_channel_and_keeping_the_caller_private(client, pw):
    login(client, "op-dispatcher")
    picker = client.get("/participate/call-centre")
    assert picker.status_code == 200 and 'href="/participate/call-centre?category=leak"' in picker.text
    form = client.get("/participate/call-centre?category=leak")
    assert 'name="caller_name"' in form.text and 'name="channel"' in form.text
    assert 'action="/participate/call-centre"' in form.text
    token = csrf_of(client, "/participate/call-centre?category=leak")
    data = {
        "csrf_token": token,
        "category": "leak",
        "caller_name": "王先生",
        "caller_phone": "13800138000",
        "channel": "phone",
        "where": "address",
        "address": "2号楼东侧",
        "description": "Water running down the wall",
        "attribute[flow]": "3",
    }
    bad = client.post("/participate/call-centre", data={**data, "channel": "carrier-pigeon"})
    assert bad.status_code == 422 and 'id="error-channel"' in bad.text and "王先生" in bad.text
    response = client.post("/participate/call-centre", data=data, follow_redirects=False)
    request_id = _new_id(response)
    pw.session.expire_all()
    row = pw.session.get(Request, request_id)
    assert row is not None and row.channel == "phone"
    assert row.reporter_name == "王先生" and row.reporter_phone == "13800138000"
    assert row.filed_by_user_id == pw.users["op-dispatcher"].id and row.reporter_user_id is None
    client.cookies.clear()
    public = client.get(f"/participate/requests/{request_id}").text
    assert "Water running down the wall" in public
    assert "王先生" not in public and "13800138000" not in public


def test_residents_cannot_use_the_call_centre_entry(client, pw):
    login(client, "res1")
    assert client.get("/participate/call-centre").status_code == 403
    data = {"csrf_token": csrf_of(client, "/participate"), "category": "leak", "channel": "phone"}
    assert client.post("/participate/call-centre", data=data).status_code == 403
    login(client, "city-worker")  # an analyst, not a dispatcher
    assert client.get("/participate/call-centre").status_code == 403
    assert _count(pw) == 0


def test_a_photo_of_an_unknown_report_or_a_missing_photo_is_not_found(client, pw):
    assert client.get("/participate/photos/12345").status_code == 404
    assert client.get("/participate/requests/12345").status_code == 404
