"""The demonstration community: deterministic, complete, typed exactly, and faithful in CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from zhishe.catalog.types import Classification, ColumnType, arrow_schema
from zhishe.demo import DEMO_PASSWORD, Community, DemoDataset, build_community
from zhishe.demo.environment import AIR_GAPS, iaqi

DATA_DIR = Path(__file__).resolve().parents[2] / "src" / "zhishe" / "demo" / "data"
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@pytest.fixture(scope="module")
def community() -> Community:
    return build_community()


def _slugs() -> list[str]:
    return [d.slug for d in build_community(households=40).datasets]


SLUGS = _slugs()


def _all_csv(c: Community) -> dict[str, bytes]:
    return {d.slug: d.to_csv_bytes() for d in c.datasets}


def test_same_seed_gives_byte_identical_csv_and_people(community: Community) -> None:
    again = build_community()
    assert _all_csv(again) == _all_csv(community)
    assert again.organisations == community.organisations
    assert again.users == community.users
    assert again.households == community.households
    assert again.buildings == community.buildings


def test_different_seed_gives_different_data(community: Community) -> None:
    other = build_community(2027)
    mine, theirs = _all_csv(community), _all_csv(other)
    for slug in ("household-register", "hotline-12345", "air-quality-hourly", "clinic-visits-daily"):
        assert mine[slug] != theirs[slug], slug
    # The real data does not depend on the seed.
    assert mine["electricity-demand-england-wales"] == theirs["electricity-demand-england-wales"]


def test_organisations_are_those_of_the_brief(community: Community) -> None:
    kinds = Counter(o.kind for o in community.organisations)
    assert kinds == {
        "data_bureau": 1,
        "department": 6,
        "operator": 1,
        "clinic": 2,
        "service_provider": 3,
        "community_committee": 1,
        "public_developer": 1,
    }
    codes = {o.code for o in community.organisations}
    assert {
        "bureau",
        "dept-land",
        "dept-env",
        "dept-water",
        "dept-transport",
        "dept-city",
        "dept-police",
    } <= codes
    assert {"operator", "clinic-east", "clinic-west", "committee"} <= codes
    assert len(codes) == len(community.organisations)
    assert all(SLUG.match(code) for code in codes)
    assert all(o.name_zh and o.name_en for o in community.organisations)


def test_every_organisation_has_an_admin_and_roles_fit_the_organisation(community: Community) -> None:
    kind_of = {o.code: o.kind for o in community.organisations}
    admins = {u.org_code for u in community.users if u.role == "admin"}
    assert admins == set(kind_of)
    for user in community.users:
        assert SLUG.match(user.username), user.username
        assert user.display_name
        if user.role == "resident":
            assert kind_of[user.org_code] == "community_committee"
        if user.role == "provider_staff":
            assert kind_of[user.org_code] == "service_provider"
    usernames = [u.username for u in community.users]
    assert len(set(usernames)) == len(usernames)
    assert {"bureau.admin", "env.steward", "water.analyst", "city.dispatcher", "clinic-east.staff"} <= set(
        usernames
    )
    assert "resident.zhang" in usernames
    assert DEMO_PASSWORD == "zhishe-demo-2026"


def test_resident_logins_name_real_households(community: Community) -> None:
    households = {h.id: h for h in community.households}
    residents = [u for u in community.users if u.role == "resident"]
    assert len(residents) == 10
    for user in residents:
        assert user.household_id in households
        assert households[user.household_id].head_name == user.display_name


def test_buildings_and_households(community: Community) -> None:
    assert len(community.buildings) == 25
    assert len(community.households) == 2000
    building_ids = {b.id for b in community.buildings}
    assert all(h.building_id in building_ids for h in community.households)
    assert len({h.id for h in community.households}) == 2000
    assert len({(h.building_id, h.room) for h in community.households}) == 2000
    assert all(re.fullmatch(r"1\d\d\*{4}\d{4}", h.phone_masked) for h in community.households)
    for b in community.buildings:
        assert abs(b.lat - 39.90) < 0.01 and abs(b.lon - 116.41) < 0.01
    elderly_share = sum(h.is_elderly for h in community.households) / 2000
    assert 0.2 < elderly_share < 0.7


def test_at_least_a_dozen_datasets_with_owners_and_unique_slugs(community: Community) -> None:
    slugs = [d.slug for d in community.datasets]
    assert len(slugs) >= 12
    assert len(set(slugs)) == len(slugs)
    codes = {o.code for o in community.organisations}
    assert all(d.owner in codes for d in community.datasets)
    required = {
        "population-by-building",
        "household-register",
        "hotline-12345",
        "building-energy-monthly",
        "air-quality-hourly",
        "street-light-faults",
        "clinic-visits-daily",
        "elderly-residents",
        "electricity-demand-england-wales",
    }
    assert required <= set(slugs)


def test_every_sharing_class_and_classification_appears(community: Community) -> None:
    assert {d.sharing_class for d in community.datasets} == {"unconditional", "conditional", "not_shared"}
    used = {c.classification for d in community.datasets for c in d.columns}
    assert used == set(Classification)


def test_restricted_datasets_say_why_and_on_what_terms(community: Community) -> None:
    for d in community.datasets:
        if d.sharing_class == "not_shared":
            assert d.legal_basis and "个人信息保护法" in d.legal_basis
        if d.sharing_class == "conditional":
            assert d.sharing_conditions
    elderly = community.dataset("elderly-residents")
    with pytest.raises(ValueError, match="legal basis"):
        dataclasses.replace(elderly, legal_basis=None)


@pytest.mark.parametrize("slug", SLUGS)
def test_rows_have_exactly_the_arrow_schema_of_the_columns(community: Community, slug: str) -> None:
    d = community.dataset(slug)
    assert d.rows.schema.equals(arrow_schema(d.columns))
    assert d.rows.num_rows > 0
    if d.time_column is not None:
        assert d.rows.schema.field(d.time_column).type in (pa.date32(), pa.timestamp("us", tz="UTC"))


@pytest.mark.parametrize("slug", SLUGS)
def test_key_columns_identify_rows(community: Community, slug: str) -> None:
    d = community.dataset(slug)
    assert d.key_columns, f"{slug} has no key column"
    keys = list(zip(*(d.rows.column(name).to_pylist() for name in d.key_columns), strict=True))
    assert len(set(keys)) == len(keys)
    assert all(None not in key for key in keys)


@pytest.mark.parametrize("slug", SLUGS)
def test_metadata_is_complete(community: Community, slug: str) -> None:
    d = community.dataset(slug)
    for text in (d.title_zh, d.title_en, d.description_zh, d.description_en, d.contact, d.source, d.licence):
        assert text.strip()
    assert any(re.search(r"[\u4e00-\u9fff]", k) for k in d.keywords)
    assert any(k.isascii() for k in d.keywords)
    assert d.temporal_coverage[0] <= d.temporal_coverage[1] <= date(2026, 11, 1)
    assert all(c.description for c in d.columns)


def _parse(column_type: ColumnType, text: str) -> Any:
    if text == "":
        return None
    if column_type == ColumnType.INTEGER:
        return int(text)
    if column_type == ColumnType.DECIMAL:
        return float(text)
    if column_type == ColumnType.BOOLEAN:
        return {"true": True, "false": False}[text]
    if column_type == ColumnType.DATE:
        return date.fromisoformat(text)
    if column_type == ColumnType.DATETIME:
        value = datetime.fromisoformat(text)
        assert value.tzinfo is not None, f"naive datetime {text!r} in CSV"
        return value.astimezone(UTC)
    if column_type == ColumnType.POINT:
        lat, lon = text.split(",")
        return {"lat": float(lat), "lon": float(lon)}
    return text


@pytest.mark.parametrize("slug", SLUGS)
def test_csv_has_the_header_the_rows_and_the_same_values(community: Community, slug: str) -> None:
    d = community.dataset(slug)
    data = d.to_csv_bytes()
    lines = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    header, body = lines[0], lines[1:]
    assert header == [c.name for c in d.columns]
    assert len(body) == d.rows.num_rows == d.csv_rows_hint
    parsed = {c.name: [_parse(c.type, row[i]) for row in body] for i, c in enumerate(d.columns)}
    again = pa.Table.from_pydict(parsed, schema=arrow_schema(d.columns))
    assert again.equals(d.rows)


def test_the_taylor_series_is_the_real_one(community: Community) -> None:
    d = community.dataset("electricity-demand-england-wales")
    assert d.owner == "operator" and d.sharing_class == "unconditional"
    assert d.rows.num_rows == 4032
    times = d.rows.column("period_start").to_pylist()
    values = d.rows.column("demand_mw").to_pylist()
    assert times[0] == datetime(2000, 6, 4, 23, 0, tzinfo=UTC)  # 00:00 BST on Monday 5 June 2000
    assert times[-1] == datetime(2000, 8, 27, 22, 30, tzinfo=UTC)  # 23:30 BST on Sunday 27 August
    assert all(b - a == timedelta(minutes=30) for a, b in pairwise(times))
    assert values[:10] == [22262, 21756, 22247, 22759, 22549, 22313, 22128, 21860, 21751, 21336]
    assert values[-1] == 23132
    for needle in ("Taylor", "2003", "Operational Research Society", "forecast", "GPL-3", "pmdarima", "MIT"):
        assert needle in d.source
    csv_lines = d.to_csv_bytes().decode().splitlines()
    assert csv_lines[1] == "2000-06-05T00:00:00+01:00,22262"
    assert csv_lines[-1] == "2000-08-27T23:30:00+01:00,23132"
    source_md = (DATA_DIR / "SOURCE.md").read_text(encoding="utf-8")
    assert "GPL-3" in source_md and "MIT" in source_md and "4,032" in source_md
    assert (DATA_DIR / "taylor.csv").read_bytes().decode().splitlines()[1:] == csv_lines[1:]
    assert "pmdarima" not in sys.modules


def test_air_quality_has_deliberate_gaps(community: Community) -> None:
    d = community.dataset("air-quality-hourly")
    missing_hours = sum(hours for _, _, _, hours, kind in AIR_GAPS if kind == "rows")
    assert d.rows.num_rows == 2 * 60 * 24 - missing_hours
    assert d.rows.column("o3").null_count > 0
    assert d.rows.column("pm10").null_count > 0
    assert d.rows.column("aqi").null_count == 0


def test_iaqi_follows_the_breakpoints() -> None:
    assert iaqi("pm25", 0) == 0
    assert iaqi("pm25", 35) == 50
    assert iaqi("pm25", 75) == 100
    assert iaqi("pm25", 55) == 75
    assert iaqi("o3", 200) == 100
    assert iaqi("pm10", 1000) == 500


def test_hotline_is_busier_in_summer_than_in_winter(community: Community) -> None:
    d = community.dataset("hotline-12345")
    assert 2500 <= d.rows.num_rows <= 3500
    months = Counter(t.astimezone(UTC).month for t in d.rows.column("received_at").to_pylist())
    assert months[6] + months[7] + months[8] > 1.2 * (months[12] + months[1] + months[2])
    phone = next(c for c in d.columns if c.name == "caller_phone")
    assert phone.classification == Classification.PERSONAL


def test_energy_is_seasonal(community: Community) -> None:
    rows = community.dataset("building-energy-monthly").rows.to_pylist()
    assert len(rows) == 25 * 24
    by_month: Counter[int] = Counter()
    heat_by_month: Counter[int] = Counter()
    for row in rows:
        by_month[row["month"].month] += row["electricity_kwh"]
        heat_by_month[row["month"].month] += row["heat_gj"]
    assert by_month[7] > 1.3 * by_month[4]
    assert heat_by_month[7] == 0 and heat_by_month[1] > 0


def test_today_moves_every_relative_window() -> None:
    today = date(2025, 6, 1)
    small = build_community(5, households=60, today=today)
    for d in small.datasets:
        if d.slug != "electricity-demand-england-wales":
            assert d.temporal_coverage[1] < today, d.slug
    received = small.dataset("hotline-12345").rows.column("received_at").to_pylist()
    assert max(received) < datetime(2025, 6, 1, tzinfo=UTC)
    assert len(small.households) == 60


def test_households_must_be_positive() -> None:
    with pytest.raises(ValueError, match="households"):
        build_community(households=0)


def test_dataset_refuses_rows_that_do_not_match_its_columns(community: Community) -> None:
    d: DemoDataset = community.dataset("buildings")
    with pytest.raises(ValueError, match="does not match"):
        dataclasses.replace(d, rows=d.rows.drop_columns(["structure"]))
