"""Take the user guide's screenshots from a running server with the demo loaded (dev-only script).

ZHISHE_DATA_DIR=/tmp/demo zhishe serve &   # after `zhishe init && zhishe demo`
.venv/bin/python tools/screenshots.py http://127.0.0.1:8000 [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    ("home", "/"),
    ("catalog", "/catalog"),
    ("dataset-overview", "/datasets/electricity-demand-england-wales"),
    ("dataset-schema", "/datasets/air-quality-hourly?tab=schema"),
    ("dataset-versions", "/datasets/air-quality-hourly?tab=versions"),
    ("dataset-quality", "/datasets/air-quality-hourly?tab=quality"),
    ("dataset-preview", "/datasets/air-quality-hourly?tab=preview"),
    ("dataset-chart", "/datasets/electricity-demand-england-wales?tab=chart"),
    ("import", "/datasets/air-quality-hourly/import"),
    ("audit", "/audit"),
    ("tokens", "/tokens"),
    ("orgs", "/admin/orgs"),
    ("opendata-home", "/opendata"),
    ("opendata-search", "/opendata/datasets?q=%E7%A9%BA%E6%B0%94"),
    ("opendata-dataset", "/opendata/datasets/air-quality-hourly"),
    ("opendata-release", "/opendata/datasets/household-register/releases/1"),
    ("opendata-dp-release", "/opendata/datasets/clinic-visits-daily/releases/1"),
    ("opendata-requests", "/opendata/requests"),
    ("opendata-statistics", "/opendata/statistics"),
    ("opendata-developers", "/opendata/developers"),
]
#: Exchange pages, each seen by the demo user it is about.
AS_USER = [
    ("water.steward", "exchange-queue", "/exchange?tab=incoming"),
    ("water.steward", "exchange-request", "/exchange/requests/1"),
    ("water.steward", "exchange-new", "/exchange/requests/new?dataset=household-register"),
    ("bureau.admin", "exchange-dashboard", "/exchange/dashboard"),
    ("water.steward", "exchange-issue", "/exchange/issues/1"),
    ("police.steward", "opendata-manage", "/opendata/manage/household-register"),
    ("resident.zhang", "energy-home", "/energy"),
    ("operator.steward", "energy-community", "/energy/community/1"),
    ("operator.dispatcher", "energy-alerts", "/energy/alerts"),
    ("operator.steward", "energy-charging", "/energy/charging/2"),
    ("operator.steward", "energy-dr", "/energy/dr"),
    ("operator.steward", "iot-site", "/iot/sites/5"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--user", default="env.steward")
    parser.add_argument("--password", default="zhishe-demo-2026")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for width, height, suffix in ((1280, 860, ""), (390, 844, "-phone")):
            for lang in ("zh-CN", "en"):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.goto(f"{args.base}/login?lang={lang}")
                page.screenshot(path=str(out / f"login-{lang}{suffix}.png"))
                page.fill("input[name=username]", args.user)
                page.fill("input[name=password]", args.password)
                page.click("button[type=submit]")
                page.wait_for_load_state()
                for name, path in PAGES:
                    if args.only and name not in args.only.split(","):
                        continue
                    page.goto(f"{args.base}{path}")
                    if "tab=chart" in path:
                        page.wait_for_selector("#chart[data-drawn='1']", timeout=20000)
                    if path == "/opendata/datasets/air-quality-hourly":
                        page.wait_for_selector("#opendata-chart[data-drawn='1']", timeout=20000)
                    page.screenshot(path=str(out / f"{name}-{lang}{suffix}.png"), full_page=suffix == "")
                context.close()
                for user, name, path in AS_USER:
                    if args.only and name not in args.only.split(","):
                        continue
                    context = browser.new_context(viewport={"width": width, "height": height})
                    page = context.new_page()
                    page.goto(f"{args.base}/login?lang={lang}")
                    page.fill("input[name=username]", user)
                    page.fill("input[name=password]", args.password)
                    page.click("button[type=submit]")
                    page.wait_for_load_state()
                    page.goto(f"{args.base}{path}")
                    for chart in ("#load-chart", "#community-chart", "#charging-chart"):
                        if path.startswith("/energy") and page.locator(chart).count():
                            page.wait_for_selector(f"{chart}[data-drawn='1']", timeout=20000)
                    if "dashboard" in path:
                        page.wait_for_selector("#chart-states[data-drawn='1']", timeout=20000)
                    if path.startswith("/opendata/manage/"):  # show a draft with its risk report
                        page.click("#make-draft")
                        page.wait_for_selector(".draft", timeout=20000)
                        page.locator(".draft").first.scroll_into_view_if_needed()
                    page.screenshot(path=str(out / f"{name}-{lang}{suffix}.png"), full_page=suffix == "")
                    context.close()
        browser.close()


if __name__ == "__main__":
    main()
