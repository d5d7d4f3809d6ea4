"""k-anonymity figures, exact on a table small enough to count by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kaifang.desensitize.risk import k_anonymity

# Rows 6 and 7 share gender, birth date and address; everyone else is alone on the three.
# By year and district there are two groups of four: 男/1990/河西区 and 女/1985/河东区.
PEOPLE = pa.table(
    {
        "性别": ["男", "男", "男", "女", "女", "女", "女", "男"],
        "出生日期": [
            date(1990, 1, 5),
            date(1990, 1, 20),
            date(1990, 2, 3),
            date(1985, 6, 1),
            date(1985, 6, 15),
            date(1985, 7, 30),
            date(1985, 7, 30),
            date(1990, 1, 5),
        ],
        "住址": [
            "海河市河西区甲路1号",
            "海河市河西区乙路2号",
            "海河市河西区丙路3号",
            "海河市河东区丁路4号",
            "海河市河东区戊路5号",
            "海河市河东区己路6号",
            "海河市河东区己路6号",
            "海河市河西区庚路7号",
        ],
        "年龄": [30, 31, 32, 41, 42, 43, 44, 30],
    }
)


def test_counts_over_three_quasi_identifiers() -> None:
    report = k_anonymity(PEOPLE, ["性别", "出生日期", "住址"], threshold=3)
    assert (report.rows, report.k, report.unique, report.below) == (8, 1, 6, 8)
    assert report.below_share == 1.0 and not report.reaches


def test_suggestions_carry_the_k_they_reach() -> None:
    report = k_anonymity(PEOPLE, ["性别", "出生日期", "住址"], threshold=3)
    by_change = {s.change: s for s in report.suggestions}
    best = report.suggestions[0]
    assert best.change == "出生日期 → 年；住址 → 区县"
    assert (best.k, best.unique, best.below_share, best.reaches) == (4, 0, 0.0, True)
    district = by_change["住址 → 区县"]
    assert (district.k, district.unique, district.below_share) == (1, 4, 1.0)
    assert by_change["出生日期 → 年"].k == 1 and by_change["删除 住址"].unique == 4
    assert [s for s in report.suggestions if s.reaches] == [best]


def test_age_bands_and_dropping_the_column() -> None:
    report = k_anonymity(PEOPLE, ["年龄"], threshold=3)
    assert (report.k, report.unique, report.below) == (1, 6, 8)
    assert [(s.change, s.k, s.reaches) for s in report.suggestions] == [
        ("年龄 → 5 年一档", 4, True),
        ("年龄 → 10 年一档", 4, True),
        ("删除 年龄", 8, True),
    ]


def test_birth_dates_held_as_text_generalize_by_their_year(tmp_path: Path) -> None:
    text = PEOPLE.set_column(1, "出生日期", pa.array([d.isoformat() for d in PEOPLE["出生日期"].to_pylist()]))
    path = tmp_path / "people.parquet"
    pq.write_table(text, path)
    report = k_anonymity(path, ["性别", "出生日期"], threshold=3)
    assert (report.k, report.unique, report.below) == (1, 4, 8)  # 1990-01-05 男 and 1985-07-30 女 twice
    by_change = {s.change: s for s in report.suggestions}
    assert by_change["出生日期 → 年"].k == 4
    assert by_change["出生日期 → 月"].k == 1


def test_a_group_at_the_threshold_passes_and_nothing_is_suggested() -> None:
    report = k_anonymity(PEOPLE, ["性别"], threshold=4)
    assert (report.k, report.unique, report.below, report.reaches) == (4, 0, 0, True)
    assert report.suggestions == []


@pytest.mark.parametrize("quasi", [[], ["不存在的列"]])
def test_no_quasi_identifier_means_no_figure(quasi: list[str]) -> None:
    report = k_anonymity(PEOPLE, quasi, threshold=5)
    assert report.quasi == [] and report.k == 0 and report.reaches


def test_a_suppressed_column_is_left_out() -> None:
    report = k_anonymity(PEOPLE.drop_columns(["住址"]), ["性别", "住址"], threshold=4)
    assert report.quasi == ["性别"] and report.k == 4


def test_nulls_form_their_own_group() -> None:
    table = pa.table({"区": ["河西区", None, None, "河西区"]})
    report = k_anonymity(table, ["区"], threshold=2)
    assert (report.k, report.unique, report.below) == (2, 0, 0)
