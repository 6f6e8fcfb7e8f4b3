"""The area list: load it from a CSV, read it as a tree, and map any area to its ancestors.

The list is public knowledge (street addresses and building names), so reading it needs no login.
Changing it is for data bureau administrators and the local CLI. Other domains use it to generalise
addresses (open data), to pick a location (reports) and to aggregate by area.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core.areas.models import LEVELS, Area
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.i18n import T

__all__ = ["AreaRow", "ancestry", "get_or_raise", "import_rows", "list_areas", "parse_csv"]

_COLUMNS = ("code", "parent", "level", "name_zh", "name_en", "lat", "lon")


@dataclass(frozen=True, slots=True)
class AreaRow:
    """One area as read from a file, before it is stored."""

    code: str
    parent: str
    level: str
    name_zh: str
    name_en: str = ""
    lat: float | None = None
    lon: float | None = None


def parse_csv(data: bytes) -> list[AreaRow]:
    """Rows of an area CSV (UTF-8, header ``code,parent,level,name_zh,name_en,lat,lon``)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("the area file must be UTF-8 text", detail={"field": "file"}) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("code", "parent", "level", "name_zh") if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(
            f"the area file lacks the column(s) {', '.join(missing)}; expected {','.join(_COLUMNS)}",
            detail={"field": "file"},
        )
    rows: list[AreaRow] = []
    for line, raw in enumerate(reader, start=2):
        rows.append(_row(line, raw))
    return rows


def _row(line: int, raw: Mapping[str, str | None]) -> AreaRow:
    def text(name: str) -> str:
        return (raw.get(name) or "").strip()

    def number(name: str, low: float, high: float) -> float | None:
        value = text(name)
        if not value:
            return None
        try:
            parsed = float(value)
        except ValueError:
            raise Invalid(
                f"line {line}: {name} {value!r} is not a number", detail={"line": line, "column": name}
            ) from None
        if not low <= parsed <= high:
            raise Invalid(
                f"line {line}: {name} {value} is outside {low}..{high}", detail={"line": line, "column": name}
            )
        return parsed

    row = AreaRow(
        code=text("code"),
        parent=text("parent"),
        level=text("level"),
        name_zh=text("name_zh"),
        name_en=text("name_en"),
        lat=number("lat", -90, 90),
        lon=number("lon", -180, 180),
    )
    if not row.code or len(row.code) > 64:
        raise Invalid(
            f"line {line}: code must be 1 to 64 characters", detail={"line": line, "column": "code"}
        )
    if row.level not in LEVELS:
        raise Invalid(
            f"line {line}: level {row.level!r} is not one of {', '.join(LEVELS)}",
            detail={"line": line, "column": "level"},
        )
    if not row.name_zh:
        raise Invalid(f"line {line}: name_zh is empty", detail={"line": line, "column": "name_zh"})
    return row


def import_rows(*, session: Session, actor: Actor, rows: Iterable[AreaRow]) -> dict[str, int]:
    """Add or update areas by code; parents may come later in the file. All or nothing."""
    if not actor.is_platform_admin:
        raise Forbidden(T("only data bureau administrators may change the area list"))
    given = list(rows)
    codes = [r.code for r in given]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise Invalid(f"code(s) given twice: {', '.join(duplicates[:10])}", detail={"field": "code"})
    existing = {a.code: a for a in session.scalars(select(Area))}
    levels = {a.code: a.level for a in existing.values()} | {r.code: r.level for r in given}
    for r in given:
        if r.parent and r.parent not in levels:
            raise Invalid(f"area {r.code}: parent {r.parent!r} is unknown", detail={"code": r.code})
    # Every area of the tree as it will be, not only the rows given: an area given a narrower
    # level must not end up below (or level with) the areas already stored under it. As each
    # parent is strictly wider than its child, the tree can have no cycle either.
    code_of = {a.id: a.code for a in existing.values()}
    parents = {
        a.code: code_of.get(a.parent_id) if a.parent_id is not None else None for a in existing.values()
    } | {r.code: r.parent or None for r in given}
    given_codes = set(codes)
    for code in sorted(parents, key=lambda c: c not in given_codes):  # the given rows first
        parent = parents[code]
        if parent and LEVELS.index(levels[parent]) >= LEVELS.index(levels[code]):
            raise Invalid(
                f"area {code} ({levels[code]}) cannot sit under {parent} ({levels[parent]})",
                detail={"code": code},
            )
    created = updated = 0
    for r in given:
        area = existing.get(r.code)
        if area is None:
            area = Area(code=r.code, level=r.level, name_zh=r.name_zh)
            session.add(area)
            existing[r.code] = area
            created += 1
        else:
            updated += 1
        area.level, area.name_zh, area.name_en, area.lat, area.lon = (
            r.level,
            r.name_zh,
            r.name_en,
            r.lat,
            r.lon,
        )
    session.flush()
    for r in given:
        existing[r.code].parent_id = existing[r.parent].id if r.parent else None
    session.flush()
    record(
        session=session,
        actor=actor,
        action="areas.import",
        object_type="areas",
        object_id="list",
        detail={"created": created, "updated": updated},
    )
    return {"created": created, "updated": updated}


def list_areas(*, session: Session, level: str | None = None, parent: str | None = None) -> list[Area]:
    """Areas, optionally of one level or under one parent code, in code order (public)."""
    query = select(Area).order_by(Area.code)
    if level is not None:
        if level not in LEVELS:
            raise Invalid(f"level must be one of {', '.join(LEVELS)}", detail={"parameter": "level"})
        query = query.where(Area.level == level)
    if parent is not None:
        query = query.where(Area.parent_id == get_or_raise(session=session, code=parent).id)
    return list(session.scalars(query))


def get_or_raise(*, session: Session, code: str) -> Area:
    """The area with ``code``."""
    found = session.scalar(select(Area).where(Area.code == code))
    if found is None:
        raise NotFound(T("no area has the code {code}", code=code), detail={"code": code})
    return found


def ancestry(session: Session) -> dict[str, dict[str, str]]:
    """For every area, its own and its ancestors' Chinese names by level: ``{code: {level: name}}``.

    Keys are area codes and also Chinese area names, so that a column holding either can be mapped.
    A name that several areas share (1号楼 in two communities) is no key: it cannot say which
    area it is, and mapping it to one of them would put rows in the wrong community.
    """
    areas = list(session.scalars(select(Area)))
    by_id = {a.id: a for a in areas}
    names = Counter(a.name_zh for a in areas)
    result: dict[str, dict[str, str]] = {}
    by_name: dict[str, dict[str, str]] = {}
    for area in areas:
        chain: dict[str, str] = {}
        node: Area | None = area
        seen: set[int] = set()
        while node is not None and node.id not in seen:
            seen.add(node.id)
            chain[node.level] = node.name_zh
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        result[area.code] = chain
        if names[area.name_zh] == 1:
            by_name[area.name_zh] = chain
    for name, chain in by_name.items():
        result.setdefault(name, chain)  # a code wins over a name
    return result
