"""Health, readiness, metrics, logs, settings and languages."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from helpers import bearer, login
from zhishe.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_and_readyz(client, db):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "lake": "ok"}


def test_metrics_count_requests_per_route_and_imports(client, world, db):
    org = world.org("dept-env")
    user = world.user("env.steward", org)
    headers = bearer(db, user)
    client.post(
        "/api/v1/datasets",
        headers=headers,
        json={
            "slug": "meters",
            "title_zh": "m",
            "sharing_class": "unconditional",
            "columns": [{"name": "n", "type": "integer"}],
        },
    )
    client.post(
        "/api/v1/datasets/meters/imports",
        headers=headers,
        files={"file": ("m.csv", b"n\n1\n2\n3\n", "text/csv")},
    )
    client.get("/api/v1/datasets/meters/rows", headers=headers)
    text = client.get("/metrics").text
    assert (
        'zhishe_http_requests_total{method="GET",route="/api/v1/datasets/{dataset}/rows",status="200"}'
        in text
    )
    assert (
        'zhishe_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/datasets/{dataset}/rows"}'
        in text
    )
    assert 'zhishe_imports_total{outcome="done"}' in text
    assert "zhishe_import_rows_total" in text


def test_logs_are_json_lines_without_secrets(settings_env):
    script = (
        "from zhishe.core.observability import configure_logging, get_logger\n"
        "configure_logging('INFO')\n"
        "get_logger('t').info('hello', password='hunter2', token='zs_x', rows=3)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    record = json.loads(out.stderr.strip().splitlines()[-1])
    assert record["event"] == "hello" and record["rows"] == 3
    assert record["password"] == "[redacted]" and record["token"] == "[redacted]"
    assert "hunter2" not in out.stderr


def test_secret_is_generated_into_the_data_dir_once(tmp_path, monkeypatch):
    monkeypatch.delenv("ZHISHE_SECRET_KEY", raising=False)
    settings = Settings(data_dir=tmp_path)
    first = settings.secret()
    assert (tmp_path / "secret_key").read_text() == first and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path).secret() == first


def test_production_refuses_a_missing_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("ZHISHE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="ZHISHE_SECRET_KEY"):
        Settings(environment="production", data_dir=tmp_path, secret_key="")


def test_unknown_timezone_is_named(tmp_path):
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(timezone="Mars/Olympus", data_dir=tmp_path)


def test_settings_read_a_dotenv_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZHISHE_TIMEZONE", raising=False)
    monkeypatch.delenv("ZHISHE_LANGUAGE", raising=False)
    monkeypatch.delenv("ZHISHE_DATABASE_URL", raising=False)
    monkeypatch.delenv("ZHISHE_DATA_DIR", raising=False)
    (tmp_path / ".env").write_text("ZHISHE_TIMEZONE=Asia/Urumqi\nZHISHE_LANGUAGE=en\n")
    settings = Settings()
    assert settings.timezone == "Asia/Urumqi" and settings.language == "en"
    assert settings.database_url.startswith("sqlite:///var/")


def test_pages_default_to_chinese_and_switch_to_english(client, world):
    org = world.org("dept-env")
    world.user("env.steward", org)
    page = client.get("/login")
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text
    english = client.get("/login?lang=en")
    assert '<html lang="en">' in english.text and "Log in" in english.text
    assert "zhishe_lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/login").text
    login(client, "env.steward")
    client.get("/?lang=en")
    assert "Catalog" in client.get("/catalog").text
    assert "数据目录" in client.get("/catalog?lang=zh-CN").text


def test_every_message_has_a_chinese_translation():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "i18n.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout


def test_static_assets_are_served_locally_and_pages_use_no_cdn(client, world):
    assert client.get("/static/vendor/plotly.min.js").status_code == 200
    assert client.get("/static/zhishe.css").status_code == 200
    for template in (ROOT / "src" / "zhishe").rglob("*.html"):
        text = template.read_text()
        assert "https://" not in text and "http://" not in text and "//cdn" not in text, template


def test_openapi_and_docs_pages(client, db):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/datasets/{dataset}/rows" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_swagger_ui_is_served_without_a_cdn(client, db):
    html = client.get("/docs").text
    assert "cdn.jsdelivr" not in html, "the API docs page must not load assets from a CDN"


def test_unknown_page_and_api_path_use_the_right_error_shape(client, db):
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api.json()["error"]["type"] == "not_found"
    page = client.get("/nope")
    assert page.status_code == 404 and "<html" in page.text
    logging.getLogger().handlers[:] = logging.getLogger().handlers


def test_refusals_are_shown_in_the_readers_language(client, world):
    org = world.org("dept-env")
    world.user("env.analyst", org, role="analyst")
    login(client, "env.analyst")
    chinese = client.get("/datasets/nope")
    assert chinese.status_code == 404 and "数据集 nope 不存在" in chinese.text
    english = client.get("/datasets/nope?lang=en")
    assert "dataset nope does not exist" in english.text
    api = client.get("/api/v1/datasets/nope", headers={"X-CSRF-Token": "x"})
    assert api.json()["error"]["message"] == "dataset nope does not exist"


def test_an_unexpected_error_is_a_500_envelope_with_the_request_id(settings_env, db):
    from fastapi.testclient import TestClient

    from zhishe.app import create_app

    app = create_app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "trace-42"
    assert response.json()["error"]["type"] == "internal" and "boom" not in response.text
