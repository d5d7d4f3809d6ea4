"""The read side of a resource version: DuckDB answers a checked `DataQuery` over its rows.

The query language itself — parsing the data API's parameters and checking a query against the
schema — lives in `querydsl.py`; its public names are re-exported here. Values are always bound
as parameters and identifiers always quoted, so neither a value nor a (Chinese) column name can
change the SQL.

Every version carries a hidden `_row` column (0..n-1 in file order). It breaks ties in every
sort and anchors keyset cursors, so page 40,000 costs no more than page 1: the next page is
`WHERE (sort keys, _row) > (last row's)`, and min/max statistics on `_row` skip the rest.

A version's rows live in its immutable Parquet file. A large published version also gets a
*query copy* (`engines.py`): the same rows, in the same `_row` order, in DuckDB's own storage
format, whose small row groups with zone maps and per-vector compression answer the same SQL
several times faster than whole Parquet pages can be decoded. The engine reads the copy once it
is ready and the Parquet file until then; the answers are the same either way.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from kaifang.datastore import rowcopy
from kaifang.datastore.querydsl import (
    AGGREGATES,
    CHINA,
    MAX_IN_VALUES,
    NUMERIC,
    OPERATORS,
    RESERVED,
    ROW,
    DataQuery,
    Filter,
    agg_name,
    aggs_of,
    check_query,
    encode_cursor,
    group_offset,
    parse_query,
    parse_value,
    quote,
    row_position,
)
from kaifang.datastore.rowcopy import OverBudget, RowCopy
from kaifang.datastore.types import Column, ColumnType
from kaifang.errors import InvalidInput

__all__ = [
    "AGGREGATES",
    "CHINA",
    "COPY_TABLE",
    "MAX_IN_VALUES",
    "NUMERIC",
    "OPERATORS",
    "RESERVED",
    "ROW",
    "DataQuery",
    "Filter",
    "QueryEngine",
    "QueryResult",
    "check_query",
    "parse_query",
    "parse_value",
    "quote",
]

log = logging.getLogger("kaifang.datastore")

COPY_TABLE = "data"  # the one table of a query copy
COPY_ROW_GROUP = 122_880  # DuckDB's rows per row group: the unit its zone maps skip
_COMPARISONS = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_TOTALS_CACHED = 256


@dataclass
class QueryResult:
    """One page: typed JSON-ready records, the exact number of matches and the next page's cursor."""

    fields: list[dict[str, str]]
    records: list[dict[str, Any]]
    total: int
    next: str | None


# ---------------------------------------------------------------- SQL


def _condition(f: Filter) -> tuple[str, list[Any]]:
    ident = quote(f.column)
    if f.op == "isnull":
        return f"{ident} IS {'' if f.value else 'NOT '}NULL", []
    if f.op == "in":
        values = list(f.value)
        return (f"{ident} IN ({', '.join('?' * len(values))})" if values else "FALSE"), values
    if f.op == "contains":
        return f"contains({ident}, ?)", [f.value]
    if f.value is None and f.op in ("eq", "ne"):
        return f"{ident} IS {'' if f.op == 'eq' else 'NOT '}NULL", []
    return f"{ident} {_COMPARISONS[f.op]} ?", [f.value]


def _where(conditions: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    if not conditions:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in conditions), [p for _, ps in conditions for p in ps]


def _after(keys: list[tuple[Column, bool]], values: list[Any], row: int) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor in `ORDER BY keys… NULLS LAST, _row` (keyset pagination)."""
    sql, params = f"{quote(ROW)} > ?", [row]
    for (column, desc), value in reversed(list(zip(keys, values, strict=True))):
        ident = quote(column.name)
        if value is None:  # NULLs sort last and tie with each other: only NULL rows can follow
            sql = f"({ident} IS NULL AND {sql})"
        else:
            sql = f"({ident} {'<' if desc else '>'} ? OR {ident} IS NULL OR ({ident} = ? AND {sql}))"
            params = [value, value, *params]
    return sql, params


def _rows_from(row: int) -> tuple[str, list[Any]]:
    return f"{quote(ROW)} >= ?", [row]


def _rows_before(row: int) -> tuple[str, list[Any]]:
    return f"{quote(ROW)} < ?", [row]


def _order(keys: list[tuple[str, bool]]) -> str:
    if not keys:
        return ""
    return " ORDER BY " + ", ".join(f"{quote(n)} {'DESC' if d else 'ASC'} NULLS LAST" for n, d in keys)


def _select(columns: str, source: str, rest: str = "") -> str:
    """The one place SQL text is assembled: from quoted identifiers and `?` placeholders only."""
    return f"SELECT {columns} FROM {source}{rest}"  # noqa: S608


def _agg_sql(func: str, column: Column | None) -> str:
    if column is None:
        return "count(*)"
    if func == "sum" and column.type is ColumnType.integer:
        return f"CAST(sum({quote(column.name)}) AS BIGINT)"  # DuckDB sums BIGINT as HUGEINT
    return f"{func}({quote(column.name)})"


def _agg_type(func: str, column: Column | None) -> ColumnType:
    if func == "count" or column is None:
        return ColumnType.integer
    return ColumnType.decimal if func == "avg" else column.type


# ---------------------------------------------------------------- DuckDB


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Database:
    """One in-process DuckDB for the process; each query gets its own cursor (thread-safe).

    Query copies are attached to it read-only, each under an alias of its own, and counted while
    queries read them; beyond `MAX_ATTACHED` copies the least recently used idle ones are
    detached (a later query attaches its copy again, in about a millisecond).
    """

    CONFIG: ClassVar[dict[str, Any]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "preserve_insertion_order": True,  # unsorted pages come in file (= `_row`) order
    }
    MAX_ATTACHED = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memory_mb = 1024
        self._spill: Path | None = None
        self._pid = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._aliases: OrderedDict[str, str] = OrderedDict()  # copy path → alias, oldest use first
        self._readers: dict[str, int] = {}  # alias → queries reading it now
        self._serial = 0

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The connection, new in a forked worker (the caller holds the lock)."""
        if self._con is None or self._pid != os.getpid():
            self._con = duckdb.connect(":memory:", config=self.CONFIG)
            self._con.execute("SET parquet_metadata_cache = true")  # files never change
            # Without a limit DuckDB keeps up to 80% of the machine's memory as buffers and cache,
            # and the server's resting size grew with every large export; past it, work spills.
            self._con.execute(f"SET memory_limit = '{int(self._memory_mb)}MiB'")
            if self._spill is not None:
                self._con.execute(f"SET temp_directory = {_literal(str(self._spill))}")
            self._pid = os.getpid()
            self._aliases.clear()
            self._readers.clear()
        return self._con

    def configure(self, memory_mb: int, spill: Path) -> None:
        """The memory limit and spill folder for the connection (applied when it is next opened,
        and at once to an open one)."""
        with self._lock:
            self._memory_mb, self._spill = memory_mb, spill
            if self._con is not None and self._pid == os.getpid():
                self._con.execute(f"SET memory_limit = '{int(memory_mb)}MiB'")
                self._con.execute(f"SET temp_directory = {_literal(str(spill))}")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._connection().cursor()

    def open_copy(self, path: str) -> tuple[str, duckdb.DuckDBPyConnection]:
        """The alias the copy at `path` is attached under, and a cursor; `close_copy` after."""
        with self._lock:
            con = self._connection()
            alias = self._aliases.get(path)
            if alias is None:
                self._serial += 1
                alias = f"copy_{self._serial}"
                con.execute(f"ATTACH {_literal(path)} AS {alias} (READ_ONLY)")
                self._aliases[path] = alias
            self._aliases.move_to_end(path)
            self._readers[alias] = self._readers.get(alias, 0) + 1
            return alias, con.cursor()

    def close_copy(self, alias: str) -> None:
        with self._lock:
            if self._readers.get(alias):  # after a fork the count started again
                self._readers[alias] -= 1
            for path, idle in list(self._aliases.items()):
                if len(self._aliases) <= self.MAX_ATTACHED:
                    break
                if not self._readers.get(idle) and self._con is not None:
                    self._con.execute(f"DETACH {idle}")
                    del self._aliases[path]
                    self._readers.pop(idle, None)


_database = _Database()


def configure(memory_mb: int, spill: Path) -> None:
    """Settings `query_memory_mb` and the spill folder under HOME (called when the platform is built)."""
    _database.configure(memory_mb, spill)


@dataclass
class _Source:
    """Where one query reads the version's rows: a table expression, its parameters, a cursor."""

    cursor: duckdb.DuckDBPyConnection
    table: str
    params: list[Any]
    copy: bool  # a query copy: zone maps on `_row` (122,880 rows each) find any position at once


def _out_of_range() -> InvalidInput:
    return InvalidInput("查询结果超出可表示的范围，请缩小筛选条件或改用其他聚合")


def _fetch(src: _Source, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    try:
        return src.cursor.execute(sql, params).fetchall()
    except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
        raise _out_of_range() from exc


def _json_converter(kind: ColumnType) -> Callable[[Any], Any] | None:
    if kind in (ColumnType.date, ColumnType.datetime):
        return lambda v: None if v is None else v.isoformat()
    if kind is ColumnType.decimal:
        return lambda v: v if v is None or math.isfinite(v) else None
    return None


def _records(
    columns: list[Column],
    rows: list[tuple[Any, ...]],
    converters: list[Callable[[Any], Any] | None] | None = None,
) -> list[dict[str, Any]]:
    names = [c.name for c in columns]
    if converters is None:
        converters = [_json_converter(c.type) for c in columns]
    if not any(converters):
        return [dict(zip(names, row, strict=False)) for row in rows]
    return [
        {n: (cv(v) if cv else v) for n, cv, v in zip(names, converters, row, strict=False)} for row in rows
    ]


# ---------------------------------------------------------------- the engine


class QueryEngine:
    """Answers `DataQuery`s over one resource version (hidden `_row` first in its Parquet file)."""

    def __init__(self, parquet_path: Path, schema: list[Column]) -> None:
        self.path = str(parquet_path)
        self.schema = [c for c in schema if c.name != ROW]
        self._columns = {c.name: c for c in self.schema}
        self._row_count: int | None = None
        self._totals: OrderedDict[Any, int] = OrderedDict()
        self._lock = threading.Lock()
        self._copy: str | None = None
        self._row_copy: RowCopy | None = None

    @property
    def row_count(self) -> int:
        """Rows in the file, from the Parquet footer (no scan)."""
        if self._row_count is None:
            self._row_count = pq.ParquetFile(self.path).metadata.num_rows
        return self._row_count

    @property
    def copy(self) -> str | None:
        """The query copy this engine reads, if any (None: the Parquet file)."""
        return self._copy

    def use_copy(self, path: Path) -> None:
        """Read the rows from this query copy (built by `engines.build_copy`) from now on."""
        self._copy = str(path)

    @property
    def row_copy(self) -> str | None:
        """The row copy this engine reads unsorted pages from, if any (rowcopy.py)."""
        return self._row_copy.path if self._row_copy is not None else None

    def use_row_copy(self, path: Path) -> None:
        """Read unsorted pages from this row copy (built by `rowcopy.build_row_copy`) from now on."""
        try:
            self._row_copy = RowCopy(path)
        except sqlite3.Error:
            log.warning("row copy %s cannot be read; pages come from DuckDB", path, exc_info=True)

    @contextmanager
    def _reading(self) -> Iterator[_Source]:
        """The copy when there is one (and it opens), else the Parquet file."""
        copy = self._copy
        if copy is not None:
            try:
                alias, cur = _database.open_copy(copy)
            except duckdb.Error:
                log.warning("query copy %s cannot be read; using the Parquet file", copy, exc_info=True)
                self._copy = None
            else:
                try:
                    yield _Source(cur, f"{alias}.main.{COPY_TABLE}", [], copy=True)
                finally:
                    cur.close()
                    _database.close_copy(alias)
                return
        cur = _database.cursor()
        try:
            yield _Source(cur, "read_parquet(?)", [self.path], copy=False)
        finally:
            cur.close()

    def columns(self, q: DataQuery) -> list[Column]:
        """The typed output columns of `q`: chosen fields, or group columns then aggregates."""
        if not q.grouped:
            return [self._columns[n] for n in q.fields] if q.fields else list(self.schema)
        groups = [self._columns[n] for n in q.group_by]
        return groups + [
            Column(name=agg_name(f, n), type=_agg_type(f, self._columns.get(n or ""))) for f, n in aggs_of(q)
        ]

    def fields(self, q: DataQuery) -> list[dict[str, str]]:
        """The `fields` of a response: name and type of each output column."""
        return [{"name": c.name, "type": str(c.type)} for c in self.columns(q)]

    def run(self, q: DataQuery) -> QueryResult:
        """One page of `q`, its exact total (limit ignored) and the cursor of the next page."""
        check_query(q, self.schema)
        return self._run_groups(q) if q.grouped else self._run_rows(q)

    def count(self, q: DataQuery) -> int:
        """Exact number of rows (or groups) matching `q`'s filters, cached per filter set."""
        check_query(q, self.schema)
        if not q.filters and not q.grouped:
            return self.row_count
        key = _total_key(q)
        try:
            with self._lock:
                return self._totals[key]
        except KeyError:
            pass
        except TypeError:  # a hand-built filter with an unhashable value: count, don't cache
            return self._count(q)
        total = self._count(q)
        self._remember(key, total)
        return total

    def _known_total(self, q: DataQuery) -> int | None:
        """The rows (or groups) matching `q`'s filters if counted before (no query)."""
        try:
            with self._lock:
                return self._totals.get(_total_key(q))
        except TypeError:
            return None

    def _remember_total(self, q: DataQuery, total: int) -> None:
        with suppress(TypeError):  # an unhashable hand-built filter: not kept
            self._remember(_total_key(q), total)

    def batches(self, q: DataQuery, batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
        """Every row (or group) of `q` as Arrow batches, without `_row`; limit and paging ignored.

        The query runs before this returns, so a bad query raises here and not mid-download;
        iterate to the end (or close the iterator) to release the DuckDB cursor.
        """
        check_query(q, self.schema)
        reading = ExitStack()
        src = reading.enter_context(self._reading())
        try:
            sql, params = self._export_sql(src, q)
            reader = src.cursor.sql(sql, params=params).to_arrow_reader(batch_size)
        except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
            reading.close()
            raise _out_of_range() from exc
        except BaseException:
            reading.close()
            raise
        return _stream(reader, reading)

    # -- rows

    def _sort_keys(self, q: DataQuery) -> list[tuple[Column, bool]]:
        return [(self._columns[name], desc) for name, desc in q.sort]

    def _run_rows(self, q: DataQuery) -> QueryResult:
        out = self.columns(q)
        keys = self._sort_keys(q)
        rows: list[tuple[Any, ...]] = []
        converters = None
        if q.limit:
            found = None if keys else self._row_copy_page(q, out)
            if found is not None:
                rows, converters = found, rowcopy.converters(out)
            else:
                with self._reading() as src:
                    rows = self._page_rows(src, q, out, keys)
        page = rows[: q.limit]
        cursor = None
        if len(rows) > q.limit:
            last = page[-1]
            values = [last[len(out) + i] for i in range(len(keys))]
            signature = [[c.name, d] for c, d in keys]
            cursor = encode_cursor({"s": signature, "k": values, "r": last[-1]})
        complete = bool(q.limit) and not q.offset and not q.cursor and len(rows) <= q.limit
        if complete:
            total = len(rows)
            if q.filters:
                self._remember_total(q, total)
        else:
            total = self.count(q)
        return QueryResult(self.fields(q), _records(out, page, converters), total, cursor)

    def _row_copy_page(self, q: DataQuery, out: list[Column]) -> list[tuple[Any, ...]] | None:
        """limit+1 rows of an unsorted page from the row copy, as `_page_rows` (no sort keys);
        None when DuckDB should answer: no row copy, a filter it cannot answer exactly, or one
        that matches too rarely to fill a page within the copy's scan budget."""
        copy = self._row_copy
        if copy is None or not all(copy.answers(self._columns[f.column], f) for f in q.filters):
            return None
        start = row_position(q.cursor, [])[1] + 1 if q.cursor else 0
        skip = 0 if q.cursor else q.offset
        if not q.filters:
            start, skip = start + skip, 0  # positions: the page starts at its offset
        else:
            known = self._known_total(q)
            # Matches spread evenly, the scan reads (skip + limit + 1) × rows / total rows.
            if known is not None and known * rowcopy.SCAN_BUDGET_ROWS < (skip + q.limit + 1) * self.row_count:
                return None
        try:
            return copy.page([c.name for c in out], q.filters, start, skip, q.limit + 1)
        except OverBudget:
            return None
        except sqlite3.Error:
            log.warning("row copy %s cannot be read; pages come from DuckDB", copy.path, exc_info=True)
            self._row_copy = None
            return None

    def _page_rows(
        self, src: _Source, q: DataQuery, out: list[Column], keys: list[tuple[Column, bool]]
    ) -> list[tuple[Any, ...]]:
        """limit+1 rows: the output columns, then the sort keys, then `_row` (for the cursor)."""
        conditions = [_condition(f) for f in q.filters]
        if src.copy and not keys and not (conditions and q.offset):
            return self._copy_rows(src, q, out, conditions)
        if not q.cursor:
            return self._rows(src, out, keys, conditions, q.limit + 1, q.offset)
        values, row = row_position(q.cursor, keys)
        if not keys and not conditions:
            # In a Parquet file OFFSET skips whole row groups without decoding `_row` up to the
            # cursor; the first row proves `_row` is the position, else the keyset query decides.
            rows = self._rows(src, out, keys, conditions, q.limit + 1, row + 1)
            if rows and rows[0][-1] == row + 1:
                return rows
        return self._rows(src, out, keys, [*conditions, _after(keys, values, row)], q.limit + 1, 0)

    def _copy_rows(
        self, src: _Source, q: DataQuery, out: list[Column], conditions: list[tuple[str, list[Any]]]
    ) -> list[tuple[Any, ...]]:
        """An unsorted page of a copy as ranges of `_row` (its position), found by zone maps.

        Without filters the page is exactly the rows from the offset or cursor on. With filters
        the row group holding the start is searched alone first — most filters fill a page
        there, and one row group costs no other thread a wasted scan — then the rest.
        """
        want = q.limit + 1
        start = row_position(q.cursor, [])[1] + 1 if q.cursor else q.offset
        if not conditions:
            return self._rows(src, out, [], [_rows_from(start), _rows_before(start + want)], want, 0)
        end = (start // COPY_ROW_GROUP + 1) * COPY_ROW_GROUP
        rows = self._rows(src, out, [], [*conditions, _rows_from(start), _rows_before(end)], want, 0)
        if len(rows) < want:
            rows += self._rows(src, out, [], [*conditions, _rows_from(end)], want - len(rows), 0)
        return rows

    def _rows(
        self,
        src: _Source,
        out: list[Column],
        keys: list[tuple[Column, bool]],
        conditions: list[Any],
        limit: int,
        offset: int,
    ) -> list[tuple[Any, ...]]:
        where, params = _where(conditions)
        select = ", ".join(quote(n) for n in [c.name for c in out] + [c.name for c, _ in keys] + [ROW])
        # Without an explicit sort the file order is `_row` order (insertion order is preserved),
        # so no ORDER BY is needed and DuckDB stops reading after the page.
        order = _order([(c.name, d) for c, d in keys] + [(ROW, False)]) if keys else ""
        sql = _select(select, src.table, f"{where}{order} LIMIT ? OFFSET ?")
        return _fetch(src, sql, [*src.params, *params, limit, offset])

    # -- groups

    def _group_sql(self, src: _Source, q: DataQuery) -> tuple[str, list[Any]]:
        where, params = _where([_condition(f) for f in q.filters])
        aggs = [
            f"{_agg_sql(func, self._columns.get(name or ''))} AS {quote(agg_name(func, name))}"
            for func, name in aggs_of(q)
        ]
        select = ", ".join([quote(n) for n in q.group_by] + aggs)
        group = f" GROUP BY {', '.join(quote(n) for n in q.group_by)}" if q.group_by else ""
        return _select(select, src.table, where + group), [*src.params, *params]

    def _group_order(self, q: DataQuery) -> str:
        named = {name for name, _ in q.sort}
        return _order(q.sort + [(n, False) for n in q.group_by if n not in named])

    def _run_groups(self, q: DataQuery) -> QueryResult:
        signature = ["groups", q.group_by, [list(a) for a in q.aggs], [list(s) for s in q.sort]]
        offset = group_offset(q.cursor, signature) if q.cursor else q.offset
        rows: list[tuple[Any, ...]] = []
        if q.limit:
            with self._reading() as src:
                inner, params = self._group_sql(src, q)
                # The window counts the groups in the same pass as the aggregation.
                order = f"{self._group_order(q)} LIMIT ? OFFSET ?"
                rows = _fetch(
                    src, _select("*, count(*) OVER ()", f"({inner})", order), [*params, q.limit + 1, offset]
                )
        total = rows[0][-1] if rows else (0 if q.limit and not offset else self.count(q))
        page = [row[:-1] for row in rows[: q.limit]]
        cursor = None
        if len(rows) > q.limit:
            cursor = encode_cursor({"s": signature, "o": offset + q.limit})
        return QueryResult(self.fields(q), _records(self.columns(q), page), total, cursor)

    # -- counting and exports

    def _count(self, q: DataQuery) -> int:
        with self._reading() as src:
            if q.grouped:
                inner, params = self._group_sql(src, q)
                return int(_fetch(src, _select("count(*)", f"({inner})"), params)[0][0])
            where, params = _where([_condition(f) for f in q.filters])
            return int(_fetch(src, _select("count(*)", src.table, where), [*src.params, *params])[0][0])

    def _remember(self, key: Any, total: int) -> None:
        with self._lock:
            self._totals[key] = total
            while len(self._totals) > _TOTALS_CACHED:
                self._totals.popitem(last=False)

    def _export_sql(self, src: _Source, q: DataQuery) -> tuple[str, list[Any]]:
        if q.grouped:
            inner, params = self._group_sql(src, q)
            return _select("*", f"({inner})", self._group_order(q)), params
        where, params = _where([_condition(f) for f in q.filters])
        select = ", ".join(quote(c.name) for c in self.columns(q))
        order = _order([*q.sort, (ROW, False)]) if q.sort else ""
        return _select(select, src.table, where + order), [*src.params, *params]


def _total_key(q: DataQuery) -> Any:
    """What a cached total is kept under: the grouping, if any, and the filters."""
    return (tuple(q.group_by) if q.grouped else None, tuple(q.filters))


def _stream(reader: pa.RecordBatchReader, reading: ExitStack) -> Iterator[pa.RecordBatch]:
    """The reader's batches, at least one (empty if nothing matched) so writers see the columns."""
    empty = True
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
                raise _out_of_range() from exc
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
    finally:
        reading.close()
