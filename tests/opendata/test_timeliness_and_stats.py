"""Timeliness (overdue releases found once, owners told once, the overdue list and facet) and the
portal's statistics (usage counted per day and month, the public figures, and publishing them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from opendata.open_world import SHANGHAI, START, OpenWorld
from zhishe.core.notifications.models import Notification
from zhishe.opendata import portal, usage
from zhishe.opendata.models import OpenDataset, UsageDay


@pytest.fixture(autouse=True)
def _no_counts_from_other_tests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Usage counts wait in a per-process buffer keyed by dataset id; ids restart with each test's
    database, so counts an earlier test left unflushed must not land on this test's datasets. And
    no background flush: the tests flush when they want the counts stored."""
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 1e9)
    usage.forget()
    yield
    usage.forget()


DAILY_COLUMNS = [
    {"name": "day", "type": "date", "is_key": True, "classification": "public"},
    {"name": "level", "type": "decimal", "unit": "m", "classification": "public"},
]


def open_daily(ow: OpenWorld, slug: str = "river", **extra: Any) -> dict[str, Any]:
    """A public daily dataset, released once."""
    ow.create(
        slug, columns=DAILY_COLUMNS, title_zh="河道水位", title_en="River level", time_column="day",
        theme="water", **extra,
    )  # fmt: skip
    assert ow.upload(slug, b"day,level\n2026-09-16,1.5\n2026-09-17,1.7\n").status_code == 201
    return ow.release(slug)


def check(ow: OpenWorld) -> list[str]:
    """Run the timeliness check as the scheduler does: its own transaction."""
    ow.db.rollback()
    late = portal.check_timeliness(ow.db)
    ow.db.commit()
    return late


def told(ow: OpenWorld, kind: str = "opendata.overdue") -> list[tuple[str, str]]:
    ow.db.rollback()
    rows = ow.db.execute(select(Notification.user_id, Notification.link).where(Notification.kind == kind))
    names = {u.id: name for name, u in ow.users.items()}
    return sorted((names[user_id], link) for user_id, link in rows)


def overdue_slugs(ow: OpenWorld) -> list[str]:
    found = ow.client.get("/opendata/api/v1/datasets", params={"timeliness": "overdue"})
    assert found.status_code == 200
    return [h["slug"] for h in found.json()["items"]]


# -- timeliness ------------------------------------------------------------------------------------


def test_an_hourly_dataset_late_by_its_cadence_is_marked_once_and_its_owner_told_once(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    open_daily(ow)
    assert check(ow) == []
    assert overdue_slugs(ow) == []
    assert "none-overdue" in ow.client.get("/opendata/overdue").text

    ow.at(START + timedelta(minutes=59))
    assert check(ow) == []
    ow.at(START + timedelta(hours=1, minutes=1))  # the next hourly release was due at 11:00
    assert check(ow) == ["air"]
    assert check(ow) == []  # once
    ow.at(START + timedelta(hours=5))
    assert check(ow) == []  # still the same lateness: not told again
    link = "/opendata/datasets/air"
    assert told(ow) == [("env.admin", link), ("env.steward", link)]  # stewards and admins of the owner

    assert overdue_slugs(ow) == ["air"]
    facets = ow.client.get("/opendata/api/v1/datasets").json()["facets"]["timeliness"]
    assert facets == {"overdue": 1, "up_to_date": 1}
    page = ow.client.get("/opendata/overdue")
    assert page.status_code == 200 and 'id="overdue"' in page.text
    assert "/opendata/datasets/air" in page.text and "/opendata/datasets/river" not in page.text
    view = ow.client.get("/opendata/api/v1/datasets/air").json()
    assert view["overdue_days"] == 1
    ow.db.rollback()
    settings = ow.db.scalar(
        select(OpenDataset).where(OpenDataset.latest_release == 1, OpenDataset.cadence == "hourly")
    )
    assert settings is not None and settings.overdue_since == START + timedelta(hours=1, minutes=1)

    # a new release clears it; the next lateness is told again
    ow.release("air")
    assert overdue_slugs(ow) == []
    assert "none-overdue" in ow.client.get("/opendata/overdue").text
    assert check(ow) == []
    ow.db.rollback()
    ow.db.refresh(settings)
    assert settings.overdue_since is None
    ow.at(START + timedelta(hours=7))
    assert check(ow) == ["air"]
    assert len(told(ow)) == 4


def test_a_daily_dataset_is_overdue_the_day_after_its_release_is_due(ow: OpenWorld) -> None:
    open_daily(ow)
    ow.at(START + timedelta(days=1))
    assert check(ow) == [] and overdue_slugs(ow) == []
    ow.at(START + timedelta(days=1, seconds=1))
    assert check(ow) == ["river"]
    assert overdue_slugs(ow) == ["river"]
    ow.at(START + timedelta(days=3, hours=2))
    assert ow.client.get("/opendata/api/v1/datasets/river").json()["overdue_days"] == 3
    hit = ow.client.get("/opendata/api/v1/datasets", params={"timeliness": "overdue"}).json()["items"][0]
    assert hit["overdue_days"] == 3
    assert check(ow) == []
    assert told(ow) == [
        ("env.admin", "/opendata/datasets/river"),
        ("env.steward", "/opendata/datasets/river"),
    ]


def test_irregular_datasets_are_never_overdue(ow: OpenWorld) -> None:
    open_daily(ow)
    assert ow.configure("river", cadence="irregular").status_code == 200
    ow.at(START + timedelta(days=400))
    assert check(ow) == [] and overdue_slugs(ow) == []


def test_a_lateness_ended_by_a_slower_cadence_is_told_again_when_it_recurs(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    ow.at(START + timedelta(hours=2))
    assert check(ow) == ["air"]
    assert ow.configure("air", cadence="daily").status_code == 200  # no longer late
    assert overdue_slugs(ow) == []
    assert check(ow) == []
    ow.at(START + timedelta(days=1, hours=1))  # late again, now by the daily cadence
    assert check(ow) == ["air"]
    assert len(told(ow)) == 4  # two people, two latenesses


# -- usage and statistics -------------------------------------------------------------------------


def figures(ow: OpenWorld) -> dict[str, Any]:
    got = ow.client.get("/opendata/api/v1/statistics")
    assert got.status_code == 200
    return dict(got.json())


def usage_days(ow: OpenWorld) -> dict[date, tuple[int, int]]:
    ow.db.rollback()
    usage.flush()
    return {u.day: (u.downloads, u.api_calls) for u in ow.db.scalars(select(UsageDay))}


def test_downloads_and_api_calls_are_counted_per_day_and_month(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    for _ in range(3):
        assert ow.query(**{"$limit": "1"}).status_code == 200
    assert ow.client.get("/opendata/api/v1/datasets/air/download.csv").status_code == 200
    assert ow.query(**{"$where": "no such column = 1"}).status_code == 400  # a refused query is no call
    assert ow.client.get("/opendata/datasets/air").status_code == 200  # the page's preview is no call
    assert usage_days(ow) == {date(2026, 9, 18): (1, 3)}

    ow.at(datetime(2026, 9, 19, 9, 0, tzinfo=SHANGHAI))
    ow.query()
    ow.client.get("/opendata/api/v1/datasets/air/download.json")
    ow.client.get("/opendata/api/v1/datasets/air/download.csv", params={"version": 1})
    assert usage_days(ow) == {date(2026, 9, 18): (1, 3), date(2026, 9, 19): (2, 1)}

    ow.at(datetime(2026, 10, 2, 9, 0, tzinfo=SHANGHAI))
    ow.query()
    ow.query()
    shown = figures(ow)
    assert shown["downloads"] == 3 and shown["api_calls"] == 6
    months = {m["month"]: (m["downloads"], m["api_calls"], m["releases"]) for m in shown["per_month"]}
    assert months == {"2026-09": (3, 4, 1), "2026-10": (0, 2, 0)}
    view = ow.client.get("/opendata/api/v1/datasets/air").json()
    assert (view["downloads"], view["api_calls"]) == (3, 6)


def test_counts_not_yet_stored_are_shown_at_once_even_to_an_app(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    made = ow.client.post(
        "/api/v1/opendata/app-tokens", json={"name": "天气小程序"}, headers=ow.h("resident.li")
    )
    assert made.status_code == 201
    app = {"X-App-Token": made.json()["token"]}
    assert ow.query().status_code == 200
    assert ow.client.get("/opendata/api/v1/datasets/air/download.csv").status_code == 200
    assert usage.FLUSH_SECONDS > 1e6 and usage.pending()  # waiting in the buffer, not stored

    # the app token's use is written in the request's own transaction; reading the counts must
    # neither wait for that transaction (SQLite's single writer) nor miss the waiting counts
    started = time.monotonic()
    seen = ow.client.get("/opendata/api/v1/datasets/air", headers=app)
    assert time.monotonic() - started < 5
    assert seen.status_code == 200
    assert (seen.json()["downloads"], seen.json()["api_calls"]) == (1, 1)
    shown = ow.client.get("/opendata/api/v1/statistics", headers=app).json()
    assert (shown["downloads"], shown["api_calls"]) == (1, 1)
    assert shown["per_month"][0]["api_calls"] == 1
    # stored later, counted once
    assert usage_days(ow) == {date(2026, 9, 18): (1, 1)}
    assert figures(ow)["api_calls"] == 1
    assert ow.client.get("/opendata/api/v1/datasets/air/query.json", headers=app).status_code == 200
    assert ow.client.get("/opendata/api/v1/datasets/air").json()["api_calls"] == 2


def test_a_call_just_before_midnight_counts_on_its_own_day(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    usage.flush()
    ow.at(datetime(2026, 9, 30, 23, 59, 59, tzinfo=SHANGHAI))
    ow.query()
    ow.at(datetime(2026, 10, 1, 0, 0, 1, tzinfo=SHANGHAI))
    assert usage_days(ow) == {date(2026, 9, 30): (0, 1)}


def test_the_public_statistics_count_datasets_releases_and_requests(ow: OpenWorld) -> None:
    empty = figures(ow)
    assert empty["datasets_opened"] == 0 and empty["releases"] == 0 and empty["per_month"] == []
    assert empty["median_reply_hours"] is None
    assert empty["requests"] == {"open": 0, "answered": 0, "declined": 0, "overdue": 0}

    ow.open_air(hours=2)
    ow.release("air")
    open_daily(ow)
    ow.at(datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI))
    ow.release("river")
    filed = [
        ow.client.post(
            "/opendata/api/v1/requests",
            json={"title": f"r{n}", "description": "d", "owner_org_id": ow.env.id},
        ).json()["id"]
        for n in range(4)
    ]
    ow.at(datetime(2026, 10, 9, 16, 0, tzinfo=SHANGHAI))  # 6 hours later
    answer = {"dataset": "air"}
    assert (
        ow.client.post(
            f"/api/v1/opendata/requests/{filed[0]}/answer", json=answer, headers=ow.h("env.steward")
        ).status_code
        == 200
    )
    ow.at(datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI))  # 24 hours after filing
    decline = {"reason": "无"}
    assert (
        ow.client.post(
            f"/api/v1/opendata/requests/{filed[1]}/decline", json=decline, headers=ow.h("env.steward")
        ).status_code
        == 200
    )
    ow.at(datetime(2026, 10, 12, 10, 0, tzinfo=SHANGHAI))  # 48 hours after filing
    assert (
        ow.client.post(
            f"/api/v1/opendata/requests/{filed[2]}/answer", json=answer, headers=ow.h("env.steward")
        ).status_code
        == 200
    )

    ow.at(datetime(2026, 10, 30, 10, 0, tzinfo=SHANGHAI))  # the last request is past its deadline
    shown = figures(ow)
    assert shown["datasets_opened"] == 2 and shown["releases"] == 4
    assert shown["requests"] == {"open": 1, "answered": 2, "declined": 1, "overdue": 1}
    assert shown["requests_answered"] == 2
    assert shown["median_reply_hours"] == 24.0
    months = {m["month"]: (m["releases"], m["datasets_opened"]) for m in shown["per_month"]}
    assert months == {"2026-09": (3, 2), "2026-10": (1, 0)}
    page = ow.client.get("/opendata/statistics")
    assert page.status_code == 200 and "2026-10" in page.text


def test_publishing_the_figures_writes_three_bureau_datasets(ow: OpenWorld) -> None:
    ow.open_air(hours=2)
    ow.query()
    ow.client.get("/opendata/api/v1/datasets/air/download.csv")
    ow.client.post("/opendata/api/v1/requests", json={"title": "t", "description": "d"})

    for who in ("env.steward", "env.admin", "resident.li"):
        refused = ow.client.post("/api/v1/opendata/statistics/publish", headers=ow.h(who))
        assert refused.status_code == 403, who
    assert ow.client.post("/api/v1/opendata/statistics/publish").status_code == 401

    done = ow.client.post("/api/v1/opendata/statistics/publish", headers=ow.h("bureau.admin"))
    assert done.status_code == 200, done.text
    assert done.json() == {
        "opendata-releases-per-month": 0,
        "opendata-usage-per-month": 0,
        "opendata-requests": 0,
    }

    def rows(slug: str) -> list[dict[str, Any]]:
        got = ow.client.get(f"/api/v1/datasets/{slug}/rows", headers=ow.h("bureau.admin"))
        assert got.status_code == 200, got.text
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in got.json()["rows"]]

    assert rows("opendata-releases-per-month") == [{"month": "2026-09", "releases": 1, "datasets_opened": 1}]
    assert rows("opendata-usage-per-month") == [{"month": "2026-09", "downloads": 1, "api_calls": 1}]
    assert rows("opendata-requests") == [
        {"open": 1, "answered": 0, "declined": 0, "overdue": 0, "median_reply_hours": None}
    ]
    for slug in ("opendata-releases-per-month", "opendata-usage-per-month", "opendata-requests"):
        meta = ow.client.get(f"/api/v1/datasets/{slug}", headers=ow.h("bureau.admin")).json()
        assert meta["owner_org_id"] == ow.bureau.id and meta["sharing_class"] == "unconditional"

    # published again a month later (the counts were stored in the meantime): both months
    usage_days(ow)
    ow.at(datetime(2026, 10, 20, 10, 0, tzinfo=SHANGHAI))
    ow.query()
    again = ow.client.post("/api/v1/opendata/statistics/publish", headers=ow.h("bureau.admin"))
    assert again.status_code == 200
    assert again.json()["opendata-usage-per-month"] == 1
    assert rows("opendata-usage-per-month") == [
        {"month": "2026-09", "downloads": 1, "api_calls": 1},
        {"month": "2026-10", "downloads": 0, "api_calls": 1},
    ]
