"""Column types from the whole column, and casting text cells to them.

Everything runs as pyarrow kernels over the whole column (RE2 regexes, casts), columns side by
side in threads. Each column is first tried against a sample of its values in Python, so only
the types the sample allows are checked over the full column: a text column costs almost
nothing, and a numeric one costs one regex pass and one cast.

Cells are expected as `read_table` leaves them: trimmed, with empty cells null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from kaifang.datastore.types import ARROW_TYPES, Column, ColumnType
from kaifang.errors import InvalidInput

Strings: TypeAlias = pa.ChunkedArray | pa.Array

# Columns named like these hold identifiers: digits in them are not quantities.
CODE_HINTS = frozenset(
    {"代码", "编码", "编号", "号码", "电话", "手机", "身份证", "邮编", "证号", "区划", "账号", "卡号"}
)
COMPACT_DATE_HINTS = ("日期", "date")
BOOLEAN_HINTS = ("是否",)

INTEGER = r"^[+-]?(?:0|[1-9]\d{0,17}|[1-9]\d{0,2}(?:,\d{3}){1,5})$"
DECIMAL = r"^[+-]?(?:0|[1-9]\d*|[1-9]\d{0,2}(?:,\d{3})+)(?:\.\d+)?$"
TEMPORAL = (
    r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
    r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\.\d+)?)?$"
)
COMPACT_DATE = r"^(\d{4})(\d{2})(\d{2})$"
TEMPORAL_PY = re.compile(TEMPORAL)
COMPACT_PY = re.compile(COMPACT_DATE)
INTEGER_PY, DECIMAL_PY = re.compile(INTEGER), re.compile(DECIMAL)

BOOLEAN_FAMILIES = (("是", "否"), ("true", "false"), ("yes", "no"), ("y", "n"))
TRUE_WORDS = ["是", "true", "t", "yes", "y", "1", "对"]
FALSE_WORDS = ["否", "false", "f", "no", "n", "0", "错"]

SAMPLE_SIZE = 1000
MAX_QUANTITY = 10**15  # 16 digits or more: bank cards, ID numbers — codes, not amounts
MOBILE_LOW, MOBILE_HIGH = 13_000_000_000, 19_999_999_999


def infer_schema(table: pa.Table, source_headers: list[str] | None = None) -> list[Column]:
    """Infer each column's type over all its values (nulls ignored); see `infer_and_cast`."""
    return infer_and_cast(table, source_headers)[0]


def infer_and_cast(table: pa.Table, source_headers: list[str] | None = None) -> tuple[list[Column], pa.Table]:
    """Infer the schema and return the typed table in the same pass (no cell fails its type).

    integer: optional sign, no leading zeros, thousands separators allowed; decimal: the same
    with a fraction; boolean: one of 是/否, true/false, yes/no, Y/N (1/0 when the name says 是否);
    date: YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYY年M月D日 (YYYYMMDD when the name says 日期);
    datetime: a date with HH:MM[:SS]. Codes stay text: leading zeros, 16 or more digits, mostly
    mobile numbers, or a name such as 代码/编号/电话/身份证/邮编.
    """
    sources = source_headers or table.column_names
    jobs = list(zip(table.column_names, sources, table.columns, strict=True))
    results = _parallel(lambda job: _infer_column(*job), jobs)
    schema = [
        Column(name=name, type=kind, source_name=source)
        for (name, source, _), (kind, _) in zip(jobs, results, strict=True)
    ]
    return schema, pa.table([typed for _, typed in results], names=table.column_names)


def cast_table(table: pa.Table, schema: list[Column]) -> tuple[pa.Table, dict[str, list[int]]]:
    """Cast the text columns to the schema's types, column i to schema[i] (renamed to its name).

    Returns the typed table and, per column name, the 0-based row indices whose cell could not
    be read as the column's type (those cells become null).
    """
    if len(schema) != table.num_columns:
        raise InvalidInput(f"数据字典有 {len(schema)} 列，文件有 {table.num_columns} 列，请对应后再保存")
    results = _parallel(lambda job: _cast_column(*job), list(zip(table.columns, schema, strict=True)))
    typed = pa.table([column for column, _ in results], names=[c.name for c in schema])
    failures = {c.name: failed for c, (_, failed) in zip(schema, results, strict=True) if failed}
    return typed, failures


# --- inference ------------------------------------------------------------------------------


def _infer_column(name: str, source: str, column: Strings) -> tuple[ColumnType, Strings]:
    hints = f"{name} {source}".lower()
    if column.null_count == len(column) or any(h in hints for h in CODE_HINTS):
        return ColumnType.text, column
    compact = any(h in hints for h in COMPACT_DATE_HINTS)
    for kind, parse in _candidates(_sample(column), hints, compact):
        typed = parse(column)
        if typed.null_count != column.null_count:
            continue  # some cell is not of this kind: try the next, broader one
        if _codes(kind, typed):
            break
        return _finalize(kind, typed)
    return ColumnType.text, column


def _candidates(
    sample: list[str], hints: str, compact: bool
) -> list[tuple[ColumnType, Callable[[Strings], Strings]]]:
    """The types the sample allows, most specific first, each with its full-column parser."""
    found: list[tuple[ColumnType, Callable[[Strings], Strings]]] = []
    family = _boolean_family(sample, any(h in hints for h in BOOLEAN_HINTS))
    if family:
        found.append((ColumnType.boolean, lambda col: _parse_boolean(col, family)))
    temporal = all(TEMPORAL_PY.match(v) or (compact and COMPACT_PY.match(v)) for v in sample)
    if temporal and compact:  # 20250105 in a 日期 column is a date, not a number
        found.append((ColumnType.datetime, lambda col: _parse_temporal(col, compact, date_only=False)))
    if all(INTEGER_PY.match(v) for v in sample):
        found.append((ColumnType.integer, _parse_integer))
    if all(DECIMAL_PY.match(v) for v in sample):
        found.append((ColumnType.decimal, _parse_decimal))
    if temporal and not compact:
        found.append((ColumnType.datetime, lambda col: _parse_temporal(col, compact, date_only=False)))
    return found


def _sample(column: Strings) -> list[str]:
    values = column.slice(0, 20 * SAMPLE_SIZE).drop_null()
    if len(values) == 0:
        values = column.drop_null()
    return values.slice(0, SAMPLE_SIZE).to_pylist()


def _boolean_family(sample: list[str], digits_allowed: bool) -> tuple[str, ...] | None:
    values = {v.lower() for v in sample}
    families = BOOLEAN_FAMILIES + ((("1", "0"),) if digits_allowed else ())
    return next((f for f in families if values <= set(f)), None)


def _codes(kind: ColumnType, typed: Strings) -> bool:
    """Numbers that are identifiers: 16+ digits, or mostly mobile phone numbers."""
    if kind not in (ColumnType.integer, ColumnType.decimal) or len(typed) == typed.null_count:
        return False
    magnitude = pc.max(pc.abs(typed)).as_py()
    if magnitude >= MAX_QUANTITY:
        return True
    if kind is ColumnType.decimal or magnitude < MOBILE_LOW:
        return False
    mobiles = pc.sum(pc.and_(pc.greater_equal(typed, MOBILE_LOW), pc.less_equal(typed, MOBILE_HIGH)))
    return mobiles.as_py() * 2 >= len(typed) - typed.null_count


def _finalize(kind: ColumnType, typed: Strings) -> tuple[ColumnType, Strings]:
    """A datetime column whose values are all at midnight is a date column."""
    if kind is not ColumnType.datetime:
        return kind, typed
    if pc.all(pc.equal(pc.floor_temporal(typed, unit="day"), typed)).as_py() is not False:
        return ColumnType.date, pc.cast(typed, pa.date32())
    return kind, typed


# --- parsing (shared by inference and casting) ----------------------------------------------


def _parse_integer(column: Strings) -> Strings:
    if _plain_digits(column):
        return pc.cast(column, pa.int64())
    return _cast_numbers(column, INTEGER, pa.int64())


def _parse_decimal(column: Strings) -> Strings:
    return _cast_numbers(column, DECIMAL, pa.float64())


def _plain_digits(column: Strings) -> bool:
    """Only digits, no leading zero, at most 18 of them: the common case, without a regex pass."""
    if len(column) == column.null_count or not pc.all(pc.ascii_is_decimal(column)).as_py():
        return False
    lengths = pc.binary_length(column)
    if pc.max(lengths).as_py() > 18:
        return False
    return not pc.any(pc.and_(pc.starts_with(column, "0"), pc.greater(lengths, 1))).as_py()


def _cast_numbers(column: Strings, pattern: str, target: pa.DataType) -> Strings:
    """Cells matching `pattern` as numbers (thousands separators and + dropped); others null."""
    ok = pc.match_substring_regex(column, pattern)
    if pc.all(ok).as_py() is False:
        column = pc.if_else(ok, column, pa.scalar(None, pa.string()))
    try:
        return pc.cast(column, target)
    except pa.ArrowInvalid:  # "1,234" or "+5", which Arrow's parser does not take
        return pc.cast(pc.replace_substring_regex(column, r"[+,]", ""), target)


def _parse_boolean(column: Strings, family: tuple[str, ...] | None = None) -> Strings:
    lowered = pc.utf8_lower(column)
    true_words = [family[0]] if family else TRUE_WORDS
    false_words = [family[1]] if family else FALSE_WORDS
    is_true = pc.is_in(lowered, pa.array(true_words))
    is_false = pc.is_in(lowered, pa.array(false_words))
    return pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))


def _parse_temporal(column: Strings, compact: bool, *, date_only: bool) -> Strings:
    """Timestamps (seconds) from the accepted date and datetime spellings; impossible dates null."""
    stamps = _parse_iso(column)
    if stamps is None:
        stamps = _parse_spelled(column, compact)
    if date_only:
        midnight = pc.equal(pc.floor_temporal(stamps, unit="day"), stamps)
        return pc.cast(pc.if_else(midnight, stamps, pa.scalar(None, stamps.type)), pa.date32())
    return stamps


def _parse_iso(column: Strings) -> Strings | None:
    """Arrow's own ISO 8601 cast: fast, and it refuses impossible dates, but all or nothing."""
    try:
        return pc.cast(column, pa.timestamp("s"))
    except pa.ArrowInvalid:  # another spelling, or an impossible date: find which cells, slower
        return None


def _parse_spelled(column: Strings, compact: bool) -> Strings:
    if compact:
        column = pc.replace_substring_regex(column, COMPACT_DATE, r"\1-\2-\3")
    parts = pc.extract_regex(column, TEMPORAL)
    y, m, d, hh, mm, ss = (pc.struct_field(parts, [i]) for i in range(6))
    iso = pc.binary_join_element_wise(
        y, "-", _two(m), "-", _two(d), " ", _two(hh), ":", _two(mm), ":", _two(ss), ""
    )
    stamps = pc.strptime(iso, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    # strptime rolls 2025-02-30 over to March: keep only values that read back unchanged.
    same = pc.equal(pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S"), iso)
    return pc.if_else(same, stamps, pa.scalar(None, pa.timestamp("s")))


def _two(part: Strings) -> Strings:
    return pc.utf8_lpad(part, width=2, padding="0")


def _cast_column(column: Strings, target: Column) -> tuple[Strings, list[int]]:
    kind = target.type
    if kind is ColumnType.text:
        return column, []
    parsers: dict[ColumnType, Callable[[Strings], Strings]] = {
        ColumnType.integer: _parse_integer,
        ColumnType.decimal: _parse_decimal,
        ColumnType.boolean: _parse_boolean,
        ColumnType.date: lambda col: _parse_temporal(col, True, date_only=True),
        ColumnType.datetime: lambda col: _parse_temporal(col, True, date_only=False),
    }
    typed = pc.cast(parsers[kind](column), ARROW_TYPES[kind])
    if typed.null_count == column.null_count:
        return typed, []
    failed = pc.and_(pc.is_valid(column), pc.is_null(typed))
    return typed, pc.indices_nonzero(failed).to_pylist()


def _parallel(fn: Callable[[tuple], tuple], jobs: list[tuple]) -> list[tuple]:
    """pyarrow kernels release the GIL, so columns are worked on side by side."""
    if len(jobs) < 2:
        return [fn(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), 4)) as pool:
        return list(pool.map(fn, jobs))
