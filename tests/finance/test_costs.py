"""Operating costs: entered one by one or imported from CSV (all or nothing), posted to the ledger."""

from __future__ import annotations

import pytest

from finance.revenue_world import balanced, entries
from services.sworld import ServicesWorld
from zhishe.core.errors import Forbidden, Invalid
from zhishe.finance import costs, ledger, money


def test_a_cost_posts_to_the_operating_expense_of_its_stream(sw: ServicesWorld) -> None:
    cost = costs.create(
        session=sw.session,
        actor=sw.actor("op-admin"),
        month="2026-11",
        stream="marketplace",
        label="客服",
        amount_fen=150_000,
    )
    sw.session.commit()
    assert cost.entry_id is not None
    assert ledger.balance(sw.session, "Expenses:Operating:Marketplace") == 150_000
    assert ledger.balance(sw.session, "Assets:Bank") == -150_000
    assert balanced(sw.session)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("amount_fen", {"amount_fen": -5}),
        ("amount_fen", {"amount_fen": 12.5}),
        ("amount_fen", {"amount_fen": "100"}),
        ("month", {"month": "2026-13"}),
        ("stream", {"stream": "wallet"}),
        ("label", {"label": " "}),
    ],
)
def test_a_bad_cost_is_refused_naming_the_field_and_posts_nothing(
    sw: ServicesWorld, field: str, values: dict[str, object]
) -> None:
    given: dict[str, object] = {"month": "2026-11", "stream": "data", "label": "服务器", "amount_fen": 100}
    given.update(values)
    with pytest.raises(Invalid) as refused:
        costs.create(session=sw.session, actor=sw.actor("op-admin"), **given)  # type: ignore[arg-type]
    assert refused.value.detail["field"] == field
    assert entries(sw.session) == 0


def test_a_csv_import_converts_yuan_to_fen_and_reads_gbk(sw: ServicesWorld) -> None:
    text = "month,stream,label,amount\n2026-10,energy,充电桩维护,1234.5\n2026-11,other,办公室租金,8000\n2026-11,data,服务器,0.07\n"
    imported = costs.import_csv(session=sw.session, actor=sw.actor("op-admin"), data=text.encode("gbk"))
    sw.session.commit()
    assert [(c.month, c.stream, c.label, c.amount_fen) for c in imported] == [
        ("2026-10", "energy", "充电桩维护", 123_450),
        ("2026-11", "other", "办公室租金", 800_000),
        ("2026-11", "data", "服务器", 7),
    ]
    assert ledger.balance(sw.session, "Assets:Bank") == -923_457
    assert balanced(sw.session)


def test_a_csv_with_one_bad_row_names_it_and_writes_nothing(sw: ServicesWorld) -> None:
    text = (
        "month,stream,label,amount\n"
        "2026-10,energy,维护,100\n"
        "2026-10,energy,维护,-5\n"
        "2026-11,data,服务器,1.234\n"
        "2026-11,data,服务器,200\n"
    )
    with pytest.raises(Invalid) as refused:
        costs.import_csv(session=sw.session, actor=sw.actor("op-admin"), data=text.encode())
    sw.session.rollback()
    assert [e["row"] for e in refused.value.detail["errors"]] == [3, 4]
    assert "Row 3" in str(refused.value)
    assert entries(sw.session) == 0
    assert costs.list_costs(session=sw.session, actor=sw.actor("op-analyst")) == []


def test_a_csv_without_the_header_is_refused(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid):
        costs.import_csv(session=sw.session, actor=sw.actor("op-admin"), data=b"2026-10,energy,x,1\n")
    assert entries(sw.session) == 0


def test_only_operator_stewards_and_admins_enter_costs(sw: ServicesWorld) -> None:
    with pytest.raises(Forbidden):
        costs.create(
            session=sw.session,
            actor=sw.actor("op-analyst"),
            month="2026-11",
            stream="data",
            label="x",
            amount_fen=1,
        )
    with pytest.raises(Forbidden):
        costs.import_csv(
            session=sw.session, actor=sw.actor("clean-admin"), data=b"month,stream,label,amount\n"
        )


def test_half_even_rounds_ties_to_the_even_neighbour() -> None:
    assert [money.half_even(n, 2) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    assert money.half_even(7, 3) == 2 and money.half_even(8, 3) == 3
    assert money.parse_yuan("12.5") == 1250 and money.parse_yuan("0.01") == 1
    for bad in ("-1", "1.001", "abc", "0", "1e3"):
        with pytest.raises(Invalid):
            money.parse_yuan(bad)
