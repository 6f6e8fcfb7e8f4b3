"""Open311 never answers 500: any query string, path segment or form body gets an answer in the
Open311 error shape (or a success), and a refused post writes nothing."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from participation.pworld import API_KEY, ParticipationWorld
from zhishe.participation import apikeys
from zhishe.participation.models import Request

_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_NAMES = st.sampled_from(
    [
        "service_request_id",
        "service_code",
        "start_date",
        "end_date",
        "status",
        "page",
        "page_size",
        "jurisdiction_id",
        "lang",
        "lat",
        "long",
        "address_id",
        "address_string",
        "email",
        "description",
        "media_url",
        "attribute[pole_number]",
        "attribute[light_state]",
        "attribute[bin_type][]",
        "attribute[flow]",
        "attribute[noticed_at]",
        "attribute[",
        "x",
    ]
)
_PARAMS = st.lists(st.tuples(_NAMES, _TEXT), max_size=6)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    apikeys.reset_limits()
    yield
    apikeys.reset_limits()


def _shape(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        if answer.headers["content-type"].startswith("text/xml"):
            root = ET.fromstring(answer.content)
            assert root.tag == "errors"
            assert root.findtext("error/code") == str(answer.status_code)
        else:
            (error,) = answer.json()
            assert error["code"] == answer.status_code and error["description"]


@_FUZZ
@given(params=_PARAMS, fmt=st.sampled_from(["json", "xml"]))
def test_any_query_of_the_lists_is_answered_without_a_500(
    client: Any, pw: ParticipationWorld, params: list[tuple[str, str]], fmt: str
) -> None:
    for path in ("requests", "servicerequestupdates", "services"):
        _shape(client.get(f"/open311/v2/{path}.{fmt}", params=params))


@_FUZZ
@given(segment=_TEXT.filter(lambda s: s not in ("", ".", "..")), fmt=st.sampled_from(["json", "xml", "csv"]))
def test_any_path_segment_is_answered_without_a_500(
    client: Any, pw: ParticipationWorld, segment: str, fmt: str
) -> None:
    name = quote(segment, safe="")
    for path in (f"requests/{name}", f"tokens/{name}", f"services/{name}"):
        answer = client.get(f"/open311/v2/{path}.{fmt}")
        _shape(answer)
        assert answer.status_code in (200, 404)


@pytest.mark.parametrize("segment", ["/\n", "a/\nb", "\n/", "/\r\n/"])
def test_a_path_with_line_breaks_gets_an_open311_answer(client: Any, segment: str) -> None:
    """A line break after a slash once slipped past the catch-all (whose ``.*`` stops at it)."""
    for path in (f"requests/{quote(segment, safe='')}.json", f"x{quote(segment, safe='')}"):
        answer = client.get(f"/open311/v2/{path}")
        assert answer.status_code == 404
        _shape(answer)


@_FUZZ
@given(params=_PARAMS, fmt=st.sampled_from(["json", "xml"]))
def test_any_form_is_answered_without_a_500(
    client: Any, pw: ParticipationWorld, params: list[tuple[str, str]], fmt: str
) -> None:
    before = pw.session.scalar(select(func.count()).select_from(Request))
    body = urlencode([("api_key", API_KEY), ("service_code", "streetlight"), *params])
    answer = client.post(
        f"/open311/v2/requests.{fmt}",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _shape(answer)
    pw.session.expire_all()
    after = pw.session.scalar(select(func.count()).select_from(Request))
    assert after == before + (1 if answer.status_code == 201 else 0)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"\xff\xfe\x00garbage=%%%&&==", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"--x\r\nno headers\r\n", {"Content-Type": "multipart/form-data; boundary=x"}),
        (b"whatever", {"Content-Type": "multipart/form-data"}),
        (b"<request/>", {"Content-Type": "text/xml"}),
        (b"api_key=" + API_KEY.encode() + b"&service_code=streetlight&lat=%ZZ", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
)  # fmt: skip
def test_broken_bodies_are_clean_errors(
    client: Any, pw: ParticipationWorld, content: bytes, headers: dict[str, str]
) -> None:
    answer = client.post("/open311/v2/requests.json", content=content, headers=headers)
    _shape(answer)
    assert 400 <= answer.status_code < 500
    assert pw.session.scalar(select(func.count()).select_from(Request)) == 0


def test_too_many_or_too_large_media(client: Any, pw: ParticipationWorld) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 90, 200)).save(buffer, "PNG")
    photo = buffer.getvalue()
    form = {
        "api_key": API_KEY,
        "service_code": "leak",
        "address_string": "4号楼",
    }
    many = client.post(
        "/open311/v2/requests.json", data=form, files=[("media", ("p.png", photo, "image/png"))] * 4
    )
    _shape(many)
    assert many.status_code == 400 and many.json()[0]["description"].startswith("media")
    huge = client.post(
        "/open311/v2/requests.xml",
        data=form,
        files={"media": ("p.png", b"\x89PNG" + b"0" * 8_000_000, "image/png")},
    )
    _shape(huge)
    assert huge.status_code == 413
    assert "media" in (ET.fromstring(huge.content).findtext("error/description") or "")
    assert pw.session.scalar(select(func.count()).select_from(Request)) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "9999-12-31T23:00:00+08:00"},
        {"end_date": "0001-01-01T00:00:00"},
        {"start_date": "0001-01-02T00:00:00+14:00", "end_date": "0001-03-01T00:00:00-12:00"},
        {"start_date": "2026-11-02T10:00:00 08:00", "end_date": "2026-11-02T10:00:00Z"},
    ],
)
def test_dates_at_the_edges_of_the_calendar(
    client: Any, pw: ParticipationWorld, params: dict[str, str]
) -> None:
    for path in ("requests", "servicerequestupdates"):
        answer = client.get(f"/open311/v2/{path}.json", params=params)
        _shape(answer)
        assert answer.status_code in (200, 400)
