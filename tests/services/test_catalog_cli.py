"""`zhishe services` catalogue commands: categories, providers, listings with search, and the
licence sweep, end to end against the database."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from services.sworld import MONDAY, ServicesWorld
from zhishe.cli import app
from zhishe.core import clock
from zhishe.services.models import Listing

runner = CliRunner()


def zs(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_categories_and_providers_are_listed(sw: ServicesWorld) -> None:
    out = zs("services", "categories")
    assert "housekeeping" in out and "15.00%" in out and "medical" in out
    providers = zs("services", "providers")
    assert "洁家家政" in providers and "远方家政" in providers
    assert "洁家家政" in zs("services", "providers", "--as", "res1")


def test_listings_are_searched_in_chinese_with_literal_wildcards(sw: ServicesWorld) -> None:
    sw.listing(sw.providers["clean"], "housekeeping")
    sw.listing(sw.providers["fix"], "repair", title_zh="水电维修", title_en="Plumbing")
    out = zs("services", "listings", "--q", "保洁")
    assert "日常保洁" in out and "水电维修" not in out and "¥100.00" in out
    assert "日常保洁" not in zs("services", "listings", "--q", "%")
    assert "水电维修" in zs("services", "listings", "--category", "repair")


def test_the_licence_sweep_suspends_listings_whose_licence_lapsed(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    clock.set_clock(lambda: MONDAY + timedelta(days=400))
    out = zs("services", "licence-sweep")
    assert "1 listings suspended" in out
    sw.session.expire_all()
    fresh = sw.session.get(Listing, listing.id)
    assert (
        fresh is not None and fresh.status == "suspended" and fresh.suspended_reason == "licence:housekeeping"
    )


def test_a_resident_may_not_list_every_listing(sw: ServicesWorld) -> None:
    out = zs("services", "listings", "--as", "res1", code=1)
    assert "error:" in out
