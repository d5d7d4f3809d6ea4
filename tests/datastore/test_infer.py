"""Type inference over whole columns, and casting text cells to the provider's types."""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from kaifang.datastore.infer import cast_table, infer_and_cast, infer_schema
from kaifang.datastore.reader import read_table
from kaifang.datastore.types import ARROW_TYPES, Column, ColumnType
from kaifang.errors import InvalidInput

T = ColumnType


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """Inference is a library over Arrow tables: these tests need no platform or database."""
    yield


def infer(name: str, values: list[str | None]) -> ColumnType:
    return infer_schema(pa.table({name: pa.array(values, pa.string())}))[0].type


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("床位数", ["1200", "-3", "+5", "0", None, "1,234,567"], T.integer),
        ("序号", [str(i) for i in range(1, 3000)], T.integer),
        ("人口", ["523000", "845000", "301000"], T.integer),  # six digits without a code name
        ("面积", ["12.5", "-0.3", "7", "1,234.5", "0.25"], T.decimal),
        ("比例", ["12.5%", "3%"], T.text),
        ("金额", ["1.2E+05", "3"], T.text),
        ("社区", ["001", "002", "010"], T.text),  # leading zeros: a code
        ("数值", ["1", "2", "0012"], T.text),
        ("身份号", ["11010519491231002X", "110105194912310021"], T.text),
        ("证件", ["110105194912310021", "110105194912310039"], T.text),  # 18 digits
        ("卡", ["6222021234567890123", "6222021234567890"], T.text),
        ("联系方式", ["13812345678", "15912345678", "18600000000"], T.text),  # mobile numbers
        ("行政区划代码", ["120101", "120102", "120103"], T.text),
        ("邮编", ["300041", "300074"], T.text),
        ("编号", ["1", "2", "3"], T.text),
        ("座机", ["022-23456789", "010-1234567"], T.text),
        ("医保定点", ["是", "否", "是", None], T.boolean),
        ("flag", ["TRUE", "false", "True"], T.boolean),
        ("flag", ["Y", "N", "y"], T.boolean),
        ("是否开放", ["1", "0", "1"], T.boolean),
        ("等级", ["1", "0", "1"], T.integer),
        ("flag", ["是", "false"], T.text),  # two vocabularies mixed: conservative
        ("成立日期", ["2001-01-05", "2010/3/4", "2011.12.31", "2020年1月2日"], T.date),
        ("成立日期", ["20010105", "20101231"], T.date),
        ("批次", ["20010105", "20101231"], T.integer),  # no 日期 in the name
        ("时间", ["2025-01-05 08:30", "2025/1/5 8:30:15", "2025-01-05T23:59:59", "2025-01-06"], T.datetime),
        ("采样时间", ["2025-01-05 00:00:00", "2025-01-06 00:00"], T.date),
        ("日期", ["2025-02-28", "2025-02-30"], T.text),  # an impossible date
        ("日期", ["2025-13-01"], T.text),
        ("混合", ["12", "abc", "3.5"], T.text),
        ("空", [None, None], T.text),
        ("数", [], T.text),
    ],
)
def test_inferred_types(name: str, values: list[str | None], expected: ColumnType) -> None:
    assert infer(name, values) is expected


def test_whole_column_is_checked_not_a_sample() -> None:
    values = [str(i) for i in range(50_000)] + ["3.5"] + [str(i) for i in range(10)]
    assert infer("数量", values) is T.decimal
    assert infer("数量", [*values, "n/a"]) is T.text
    codes = [str(100 + i) for i in range(50_000)] + ["007"]
    assert infer("数量", codes) is T.text


def test_schema_keeps_names_and_source_headers() -> None:
    table = pa.table({"金额(元)": ["1"], "列2": ["x"]})
    schema = infer_schema(table, ["金额（元）", ""])
    assert [(c.name, c.source_name, c.type) for c in schema] == [
        ("金额(元)", "金额（元）", T.integer),
        ("列2", "", T.text),
    ]


def test_infer_and_cast_returns_typed_values() -> None:
    table = pa.table(
        {
            "n": ["1,200", "+3", None],
            "x": ["1,234.5", "-0.25", "2"],
            "b": ["是", "否", None],
            "d": ["2025/1/5", "2025年12月31日", "2025-02-28"],
            "t": ["2025-01-05 08:30", "2025-01-05 9:05:07", None],
            "s": ["a", "b", "c"],
        }
    )
    schema, typed = infer_and_cast(table)
    assert [c.type for c in schema] == [T.integer, T.decimal, T.boolean, T.date, T.datetime, T.text]
    assert [typed.schema.field(c.name).type for c in schema] == [ARROW_TYPES[c.type] for c in schema]
    assert typed.to_pylist()[1] == {
        "n": 3,
        "x": -0.25,
        "b": False,
        "d": datetime.date(2025, 12, 31),
        "t": datetime.datetime(2025, 1, 5, 9, 5, 7),
        "s": "b",
    }
    assert typed.equals(cast_table(table, schema)[0])


def test_cast_reports_failed_cells_by_row_index() -> None:
    table = pa.table(
        {
            "数量": ["1", "x", None, "2.5", "4"],
            "日期": ["2025-01-01", "2025-02-30", "2025-01-03 10:00", "20250104", None],
            "是否": ["是", "否", "也许", "Y", "0"],
            "名称": ["a", None, "c", "d", "e"],
        }
    )
    schema = [
        Column("count", T.integer),
        Column("day", T.date),
        Column("ok", T.boolean),
        Column("name", T.text),
    ]
    typed, failures = cast_table(table, schema)
    assert typed.column_names == ["count", "day", "ok", "name"]
    assert failures == {"count": [1, 3], "day": [1, 2], "ok": [2]}
    assert typed.column("count").to_pylist() == [1, None, None, None, 4]
    assert typed.column("day").to_pylist()[3] == datetime.date(2025, 1, 4)
    assert typed.column("ok").to_pylist() == [True, False, None, True, False]
    assert typed.column("name").to_pylist() == ["a", None, "c", "d", "e"]


def test_cast_to_decimal_and_datetime() -> None:
    table = pa.table(
        {"a": ["1", "2.5", "1,000.25", "abc"], "b": ["2025-01-01", "2025-01-01 7:08", "x", None]}
    )
    typed, failures = cast_table(table, [Column("a", T.decimal), Column("b", T.datetime)])
    assert typed.column("a").to_pylist() == [1.0, 2.5, 1000.25, None]
    assert typed.column("b").to_pylist()[:2] == [
        datetime.datetime(2025, 1, 1),
        datetime.datetime(2025, 1, 1, 7, 8),
    ]
    assert failures == {"a": [3], "b": [2]}


def test_cast_needs_one_schema_column_per_table_column() -> None:
    with pytest.raises(InvalidInput):
        cast_table(pa.table({"a": ["1"]}), [])


def test_large_csv_reads_infers_and_casts_quickly(tmp_path: Path) -> None:
    rng = random.Random(3)
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("序号,名称,统一社会信用代码,床位数,面积,是否医保定点,成立日期,更新时间\n")
        for i in range(200_000):
            f.write(
                f"{i + 1},医院{rng.randint(1, 999)},{rng.randint(10**16, 10**17)}X,{rng.randint(0, 2000)},"
                f"{rng.random() * 1000:.2f},{'是' if i % 3 else '否'},2001-01-{i % 28 + 1:02d},"
                f"2025-01-05 {i % 24:02d}:{i % 60:02d}:00\n"
            )
    start = time.perf_counter()
    raw = read_table(path, filename="big.csv")
    schema, typed = infer_and_cast(raw.table, raw.source_headers)
    elapsed = time.perf_counter() - start
    print(f"200,000 rows × 8 columns: read + infer + cast in {elapsed:.2f} s")
    assert [c.type for c in schema] == [
        T.integer,
        T.text,
        T.text,
        T.integer,
        T.decimal,
        T.boolean,
        T.date,
        T.datetime,
    ]
    assert typed.num_rows == 200_000
    assert elapsed < 10
