"""The portal's catalog as DCAT-AP 3.0 JSON-LD (``/catalog.jsonld``), built from plain dataclasses.

A pure builder: the service fills `CatalogInfo` (with its `DatasetInfo`, their `ReleaseInfo` and
`DistributionInfo`) and `catalog_jsonld()` returns a JSON-able dict, a flat ``@graph`` whose nodes
refer to each other by IRI. Supporting nodes without an IRI of their own (agents, contact points,
periods of time, checksums) are embedded blank nodes. Every IRI is checked to be absolute.

How the portal maps onto DCAT 3 (https://www.w3.org/TR/vocab-dcat-3/) and DCAT-AP 3.0.0
(https://semiceu.github.io/DCAT-AP/releases/3.0.0/):

- the portal is a ``dcat:Catalog``; the query API is a ``dcat:DataService`` serving every dataset;
- each portal dataset is a ``dcat:Dataset`` describing its current state (the downloads of its
  newest release), with ``dcat:hasVersion`` pointing at each release;
- its releases form a ``dcat:DatasetSeries`` (``<dataset IRI>#series`` unless given) with
  ``dcat:first`` and ``dcat:last``; both the dataset and its series are listed in the catalog;
- each release is a ``dcat:Dataset`` with ``dcat:inSeries``, ``dcat:version`` (DCAT 3 replaces
  ``owl:versionInfo``), ``adms:versionNotes`` (the changelog), and links to the release before it
  both as series order (``dcat:prev``, as in DCAT-AP's dataset-series examples) and as version
  history (``dcat:previousVersion``, DCAT 3 versioning; DCAT-AP 3.0 leaves versioning to DCAT 3);
- inverse properties (``dcat:seriesMember``, ``dcat:next``) are not written, as DCAT-AP 3.0 asks.

Properties written, by class (M = mandatory, R = recommended, O = optional in DCAT-AP 3.0):

- Catalogue: dct:title M, dct:description M, dct:publisher M, dcat:dataset R, foaf:homepage R,
  dct:language R, dct:license R, dct:issued R, dct:modified R, dct:spatial R,
  dcat:themeTaxonomy R (when given), dcat:service O.
- Dataset: dct:title M, dct:description M, dcat:contactPoint R, dcat:distribution R, dcat:keyword R,
  dct:publisher R, dct:spatial R, dct:temporal R, dcat:theme R, dct:identifier O,
  dct:accessRights O, dct:accrualPeriodicity O, dct:issued O, dct:modified O, dct:language O,
  dcat:landingPage O, dcat:temporalResolution O, dcat:version O, adms:versionNotes O,
  dcat:inSeries O, dcat:hasVersion O.
- Dataset Series: dct:title M, dct:description M, dct:accrualPeriodicity O, dct:publisher O,
  dcat:contactPoint O, dct:spatial O, dct:temporal O, dct:issued O, dct:modified O (and DCAT 3's
  dcat:first and dcat:last).
- Distribution: dcat:accessURL M, dct:description R, dct:format R, dct:license R,
  dcatap:availability R (when given), dcat:downloadURL O, dcat:mediaType O, dcat:byteSize O,
  spdx:checksum O, dct:title O, dct:issued O, dct:modified O.
- Data Service: dcat:endpointURL M, dct:title M, dcat:endpointDescription R, dcat:servesDataset R,
  dct:license O, dct:description O.
- Agent: foaf:name M, dct:type R (when given); Kind (contact point): vcard:fn, vcard:hasEmail,
  vcard:hasURL, vcard:hasTelephone; Period of time: dcat:startDate, dcat:endDate.

Not written: catalogue records, qualified relations, and ``dct:format``/``dcat:mediaType`` for
NDJSON, which has neither an IANA registration nor an EU file-type code.

Literals: texts carry language tags (a plain string is tagged with the default language, zh-CN);
dates are ``xsd:date``, date-times ``xsd:dateTime`` (aware only, written with their offset);
durations ``xsd:duration``; byte sizes ``xsd:nonNegativeInteger``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from zhishe.opendata.formats import FORMATS
from zhishe.opendata.timeliness import cadence_of

__all__ = [
    "ACCESS_RIGHTS_PUBLIC",
    "AVAILABILITY",
    "CONTEXT",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Agent",
    "CatalogInfo",
    "Contact",
    "DataServiceInfo",
    "DatasetInfo",
    "DistributionInfo",
    "ReleaseInfo",
    "Temporal",
    "Text",
    "catalog_jsonld",
    "duration",
    "file_type_iri",
    "media_type_iri",
]

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "adms": "http://www.w3.org/ns/adms#",
    "dcatap": "http://data.europa.eu/r5r/",
    "spdx": "http://spdx.org/rdf/terms#",
}

#: The language a plain string is tagged with.
DEFAULT_LANGUAGE = "zh-CN"
#: EU language authority IRIs of the portal's two languages (``dct:language``).
LANGUAGES: dict[str, str] = {
    "zh-CN": "http://publications.europa.eu/resource/authority/language/ZHO",
    "en": "http://publications.europa.eu/resource/authority/language/ENG",
}
ACCESS_RIGHTS_PUBLIC = "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
#: EU planned-availability IRIs for `DistributionInfo.availability`.
AVAILABILITY: dict[str, str] = {
    name: f"http://publications.europa.eu/resource/authority/planned-availability/{name.upper()}"
    for name in ("temporary", "experimental", "available", "stable")
}
_IANA = "https://www.iana.org/assignments/media-types/"
_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
_SHA256 = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"

#: A text: a plain string (tagged with `DEFAULT_LANGUAGE`) or a mapping language tag → text.
Text = str | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Agent:
    """A publisher (``foaf:Agent``)."""

    name: Text
    iri: str | None = None
    #: e.g. http://purl.org/adms/publishertype/LocalAuthority
    type: str | None = None
    homepage: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact point (``vcard:Kind``)."""

    name: Text
    email: str | None = None
    url: str | None = None
    phone: str | None = None
    iri: str | None = None


@dataclass(frozen=True, slots=True)
class Temporal:
    """A period of time (``dct:PeriodOfTime``); either end may be open."""

    start: date | datetime | None = None
    end: date | datetime | None = None


@dataclass(frozen=True, slots=True)
class DistributionInfo:
    """One download of a dataset or release (``dcat:Distribution``)."""

    #: A key of `formats.FORMATS` (csv, json, ndjson, parquet, xlsx, geojson).
    format: str
    access_url: str
    download_url: str | None = None
    byte_size: int | None = None
    license: str | None = None
    title: Text | None = None
    description: Text | None = None
    issued: date | datetime | None = None
    modified: date | datetime | None = None
    #: A key of `AVAILABILITY` (stable, available, experimental, temporary).
    availability: str | None = None
    #: Hex SHA-256 of the file, when known.
    sha256: str | None = None
    iri: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One published release of a dataset: a member of its series and one of its versions."""

    version: str
    iri: str
    issued: date | datetime
    #: The changelog (``adms:versionNotes``).
    notes: Text = ""
    title: Text | None = None
    description: Text | None = None
    temporal: Temporal | None = None
    modified: date | datetime | None = None
    landing_page: str | None = None
    distributions: Sequence[DistributionInfo] = ()


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """A dataset of the portal; `releases` oldest first."""

    identifier: str
    iri: str
    title: Text
    description: Text
    publisher: Agent | None = None
    contact: Contact | None = None
    #: Plain strings (tagged with the default language) or language tag → keywords.
    keywords: Sequence[str] | Mapping[str, Sequence[str]] = ()
    #: Theme IRIs, e.g. http://publications.europa.eu/resource/authority/data-theme/ENVI
    themes: Sequence[str] = ()
    #: A cadence name of `timeliness.CADENCES` (or an EU frequency IRI).
    cadence: str | None = None
    temporal: Temporal | None = None
    #: ISO 8601 duration, a timedelta or a resolution name (hourly, daily, …).
    temporal_resolution: str | timedelta | None = None
    #: Location IRIs (e.g. GeoNames or the area's page).
    spatial: Sequence[str] = ()
    license: str | None = None
    access_rights: str | None = ACCESS_RIGHTS_PUBLIC
    languages: Sequence[str] = ("zh-CN", "en")
    issued: date | datetime | None = None
    modified: date | datetime | None = None
    landing_page: str | None = None
    #: Downloads of the current state (usually the newest release's).
    distributions: Sequence[DistributionInfo] = ()
    releases: Sequence[ReleaseInfo] = ()
    series_iri: str | None = None


@dataclass(frozen=True, slots=True)
class DataServiceInfo:
    """The query API (``dcat:DataService``); it serves every dataset of the catalog."""

    iri: str
    title: Text
    endpoint_url: str
    #: e.g. the OpenAPI document's URL.
    endpoint_description: str | None = None
    description: Text | None = None
    license: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """The portal's catalog."""

    iri: str
    title: Text
    description: Text
    publisher: Agent
    homepage: str | None = None
    datasets: Sequence[DatasetInfo] = ()
    languages: Sequence[str] = ("zh-CN", "en")
    license: str | None = None
    issued: date | datetime | None = None
    modified: date | datetime | None = None
    spatial: Sequence[str] = ()
    #: Theme taxonomy IRIs (``dcat:themeTaxonomy``).
    themes: Sequence[str] = ()
    service: DataServiceInfo | None = None


# --- literals and references ------------------------------------------------------------------------


def _iri(value: str) -> dict[str, str]:
    parts = urlsplit(value)
    if not parts.scheme or not (parts.netloc or parts.scheme in ("mailto", "tel", "urn")):
        raise ValueError(f"{value!r} is not an absolute IRI")
    return {"@id": value}


def _iris(values: Sequence[str]) -> list[dict[str, str]]:
    return [_iri(v) for v in values]


def _texts(value: Text) -> list[dict[str, str]]:
    items = {DEFAULT_LANGUAGE: value} if isinstance(value, str) else dict(value)
    return [{"@value": text, "@language": lang} for lang, text in items.items() if text]


def _keywords(value: Sequence[str] | Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    items = value.items() if isinstance(value, Mapping) else [(DEFAULT_LANGUAGE, value)]
    return [{"@value": word, "@language": lang} for lang, words in items for word in words if word]


def _when(value: date | datetime) -> dict[str, str]:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value!r} is a naive datetime; DCAT dates need an offset")
        return {"@value": value.isoformat(), "@type": "xsd:dateTime"}
    return {"@value": value.isoformat(), "@type": "xsd:date"}


def duration(value: str | timedelta) -> str:
    """An ISO 8601 duration from a timedelta, a resolution name (``daily`` → ``P1D``) or itself."""
    if isinstance(value, timedelta):
        total = int(value.total_seconds())
        if total < 0:
            raise ValueError("a duration must not be negative")
        days, rest = divmod(total, 86_400)
        hours, rest = divmod(rest, 3_600)
        minutes, seconds = divmod(rest, 60)
        clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
        text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
        return text if text != "P" else "PT0S"
    if re.fullmatch(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?", value):
        return value
    found = cadence_of(value).duration
    if found is None:
        raise ValueError(f"{value!r} has no duration")
    return found


def media_type_iri(fmt: str) -> str | None:
    """The IANA media-type IRI of a download format, None when it has none (NDJSON)."""
    iana = FORMATS[fmt].iana
    return _IANA + iana if iana else None


def file_type_iri(fmt: str) -> str | None:
    """The EU file-type authority IRI of a download format, None when it has none (NDJSON)."""
    code = FORMATS[fmt].eu_file_type
    return _FILE_TYPE + code if code else None


def _put(node: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless `value` is empty."""
    if value is None or value == [] or value == {}:
        return
    node[key] = value


# --- nodes --------------------------------------------------------------------------------------


def _agent(agent: Agent) -> dict[str, Any]:
    node: dict[str, Any] = {"@type": "foaf:Agent"}
    if agent.iri:
        node.update(_iri(agent.iri))
    node["foaf:name"] = _texts(agent.name)
    _put(node, "dct:type", _iri(agent.type) if agent.type else None)
    _put(node, "foaf:homepage", _iri(agent.homepage) if agent.homepage else None)
    _put(node, "foaf:mbox", _iri(f"mailto:{agent.email}") if agent.email else None)
    return node


def _contact(contact: Contact) -> dict[str, Any]:
    node: dict[str, Any] = {"@type": "vcard:Kind"}
    if contact.iri:
        node.update(_iri(contact.iri))
    node["vcard:fn"] = _texts(contact.name)
    _put(node, "vcard:hasEmail", _iri(f"mailto:{contact.email}") if contact.email else None)
    _put(node, "vcard:hasURL", _iri(contact.url) if contact.url else None)
    phone = re.sub(r"[^\d+]", "", contact.phone or "")
    _put(node, "vcard:hasTelephone", _iri(f"tel:{phone}") if phone else None)
    return node


def _temporal(period: Temporal) -> dict[str, Any]:
    node: dict[str, Any] = {"@type": "dct:PeriodOfTime"}
    _put(node, "dcat:startDate", _when(period.start) if period.start else None)
    _put(node, "dcat:endDate", _when(period.end) if period.end else None)
    return node


def _distribution(dist: DistributionInfo, default_license: str | None) -> dict[str, Any]:
    if dist.format not in FORMATS:
        raise ValueError(f"unknown download format {dist.format!r}")
    node: dict[str, Any] = {"@type": "dcat:Distribution"}
    if dist.iri:
        node.update(_iri(dist.iri))
    node["dcat:accessURL"] = _iri(dist.access_url)
    _put(node, "dcat:downloadURL", _iri(dist.download_url) if dist.download_url else None)
    _put(node, "dct:title", _texts(dist.title) if dist.title else None)
    description = dist.description or {
        "zh-CN": f"{dist.format.upper()} 格式下载",
        "en": f"Download in {dist.format.upper()} format",
    }
    node["dct:description"] = _texts(description)
    media, file_type = media_type_iri(dist.format), file_type_iri(dist.format)
    _put(node, "dcat:mediaType", _iri(media) if media else None)
    _put(node, "dct:format", _iri(file_type) if file_type else None)
    licence = dist.license or default_license
    _put(node, "dct:license", _iri(licence) if licence else None)
    if dist.byte_size is not None:
        if dist.byte_size < 0:
            raise ValueError("byte_size must not be negative")
        node["dcat:byteSize"] = {"@value": str(dist.byte_size), "@type": "xsd:nonNegativeInteger"}
    if dist.availability:
        node["dcatap:availability"] = _iri(AVAILABILITY[dist.availability])
    if dist.sha256:
        node["spdx:checksum"] = {
            "@type": "spdx:Checksum",
            "spdx:algorithm": _iri(_SHA256),
            "spdx:checksumValue": {"@value": dist.sha256.lower(), "@type": "xsd:hexBinary"},
        }
    _put(node, "dct:issued", _when(dist.issued) if dist.issued else None)
    _put(node, "dct:modified", _when(dist.modified) if dist.modified else None)
    return node


def _common(ds: DatasetInfo) -> dict[str, Any]:
    """Properties a dataset shares with its releases (publisher, contact, themes, …)."""
    node: dict[str, Any] = {}
    _put(node, "dct:publisher", _agent(ds.publisher) if ds.publisher else None)
    _put(node, "dcat:contactPoint", _contact(ds.contact) if ds.contact else None)
    _put(node, "dcat:keyword", _keywords(ds.keywords))
    _put(node, "dcat:theme", _iris(ds.themes))
    _put(node, "dct:spatial", _iris(ds.spatial))
    _put(node, "dct:accessRights", _iri(ds.access_rights) if ds.access_rights else None)
    _put(node, "dct:language", [_iri(LANGUAGES.get(lang, lang)) for lang in ds.languages])
    if ds.cadence:
        node["dct:accrualPeriodicity"] = _iri(cadence_of(ds.cadence).frequency)
    if ds.temporal_resolution:
        node["dcat:temporalResolution"] = {
            "@value": duration(ds.temporal_resolution),
            "@type": "xsd:duration",
        }
    return node


def _series_iri(ds: DatasetInfo) -> str:
    return ds.series_iri or f"{ds.iri}#series"


def _dataset(ds: DatasetInfo) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": _iri(ds.iri)["@id"], "@type": "dcat:Dataset"}
    node["dct:identifier"] = ds.identifier
    node["dct:title"] = _texts(ds.title)
    node["dct:description"] = _texts(ds.description)
    node.update(_common(ds))
    _put(node, "dct:temporal", _temporal(ds.temporal) if ds.temporal else None)
    _put(node, "dct:issued", _when(ds.issued) if ds.issued else None)
    _put(node, "dct:modified", _when(ds.modified) if ds.modified else None)
    _put(node, "dcat:landingPage", _iri(ds.landing_page) if ds.landing_page else None)
    _put(node, "dcat:distribution", [_distribution(d, ds.license) for d in ds.distributions])
    if ds.releases:
        node["dcat:version"] = ds.releases[-1].version
        node["dcat:hasVersion"] = [_iri(r.iri) for r in ds.releases]
    return node


def _series(ds: DatasetInfo) -> dict[str, Any]:
    first, last = ds.releases[0], ds.releases[-1]
    node: dict[str, Any] = {"@id": _iri(_series_iri(ds))["@id"], "@type": "dcat:DatasetSeries"}
    node["dct:title"] = _texts(ds.title)
    node["dct:description"] = _texts(ds.description)
    common = _common(ds)
    for key in ("dct:publisher", "dcat:contactPoint", "dct:spatial", "dct:accrualPeriodicity"):
        _put(node, key, common.get(key))
    _put(node, "dct:temporal", _temporal(ds.temporal) if ds.temporal else None)
    node["dct:issued"] = _when(first.issued)
    node["dct:modified"] = _when(last.modified or last.issued)
    node["dcat:first"] = _iri(first.iri)
    node["dcat:last"] = _iri(last.iri)
    return node


def _release(ds: DatasetInfo, release: ReleaseInfo, previous: ReleaseInfo | None) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": _iri(release.iri)["@id"], "@type": "dcat:Dataset"}
    node["dct:identifier"] = f"{ds.identifier}/{release.version}"
    title = release.title or {
        lang: f"{text} ({release.version})" for lang, text in _lang_map(ds.title).items()
    }
    node["dct:title"] = _texts(title)
    node["dct:description"] = _texts(release.description or ds.description)
    node.update(_common(ds))
    node["dcat:inSeries"] = _iri(_series_iri(ds))
    node["dcat:version"] = release.version
    _put(node, "adms:versionNotes", _texts(release.notes) if release.notes else None)
    if previous is not None:
        node["dcat:prev"] = _iri(previous.iri)
        node["dcat:previousVersion"] = _iri(previous.iri)
    node["dct:issued"] = _when(release.issued)
    _put(node, "dct:modified", _when(release.modified) if release.modified else None)
    _put(node, "dct:temporal", _temporal(release.temporal) if release.temporal else None)
    _put(node, "dcat:landingPage", _iri(release.landing_page) if release.landing_page else None)
    _put(node, "dcat:distribution", [_distribution(d, ds.license) for d in release.distributions])
    return node


def _lang_map(value: Text) -> dict[str, str]:
    return {DEFAULT_LANGUAGE: value} if isinstance(value, str) else dict(value)


def _service(service: DataServiceInfo, datasets: Sequence[DatasetInfo]) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": _iri(service.iri)["@id"], "@type": "dcat:DataService"}
    node["dct:title"] = _texts(service.title)
    _put(node, "dct:description", _texts(service.description) if service.description else None)
    node["dcat:endpointURL"] = _iri(service.endpoint_url)
    _put(
        node,
        "dcat:endpointDescription",
        _iri(service.endpoint_description) if service.endpoint_description else None,
    )
    _put(node, "dcat:servesDataset", [_iri(d.iri) for d in datasets])
    _put(node, "dct:license", _iri(service.license) if service.license else None)
    return node


def catalog_jsonld(catalog: CatalogInfo) -> dict[str, Any]:
    """The catalog as a DCAT-AP 3.0 JSON-LD document (``@context`` and a flat ``@graph``)."""
    node: dict[str, Any] = {"@id": _iri(catalog.iri)["@id"], "@type": "dcat:Catalog"}
    node["dct:title"] = _texts(catalog.title)
    node["dct:description"] = _texts(catalog.description)
    node["dct:publisher"] = _agent(catalog.publisher)
    _put(node, "foaf:homepage", _iri(catalog.homepage) if catalog.homepage else None)
    _put(node, "dct:language", [_iri(LANGUAGES.get(lang, lang)) for lang in catalog.languages])
    _put(node, "dct:license", _iri(catalog.license) if catalog.license else None)
    _put(node, "dct:issued", _when(catalog.issued) if catalog.issued else None)
    _put(node, "dct:modified", _when(catalog.modified) if catalog.modified else None)
    _put(node, "dct:spatial", _iris(catalog.spatial))
    _put(node, "dcat:themeTaxonomy", _iris(catalog.themes))
    listed: list[dict[str, str]] = []
    graph: list[dict[str, Any]] = [node]
    for ds in catalog.datasets:
        graph.append(_dataset(ds))
        listed.append(_iri(ds.iri))
        if ds.releases:
            graph.append(_series(ds))
            listed.append(_iri(_series_iri(ds)))
            previous: ReleaseInfo | None = None
            for release in ds.releases:
                graph.append(_release(ds, release, previous))
                previous = release
    _put(node, "dcat:dataset", listed)
    if catalog.service is not None:
        graph.append(_service(catalog.service, catalog.datasets))
        node["dcat:service"] = _iri(catalog.service.iri)
    return {"@context": dict(CONTEXT), "@graph": graph}
