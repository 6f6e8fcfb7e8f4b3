"""Open311 api_keys: made, listed and revoked by an organisation's administrators (audited), stored
only as a hash; and each key's rate limit on posts (429 past ``per_minute``)."""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from helpers import bearer
from participation.pworld import API_KEY, ParticipationWorld
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Forbidden, Invalid, NotFound
from zhishe.core.ratelimit import MemoryLimiter
from zhishe.participation import apikeys
from zhishe.participation.models import ApiKey, Request

POST = {
    "service_code": "leak",
    "address_string": "3号楼地下室",
    "description": "水管漏水",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    apikeys.reset_limits()
    yield
    apikeys.reset_limits()


class _Clock:
    """A limiter clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _audit(pw: ParticipationWorld, action: str) -> int:
    return int(pw.session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def _requests(pw: ParticipationWorld) -> int:
    return int(pw.session.scalar(select(func.count()).select_from(Request)) or 0)


def test_an_admin_makes_a_key_shown_once_and_stored_as_a_hash(client: Any, pw: ParticipationWorld) -> None:
    headers = bearer(pw.session, pw.users["city-head"])
    answer = client.post(
        "/api/v1/participation/api-keys",
        json={"org_id": pw.orgs["city"].id, "name": "城管 app", "per_minute": 120},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    raw = body["api_key"]
    assert raw.startswith("zhishe_311_") and len(raw) > 40
    assert body["prefix"] == raw[:16] and body["per_minute"] == 120 and body["revoked_at"] is None
    stored = pw.session.get(ApiKey, body["id"])
    assert stored is not None
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.key_hash, stored.prefix, stored.name}
    assert _audit(pw, "participation.api_key.create") == 1
    filed = client.post("/open311/v2/requests.json", data={"api_key": raw, **POST})
    assert filed.status_code == 201, filed.text

    listed = client.get(f"/api/v1/participation/api-keys?org_id={pw.orgs['city'].id}", headers=headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()] == [body["id"]]
    assert "api_key" not in listed.json()[0] and raw not in listed.text
    assert _audit(pw, "participation.api_key.list") == 1


def test_only_admins_of_the_organisation_or_the_platform_manage_its_keys(
    client: Any, pw: ParticipationWorld
) -> None:
    city = pw.orgs["city"].id
    for username in ("water-head", "city-lead", "res1"):
        answer = client.post(
            "/api/v1/participation/api-keys",
            json={"org_id": city, "name": "x"},
            headers=bearer(pw.session, pw.users[username]),
        )
        assert answer.status_code == 403, username
        listed = client.get(
            f"/api/v1/participation/api-keys?org_id={city}", headers=bearer(pw.session, pw.users[username])
        )
        assert listed.status_code == 403
    assert (
        client.post("/api/v1/participation/api-keys", json={"org_id": city, "name": "x"}).status_code == 401
    )
    by_bureau = client.post(
        "/api/v1/participation/api-keys",
        json={"org_id": city, "name": "bureau-made"},
        headers=bearer(pw.session, pw.users["bureau-admin"]),
    )
    assert by_bureau.status_code == 201
    read_only = bearer(pw.session, pw.users["city-head"], scopes=["accounts:read"])
    assert (
        client.post(
            "/api/v1/participation/api-keys", json={"org_id": city, "name": "x"}, headers=read_only
        ).status_code
        == 403
    )
    assert pw.session.scalar(select(func.count()).select_from(ApiKey)) == 2  # the world's and the bureau's


def test_bad_key_requests_are_refused_naming_the_field(client: Any, pw: ParticipationWorld) -> None:
    headers = bearer(pw.session, pw.users["bureau-admin"])
    for body, status in (
        ({"org_id": pw.orgs["city"].id, "name": ""}, 422),
        ({"org_id": pw.orgs["city"].id, "name": "x", "per_minute": 0}, 422),
        ({"org_id": 999999, "name": "x"}, 404),
        ({"name": "x"}, 422),
    ):
        assert client.post("/api/v1/participation/api-keys", json=body, headers=headers).status_code == status
    admin = pw.actor("bureau-admin")
    with pytest.raises(Invalid) as too_fast:
        apikeys.create_key(session=pw.session, actor=admin, org_id=pw.orgs["op"].id, name="x", per_minute=0)
    assert too_fast.value.detail == {"field": "per_minute"}
    with pytest.raises(Invalid) as unnamed:
        apikeys.create_key(session=pw.session, actor=admin, org_id=pw.orgs["op"].id, name="   ")
    assert unnamed.value.detail == {"field": "name"}
    key, _raw = apikeys.create_key(session=pw.session, actor=admin, org_id=pw.orgs["op"].id, name="default")
    assert key.per_minute == 60  # ZHISHE_OPEN311_PER_MINUTE


def test_a_revoked_key_is_refused_at_once(client: Any, pw: ParticipationWorld) -> None:
    assert client.post("/open311/v2/requests.json", data={"api_key": API_KEY, **POST}).status_code == 201
    assert pw.api_key is not None
    key_id = pw.api_key.id
    assert (
        client.delete(
            f"/api/v1/participation/api-keys/{key_id}", headers=bearer(pw.session, pw.users["city-head"])
        ).status_code
        == 403
    )  # another organisation's key
    headers = bearer(pw.session, pw.users["bureau-admin"])
    assert client.delete(f"/api/v1/participation/api-keys/{key_id}", headers=headers).status_code == 204
    assert _audit(pw, "participation.api_key.revoke") == 1
    refused = client.post("/open311/v2/requests.json", data={"api_key": API_KEY, **POST})
    assert refused.status_code == 403 and "api_key" in refused.json()[0]["description"]
    assert client.delete(f"/api/v1/participation/api-keys/{key_id}", headers=headers).status_code == 409
    assert client.delete("/api/v1/participation/api-keys/999999", headers=headers).status_code == 404


def test_verify_names_the_parameter(pw: ParticipationWorld) -> None:
    assert apikeys.verify(session=pw.session, raw=API_KEY).id == pw.api_key.id  # type: ignore[union-attr]
    for raw in ("", "zhishe_311_nope", API_KEY + "x"):
        with pytest.raises(Forbidden) as refused:
            apikeys.verify(session=pw.session, raw=raw)
        assert refused.value.detail == {"parameter": "api_key"}
    with pytest.raises(NotFound):
        apikeys.revoke_key(session=pw.session, actor=pw.actor("bureau-admin"), key_id=424242)


def test_a_thousand_posts_in_a_minute_are_cut_off_after_per_minute(
    client: Any, pw: ParticipationWorld
) -> None:
    limiter_clock = _Clock()
    apikeys.reset_limits(MemoryLimiter(clock=limiter_clock))
    key, raw = apikeys.create_key(
        session=pw.session,
        actor=pw.actor("bureau-admin"),
        org_id=pw.orgs["op"].id,
        name="small",
        per_minute=5,
    )
    pw.session.commit()
    statuses: list[int] = []
    for number in range(1000):
        answer = client.post("/open311/v2/requests.json", data={"api_key": raw, **POST})
        statuses.append(answer.status_code)
        if answer.status_code == 429 and number == 999:
            (error,) = answer.json()
            assert error == {"code": 429, "description": error["description"]}
            assert 1 <= int(answer.headers["retry-after"]) <= 12  # one post every 60/5 seconds
        limiter_clock.now += 0.05  # 1,000 posts in 50 seconds
    assert statuses[:5] == [201] * 5
    assert statuses.count(201) == 5 + 4  # and one more every 12 s of the 50: at 12, 24, 36 and 48 s
    assert set(statuses) == {201, 429}
    assert _requests(pw) == 9
    xml = client.post("/open311/v2/requests.xml", data={"api_key": raw, **POST})
    assert xml.status_code == 429
    assert ET.fromstring(xml.content).findtext("error/code") == "429"
    other = client.post("/open311/v2/requests.json", data={"api_key": API_KEY, **POST})
    assert other.status_code == 201  # each key has its own budget
    limiter_clock.now += 60
    assert client.post("/open311/v2/requests.json", data={"api_key": raw, **POST}).status_code == 201
    assert key.per_minute == 5


def test_rapid_posts_on_the_real_clock_stop_at_the_budget(client: Any, pw: ParticipationWorld) -> None:
    _key, raw = apikeys.create_key(
        session=pw.session,
        actor=pw.actor("bureau-admin"),
        org_id=pw.orgs["op"].id,
        name="real",
        per_minute=20,
    )
    pw.session.commit()
    started = time.monotonic()
    statuses = [
        client.post("/open311/v2/requests.json", data={"api_key": raw, **POST}).status_code
        for _ in range(300)
    ]
    elapsed = time.monotonic() - started
    accepted = statuses.count(201)
    # a burst of 20, then one every 3 s at most
    assert 20 <= accepted <= 20 + int(elapsed / 3) + 1, (accepted, elapsed)
    assert statuses[:20] == [201] * 20
    assert statuses.count(429) == 300 - accepted
    assert _requests(pw) == accepted
