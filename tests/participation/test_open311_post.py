"""Open311 conformance: POST requests (form-encoded and multipart), every attribute datatype and
required-attribute error, locations, api_keys, the batch token flow, and error shapes."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from participation.pworld import API_KEY, B1, ParticipationWorld
from zhishe.core import clock
from zhishe.participation import apikeys
from zhishe.participation.models import Photo, Request

STREETLIGHT = {
    "service_code": "streetlight",
    "lat": str(B1[0]),
    "long": str(B1[1]),
    "description": "路灯不亮 in front of building 1",
    "attribute[pole_number]": "P-17",
    "attribute[light_state]": "out",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    apikeys.reset_limits()
    yield
    apikeys.reset_limits()


def _post(
    client: Any, params: dict[str, Any], fmt: str = "json", key: str | None = API_KEY, **kw: Any
) -> Any:
    data = {**({"api_key": key} if key is not None else {}), **params}
    return client.post(f"/open311/v2/requests.{fmt}", data=data, **kw)


def _error(answer: Any, code: int, fmt: str = "json") -> str:
    assert answer.status_code == code, answer.text
    if fmt == "xml":
        assert answer.headers["content-type"] == "text/xml; charset=utf-8"
        root = ET.fromstring(answer.content)
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        assert root.findtext("error/code") == str(code)
        return root.findtext("error/description") or ""
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    (error,) = answer.json()
    assert error["code"] == code and set(error) == {"code", "description"}
    return str(error["description"])


def _count(pw: ParticipationWorld) -> int:
    pw.session.expire_all()
    return int(pw.session.scalar(select(func.count()).select_from(Request)) or 0)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_form_encoded_post_files_the_request_and_answers_201(client: Any, pw: ParticipationWorld) -> None:
    answer = _post(
        client,
        {
            **STREETLIGHT,
            "email": "li@example.cn",
            "first_name": "Li",
            "last_name": "Lei",
            "phone": "13800000000",
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    (created,) = answer.json()
    assert list(created) == ["service_request_id", "service_notice", "account_id"]
    assert created["account_id"] is None
    assert created["service_notice"] == "3 working days"
    row = pw.session.get(Request, int(created["service_request_id"]))
    assert row is not None
    assert row.channel == "open311"
    assert row.api_key_id == pw.api_key.id  # type: ignore[union-attr]
    assert row.answers == {"pole_number": "P-17", "light_state": "out"}
    assert (row.reporter_name, row.reporter_email, row.reporter_phone) == (
        "Li Lei",
        "li@example.cn",
        "13800000000",
    )
    assert row.org_id == pw.orgs["city"].id and row.team_id == pw.teams["lights"].id

    shown = client.get(f"/open311/v2/requests/{created['service_request_id']}.json").json()
    assert shown[0]["service_request_id"] == created["service_request_id"]
    text = client.get(f"/open311/v2/requests/{created['service_request_id']}.xml").text
    for private in ("Li Lei", "li@example.cn", "13800000000"):
        assert private not in str(shown) and private not in text


def test_post_answers_in_xml(client: Any, pw: ParticipationWorld) -> None:
    answer = _post(client, STREETLIGHT, fmt="xml")
    assert answer.status_code == 201
    root = ET.fromstring(answer.content)
    assert root.tag == "service_requests"
    (item,) = root.findall("request")
    assert [c.tag for c in item] == ["service_request_id", "service_notice", "account_id"]
    assert int(item.findtext("service_request_id") or "0") > 0
    account = item.find("account_id")
    assert account is not None and account.text is None


def test_multivaluelist_as_bracket_list_and_as_repeated_key(client: Any, pw: ParticipationWorld) -> None:
    base = {"service_code": "garbage", "address_string": "幸福社区 3号楼旁"}
    first = _post(client, {**base, "attribute[bin_type][]": ["kitchen", "other"]})
    second = _post(client, {**base, "attribute[bin_type]": ["recyclable", "kitchen"]})
    single = _post(client, {**base, "attribute[bin_type][]": "other"})
    answers = []
    for answer in (first, second, single):
        assert answer.status_code == 201, answer.text
        row = pw.session.get(Request, int(answer.json()[0]["service_request_id"]))
        assert row is not None
        answers.append(row.answers["bin_type"])
    assert answers == [["kitchen", "other"], ["recyclable", "kitchen"], ["other"]]


def test_every_datatype_is_accepted_and_stored(client: Any, pw: ParticipationWorld) -> None:
    leak = _post(client, {"service_code": "leak", "address_id": "C1-B2", "attribute[flow]": "12.5"})
    assert leak.status_code == 201, leak.text
    row = pw.session.get(Request, int(leak.json()[0]["service_request_id"]))
    assert row is not None and row.answers == {"flow": 12.5}
    assert (row.lat, row.lon) == (pytest.approx(39.9042), pytest.approx(116.4109))  # from the address list
    noise = _post(
        client,
        {
            "service_code": "noise",
            "lat": "39.9042",
            "long": "116.4074",
            "attribute[noticed_at]": "2026-11-02T22:30:00+08:00",
            "attribute[details]": "装修噪音\n每晚十点后",
        },
    )
    assert noise.status_code == 201, noise.text


@pytest.mark.parametrize(
    ("code", "params", "missing"),
    [
        ("streetlight", {"attribute[light_state]": "out"}, "pole_number"),
        ("streetlight", {"attribute[pole_number]": "P-1"}, "light_state"),
        ("garbage", {}, "bin_type"),
        ("garbage", {"attribute[bin_type][]": [""]}, "bin_type"),
        ("noise", {"attribute[details]": "loud"}, "noticed_at"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_each_required_attribute_missing_is_a_400_naming_it(
    client: Any, pw: ParticipationWorld, code: str, params: dict[str, Any], missing: str, fmt: str
) -> None:
    answer = _post(client, {"service_code": code, "lat": "39.9", "long": "116.4", **params}, fmt=fmt)
    assert f"attribute[{missing}]" in _error(answer, 400, fmt)
    assert _count(pw) == 0


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({**STREETLIGHT, "attribute[light_state]": "broken"}, "attribute[light_state]"),
        ({"service_code": "garbage", "lat": "39.9", "long": "116.4", "attribute[bin_type][]": ["kitchen", "glass"]},
         "attribute[bin_type]"),
        ({"service_code": "leak", "lat": "39.9", "long": "116.4", "attribute[flow]": "lots"}, "attribute[flow]"),
        ({"service_code": "noise", "lat": "39.9", "long": "116.4", "attribute[noticed_at]": "last night"},
         "attribute[noticed_at]"),
        ({**STREETLIGHT, "attribute[colour]": "red"}, "attribute[colour]"),
        ({**STREETLIGHT, "attribute[safety_note]": "x"}, "attribute[safety_note]"),
    ],
)  # fmt: skip
def test_values_outside_their_datatype_or_list_are_a_400_naming_the_attribute(
    client: Any, pw: ParticipationWorld, params: dict[str, Any], named: str
) -> None:
    assert named in _error(_post(client, params), 400)
    assert _count(pw) == 0


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({k: v for k, v in STREETLIGHT.items() if k != "service_code"}, "service_code"),
        ({**STREETLIGHT, "service_code": "potholes"}, "service_code"),
        ({**STREETLIGHT, "lat": "91"}, "lat"),
        ({**STREETLIGHT, "lat": "-90.5"}, "lat"),
        ({**STREETLIGHT, "long": "181"}, "long"),
        ({**STREETLIGHT, "lat": "north"}, "lat"),
        ({**STREETLIGHT, "long": "nan"}, "long"),
        ({**STREETLIGHT, "long": ""}, "long"),
        ({k: v for k, v in STREETLIGHT.items() if k not in ("lat", "long")}, "lat"),
        ({**STREETLIGHT, "address_id": "Z-99"}, "address_id"),
        ({**STREETLIGHT, "email": "not-an-email"}, "email"),
        ({**STREETLIGHT, "media_url": "javascript:alert(1)"}, "media_url"),
        ({**STREETLIGHT, "description": "x" * 4001}, "description"),
        ({**STREETLIGHT, "description": "a\x00b"}, "description"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter_and_write_nothing(
    client: Any, pw: ParticipationWorld, params: dict[str, Any], named: str
) -> None:
    description = _error(_post(client, params), 400)
    assert description.startswith(named), description
    assert _count(pw) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_missing_unknown_or_revoked_api_key_is_a_403(client: Any, pw: ParticipationWorld, fmt: str) -> None:
    assert "api_key" in _error(_post(client, STREETLIGHT, fmt=fmt, key=None), 403, fmt)
    assert "api_key" in _error(_post(client, STREETLIGHT, fmt=fmt, key="zhishe_311_wrong"), 403, fmt)
    assert "api_key" in _error(_post(client, STREETLIGHT, fmt=fmt, key="x" * 5000), 403, fmt)
    assert pw.api_key is not None
    pw.api_key.revoked_at = clock.now()
    pw.session.commit()
    assert "api_key" in _error(_post(client, STREETLIGHT, fmt=fmt), 403, fmt)
    assert _count(pw) == 0


def test_location_by_address_string_or_address_id_alone(client: Any, pw: ParticipationWorld) -> None:
    base = {k: v for k, v in STREETLIGHT.items() if k not in ("lat", "long")}
    by_address = _post(client, {**base, "address_string": "幸福社区1号楼东侧"})
    by_id = _post(client, {**base, "address_id": "C1-B1"})
    assert by_address.status_code == 201 and by_id.status_code == 201
    shown = client.get(
        "/open311/v2/requests.json",
        params={
            "service_request_id": f"{by_address.json()[0]['service_request_id']},{by_id.json()[0]['service_request_id']}"
        },
    ).json()
    by_number = {r["service_request_id"]: r for r in shown}
    address = by_number[by_address.json()[0]["service_request_id"]]
    assert address["address"] == "幸福社区1号楼东侧" and address["lat"] is None and address["long"] is None
    building = by_number[by_id.json()[0]["service_request_id"]]
    assert building["address_id"] == "C1-B1"
    assert (building["lat"], building["long"]) == (pytest.approx(B1[0]), pytest.approx(B1[1]))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_batch_service_answers_a_token_that_leads_to_the_id(
    client: Any, pw: ParticipationWorld, fmt: str
) -> None:
    answer = _post(
        client,
        {
            "service_code": "noise",
            "address_string": "2号楼",
            "attribute[noticed_at]": "2026-11-02T22:00:00+08:00",
        },
        fmt=fmt,
    )
    assert answer.status_code == 201
    if fmt == "json":
        (created,) = answer.json()
        assert list(created) == ["token", "service_notice", "account_id"]
        token = created["token"]
        (found,) = client.get(f"/open311/v2/tokens/{token}.json").json()
        assert list(found) == ["service_request_id", "token"]
        request_id = found["service_request_id"]
    else:
        item = ET.fromstring(answer.content).find("request")
        assert item is not None and [c.tag for c in item] == ["token", "service_notice", "account_id"]
        token = item.findtext("token") or ""
        root = ET.fromstring(client.get(f"/open311/v2/tokens/{token}.xml").content)
        assert root.tag == "service_requests"
        assert root.findtext("request/token") == token
        request_id = root.findtext("request/service_request_id") or ""
    row = pw.session.get(Request, int(request_id))
    assert row is not None and row.token == token
    assert "token" in _error(client.get(f"/open311/v2/tokens/no-such-token.{fmt}"), 404, fmt)


def test_multipart_post_with_a_media_file_stores_a_cleaned_photo(client: Any, pw: ParticipationWorld) -> None:
    answer = client.post(
        "/open311/v2/requests.json",
        data={"api_key": API_KEY, **STREETLIGHT},
        files={"media": ("light.jpg", _jpeg(), "image/jpeg")},
    )
    assert answer.status_code == 201, answer.text
    request_id = int(answer.json()[0]["service_request_id"])
    photo = pw.session.scalar(select(Photo).where(Photo.request_id == request_id))
    assert photo is not None and photo.content_type == "image/jpeg"
    (shown,) = client.get(f"/open311/v2/requests/{request_id}.json").json()
    assert shown["media_url"] == f"http://testserver/participate/photos/{photo.id}"


def test_media_that_is_not_an_image_is_a_400_naming_media(client: Any, pw: ParticipationWorld) -> None:
    answer = client.post(
        "/open311/v2/requests.json",
        data={"api_key": API_KEY, **STREETLIGHT},
        files={"media": ("light.jpg", b"<html>not a photo</html>", "image/jpeg")},
    )
    assert _error(answer, 400).startswith("media")
    other = client.post(
        "/open311/v2/requests.json",
        data={"api_key": API_KEY, **STREETLIGHT},
        files={"photo": ("light.jpg", _jpeg(), "image/jpeg")},
    )
    assert _error(other, 400).startswith("photo")
    assert _count(pw) == 0


def test_media_url_is_kept_and_shown(client: Any, pw: ParticipationWorld) -> None:
    answer = _post(client, {**STREETLIGHT, "media_url": "https://img.example.cn/p/1.jpg"})
    (shown,) = client.get(f"/open311/v2/requests/{answer.json()[0]['service_request_id']}.json").json()
    assert shown["media_url"] == "https://img.example.cn/p/1.jpg"


def test_a_body_that_is_not_a_form_is_a_415(client: Any, pw: ParticipationWorld) -> None:
    answer = client.post("/open311/v2/requests.json", json={"api_key": API_KEY, **STREETLIGHT})
    assert "Content-Type" in _error(answer, 415)
    assert _count(pw) == 0


def test_parameters_in_the_query_string_are_read_and_the_body_wins(
    client: Any, pw: ParticipationWorld
) -> None:
    answer = client.post(
        "/open311/v2/requests.json",
        params={"api_key": API_KEY, "service_code": "potholes", "jurisdiction_id": "city"},
        data=STREETLIGHT,
    )
    assert answer.status_code == 201, answer.text


def test_script_in_a_description_comes_back_as_data(client: Any, pw: ParticipationWorld) -> None:
    evil = '<script>alert("x")</script> & ]]> \x01 </description><status>closed</status>'
    answer = _post(client, {**STREETLIGHT, "description": evil})
    assert answer.status_code == 201, answer.text
    request_id = answer.json()[0]["service_request_id"]
    (shown,) = client.get(f"/open311/v2/requests/{request_id}.json").json()
    assert shown["description"].startswith('<script>alert("x")</script> & ]]>')
    raw = client.get(f"/open311/v2/requests/{request_id}.xml").content
    assert b"<script>" not in raw and b"&lt;script&gt;" in raw
    root = ET.fromstring(raw)  # well-formed despite the control character
    assert root.findtext("request/status") == "open"
    assert (root.findtext("request/description") or "").startswith('<script>alert("x")</script> & ]]>')
    assert len(root.findall("request/status")) == 1
