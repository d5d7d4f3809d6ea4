"""The row copy of a published version: its rows in a SQLite file, for pages in file order.

DuckDB answers a page of 100 rows in about 0.6 ms when its code is in the CPU's caches, but a
data API call rarely finds it so: between two calls of a client other work evicts it, and the
same query then costs 1.5–2 ms, most of it DuckDB's planning and scan set-up, whatever the page.
SQLite reads a page of rows by its primary key in a tenth of that, hot or cold — it is what
makes Datasette quick at exactly this question. So every published version with rows gets a
row copy (engines.py; setting `row_copies`): one table, `_row INTEGER PRIMARY KEY` (the row's
position, so any page by offset or cursor is a B-tree seek) and the version's columns.

It answers only unsorted row pages. With filters it scans in `_row` order from the page's start
and gives up after `SCAN_BUDGET_ROWS` rows read (SQLite's progress handler counts them): a filter
matching densely fills a page long before that; a rare one, or matches clustered far on, is left
to DuckDB's column scan with zone maps, having cost at most a fraction of a millisecond. Sorts,
groups and counts always go to DuckDB.

Values are stored so that SQLite's comparisons give DuckDB's answers: text as UTF-8 compared by
bytes (both engines' default), booleans as 0/1, dates and datetimes as ISO 8601 text (which sorts
as they do), integers and decimals as SQLite's 64-bit integers and doubles. SQLite has no NaN (it
stores NULL), so a decimal column holding NaN is recorded and its filters are left to DuckDB.
Like the query copy it is only a faster way to read the Parquet file: deleting one loses nothing.

A large version's copy is built in a separate process (`python -m kaifang.datastore.rowcopy
PARQUET TARGET`): writing millions of rows through Python would otherwise hold the server's
interpreter for seconds. A small one's is built in the builder thread.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kaifang.datastore.querydsl import ROW, Filter, quote
from kaifang.datastore.types import Column, ColumnType

TABLE = "data"
META = "kaifang_row_copy"  # one JSON value: the layout version, the columns, decimal columns with NaN
LAYOUT = 1
SCAN_BUDGET_ROWS = 10_000  # rows a filtered page may read here before DuckDB takes over
_OPS_PER_ROW = 5  # SQLite virtual-machine steps per row read by a filtered scan (measured: 5.0–5.1)
_HANDLER_EVERY = 1000  # steps between two calls of the progress handler
_BATCH_ROWS = 65_536
_KEPT_PER_THREAD = 8

_COMPARISONS = {"eq": "=", "ne": "IS NOT", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class OverBudget(Exception):
    """A filtered page that did not fill within the scan budget (DuckDB answers it instead)."""


# ---------------------------------------------------------------- building


def build_row_copy(parquet: Path, target: Path) -> None:
    """Write the rows of a version file as a one-table SQLite database, atomically at `target`.

    The file's `_row` must be each row's position (as for the query copy): it becomes the
    primary key that pages seek by.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    source = pq.ParquetFile(parquet)
    fields = [f for f in source.schema_arrow if f.name != ROW]
    try:
        con = sqlite3.connect(temp, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = OFF")
            con.execute("PRAGMA synchronous = OFF")
            columns = ", ".join(f"{quote(f.name)} {_affinity(f.type)}" for f in fields)
            con.execute(f"CREATE TABLE {TABLE} ({quote(ROW)} INTEGER PRIMARY KEY, {columns})")
            insert = f"INSERT INTO {TABLE} VALUES ({', '.join('?' * (len(fields) + 1))})"  # noqa: S608
            with_nan: set[str] = set()
            position = 0
            con.execute("BEGIN")
            for batch in source.iter_batches(_BATCH_ROWS, columns=[ROW] + [f.name for f in fields]):
                rows = batch.column(0).to_pylist()
                if rows and (rows[0] != position or rows[-1] != position + len(rows) - 1):
                    raise RuntimeError(f"{parquet}: _row is not the position of every row")
                position += len(rows)
                values = [rows]
                for field, column in zip(fields, batch.columns[1:], strict=True):
                    if pa.types.is_floating(field.type) and pc.any(pc.is_nan(column)).as_py():
                        with_nan.add(field.name)
                    values.append(_stored(column))
                con.executemany(insert, zip(*values, strict=True))
            meta = {"layout": LAYOUT, "columns": [f.name for f in fields], "nan": sorted(with_nan)}
            con.execute(f"CREATE TABLE {META} (value TEXT)")
            con.execute(f"INSERT INTO {META} VALUES (?)", [json.dumps(meta, ensure_ascii=False)])  # noqa: S608
            con.execute("COMMIT")
            check = f"SELECT count(*), min({ROW}), max({ROW}) FROM {TABLE}"  # noqa: S608
            copied, first, last = con.execute(check).fetchone()
        finally:
            con.close()
        expected = source.metadata.num_rows
        if copied != expected or (copied and (first, last) != (0, copied - 1)):
            raise RuntimeError(f"{parquet}: {copied} of {expected} rows copied, _row {first}..{last}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _affinity(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "INTEGER"
    return "REAL" if pa.types.is_floating(kind) else "TEXT"


def _stored(column: pa.Array) -> list[Any]:
    """A column's values as SQLite keeps them: dates and datetimes as ISO text, NaN as NULL."""
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        return [None if v is None else v.isoformat() for v in column.to_pylist()]
    if pa.types.is_floating(column.type):
        return [None if v is None or math.isnan(v) else v for v in column.to_pylist()]
    return column.to_pylist()


# ---------------------------------------------------------------- reading


class RowCopy:
    """Pages of one row copy; each thread reads it over a connection of its own."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        found = self._connection().execute(f"SELECT value FROM {META}").fetchone()  # noqa: S608
        try:
            meta = json.loads(found[0])
            if meta["layout"] != LAYOUT:
                raise ValueError(f"layout {meta['layout']}, not {LAYOUT}")
            self.columns: frozenset[str] = frozenset(meta["columns"])
            self._with_nan: frozenset[str] = frozenset(meta["nan"])
        except (TypeError, ValueError, KeyError) as exc:  # not written by build_row_copy
            raise sqlite3.DatabaseError(f"{self.path}: not a row copy ({exc})") from exc

    def _connection(self) -> sqlite3.Connection:
        return _connections.get(self.path)

    def answers(self, column: Column, f: Filter) -> bool:
        """Whether this copy's SQL gives DuckDB's answer for the filter (else DuckDB is asked)."""
        if column.name not in self.columns:
            return False
        if f.op == "contains":
            return column.type is ColumnType.text
        if column.type is ColumnType.decimal and column.name in self._with_nan:
            return False  # NaN is stored as NULL here; DuckDB sorts it above every number
        values = f.value if f.op == "in" else [f.value]
        return not any(isinstance(v, datetime) and v.tzinfo is not None for v in values)

    def page(
        self, names: Sequence[str], filters: Sequence[Filter], start: int, skip: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to `limit` rows from position `start` on that pass `filters`, `skip` of them skipped:
        the named columns then `_row`, in `_row` order. Raises OverBudget when a filtered page
        reads more than its share of rows."""
        conditions = [_condition(f) for f in filters]
        where = " AND ".join([f"{quote(ROW)} >= ?", *(sql for sql, _ in conditions)])
        params: list[Any] = [start, *(p for _, ps in conditions for p in ps), limit, skip]
        select = ", ".join(quote(n) for n in [*names, ROW])
        sql = f"SELECT {select} FROM {TABLE} WHERE {where} ORDER BY {quote(ROW)} LIMIT ? OFFSET ?"  # noqa: S608
        con = self._connection()
        if not filters:
            return con.execute(sql, params).fetchall()
        allowed = SCAN_BUDGET_ROWS * _OPS_PER_ROW // _HANDLER_EVERY
        steps = 0

        def over_budget() -> int:
            nonlocal steps
            steps += 1
            return steps > allowed

        con.set_progress_handler(over_budget, _HANDLER_EVERY)
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            if steps > allowed:
                raise OverBudget from None
            raise
        finally:
            con.set_progress_handler(None, 0)


def _condition(f: Filter) -> tuple[str, list[Any]]:
    """DuckDB's condition for the filter (query.py `_condition`) in SQLite's words."""
    ident = quote(f.column)
    if f.op == "isnull":
        return f"{ident} IS {'' if f.value else 'NOT '}NULL", []
    if f.op == "in":
        values = [_bound(v) for v in f.value]
        return (f"{ident} IN ({', '.join('?' * len(values))})" if values else "0"), values
    if f.op == "contains":
        return f"instr({ident}, ?) > 0", [f.value]
    if f.value is None and f.op in ("eq", "ne"):
        return f"{ident} IS {'' if f.op == 'eq' else 'NOT '}NULL", []
    return f"{ident} {_COMPARISONS[f.op]} ?", [_bound(f.value)]


def _bound(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value  # datetime is a date too


def converters(columns: Sequence[Column]) -> list[Callable[[Any], Any] | None]:
    """Per output column, what turns a stored value into the data API's JSON value."""
    out: list[Callable[[Any], Any] | None] = []
    for column in columns:
        if column.type is ColumnType.boolean:
            out.append(lambda v: None if v is None else bool(v))
        elif column.type is ColumnType.decimal:
            out.append(lambda v: v if v is None or math.isfinite(v) else None)
        else:
            out.append(None)  # text, numbers, and dates already as their ISO text
    return out


class _Connections(threading.local):
    """Each thread's open row copies (read-only, immutable: no locks), the latest used kept."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.open: OrderedDict[str, sqlite3.Connection] = OrderedDict()

    def get(self, path: str) -> sqlite3.Connection:
        if self.pid != os.getpid():  # a forked process opens its own
            self.pid, self.open = os.getpid(), OrderedDict()
        con = self.open.get(path)
        if con is None:
            uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
            con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            con.execute("PRAGMA mmap_size = 1073741824")  # pages read from the OS's cache, not copied
            con.execute("PRAGMA cache_size = -1024")
            self.open[path] = con
            while len(self.open) > _KEPT_PER_THREAD:
                self.open.popitem(last=False)[1].close()
        self.open.move_to_end(path)
        return con


_connections = _Connections()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kaifang.datastore.rowcopy PARQUET TARGET", file=sys.stderr)
        return 2
    build_row_copy(Path(args[0]), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
