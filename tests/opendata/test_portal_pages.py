"""The open-data portal's HTML pages, rendered by the real app: every public page in Chinese and
English, the dataset preview (filters, sorting, paging, errors shown on the page), the problem form
reaching the owner, and the owner's manage page (settings, draft, risk report, publish)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from helpers import csrf_of, login
from opendata.open_world import REGISTER_POLICY, OpenWorld
from zhishe.core.i18n import translate
from zhishe.exchange.models import DataIssue


def zh(message: str) -> str:
    """The Chinese of `message`, which must have one (else a zh-CN page would show English)."""
    text = translate(message, "zh-CN")
    assert text != message, f"no Chinese for {message!r}"
    return text


def page(ow: OpenWorld, path: str, lang: str = "zh-CN", **params: Any) -> str:
    ow.client.cookies.clear()  # ?lang= sets a cookie; each visit starts afresh
    if lang == "en":
        params["lang"] = "en"
    response = ow.client.get(path, params=params)
    assert response.status_code == 200, f"{path} ({lang}): {response.status_code} {response.text[:300]}"
    assert f'<html lang="{lang}">' in response.text, path
    return response.text


def preview(text: str) -> tuple[list[str], list[list[str]]]:
    """The preview table: its header names and its rows of cell texts."""
    table = re.search(r'<table id="preview">(.*?)</table>', text, re.S)
    assert table is not None, "no preview table"
    head = [
        html.unescape(re.sub(r"<[^>]+>|[▲▼]", "", h)).strip()
        for h in re.findall(r"<th>(.*?)</th>", table.group(1), re.S)
    ]
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), re.S)
    assert body is not None
    rows = [
        [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]
    return head, rows


def by_id(text: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', text, re.S)
    assert found is not None, f"#{element_id} is missing"
    return html.unescape(found.group(1)).strip()


def link(text: str, element_id: str) -> str:
    found = re.search(rf'href="([^"]*)" id="{element_id}"', text)
    assert found is not None, f"#{element_id} is missing"
    return html.unescape(found.group(1))


@pytest.fixture()
def air(ow: OpenWorld) -> OpenWorld:
    ow.open_air()
    return ow


def test_every_public_page_renders_in_chinese_and_in_english(air: OpenWorld) -> None:
    filed = air.client.post(
        "/opendata/api/v1/requests",
        json={"title": "公交到站数据", "description": "希望开放各线路的到站时间", "purpose": "做出行小程序"},
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    pages = [
        ("/opendata", "Open data of the community", {}),
        ("/opendata/datasets", "Datasets", {}),
        ("/opendata/datasets", "Datasets", {"q": "空气"}),
        ("/opendata/datasets/air", "Preview", {}),
        ("/opendata/datasets/air/releases/1", "Risk report", {}),
        ("/opendata/requests", "Data requests", {}),
        ("/opendata/requests/new", "Ask for data that is not open yet", {}),
        (f"/opendata/requests/{request_id}", "Supporters", {}),
        ("/opendata/statistics", "How open data is used", {}),
        ("/opendata/overdue", "Overdue datasets", {}),
        ("/opendata/developers", "Build on open data", {}),
    ]
    for path, heading, params in pages:
        chinese = page(air, path, **params)
        assert zh(heading) in chinese, f"{path}: {zh(heading)} missing"
        assert zh("Data requests") in chinese  # the portal's navigation, translated
        english = page(air, path, "en", **params)
        assert heading in english, f"{path}: {heading} missing in English"
        assert zh(heading) not in english

    home = page(air, "/opendata")
    assert "空气质量" in home and 'href="/opendata/datasets/air"' in home
    found = page(air, "/opendata/datasets", q="空气质量")
    assert 'href="/opendata/datasets/air"' in found
    nothing = page(air, "/opendata/datasets", q="公交线路")
    assert 'href="/opendata/datasets/air"' not in nothing and zh("No open dataset matches.") in nothing
    facet = page(air, "/opendata/datasets", theme="environment")
    assert 'href="/opendata/datasets/air"' in facet
    assert 'href="/opendata/datasets/air"' not in page(air, "/opendata/datasets", theme="health")
    dataset = page(air, "/opendata/datasets/air", "en")
    assert "<h1>Air quality" in dataset and by_id(dataset, "period") == "2026-09-01 – 2026-09-02"
    assert 'href="/opendata/api/v1/datasets/air/download.csv?version=1&amp;bom=1"' in dataset
    assert "reporter_phone" not in dataset
    request = page(air, f"/opendata/requests/{request_id}")
    assert "公交到站数据" in request and "做出行小程序" in request
    assert page(air, "/opendata/statistics").count('class="card stat"') == 6


def test_preview_filters_by_column_value_and_by_soql_where(air: OpenWorld) -> None:
    text = page(air, "/opendata/datasets/air", column="station", value="天坛")
    head, rows = preview(text)
    assert head == ["station", "observed_at", "pm25", "aqi", "location"]
    assert len(rows) == 25 and {r[0] for r in rows} == {"天坛"}
    assert "48" in by_id(text, "preview-total")
    assert 'value="天坛"' in text  # the form keeps what was asked

    text = page(air, "/opendata/datasets/air", where="pm25 > 100 and station = '东四'")
    _, rows = preview(text)
    assert rows and all(float(r[2]) > 100 and r[0] == "东四" for r in rows)
    assert len(rows) == int(re.sub(r"\D", "", by_id(text, "preview-total")))
    assert "next-page" not in text


def test_preview_sorts_and_pages_to_the_end(air: OpenWorld) -> None:
    text = page(air, "/opendata/datasets/air", order="pm25 DESC")
    head, rows = preview(text)
    values = [float(r[head.index("pm25")]) for r in rows]
    assert values == sorted(values, reverse=True)
    sorts = dict((html.unescape(h), s) for h, s in re.findall(r'<a href="([^"]*)" data-sort="([^"]*)"', text))
    by_column = {s: h for h, s in sorts.items()}
    assert by_column["pm25"] == "/opendata/datasets/air?order=pm25+ASC"  # toggles
    assert by_column["aqi"] == "/opendata/datasets/air?order=aqi+ASC"
    assert "location" not in by_column  # points cannot be sorted: no link that would fail
    ascending = air.client.get(by_column["pm25"]).text
    values = [float(r[2]) for r in preview(ascending)[1]]
    assert values == sorted(values)

    # the station filter and a sort, paged with the next-page link until it ends
    seen: list[list[str]] = []
    url = "/opendata/datasets/air?" + "column=station&value=%E5%A4%A9%E5%9D%9B&order=aqi+DESC"
    for _ in range(5):
        text = air.client.get(url).text
        rows = preview(text)[1]
        seen += rows
        if "next-page" not in text:
            break
        url = link(text, "next-page")
        assert "order=aqi+DESC" in url and "value=" in url
    assert len(seen) == 48 and len({tuple(r) for r in seen}) == 48  # no row twice, none missing
    assert {r[0] for r in seen} == {"天坛"}
    aqi = [int(r[3]) for r in seen]
    assert aqi == sorted(aqi, reverse=True)
    assert zh("First page") in text


def test_a_bad_filter_shows_its_error_on_the_page_not_a_500(air: OpenWorld) -> None:
    for params, words in [
        ({"where": "pm25 >"}, ("$where", "could not be parsed")),
        ({"where": "secret = 1"}, ("$where", "unknown column secret")),
        ({"where": "read_csv('/etc/passwd') IS NULL"}, ("read_csv", "not allowed")),
        ({"column": "aqi", "value": "很多"}, ("aqi", "not a number")),
        ({"column": "nope", "value": "1"}, ("nope", "not a column")),
        ({"order": "location"}, ("$order", "point")),
        ({"next": "garbage"}, ("$next", "garbled")),
    ]:
        text = page(air, "/opendata/datasets/air", **params)
        error = by_id(text, "preview-error")
        for word in words:
            assert word in error, f"{params}: {error!r}"
        assert 'id="preview"' not in text
        assert zh("Report a problem with this data") in text  # the rest of the page is there
    scripted = page(air, "/opendata/datasets/air", where="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in scripted
    missing = air.client.get("/opendata/datasets/air", params={"version": "7"})
    assert missing.status_code == 404
    assert air.client.get("/opendata/datasets/nope").status_code == 404


def test_the_problem_form_opens_an_issue_the_owner_sees(air: OpenWorld) -> None:
    air.client.cookies.clear()
    token = csrf_of(air.client, "/opendata/datasets/air")
    form = {
        "csrf_token": token,
        "release": "1",
        "kind": "value",
        "column": "pm25",
        "problem": "东四站 9 月 1 日 10 时的 PM2.5 明显偏高",
        "contact": "reader@example.org",
    }
    forged = air.client.post("/opendata/datasets/air/problems", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 403
    reported = air.client.post("/opendata/datasets/air/problems", data=form)
    assert reported.status_code == 200, reported.text[:500]
    confirmation = by_id(reported.text, "reported")
    issue = re.search(r"\d+", confirmation)
    assert issue is not None and zh("Report a problem") in reported.text

    empty = air.client.post("/opendata/datasets/air/problems", data={**form, "problem": "  "})
    assert empty.status_code == 422 and 'role="alert"' in empty.text
    period = air.client.post(
        "/opendata/datasets/air/problems", data={**form, "kind": "missing_period", "column": ""}
    )
    assert period.status_code == 422 and 'role="alert"' in period.text

    assert login(air.client, "env.steward").status_code in (302, 303)
    issues = air.client.get("/exchange/issues")
    assert issues.status_code == 200
    assert f'/exchange/issues/{issue.group(0)}"' in issues.text
    detail = air.client.get(f"/exchange/issues/{issue.group(0)}")
    assert detail.status_code == 200
    assert "明显偏高" in detail.text and "<code>pm25</code>" in detail.text
    stored = air.db.scalar(select(DataIssue).where(DataIssue.id == int(issue.group(0))))
    assert (
        stored is not None and stored.reporter_contact == "reader@example.org" and stored.reporter == "public"
    )
    assert login(air.client, "water.steward").status_code in (302, 303)
    assert f'/exchange/issues/{issue.group(0)}"' not in air.client.get("/exchange/issues").text


def test_the_owner_saves_a_policy_drafts_sees_the_risk_and_publishes(ow: OpenWorld) -> None:
    ow.register()
    assert login(ow.client, "police.steward").status_code in (302, 303)
    manage = ow.client.get("/opendata/manage/register")
    assert manage.status_code == 200
    suggested = json.loads(
        html.unescape(re.search(r'id="policy">(.*?)</textarea>', manage.text, re.S).group(1))
    )
    assert suggested["columns"]["head_name"] == "drop"  # personal columns start dropped
    token = re.search(r'name="csrf_token" value="([^"]+)"', manage.text).group(1)

    form = {"csrf_token": token, "cadence": "monthly", "order_by": "building_id"}
    saved = ow.client.post(
        "/opendata/manage/register",
        data={**form, "action": "save", "policy": json.dumps(REGISTER_POLICY)},
        follow_redirects=False,
    )
    assert saved.status_code in (302, 303), saved.text[:300]
    settings = ow.client.get(
        "/api/v1/opendata/datasets/register/settings", headers=ow.h("police.steward")
    ).json()
    assert settings["cadence"] == "monthly" and settings["order_by"] == ["building_id"]
    assert settings["policy"]["model"]["type"] == "k_anonymity"

    bad = ow.client.post("/opendata/manage/register", data={**form, "action": "save", "policy": "{not json"})
    assert bad.status_code == 422

    drafted = ow.client.post(
        "/opendata/manage/register",
        data={**form, "action": "draft", "policy": json.dumps(REGISTER_POLICY)},
        follow_redirects=False,
    )
    assert drafted.status_code in (302, 303), drafted.text[:300]
    manage = ow.client.get("/opendata/manage/register").text
    draft_id = re.search(r'id="draft-(\d+)"', manage).group(1)
    assert int(by_id(manage, "min-class")) >= 5  # the risk report: k = 5 holds
    assert zh("Prosecutor re-identification risk") in manage
    assert ow.client.get("/opendata/datasets/register").status_code == 404  # not public yet

    published = ow.client.post(
        "/opendata/manage/register",
        data={"csrf_token": token, "action": "publish", "release_id": draft_id, "note": "首次开放"},
        follow_redirects=False,
    )
    assert published.status_code in (302, 303), published.text[:300]
    manage = ow.client.get("/opendata/manage/register").text
    assert 'id="draft-' not in manage and 'href="/opendata/datasets/register/releases/1"' in manage
    public = ow.client.get("/opendata/api/v1/datasets/register").json()
    assert public["releases"][0]["number"] == 1 and public["releases"][0]["note"] == "首次开放"
    assert "head_name" not in {c["name"] for c in public["columns"]}
    dataset_page = ow.client.get("/opendata/datasets/register").text
    assert 'href="/opendata/manage/register"' in dataset_page  # the owner sees the way back

    ow.client.cookies.clear()
    assert 'href="/opendata/manage/register"' not in ow.client.get("/opendata/datasets/register").text
    assert login(ow.client, "env.steward").status_code in (302, 303)
    assert ow.client.get("/opendata/manage/register").status_code == 403
    token = csrf_of(ow.client, "/opendata/developers")
    refused = ow.client.post(
        "/opendata/manage/register", data={"csrf_token": token, "action": "save", "policy": "{}"}
    )
    assert refused.status_code == 403
    ow.client.cookies.clear()
    anonymous = ow.client.get("/opendata/manage/register", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
