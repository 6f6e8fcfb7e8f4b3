"""Open311 conformance: the service list, service definitions (every attribute datatype), discovery,
formats, and the error shape of unknown services, endpoints, formats and methods."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from participation.pworld import ParticipationWorld
from zhishe.core import clock
from zhishe.participation.models import Category

SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
ATTRIBUTE_FIELDS = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
]


def _xml(response: Any) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def _json(response: Any) -> Any:
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def _errors_json(response: Any, code: int) -> str:
    assert response.status_code == code
    body = _json(response)
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"code", "description"}
    assert body[0]["code"] == code
    return str(body[0]["description"])


def _errors_xml(response: Any, code: int) -> str:
    assert response.status_code == code
    root = _xml(response)
    assert root.tag == "errors"
    errors = root.findall("error")
    assert len(errors) == 1
    assert [child.tag for child in errors[0]] == ["code", "description"]
    assert errors[0].findtext("code") == str(code)
    return errors[0].findtext("description") or ""


def test_service_list_json_has_every_field_of_every_active_service(
    client: Any, pw: ParticipationWorld
) -> None:
    answer = client.get("/open311/v2/services.json")
    assert answer.status_code == 200
    services = {s["service_code"]: s for s in _json(answer)}
    assert set(services) == {"streetlight", "garbage", "leak", "noise"}
    for record in services.values():
        assert list(record) == SERVICE_FIELDS
    lights = services["streetlight"]
    assert lights == {
        "service_code": "streetlight",
        "service_name": "路灯故障",
        "description": "路灯不亮、闪烁或白天常亮",
        "metadata": True,
        "type": "realtime",
        "keywords": "lighting,路灯",
        "group": "市政设施",
    }
    assert services["noise"]["type"] == "batch"
    assert services["leak"]["description"] is None  # empty is null, as in the spec's examples


def test_service_list_xml_matches_the_json(client: Any, pw: ParticipationWorld) -> None:
    root = _xml(client.get("/open311/v2/services.xml"))
    assert root.tag == "services"
    items = root.findall("service")
    assert len(items) == 4
    for item in items:
        assert [child.tag for child in item] == SERVICE_FIELDS
    lights = next(i for i in items if i.findtext("service_code") == "streetlight")
    assert lights.findtext("service_name") == "路灯故障"
    assert lights.findtext("metadata") == "true"
    assert lights.findtext("type") == "realtime"
    assert lights.findtext("group") == "市政设施"
    leak = next(i for i in items if i.findtext("service_code") == "leak")
    description = leak.find("description")
    assert description is not None and description.text is None and len(description) == 0


def test_service_list_leaves_out_inactive_services_and_says_which_have_no_attributes(
    client: Any, pw: ParticipationWorld
) -> None:
    pw.session.add_all(
        [
            Category(code="graffiti", name_zh="涂鸦", name_en="Graffiti", created_at=clock.now()),
            Category(code="old", name_zh="旧", name_en="Old", active=False, created_at=clock.now()),
        ]
    )
    pw.session.commit()
    services = {s["service_code"]: s for s in client.get("/open311/v2/services.json").json()}
    assert "old" not in services
    assert services["graffiti"]["metadata"] is False
    assert services["streetlight"]["metadata"] is True
    assert client.get("/open311/v2/services/old.json").status_code == 404


def test_service_names_in_english_on_request(client: Any, pw: ParticipationWorld) -> None:
    by_query = {s["service_code"]: s for s in client.get("/open311/v2/services.json?lang=en").json()}
    assert by_query["streetlight"]["service_name"] == "Street light out"
    assert by_query["streetlight"]["description"].startswith("A street light")
    client.cookies.clear()
    by_header = client.get("/open311/v2/services.json", headers={"Accept-Language": "en-GB,en;q=0.8"}).json()
    assert {s["service_name"] for s in by_header} >= {"Street light out", "Noise"}


def test_jurisdiction_id_is_accepted_and_ignored(client: Any, pw: ParticipationWorld) -> None:
    plain = client.get("/open311/v2/services.json").json()
    assert client.get("/open311/v2/services.json?jurisdiction_id=city.example").json() == plain


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_definition_of_every_datatype(client: Any, pw: ParticipationWorld, fmt: str) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for code in ("streetlight", "garbage", "leak", "noise"):
        answer = client.get(f"/open311/v2/services/{code}.{fmt}")
        assert answer.status_code == 200
        if fmt == "json":
            body = _json(answer)
            assert list(body) == ["service_code", "attributes"]
            assert body["service_code"] == code
            attributes = body["attributes"]
        else:
            root = _xml(answer)
            assert root.tag == "service_definition"
            assert [c.tag for c in root] == ["service_code", "attributes"]
            assert root.findtext("service_code") == code
            attributes = [_attribute_of_xml(a) for a in root.findall("attributes/attribute")]
        orders = [a["order"] for a in attributes]
        assert orders == sorted(orders)
        for attribute in attributes:
            assert list(attribute) == ATTRIBUTE_FIELDS
            seen[attribute["code"]] = attribute
    assert {a["datatype"] for a in seen.values()} == {
        "string",
        "number",
        "datetime",
        "text",
        "singlevaluelist",
        "multivaluelist",
    }
    assert seen["pole_number"] == {
        "variable": True,
        "code": "pole_number",
        "datatype": "string",
        "required": True,
        "datatype_description": None,
        "order": 1,
        "description": "Pole number",
        "values": [],
    }
    assert seen["light_state"]["datatype"] == "singlevaluelist"
    assert seen["light_state"]["values"] == [
        {"key": "out", "name": "Not lit"},
        {"key": "flicker", "name": "Flickering"},
        {"key": "day", "name": "On by day"},
    ]
    assert seen["bin_type"]["datatype"] == "multivaluelist"
    assert [v["key"] for v in seen["bin_type"]["values"]] == ["kitchen", "recyclable", "other"]
    assert seen["safety_note"]["variable"] is False
    assert seen["flow"]["required"] is False and seen["flow"]["datatype"] == "number"
    assert seen["noticed_at"]["datatype"] == "datetime" and seen["noticed_at"]["required"] is True
    assert seen["details"]["datatype"] == "text"


def _attribute_of_xml(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        if child.tag == "values":
            assert all(v.tag == "value" and [c.tag for c in v] == ["key", "name"] for v in child)
            out["values"] = [{"key": v.findtext("key"), "name": v.findtext("name")} for v in child]
        elif child.tag in ("variable", "required"):
            assert child.text in ("true", "false")
            out[child.tag] = child.text == "true"
        elif child.tag == "order":
            out["order"] = int(child.text or "0")
        else:
            out[child.tag] = child.text
    return out


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_service_is_a_404_in_the_error_shape(client: Any, pw: ParticipationWorld, fmt: str) -> None:
    answer = client.get(f"/open311/v2/services/potholes.{fmt}")
    read = _errors_json if fmt == "json" else _errors_xml
    assert "potholes" in read(answer, 404)


def test_unknown_format_is_a_404_in_the_error_shape(client: Any, pw: ParticipationWorld) -> None:
    for path in ("/open311/v2/services.csv", "/open311/v2/requests.html", "/open311/v2/services/leak.yaml"):
        assert "格式" in _errors_json(client.get(path), 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_endpoint_and_wrong_method(client: Any, pw: ParticipationWorld, fmt: str) -> None:
    read = _errors_json if fmt == "json" else _errors_xml
    assert "/open311/v2/potholes" in read(client.get(f"/open311/v2/potholes.{fmt}"), 404)
    wrong = client.post(f"/open311/v2/services.{fmt}", data={"x": "1"})
    assert "POST" in read(wrong, 405)
    assert wrong.headers["allow"] == "GET"
    wrong = client.delete(f"/open311/v2/requests.{fmt}")
    read(wrong, 405)
    assert wrong.headers["allow"] == "GET, POST"


def test_discovery_document(client: Any, pw: ParticipationWorld) -> None:
    body = _json(client.get("/open311/v2/discovery.json"))
    assert list(body) == ["changeset", "contact", "key_service", "endpoints"]
    (endpoint,) = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "production"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert "api-keys" in body["key_service"]
    root = _xml(client.get("/open311/discovery.xml"))
    assert root.tag == "discovery"
    assert root.findtext("endpoints/endpoint/specification") == "http://wiki.open311.org/GeoReport_v2"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]
