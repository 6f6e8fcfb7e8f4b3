"""The world itself works: a dataset opened, released and queried."""

from __future__ import annotations

from opendata.open_world import OpenWorld


def test_a_released_dataset_answers_a_query(ow: OpenWorld) -> None:
    release = ow.open_air()
    assert release["number"] == 1 and release["state"] == "published"
    answer = ow.query(**{"$limit": "5", "$order": "observed_at"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == 144 and len(body["rows"]) == 5
    assert "reporter_phone" not in body["rows"][0]
