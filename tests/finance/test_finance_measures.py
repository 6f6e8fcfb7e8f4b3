"""The profit model's figures published as the operator's datasets, and the CLI commands."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from finance.revenue_world import balanced, entries, transaction
from services.sworld import MONDAY, ServicesWorld
from zhishe.catalog import service as catalog
from zhishe.cli import app
from zhishe.core.errors import Forbidden
from zhishe.finance import measures

runner = CliRunner()


def test_the_figures_are_published_as_versioned_datasets_of_the_operator(sw: ServicesWorld) -> None:
    clean = sw.listing(sw.providers["clean"], "housekeeping")
    transaction(sw, clean, "res1", MONDAY - timedelta(days=40), captured_fen=10_000, commission_fen=1_500)
    transaction(sw, clean, "res2", MONDAY, captured_fen=20_000, commission_fen=3_000)
    versions = measures.publish(session=sw.session, actor=sw.actor("op-admin"))
    assert set(versions) == {"operator-profit-monthly", "operator-marketplace-monthly"}
    dataset = catalog.get_or_raise(session=sw.session, dataset="operator-profit-monthly")
    assert dataset.owner_org_id == sw.orgs["op"].id
    rows = DeltaTable(catalog.lake_uri(dataset.id)).to_pyarrow_table().to_pylist()
    market = {(r["month"], r["stream"]): r for r in rows}
    assert market[("2026-09", "marketplace")]["revenue_fen"] == 1_500
    assert market[("2026-11", "marketplace")]["take_rate_bps"] == 1_500
    assert len(rows) == 3 * 6  # September to November, six streams
    stats = catalog.get_or_raise(session=sw.session, dataset="operator-marketplace-monthly")
    months = DeltaTable(catalog.lake_uri(stats.id)).to_pyarrow_table().to_pylist()
    assert [(m["month"], m["bookings"], m["active_residents"]) for m in months] == [
        ("2026-09", 1, 1),
        ("2026-10", 0, 0),
        ("2026-11", 1, 1),
    ]
    again = measures.publish(session=sw.session, actor=sw.actor("op-admin"))
    assert again["operator-profit-monthly"] > versions["operator-profit-monthly"]


def test_only_the_operators_stewards_publish_its_figures(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        measures.publish(session=sw.session, actor=sw.actor("clean-admin"))


def test_the_cli_imports_costs_all_or_nothing_bills_and_shows_the_profit(
    sw: ServicesWorld, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("month,stream,label,amount\n2026-11,data,服务器,100\n2026-11,nope,x,1\n", encoding="utf-8")
    refused = runner.invoke(app, ["finance", "costs-import", str(bad)])
    assert refused.exit_code == 1 and "Row 3" in refused.output
    sw.session.expire_all()
    assert entries(sw.session) == 0
    good = tmp_path / "good.csv"
    good.write_text("month,stream,label,amount\n2026-11,data,服务器,100.50\n", encoding="gb18030")
    done = runner.invoke(app, ["finance", "costs-import", str(good)])
    assert done.exit_code == 0, done.output
    assert "1 costs imported, 100.50 yuan" in done.output
    shown = runner.invoke(app, ["finance", "profit", "--month", "2026-11"])
    assert shown.exit_code == 0 and "-100.50" in shown.output
    assert runner.invoke(app, ["finance", "ads-bill"]).exit_code == 0
    assert "0 subscriptions billed" in runner.invoke(app, ["finance", "data-bill"]).output
    assert runner.invoke(app, ["finance", "profit", "--month", "2026-13"]).exit_code == 1
    sw.session.expire_all()
    assert balanced(sw.session)
