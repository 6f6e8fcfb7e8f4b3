"""Queries read times in the platform timezone: naive literals, day boundaries and answers."""

from __future__ import annotations

from opendata.open_world import OpenWorld


def test_naive_times_and_days_are_those_of_the_platform_timezone(ow: OpenWorld) -> None:
    ow.open_air(hours=48)  # 3 stations x 48 hours from 2026-09-01 00:00 Shanghai
    later = ow.query(**{"$where": "observed_at >= '2026-09-02'", "$limit": "1", "$order": "observed_at"})
    assert later.status_code == 200, later.text
    assert later.json()["total"] == 72  # the second Shanghai day, not from 08:00 on
    assert later.json()["rows"][0]["observed_at"] == "2026-09-02T00:00:00+08:00"
    days = ow.query(
        **{"$select": "date_trunc_ymd(observed_at) AS day, count(*) AS n", "$group": "day", "$order": "day"}
    ).json()["rows"]
    assert [row["n"] for row in days] == [72, 72]
    assert days[0]["day"].startswith("2026-09-01T00:00:00+08:00")
