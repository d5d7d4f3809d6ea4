"""The column profile of a published version (字段概况): per column its nulls, distinct values,
range, mean and most common values, so a visitor knows the data before downloading it.

A published version never changes, so its profile is computed once: kept in memory (keyed like
the query engines by version id and file checksum) and written as a JSON sidecar next to the
Parquet file, so a restart or another app process reads it instead of scanning again. Exact
figures cost two passes over the file — one for every column's counts and range, one group-by per
column for distinct and top values — about 0.3 s for the demo's 1,052,640 rows × 11 columns.
The hidden `_row` column is never profiled.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb

from kaifang.datastore import service
from kaifang.datastore.models import ResourceVersion
from kaifang.datastore.query import NUMERIC, ROW, quote
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import Column, ColumnType

log = logging.getLogger("kaifang.datastore")

FORMAT = 1  # bump when the sidecar's shape changes: older sidecars are then recomputed
TOP_VALUES = 5
LOW_CARDINALITY = 20  # numbers and dates with at most this many values also show their top values
MAX_VALUE_CHARS = 100  # a top value longer than this is cut (long free text)
_CACHED = 256
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@dataclass(frozen=True)
class TopValue:
    value: Any  # JSON-ready: text, number, boolean, or ISO date/datetime text
    count: int


@dataclass
class ColumnProfile:
    """One column's figures; `min`/`max` for numbers and dates, lengths for text."""

    name: str
    type: ColumnType
    nulls: int
    distinct: int  # exact number of different non-null values
    min: Any = None
    max: Any = None
    mean: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    unique: bool = False  # every non-null value differs from the others (an identifier, a timestamp…)
    top: list[TopValue] = field(default_factory=list)  # most common first; empty when uninformative


@dataclass
class Profile:
    rows: int
    columns: list[ColumnProfile]


# --- computing ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    return value


def _stat_exprs(column: Column) -> list[str]:
    """count, then min and max (of the lengths, for text), then the mean for numbers."""
    ident = quote(column.name)
    if column.type is ColumnType.text:
        exprs = [f"count({ident})", f"min(length({ident}))", f"max(length({ident}))"]
    elif column.type is ColumnType.boolean:
        exprs = [f"count({ident})", "NULL", "NULL"]
    else:
        exprs = [f"count({ident})", f"min({ident})", f"max({ident})"]
    return [*exprs, f"avg({ident})" if column.type in NUMERIC else "NULL"]


def _unique(distinct: int, non_null: int) -> bool:
    return distinct > 1 and distinct == non_null


def _shows_top(column: Column, distinct: int, non_null: int) -> bool:
    """Top values say something for categories, not for measurements or all-different values."""
    if distinct == 0 or _unique(distinct, non_null):
        return False
    return column.type in (ColumnType.text, ColumnType.boolean) or distinct <= LOW_CARDINALITY


def _column_profile(
    con: duckdb.DuckDBPyConnection, path: str, column: Column, stats: tuple[Any, ...], rows: int
) -> ColumnProfile:
    non_null, low, high, mean = stats
    ident = quote(column.name)
    # Distinct count and top values in one group-by; the window counts the groups in the same pass.
    sql = (
        f"SELECT v, c, count(*) OVER () FROM (SELECT {ident} AS v, count(*) AS c "  # noqa: S608
        f"FROM read_parquet(?) WHERE {ident} IS NOT NULL GROUP BY 1) ORDER BY c DESC, v LIMIT ?"
    )
    groups = con.execute(sql, [path, TOP_VALUES]).fetchall()
    distinct = int(groups[0][2]) if groups else 0
    profile = ColumnProfile(
        name=column.name,
        type=column.type,
        nulls=rows - int(non_null),
        distinct=distinct,
        unique=_unique(distinct, int(non_null)),
    )
    if column.type is ColumnType.text:
        profile.min_length, profile.max_length = low, high
    else:
        profile.min, profile.max = _jsonable(low), _jsonable(high)
    profile.mean = _jsonable(float(mean)) if mean is not None else None
    if _shows_top(column, distinct, int(non_null)):
        profile.top = [TopValue(_jsonable(v), int(c)) for v, c, _ in groups]
    return profile


def compute_profile(parquet_path: Path, schema: list[Column]) -> Profile:
    """Exact figures for every column of one Parquet file (never `_row`)."""
    columns = [c for c in schema if c.name != ROW]
    path = str(parquet_path)
    exprs = [expr for c in columns for expr in _stat_exprs(c)]
    with duckdb.connect(":memory:", config=_DUCKDB_CONFIG) as con:
        first = con.execute(f"SELECT {', '.join(['count(*)', *exprs])} FROM read_parquet(?)", [path])  # noqa: S608
        stats = first.fetchone() or (0,)
        rows = int(stats[0])
        return Profile(
            rows,
            [
                _column_profile(con, path, c, tuple(stats[1 + 4 * i : 5 + 4 * i]), rows)
                for i, c in enumerate(columns)
            ],
        )


# --- the JSON sidecar -------------------------------------------------------------------------------


def sidecar_key(version: ResourceVersion) -> str:
    """`data/12/3.parquet` → `data/12/3.profile.json`: next to the file it describes."""
    return str(PurePosixPath(version.data_key).with_suffix(".profile.json"))


def _to_json(profile: Profile, version: ResourceVersion) -> bytes:
    columns = [asdict(c) for c in profile.columns]
    body = {"format": FORMAT, "sha256": version.sha256, "rows": profile.rows, "columns": columns}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _from_json(raw: bytes, version: ResourceVersion) -> Profile | None:
    """The stored profile, or None when it is unreadable or describes another file."""
    try:
        body = json.loads(raw)
        if body.get("format") != FORMAT or body.get("sha256") != version.sha256:
            return None
        columns = [
            ColumnProfile(**{**c, "type": ColumnType(c["type"]), "top": [TopValue(**t) for t in c["top"]]})
            for c in body["columns"]
        ]
        return Profile(int(body["rows"]), columns)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _read_sidecar(store: FileStore, version: ResourceVersion) -> Profile | None:
    key = sidecar_key(version)
    if not store.exists(key):
        return None
    return _from_json(b"".join(store.open_chunks(key)), version)


def _write_sidecar(store: FileStore, version: ResourceVersion, profile: Profile) -> None:
    """Best effort: without the sidecar the profile is simply computed again after a restart."""
    try:
        with tempfile.TemporaryDirectory(dir=store.path("tmp").parent) as tmp:
            out = Path(tmp) / "profile.json"
            out.write_bytes(_to_json(profile, version))
            store.put_file(sidecar_key(version), out)
    except OSError:
        log.warning("could not store the profile of version %s", version.id, exc_info=True)


# --- the cache ----------------------------------------------------------------------------------------

_profiles: OrderedDict[tuple[int, str], Profile] = OrderedDict()
_profiles_lock = threading.Lock()
# One computation at a time: visitors arriving together at a new version wait for the first
# one's result instead of each scanning the file (the machine has few cores).
_compute_lock = threading.Lock()


def _cached(key: tuple[int, str]) -> Profile | None:
    with _profiles_lock:
        profile = _profiles.get(key)
        if profile is not None:
            _profiles.move_to_end(key)
        return profile


def _remember(key: tuple[int, str], profile: Profile) -> None:
    with _profiles_lock:
        _profiles[key] = profile
        while len(_profiles) > _CACHED:
            _profiles.popitem(last=False)


def profile_of(store: FileStore, version: ResourceVersion) -> Profile:
    """The version's profile: from memory, else its sidecar, else computed (and both kept).

    Callers check first that the visitor may read the data (`service.can_read_data`).
    """
    key = (version.id, version.sha256)  # the checksum: a reused id never meets a stale profile
    profile = _cached(key)
    if profile is not None:
        return profile
    with _compute_lock:
        profile = _cached(key) or _read_sidecar(store, version)
        if profile is None:
            profile = compute_profile(store.path(version.data_key), service.schema_of(version))
            _write_sidecar(store, version, profile)
        _remember(key, profile)
    return profile
