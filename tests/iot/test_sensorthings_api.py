"""The SensorThings API v1.1 through HTTP: the read API with its query options, navigation, $ref
and $value, who sees what, and creating Observations (one, and the data-array extension)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from urllib.parse import unquote

import orjson

from iot.iot_world import DAY, IotWorld
from zhishe.core import clock

ST = "/sensorthings/v1.1"


def _readings(client: Any, iw: IotWorld, device: str, key: str, values: list[float]) -> int:
    stream = iw.stream(device, key)
    body = [
        {"datastream": stream.id, "time": (DAY + timedelta(minutes=i)).isoformat(), "value": v}
        for i, v in enumerate(values)
    ]
    headers = {"Authorization": f"Bearer {iw.tokens[device]}"}
    assert client.post("/api/v1/iot/readings", content=orjson.dumps(body), headers=headers).json()[
        "stored"
    ] == len(values)
    return stream.id


def test_the_service_root_lists_the_entity_sets_and_conformance(client: Any, iw: IotWorld) -> None:
    root = client.get(f"{ST}/", headers=iw.resident_headers[0]).json()
    assert {v["name"] for v in root["value"]} >= {
        "Things",
        "Datastreams",
        "Observations",
        "FeaturesOfInterest",
    }
    assert any("request-data" in c for c in root["serverSettings"]["conformance"])
    assert client.get(f"{ST}/Things").status_code == 401


def test_a_resident_reads_their_things_datastreams_and_observations(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(hours=1)):
        stream = _readings(client, iw, "H1-electricity", "power", [0.5, 1.5, 2.5, 3.5])
        _readings(client, iw, "H2-electricity", "power", [9.0])
        headers = iw.resident_headers[0]
        things = client.get(f"{ST}/Things", headers=headers).json()
        assert {t["properties"]["code"] for t in things["value"]} == {
            "H1-electricity",
            "H1-water",
            "H1-motion",
        }
        thing = things["value"][0]
        assert thing["@iot.selfLink"].endswith(f"Things({thing['@iot.id']})")
        assert thing["Datastreams@iot.navigationLink"].endswith(f"Things({thing['@iot.id']})/Datastreams")
        ds = client.get(f"{ST}/Datastreams({stream})", headers=headers).json()
        assert ds["unitOfMeasurement"] == {
            "name": "kilowatt",
            "symbol": "kW",
            "definition": "http://qudt.org/vocab/unit/KiloW",
        }
        page = client.get(
            f"{ST}/Datastreams({stream})/Observations",
            params={
                "$filter": "result gt 1",
                "$orderby": "phenomenonTime asc",
                "$top": "2",
                "$count": "true",
            },
            headers=headers,
        ).json()
        assert page["@iot.count"] == 3
        assert [o["result"] for o in page["value"]] == [1.5, 2.5]
        assert page["value"][0]["phenomenonTime"] == (DAY + timedelta(minutes=1)).astimezone(
            UTC
        ).isoformat().replace("+00:00", "Z")
        following = client.get(page["@iot.nextLink"].split("testserver", 1)[1], headers=headers).json()
        assert [o["result"] for o in following["value"]] == [3.5] and "@iot.nextLink" not in following
        assert "$filter=result gt 1" in unquote(page["@iot.nextLink"]).replace("+", " ")
        other = iw.stream("H2-electricity", "power").id
        assert client.get(f"{ST}/Datastreams({other})", headers=headers).status_code == 404
        assert client.get(f"{ST}/Datastreams({other})/Observations", headers=headers).status_code == 404
        all_obs = client.get(f"{ST}/Observations", headers=headers).json()["value"]
        assert {o["result"] for o in all_obs} == {0.5, 1.5, 2.5, 3.5}


def test_expand_select_navigation_filters_ref_and_value(client: Any, iw: IotWorld) -> None:
    with clock.frozen(DAY + timedelta(hours=1)):
        stream = _readings(client, iw, "H1-electricity", "power", [1.0, 2.0, 3.0])
        headers = iw.resident_headers[0]
        expanded = client.get(
            f"{ST}/Things",
            params={
                "$filter": "name eq 'H1-electricity'",
                "$expand": "Datastreams($select=name;$orderby=id;$expand=ObservedProperty($select=name))",
                "$select": "name",
            },
            headers=headers,
        ).json()["value"]
        assert len(expanded) == 1 and set(expanded[0]) == {"name", "Datastreams"}
        assert [d["ObservedProperty"]["name"] for d in expanded[0]["Datastreams"]] == [
            "Electric energy",
            "Electric power",
        ]
        by_property = client.get(
            f"{ST}/Observations",
            params={"$filter": "Datastream/ObservedProperty/name eq 'Electric power' and result ge 2"},
            headers=headers,
        ).json()["value"]
        assert sorted(o["result"] for o in by_property) == [2.0, 3.0]
        observation = by_property[0]["@iot.id"]
        value = client.get(f"{ST}/Observations({observation})/result/$value", headers=headers)
        assert value.status_code == 200 and value.text in {"2.0", "3.0"}
        prop = client.get(f"{ST}/Datastreams({stream})/name", headers=headers).json()
        assert list(prop) == ["name"]
        refs = client.get(f"{ST}/Datastreams({stream})/Observations/$ref", headers=headers).json()
        assert len(refs["value"]) == 3 and all(set(r) == {"@iot.selfLink"} for r in refs["value"])
        foi = client.get(f"{ST}/Observations({observation})/FeatureOfInterest", headers=headers).json()
        assert foi["name"] == iw.households[0].name
        assert (
            client.get(f"{ST}/Observations({observation})/Datastream/Thing", headers=headers).json()[
                "properties"
            ]["code"]
            == "H1-electricity"
        )


def test_bad_query_options_are_400_naming_the_option(client: Any, iw: IotWorld) -> None:
    headers = iw.resident_headers[0]
    for params, option in (
        ({"$filter": "name eq"}, "$filter"),
        ({"$top": "abc"}, "$top"),
        ({"$orderby": "nope"}, "$orderby"),
        ({"$expand": "Nothing"}, "$expand"),
    ):
        answer = client.get(f"{ST}/Things", params=params, headers=headers)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"]["message"].startswith(option)
    assert client.get(f"{ST}/Nothings", headers=headers).status_code in (400, 404)
    assert client.get(f"{ST}/MultiDatastreams", headers=headers).status_code == 404


def test_create_observations_returns_links_and_errors_in_order(client: Any, iw: IotWorld) -> None:
    power = iw.stream("H1-electricity", "power")
    body = [
        {
            "Datastream": {"@iot.id": power.id},
            "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
            "dataArray@iot.count": 3,
            "dataArray": [
                [(DAY).isoformat(), 1.25, None],
                [(DAY + timedelta(minutes=1)).isoformat(), "NaN", None],
                [(DAY + timedelta(minutes=2)).isoformat(), 2.5, None],
            ],
        },
        {
            "Datastream": {"@iot.id": 999999},
            "components": ["phenomenonTime", "result"],
            "dataArray": [[DAY.isoformat(), 1]],
        },
    ]
    headers = {"Authorization": f"Bearer {iw.tokens['H1-electricity']}"}
    with clock.frozen(DAY + timedelta(hours=1)):
        answer = client.post(f"{ST}/CreateObservations", content=orjson.dumps(body), headers=headers)
        assert answer.status_code == 201, answer.text
        links = answer.json()
        assert links[1] == "error" and links[3] == "error"
        assert "/Observations(" in links[0] and "/Observations(" in links[2]
        created = client.get(links[0].split("testserver", 1)[1], headers=iw.resident_headers[0]).json()
        assert created["result"] == 1.25
        one = client.post(
            f"{ST}/Observations",
            content=orjson.dumps(
                {
                    "phenomenonTime": (DAY + timedelta(minutes=5)).isoformat(),
                    "result": 4.0,
                    "Datastream": {"@iot.id": power.id},
                }
            ),
            headers=headers,
        )
        assert (
            one.status_code == 201
            and one.json()["result"] == 4.0
            and one.headers["location"].endswith(f"Observations({one.json()['@iot.id']})")
        )
        wrong = client.post(
            f"{ST}/Observations",
            content=orjson.dumps(
                {"result": 4.0, "Datastream": {"@iot.id": iw.stream("H2-electricity", "power").id}}
            ),
            headers=headers,
        )
        assert (
            wrong.status_code == 422 and "does not belong to this device" in wrong.json()["error"]["message"]
        )


def test_a_resource_path_with_a_line_break_reaches_the_read_api(client: Any, iw: IotWorld) -> None:
    """The read route's catch-all takes line breaks too: the answer names the bad path segment
    rather than the platform's "no such page"."""
    answer = client.get(f"{ST}/Things%0A/Datastreams", headers=iw.resident_headers[0])
    assert answer.status_code in (400, 404)
    assert "no such page" not in answer.json()["error"]["message"]
