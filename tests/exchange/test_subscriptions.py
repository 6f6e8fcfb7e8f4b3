"""Subscriptions end to end: a webhook set through the API receives a signed POST for every new
version, retried after a 500, and the subscriber sees every delivery."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from zhishe.core.config import get_settings
from zhishe.core.db import get_sessionmaker
from zhishe.exchange import webhooks


def test_webhook_receives_signed_version_events_with_retries(xw):
    received: list[tuple[dict[str, str], bytes]] = []
    answers = [500, 200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((dict(self.headers.items()), body))
            self.send_response(answers[min(len(received), len(answers)) - 1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        request = xw.granted(mode="subscription")
        grant_id = request["grant_id"]
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        set_up = xw.client.put(
            f"/api/v1/exchange/grants/{grant_id}/subscription",
            json={"webhook_url": url},
            headers=xw.h("water.steward"),
        )
        assert set_up.status_code == 200, set_up.text
        secret = set_up.json()["secret"]
        assert secret and len(secret) >= 40
        assert (
            xw.client.put(
                f"/api/v1/exchange/grants/{grant_id}/subscription",
                json={"webhook_url": "ftp://x"},
                headers=xw.h("water.steward"),
            ).status_code
            == 422
        )
        assert (
            xw.client.put(
                f"/api/v1/exchange/grants/{grant_id}/subscription",
                json={"webhook_url": url},
                headers=xw.h("env.steward"),
            ).status_code
            == 403
        )

        upload = xw.upload(
            "air", b"station,day,pm25,aqi,reporter_phone\n\xe4\xb8\x9c\xe5\x9b\x9b,2026-01-07,5,5,1\n"
        )
        assert upload.status_code == 201
        maker = get_sessionmaker(get_settings().database_url)
        assert webhooks.deliver_due(maker) == 1
        failed = xw.client.get(
            f"/api/v1/exchange/grants/{grant_id}/deliveries", headers=xw.h("water.analyst")
        ).json()
        assert (
            failed[0]["status"] == "pending"
            and failed[0]["last_status"] == 500
            and failed[0]["attempts"] == 1
        )
        xw.at(xw.now + timedelta(seconds=11))
        assert webhooks.deliver_due(maker) == 1
        done = xw.client.get(
            f"/api/v1/exchange/grants/{grant_id}/deliveries", headers=xw.h("water.analyst")
        ).json()
        assert done[0]["status"] == "delivered"

        headers, body = received[-1]
        assert webhooks.verify(secret, headers["X-Zhishe-Signature"], body, now=xw.now)
        assert not webhooks.verify("wrong", headers["X-Zhishe-Signature"], body, now=xw.now)
        event = json.loads(body)
        assert (
            event["event"] == "dataset.version"
            and event["dataset"]["slug"] == "air"
            and event["version"] == 1
        )
        assert event["grant"] == grant_id and event["summary"]["rows_inserted"] == 1
        assert headers["X-Zhishe-Event"] == "dataset.version"
    finally:
        server.shutdown()
        server.server_close()
