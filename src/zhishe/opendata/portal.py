"""The portal's catalog: search (Chinese too) with facets, timeliness, and the overdue list.

Search works on the metadata of open datasets: titles, descriptions, keywords, column names and
descriptions, theme and publisher. Chinese has no spaces between words, so text is compared as
character bigrams (as CJK analysers of search engines do): a query matches when most of its
bigrams occur in the dataset's text, and results are ranked by how many do, titles counting more.
Latin words must occur whole (as prefixes of words).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.accounts.models import Organisation
from zhishe.core.audit.service import record
from zhishe.core.auth import Role, system_actor
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.core.notifications import service as notifications
from zhishe.opendata import service, timeliness
from zhishe.opendata.service import PublicDataset

__all__ = ["FACETS", "Hit", "check_timeliness", "overdue_days", "search"]

FACETS = ("theme", "publisher", "format", "cadence", "timeliness")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9a-z]+")
#: Share of a query's bigrams that must occur for a Chinese query to match.
_MIN_COVER = 0.6


@dataclass(frozen=True, slots=True)
class Hit:
    """One open dataset in a result list, with its score and facet values."""

    opened: PublicDataset
    score: float
    publisher: str
    formats: tuple[str, ...]
    overdue_days: int


def _terms(text: str, *, characters: bool = False) -> tuple[set[str], set[str]]:
    """The bigrams (single characters for one-character runs) and Latin words of ``text``; with
    ``characters``, every single character too, so that a one-character query (水) finds the
    texts that hold it (used for the searched texts, not for queries)."""
    lowered = text.lower()
    grams: set[str] = set()
    for run in _CJK.findall(lowered):
        if len(run) == 1 or characters:
            grams.update(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams, set(_WORD.findall(lowered))


def _score(
    query: tuple[set[str], set[str]], title: tuple[set[str], set[str]], body: tuple[set[str], set[str]]
) -> float:
    grams, words = query
    score = 0.0
    if grams:
        in_title = len(grams & title[0])
        in_any = len(grams & (title[0] | body[0]))
        cover = in_any / len(grams)
        if cover < _MIN_COVER:
            return 0.0
        score += cover + 0.5 * in_title / len(grams)
    for word in words:
        if any(w.startswith(word) for w in title[1]):
            score += 1.5
        elif any(w.startswith(word) for w in body[1]):
            score += 1.0
        else:
            return 0.0
    return score


def overdue_days(opened: PublicDataset) -> int:
    """Days the dataset's next release is late by (0 when up to date or not periodic)."""
    last = opened.settings.last_published_at or opened.latest.published_at
    if last is None:
        return 0
    return timeliness.overdue_days(last, opened.settings.cadence, clock.now(), get_settings().timezone)


def formats_of(opened: PublicDataset) -> tuple[str, ...]:
    """Download formats of the dataset's newest release."""
    names = ["csv", "json", "ndjson", "parquet", "xlsx"]
    if any(c.get("type") == "point" for c in opened.latest.columns):
        names.append("geojson")
    return tuple(names)


def search(
    *,
    session: Session,
    q: str = "",
    theme: str = "",
    publisher: str = "",
    fmt: str = "",
    cadence: str = "",
    timely: str = "",
    language: str = "zh-CN",
) -> tuple[list[Hit], dict[str, Counter[str]]]:
    """Open datasets matching ``q`` and the chosen facets, best first; and the facet counts.

    Each facet's counts apply every other chosen facet, so choosing a theme still shows how many
    datasets each publisher has within it.
    """
    if len(q) > 200:
        raise Invalid(T("the search text may have at most 200 characters"), detail={"parameter": "q"})
    if timely not in {"", "up_to_date", "overdue"}:
        raise Invalid("timeliness must be up_to_date or overdue", detail={"parameter": "timeliness"})
    opened = service.published_datasets(session)
    orgs = {o.id: o for o in session.scalars(select(Organisation))}
    query = _terms(q) if q.strip() else None
    hits: list[Hit] = []
    for item in opened:
        d = item.dataset
        score = 1.0
        if query is not None:
            title = _terms(f"{d.title_zh} {d.title_en} {d.slug}", characters=True)
            # the columns of the newest release: a column its policy dropped (a phone number, a
            # name) is not public, and neither is its name
            body = _terms(
                " ".join(
                    [d.description_zh, d.description_en, " ".join(d.keywords or []), d.theme]
                    + [f"{c.get('name', '')} {c.get('description', '')}" for c in item.latest.columns]
                    + [orgs[d.owner_org_id].name_zh if d.owner_org_id in orgs else ""]
                ),
                characters=True,
            )
            score = _score(query, title, body)
            if score <= 0:
                continue
        org = orgs.get(d.owner_org_id)
        publisher_name = (org.name_en if language == "en" and org.name_en else org.name_zh) if org else ""
        hits.append(
            Hit(
                opened=item,
                score=score,
                publisher=publisher_name,
                formats=formats_of(item),
                overdue_days=overdue_days(item),
            )
        )
    chosen = {"theme": theme, "publisher": publisher, "format": fmt, "cadence": cadence, "timeliness": timely}
    facets: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    for hit in hits:
        values = _facet_values(hit)
        for name in FACETS:
            if all(_matches(values[other], chosen[other]) for other in FACETS if other != name):
                for value in values[name]:
                    facets[name][value] += 1
    kept = [h for h in hits if all(_matches(_facet_values(h)[name], chosen[name]) for name in FACETS)]
    kept.sort(
        key=lambda h: (-h.score, -(h.opened.latest.published_at or h.opened.latest.created_at).timestamp())
    )
    return kept, facets


def _facet_values(hit: Hit) -> dict[str, Sequence[str]]:
    return {
        "theme": [hit.opened.dataset.theme] if hit.opened.dataset.theme else [],
        "publisher": [hit.publisher],
        "format": list(hit.formats),
        "cadence": [hit.opened.settings.cadence],
        "timeliness": ["overdue" if hit.overdue_days > 0 else "up_to_date"],
    }


def _matches(values: Iterable[str], wanted: str) -> bool:
    return not wanted or wanted in values


def check_timeliness(session: Session) -> list[str]:
    """Mark open datasets whose next release is late and tell their owners, once per lateness.
    Returns the slugs newly found overdue."""
    robot = system_actor("opendata")
    late: list[str] = []
    now = clock.now()
    for opened in service.published_datasets(session):
        days = overdue_days(opened)
        settings = opened.settings
        if days <= 0:
            # up to date again (a slower cadence, or a release made elsewhere): the next lateness
            # is a new one, and its owner must be told of it
            if settings.overdue_since is not None:
                settings.overdue_since = None
            continue
        if settings.overdue_since is not None:
            continue
        settings.overdue_since = now
        late.append(opened.dataset.slug)
        record(
            session=session,
            actor=robot,
            action="opendata.overdue",
            object_type="dataset",
            object_id=opened.dataset.slug,
            object_org_id=opened.dataset.owner_org_id,
            detail={"days": days, "cadence": settings.cadence},
        )
        notifications.notify_org(
            session=session,
            org_id=opened.dataset.owner_org_id,
            kind="opendata.overdue",
            message=T(
                "the open dataset {slug} is overdue by {days} day(s)", slug=opened.dataset.slug, days=days
            ),
            link=f"/opendata/datasets/{opened.dataset.slug}",
            roles=[Role.ADMIN, Role.STEWARD],
        )
    return late
