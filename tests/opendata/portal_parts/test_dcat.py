"""DCAT-AP 3.0 JSON-LD: structure, vocabulary, typed literals, absolute IRIs, series of releases.

rdflib is not a dependency, so the document is checked structurally: a small expansion of the
compact IRIs against the ``@context`` stands in for an RDF parser.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from zhishe.opendata import dcat
from zhishe.opendata.dcat import (
    Agent,
    CatalogInfo,
    Contact,
    DataServiceInfo,
    DatasetInfo,
    DistributionInfo,
    ReleaseInfo,
    Temporal,
    catalog_jsonld,
)

BASE = "https://data.example-community.cn"
FREQ = "http://publications.europa.eu/resource/authority/frequency/"
DCAT_NS = "http://www.w3.org/ns/dcat#"
PUBLISHER = Agent(
    name={"zh-CN": "幸福里社区居委会", "en": "Xingfuli Community Committee"},
    iri=f"{BASE}/org/1",
    type="http://purl.org/adms/publishertype/LocalAuthority",
    homepage=BASE,
    email="data@example-community.cn",
)
LICENCE = "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0"


def _downloads(slug: str, version: str, sizes: dict[str, int] | None = None) -> list[DistributionInfo]:
    return [
        DistributionInfo(
            format=fmt,
            access_url=f"{BASE}/opendata/datasets/{slug}",
            download_url=f"{BASE}/opendata/datasets/{slug}/releases/{version}/download.{fmt}",
            byte_size=(sizes or {}).get(fmt),
            availability="stable",
        )
        for fmt in ("csv", "json", "ndjson", "parquet", "xlsx", "geojson")
    ]


def _releases() -> list[ReleaseInfo]:
    return [
        ReleaseInfo(
            version=str(n),
            iri=f"{BASE}/opendata/datasets/air/releases/{n}",
            issued=datetime(2024, n, 1, 8, 0, tzinfo=UTC),
            notes={"zh-CN": f"第 {n} 版", "en": f"Release {n}"} if n > 1 else "首次发布",
            temporal=Temporal(date(2024, n, 1), date(2024, n, 28)),
            distributions=_downloads("air", str(n), {"csv": 1234}),
        )
        for n in (1, 2, 3)
    ]


def _catalog(**changes: Any) -> CatalogInfo:
    air = DatasetInfo(
        identifier="air",
        iri=f"{BASE}/opendata/datasets/air",
        title={"zh-CN": "空气质量监测", "en": "Air quality"},
        description={"zh-CN": "每小时空气质量读数。", "en": "Hourly air quality readings."},
        publisher=PUBLISHER,
        contact=Contact(name="数据办公室", email="open@example-community.cn", phone="+86 10 1234 5678"),
        keywords={"zh-CN": ["空气", "环境"], "en": ["air", "environment"]},
        themes=["http://publications.europa.eu/resource/authority/data-theme/ENVI"],
        cadence="hourly",
        temporal=Temporal(datetime(2024, 1, 1, tzinfo=UTC), None),
        temporal_resolution="hourly",
        spatial=["https://sws.geonames.org/1816670/"],
        license=LICENCE,
        issued=date(2024, 1, 1),
        modified=datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        landing_page=f"{BASE}/opendata/datasets/air",
        distributions=_downloads("air", "latest"),
        releases=_releases(),
    )
    budget = DatasetInfo(
        identifier="budget",
        iri=f"{BASE}/opendata/datasets/budget",
        title="社区预算",
        description="年度预算执行情况。",
        cadence="annual",
        temporal_resolution=timedelta(days=1),
    )
    fields: dict[str, Any] = {
        "iri": f"{BASE}/catalog",
        "title": {"zh-CN": "幸福里开放数据", "en": "Xingfuli open data"},
        "description": {"zh-CN": "社区开放数据目录", "en": "The community's open data catalogue"},
        "publisher": PUBLISHER,
        "homepage": f"{BASE}/opendata",
        "datasets": [air, budget],
        "license": LICENCE,
        "issued": date(2023, 12, 1),
        "modified": datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        "spatial": ["https://sws.geonames.org/1816670/"],
        "service": DataServiceInfo(
            iri=f"{BASE}/opendata/api",
            title={"zh-CN": "开放数据查询接口", "en": "Open data query API"},
            endpoint_url=f"{BASE}/opendata/api/",
            endpoint_description=f"{BASE}/openapi.json",
            license=LICENCE,
        ),
    }
    fields.update(changes)
    return CatalogInfo(**fields)


@pytest.fixture
def doc() -> dict[str, Any]:
    """The catalog document, after a JSON round trip."""
    result: dict[str, Any] = json.loads(json.dumps(catalog_jsonld(_catalog()), ensure_ascii=False))
    return result


def _nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["@id"]: n for n in doc["@graph"]}


def _of_type(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in doc["@graph"] if n["@type"] == kind]


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside `value` (the graph, its nodes, their embedded nodes and literals)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _expand(term: str, context: dict[str, str]) -> str:
    prefix, _, rest = term.partition(":")
    return context[prefix] + rest if prefix in context and not rest.startswith("//") else term


def _values(node: dict[str, Any], key: str) -> list[Any]:
    value = node.get(key, [])
    return value if isinstance(value, list) else [value]


def _text(node: dict[str, Any], key: str, lang: str) -> str:
    return next(v["@value"] for v in _values(node, key) if v["@language"] == lang)


# --- the whole document -----------------------------------------------------------------------------


def test_context_declares_the_dcat_ap_prefixes(doc: dict[str, Any]) -> None:
    assert doc["@context"] == {
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "vcard": "http://www.w3.org/2006/vcard/ns#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "adms": "http://www.w3.org/ns/adms#",
        "dcatap": "http://data.europa.eu/r5r/",
        "spdx": "http://spdx.org/rdf/terms#",
    }


def test_every_node_has_a_type_and_every_property_a_known_namespace(doc: dict[str, Any]) -> None:
    context = doc["@context"]
    for obj in _walk(doc["@graph"]):
        if "@value" in obj:
            assert set(obj) <= {"@value", "@type", "@language"}
            continue
        if set(obj) == {"@id"}:  # a reference to a node described elsewhere (or outside)
            continue
        assert "@type" in obj, obj
        for key in obj:
            if key.startswith("@"):
                continue
            prefix = key.split(":", 1)[0]
            assert prefix in context, key
        assert _expand(obj["@type"], context).startswith(tuple(context.values()))


def test_every_iri_is_absolute(doc: dict[str, Any]) -> None:
    ids = [obj["@id"] for obj in _walk(doc["@graph"]) if "@id" in obj]

    assert len(ids) > 50
    for iri in ids:
        parts = urlsplit(iri)
        assert parts.scheme in ("http", "https", "mailto", "tel"), iri
        assert parts.netloc or parts.scheme in ("mailto", "tel"), iri


def test_dates_are_typed_literals(doc: dict[str, Any]) -> None:
    date_keys = {"dct:issued", "dct:modified", "dcat:startDate", "dcat:endDate"}
    seen = 0
    for obj in _walk(doc["@graph"]):
        for key in date_keys & set(obj):
            literal = obj[key]
            assert literal["@type"] in ("xsd:date", "xsd:dateTime"), (key, literal)
            if literal["@type"] == "xsd:date":
                date.fromisoformat(literal["@value"])
            else:
                assert datetime.fromisoformat(literal["@value"]).tzinfo is not None
            seen += 1
    assert seen > 10


def test_texts_carry_language_tags(doc: dict[str, Any]) -> None:
    air = _nodes(doc)[f"{BASE}/opendata/datasets/air"]
    budget = _nodes(doc)[f"{BASE}/opendata/datasets/budget"]

    assert _text(air, "dct:title", "zh-CN") == "空气质量监测"
    assert _text(air, "dct:title", "en") == "Air quality"
    assert _text(air, "dct:description", "en") == "Hourly air quality readings."
    assert sorted((k["@language"], k["@value"]) for k in air["dcat:keyword"]) == [
        ("en", "air"),
        ("en", "environment"),
        ("zh-CN", "环境"),
        ("zh-CN", "空气"),
    ]
    assert budget["dct:title"] == [{"@value": "社区预算", "@language": "zh-CN"}]


# --- catalogue and data service -------------------------------------------------------------------


def test_the_catalog_lists_datasets_and_series_and_the_query_service(doc: dict[str, Any]) -> None:
    (catalog,) = _of_type(doc, "dcat:Catalog")

    assert catalog["@id"] == f"{BASE}/catalog"
    assert {"dct:title", "dct:description", "dct:publisher"} <= set(catalog)  # mandatory
    assert catalog["foaf:homepage"] == {"@id": f"{BASE}/opendata"}
    assert catalog["dct:publisher"]["@type"] == "foaf:Agent"
    assert _text(catalog["dct:publisher"], "foaf:name", "en") == "Xingfuli Community Committee"
    assert [d["@id"] for d in catalog["dcat:dataset"]] == [
        f"{BASE}/opendata/datasets/air",
        f"{BASE}/opendata/datasets/air#series",
        f"{BASE}/opendata/datasets/budget",
    ]
    assert catalog["dct:language"] == [
        {"@id": "http://publications.europa.eu/resource/authority/language/ZHO"},
        {"@id": "http://publications.europa.eu/resource/authority/language/ENG"},
    ]
    assert catalog["dcat:service"] == {"@id": f"{BASE}/opendata/api"}
    (service,) = _of_type(doc, "dcat:DataService")
    assert service["dcat:endpointURL"] == {"@id": f"{BASE}/opendata/api/"}
    assert service["dcat:endpointDescription"] == {"@id": f"{BASE}/openapi.json"}
    assert [d["@id"] for d in service["dcat:servesDataset"]] == [
        f"{BASE}/opendata/datasets/air",
        f"{BASE}/opendata/datasets/budget",
    ]


def test_a_catalog_without_datasets_or_service_is_still_valid() -> None:
    doc = catalog_jsonld(_catalog(datasets=[], service=None))

    (catalog,) = doc["@graph"]
    assert "dcat:dataset" not in catalog and "dcat:service" not in catalog


# --- datasets -------------------------------------------------------------------------------------


def test_a_dataset_has_the_recommended_properties(doc: dict[str, Any]) -> None:
    air = _nodes(doc)[f"{BASE}/opendata/datasets/air"]

    assert air["@type"] == "dcat:Dataset"
    assert air["dct:identifier"] == "air"
    recommended = {"dcat:contactPoint", "dcat:distribution", "dcat:keyword", "dct:publisher"}
    assert recommended | {"dct:spatial", "dct:temporal", "dcat:theme"} <= set(air)
    assert air["dct:accrualPeriodicity"] == {"@id": FREQ + "HOURLY"}
    assert air["dcat:temporalResolution"] == {"@value": "PT1H", "@type": "xsd:duration"}
    assert air["dct:temporal"] == {
        "@type": "dct:PeriodOfTime",
        "dcat:startDate": {"@value": "2024-01-01T00:00:00+00:00", "@type": "xsd:dateTime"},
    }
    assert air["dct:issued"] == {"@value": "2024-01-01", "@type": "xsd:date"}
    assert air["dcat:landingPage"] == {"@id": f"{BASE}/opendata/datasets/air"}
    assert air["dct:accessRights"] == {"@id": dcat.ACCESS_RIGHTS_PUBLIC}
    assert air["dcat:version"] == "3"
    assert [v["@id"] for v in air["dcat:hasVersion"]] == [
        f"{BASE}/opendata/datasets/air/releases/{n}" for n in (1, 2, 3)
    ]


def test_contact_point_is_a_vcard_kind_with_mailto_and_tel(doc: dict[str, Any]) -> None:
    contact = _nodes(doc)[f"{BASE}/opendata/datasets/air"]["dcat:contactPoint"]

    assert contact == {
        "@type": "vcard:Kind",
        "vcard:fn": [{"@value": "数据办公室", "@language": "zh-CN"}],
        "vcard:hasEmail": {"@id": "mailto:open@example-community.cn"},
        "vcard:hasTelephone": {"@id": "tel:+861012345678"},
    }


@pytest.mark.parametrize(
    ("cadence", "code"),
    [
        ("hourly", "HOURLY"),
        ("daily", "DAILY"),
        ("weekly", "WEEKLY"),
        ("monthly", "MONTHLY"),
        ("quarterly", "QUARTERLY"),
        ("annual", "ANNUAL"),
        ("irregular", "IRREG"),
        ("never", "NEVER"),
    ],
)
def test_cadences_map_to_the_eu_frequency_table(cadence: str, code: str) -> None:
    dataset = DatasetInfo(identifier="x", iri=f"{BASE}/x", title="x", description="x", cadence=cadence)

    doc = catalog_jsonld(_catalog(datasets=[dataset], service=None))

    assert doc["@graph"][1]["dct:accrualPeriodicity"] == {"@id": FREQ + code}


def test_durations() -> None:
    assert dcat.duration("daily") == "P1D"
    assert dcat.duration("P3M") == "P3M"
    assert dcat.duration(timedelta(hours=1)) == "PT1H"
    assert dcat.duration(timedelta(days=1, minutes=30)) == "P1DT30M"
    assert dcat.duration(timedelta(0)) == "PT0S"
    with pytest.raises(ValueError, match="no duration"):
        dcat.duration("irregular")


# --- distributions --------------------------------------------------------------------------------


def test_distributions_use_iana_media_types_and_eu_file_types(doc: dict[str, Any]) -> None:
    air = _nodes(doc)[f"{BASE}/opendata/datasets/air"]
    by_url = {d["dcat:downloadURL"]["@id"].rsplit(".", 1)[1]: d for d in air["dcat:distribution"]}

    iana = "https://www.iana.org/assignments/media-types/"
    file_type = "http://publications.europa.eu/resource/authority/file-type/"
    assert by_url["csv"]["dcat:mediaType"] == {"@id": iana + "text/csv"}
    assert by_url["csv"]["dct:format"] == {"@id": file_type + "CSV"}
    assert by_url["json"]["dcat:mediaType"] == {"@id": iana + "application/json"}
    assert by_url["parquet"]["dcat:mediaType"] == {"@id": iana + "application/vnd.apache.parquet"}
    assert by_url["parquet"]["dct:format"] == {"@id": file_type + "PARQUET"}
    assert by_url["xlsx"]["dct:format"] == {"@id": file_type + "XLSX"}
    assert by_url["geojson"]["dcat:mediaType"] == {"@id": iana + "application/geo+json"}
    assert by_url["geojson"]["dct:format"] == {"@id": file_type + "GEOJSON"}
    assert "dcat:mediaType" not in by_url["ndjson"] and "dct:format" not in by_url["ndjson"]
    for dist in by_url.values():
        assert dist["@type"] == "dcat:Distribution"
        assert dist["dcat:accessURL"] == {"@id": f"{BASE}/opendata/datasets/air"}  # mandatory
        assert dist["dct:license"] == {"@id": LICENCE}  # inherited from the dataset
        assert dist["dct:description"]
        assert dist["dcatap:availability"] == {
            "@id": "http://publications.europa.eu/resource/authority/planned-availability/STABLE"
        }


def test_byte_size_and_checksum_are_typed(doc: dict[str, Any]) -> None:
    release = _nodes(doc)[f"{BASE}/opendata/datasets/air/releases/1"]
    csv = next(d for d in release["dcat:distribution"] if d["dcat:downloadURL"]["@id"].endswith(".csv"))
    dist = DistributionInfo(format="csv", access_url=f"{BASE}/a", sha256="AB" * 32)
    node = dcat._distribution(dist, None)

    assert csv["dcat:byteSize"] == {"@value": "1234", "@type": "xsd:nonNegativeInteger"}
    assert node["spdx:checksum"] == {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {"@id": "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"},
        "spdx:checksumValue": {"@value": "ab" * 32, "@type": "xsd:hexBinary"},
    }
    assert "dcat:byteSize" not in node and "dct:license" not in node


# --- the series of releases -----------------------------------------------------------------------


def test_releases_form_a_dataset_series_with_first_and_last(doc: dict[str, Any]) -> None:
    (series,) = _of_type(doc, "dcat:DatasetSeries")

    assert series["@id"] == f"{BASE}/opendata/datasets/air#series"
    assert {"dct:title", "dct:description"} <= set(series)  # mandatory
    assert series["dcat:first"] == {"@id": f"{BASE}/opendata/datasets/air/releases/1"}
    assert series["dcat:last"] == {"@id": f"{BASE}/opendata/datasets/air/releases/3"}
    assert series["dct:accrualPeriodicity"] == {"@id": FREQ + "HOURLY"}
    assert series["dct:issued"]["@value"] == "2024-01-01T08:00:00+00:00"
    assert series["dct:modified"]["@value"] == "2024-03-01T08:00:00+00:00"
    assert "dcat:seriesMember" not in series  # inverse properties are not used (DCAT-AP 3.0)


def test_each_release_is_a_versioned_member_linked_to_the_one_before(doc: dict[str, Any]) -> None:
    nodes = _nodes(doc)
    releases = [nodes[f"{BASE}/opendata/datasets/air/releases/{n}"] for n in (1, 2, 3)]

    for n, release in enumerate(releases, start=1):
        assert release["@type"] == "dcat:Dataset"
        assert release["dcat:inSeries"] == {"@id": f"{BASE}/opendata/datasets/air#series"}
        assert release["dcat:version"] == str(n)
        assert release["dct:identifier"] == f"air/{n}"
        assert _text(release, "dct:title", "en") == f"Air quality ({n})"
        assert len(release["dcat:distribution"]) == 6
        assert release["dct:temporal"]["dcat:endDate"] == {"@value": f"2024-0{n}-28", "@type": "xsd:date"}
    assert "dcat:prev" not in releases[0] and "dcat:previousVersion" not in releases[0]
    for before, after in itertools.pairwise(releases):
        assert after["dcat:prev"] == {"@id": before["@id"]}
        assert after["dcat:previousVersion"] == {"@id": before["@id"]}
    assert releases[0]["adms:versionNotes"] == [{"@value": "首次发布", "@language": "zh-CN"}]
    assert _text(releases[2], "adms:versionNotes", "en") == "Release 3"


def test_a_dataset_without_releases_has_no_series() -> None:
    dataset = DatasetInfo(identifier="x", iri=f"{BASE}/x", title="x", description="x")

    doc = catalog_jsonld(_catalog(datasets=[dataset], service=None))

    assert [n["@type"] for n in doc["@graph"]] == ["dcat:Catalog", "dcat:Dataset"]
    assert "dcat:hasVersion" not in doc["@graph"][1]


# --- refusals -------------------------------------------------------------------------------------


def test_relative_iris_and_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="not an absolute IRI"):
        catalog_jsonld(_catalog(homepage="/opendata"))
    with pytest.raises(ValueError, match="naive datetime"):
        catalog_jsonld(_catalog(modified=datetime(2024, 1, 1)))
    with pytest.raises(ValueError, match="unknown download format"):
        dcat._distribution(DistributionInfo(format="pdf", access_url=f"{BASE}/a"), None)
