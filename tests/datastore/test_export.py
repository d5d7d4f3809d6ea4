"""Downloads: CSV, JSON, XLSX and Parquet written from real query batches, read back with
independent readers (csv, json, python-calamine, pyarrow)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook

from kaifang.datastore import export
from kaifang.datastore.export import (
    citation,
    content_disposition,
    csv_chunks,
    json_chunks,
    parquet_file,
    xlsx_file,
)
from kaifang.datastore.query import ROW, DataQuery, Filter, QueryEngine
from kaifang.datastore.storage import LocalFileStore
from kaifang.datastore.types import ARROW_TYPES, Column
from kaifang.datastore.types import ColumnType as T
from kaifang.errors import InvalidInput
from tests.datastore.test_query import ODD, ROWS, SCHEMA, write_parquet

CITATION = citation(
    "市交通运输局", "公交线路", 3, "开放城市公共数据开放平台", "https://data.example.cn/d/1", "2026-11-27"
)
TEXT = {c.name for c in SCHEMA if c.type is T.text}


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """These tests write and read files only: no platform database to empty."""
    yield


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> QueryEngine:
    return QueryEngine(write_parquet(tmp_path_factory.mktemp("x") / "v1.parquet", ROWS), SCHEMA)


def neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_cell(name: str, value: Any) -> str:
    """How a value must read back from the CSV (the csv module sees every cell as text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str) and name in TEXT:
        return neutral(value)
    return str(value)


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("bom", [True, False])
def test_csv_parses_back_to_the_same_rows(engine: QueryEngine, bom: bool) -> None:
    data = b"".join(csv_chunks(engine.batches(DataQuery(), batch_size=5), bom=bom))
    assert data.startswith(b"\xef\xbb\xbf") is bom
    assert b"\r\n" in data
    table = read_csv(data.removeprefix(b"\xef\xbb\xbf"))
    assert table[0] == [c.name for c in SCHEMA]
    assert len(table) == len(ROWS) + 1
    for row, got in zip(ROWS, table[1:], strict=True):
        expected = [csv_cell(c.name, row[c.name]) for c in SCHEMA]
        assert [float(g) if c.type is T.decimal and g else g for g, c in zip(got, SCHEMA, strict=True)] == [
            float(e) if c.type is T.decimal and e else e for e, c in zip(expected, SCHEMA, strict=True)
        ]


def test_csv_neutralises_formulas_in_text_but_not_numbers(tmp_path: Path) -> None:
    schema = [
        Column("公式", T.text),
        Column("数", T.integer),
        Column("小数", T.decimal),
        Column("=标题", T.text),
    ]
    cells = ["=1+1", "+86 10", "-5", "@SUM(A1)", "\tx", "\rx", "普通", "a=b", None]
    rows = [{ROW: i, "公式": v, "数": -5, "小数": -0.5, "=标题": "x"} for i, v in enumerate(cells)]
    engine = QueryEngine(write_parquet(tmp_path / "f.parquet", rows, schema), schema)
    table = read_csv(b"".join(csv_chunks(engine.batches(DataQuery()), bom=False)))
    assert table[0] == ["公式", "数", "小数", "'=标题"]
    assert [r[0] for r in table[1:]] == [
        "'=1+1",
        "'+86 10",
        "'-5",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "普通",
        "a=b",
        "",
    ]
    assert {(r[1], r[2]) for r in table[1:]} == {("-5", "-0.5")}


def test_csv_of_a_filtered_sorted_selection_and_of_nothing(engine: QueryEngine) -> None:
    q = DataQuery(fields=["编号", "金额"], filters=[Filter("区县", "eq", "东区")], sort=[("金额", True)])
    table = read_csv(b"".join(csv_chunks(engine.batches(q), bom=False)))
    page = engine.run(DataQuery(**{**q.__dict__, "limit": 1000}))
    assert [[int(a), float(b) if b else None] for a, b in table[1:]] == [
        [r["编号"], r["金额"]] for r in page.records
    ]
    empty = DataQuery(fields=["编号"], filters=[Filter("区县", "eq", "无此区")])
    assert read_csv(b"".join(csv_chunks(engine.batches(empty), bom=False))) == [["编号"]]


def test_csv_of_groups(engine: QueryEngine) -> None:
    q = DataQuery(group_by=["区县"], aggs=[("count", None), ("sum", "数量")])
    table = read_csv(b"".join(csv_chunks(engine.batches(q), bom=False)))
    records = engine.run(q).records
    assert table == [["区县", "count", "sum_数量"]] + [
        [r["区县"] or "", str(r["count"]), str(r["sum_数量"])] for r in records
    ]


# ---------------------------------------------------------------- JSON


def test_json_parses_and_carries_the_citation(engine: QueryEngine) -> None:
    q = DataQuery(sort=[("日期", False)])
    document = json.loads(b"".join(json_chunks(engine.batches(q, batch_size=4), engine.fields(q), CITATION)))
    assert document["source"] == CITATION
    assert document["fields"] == [{"name": c.name, "type": str(c.type)} for c in SCHEMA]
    assert document["records"] == engine.run(DataQuery(sort=[("日期", False)], limit=1000)).records


def test_json_of_nothing_is_still_a_document(engine: QueryEngine) -> None:
    q = DataQuery(filters=[Filter("编号", "lt", 0)])
    document = json.loads(b"".join(json_chunks(engine.batches(q), engine.fields(q), CITATION)))
    assert document["records"] == [] and document["source"] == CITATION


# ---------------------------------------------------------------- XLSX


def test_xlsx_opens_with_both_sheets(engine: QueryEngine, tmp_path: Path) -> None:
    path = tmp_path / "数据.xlsx"
    q = DataQuery()
    xlsx_file(engine.batches(q, batch_size=7), engine.fields(q), CITATION, path)
    book = CalamineWorkbook.from_path(str(path))
    assert book.sheet_names == ["数据", "数据来源"]
    data = book.get_sheet_by_name("数据").to_python()
    assert data[0] == [c.name for c in SCHEMA]
    assert len(data) == len(ROWS) + 1
    for row, got in zip(ROWS, data[1:], strict=True):
        cells = dict(zip([c.name for c in SCHEMA], got, strict=False))
        assert cells["编号"] == row["编号"]
        assert cells["名称"] == row["名称"]  # stored as text as-is: formulas never run
        assert cells["金额"] == (row["金额"] if row["金额"] is not None else "")
        assert cells["开放"] == (row["开放"] if row["开放"] is not None else "")
        assert cells["日期"] == (row["日期"] if row["日期"] is not None else "")
        assert cells["时间"] == (row["时间"] if row["时间"] is not None else "")
        assert cells.get(ODD, "") == (row[ODD] or "")
    assert book.get_sheet_by_name("数据来源").to_python() == [[CITATION]]


def test_xlsx_never_writes_formulas(tmp_path: Path) -> None:
    schema = [Column("公式", T.text), Column("数", T.integer)]
    rows = [{ROW: 0, "公式": '=HYPERLINK("http://x")', "数": -5}, {ROW: 1, "公式": "@A1", "数": 10**17}]
    engine = QueryEngine(write_parquet(tmp_path / "f.parquet", rows, schema), schema)
    path = tmp_path / "f.xlsx"
    xlsx_file(engine.batches(DataQuery()), engine.fields(DataQuery()), CITATION, path)
    with zipfile.ZipFile(path) as zipped:
        sheet = zipped.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula element anywhere
    data = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("数据").to_python()
    assert data[1:] == [['=HYPERLINK("http://x")', -5], ["@A1", str(10**17)]]  # huge ints stay exact


def test_xlsx_row_limit_suggests_csv_and_leaves_no_file(
    engine: QueryEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 10)
    path = tmp_path / "big.xlsx"
    with pytest.raises(InvalidInput, match="CSV 或 Parquet"):
        xlsx_file(engine.batches(DataQuery(), batch_size=4), engine.fields(DataQuery()), CITATION, path)
    assert not path.exists()


# ---------------------------------------------------------------- Parquet


def test_parquet_round_trips_without_row(engine: QueryEngine, tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    described = [
        Column(c.name, c.type, description="说明" if c.name == "金额" else "", unit="元") for c in SCHEMA
    ]
    parquet_file(engine.batches(DataQuery(), batch_size=6), described, path)
    table = pq.read_table(path)
    assert table.schema.names == [c.name for c in SCHEMA]
    # Parquet has no seconds unit: timestamp[s] is stored (and read back) in milliseconds.
    stored = [pa.timestamp("ms") if c.type is T.datetime else ARROW_TYPES[c.type] for c in SCHEMA]
    assert [f.type for f in table.schema] == stored
    assert table.to_pylist() == [{k: v for k, v in r.items() if k != ROW} for r in ROWS]
    assert table.schema.field("金额").metadata == {b"description": "说明".encode(), b"unit": "元".encode()}


def test_parquet_of_a_selection(engine: QueryEngine, tmp_path: Path) -> None:
    q = DataQuery(fields=["日期", "编号"], filters=[Filter("开放", "eq", True)])
    path = tmp_path / "sel.parquet"
    parquet_file(engine.batches(q), engine.columns(q), path)
    expected = [{"日期": r["日期"], "编号": r["编号"]} for r in ROWS if r["开放"] is True]
    assert pq.read_table(path).to_pylist() == expected


# ---------------------------------------------------------------- headers and citation


def test_content_disposition_for_a_chinese_name() -> None:
    header = content_disposition("公交线路（2024年）.csv")
    fallback = re.search(r'filename="([^"]*)"', header)
    encoded = re.search(r"filename\*=UTF-8''(\S+)$", header)
    assert header.startswith("attachment; ")
    assert fallback and fallback.group(1) == "2024.csv"
    assert 'filename="download.xlsx"' in content_disposition("公交线路.xlsx")
    assert encoded and unquote(encoded.group(1)) == "公交线路（2024年）.csv"
    assert header.isascii()


def test_content_disposition_keeps_ascii_and_drops_what_could_break_the_header() -> None:
    header = content_disposition('bus lines 2024 "x"\r\n公交.xlsx')
    assert "\r" not in header and "\n" not in header
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback and fallback.group(1) == "bus_lines_2024_x.xlsx"
    assert content_disposition("data.parquet").startswith('attachment; filename="data.parquet"; ')


def test_citation_is_the_art_24_source_line() -> None:
    assert CITATION == (
        "数据来源：市交通运输局《公交线路》第3版，开放城市公共数据开放平台，"
        "https://data.example.cn/d/1，下载日期：2026-11-27"
    )


def test_exports_read_big_batches_lazily(engine: QueryEngine) -> None:
    batches = engine.batches(DataQuery(), batch_size=3)
    first = next(batches)
    assert isinstance(first, pa.RecordBatch) and first.num_rows <= 3 and ROW not in first.schema.names
    assert sum(b.num_rows for b in batches) + first.num_rows == len(ROWS)


# ---------------------------------------------------------------- JSON text, column by column


def test_json_records_are_the_text_json_dumps_writes() -> None:
    strings = ['a"b\\c', "\n\t\x01\x1f\x7f", "海河\u2028市", "", None, "'=1"]
    floats = [5.0, 0.1, -0.0, 1e-07, 123456789.123, None]
    batch = pa.RecordBatch.from_pydict(
        {
            '名称 "x"': strings,
            "小数": floats,
            "整数": [1, None, -3, 2**62, 0, 7],
            "开放": [True, False, None, True, False, True],
        }
    )
    document = json.loads(b"".join(json_chunks([batch, batch.slice(0, 0), batch], [], CITATION)))
    expected = json.loads(json.dumps(batch.to_pylist(), ensure_ascii=False))
    assert document["records"] == expected * 2
    decimals = [r["小数"] for r in document["records"]]
    assert all(isinstance(v, float) for v in decimals if v is not None)  # 5.0 stays a float
    text = b"".join(json_chunks([batch], [], CITATION)).decode()
    assert json.dumps(strings[1], ensure_ascii=False) in text and "\u2028" in text


# ---------------------------------------------------------------- kept whole-table files


def test_a_filled_file_is_kept_only_when_complete(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    key = export.export_key(7, 2, "ab" * 32, "csv")
    assert key == f"exports/7/2-{'ab' * 8}-r{export.EXPORT_REVISION}.csv"
    abandoned = export.CacheFill(store, key)
    stream = abandoned.stream(iter([b"a,b\r\n", b"1,2\r\n"]))
    assert next(stream) == b"a,b\r\n"
    stream.close()  # the client hung up
    abandoned.keep()
    assert not store.exists(key) and not list(store.path(key).parent.iterdir())
    first, second = export.CacheFill(store, key), export.CacheFill(store, key)
    one, two = first.stream(iter([b"a,b\r\n", b"1,2\r\n"])), second.stream(iter([b"a,b\r\n", b"1,2\r\n"]))
    assert next(one) == next(two) == b"a,b\r\n"
    assert b"".join(two) == b"1,2\r\n"
    second.keep()
    assert store.path(key).read_bytes() == b"a,b\r\n1,2\r\n"  # while the first is still filling
    assert b"".join(one) == b"1,2\r\n"
    first.keep()
    assert store.path(key).read_bytes() == b"a,b\r\n1,2\r\n"
    assert [p.name for p in store.path(key).parent.iterdir()] == [store.path(key).name]
    assert b"".join(export.csv_with_bom(store, key)) == b"\xef\xbb\xbfa,b\r\n1,2\r\n"


def test_parquet_into_store_writes_atomically(engine: QueryEngine, tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    key = export.export_key(1, 1, "cd" * 32, "parquet")
    export.parquet_into_store(engine.batches(DataQuery(), batch_size=4), SCHEMA, store, key)
    assert pq.read_table(store.path(key)).num_rows == len(ROWS)
    assert [p.name for p in store.path(key).parent.iterdir()] == [store.path(key).name]

    def broken() -> Iterator[pa.RecordBatch]:
        yield next(engine.batches(DataQuery(), batch_size=4))
        raise InvalidInput("查询中断")

    with pytest.raises(InvalidInput):
        export.parquet_into_store(broken(), SCHEMA, store, export.export_key(1, 2, "cd" * 32, "parquet"))
    assert [p.name for p in store.path(key).parent.iterdir()] == [store.path(key).name]


class FullDisk(io.RawIOBase):
    def write(self, data: Any) -> int:
        raise OSError(28, "No space left on device")


def test_a_download_goes_on_when_its_copy_cannot_be_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalFileStore(tmp_path)
    key = export.export_key(3, 1, "ef" * 32, "csv")
    full = export.CacheFill(store, key)
    monkeypatch.setattr(full, "_open", lambda: FullDisk())
    assert b"".join(full.stream(iter([b"a,b\r\n", b"1,2\r\n"]))) == b"a,b\r\n1,2\r\n"
    full.keep()
    assert not store.exists(key) and not list(tmp_path.rglob("*.filling"))
    unwritable = export.CacheFill(store, key)
    monkeypatch.setattr(export, "_part_beside", lambda *_: tmp_path / "missing" / "dir" / "part")
    assert b"".join(unwritable.stream(iter([b"x\r\n"]))) == b"x\r\n"
    unwritable.keep()
    assert not store.exists(key)
