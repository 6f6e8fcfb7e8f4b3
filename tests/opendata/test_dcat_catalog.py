"""The portal's DCAT-AP 3 JSON-LD, served: ``/catalog.jsonld`` and each dataset's ``.jsonld``, built
from what is really published (datasets, releases as a series, downloads that work)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from opendata.open_world import REGISTER_POLICY, OpenWorld, air_csv

JSONLD = "application/ld+json"
BASE = "http://testserver"
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
IANA = "https://www.iana.org/assignments/media-types/"


def graph(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].split(";")[0] == JSONLD
    document = response.json()
    assert document["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert document["@context"]["dct"] == "http://purl.org/dc/terms/"
    return list(document["@graph"])


def of_type(nodes: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [n for n in nodes if n.get("@type") == kind]


def by_id(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["@id"]: n for n in nodes if "@id" in n}


def ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [i["@id"] for i in items]


def all_iris(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@id":
                yield value
            else:
                yield from all_iris(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_iris(item)


@pytest.fixture()
def opened(ow: OpenWorld) -> OpenWorld:
    """``air`` (hourly, two releases), ``stations`` (weekly, no point column), and ``register``
    with a draft that is not published."""
    ow.open_air()
    assert ow.upload("air", air_csv(72), mode="replace").status_code == 201
    ow.release("air", note="增加第三天")
    ow.create(
        "stations",
        columns=[
            {"name": "station", "type": "string", "is_key": True, "classification": "public"},
            {"name": "district", "type": "string", "classification": "public"},
        ],
        title_zh="监测站",
        title_en="Stations",
        accrual_periodicity="weekly",
    )
    assert ow.upload("stations", "station,district\n东四,东城区\n".encode()).status_code == 201
    assert ow.configure("stations", cadence="weekly").status_code == 200
    ow.release("stations")
    ow.register()
    assert ow.configure("register", who="police.steward", policy=REGISTER_POLICY).status_code == 200
    assert ow.draft("register", who="police.steward").status_code == 201
    return ow


def test_the_catalog_describes_every_open_dataset(opened: OpenWorld) -> None:
    nodes = graph(opened.client.get("/catalog.jsonld"))
    found = by_id(nodes)
    [catalog] = of_type(nodes, "dcat:Catalog")
    assert catalog["@id"].startswith(BASE)
    assert {t["@language"] for t in catalog["dct:title"]} == {"zh-CN", "en"}
    datasets = {n["dct:identifier"]: n for n in of_type(nodes, "dcat:Dataset") if "dcat:inSeries" not in n}
    assert set(datasets) == {"air", "stations"}  # register has only a draft
    listed = ids(catalog["dcat:dataset"])
    assert set(listed) == {f"{BASE}/opendata/datasets/air", f"{BASE}/opendata/datasets/stations"} | {
        f"{BASE}/opendata/datasets/air#series",
        f"{BASE}/opendata/datasets/stations#series",
    }
    service = found[ids(catalog["dcat:service"])[0]]
    assert service["@type"] == "dcat:DataService"
    assert set(ids(service["dcat:servesDataset"])) == {d["@id"] for d in datasets.values()}
    for iri in all_iris(nodes):
        parts = urlsplit(iri)
        assert parts.scheme in {"http", "https", "mailto", "tel"} and (
            parts.netloc or parts.scheme != "http"
        ), iri

    air, stations = datasets["air"], datasets["stations"]
    assert air["dct:accrualPeriodicity"] == {"@id": FREQUENCY + "HOURLY"}
    assert stations["dct:accrualPeriodicity"] == {"@id": FREQUENCY + "WEEKLY"}
    assert air["dcat:temporalResolution"] == {"@value": "PT1H", "@type": "xsd:duration"}
    assert air["dcat:version"] == "2" and stations["dcat:version"] == "1"
    # the readings run from 2026-09-01 00:00 to 2026-09-03 23:00 in Shanghai
    assert air["dct:temporal"]["dcat:startDate"] == {"@value": "2026-09-01", "@type": "xsd:date"}
    assert air["dct:temporal"]["dcat:endDate"] == {"@value": "2026-09-03", "@type": "xsd:date"}
    assert air["dcat:landingPage"] == {"@id": f"{BASE}/opendata/datasets/air"}

    formats = {}
    for distribution in air["dcat:distribution"]:
        assert distribution["@type"] == "dcat:Distribution"
        url = distribution["dcat:downloadURL"]["@id"]
        assert url.startswith(f"{BASE}/opendata/api/v1/datasets/air/download.") and "version=2" in url
        formats[url.split("download.")[1].split("?")[0]] = distribution
    assert set(formats) == {"csv", "json", "ndjson", "parquet", "xlsx", "geojson"}
    assert formats["csv"]["dcat:mediaType"] == {"@id": IANA + "text/csv"}
    assert formats["geojson"]["dcat:mediaType"] == {"@id": IANA + "application/geo+json"}
    assert formats["parquet"]["dcat:mediaType"] == {"@id": IANA + "application/vnd.apache.parquet"}
    assert "dcat:mediaType" not in formats["ndjson"]  # NDJSON has no IANA registration
    for fmt in ("csv", "geojson"):
        url = formats[fmt]["dcat:downloadURL"]["@id"]
        answer = opened.client.get(url.removeprefix(BASE))
        assert answer.status_code == 200, f"{url}: {answer.status_code}"
    assert "geojson" not in {
        d["dcat:downloadURL"]["@id"].split("download.")[1].split("?")[0]
        for d in stations["dcat:distribution"]
    }


def test_releases_form_a_dataset_series_with_one_member_each(opened: OpenWorld) -> None:
    nodes = graph(opened.client.get("/catalog.jsonld"))
    found = by_id(nodes)
    series = {s["@id"]: s for s in of_type(nodes, "dcat:DatasetSeries")}
    assert set(series) == {
        f"{BASE}/opendata/datasets/air#series",
        f"{BASE}/opendata/datasets/stations#series",
    }
    air_series = series[f"{BASE}/opendata/datasets/air#series"]
    members = [
        n for n in of_type(nodes, "dcat:Dataset") if n.get("dcat:inSeries") == {"@id": air_series["@id"]}
    ]
    assert sorted(m["dcat:version"] for m in members) == ["1", "2"]
    first, last = (found[f"{BASE}/opendata/datasets/air/releases/{n}"] for n in (1, 2))
    assert air_series["dcat:first"] == {"@id": first["@id"]} and air_series["dcat:last"] == {
        "@id": last["@id"]
    }
    assert air_series["dct:accrualPeriodicity"] == {"@id": FREQUENCY + "HOURLY"}
    assert last["dcat:prev"] == {"@id": first["@id"]} and "dcat:prev" not in first
    assert {v["@value"] for v in last["adms:versionNotes"]} == {"增加第三天"}
    assert first["dct:temporal"]["dcat:endDate"]["@value"] == "2026-09-02"
    assert last["dct:temporal"]["dcat:endDate"]["@value"] == "2026-09-03"
    for member, number in ((first, 1), (last, 2)):
        urls = [d["dcat:downloadURL"]["@id"] for d in member["dcat:distribution"]]
        assert all(u.endswith(f"?version={number}") for u in urls)
        assert member["dcat:landingPage"] == {"@id": f"{BASE}/opendata/datasets/air/releases/{number}"}
    dataset = found[f"{BASE}/opendata/datasets/air"]
    assert ids(dataset["dcat:hasVersion"]) == [first["@id"], last["@id"]]
    stations_members = [
        n for n in nodes if n.get("dcat:inSeries") == {"@id": f"{BASE}/opendata/datasets/stations#series"}
    ]
    assert len(stations_members) == 1


def test_one_dataset_document_and_unpublished_datasets_absent(opened: OpenWorld) -> None:
    response = opened.client.get("/opendata/datasets/air.jsonld")
    nodes = graph(response)
    datasets = [n for n in of_type(nodes, "dcat:Dataset") if "dcat:inSeries" not in n]
    assert [d["dct:identifier"] for d in datasets] == ["air"]
    assert len(of_type(nodes, "dcat:DatasetSeries")) == 1
    assert {n["dcat:version"] for n in of_type(nodes, "dcat:Dataset") if "dcat:inSeries" in n} == {"1", "2"}
    page = opened.client.get("/opendata/datasets/air")
    assert (
        '<link rel="alternate" type="application/ld+json" href="/opendata/datasets/air.jsonld">' in page.text
    )

    assert opened.client.get("/opendata/datasets/register.jsonld").status_code == 404
    assert opened.client.get("/opendata/datasets/nope.jsonld").status_code == 404
    everything = opened.client.get("/catalog.jsonld").text
    assert "register" not in everything and "户籍" not in everything

    draft = opened.client.get("/api/v1/opendata/datasets/register/drafts", headers=opened.h("police.steward"))
    assert opened.publish(draft.json()[0]["id"], who="police.steward").status_code == 200
    now_open = graph(opened.client.get("/opendata/datasets/register.jsonld"))
    assert [n["dct:identifier"] for n in of_type(now_open, "dcat:Dataset") if "dcat:inSeries" not in n] == [
        "register"
    ]
    assert "http://testserver/opendata/datasets/register" in opened.client.get("/catalog.jsonld").text
