"""The open datasets as DCAT-AP 3 JSON-LD: the whole catalog and each dataset with its series of
releases. Absolute IRIs are built from the address the request came to."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from zhishe.core.accounts.models import Organisation
from zhishe.core.config import get_settings
from zhishe.opendata import dcat, portal, service
from zhishe.opendata.models import Release
from zhishe.opendata.service import PublicDataset

__all__ = ["catalog_document", "dataset_document", "local_date"]

_EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
#: The platform's themes → the EU data-theme vocabulary that DCAT-AP recommends.
THEMES = {
    "population": "SOCI",
    "energy": "ENER",
    "environment": "ENVI",
    "transport": "TRAN",
    "public-safety": "JUST",
    "health": "HEAL",
    "urban-management": "REGI",
    "economy": "ECON",
    "government": "GOVE",
}
_RESOLUTION = {
    "hourly": "PT1H",
    "daily": "P1D",
    "weekly": "P7D",
    "monthly": "P1M",
    "quarterly": "P3M",
    "annual": "P1Y",
}


def local_date(text: str) -> date | None:
    """The date of an ISO 8601 date or date-time in the platform's time zone (None if unreadable)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(get_settings().tz)
    return value.date()


def _texts(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, **({"en": en} if en else {})}


def _distributions(
    base: str, slug: str, release: Release, formats: tuple[str, ...]
) -> list[dcat.DistributionInfo]:
    page = f"{base}/opendata/datasets/{slug}"
    return [
        dcat.DistributionInfo(
            format=fmt,
            access_url=f"{page}?version={release.number}",
            download_url=f"{base}/opendata/api/v1/datasets/{slug}/download.{fmt}?version={release.number}",
            issued=release.published_at,
            iri=f"{page}/releases/{release.number}#{fmt}",
        )
        for fmt in formats
    ]


def _dataset(session: Session, base: str, opened: PublicDataset) -> dcat.DatasetInfo:
    d = opened.dataset
    page = f"{base}/opendata/datasets/{d.slug}"
    org = session.get(Organisation, d.owner_org_id)
    publisher = (
        dcat.Agent(name=_texts(org.name_zh, org.name_en), iri=f"{base}/orgs/{org.code}") if org else None
    )
    formats = portal.formats_of(opened)
    oldest_first = list(reversed(opened.releases))
    releases = [
        dcat.ReleaseInfo(
            version=str(r.number),
            iri=f"{page}/releases/{r.number}",
            issued=r.published_at or r.created_at,
            notes=r.note or "",
            title=_texts(
                f"{d.title_zh}（第 {r.number} 版）",
                f"{d.title_en} (release {r.number})" if d.title_en else "",
            ),
            temporal=dcat.Temporal(local_date(r.temporal_start), local_date(r.temporal_end))
            if r.temporal_start
            else None,
            landing_page=f"{page}/releases/{r.number}",
            distributions=_distributions(base, d.slug, r, formats),
        )
        for r in oldest_first
    ]
    latest = opened.latest
    theme = THEMES.get(d.theme)
    return dcat.DatasetInfo(
        identifier=d.slug,
        iri=page,
        title=_texts(d.title_zh, d.title_en),
        description=_texts(d.description_zh or d.title_zh, d.description_en),
        publisher=publisher,
        contact=dcat.Contact(
            name=d.contact_name or (org.name_zh if org else d.slug), email=d.contact_email or None
        ),
        keywords=list(d.keywords or []),
        themes=[_EU_THEME + theme] if theme else [],
        cadence=opened.settings.cadence,
        temporal=dcat.Temporal(local_date(latest.temporal_start), local_date(latest.temporal_end))
        if latest.temporal_start
        else None,
        temporal_resolution=_RESOLUTION.get(d.accrual_periodicity),
        license=d.licence if d.licence.startswith(("http://", "https://")) else None,
        issued=oldest_first[0].published_at,
        modified=latest.published_at,
        landing_page=page,
        distributions=_distributions(base, d.slug, latest, formats),
        releases=releases,
        series_iri=f"{page}#series",
    )


def _catalog(session: Session, base: str, datasets: list[dcat.DatasetInfo]) -> dcat.CatalogInfo:
    return dcat.CatalogInfo(
        iri=f"{base}/catalog.jsonld#catalog",
        title=_texts("智社开放数据", "Zhishe open data"),
        description=_texts(
            "社区开放数据门户：经隐私审查发布的数据集。",
            "The community's open data, released through a privacy gate.",
        ),
        publisher=dcat.Agent(name=_texts("数据局", "Data bureau"), iri=f"{base}/opendata"),
        homepage=f"{base}/opendata",
        datasets=datasets,
        themes=["http://publications.europa.eu/resource/authority/data-theme"],
        service=dcat.DataServiceInfo(
            iri=f"{base}/opendata/api/v1#service",
            title=_texts("开放数据查询接口", "Open-data query API"),
            endpoint_url=f"{base}/opendata/api/v1",
            endpoint_description=f"{base}/openapi.json",
        ),
    )


def catalog_document(session: Session, base: str) -> dict[str, Any]:
    """The whole catalog of open datasets."""
    datasets = [_dataset(session, base, opened) for opened in service.published_datasets(session)]
    return dcat.catalog_jsonld(_catalog(session, base, datasets))


def dataset_document(session: Session, base: str, slug: str) -> dict[str, Any]:
    """One open dataset, its series and releases (NotFound unless it is open)."""
    opened = service.public_dataset(session=session, slug=slug)
    return dcat.catalog_jsonld(_catalog(session, base, [_dataset(session, base, opened)]))
