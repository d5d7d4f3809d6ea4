"""`kaifang desensitize scan FILE [--sheet S] --json` on real CSV and XLSX files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import xlsxwriter

from kaifang.cli import main
from tests.desensitize import generated

FIELDS = {"column", "kind", "label", "confidence", "match_ratio", "sample_count", "embedded", "personal"}


def rows(count: int = 60) -> list[list[str]]:
    rng = random.Random(9)
    out = []
    for i in range(count):
        note = "请联系13800138000" if i == 7 else generated.free_text(rng)
        out.append([generated.person_name(rng), generated.id_card(rng), generated.mobile(rng), note, str(i)])
    return out


HEADER = ["姓名", "身份证号码", "联系电话", "办理意见", "序号"]


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["desensitize", "scan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_report(report: dict[str, object], sample_count: int) -> None:
    columns = report["columns"]
    assert isinstance(columns, list)
    assert [c["column"] for c in columns] == HEADER
    assert all(set(c) == FIELDS for c in columns)
    by_name = {c["column"]: c for c in columns}
    assert by_name["姓名"]["kind"] == "person_name" and by_name["姓名"]["label"] == "姓名"
    assert by_name["身份证号码"]["kind"] == "id_card" and by_name["身份证号码"]["personal"] is True
    assert by_name["联系电话"]["kind"] == "mobile" and by_name["联系电话"]["match_ratio"] == 1.0
    assert by_name["办理意见"] == {
        "column": "办理意见",
        "kind": None,
        "label": "未发现",
        "confidence": 0.0,
        "match_ratio": 0.0,
        "sample_count": sample_count,
        "embedded": {"mobile": 1},
        "personal": True,
    }
    assert by_name["序号"]["kind"] is None and by_name["序号"]["personal"] is False
    assert all(c["sample_count"] == sample_count for c in columns)


def test_scan_csv_in_gb18030_with_a_title_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "办件.csv"
    lines = ["市政务服务中心办件登记表", ",".join(HEADER), *(",".join(r) for r in rows())]
    path.write_bytes("\r\n".join(lines).encode("gb18030"))
    code, out, err = scan(capsys, str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["file"] == str(path) and report["sheet"] is None
    check_report(report, 60)


def test_scan_xlsx_picks_the_named_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "办件.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("说明").write(0, 0, "本表为办件登记")
    sheet = book.add_worksheet("登记")
    for r, row in enumerate([HEADER, *rows(40)]):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value)
    book.close()
    code, out, err = scan(capsys, str(path), "--sheet", "登记", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["sheet"] == "登记"
    check_report(report, 40)
    code, out, _err = scan(capsys, str(path), "--sheet", "登记")  # the plain-text table
    assert code == 0 and "身份证号码\t居民身份证号码\t置信度 1.00" in out and "文本中含 手机号码 1 处" in out


def test_scan_errors_are_chinese_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = scan(capsys, str(tmp_path / "无.csv"), "--json")
    assert (code, out) == (1, "") and "文件不存在" in err
    path = tmp_path / "a.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("甲").write(0, 0, "姓名")
    book.close()
    code, out, err = scan(capsys, str(path), "--sheet", "乙", "--json")
    assert (code, out) == (1, "") and "工作表“乙”不存在" in err
    other = tmp_path / "a.pdf"
    other.write_bytes(b"%PDF")
    code, _out, err = scan(capsys, str(other))
    assert code == 1 and "不支持的表格文件类型" in err
