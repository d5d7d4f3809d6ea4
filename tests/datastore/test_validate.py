"""The provider's validation report, from real files through reading, inference and casting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from kaifang.datastore.infer import cast_table, infer_schema
from kaifang.datastore.reader import read_table
from kaifang.datastore.types import ColumnType, Problem, RawTable, ValidationReport
from kaifang.datastore.validate import source_rows, validate


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """Validation is a library over read tables: these tests need no platform or database."""
    yield


def check(tmp_path: Path, text: str, types: dict[str, ColumnType] | None = None) -> ValidationReport:
    path = tmp_path / "upload.csv"
    path.write_text(text, encoding="utf-8")
    raw = read_table(path, filename="upload.csv")
    schema = infer_schema(raw.table, raw.source_headers)
    for column in schema:
        column.type = (types or {}).get(column.name, column.type)
    _, failures = cast_table(raw.table, schema)
    return validate(raw, schema, failures)


def only(report: ValidationReport, code: str) -> Problem:
    found = [p for p in report.problems if p.code == code]
    assert len(found) == 1, report.to_dict()
    return found[0]


def test_clean_file_has_no_problems(tmp_path: Path) -> None:
    report = check(tmp_path, "名称,床位数\n第一医院,1200\n儿童医院,650\n")
    assert report.problems == [] and not report.fatal and report.row_count == 2


def test_empty_file_and_no_data_rows_are_fatal(tmp_path: Path) -> None:
    empty = check(tmp_path, "")
    assert only(empty, "empty_file").fatal and empty.fatal and empty.row_count == 0
    header_only = check(tmp_path, "标题,,\n名称,区,床位数\n")
    problem = only(header_only, "no_data")
    assert problem.fatal and "第 2 行是表头" in problem.message


def test_blank_header_is_fatal(tmp_path: Path) -> None:
    report = check(tmp_path, "名称,,床位数\n第一医院,和平区,1200\n")
    problem = only(report, "blank_header")
    assert problem.fatal and problem.message == "第 2 列表头为空，请填写列名" and problem.column == "列2"


def test_duplicate_headers_are_fatal(tmp_path: Path) -> None:
    report = check(tmp_path, "名称,区,名称 ,床位数\na,b,c,1\n")
    problem = only(report, "duplicate_header")
    assert problem.fatal and "“名称”重复出现在第 1、3 列" in problem.message and problem.count == 2


def test_missing_cells_warn_and_extra_cells_are_fatal(tmp_path: Path) -> None:
    report = check(tmp_path, "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10\n11,12,13,14,15\n")
    missing, extra = only(report, "missing_cells"), only(report, "extra_cells")
    assert not missing.fatal and missing.rows == [3, 5] and missing.count == 2
    assert extra.fatal and extra.rows == [4, 6] and "比表头多" in extra.message
    assert report.fatal


def test_blank_rows_are_a_warning_with_row_numbers(tmp_path: Path) -> None:
    report = check(tmp_path, "a,b\n1,2\n,\n3,4\n\n5,6\n")
    problem = only(report, "blank_rows")
    assert not problem.fatal and problem.rows == [3, 5] and problem.count == 2
    assert "第 3、5 行" in problem.message and not report.fatal


def test_type_errors_name_source_rows_and_suggest_text(tmp_path: Path) -> None:
    text = (
        "海河市名录,,\n名称,床位数,成立日期\n"
        "甲,1,2001-01-01\n,,\n乙,x,2001-01-02\n丙,3,2001-02-30\n丁,y,2001-01-04\n"
    )
    report = check(tmp_path, text, {"床位数": ColumnType.integer, "成立日期": ColumnType.date})
    beds = next(p for p in report.problems if p.code == "type_error" and p.column == "床位数")
    assert beds.fatal and beds.count == 2 and beds.rows == [5, 7]
    assert "“床位数”列有 2 个单元格不是整数" in beds.message
    assert "第 5 行的“x”" in beds.message and "“文本”" in beds.message
    dates = next(p for p in report.problems if p.code == "type_error" and p.column == "成立日期")
    assert dates.rows == [6] and "不是日期" in dates.message
    assert only(report, "blank_rows").rows == [4]


def test_type_error_rows_are_capped_at_twenty(tmp_path: Path) -> None:
    text = "n\n" + "".join(f"{'x' if i % 2 else i}\n" for i in range(100))
    report = check(tmp_path, text, {"n": ColumnType.integer})
    problem = only(report, "type_error")
    assert problem.count == 50 and len(problem.rows) == 20 and problem.rows[:3] == [3, 5, 7]


def test_long_column_name_is_a_warning(tmp_path: Path) -> None:
    long_name = "医疗机构" * 17
    report = check(tmp_path, f"{long_name},b\n1,2\n")
    problem = only(report, "long_header")
    assert not problem.fatal and "68 个字符" in problem.message and problem.column == long_name


def test_source_rows_skip_dropped_blank_rows() -> None:
    raw = RawTable(
        table=pa.table({"a": ["x"] * 6}),
        source_headers=["a"],
        header_row=3,
        first_data_row=4,
        blank_rows=[5, 6, 9],
    )
    # Data rows sit on source rows 4, 7, 8, 10, 11, 12.
    assert source_rows(raw, [0, 1, 2, 3, 4, 5]) == [4, 7, 8, 10, 11, 12]


def test_report_serialises(tmp_path: Path) -> None:
    data = check(tmp_path, "a,,c\n1,2,3\n").to_dict()
    assert data["fatal"] is True and data["row_count"] == 1
    assert data["problems"][0] == {
        "code": "blank_header",
        "message": "第 2 列表头为空，请填写列名",
        "fatal": True,
        "count": 1,
        "rows": [],
        "column": "列2",
    }
