"""Reading real files: encodings, delimiters, title rows, merged headers, sheets, JSON."""

from __future__ import annotations

import contextlib
import datetime
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from kaifang.datastore import reader
from kaifang.datastore.reader import clean_header, clean_headers, is_tabular, read_table
from kaifang.datastore.types import RawTable
from kaifang.errors import InvalidInput


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """The reader is a library over files: these tests need no platform or database."""
    yield


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def read(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8", **kw: Any) -> RawTable:
    return read_table(write(tmp_path, name, data, encoding), filename=name, **kw)


def rows(raw: RawTable) -> list[list[Any]]:
    return [list(r.values()) for r in raw.table.to_pylist()]


HOSPITALS = "名称,区,床位数\n海河市第一人民医院,和平区,1200\n海河市儿童医院,河西区,650\n"


# --- encodings ------------------------------------------------------------------------------


def test_utf8(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", HOSPITALS)
    assert raw.encoding == "utf-8" and raw.delimiter == ","
    assert raw.table.column_names == ["名称", "区", "床位数"]
    assert rows(raw) == [["海河市第一人民医院", "和平区", "1200"], ["海河市儿童医院", "河西区", "650"]]
    assert (raw.header_row, raw.first_data_row) == (1, 2)
    assert raw.warnings == [] and raw.blank_rows == [] and raw.ragged_rows == {}


def test_utf8_with_bom(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "\ufeff" + HOSPITALS)
    assert raw.encoding == "utf-8-sig"
    assert raw.source_headers[0] == "名称"
    assert rows(raw)[0][0] == "海河市第一人民医院"


def test_gbk_file_decodes_as_gb18030(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", HOSPITALS, encoding="gbk")
    assert raw.encoding == "gb18030"
    assert rows(raw)[1] == ["海河市儿童医院", "河西区", "650"]


def test_mostly_ascii_gbk_file_with_chinese_far_down(tmp_path: Path) -> None:
    """The first megabytes are plain ASCII (valid UTF-8): the Chinese cells come after the sample."""
    lines = ["id,code,name,note"] + [f"{i},A{i:07d},station-{i},ok" for i in range(70_000)]
    lines += ["70000,B0000001,海河市第一人民医院,和平区（南）", "70001,B0000002,儿童医院,河西区·东"]
    path = write(tmp_path, "stations.csv", "\r\n".join(lines) + "\r\n", encoding="gbk")
    assert path.stat().st_size > 2 << 20
    raw = read_table(path, filename="stations.csv")
    assert raw.encoding == "gb18030"
    assert raw.table.num_rows == 70_002
    assert rows(raw)[-2:] == [
        ["70000", "B0000001", "海河市第一人民医院", "和平区（南）"],
        ["70001", "B0000002", "儿童医院", "河西区·东"],
    ]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, codec: str) -> None:
    data = ("\ufeff" if codec == "utf-16-be" else "") + HOSPITALS
    raw = read(tmp_path, "a.txt", data, encoding=codec)
    assert raw.encoding == "utf-16"
    assert raw.table.column_names == ["名称", "区", "床位数"]
    assert rows(raw)[0] == ["海河市第一人民医院", "和平区", "1200"]


def test_utf16_without_bom(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "name,count\nalpha,1\n医院,2\n", encoding="utf-16-le")
    assert raw.encoding == "utf-16-le" and rows(raw) == [["alpha", "1"], ["医院", "2"]]


def test_bom_file_with_bad_bytes_further_on(tmp_path: Path) -> None:
    data = ("\ufeffa,b\n" + "x,1\n" * 600_000).encode() + b"y,\xff\n"
    with pytest.raises(InvalidInput, match=f"第 {len(data) - 2} 字节"):
        read(tmp_path, "a.csv", data)


def test_corrupt_gbk_is_refused(tmp_path: Path) -> None:
    data = "名称,区\n医院,和平区\n".encode("gbk") + b"\x81\x0a"
    with pytest.raises(InvalidInput, match="无法识别文件编码"):
        read(tmp_path, "a.csv", data)


def test_undecodable_bytes_name_the_offset(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as e:
        read(tmp_path, "a.csv", b"name,value\nabc,\xff\xfe\xff\n")
    assert "第 15 字节" in e.value.message


def test_binary_and_zip_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="二进制"):
        read(tmp_path, "a.csv", b"\x01\x00\x02\x03\x00\xff\x10\x00\x00\x00\x07" * 10)
    with pytest.raises(InvalidInput, match="Excel"):
        read(tmp_path, "a.csv", b"PK\x03\x04" + b"\x00" * 40)


# --- delimiters, quoting, rows --------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = "\n".join(delimiter.join(r) for r in [["a", "b", "c"], ["1", "x, y", "3"], ["4", "5", "6"]])
    if delimiter == ",":
        text = text.replace("x, y", '"x, y"')
    raw = read(tmp_path, "a.txt", text + "\n")
    assert raw.delimiter == delimiter
    assert rows(raw) == [["1", "x, y", "3"], ["4", "5", "6"]]


def test_tsv_is_tab_separated(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.TSV", "a,b\tc\n1,2\t3\n")
    assert raw.delimiter == "\t" and rows(raw) == [["1,2", "3"]]


def test_quoted_fields_with_commas_newlines_and_quotes(tmp_path: Path) -> None:
    text = 'name,address,note\n"医院","和平区,南京路 1 号","第一行\n第二行"\n"说 ""好""",b,c\nx,y,z\n'
    raw = read(tmp_path, "a.csv", text)
    assert rows(raw) == [
        ["医院", "和平区,南京路 1 号", "第一行\n第二行"],
        ['说 "好"', "b", "c"],
        ["x", "y", "z"],
    ]


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    text = (
        "海河市2025年医疗机构名录,,,\n"
        "填报单位：海河市卫生健康委员会,,,填报日期：2025-06-30\n"
        "名称,区,床位数,电话\n"
        "第一医院,和平区,1200,022-1234567\n"
        "注：数据截至2025年6月30日,,,\n"
    )
    raw = read(tmp_path, "a.csv", text)
    assert (raw.header_row, raw.first_data_row) == (3, 4)
    assert raw.table.column_names == ["名称", "区", "床位数", "电话"]
    assert rows(raw) == [["第一医院", "和平区", "1200", "022-1234567"]]
    assert "已跳过表头上方的 2 行标题" in raw.warnings
    assert "已跳过表格下方的 1 行备注" in raw.warnings


def test_title_row_without_trailing_delimiters(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "医疗机构名录\n\n名称,区,床位数\n第一医院,和平区,1200\n")
    assert (raw.header_row, raw.first_data_row) == (3, 4)
    assert rows(raw) == [["第一医院", "和平区", "1200"]]


def test_header_with_numeric_labels_is_still_the_header(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "指标,2023,2024\nGDP,100,120\n人口,50,51\n")
    assert raw.header_row == 1 and raw.table.column_names == ["指标", "2023", "2024"]


def test_blank_rows_are_dropped_and_numbered(tmp_path: Path) -> None:
    text = "a,b\n1,2\n,\n3,4\n\n5,6\n\n\n"
    raw = read(tmp_path, "a.csv", text)
    assert rows(raw) == [["1", "2"], ["3", "4"], ["5", "6"]]
    assert raw.blank_rows == [3, 5]  # trailing empty lines are the file's end, not blank rows


def test_ragged_rows_are_padded_or_cut_and_recorded(tmp_path: Path) -> None:
    text = "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12,,\n13,14,15\n"
    raw = read(tmp_path, "a.csv", text)
    assert rows(raw) == [
        ["1", "2", "3"],
        ["4", "5", None],
        ["6", "7", "8"],
        ["10", "11", "12"],
        ["13", "14", "15"],
    ]
    # Row 5 has two extra cells, but both are empty: nothing is lost, so it is not reported.
    assert raw.ragged_rows == {3: 2, 4: 4}


def test_cells_are_trimmed_and_empty_cells_are_null(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b,c\n  x  ,   ,\u3000y\u3000\n")
    assert rows(raw) == [["x", None, "y"]]


def test_old_mac_line_endings(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b\r1,2\r3,4\r")
    assert rows(raw) == [["1", "2"], ["3", "4"]]


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b\n")
    assert raw.table.column_names == ["a", "b"] and raw.table.num_rows == 0
    empty = read(tmp_path, "b.csv", "")
    assert empty.table.num_columns == 0 and empty.source_headers == []
    assert read(tmp_path, "c.csv", "\n\n  \n").table.num_columns == 0


# --- headers --------------------------------------------------------------------------------


def test_header_cells_are_cleaned_and_made_unique(tmp_path: Path) -> None:
    text = '" 名称 ",金额（元）,"联系\n电话",,名称,Postal\nCode,名称_2\n' + "a,1,2,3,b,4,5\n"
    text = text.replace("Postal\nCode", '"Postal\nCode"')
    raw = read(tmp_path, "a.csv", text)
    expected = ["名称", "金额(元)", "联系电话", "列4", "名称_2", "Postal Code", "名称_2_2"]
    assert raw.table.column_names == expected
    assert raw.source_headers == [" 名称 ", "金额（元）", "联系\n电话", "", "名称", "Postal\nCode", "名称_2"]


def test_clean_header() -> None:
    assert clean_header("\u3000ＡＢＣ１２３\t") == "ABC123"
    assert clean_header("床位\r\n数") == "床位数"
    assert clean_header("a  b") == "a b"
    assert clean_headers(["", "x", "x", ""]) == ["列1", "x", "x_2", "列4"]


def test_empty_columns_without_header_are_dropped(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b,,\n1,2,,\n3,4,,\n")
    assert raw.table.column_names == ["a", "b"]
    assert "已删除 2 个没有表头也没有数据的空列" in raw.warnings


def test_ragged_rows_are_counted_against_the_columns_kept(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b,,\n1,2,,\n3\n4,5\n6,7,,,8\n")
    assert raw.table.column_names == ["a", "b"]
    assert raw.ragged_rows == {3: 1, 5: 3}  # row 4 lacks only the dropped empty columns


def test_data_wider_than_header_gets_a_blank_header_column(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.csv", "a,b\n1,2,3\n4,5,6\n")
    assert raw.table.column_names == ["a", "b", "列3"]
    assert raw.source_headers == ["a", "b", ""]
    assert raw.ragged_rows == {}


# --- spreadsheets ---------------------------------------------------------------------------


def workbook(path: Path, build: Any) -> Path:
    book = xlsxwriter.Workbook(str(path))
    build(book)
    book.close()
    return path


def test_xlsx_with_title_rows_types_and_sheets(tmp_path: Path) -> None:
    def build(book: Any) -> None:
        book.add_worksheet("说明")
        ws = book.add_worksheet("医疗机构")
        ws.merge_range(0, 0, 0, 4, "海河市2025年医疗机构名录")
        ws.write_row(1, 0, ["填报单位：海河市卫生健康委员会", "", "", "", "日期：2025-06-30"])
        ws.write_row(2, 0, ["名称", "床位数", "面积", "成立日期", "更新时间"])
        date_format = book.add_format({"num_format": "yyyy-mm-dd"})
        ws.write_row(3, 0, ["第一医院", 1200, 3456.5])
        ws.write_datetime(3, 3, datetime.datetime(2001, 1, 5), date_format)
        ws.write_datetime(3, 4, datetime.datetime(2025, 6, 30, 8, 30), date_format)
        ws.write_row(4, 0, ["儿童医院", 650, 0.00001, "2010年3月4日", True])
        book.add_worksheet("附表").write(0, 0, "x")

    path = workbook(tmp_path / "a.xlsx", build)
    raw = read_table(path, filename="名录.XLSX")
    assert raw.sheet == "医疗机构" and raw.sheets == ["说明", "医疗机构", "附表"]
    assert (raw.header_row, raw.first_data_row) == (3, 4)
    assert raw.table.column_names == ["名称", "床位数", "面积", "成立日期", "更新时间"]
    assert rows(raw) == [
        ["第一医院", "1200", "3456.5", "2001-01-05", "2025-06-30 08:30:00"],
        ["儿童医院", "650", "0.00001", "2010年3月4日", "true"],
    ]
    assert "已跳过表头上方的 2 行标题" in raw.warnings
    assert read_table(path, filename="a.xlsx", sheet="附表").table.column_names == ["x"]


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", lambda b: [b.add_worksheet("一"), b.add_worksheet("二")])
    with pytest.raises(InvalidInput) as e:
        read_table(path, filename="a.xlsx", sheet="三")
    assert "一、二" in e.value.message and e.value.fields == {"sheet": "三"}


def test_xlsx_merged_two_row_header(tmp_path: Path) -> None:
    def build(book: Any) -> None:
        ws = book.add_worksheet("名录")
        ws.merge_range(0, 0, 0, 3, "海河市医疗机构名录")
        ws.merge_range(1, 0, 2, 0, "名称")
        ws.merge_range(1, 1, 1, 2, "地址")
        ws.merge_range(1, 3, 2, 3, "电话")
        ws.write_row(2, 1, ["区", "街道"])
        ws.write_row(3, 0, ["第一医院", "和平区", "南营门街道", "022-1"])
        ws.write_row(4, 0, ["儿童医院", "河西区", "友谊路街道", "022-2"])

    raw = read_table(workbook(tmp_path / "a.xlsx", build), filename="a.xlsx")
    assert raw.table.column_names == ["名称", "地址_区", "地址_街道", "电话"]
    assert (raw.header_row, raw.first_data_row) == (2, 4)
    assert rows(raw)[1] == ["儿童医院", "河西区", "友谊路街道", "022-2"]
    assert any("两行表头" in w and "地址_区" in w for w in raw.warnings)


def test_xlsx_cells_merged_down_the_body_are_filled(tmp_path: Path) -> None:
    def build(book: Any) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["区", "医院"])
        ws.merge_range(1, 0, 3, 0, "和平区")
        ws.write_column(1, 1, ["甲", "乙", "丙"])
        ws.write_row(4, 0, ["河西区", "丁"])

    raw = read_table(workbook(tmp_path / "a.xlsx", build), filename="a.xlsx")
    assert rows(raw) == [["和平区", "甲"], ["和平区", "乙"], ["和平区", "丙"], ["河西区", "丁"]]
    assert "已把 1 处合并单元格的值填入其覆盖的每一行" in raw.warnings


def test_xlsx_blank_rows_and_empty_workbook(tmp_path: Path) -> None:
    def build(book: Any) -> None:
        ws = book.add_worksheet()
        ws.write_row(0, 0, ["a", "b"])
        ws.write_row(1, 0, [1, 2])
        ws.write_row(3, 0, [3, 4])

    raw = read_table(workbook(tmp_path / "a.xlsx", build), filename="a.xlsm")
    assert rows(raw) == [["1", "2"], ["3", "4"]] and raw.blank_rows == [3]
    empty = read_table(workbook(tmp_path / "b.xlsx", lambda b: b.add_worksheet("空")), filename="b.xlsx")
    assert empty.table.num_columns == 0 and empty.sheet == "空"


def test_corrupt_workbook_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="无法读取 Excel"):
        read(tmp_path, "a.xlsx", b"PK\x03\x04 not really a zip file")
    with pytest.raises(InvalidInput):
        read(tmp_path, "a.xls", HOSPITALS)


# --- JSON -----------------------------------------------------------------------------------


def test_json_array_of_objects(tmp_path: Path) -> None:
    data = [
        {"名称": "第一医院", "床位数": 1200, "面积": 12.5, "医保": True, "标签": ["a"]},
        {"名称": "儿童医院", "床位数": None, "地址": "河西区"},
        {},
    ]
    raw = read(tmp_path, "a.json", json.dumps(data, ensure_ascii=False))
    assert raw.table.column_names == ["名称", "床位数", "面积", "医保", "标签", "地址"]
    assert rows(raw) == [
        ["第一医院", "1200", "12.5", "true", '["a"]', None],
        ["儿童医院", None, None, None, None, "河西区"],
    ]
    assert (raw.header_row, raw.first_data_row) == (0, 1)


def test_json_object_holding_one_list(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.json", json.dumps({"total": 1, "data": [{"a": 1}]}), encoding="gbk")
    assert rows(raw) == [["1"]]


def test_ndjson_lines_and_blank_lines(tmp_path: Path) -> None:
    raw = read(tmp_path, "a.jsonl", '{"a": 1, "b": "x"}\n\n{"a": 2}\n{"b": "y", "c": 3.0}\n')
    assert raw.table.column_names == ["a", "b", "c"]
    assert rows(raw) == [["1", "x", None], ["2", None, None], [None, "y", "3"]]
    assert raw.blank_rows == [2]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.json", '[{"a": 1},', "JSON 格式错误"),
        ("a.json", "[1, 2]", "对象数组"),
        ("a.json", '{"a": [{"x": 1}], "b": [{"y": 2}]}', "对象数组"),
        ("a.ndjson", '{"a": 1}\n[1]\n', "第 2 行不是 JSON 对象"),
        ("a.ndjson", '{"a": 1}\n{"a": \n', "第 2 行不是有效的 JSON"),
    ],
)
def test_bad_json_is_invalid_input(tmp_path: Path, name: str, data: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read(tmp_path, name, data)


# --- types ----------------------------------------------------------------------------------


def test_unsupported_types(tmp_path: Path) -> None:
    assert is_tabular("名录.CSV") and is_tabular("a.xlsx") and is_tabular("a.ndjson")
    assert not is_tabular("a.pdf") and not is_tabular("csv")
    with pytest.raises(InvalidInput, match="不支持的表格文件类型"):
        read(tmp_path, "a.pdf", b"%PDF-1.4")


def test_max_title_rows_bounds_the_header_search(tmp_path: Path) -> None:
    text = "标题\n说明\n名称,区,床位数\n第一医院,和平区,1200\n"
    assert read(tmp_path, "a.csv", text).header_row == 3
    assert read(tmp_path, "b.csv", text, max_title_rows=1).header_row == 1


def test_garbage_gives_a_table_or_invalid_input(tmp_path: Path) -> None:
    """Whatever bytes arrive, the caller gets a RawTable or InvalidInput, never another error."""
    rng = random.Random(11)
    pieces = [b",", b"\n", b"\r", b'"', b"\t", b";", b"\xe5\x8c\xbb", "医".encode("gbk"), b"\xff", b"\x00"]
    pieces += [b" ", b"a", b"1", b"2025-01-01", b"{", b"}", b"[", b"]", b'"k":', b"\xef\xbb\xbf"]
    for i in range(300):
        name = f"f{i}" + rng.choice([".csv", ".tsv", ".json", ".ndjson", ".xlsx"])
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        with contextlib.suppress(InvalidInput):
            assert isinstance(read(tmp_path, name, data), RawTable)


# --- large files: blocks, transcoding in place, trimming ------------------------------------


def test_quoted_line_breaks_across_many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quotes in the body: pyarrow follows them from block to block, so a cell's line break
    never ends a row, wherever a block boundary falls."""
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)
    lines = ["编号,说明,值"] + [f'{i},"第{i}行\n续行,含逗号",{i * 2}' for i in range(3000)]
    raw = read(tmp_path, "a.csv", "\n".join(lines) + "\n")
    assert raw.table.num_rows == 3000 and raw.ragged_rows == {}
    assert rows(raw)[2999] == ["2999", "第2999行\n续行,含逗号", "5998"]


def test_unquoted_body_read_in_many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)
    lines = ['"编号","名称"'] + [f"{i},站点{i}" for i in range(5000)]  # quotes in the header only
    raw = read(tmp_path, "a.csv", "\r\n".join(lines) + "\r\n")
    assert raw.table.column_names == ["编号", "名称"]
    assert rows(raw) == [[str(i), f"站点{i}"] for i in range(5000)]


def test_gbk_is_transcoded_as_it_is_read(tmp_path: Path) -> None:
    """Past the sample, in blocks, with ragged rows too (they are re-read with the csv module)."""
    body = "".join(f"{i},海河市第{i}医院,和平区\n" for i in range(120_000))
    path = write(tmp_path, "a.csv", "编号,名称,区\n" + body, encoding="gbk")
    assert path.stat().st_size > 2 << 20
    raw = read_table(path, filename="a.csv")
    assert raw.encoding == "gb18030" and raw.table.num_rows == 120_000
    assert rows(raw)[-1] == ["119999", "海河市第119999医院", "和平区"]
    ragged = read(tmp_path, "b.csv", "编号,名称,区\n" + body + "120000,短行\n", encoding="gbk")
    assert ragged.ragged_rows == {120_002: 2} and rows(ragged)[-1] == ["120000", "短行", None]


def test_corrupt_gbk_far_down_names_the_byte(tmp_path: Path) -> None:
    head = ("编号,名称\n" + "".join(f"{i},医院{i}\n" for i in range(300_000))).encode("gbk")
    with pytest.raises(InvalidInput, match=f"第 {len(head) + 2} 字节"):
        read(tmp_path, "a.csv", head + "9,".encode("gbk") + b"\x81\x0a")


def test_whitespace_is_trimmed_wherever_it_hides(tmp_path: Path) -> None:
    """Cell edges are screened byte-wise; every whitespace the trim kernel knows is found."""
    cells = ["是", "否"] * 20_000  # their last byte is also the last byte of U+202F: screened, kept
    cells[30_001] = "\u3000否"
    cells[39_998] = "是\u00a0"
    cells[39_999] = "\u2028"
    text = "编号,是否\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells))
    raw = read(tmp_path, "a.csv", text)
    values = raw.table.column("是否").to_pylist()
    assert values[30_001] == "否" and values[39_998] == "是" and values[39_999] is None
    assert values[:4] == ["是", "否", "是", "否"] and values.count("是") == 20_000
