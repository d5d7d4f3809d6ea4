"""Row copies of large versions: the same answers as DuckDB for every unsorted page they take,
DuckDB for everything else, a bounded scan, and a fallback when one cannot be read."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kaifang.datastore import engines, rowcopy
from kaifang.datastore.engines import build_copy, engine_for, row_copy_path, wait_for_copies
from kaifang.datastore.query import ROW, QueryEngine
from kaifang.datastore.rowcopy import build_row_copy
from kaifang.datastore.storage import LocalFileStore
from kaifang.datastore.types import Column
from kaifang.datastore.types import ColumnType as T
from tests.datastore.test_engines import published
from tests.datastore.test_query import ROWS, SCHEMA, ask, ids, make_rows, walk, write_parquet


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """These tests read files only: no platform database to empty."""
    yield


class Pages:
    """Counts the pages the row copy answered and the scans it gave up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered = self.gave_up = 0
        page = rowcopy.RowCopy.page

        def counted(copy: rowcopy.RowCopy, *args: Any) -> list[tuple[Any, ...]]:
            try:
                rows = page(copy, *args)
            except rowcopy.OverBudget:
                self.gave_up += 1
                raise
            self.answered += 1
            return rows

        monkeypatch.setattr(rowcopy.RowCopy, "page", counted)


def engines_on(path: Path) -> tuple[QueryEngine, QueryEngine]:
    """An engine on the query copy alone, and one with the row copy too."""
    build_copy(path, path.with_suffix(".duckdb"))
    build_row_copy(path, path.with_suffix(".sqlite"))
    duck, rows = QueryEngine(path, SCHEMA), QueryEngine(path, SCHEMA)
    duck.use_copy(path.with_suffix(".duckdb"))
    rows.use_copy(path.with_suffix(".duckdb"))
    rows.use_row_copy(path.with_suffix(".sqlite"))
    return duck, rows


TEXTS = ["", "a", "A", "ab", "b", "东区", "东", "西区", "Ω", "😀", "z\u0301", "é", "e\u0301", "１", "1", "Zz"]


def test_text_compares_as_duckdb_compares_it(tmp_path: Path) -> None:
    """Byte order of UTF-8 in both engines: Latin, CJK, combining marks, emoji, full-width digits."""
    rows = [{**row, "区县": TEXTS[i % len(TEXTS)]} for i, row in enumerate(make_rows(64))]
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", rows))
    for value in TEXTS:
        for op in ("", "__ne", "__gt", "__gte", "__lt", "__lte", "__contains"):
            params = {f"区县{op}": value, "limit": 100}
            assert ask(copy, **params).records == ask(duck, **params).records, params
    assert (
        ask(copy, 区县__in="东区,😀,e\u0301", limit=100).records
        == ask(duck, 区县__in="东区,😀,e\u0301", limit=100).records
    )


def test_random_filters_on_every_type_answer_as_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    rows = make_rows(400, seed=3)
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", rows))
    pages = Pages(monkeypatch)
    values = {
        "编号": ["1000", "1200", "1399"],
        "数量": ["-5", "0", "3", "12"],
        "区县": ["东区", "北区", "区"],
        "金额": ["-3", "0", "12.5", "99.99", "1000000"],
        "开放": ["是", "否"],
        "日期": ["2024-02-29", "2024-03-01", "2024-03-31"],
        "时间": [
            "2024-03-01T08:30:00",
            "2024-02-28T02:30:00",
            "2024-03-01T13:30:00.5",
            "2024-03-01T08:30:00+08:00",
        ],
    }
    for _ in range(300):
        params: dict[str, Any] = {}
        for column in rng.sample(sorted(values), rng.choice([1, 1, 2])):
            op = rng.choice(["", "__ne", "__gt", "__gte", "__lt", "__lte", "__in", "__isnull"])
            if op == "__isnull":
                params[column + op] = rng.choice(["true", "false"])
            elif op == "__in":
                params[column + op] = ",".join(rng.sample(values[column], 2))
            else:
                params[column + op] = rng.choice(values[column])
        params |= rng.choice(
            [{"limit": 7}, {"limit": 7, "offset": 9}, {"limit": 100}, {"fields": "名称,时间"}]
        )
        got, expected = ask(copy, **params), ask(duck, **params)
        assert (got.records, got.total, got.next) == (expected.records, expected.total, expected.next), params
        filters = {k: v for k, v in params.items() if k not in ("limit", "offset", "fields")}
        assert walk(copy, filters, 40) == walk(duck, filters, 40)
    assert pages.answered > 300 and pages.gave_up == 0


def test_decimals_with_nan_and_infinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite stores NaN as NULL: the page still reads NaN as null, as DuckDB's does, but a filter
    on that column is DuckDB's (NaN sorts above every number there)."""
    specials = [math.nan, math.inf, -math.inf, 1.5, None]
    rows = [{**row, "金额": specials[i % len(specials)]} for i, row in enumerate(ROWS)]
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", rows))
    pages = Pages(monkeypatch)
    assert ask(copy, limit=100).records == ask(duck, limit=100).records
    assert [r["金额"] for r in ask(copy, limit=5).records] == [None, None, None, 1.5, None]
    assert pages.answered == 2
    for params in ({"金额__gt": "1"}, {"金额__isnull": "true"}, {"金额__lt": "0"}):
        assert ask(copy, **params).records == ask(duck, **params).records
    assert pages.answered == 2  # the filters on 金额 went to DuckDB
    assert ask(copy, 区县="东区").records == ask(duck, 区县="东区").records
    assert pages.answered == 3


def test_a_rare_filter_gives_up_within_the_budget_then_is_left_to_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matches only at the end: the row scan stops at its budget and DuckDB answers; once the
    total is known the copy is not tried for a filter too rare to fill a page in budget."""
    rows = [{**row, "区县": "南区" if i >= 4900 else "北区"} for i, row in enumerate(make_rows(5000))]
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", rows))
    monkeypatch.setattr(rowcopy, "SCAN_BUDGET_ROWS", 1000)
    pages = Pages(monkeypatch)
    first, expected = ask(copy, 区县="南区", limit=100), ask(duck, 区县="南区", limit=100)
    assert (first.records, first.total, first.next) == (expected.records, 100, None)
    assert (pages.gave_up, pages.answered) == (1, 0)
    # Now the total is known (the page held every match): 100 in 5,000 rows would need a scan of
    # about 5,000 rows for a page, past the budget, so the copy is not tried again.
    assert ids(ask(copy, 区县="南区", limit=100)) == ids(expected)
    assert (pages.gave_up, pages.answered) == (1, 0)
    assert ids(ask(copy, 区县="北区", limit=10, offset=20)) == list(range(1020, 1030))
    assert pages.answered == 1  # a dense filter is the copy's


def test_sorted_pages_groups_and_counts_are_duckdbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", ROWS))
    pages = Pages(monkeypatch)
    for params in (
        {"sort": "-金额", "limit": 5},
        {"group_by": "区县", "agg": "count"},
        {"区县": "东区", "limit": 0},
        {"sort": "日期", "区县": "东区"},
    ):
        got, expected = ask(copy, **params), ask(duck, **params)
        assert (got.records, got.total, got.next) == (expected.records, expected.total, expected.next)
    assert pages.answered == 0
    assert walk(copy, {}, 5) == walk(duck, {}, 5) and pages.answered == 5


def test_types_are_stored_for_sqlites_comparisons(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    build_row_copy(path, tmp_path / "v.sqlite")
    con = sqlite3.connect(tmp_path / "v.sqlite")
    row = con.execute(
        'SELECT "_row", "编号", "金额", "开放", "日期", "时间" FROM data WHERE "_row" = 0'
    ).fetchone()
    con.close()
    first = ROWS[0]
    assert row == (
        0,
        first["编号"],
        first["金额"],
        None if first["开放"] is None else int(first["开放"]),
        None if first["日期"] is None else first["日期"].isoformat(),
        None if first["时间"] is None else first["时间"].isoformat(),
    )


def test_an_unreadable_row_copy_falls_back_to_duckdb(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    duck, _ = engines_on(path)
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"not a SQLite database" * 100)
    engine = QueryEngine(path, SCHEMA)
    engine.use_row_copy(broken)
    assert engine.row_copy is None
    strange = tmp_path / "strange.sqlite"  # a SQLite file, but not a row copy of this layout
    build_row_copy(path, strange)
    con = sqlite3.connect(strange)
    con.execute("UPDATE kaifang_row_copy SET value = '{\"layout\": 99}'")
    con.commit()
    con.close()
    engine.use_row_copy(strange)
    assert engine.row_copy is None
    assert ask(engine, limit=5).records == ask(duck, limit=5).records
    # One that breaks after it was opened: the page comes from DuckDB and the copy is dropped.
    vanishing = tmp_path / "vanishing.sqlite"
    build_row_copy(path, vanishing)
    engine.use_row_copy(vanishing)
    assert engine.row_copy is not None
    con = sqlite3.connect(vanishing)
    con.execute("DROP TABLE data")
    con.commit()
    con.close()
    assert ask(engine, limit=5, offset=3).records == ask(duck, limit=5, offset=3).records
    assert engine.row_copy is None


def test_a_large_published_version_gets_a_row_copy_built_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "COPY_MIN_ROWS", len(ROWS))
    store = LocalFileStore(tmp_path / "files")
    version = published(store)
    engine = engine_for(store, version)
    expected = [ask(engine, limit=4, offset=n).records for n in range(0, 24, 4)]
    wait_for_copies(60)
    assert engine.row_copy == str(row_copy_path(store, version))
    pages = Pages(monkeypatch)
    assert [ask(engine, limit=4, offset=n).records for n in range(0, 24, 4)] == expected
    assert pages.answered == 6
    engines._engines.clear()
    assert engine_for(store, version).row_copy == engine.row_copy  # a restart finds it built


def test_a_failed_build_leaves_no_row_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "COPY_MIN_ROWS", len(ROWS))
    store = LocalFileStore(tmp_path / "files")
    version = published(store, rows=[{**row, ROW: row[ROW] + 1} for row in ROWS])
    engine = engine_for(store, version)
    wait_for_copies(60)
    assert engine.row_copy is None and not row_copy_path(store, version).exists()
    assert [p for p in row_copy_path(store, version).parent.iterdir() if "rows" in p.name] == []


def test_dates_and_times_far_apart_order_as_in_duckdb(tmp_path: Path) -> None:
    """ISO text sorts as the dates do, with and without fractions of a second in the filter."""
    start = datetime(1999, 12, 31, 23, 59, 59)
    rows = [
        {
            **row,
            "日期": date(1970, 1, 1) + timedelta(days=97 * i),
            "时间": start + timedelta(seconds=3607 * i),
        }
        for i, row in enumerate(ROWS)
    ]
    duck, copy = engines_on(write_parquet(tmp_path / "v.parquet", rows))
    for params in (
        {"日期__gte": "1972-06-01"},
        {"日期__lt": "1971-01-01"},
        {"时间__gt": "2000-01-01T00:59:59.999999"},
        {"时间__lte": "2000-01-01T05:00:00"},
        {"时间": rows[3]["时间"].isoformat()},
    ):
        assert ask(copy, **params).records == ask(duck, **params).records, params


def test_columns_are_those_of_the_file(tmp_path: Path) -> None:
    """A filter on a column the copy lacks (a schema newer than the file) is DuckDB's to refuse."""
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    build_row_copy(path, tmp_path / "v.sqlite")
    copy = rowcopy.RowCopy(tmp_path / "v.sqlite")
    assert copy.columns == {c.name for c in SCHEMA}
    assert not copy.answers(Column("新列", T.text), rowcopy.Filter("新列", "eq", "x"))


def test_the_setting_turns_row_copies_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "_row_copies", [True])
    engines.configure(row_copies=False)
    store = LocalFileStore(tmp_path / "files")
    version = published(store)
    engine = engine_for(store, version)
    wait_for_copies(60)
    assert engine.row_copy is None and not row_copy_path(store, version).exists()
    assert ask(engine, limit=3).records[0]["编号"] == ROWS[0]["编号"]
