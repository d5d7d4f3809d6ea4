"""Read-only SQL over one resource version: one `SELECT`, checked twice, run in a locked-down DuckDB.

The query sees exactly one table, `data`: the published version's rows without the hidden `_row`
column. Three independent guards stand between a caller and anything else:

1. `check_sql` parses the text with sqlglot (DuckDB dialect) and accepts a single `SELECT`
   (`WITH`, `UNION` …) whose tables are `data` or its own `WITH` names and whose function calls
   are on an allow-list; the SQL that runs is generated from that checked tree, comments dropped.
2. DuckDB's own parser must see the generated text as exactly one `SELECT` statement.
3. The query runs in a worker process (`sql_worker`) on a private in-memory DuckDB allowed to
   read that one Parquet file, with external access disabled and the configuration locked:
   no other file, extension, database or setting is reachable even by a query that got past
   the checks.

Time, rows and memory are bounded by settings (`sql_timeout_seconds`, `sql_max_rows`,
`sql_memory_mb`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.generators.duckdb import DuckDBGenerator

from kaifang.datastore import sql_worker
from kaifang.datastore.sql_worker import TABLE
from kaifang.errors import InvalidInput, RateLimited, ServiceError
from kaifang.settings import Settings

DIALECT = "duckdb"

# Scalar, aggregate and window functions a query may call (DuckDB names, and the names sqlglot
# generates for them). Everything else is refused: table functions (read_csv, glob, query …),
# metadata (duckdb_*, current_setting, pragma_*), variables and environment lookups are absent.
ALLOWED_FUNCTIONS = frozenset(
    """
    count count_star sum avg mean min max median mode quantile quantile_cont quantile_disc
    stddev stddev_samp stddev_pop variance var_samp var_pop
    string_agg group_concat listagg list array_agg first last any_value arbitrary arg_max arg_min
    argmax argmin max_by min_by approx_count_distinct approx_quantile count_if countif bool_and
    bool_or corr covar_pop covar_samp regr_slope regr_intercept regr_r2 regr_count product entropy
    kurtosis skewness histogram
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    abs ceil ceiling floor round round_even trunc sqrt cbrt pow power exp ln log log10 log2 sign mod
    greatest least pi degrees radians sin cos tan asin acos atan atan2 isnan isinf isfinite even gcd
    lcm divide fdiv fmod random
    lower upper lcase ucase length len char_length character_length strlen substr substring left
    right trim ltrim rtrim replace concat concat_ws contains starts_with ends_with prefix suffix
    strpos instr position lpad rpad reverse repeat split_part string_split str_split
    string_split_regex regexp_matches regexp_replace regexp_extract regexp_extract_all
    regexp_full_match regexp_split_to_array strip_accents format printf md5 sha256 hash ascii chr
    unicode translate nfc_normalize levenshtein damerau_levenshtein hamming jaccard
    jaro_similarity jaro_winkler_similarity array_to_string to_base64
    date_part datepart date_trunc datetrunc date_diff datediff date_sub datesub date_add
    year month day dayofmonth dayofweek dayofyear isodow isoyear week weekofyear weekday quarter
    hour minute second millisecond epoch epoch_ms strftime strptime try_strptime make_date
    make_time make_timestamp last_day monthname dayname age to_timestamp time_bucket today
    current_date now get_current_timestamp to_days to_months to_years to_hours to_minutes
    to_seconds
    coalesce nullif if typeof grouping grouping_id row uuid gen_random_uuid xor
    map map_extract element_at list_value list_extract list_element
    array_length list_contains list_has array_contains list_sort list_distinct list_unique
    list_transform list_filter list_reduce list_slice array_slice unnest struct_pack
    struct_extract flatten columns
    """.split()  # noqa: SIM905 - a word list reads better than 200 quoted names
)

# Statements: refused at the top and anywhere inside a query (`FROM (DESCRIBE …)`).
_STATEMENTS = (
    exp.DDL,
    exp.DML,
    exp.Command,
    exp.Copy,
    exp.Set,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Use,
    exp.Show,
    exp.Describe,
    exp.Summarize,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Export,
    exp.Analyze,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SqlRefused(InvalidInput):
    """The text is not a single allowed `SELECT` over `data`; nothing was run."""

    code = "sql_refused"


class SqlFailed(InvalidInput):
    """DuckDB refused or failed the (checked) query: unknown column, bad cast, memory limit …"""

    code = "sql_error"


class SqlTimeout(InvalidInput):
    """The query ran past the time limit and was interrupted."""

    code = "sql_timeout"


@dataclass(frozen=True)
class SqlLimits:
    """The guardrails of one query, from settings."""

    timeout_seconds: float
    max_rows: int
    max_length: int
    memory_mb: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        return cls(
            timeout_seconds=settings.sql_timeout_seconds,
            max_rows=settings.sql_max_rows,
            max_length=settings.sql_max_length,
            memory_mb=settings.sql_memory_mb,
        )


@dataclass
class SqlResult:
    """Typed JSON-ready rows; `truncated` when the query had more than `max_rows` rows."""

    fields: list[dict[str, str]]
    records: list[dict[str, Any]]
    truncated: bool


# ---------------------------------------------------------------- checking the text


def check_sql(text: str, max_length: int = 10_000) -> str:
    """The SQL to run for `text` if it is one read-only `SELECT` over `data`; `SqlRefused` otherwise.

    The SQL is generated from the checked tree (comments dropped), so what runs is what was
    checked, and every function call it contains is on the allow-list.
    """
    if not text.strip():
        raise SqlRefused("请填写 SQL 查询语句，例如 SELECT * FROM data LIMIT 10")
    if len(text) > max_length:
        raise SqlRefused(f"SQL 过长：最多 {max_length:,} 个字符，收到 {len(text):,} 个")
    if _CONTROL.search(text):
        raise SqlRefused("SQL 中含有不可见的控制字符（如 NUL），请删除后重试")
    try:
        tree = _parse(text)
        for node in tree.walk():
            _check_node(node, text)
        generator = _CallRecorder(dialect=DIALECT, comments=False)
        sql = generator.generate(tree)
    except RecursionError as exc:
        raise SqlRefused("SQL 嵌套层次过深，请简化查询") from exc
    for name in generator.calls:
        _check_function(name)
    return sql


class _CallRecorder(DuckDBGenerator):
    """DuckDB's SQL generator, noting the name of every function call it writes.

    Function names are checked as generated rather than as written: sqlglot may write a call
    under another name (`date_add(d, …)` → `d + …`, `ifnull` → `COALESCE`), and what counts is
    what DuckDB will run. Syntax it writes itself (`CAST`, `CASE`, `[1, 2]`) is no call.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: set[str] = set()

    def func(
        self, name: str, *args: Any, prefix: str = "(", suffix: str = ")", normalize: bool = True
    ) -> str:
        if prefix == "(":
            self.calls.add(name)
        return super().func(name, *args, prefix=prefix, suffix=suffix, normalize=normalize)


def _parse(text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, dialect=DIALECT) if s is not None]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        where = f"（第 {error['line']} 行第 {error['col']} 列）" if error.get("line") else ""
        reason = error.get("description") or str(exc)
        raise SqlRefused(f"SQL 语法错误{where}：{reason}") from exc
    except SqlglotError as exc:  # the tokenizer: an unterminated string or quoted name …
        raise SqlRefused(f"SQL 语法错误：{str(exc)[:200]}") from exc
    if len(statements) != 1:
        raise SqlRefused("一次只能执行一条 SQL 语句（SELECT 查询）")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise SqlRefused(f"只允许 SELECT 查询，不能执行 {_statement_name(tree)}")
    return tree


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command | exp.Column):
        return str(node.this if isinstance(node, exp.Command) else node.name).upper()
    return node.key.upper()


def _check_node(node: exp.Expr, text: str) -> None:
    if isinstance(node, _STATEMENTS):
        raise SqlRefused(f"只允许 SELECT 查询，不能执行 {_statement_name(node)}")
    if isinstance(node, exp.Table):
        _check_table(node, text)
    elif isinstance(node, exp.Anonymous):  # a function sqlglot does not know, by the name written
        _check_function(node.name)


def _check_table(table: exp.Table, text: str) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise SqlRefused(f"不支持表函数 {_table_function(table.this)}()：只能查询表 {TABLE}")
    name = table.name
    start = table.this.meta.get("start")
    if isinstance(start, int) and 0 <= start < len(text) and text[start] in "'$":
        raise SqlRefused(f"不能用字符串“{name}”当作表读取文件：只能查询表 {TABLE}")
    if table.args.get("db") or table.args.get("catalog"):
        qualified = ".".join(part.name for part in table.parts)
        raise SqlRefused(f"只能查询表 {TABLE}，不能访问“{qualified}”")
    if name.lower() != TABLE and name.lower() not in _ctes_in_scope(table):
        raise SqlRefused(f"只能查询表 {TABLE}（及查询中 WITH 定义的名称），不能访问“{name}”")


def _table_function(source: exp.Expr) -> str:
    if isinstance(source, exp.Anonymous):
        return source.name.lower()
    return source.sql_name().lower() if isinstance(source, exp.Func) else source.key


def _ctes_in_scope(table: exp.Table) -> set[str]:
    """The `WITH` names a table reference can see, as SQL scopes them.

    A name defined after (or, unless `RECURSIVE`, at) the reference is not visible there: DuckDB
    would look it up in its catalog instead, which could reach a system view of the same name.
    """
    names: set[str] = set()
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = parent.expressions
            index = next(i for i, cte in enumerate(ctes) if cte is child)
            visible = ctes[: index + 1] if parent.args.get("recursive") else ctes[:index]
            names.update(cte.alias_or_name.lower() for cte in visible)
        else:
            with_ = next((v for v in parent.args.values() if isinstance(v, exp.With)), None)
            if with_ is not None and with_ is not child:
                names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        child, parent = parent, parent.parent
    return names


def _check_function(name: str) -> None:
    """`name` as SQL writes it (`upper`, `UPPER`, `"upper"`) must be on the allow-list."""
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    if name.lower() not in ALLOWED_FUNCTIONS:
        raise SqlRefused(f"不允许使用函数 {name.lower()}()：只能使用常用的计算、文本、日期、聚合和窗口函数")


# ---------------------------------------------------------------- running it


def run_sql(parquet: Path, text: str, limits: SqlLimits) -> SqlResult:
    """Check `text` and run it over the Parquet file: at most `max_rows` rows, within the time limit."""
    sql = check_sql(text, limits.max_length)
    job = sql_worker.Job(str(parquet), sql, limits.timeout_seconds, limits.max_rows, limits.memory_mb)
    outcome = sql_worker.run(job)
    if outcome.kind == "ok":
        return SqlResult(list(outcome.fields), list(outcome.records), outcome.truncated)
    if outcome.kind == "error":
        raise RuntimeError(f"SQL worker failed on {parquet}: {outcome.message}")
    raise _failure(outcome, limits)


def _failure(outcome: sql_worker.Outcome, limits: SqlLimits) -> ServiceError:
    match outcome.kind:
        case "refused":
            return SqlRefused(outcome.message)
        case "failed":
            return SqlFailed(f"SQL 执行出错：{outcome.message}")
        case "memory":
            return SqlFailed(f"查询所需内存超过上限（{limits.memory_mb} MiB），请缩小范围或先聚合")
        case "timeout":
            return SqlTimeout(
                f"查询超过 {limits.timeout_seconds:g} 秒，已停止：请缩小范围、先筛选或聚合后再试"
            )
        case "busy":
            wait = max(1, math.ceil(limits.timeout_seconds))
            return RateLimited("正在执行的 SQL 查询过多，请稍后再试", retry_after=wait)
    return SqlFailed("查询进程意外终止（可能是所需内存过多），请缩小范围后再试")
