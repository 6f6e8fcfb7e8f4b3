"""The privacy gate, end to end through the API: what may be opened, how, and by whom.

Every k-anonymous release is read back through the public query API or the download and checked
with pycanon, an independent implementation of k-anonymity and l-diversity.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select

from opendata.open_world import REGISTER_POLICY, VISITS_POLICY, OpenWorld, air_csv
from opendata.privacy.pycanon_check import assert_k_anonymous
from zhishe.catalog.models import Dataset
from zhishe.core.audit.models import AuditEvent
from zhishe.core.config import get_settings, reset_settings
from zhishe.opendata.privacy.rules import pseudonym

REGISTER_QIS = ["building_id", "head_gender", "head_birth_year", "household_size"]


def rows_of(ow: OpenWorld, slug: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a published release through the public query API."""
    answer = ow.query(slug, **{"$limit": "5000", **params})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["rows"])
    return list(body["rows"])


def downloaded(ow: OpenWorld, slug: str, **params: Any) -> list[dict[str, str]]:
    """Every row of a published release through the CSV download."""
    got = ow.client.get(f"/opendata/api/v1/datasets/{slug}/download.csv", params=params)
    assert got.status_code == 200, got.text
    return list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))


def error(response: Any) -> str:
    return str(response.json()["error"]["message"])


def audit(ow: OpenWorld, action: str) -> list[AuditEvent]:
    ow.db.rollback()  # see what the requests committed
    return list(ow.db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def dataset_id(ow: OpenWorld, slug: str) -> int:
    ow.db.rollback()
    found = ow.db.scalar(select(Dataset.id).where(Dataset.slug == slug))
    assert found is not None
    return int(found)


def opened_register(ow: OpenWorld, households: int = 120, **policy_model: Any) -> None:
    ow.register(households)
    policy = json.loads(json.dumps(REGISTER_POLICY))
    policy["model"].update(policy_model)
    configured = ow.configure("register", who="police.steward", policy=policy)
    assert configured.status_code == 200, configured.text


# -- k-anonymity ------------------------------------------------------------------------------------


def test_the_97_year_old_is_generalised_until_every_class_has_k_households(ow: OpenWorld) -> None:
    opened_register(ow)
    release = ow.release("register", who="police.steward")
    assert release["model"] == "k_anonymity"
    risk = release["risk"]
    assert risk["meets_policy"] is True and risk["reasons"] == []
    assert risk["k"] == 5 and risk["smallest_class"] >= 5 and risk["l_diversity"] >= 2
    assert release["row_count"] + risk["suppressed"] == 120

    rows = rows_of(ow, "register")
    assert len(rows) == release["row_count"]
    assert set(rows[0]) == {*REGISTER_QIS, "household_id", "receives_subsidy"}  # head_name dropped
    table = pa.Table.from_pylist(rows)
    assert_k_anonymous(table, REGISTER_QIS, 5, sensitive=["receives_subsidy"], l=2)

    years = {r["head_birth_year"] for r in rows}
    assert "1929" not in years  # the only head born in 1929 is not shown as such
    covering = [
        r for r in rows if r["head_birth_year"] is not None and r["head_birth_year"].startswith("1929")
    ]
    assert covering, years  # the oldest is released inside a wider range
    assert all(r["head_birth_year"] != "1929" and "-" in r["head_birth_year"] for r in covering)
    assert all(r["building_id"] == "B01" for r in covering)  # the building is kept, the year widened
    label = covering[0]["head_birth_year"]
    same_class = [
        r for r in rows if all(r[q] == covering[0][q] for q in REGISTER_QIS) and r["head_birth_year"] == label
    ]
    assert len(same_class) >= 5
    # no name, no household number
    assert not any(str(r["household_id"]).startswith("H0") for r in rows)

    # the download is the same release, and k-anonymous too
    csv_rows = downloaded(ow, "register")
    assert len(csv_rows) == len(rows)
    assert_k_anonymous(pa.Table.from_pylist(csv_rows), REGISTER_QIS, 5)
    assert "1929" not in {r["head_birth_year"] for r in csv_rows}


def test_a_larger_k_widens_the_classes_and_still_holds(ow: OpenWorld) -> None:
    opened_register(ow, k=12)
    release = ow.release("register", who="police.steward")
    assert release["risk"]["smallest_class"] >= 12
    rows = rows_of(ow, "register")
    assert_k_anonymous(pa.Table.from_pylist(rows), REGISTER_QIS, 12, sensitive=["receives_subsidy"], l=2)
    assert "1929" not in {r["head_birth_year"] for r in rows}


AREAS = [
    ("D1", "", "district", "东城区"),
    ("S1", "D1", "subdistrict", "东四街道"),
    ("C1", "S1", "community", "东四社区"),
    ("C2", "S1", "community", "钱粮社区"),
    ("B01", "C1", "building", "1号楼"),
    ("B02", "C1", "building", "2号楼"),
    ("B03", "C2", "building", "1号楼"),  # the same name in another community
    ("B04", "C2", "building", "4号楼"),
]


def import_areas(ow: OpenWorld) -> None:
    from zhishe.core.areas import service as areas
    from zhishe.core.auth import system_actor

    ow.db.rollback()
    rows = [areas.AreaRow(code=c, parent=p, level=lv, name_zh=n) for c, p, lv, n in AREAS]
    areas.import_rows(session=ow.db, actor=system_actor("test"), rows=rows)
    ow.db.commit()


def test_buildings_are_generalised_to_communities_through_the_area_list(ow: OpenWorld) -> None:
    import_areas(ow)
    ow.register(households=60)
    policy = json.loads(json.dumps(REGISTER_POLICY))
    policy["columns"]["building_id"] = {
        "rule": "generalise",
        "method": "hierarchy",
        "hierarchy": "areas.building",
        "level": "community",
    }
    assert ow.configure("register", who="police.steward", policy=policy).status_code == 200
    release = ow.release("register", who="police.steward")
    assert release["risk"]["meets_policy"] is True
    rows = rows_of(ow, "register")
    assert len(rows) == 60
    assert {r["building_id"] for r in rows} <= {"东四社区", "钱粮社区", "东四街道", "东城区", "*"}
    assert "东四社区" in {r["building_id"] for r in rows}
    assert_k_anonymous(pa.Table.from_pylist(rows), REGISTER_QIS, 5, sensitive=["receives_subsidy"], l=2)
    assert "1929" not in {r["head_birth_year"] for r in rows}


def test_an_ambiguous_area_name_is_not_generalised_to_a_guess(ow: OpenWorld) -> None:
    import_areas(ow)
    ow.create(
        "repairs",
        columns=[
            {"name": "id", "type": "integer", "is_key": True, "classification": "public"},
            {"name": "building", "type": "string", "classification": "public"},
        ],
        title_zh="报修",
    )
    data = "id,building\n" + "".join(f"{i},{'1号楼' if i % 2 else '4号楼'}\n" for i in range(10))
    assert ow.upload("repairs", data.encode()).status_code == 201
    policy = {
        "columns": {
            "building": {
                "rule": "generalise",
                "method": "hierarchy",
                "hierarchy": "areas.building",
                "level": 1,
            }
        }
    }
    refused = ow.draft("repairs", policy=policy)
    # 1号楼 is in two communities: refused, naming it, rather than put in either of them
    assert refused.status_code == 422, refused.text
    assert "1号楼" in error(refused) and "4号楼" not in error(refused)
    # codes are never ambiguous
    coded = "id,building\n" + "".join(f"{i},{'B01' if i % 2 else 'B03'}\n" for i in range(10))
    assert ow.upload("repairs", coded.encode(), mode="replace").status_code == 201
    ow.release("repairs", policy=policy)
    assert sorted({r["building"] for r in rows_of(ow, "repairs")}) == ["东四社区", "钱粮社区"]


# -- refusals of the policy -------------------------------------------------------------------------


def test_a_personal_column_without_a_rule_is_refused_naming_it(ow: OpenWorld) -> None:
    ow.air(hours=2)
    refused = ow.draft("air", policy={"columns": {}})
    assert refused.status_code == 422, refused.text
    assert "reporter_phone" in error(refused)
    assert refused.json()["error"]["detail"]["columns"] == ["reporter_phone"]

    ow.register(households=20)
    refused = ow.draft("register", who="police.steward", policy={"model": REGISTER_POLICY["model"]})
    assert refused.status_code == 422
    named = refused.json()["error"]["detail"]["columns"]
    assert named == ["head_name", "head_gender", "head_birth_year", "receives_subsidy"]
    for column in named:
        assert column in error(refused)
    assert ow.query("register").status_code == 404  # nothing was opened


def test_keeping_a_personal_column_outside_the_model_is_refused(ow: OpenWorld) -> None:
    ow.air(hours=2)
    kept = ow.draft("air", policy={"columns": {"reporter_phone": "keep"}})
    assert kept.status_code == 422, kept.text
    assert "reporter_phone" in error(kept) and "quasi-identifiers" in error(kept)

    ow.register(households=20)
    policy = json.loads(json.dumps(REGISTER_POLICY))
    policy["columns"]["head_name"] = "keep"  # neither a quasi-identifier nor sensitive
    kept = ow.draft("register", who="police.steward", policy=policy)
    assert kept.status_code == 422
    assert kept.json()["error"]["detail"]["columns"] == ["head_name"]

    # a personal column kept without a model at all is refused too
    policy = {"columns": {**REGISTER_POLICY["columns"], "head_name": "drop"}, "model": {"type": "none"}}
    assert ow.draft("register", who="police.steward", policy=policy).status_code == 422


def test_a_conditional_dataset_needs_a_privacy_model(ow: OpenWorld) -> None:
    ow.register(households=20)
    policy = {
        "columns": {
            "household_id": "pseudonymise",
            "head_name": "drop",
            "head_gender": "drop",
            "head_birth_year": "drop",
            "receives_subsidy": "drop",
        },
        "model": {"type": "none"},
    }
    assert ow.configure("register", who="police.steward", policy=policy).status_code == 200
    refused = ow.draft("register", who="police.steward")
    assert refused.status_code == 422
    assert "shared on conditions" in error(refused)
    assert refused.json()["error"]["detail"]["field"] == "model"


def test_a_dataset_that_is_not_shared_cannot_be_opened(ow: OpenWorld) -> None:
    ow.create(
        "secret",
        columns=[{"name": "station", "type": "string", "is_key": True, "classification": "internal"}],
        sharing_class="not_shared",
        legal_basis="《数据安全法》第二十一条",
    )
    assert ow.upload("secret", b"station\nA\nB\n").status_code == 201
    refused = ow.draft("secret", policy={"columns": {"station": "drop"}})
    assert refused.status_code == 422
    assert "not shared" in error(refused) and "secret" in error(refused)
    refused = ow.draft("secret", who="bureau.admin")  # not even the bureau
    assert refused.status_code == 422
    assert ow.query("secret").status_code == 404


# -- differential privacy ---------------------------------------------------------------------------


def test_dp_releases_spend_the_budget_until_it_is_gone(ow: OpenWorld) -> None:
    ow.visits()
    assert (
        ow.configure("visits", who="clinic.steward", policy=VISITS_POLICY, dp_budget=1.0).status_code == 200
    )

    first = ow.draft("visits", who="clinic.steward")
    assert first.status_code == 201, first.text
    risk = first.json()["risk"]
    assert first.json()["epsilon"] == pytest.approx(0.5)
    assert risk["epsilon_spent"] == pytest.approx(0.5) and risk["epsilon_remaining"] == pytest.approx(0.5)
    assert first.json()["row_count"] == 2  # 2026-08 × {ili, gastro}
    published = ow.publish(first.json()["id"], who="clinic.steward")
    assert published.status_code == 200
    public = ow.client.get("/opendata/api/v1/datasets/visits/releases/1").json()
    assert public["risk"]["epsilon_spent"] == pytest.approx(0.5)
    rows = rows_of(ow, "visits")
    assert sorted(r["syndrome"] for r in rows) == ["gastro", "ili"]
    assert {r["visit_date"] for r in rows} == {"2026-08"}

    # a discarded draft still spent its ε
    second = ow.draft("visits", who="clinic.steward")
    assert second.status_code == 201
    assert second.json()["risk"]["epsilon_spent"] == pytest.approx(1.0)
    assert second.json()["risk"]["epsilon_remaining"] == pytest.approx(0.0)
    gone = ow.client.delete(
        f"/api/v1/opendata/releases/{second.json()['id']}", headers=ow.h("clinic.steward")
    )
    assert gone.status_code == 204
    settings = ow.client.get("/api/v1/opendata/datasets/visits/settings", headers=ow.h("clinic.steward"))
    assert settings.json()["dp_spent"] == pytest.approx(1.0) and settings.json()["dp_budget"] == 1.0

    refused = ow.draft("visits", who="clinic.steward")
    assert refused.status_code == 422
    message = error(refused)
    assert "privacy budget" in message and "visits" in message and "0.5" in message
    detail = refused.json()["error"]["detail"]
    assert detail["budget"] == 1.0 and detail["spent"] == pytest.approx(1.0)

    lowered = ow.configure("visits", who="clinic.steward", dp_budget=0.75)
    assert lowered.status_code == 422
    assert "already spent" in error(lowered)
    raised = ow.configure("visits", who="clinic.steward", dp_budget=1.5)
    assert raised.status_code == 200 and raised.json()["dp_budget"] == 1.5
    third = ow.draft("visits", who="clinic.steward")
    assert third.status_code == 201
    assert third.json()["risk"]["epsilon_remaining"] == pytest.approx(0.0)
    assert ow.client.get("/api/v1/opendata/datasets/visits/settings", headers=ow.h("clinic.steward")).json()[
        "dp_spent"
    ] == pytest.approx(1.5)


def test_a_dp_draft_that_would_overspend_is_refused_before_spending(ow: OpenWorld) -> None:
    ow.visits()
    policy = json.loads(json.dumps(VISITS_POLICY))
    policy["model"]["epsilon"] = 1.5
    assert ow.configure("visits", who="clinic.steward", policy=policy, dp_budget=2.0).status_code == 200
    assert ow.draft("visits", who="clinic.steward").status_code == 201
    refused = ow.draft("visits", who="clinic.steward")
    assert refused.status_code == 422
    assert "1.5" in error(refused) and "0.5" in error(refused)
    settings = ow.client.get(
        "/api/v1/opendata/datasets/visits/settings", headers=ow.h("clinic.steward")
    ).json()
    assert settings["dp_spent"] == pytest.approx(1.5)  # the refusal spent nothing
    cheaper = ow.draft("visits", who="clinic.steward", policy=VISITS_POLICY)  # ε 0.5 fits exactly
    assert cheaper.status_code == 201, cheaper.text
    assert cheaper.json()["risk"]["epsilon_remaining"] == pytest.approx(0.0)


def test_a_draft_that_read_the_budget_before_another_spent_it_is_refused(ow: OpenWorld) -> None:
    """Two drafts at once: the budget one of them read is stale when it comes to spend."""
    from zhishe.core.accounts.service import actor_for_user
    from zhishe.core.errors import Invalid
    from zhishe.opendata import service

    ow.visits()
    assert (
        ow.configure("visits", who="clinic.steward", policy=VISITS_POLICY, dp_budget=0.5).status_code == 200
    )
    ow.db.rollback()
    steward = actor_for_user(ow.users["clinic.steward"])
    seen = service.read_settings(session=ow.db, actor=steward, dataset="visits")
    assert seen.dp_spent == 0.0  # this session has read the whole budget as free...

    assert ow.draft("visits", who="clinic.steward").status_code == 201  # ... and another draft spends it

    with pytest.raises(Invalid, match="privacy budget of visits is spent"):
        service.draft_release(session=ow.db, actor=steward, dataset="visits")
    ow.db.rollback()
    settings = ow.client.get(
        "/api/v1/opendata/datasets/visits/settings", headers=ow.h("clinic.steward")
    ).json()
    assert settings["dp_spent"] == pytest.approx(0.5)  # never more than the budget
    drafts = ow.client.get("/api/v1/opendata/datasets/visits/drafts", headers=ow.h("clinic.steward")).json()
    assert len(drafts) == 1


# -- pseudonyms -------------------------------------------------------------------------------------


def _building_of_token(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["household_id"]: r["building_id"] for r in rows}


def test_pseudonyms_are_stable_across_releases_and_change_with_the_key(
    ow: OpenWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened_register(ow, households=40)
    ow.release("register", who="police.steward")
    first = rows_of(ow, "register", version="1")
    ow.release("register", who="police.steward")
    second = rows_of(ow, "register", version="2")
    assert len(first) == 40
    # the same household has the same token in both releases, and nothing else changed
    assert _building_of_token(first) == _building_of_token(second)
    assert sorted(first, key=lambda r: r["household_id"]) == sorted(second, key=lambda r: r["household_id"])
    key = get_settings().pseudonym_secret()
    assert pseudonym("H0000", key) in _building_of_token(first)
    assert _building_of_token(first)[pseudonym("H0000", key)] == "B01"

    other = "another-pseudonym-key-of-at-least-32-bytes"
    try:
        monkeypatch.setenv("ZHISHE_PSEUDONYM_KEY", other)
        reset_settings()
        ow.release("register", who="police.steward")
        third = rows_of(ow, "register", version="3")
    finally:
        monkeypatch.undo()
        reset_settings()
    assert len(third) == 40
    assert not set(_building_of_token(third)) & set(_building_of_token(first))
    assert _building_of_token(third)[pseudonym("H0000", other.encode())] == "B01"
    # the key itself is never published
    assert other not in ow.client.get("/opendata/api/v1/datasets/register/releases/3").text


# -- drafts that miss their policy ------------------------------------------------------------------


def test_a_draft_with_fewer_rows_than_k_cannot_be_published(ow: OpenWorld) -> None:
    opened_register(ow, households=4, max_suppression=0)
    made = ow.draft("register", who="police.steward")
    assert made.status_code == 201, made.text
    risk = made.json()["risk"]
    assert risk["meets_policy"] is False
    assert risk["suppressed"] == 4 and made.json()["row_count"] == 0
    assert any("suppressed" in reason for reason in risk["reasons"])

    refused = ow.publish(made.json()["id"], who="police.steward")
    assert refused.status_code == 422
    message = error(refused)
    assert "does not meet its privacy policy" in message
    for reason in risk["reasons"]:
        assert reason in message
    assert ow.query("register").status_code == 404
    drafts = ow.client.get("/api/v1/opendata/datasets/register/drafts", headers=ow.h("police.steward"))
    assert [d["id"] for d in drafts.json()] == [made.json()["id"]]


def test_a_draft_that_cannot_be_l_diverse_cannot_be_published(ow: OpenWorld) -> None:
    opened_register(ow, households=60, l=3)  # receives_subsidy has only two values
    made = ow.draft("register", who="police.steward")
    assert made.status_code == 201, made.text
    risk = made.json()["risk"]
    assert risk["meets_policy"] is False and risk["reasons"]
    refused = ow.publish(made.json()["id"], who="police.steward")
    assert refused.status_code == 422
    assert all(reason in error(refused) for reason in risk["reasons"])
    assert refused.json()["error"]["detail"]["risk"]["meets_policy"] is False
    # discarded, and a policy that can be met publishes
    assert (
        ow.client.delete(
            f"/api/v1/opendata/releases/{made.json()['id']}", headers=ow.h("police.steward")
        ).status_code
        == 204
    )
    opened_again = ow.configure("register", who="police.steward", policy=REGISTER_POLICY)
    assert opened_again.status_code == 200
    release = ow.release("register", who="police.steward")
    assert release["number"] == 1
    assert_k_anonymous(
        pa.Table.from_pylist(rows_of(ow, "register")), REGISTER_QIS, 5, sensitive=["receives_subsidy"], l=2
    )


# -- definition changes and reproducibility ---------------------------------------------------------


def test_a_dropped_column_is_a_definition_change_that_needs_a_note(ow: OpenWorld) -> None:
    first = ow.open_air(hours=6)
    before = rows_of(ow, "air", version="1")
    before_csv = ow.client.get("/opendata/api/v1/datasets/air/download.csv", params={"version": 1}).content
    assert len(before) == 18 and "aqi" in before[0]

    policy = {"columns": {"reporter_phone": "drop", "aqi": "drop"}}
    assert ow.configure("air", policy=policy).status_code == 200
    made = ow.draft("air")
    assert made.status_code == 201
    draft = made.json()
    assert draft["definition_changed"] is True
    assert {"kind": "removed", "column": "aqi", "old": "integer", "new": None} in draft["changes"]

    refused = ow.publish(draft["id"])
    assert refused.status_code == 422
    assert "note" in error(refused)
    assert refused.json()["error"]["detail"]["changes"] == draft["changes"]
    assert ow.publish(draft["id"], note="   ").status_code == 422  # blank is no note

    done = ow.publish(draft["id"], note="不再发布 AQI，请用 pm25 自行换算")
    assert done.status_code == 200 and done.json()["number"] == 2

    view = ow.client.get("/opendata/api/v1/datasets/air").json()
    assert [r["number"] for r in view["releases"]] == [2, 1]
    newest = view["releases"][0]
    assert newest["definition_changed"] is True and newest["note"].startswith("不再发布 AQI")
    assert any(c["kind"] == "removed" and c["column"] == "aqi" for c in newest["changes"])
    assert view["releases"][1]["changes"] == [] and view["releases"][1]["definition_changed"] is False
    assert "aqi" not in {c["name"] for c in view["columns"]}
    page = ow.client.get("/opendata/datasets/air")
    assert page.status_code == 200 and "不再发布 AQI" in page.text

    # the newest has no aqi; release 1 still answers exactly as before
    assert "aqi" not in rows_of(ow, "air")[0]
    assert rows_of(ow, "air", version="1") == before
    assert (
        ow.client.get("/opendata/api/v1/datasets/air/download.csv", params={"version": 1}).content
        == before_csv
    )
    assert first["number"] == 1


def test_a_changed_unit_or_type_in_a_new_version_is_a_definition_change(ow: OpenWorld) -> None:
    ow.open_air(hours=3)
    before = rows_of(ow, "air", version="1")

    # a new version whose pm25 is declared in another unit and aqi as a decimal
    columns = [
        dict(c) for c in ow.client.get("/api/v1/datasets/air", headers=ow.h("env.steward")).json()["columns"]
    ]
    for c in columns:
        if c["name"] == "pm25":
            c["unit"] = "mg/m³"
        if c["name"] == "aqi":
            c["type"] = "decimal"
    patched = ow.client.patch("/api/v1/datasets/air", json={"columns": columns}, headers=ow.h("env.steward"))
    assert patched.status_code == 200, patched.text
    assert ow.upload("air", air_csv(4), mode="replace").status_code == 201
    made = ow.draft("air")
    assert made.status_code == 201, made.text
    kinds = {(c["kind"], c["column"]) for c in made.json()["changes"]}
    assert ("unit_changed", "pm25") in kinds
    assert ("type_changed", "aqi") in kinds
    assert made.json()["definition_changed"] is True
    assert ow.publish(made.json()["id"]).status_code == 422
    done = ow.publish(made.json()["id"], note="pm25 改用 mg/m³")
    assert done.status_code == 200
    release = ow.client.get("/opendata/api/v1/datasets/air/releases/2").json()
    assert release["note"] == "pm25 改用 mg/m³" and release["definition_changed"] is True
    assert rows_of(ow, "air", version="1") == before


def test_a_draft_is_compared_with_the_release_published_before_it_not_at_drafting(ow: OpenWorld) -> None:
    ow.air(hours=2)
    assert (
        ow.configure("air", policy={"columns": {"reporter_phone": "drop", "aqi": "drop"}}).status_code == 200
    )
    early = ow.draft("air")  # nothing is published yet: no change to compare
    assert early.status_code == 201 and early.json()["definition_changed"] is False
    assert ow.configure("air", policy={"columns": {"reporter_phone": "drop"}}).status_code == 200
    ow.release("air")  # release 1 has aqi

    refused = ow.publish(early.json()["id"])  # the early draft would silently drop aqi
    assert refused.status_code == 422, refused.text
    assert "note" in error(refused)
    assert any(
        c["kind"] == "removed" and c["column"] == "aqi" for c in refused.json()["error"]["detail"]["changes"]
    )
    done = ow.publish(early.json()["id"], note="去掉 AQI")
    assert done.status_code == 200
    assert done.json()["number"] == 2 and done.json()["definition_changed"] is True
    assert [(c["kind"], c["column"]) for c in done.json()["changes"]] == [("removed", "aqi")]


def test_a_new_release_without_a_definition_change_needs_no_note(ow: OpenWorld) -> None:
    ow.open_air(hours=3)
    assert ow.upload("air", air_csv(6), mode="replace").status_code == 201
    second = ow.release("air")
    assert second["number"] == 2 and second["source_version"] == 1
    assert second["definition_changed"] is False and second["changes"] == []
    assert len(rows_of(ow, "air")) == 18 and len(rows_of(ow, "air", version="1")) == 9


# -- who may open data ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["water.steward", "env.analyst", "resident.li", "bureau.analyst"])
def test_only_the_owners_stewards_and_admins_may_open_a_dataset(ow: OpenWorld, who: str) -> None:
    ow.air(hours=2)
    policy = {"columns": {"reporter_phone": "drop"}}
    assert ow.configure("air", who=who, policy=policy).status_code == 403
    assert ow.client.get("/api/v1/opendata/datasets/air/settings", headers=ow.h(who)).status_code == 403
    assert ow.draft("air", who=who, policy=policy).status_code == 403
    made = ow.draft("air", policy=policy)
    assert made.status_code == 201
    draft_id = made.json()["id"]
    assert ow.publish(draft_id, who=who).status_code == 403
    assert ow.client.delete(f"/api/v1/opendata/releases/{draft_id}", headers=ow.h(who)).status_code == 403
    assert ow.client.get("/api/v1/opendata/datasets/air/drafts", headers=ow.h(who)).status_code == 403
    # the draft is untouched and still not public
    assert ow.query("air").status_code == 404
    assert ow.client.get("/opendata/api/v1/datasets/air").status_code == 404


def test_anonymous_callers_may_not_open_a_dataset(ow: OpenWorld) -> None:
    ow.air(hours=2)
    made = ow.draft("air", policy={"columns": {"reporter_phone": "drop"}})
    assert (
        ow.client.put("/api/v1/opendata/datasets/air/settings", json={"cadence": "daily"}).status_code == 401
    )
    assert ow.client.post("/api/v1/opendata/datasets/air/drafts", json={}).status_code == 401
    assert (
        ow.client.post(f"/api/v1/opendata/releases/{made.json()['id']}/publish", json={}).status_code == 401
    )


def test_the_owners_admin_and_a_bureau_admin_may_open_it(ow: OpenWorld) -> None:
    ow.air(hours=2)
    assert (
        ow.configure("air", who="env.admin", policy={"columns": {"reporter_phone": "drop"}}).status_code
        == 200
    )
    first = ow.release("air", who="env.admin")
    second = ow.release("air", who="bureau.admin")
    assert (first["number"], second["number"]) == (1, 2)
    made = ow.draft("air", who="bureau.admin")
    gone = ow.client.delete(f"/api/v1/opendata/releases/{made.json()['id']}", headers=ow.h("bureau.admin"))
    assert gone.status_code == 204
    # a published release cannot be discarded, nor published twice
    assert (
        ow.client.delete(f"/api/v1/opendata/releases/{first['id']}", headers=ow.h("env.admin")).status_code
        == 409
    )
    assert ow.publish(first["id"], who="env.admin").status_code == 409


def test_every_draft_is_audited_as_a_read_of_the_internal_version(ow: OpenWorld) -> None:
    ow.air(hours=2)
    ow.register(households=20)
    assert ow.configure("air", policy={"columns": {"reporter_phone": "drop"}}).status_code == 200
    air_id = dataset_id(ow, "air")
    before = len(audit(ow, "dataset.export"))

    made = ow.draft("air")
    assert made.status_code == 201
    ow.release("air", who="env.admin")
    assert ow.configure("register", who="police.steward", policy=REGISTER_POLICY).status_code == 200
    ow.draft("register", who="police.steward")

    reads = audit(ow, "dataset.export")[before:]
    assert [(e.actor, e.object_id) for e in reads] == [
        ("env.steward", str(air_id)),
        ("env.admin", str(air_id)),
        ("police.steward", str(dataset_id(ow, "register"))),
    ]
    for event in reads[:2]:
        detail = json.loads(event.detail)
        assert detail["version"] == 0 and detail["rows"] == 6
        assert "reporter_phone" in detail["columns"]  # the internal version was read whole
    drafts = audit(ow, "opendata.draft")
    assert [json.loads(e.detail)["dataset"] for e in drafts] == ["air", "air", "register"]
    assert [e.object_id for e in drafts][:1] == [str(made.json()["id"])]
    published = audit(ow, "opendata.publish")
    assert [(e.actor, json.loads(e.detail)["number"]) for e in published] == [("env.admin", 1)]

    # a refused draft reads nothing
    refused = ow.draft("air", who="water.steward")
    assert refused.status_code == 403
    assert len(audit(ow, "dataset.export")) == before + 3
