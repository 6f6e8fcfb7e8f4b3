"""Type inference on a first import: conservative guesses that never lose information."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhishe.catalog.ingest import infer_columns, load, read_raw
from zhishe.catalog.ingest.infer import SAMPLE_ROWS
from zhishe.catalog.types import Classification, ColumnType


def _infer(tmp_path: Path, text: str) -> dict[str, ColumnType]:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    specs = infer_columns(read_raw(path))
    assert all(s.classification == Classification.INTERNAL and not s.is_key for s in specs)
    return {s.name: s.type for s in specs}


def test_mixed_file_gets_a_type_per_column(tmp_path: Path) -> None:
    text = (
        "id,zip,price,ok,flag,day,at,where,name,empty,phone_id\n"
        '1,001,1.5,yes,1,2024-01-05,2024-01-05 08:00,"39.9,116.4",张三,,110101199003071234\n'
        "2,002,-3,no,0,2024/1/6,2024-01-06T09:30:00+08:00,POINT(116.4 39.9),李四,,110101199003071235\n"
        "3,010,NA,是,1,NULL,2024-01-06,,王五,,110101199003071236\n"
    )
    assert _infer(tmp_path, text) == {
        "id": ColumnType.INTEGER,
        "zip": ColumnType.STRING,  # leading zeros: a code, not a number
        "price": ColumnType.DECIMAL,
        "ok": ColumnType.BOOLEAN,
        "flag": ColumnType.INTEGER,  # only 0 and 1: kept as a number
        "day": ColumnType.DATE,
        "at": ColumnType.DATETIME,  # a date alone among date-times is midnight
        "where": ColumnType.POINT,
        "name": ColumnType.STRING,
        "empty": ColumnType.STRING,
        "phone_id": ColumnType.STRING,  # 18 digits: an identifier
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2", "x"], ColumnType.STRING),
        (["1", "2.5"], ColumnType.DECIMAL),
        (["0.5", "007.5"], ColumnType.STRING),
        (["1", "1e3"], ColumnType.DECIMAL),
        (["NaN", "1.5"], ColumnType.STRING),
        (["2023-02-28", "2023-02-30"], ColumnType.STRING),
        (["1,2"], ColumnType.STRING),  # a point needs a decimal point somewhere
        (["true", "maybe"], ColumnType.STRING),
    ],
)
def test_a_type_is_chosen_only_if_every_value_fits(
    tmp_path: Path, values: list[str], expected: ColumnType
) -> None:
    text = "v\n" + "\n".join(f'"{v}"' for v in values) + "\n"
    assert _infer(tmp_path, text)["v"] == expected


def test_a_bad_value_after_the_sample_is_caught_by_the_full_check(tmp_path: Path) -> None:
    rows = [str(i) for i in range(SAMPLE_ROWS + 10)] + ["twelve"]
    assert _infer(tmp_path, "v\n" + "\n".join(rows) + "\n")["v"] == ColumnType.STRING


def test_an_inferred_schema_loads_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,d\n1,2.5,2024-01-01,x\n2,,2024-01-02,\n", encoding="utf-8")
    columns = infer_columns(read_raw(path))
    result = load(path, columns, timezone="Asia/Shanghai")
    assert result.issue_count == 0 and result.table.num_rows == 2
