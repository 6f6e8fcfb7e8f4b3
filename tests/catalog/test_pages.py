"""The catalog and admin pages through a test client: forms, CSRF, the import wizard, tabs."""

from __future__ import annotations

import time

from catalog_world import AIR_COLUMNS, AIR_CSV

from helpers import csrf_of, login


def _wait_for_job(client, job_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = client.get(f"/api/v1/imports/{job_id}").json()
        if report["status"] in {"done", "failed"}:
            return report
        time.sleep(0.1)
    raise AssertionError("import job did not finish")


def test_import_wizard_infers_types_lets_them_be_corrected_and_imports(cw):
    cw.create("air")
    client = cw.client
    login(client, "env.steward")
    token = csrf_of(client, "/datasets/air/import")
    response = client.post(
        "/datasets/air/import",
        data={"csrf_token": token},
        files={"file": ("air.csv", AIR_CSV, "text/csv")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    job_url = response.headers["location"]
    page = client.get(job_url)
    assert 'data-col="pm25"' in page.text and "col_count" in page.text
    form = {"csrf_token": csrf_of(client, job_url), "col_count": "5", "mode": "append", "note": "wizard"}
    for i, (name, kind) in enumerate(
        [
            ("station", "string"),
            ("day", "date"),
            ("pm25", "decimal"),
            ("aqi", "integer"),
            ("reporter_phone", "string"),
        ]
    ):
        form |= {
            f"col_name_{i}": name,
            f"col_type_{i}": kind,
            f"col_unit_{i}": "",
            f"col_class_{i}": "internal",
        }
    form["col_class_4"] = "personal"
    response = client.post(job_url, data=form, follow_redirects=False)
    assert response.status_code == 303
    report = _wait_for_job(client, job_url.rsplit("/", 1)[1])
    assert report["status"] == "done" and report["version"] == 0
    dataset = client.get("/api/v1/datasets/air").json()
    assert {c["name"]: (c["type"], c["classification"]) for c in dataset["columns"]}["reporter_phone"] == (
        "string",
        "personal",
    )
    assert "已完成" in client.get(job_url).text or "done" in client.get(job_url).text


def test_every_dataset_tab_renders(cw):
    cw.create("air", columns=AIR_COLUMNS, time_column="day")
    cw.upload("air", AIR_CSV)
    login(cw.client, "env.analyst")
    for tab in ("overview", "schema", "versions", "quality", "preview", "chart"):
        page = cw.client.get(f"/datasets/air?tab={tab}&lang=en")
        assert page.status_code == 200, (tab, page.text[:500])
    preview = cw.client.get("/datasets/air?tab=preview&fcol=station&fop=%3D&fval=东四&lang=en")
    assert preview.text.count("<tr>") == 3  # header + two rows of 东四
    assert "1 matching rows" in preview.text or "2 matching rows" in preview.text
    chart = cw.client.get("/datasets/air?tab=chart")
    assert "/static/vendor/plotly.min.js" in chart.text and 'data-kind="time"' in chart.text


def test_catalog_page_facets_and_search(cw):
    cw.create("air", columns=AIR_COLUMNS)
    cw.create(
        "water-use",
        who="water.steward",
        title_zh="用水量",
        sharing_class="conditional",
        accrual_periodicity="monthly",
    )
    login(cw.client, "env.analyst")
    page = cw.client.get("/catalog?lang=en")
    assert "Sharing class" in page.text and "water-use" in page.text and "/datasets/air" in page.text
    filtered = cw.client.get("/catalog?sharing_class=conditional")
    assert "water-use" in filtered.text and '/datasets/air"' not in filtered.text
    searched = cw.client.get("/catalog?q=用水")
    assert "water-use" in searched.text and '/datasets/air"' not in searched.text


def test_not_shared_dataset_page_shows_only_title_owner_and_legal_basis(cw):
    cw.create(
        "secret",
        columns=AIR_COLUMNS,
        sharing_class="not_shared",
        legal_basis="依法不予共享的理由",
        description_zh="不应显示的描述",
    )
    cw.upload("secret", AIR_CSV)
    login(cw.client, "water.analyst")
    page = cw.client.get("/datasets/secret?tab=preview")
    assert page.status_code == 200 and "依法不予共享的理由" in page.text
    assert "不应显示的描述" not in page.text and "13800000001" not in page.text


def test_admin_creates_a_user_through_the_page(cw):
    login(cw.client, "env.admin")
    url = f"/admin/orgs/{cw.env.id}"
    form = {
        "csrf_token": csrf_of(cw.client, url),
        "username": "env.intern",
        "display_name": "实习生",
        "email": "",
        "role": "analyst",
        "password": "long-enough-1",
    }
    assert cw.client.post(f"{url}/users", data=form, follow_redirects=False).status_code == 303
    assert "env.intern" in cw.client.get(url).text
    form["username"] = "env.boss"
    form["role"] = "admin"
    other = cw.client.post(f"/admin/orgs/{cw.water.id}/users", data=form)
    assert other.status_code == 403


def test_token_page_shows_the_secret_once_and_revokes(cw):
    login(cw.client, "env.steward")
    form = {
        "csrf_token": csrf_of(cw.client, "/tokens"),
        "name": "etl",
        "scopes": ["catalog:read"],
        "expires_in_days": "30",
    }
    created = cw.client.post("/tokens", data=form)
    assert created.status_code == 201
    secret = created.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert secret.startswith("zs_")
    listing = cw.client.get("/tokens").text
    assert secret not in listing
    assert cw.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    token_id = cw.client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).json()["items"][
        0
    ]["id"]
    form = {"csrf_token": csrf_of(cw.client, "/tokens")}
    assert cw.client.post(f"/tokens/{token_id}/revoke", data=form, follow_redirects=False).status_code == 303
    assert cw.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_audit_page_filters_and_verifies(cw):
    cw.create("air", columns=AIR_COLUMNS)
    login(cw.client, "bureau.admin")
    page = cw.client.get("/audit?action=dataset.create&verify=1&lang=en")
    assert "dataset.create" in page.text and "The chain is intact" in page.text
    login_page = cw.client.get("/audit?since=yesterday")
    assert login_page.status_code == 422 and "since" in login_page.text


def test_pages_redirect_anonymous_visitors_to_login(client, db):
    response = client.get("/catalog", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/catalog"


def test_steward_edits_metadata_and_a_column_through_the_page(cw):
    cw.create("air", columns=AIR_COLUMNS)
    cw.upload("air", AIR_CSV)
    login(cw.client, "env.steward")
    page = cw.client.get("/datasets/air/edit")
    assert page.status_code == 200 and 'name="col_unit_2"' in page.text
    form = {
        "csrf_token": csrf_of(cw.client, "/datasets/air/edit"),
        "title_zh": "空气质量日报",
        "title_en": "Air",
        "description_zh": "",
        "description_en": "",
        "theme": "environment",
        "keywords": "PM2.5，空气",
        "sharing_class": "unconditional",
        "legal_basis": "",
        "accrual_periodicity": "daily",
        "time_column": "day",
        "licence": "CC-BY-4.0",
        "contact_name": "",
        "contact_email": "",
        "spatial": "",
        "source": "",
        "col_count": "5",
    }
    for i, c in enumerate(AIR_COLUMNS):
        form |= {
            f"col_name_{i}": c["name"],
            f"col_type_{i}": c["type"],
            f"col_unit_{i}": c.get("unit", ""),
            f"col_class_{i}": c["classification"],
            f"col_desc_{i}": "",
        }
    form["col_unit_2"] = "mg/m³"
    form["col_key"] = ["station", "day"]
    response = cw.client.post("/datasets/air/edit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    body = cw.client.get("/api/v1/datasets/air", headers=cw.h("env.steward")).json()
    assert (
        body["title_zh"] == "空气质量日报"
        and body["keywords"] == ["PM2.5", "空气"]
        and body["time_column"] == "day"
    )
    changes = cw.client.get("/api/v1/datasets/air/definition-changes", headers=cw.h("env.steward")).json()
    assert [(c["column"], c["field"], c["new"]) for c in changes] == [("pm25", "unit", "mg/m³")]
    versions_page = cw.client.get("/datasets/air?tab=versions")
    assert "mg/m³" in versions_page.text
    login(cw.client, "water.steward")
    assert cw.client.get("/datasets/air/edit").status_code == 403


def test_import_report_explains_bad_values_in_chinese(cw):
    cw.create("air", columns=AIR_COLUMNS)
    login(cw.client, "env.steward")
    token = csrf_of(cw.client, "/datasets/air/import")
    bad = AIR_CSV + "天坛,2026-01-03,abc,40,x\n".encode()
    response = cw.client.post(
        "/datasets/air/import",
        data={"csrf_token": token},
        files={"file": ("air.csv", bad, "text/csv")},
        follow_redirects=False,
    )
    job_url = response.headers["location"]
    form = {"csrf_token": csrf_of(cw.client, job_url), "mode": "append"}
    cw.client.post(job_url, data=form, follow_redirects=False)
    report = _wait_for_job(cw.client, job_url.rsplit("/", 1)[1])
    assert report["status"] == "failed"
    page = cw.client.get(job_url).text
    assert "&#39;abc&#39; 不是小数" in page and "未导入任何数据" in page
    english = cw.client.get(job_url + "?lang=en").text
    assert "&#39;abc&#39; is not a decimal number" in english and "nothing was imported" in english
