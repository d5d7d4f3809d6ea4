"""Re-identification risk over the quasi-identifiers a provider marks (k-anonymity, Art. 26).

Masking the direct identifiers is not enough: a rare combination of gender, birth date and
district can single a person out. The report gives the smallest group size k over the marked
columns, how many records are unique, the share of records in groups smaller than the
threshold, and generalizations that would lift k to the threshold — each with the k it reaches.
Every figure is one DuckDB GROUP BY over the (already masked) columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DATE_TEXT = r"^\d{4}[-/年.]\d{1,2}"  # text holding a date: 1990-05-17, 1990/5/17, 1990年5月17日
DISTRICT = r"^.*?[区县旗]"  # an address up to its district: 海河市河西区…
ADDRESS_WORDS = ("地址", "住址", "住所", "address", "addr")


@dataclass(frozen=True)
class Suggestion:
    """One change to one quasi-identifier and what it would achieve."""

    column: str
    change: str  # in Chinese, e.g. 出生日期 → 年
    k: int
    unique: int
    below_share: float
    reaches: bool  # k at or above the threshold


@dataclass(frozen=True)
class RiskReport:
    quasi: list[str]
    threshold: int
    rows: int
    k: int  # smallest group size (0 for an empty table or no quasi-identifier)
    unique: int  # records alone in their group
    below: int  # records in groups smaller than the threshold
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def below_share(self) -> float:
        return self.below / self.rows if self.rows else 0.0

    @property
    def reaches(self) -> bool:
        return not self.quasi or self.rows == 0 or self.k >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "below_share": self.below_share, "reaches": self.reaches}


@dataclass(frozen=True)
class _Counts:
    k: int
    unique: int
    below: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _counts(con: duckdb.DuckDBPyConnection, expressions: Sequence[str], threshold: int) -> _Counts:
    if not expressions:  # nothing left to single anyone out: one group of everyone
        total = con.execute("SELECT count(*) FROM t").fetchone()
        n = int(total[0]) if total else 0
        return _Counts(n, int(n == 1), n if 0 < n < threshold else 0)
    groups = ", ".join(expressions)
    row = con.execute(
        f"SELECT min(n), count(*) FILTER (WHERE n = 1), coalesce(sum(n) FILTER (WHERE n < ?), 0) "  # noqa: S608 - quoted names
        f"FROM (SELECT count(*) AS n FROM t GROUP BY {groups})",
        [threshold],
    ).fetchone()
    assert row is not None
    return _Counts(int(row[0] or 0), int(row[1]), int(row[2]))


def _generalizations(con: duckdb.DuckDBPyConnection, name: str, kind: pa.DataType) -> list[tuple[str, str]]:
    """(label, SQL expression) candidates for one column, by its type and values."""
    col = _quote(name)
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return [("月", f"date_trunc('month', {col})"), ("年", f"date_trunc('year', {col})")]
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return [(f"{w} 年一档", f"floor({col} / {w}) * {w}") for w in (5, 10)]
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return []
    if _share(con, f"regexp_matches({col}, '{DATE_TEXT}')", col) >= 0.9:
        year_month = f"regexp_extract({col}, '^(\\d{{4}})[-/年.](\\d{{1,2}})', ['y', 'm'])"
        return [
            ("月", f"{year_month}.y || '-' || lpad({year_month}.m, 2, '0')"),
            ("年", f"substr({col}, 1, 4)"),
        ]
    named = any(word in name.lower() for word in ADDRESS_WORDS)
    if named or _share(con, f"regexp_matches({col}, '{DISTRICT}.+')", col) >= 0.9:
        district = f"coalesce(nullif(regexp_extract({col}, '{DISTRICT}', 0), ''), {col})"
        return [("区县", district)]
    return []


def _share(con: duckdb.DuckDBPyConnection, condition: str, col: str) -> float:
    row = con.execute(
        f"SELECT avg(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END) FROM "  # noqa: S608 - quoted names
        f"(SELECT {col} FROM t WHERE {col} IS NOT NULL LIMIT 1000)"
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _suggest(
    con: duckdb.DuckDBPyConnection, table: pa.Table, quasi: Sequence[str], threshold: int, rows: int
) -> list[Suggestion]:
    """Each single change (generalize one column, or drop it), and every column generalized at
    once; those that reach the threshold first, generalizing before dropping, higher k first."""
    base = {name: _quote(name) for name in quasi}
    candidates: list[tuple[str, dict[str, str], str]] = []  # (columns, changed expressions, label)
    coarsest: dict[str, tuple[str, str]] = {}
    for name in quasi:
        options = _generalizations(con, name, table.schema.field(name).type)
        if options:
            coarsest[name] = options[-1]
        candidates += [(name, {name: e}, f"{name} → {label}") for label, e in options]
        candidates.append((name, {name: ""}, f"删除 {name}"))
    if len(coarsest) > 1:
        label = "；".join(f"{n} → {lab}" for n, (lab, _e) in coarsest.items())
        candidates.append(("、".join(coarsest), {n: e for n, (_lab, e) in coarsest.items()}, label))
    found = []
    for columns, changed, label in candidates:
        counts = _counts(con, [e for e in {**base, **changed}.values() if e], threshold)
        share = counts.below / rows if rows else 0.0
        found.append(Suggestion(columns, label, counts.k, counts.unique, share, counts.k >= threshold))
    return sorted(found, key=lambda s: (not s.reaches, s.change.startswith("删除"), -s.k, s.below_share))


def k_anonymity(source: pa.Table | Path, quasi: Sequence[str], threshold: int = 5) -> RiskReport:
    """The k-anonymity report of `source` (a table or a Parquet file) over the `quasi` columns.

    Columns missing from the source (a suppressed column, say) are left out: they are not published.
    """
    if isinstance(source, Path):
        names = pq.read_schema(source).names
        source = pq.read_table(source, columns=[c for c in quasi if c in names] or names[:1])
    table = source
    present = [c for c in quasi if c in table.column_names]
    rows = table.num_rows
    if not present:
        return RiskReport([], threshold, rows, 0, 0, 0)
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 1")
        con.register("t", table.select(present))
        counts = _counts(con, [_quote(c) for c in present], threshold)
        suggestions = [] if counts.k >= threshold else _suggest(con, table, present, threshold, rows)
    finally:
        con.close()
    return RiskReport(present, threshold, rows, counts.k, counts.unique, counts.below, suggestions)
