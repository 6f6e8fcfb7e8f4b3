"""The catalog through its JSON API: create, import, versions, read, diff, profile, export."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
from catalog_world import AIR_COLUMNS, AIR_CSV


def test_import_creates_a_version_and_rows_read_back(cw):
    cw.create(columns=AIR_COLUMNS)
    response = cw.upload("air", AIR_CSV, note="first load")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "done" and report["version"] == 0 and report["rows_written"] == 4
    page = cw.client.get(
        "/api/v1/datasets/air/rows",
        params={"order": "day,station", "total": "true"},
        headers=cw.h("env.analyst"),
    ).json()
    assert page["total"] == 4 and page["version"] == 0
    assert page["rows"][0] == {
        "station": "东四",
        "day": "2026-01-01",
        "pm25": 35.5,
        "aqi": 50,
        "reporter_phone": "13800000001",
    }
    versions = cw.client.get("/api/v1/datasets/air/versions", headers=cw.h("env.analyst")).json()
    assert versions[0]["note"] == "first load" and versions[0]["actor"] == "env.steward"
    assert versions[0]["mode"] == "append" and versions[0]["rows_inserted"] == 4


def test_first_import_infers_the_schema(cw):
    cw.create()
    response = cw.upload("air", AIR_CSV)
    assert response.status_code == 201, response.text
    columns = {
        c["name"]: c["type"]
        for c in cw.client.get("/api/v1/datasets/air", headers=cw.h("env.steward")).json()["columns"]
    }
    assert (columns["station"], columns["day"], columns["pm25"], columns["aqi"]) == (
        "string",
        "date",
        "decimal",
        "integer",
    )


def test_keyset_paging_walks_every_row_once_with_a_link_header(cw):
    cw.create(columns=[{"name": "n", "type": "integer"}])
    cw.upload("air", ("n\n" + "\n".join(str(i) for i in range(230)) + "\n").encode())
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 50, **({"after": after} if after else {})}
        response = cw.client.get("/api/v1/datasets/air/rows", params=params, headers=cw.h("env.analyst"))
        body = response.json()
        seen += [r["n"] for r in body["rows"]]
        pages += 1
        after = body["next"]
        if not after:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
    assert seen == list(range(230)) and pages == 5


def test_structured_filter_and_projection(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    where = json.dumps(
        {
            "and": [
                {"column": "station", "op": "=", "value": "东四"},
                {"column": "pm25", "op": ">", "value": 50},
            ]
        }
    )
    body = cw.client.get(
        "/api/v1/datasets/air/rows",
        params={"where": where, "select": "day,pm25"},
        headers=cw.h("env.analyst"),
    ).json()
    assert body["rows"] == [{"day": "2026-01-02", "pm25": 80.1}]
    hostile = json.dumps({"column": "station", "op": "=", "value": "x' OR '1'='1"})
    body = cw.client.get(
        "/api/v1/datasets/air/rows", params={"where": hostile}, headers=cw.h("env.analyst")
    ).json()
    assert body["rows"] == []


def test_bad_filter_names_the_problem(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    for where, needle in [
        ('{"column": "nope", "op": "=", "value": 1}', "nope"),
        ('{"column": "aqi", "op": "=", "value": "abc"}', "aqi"),
        ("{not json", "where"),
        ('{"column": "aqi", "op": "LIKE", "value": 1}', "LIKE"),
    ]:
        response = cw.client.get(
            "/api/v1/datasets/air/rows", params={"where": where}, headers=cw.h("env.analyst")
        )
        assert response.status_code in (400, 422), response.text
        assert needle in response.json()["error"]["message"], response.json()


def test_time_travel_diff_and_upsert(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    change = (
        "station,day,pm25,aqi,reporter_phone\n"
        "东四,2026-01-02,81.0,111,13800000002\n"
        "天坛,2026-01-03,25.0,35,13800000005\n"
    ).encode()
    report = cw.upload("air", change, mode="upsert").json()
    assert report["version"] == 1 and report["rows_updated"] == 1 and report["rows_inserted"] == 1
    old = cw.client.get(
        "/api/v1/datasets/air/rows", params={"version": 0, "total": "true"}, headers=cw.h("env.analyst")
    ).json()
    new = cw.client.get(
        "/api/v1/datasets/air/rows", params={"total": "true"}, headers=cw.h("env.analyst")
    ).json()
    assert old["total"] == 4 and new["total"] == 5
    diff = cw.client.get(
        "/api/v1/datasets/air/diff", params={"from": 0, "to": 1}, headers=cw.h("env.analyst")
    ).json()
    assert diff["added"] == 1 and diff["removed"] == 0 and diff["changed"] == 1
    assert diff["per_column_changes"]["pm25"] == 1 and diff["per_column_changes"]["aqi"] == 1
    missing = cw.client.get("/api/v1/datasets/air/rows", params={"version": 7}, headers=cw.h("env.analyst"))
    assert missing.status_code == 404 and "latest is 1" in missing.json()["error"]["message"]


def test_upsert_with_duplicate_keys_in_the_file_names_the_rows(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    dupes = (
        "station,day,pm25,aqi,reporter_phone\n"
        "东四,2026-01-02,1,1,x\n天坛,2026-01-02,2,2,y\n东四,2026-01-02,3,3,z\n"
    ).encode()
    response = cw.upload("air", dupes, mode="upsert")
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "duplicate" in message and "1" in message and "3" in message
    versions = cw.client.get("/api/v1/datasets/air/versions", headers=cw.h("env.steward")).json()
    assert len(versions) == 1


def test_profile_records_nulls_distincts_and_gaps(cw):
    cw.create(columns=AIR_COLUMNS, time_column="day")
    csv = (
        "station,day,pm25,aqi,reporter_phone\n"
        "东四,2026-01-01,1,1,a\n东四,2026-01-02,,2,b\n东四,2026-01-05,3,3,c\n"
    ).encode()
    cw.upload("air", csv)
    body = cw.client.get("/api/v1/datasets/air/versions/0/profile", headers=cw.h("env.analyst")).json()
    profile = body["profile"]
    assert profile["row_count"] == 3
    assert profile["columns"]["pm25"]["null_count"] == 1
    assert profile["columns"]["station"]["distinct_count"] == 1
    assert profile["freshness"]["missing_count"] == 2
    assert profile["freshness"]["missing_periods"] == ["2026-01-03", "2026-01-04"]


def test_export_formats_and_old_versions(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    cw.upload("air", "station,day,pm25,aqi,reporter_phone\n南城,2026-01-09,5,5,q\n".encode())
    csv = cw.client.get(
        "/api/v1/datasets/air/export", params={"format": "csv", "version": 0}, headers=cw.h("env.analyst")
    )
    assert csv.status_code == 200 and csv.text.count("\n") == 5 and "南城" not in csv.text
    parquet = cw.client.get(
        "/api/v1/datasets/air/export", params={"format": "parquet"}, headers=cw.h("env.analyst")
    )
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 5


def test_definition_change_is_recorded_and_listed(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    columns = [dict(c) for c in AIR_COLUMNS]
    columns[2]["unit"] = "mg/m³"
    columns[3]["description"] = "China AQI (HJ 633-2012)"
    response = cw.client.patch("/api/v1/datasets/air", json={"columns": columns}, headers=cw.h("env.steward"))
    assert response.status_code == 200, response.text
    changes = cw.client.get("/api/v1/datasets/air/definition-changes", headers=cw.h("env.analyst")).json()
    assert {(c["column"], c["field"], c["new"]) for c in changes} == {
        ("pm25", "unit", "mg/m³"),
        ("aqi", "description", "China AQI (HJ 633-2012)"),
    }
    assert all(c["after_version"] == 0 for c in changes)


def test_skip_bad_rows_keeps_a_reject_file(cw):
    cw.create(columns=AIR_COLUMNS)
    bad = AIR_CSV + "天坛,2026-01-03,abc,40,x\n".encode()
    refused = cw.upload("air", bad)
    assert refused.status_code == 422
    detail = refused.json()["error"]["detail"]
    assert detail["issues"][0] == {
        "row": 5,
        "column": "pm25",
        "value": "abc",
        "reason": detail["issues"][0]["reason"],
    }
    assert cw.client.get("/api/v1/datasets/air/versions", headers=cw.h("env.steward")).json() == []
    accepted = cw.upload("air", bad, skip_bad_rows="true")
    assert accepted.status_code == 201 and accepted.json()["rows_rejected"] == 1
    rejects = cw.client.get("/api/v1/datasets/air/versions/0/rejects", headers=cw.h("env.steward"))
    assert rejects.status_code == 200 and "abc" in rejects.text


def test_search_and_facets(cw):
    cw.create("air", columns=AIR_COLUMNS, keywords=["PM2.5", "空气"])
    cw.create(
        "water-use",
        who="water.steward",
        title_zh="用水量",
        title_en="Water use",
        theme="water",
        sharing_class="conditional",
        accrual_periodicity="monthly",
    )
    body = cw.client.get("/api/v1/datasets", params={"q": "pm2.5"}, headers=cw.h("env.analyst")).json()
    assert [d["slug"] for d in body["items"]] == ["air"]
    body = cw.client.get("/api/v1/datasets", headers=cw.h("env.analyst")).json()
    assert body["facets"]["sharing_class"] == {"unconditional": 1, "conditional": 1}
    assert body["facets"]["cadence"] == {"daily": 1, "monthly": 1}
    body = cw.client.get("/api/v1/datasets", params={"theme": "water"}, headers=cw.h("env.analyst")).json()
    assert [d["slug"] for d in body["items"]] == ["water-use"]


def test_not_shared_needs_a_legal_basis_and_shows_little(cw):
    response = cw.client.post(
        "/api/v1/datasets",
        json={"slug": "secret", "title_zh": "名单", "sharing_class": "not_shared"},
        headers=cw.h("env.steward"),
    )
    assert response.status_code == 422 and "legal basis" in response.json()["error"]["message"]
    cw.create(
        "secret",
        sharing_class="not_shared",
        legal_basis="《个人信息保护法》第28条",
        description_zh="敏感说明",
        columns=AIR_COLUMNS,
    )
    seen = cw.client.get("/api/v1/datasets/secret", headers=cw.h("water.analyst")).json()
    assert seen["restricted"] is True and seen["legal_basis"].startswith("《个人信息保护法》")
    assert seen["description_zh"] == "" and seen["columns"] == []


def test_every_response_has_a_request_id_and_errors_use_the_envelope(cw):
    response = cw.client.get("/api/v1/datasets/nope", headers=cw.h("env.analyst"))
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error", "request_id"} and set(body["error"]) == {"type", "message", "detail"}
    assert body["request_id"] == response.headers["x-request-id"]
    echoed = cw.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_staged_upload_returns_inferred_types_that_can_be_corrected_before_running(cw):
    cw.create()
    staged = cw.client.post(
        "/api/v1/datasets/air/uploads",
        headers=cw.h("env.steward"),
        files={"file": ("air.csv", AIR_CSV, "text/csv")},
    )
    assert staged.status_code == 201, staged.text
    body = staged.json()
    inferred = {c["name"]: c["type"] for c in body["inferred_columns"]}
    assert inferred["day"] == "date" and body["row_count"] == 4
    columns = [
        dict(
            c,
            classification="personal" if c["name"] == "reporter_phone" else "public",
            type="string" if c["name"] == "reporter_phone" else c["type"],
        )
        for c in body["inferred_columns"]
    ]
    assert cw.client.get("/api/v1/datasets/air", headers=cw.h("env.steward")).json()["columns"] == []
    run = cw.client.post(
        f"/api/v1/imports/{body['job_id']}/run",
        headers=cw.h("env.steward"),
        json={"mode": "append", "columns": columns, "note": "api wizard"},
    )
    assert run.status_code == 201, run.text
    schema = {
        c["name"]: (c["type"], c["classification"])
        for c in cw.client.get("/api/v1/datasets/air", headers=cw.h("env.steward")).json()["columns"]
    }
    assert schema["reporter_phone"] == ("string", "personal")
    again = cw.client.post(f"/api/v1/imports/{body['job_id']}/run", headers=cw.h("env.steward"), json={})
    assert again.status_code == 409


def test_upsert_that_changes_nothing_makes_no_new_version(cw):
    cw.create(columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    again = cw.upload("air", AIR_CSV, mode="upsert")
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["committed"] is False and body["version"] == 0 and body["rows_unchanged"] == 4
    assert len(cw.client.get("/api/v1/datasets/air/versions", headers=cw.h("env.steward")).json()) == 1


def test_dataset_past_its_cadence_is_overdue_in_the_catalog(cw):
    from datetime import UTC, datetime

    from zhishe.core import clock

    cw.create(columns=AIR_COLUMNS, time_column="day", accrual_periodicity="daily")
    clock.set_clock(lambda: datetime(2026, 1, 3, 12, tzinfo=UTC))
    cw.upload("air", AIR_CSV)  # latest period 2026-01-02: due again by the end of 2026-01-03
    body = cw.client.get("/api/v1/datasets/air", headers=cw.h("env.analyst")).json()
    assert body["overdue"] is False and body["latest_period"].startswith("2026-01-01T16:00:00")
    assert (
        cw.client.get("/api/v1/datasets", params={"overdue": "true"}, headers=cw.h("env.analyst")).json()[
            "items"
        ]
        == []
    )
    clock.set_clock(lambda: datetime(2026, 1, 5, tzinfo=UTC))
    body = cw.client.get("/api/v1/datasets/air", headers=cw.h("env.analyst")).json()
    assert body["overdue"] is True
    overdue = cw.client.get(
        "/api/v1/datasets", params={"overdue": "true"}, headers=cw.h("env.analyst")
    ).json()
    assert [d["slug"] for d in overdue["items"]] == ["air"]


def test_non_ascii_digits_in_ids_are_not_numbers(cw):
    for path in ("/api/v1/datasets/%C2%B9", "/api/v1/datasets/%D9%A3/rows", "/api/v1/datasets?after=azrCuQ"):
        response = cw.client.get(path, headers=cw.h("env.analyst"))
        assert response.status_code in (404, 422), (path, response.text)


def test_profile_computed_in_memory_equals_the_profile_read_from_the_lake(cw):
    from datetime import UTC, datetime

    from zhishe.catalog import lake, service
    from zhishe.core import clock

    clock.set_clock(lambda: datetime(2026, 1, 10, tzinfo=UTC))
    cw.create(columns=AIR_COLUMNS, time_column="day")
    cw.upload("air", AIR_CSV)  # first write: profiled in memory
    cw.upload("air", AIR_CSV, mode="replace")  # replace: profiled in memory
    cw.upload(
        "air", "station,day,pm25,aqi,reporter_phone\n南城,2026-01-09,5,5,q\n".encode()
    )  # append: from the lake
    dataset = service.get_or_raise(session=cw.db, dataset="air")
    for version in (0, 1, 2):
        stored = cw.client.get(
            f"/api/v1/datasets/air/versions/{version}/profile", headers=cw.h("env.steward")
        ).json()["profile"]
        fresh = lake.profile(
            service.lake_uri(dataset.id),
            columns=service.column_specs(dataset),
            version=version,
            time_column="day",
            cadence="daily",
            now=clock.now(),
            time_zone="Asia/Shanghai",
        )
        assert stored == json.loads(json.dumps(fresh)), version
