"""Query copies of large versions: built once in the background, the same answers as the Parquet
file, a fallback when unreadable, and a bounded number attached at once."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from kaifang.app import Platform
from kaifang.datastore import engines, query
from kaifang.datastore.engines import build_copy, copy_path, engine_for, row_copy_path, wait_for_copies
from kaifang.datastore.models import ResourceVersion, VersionStatus
from kaifang.datastore.query import ROW, DataQuery, QueryEngine
from kaifang.datastore.rowcopy import build_row_copy
from kaifang.datastore.storage import LocalFileStore
from tests.datastore.test_query import ROWS, SCHEMA, ask, ids, make_rows, walk, write_parquet

QUESTIONS: list[dict[str, Any]] = [
    {"limit": 100},
    {"区县": "东区", "limit": 3},
    {"sort": "-金额", "limit": 5},
    {"offset": 9, "limit": 4},
    {"数量__gte": "3", "sort": "日期,-编号", "limit": 6},
    {"group_by": "区县", "agg": "count,sum:数量,max:时间"},
    {"名称__contains": "a", "limit": 0},
]


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """These tests read files only: no platform database to empty."""
    yield


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def published(store: LocalFileStore, rows: list[dict[str, Any]] = ROWS, **values: Any) -> ResourceVersion:
    """A version as the ingest job leaves it: its Parquet file in the store, its row count and checksum."""
    number = secrets.randbelow(10**9) + 1
    key = f"data/{number}/1.parquet"
    store.path(key).parent.mkdir(parents=True)
    write_parquet(store.path(key), rows)
    fields: dict[str, Any] = {
        "id": number,
        "status": VersionStatus.published,
        "data_key": key,
        "sha256": secrets.token_hex(32),
        "row_count": len(rows),
        "schema": [c.to_dict() for c in SCHEMA],
    }
    return ResourceVersion(**(fields | values))


def answers(engine: QueryEngine) -> list[Any]:
    return [(r.records, r.total, r.next) for r in (ask(engine, **params) for params in QUESTIONS)]


def test_a_large_published_version_gets_a_copy_that_answers_the_same(
    store: LocalFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "COPY_MIN_ROWS", len(ROWS))
    version = published(store)
    engine = engine_for(store, version)
    on_parquet = answers(engine)  # served while the copy is being built
    wait_for_copies(30)
    assert engine.copy == str(copy_path(store, version)) and Path(engine.copy).is_file()
    assert answers(engine) == on_parquet
    built = sorted(p.name for p in copy_path(store, version).parent.iterdir())
    assert built == sorted([copy_path(store, version).name, row_copy_path(store, version).name])
    assert all(name.startswith(version.sha256) for name in built)  # and no half-built file left
    # Another process (or a restart) finds the copy built and reads it at once.
    engines._engines.clear()
    again = engine_for(store, version)
    assert again is not engine and again.copy == engine.copy


@pytest.mark.parametrize(
    ("rows", "status"),
    [(len(ROWS) - 1, VersionStatus.published), (len(ROWS), VersionStatus.review)],
    ids=["small", "in review"],
)
def test_small_or_unpublished_versions_read_the_parquet_file(
    store: LocalFileStore, monkeypatch: pytest.MonkeyPatch, rows: int, status: str
) -> None:
    """No query copy; a small published version gets its row copy (in the builder thread), one in
    review neither."""
    monkeypatch.setattr(engines, "COPY_MIN_ROWS", len(ROWS))
    monkeypatch.setattr(engines, "build_row_copy_apart", None)  # a small one is not built apart
    version = published(store, row_count=rows, status=status)
    engine = engine_for(store, version)
    wait_for_copies(30)
    assert engine.copy is None and not copy_path(store, version).exists()
    small = status == VersionStatus.published
    assert (engine.row_copy is not None) == small == row_copy_path(store, version).exists()
    assert answers(engine)[0][0][0]["编号"] == ROWS[0]["编号"]


def test_an_unreadable_copy_falls_back_to_the_parquet_file(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    expected = answers(QueryEngine(path, SCHEMA))
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"not a DuckDB database" * 100)
    engine = QueryEngine(path, SCHEMA)
    engine.use_copy(broken)
    assert answers(engine) == expected
    assert engine.copy is None


@pytest.mark.parametrize(
    ("build", "name", "message"),
    [
        (build_copy, "gaps.duckdb", "not at their _row"),
        (build_row_copy, "gaps.sqlite", "_row is not the position"),
    ],
    ids=["query copy", "row copy"],
)
def test_a_file_whose_row_numbers_are_not_positions_gets_no_copy(
    tmp_path: Path, build: Callable[[Path, Path], None], name: str, message: str
) -> None:
    """Deep pages of a copy are ranges (or seeks) of `_row`: a copy is only made where `_row` is
    the position."""
    path = write_parquet(tmp_path / "gaps.parquet", [{**row, ROW: row[ROW] * 10 + 5} for row in ROWS])
    target = tmp_path / "copies" / name
    with pytest.raises(RuntimeError, match=message):
        build(path, target)
    assert list(target.parent.iterdir()) == []  # no copy, no half-written file


def test_mostly_unique_text_is_stored_plain_in_the_copy(tmp_path: Path) -> None:
    """Names are read a page at a time: stored plain, not behind a compressed dictionary that
    costs half a millisecond per page; repetitive text (districts) keeps its dictionary."""
    rows = [{**row, ROW: i, "名称": f"名称{i:05d}"} for i, row in enumerate(make_rows(3000))]
    path = write_parquet(tmp_path / "v.parquet", rows)
    build_copy(path, path.with_suffix(".duckdb"))
    con = duckdb.connect(str(path.with_suffix(".duckdb")), read_only=True)
    stored = dict(
        con.execute(
            "SELECT column_name, any_value(compression) FROM pragma_storage_info('data') "
            "WHERE segment_type = 'VARCHAR' GROUP BY ALL"
        ).fetchall()
    )
    con.close()
    assert stored["名称"] == "Uncompressed"
    assert stored["区县"] != "Uncompressed"
    copy, parquet = QueryEngine(path, SCHEMA), QueryEngine(path, SCHEMA)
    copy.use_copy(path.with_suffix(".duckdb"))
    for params in ({"limit": 100, "offset": 2900}, {"名称": "名称01234"}, {"名称__contains": "0123"}):
        assert ask(copy, **params).records == ask(parquet, **params).records
    assert copy.copy is not None


UNSORTED: list[dict[str, str]] = [{}, {"区县": "东区"}, {"数量__gt": "0"}, {"名称": "没有这个名称"}]


@pytest.mark.parametrize("params", UNSORTED, ids=str)
def test_unsorted_pages_of_a_copy_cross_its_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]
) -> None:
    """A copy finds unsorted pages by `_row` range, row group by row group (here of 4 rows)."""
    monkeypatch.setattr(query, "COPY_ROW_GROUP", 4)
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    build_copy(path, path.with_suffix(".duckdb"))
    copy, parquet = QueryEngine(path, SCHEMA), QueryEngine(path, SCHEMA)
    copy.use_copy(path.with_suffix(".duckdb"))
    for limit in (1, 3, 5, 100):
        assert walk(copy, params, limit) == walk(parquet, params, limit)
        for offset in (0, 2, 7, 22, 23):
            page = ask(copy, **params, limit=limit, offset=offset)
            assert ids(page) == ids(ask(parquet, **params, limit=limit, offset=offset))
            assert page.next == ask(parquet, **params, limit=limit, offset=offset).next
    assert copy.copy is not None


def test_idle_copies_beyond_the_limit_are_detached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query._database, "MAX_ATTACHED", 1)
    engines_ = []
    for name, rows in (("a", ROWS), ("b", list(reversed(ROWS)))):
        path = write_parquet(tmp_path / f"{name}.parquet", [{**row, ROW: i} for i, row in enumerate(rows)])
        build_copy(path, path.with_suffix(".duckdb"))
        engine = QueryEngine(path, SCHEMA)
        engine.use_copy(path.with_suffix(".duckdb"))
        engines_.append((engine, answers(QueryEngine(path, SCHEMA))))
    for _ in range(3):
        for engine, expected in engines_:
            assert answers(engine) == expected and engine.copy is not None
    cur = query._database.cursor()
    attached = cur.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'copy_%'"
    ).fetchall()[0][0]
    cur.close()
    assert attached == 1


def test_exports_stream_from_the_copy(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    build_copy(path, path.with_suffix(".duckdb"))
    engine = QueryEngine(path, SCHEMA)
    engine.use_copy(path.with_suffix(".duckdb"))
    q = DataQuery(sort=[("金额", True)])
    streamed = pa.Table.from_batches(list(engine.batches(q, batch_size=4)))
    assert (
        streamed.to_pylist() == pa.Table.from_batches(list(QueryEngine(path, SCHEMA).batches(q))).to_pylist()
    )
    assert streamed.column_names == [c.name for c in SCHEMA] and engine.copy is not None


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (build_copy, "v.duckdb"),
        (engines.build_row_copy_here, "v.sqlite"),
        (engines.build_row_copy_apart, "v.sqlite"),
    ],
    ids=["query copy", "row copy", "row copy apart"],
)
def test_building_removes_copies_abandoned_mid_build_but_not_running_ones(
    tmp_path: Path, build: Callable[[Path, Path], None], name: str
) -> None:
    path = write_parquet(tmp_path / "v.parquet", ROWS)
    target = tmp_path / "copies" / name
    target.parent.mkdir()
    abandoned, running = (target.with_name(f".{name}.{tag}.part") for tag in ("old", "new"))
    for part in (abandoned, running):
        part.write_bytes(b"half a database")
    os.utime(abandoned, (time.time() - engines.ABANDONED_AFTER_S - 1,) * 2)
    build(path, target)
    assert sorted(p.name for p in target.parent.iterdir()) == [running.name, target.name]


def test_the_query_engine_holds_no_more_memory_than_the_setting(platform: Platform, tmp_path: Path) -> None:
    query.configure(256, tmp_path / "spill")
    try:
        with query._database.cursor() as cur:
            limit, spill = cur.execute(
                "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
            ).fetchone()
        assert limit == "256.0 MiB" and spill == str(tmp_path / "spill")
    finally:
        settings = platform.settings
        query.configure(settings.query_memory_mb, settings.home / "tmp" / "duckdb")
