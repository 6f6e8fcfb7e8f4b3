"""Portal search: Chinese by bigrams, English by word prefixes, ranking, and facets whose counts
honour the other chosen facets; through the public API and the service."""

from __future__ import annotations

from typing import Any

import pytest

from opendata.open_world import REGISTER_POLICY, OpenWorld
from zhishe.opendata import portal

SEARCH = "/opendata/api/v1/datasets"

RIVER_COLUMNS = [
    {"name": "day", "type": "date", "is_key": True, "classification": "public"},
    {"name": "level", "type": "decimal", "unit": "m", "classification": "public", "description": "日均水位"},
    {"name": "gauge_keeper", "type": "string", "classification": "personal"},
]
TAP_COLUMNS = [
    {"name": "sampled_on", "type": "date", "is_key": True, "classification": "public"},
    {"name": "turbidity", "type": "decimal", "unit": "NTU", "classification": "public"},
]


@pytest.fixture()
def portal_world(ow: OpenWorld) -> OpenWorld:
    """Four open datasets of three publishers and three themes, and one that is not open."""
    ow.open_air(hours=2)  # 空气质量, 生态环境局, environment, hourly, with a point column
    ow.create(
        "river", columns=RIVER_COLUMNS, title_zh="河道水位", title_en="River levels", theme="water",
        description_zh="主要河道每日水位观测", keywords=["防汛", "水文"], time_column="day",
    )  # fmt: skip
    assert ow.upload("river", "day,level,gauge_keeper\n2026-09-17,1.5,张三\n".encode()).status_code == 201
    assert ow.configure("river", policy={"columns": {"gauge_keeper": "drop"}}).status_code == 200
    ow.release("river")
    ow.create(
        "tap-water", who="water.steward", columns=TAP_COLUMNS, title_zh="饮用水水质", title_en="Drinking water",
        theme="water", description_en="Turbidity of tap water at the plants", accrual_periodicity="monthly",
    )  # fmt: skip
    assert (
        ow.upload("tap-water", b"sampled_on,turbidity\n2026-09-01,0.3\n", who="water.steward").status_code
        == 201
    )
    ow.release("tap-water", who="water.steward")
    ow.register(households=20)
    assert ow.configure("register", who="police.steward", policy=REGISTER_POLICY).status_code == 200
    ow.release("register", who="police.steward")
    ow.create("noise", title_zh="噪声监测", title_en="Noise", theme="environment")  # never opened
    return ow


def slugs(ow: OpenWorld, **params: Any) -> list[str]:
    found = ow.client.get(SEARCH, params=params)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == len(body["items"])
    return [h["slug"] for h in body["items"]]


def facets(ow: OpenWorld, **params: Any) -> dict[str, dict[str, int]]:
    return dict(ow.client.get(SEARCH, params=params).json()["facets"])


def test_chinese_words_find_the_dataset_by_bigrams(portal_world: OpenWorld) -> None:
    ow = portal_world
    assert slugs(ow, q="空气") == ["air"]
    assert slugs(ow, q="质量") == ["air"]
    assert slugs(ow, q="空气质量") == ["air"]
    assert slugs(ow, q="空气质量监测") == ["air"]  # three of five bigrams: enough
    assert slugs(ow, q="火箭") == []  # in no text at all
    assert slugs(ow, q="量空") == []  # the characters are there, not the bigram
    assert slugs(ow, q="噪声") == []  # not open
    assert slugs(ow, q="水位") == ["river"]
    assert slugs(ow, q="防汛") == ["river"]  # a keyword
    assert slugs(ow, q="观测") == ["river"]  # the description
    assert slugs(ow, q="公安") == ["register"]  # the publisher
    assert slugs(ow, q="户籍") == ["register"]


def test_a_one_character_query_finds_texts_holding_it(portal_world: OpenWorld) -> None:
    ow = portal_world
    assert set(slugs(ow, q="水")) == {"tap-water", "river"}  # 饮用水水质, 河道水位
    assert slugs(ow, q="气") == ["air"]
    assert slugs(ow, q="鲸") == []


def test_titles_rank_above_descriptions(portal_world: OpenWorld) -> None:
    ow = portal_world
    # 水文 is a keyword of river; 水质 is in the title of tap-water
    found = slugs(ow, q="水质 水文")
    assert found == []  # each of two bigrams in a different dataset: neither has 60 %
    assert slugs(ow, q="水位观测") == ["river"]
    ow.create(
        "levels-report", title_zh="年度报告", title_en="Annual report", theme="water",
        description_zh="含河道水位的年度汇总",
        columns=[{"name": "year", "type": "integer", "is_key": True, "classification": "public"}],
    )  # fmt: skip
    assert ow.upload("levels-report", b"year\n2025\n").status_code == 201
    ow.release("levels-report")
    assert slugs(ow, q="河道水位") == ["river", "levels-report"]


def test_english_words_match_whole_words_or_their_beginnings(portal_world: OpenWorld) -> None:
    ow = portal_world
    assert slugs(ow, q="air") == ["air"]
    assert slugs(ow, q="Quality") == ["air"]
    assert slugs(ow, q="qual") == ["air"]  # a prefix
    assert slugs(ow, q="uality") == []  # not the middle of a word
    assert slugs(ow, q="turbidity") == ["tap-water"]  # a column name
    assert slugs(ow, q="plants") == ["tap-water"]  # the English description
    assert slugs(ow, q="water drinking") == ["tap-water"]  # every word must match
    assert slugs(ow, q="water rocket") == []
    assert set(slugs(ow, q="water")) == {"tap-water", "river"}  # river's theme is water
    assert slugs(ow, q="pm25") == ["air"]
    assert slugs(ow, q="空气 air") == ["air"]
    assert slugs(ow, q="空气 river") == []


def test_unpublished_columns_are_not_searchable(portal_world: OpenWorld) -> None:
    ow = portal_world
    assert slugs(ow, q="phone") == []  # air's reporter_phone was dropped from every release
    assert slugs(ow, q="keeper") == []  # so was river's gauge_keeper
    assert slugs(ow, q="head_name") == []  # the register's names are dropped
    assert slugs(ow, q="subsidy") == ["register"]  # kept, as a sensitive attribute
    assert slugs(ow, q="日均水位") == ["river"]  # a published column's description


def test_facets_count_within_the_other_chosen_facets(portal_world: OpenWorld) -> None:
    ow = portal_world
    everything = facets(ow)
    assert everything["theme"] == {"environment": 1, "water": 2, "population": 1}
    assert everything["publisher"] == {"生态环境局": 2, "水务局": 1, "公安分局": 1}
    assert everything["format"]["csv"] == 4 and everything["format"]["geojson"] == 1
    assert everything["cadence"] == {"hourly": 1, "daily": 2, "monthly": 1}
    assert everything["timeliness"] == {"up_to_date": 4}

    water = ow.client.get(SEARCH, params={"theme": "water"}).json()
    assert {h["slug"] for h in water["items"]} == {"river", "tap-water"}
    # the theme facet still shows every theme (it ignores its own choice) ...
    assert water["facets"]["theme"] == {"environment": 1, "water": 2, "population": 1}
    # ... the others count within water
    assert water["facets"]["publisher"] == {"生态环境局": 1, "水务局": 1}
    assert water["facets"]["cadence"] == {"daily": 1, "monthly": 1}
    assert "geojson" not in water["facets"]["format"]

    both = ow.client.get(SEARCH, params={"theme": "water", "publisher": "生态环境局"}).json()
    assert [h["slug"] for h in both["items"]] == ["river"]
    assert both["facets"]["theme"] == {"environment": 1, "water": 1}  # within 生态环境局
    assert both["facets"]["publisher"] == {"生态环境局": 1, "水务局": 1}  # within water

    # the text query applies to every facet
    queried = facets(ow, q="水")
    assert queried["theme"] == {"water": 2}
    assert slugs(ow, format="geojson") == ["air"]
    assert slugs(ow, cadence="monthly", theme="environment") == []
    assert facets(ow, cadence="monthly", theme="environment")["theme"] == {"water": 1}


def test_english_visitors_see_english_publishers(portal_world: OpenWorld) -> None:
    ow = portal_world
    found = ow.client.get(SEARCH, params={"q": "空气", "lang": "en"}).json()
    (hit,) = found["items"]
    assert hit["title"] == "Air quality" and hit["publisher"] == "dept-env"
    assert found["facets"]["publisher"] == {"dept-env": 1}
    assert set(slugs(ow, publisher="dept-env", lang="en")) == {"air", "river"}


def test_bad_facet_values_are_refused(portal_world: OpenWorld) -> None:
    ow = portal_world
    assert ow.client.get(SEARCH, params={"timeliness": "late"}).status_code == 422
    assert ow.client.get(SEARCH, params={"q": "水" * 201}).status_code == 422
    assert slugs(ow, theme="nonexistent") == []


def test_the_service_and_the_catalog_page_agree_with_the_api(portal_world: OpenWorld) -> None:
    ow = portal_world
    ow.db.rollback()
    hits, counts = portal.search(session=ow.db, q="水", theme="water")
    assert [h.opened.dataset.slug for h in hits] == slugs(ow, q="水", theme="water")
    assert counts["publisher"] == {"生态环境局": 1, "水务局": 1}
    assert all(h.score > 0 for h in hits) and hits[0].score >= hits[-1].score
    assert hits[0].formats == ("csv", "json", "ndjson", "parquet", "xlsx")
    page = ow.client.get("/opendata/datasets", params={"q": "空气"})
    assert page.status_code == 200
    assert "/opendata/datasets/air" in page.text and "/opendata/datasets/river" not in page.text
    with pytest.raises(Exception, match="200 characters"):
        portal.search(session=ow.db, q="x" * 201)
