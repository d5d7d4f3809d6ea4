"""Masking rules and their application to a table: one rule per column, applied column-wise.

Operators (`Rule.op`) and their parameters:

- ``keep``: the column as it is.
- ``mask``: keep the first `keep_first` and last `keep_last` characters, replace the rest with
  `char` (default ``*``); `width` makes the masked run that many characters whatever the hidden
  length; `keep_surname` keeps the surname instead of `keep_first` (compound surnames whole:
  欧阳**); `keep_domain` masks only the part of an e-mail before the ``@``. Characters are
  counted, not bytes. The masked run is never empty, and a value no longer than
  keep_first + keep_last shows fewer than half of its characters (at most ⌊(n−1)/2⌋, first ones
  first): a mask never reveals a whole value.
- ``pseudonym``: HMAC-SHA256 keyed with the provider's secret, as the first 16 hex characters
  (64 bits: a collision is unlikely below billions of distinct values). The same value and
  secret give the same pseudonym in every version, so records still join; another provider's
  secret gives another pseudonym. Without the secret, enumerating all IDs or phone numbers does
  not reverse it (a plain or salted hash would be).
- ``generalize``: `to` = ``month`` | ``year`` (dates), ``age_band`` (`band` years, default 10),
  ``district`` (addresses), ``round`` (coordinates, `digits` decimals, default 2, about 1 km),
  ``subnet`` (IP addresses, IPv4 `prefix`, default 24; IPv6 /48). A value that cannot be
  generalized becomes empty.
- ``suppress``: the column is dropped.
- ``replace``: every value that is not null becomes `value`.
- ``mask_spans``: free text keeps its words; only the IDs, mobiles, e-mails and bank cards found
  in it are masked, each in the default way for its kind.

Except for ``keep``, ``replace`` and ``mask_spans``, values are first normalised (NFKC: full-width
digits and letters become ASCII; surrounding spaces removed), so ``１３８００１３８０００`` and
`` 13800138000 `` give one pseudonym. Empty cells (null) stay empty under every operator, and
an empty string stays empty.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from kaifang.desensitize import generalize as gen
from kaifang.desensitize.detect import ColumnFinding, column_text, find_spans
from kaifang.desensitize.kinds import Kind
from kaifang.desensitize.patterns import SPAN_CANDIDATE, canonical, surname_length
from kaifang.desensitize.rules import (
    GENERALIZE_LABELS,
    OP_LABELS,
    OPS,
    Op,
    Rule,
    RuleError,
    rules_from_json,
    rules_to_json,
    validate_rules,
)

__all__ = [
    "GENERALIZE_LABELS",
    "OPS",
    "OP_LABELS",
    "Op",
    "Rule",
    "RuleError",
    "apply_rules",
    "default_rule",
    "mask_value",
    "rules_from_json",
    "rules_to_json",
    "validate_rules",
]

PSEUDONYM_HEX = 16
MIN_SECRET_BYTES = 16


def _native() -> ModuleType | None:
    """The C extension built from _hmac.c, or None where it was not built (no compiler)."""
    try:
        from kaifang.desensitize import _hmac  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _hmac


_NATIVE = _native()


# --- default rules -------------------------------------------------------------------------------

_MASKS: dict[Kind, dict[str, Any]] = {
    Kind.ID_CARD: {"keep_first": 1, "keep_last": 1},
    Kind.MOBILE: {"keep_first": 3, "keep_last": 4},
    Kind.LANDLINE: {"keep_first": 3, "keep_last": 2},
    Kind.BANK_CARD: {"keep_first": 0, "keep_last": 4},
    Kind.EMAIL: {"keep_first": 1, "keep_last": 0, "keep_domain": True, "width": 3},
    Kind.PERSON_NAME: {"keep_surname": True},
    Kind.PLATE: {"keep_first": 2, "keep_last": 1},
    Kind.PASSPORT: {"keep_first": 1, "keep_last": 2},
    Kind.TRAVEL_PERMIT: {"keep_first": 1, "keep_last": 2},
}
_GENERALIZE: dict[Kind, dict[str, Any]] = {
    Kind.ADDRESS: {"to": "district"},
    Kind.COORDINATES: {"to": "round", "digits": 2},
    Kind.BIRTH_DATE: {"to": "month"},
    Kind.IP: {"to": "subnet", "prefix": 24},
}


def default_rule(finding: ColumnFinding) -> Rule:
    """The rule proposed for a scanned column (the provider reviews and may change it)."""
    kind = finding.kind
    if kind in _MASKS:
        return Rule(finding.column, "mask", {**_MASKS[kind], "char": "*"})
    if kind in _GENERALIZE:
        return Rule(finding.column, "generalize", dict(_GENERALIZE[kind]))
    if kind is None and finding.embedded:
        return Rule(finding.column, "mask_spans", {"char": "*"})
    return Rule(finding.column, "keep", {})  # nothing found, or an organisation's credit code


# --- one value (the reference the column-wise code must agree with) ------------------------------


def mask_value(value: str | None, rule: Rule, secret: bytes) -> str | None:
    """One value as `rule` publishes it (None for suppressed columns and empty cells)."""
    if value is None or rule.op == "suppress":
        return None
    if rule.op == "keep":
        return value
    if rule.op == "replace":
        return str(rule.params["value"])
    if rule.op == "mask_spans":
        return mask_spans(value, rule.params.get("char", "*"))
    text = canonical(value)
    if not text:
        return text
    if rule.op == "mask":
        return mask_text(text, rule.params)
    if rule.op == "pseudonym":
        return pseudonym(text, secret)
    return gen.generalize(text, rule.params)


def mask_text(text: str, params: Mapping[str, Any]) -> str:
    """The ``mask`` operator on one non-empty value."""
    char, width = params.get("char", "*"), params.get("width")
    first, last = params.get("keep_first", 0), params.get("keep_last", 0)
    if params.get("keep_domain") and "@" in text[1:]:
        local, domain = text.rsplit("@", 1)
        return positional(local, first, last, char, width) + "@" + domain
    if params.get("keep_surname"):
        first = min(surname_length(text), len(text) - 1)
    return positional(text, first, last, char, width)


def positional(text: str, first: int, last: int, char: str = "*", width: int | None = None) -> str:
    """Keep `first` and `last` characters, mask the rest; see the module docstring for short values."""
    n = len(text)
    if first + last >= n:
        reveal = max(n - 1, 0) // 2
        first = min(first, reveal)
        last = min(last, reveal - first)
    return text[:first] + char * (width or n - first - last) + text[n - last :]


def pseudonym(text: str, secret: bytes) -> str:
    """HMAC-SHA256 of the normalised value under `secret`, first 16 hex characters."""
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def mask_spans(text: str, char: str = "*") -> str:
    """Free text with each detected ID, mobile, e-mail and bank card masked the default way."""
    pieces, done = [], 0
    for start, end, kind in find_spans(text):
        pieces += [text[done:start], mask_text(text[start:end], {**_MASKS[kind], "char": char})]
        done = end
    return "".join(pieces) + text[done:]


# --- whole tables ---------------------------------------------------------------------------------


def apply_rules(table: pa.Table, rules: Sequence[Rule], secret: bytes) -> pa.Table:
    """The table as published: masked columns in place, suppressed columns dropped, others kept.

    Raises RuleError for invalid rules, ValueError when a pseudonym rule meets a secret shorter
    than 16 bytes. Position masks and pseudonyms run in C over the Arrow buffers (_hmac.c,
    outside the GIL); where the extension was not built, as Arrow kernels or one DuckDB query
    for all columns. Pseudonyms of repeating values, and the other operators, are computed once
    per distinct value.
    """
    validate_rules(rules, table.column_names)
    if any(r.op == "pseudonym" for r in rules) and len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"假名化密钥至少需要 {MIN_SECRET_BYTES} 字节")
    by_column = {r.column: r for r in rules}
    done: dict[str, pa.Array | pa.ChunkedArray] = {}
    in_sql: dict[str, tuple[pa.Array, Rule]] = {}
    for name in table.column_names:
        rule = by_column.get(name, Rule(name, "keep"))
        if rule.op == "keep":
            done[name] = table.column(name)
        elif _in_sql(rule):
            text = _canonical_column(_as_text(table.column(name)))
            if (whole := _whole_column(text, rule, secret)) is not None:
                done[name] = whole
            else:
                in_sql[name] = (text, rule)
        elif rule.op != "suppress":
            done[name] = apply_rule(table.column(name), rule, secret)
    done |= _apply_sql(in_sql, secret)
    names = [n for n in table.column_names if n in done]
    return pa.Table.from_arrays([done[n] for n in names], names=names)


def apply_rule(column: pa.ChunkedArray | pa.Array, rule: Rule, secret: bytes) -> pa.Array:
    """One column under one (validated, not suppress) rule."""
    values = _decoded(column)
    if rule.op == "keep":
        return values
    if rule.op == "replace":
        replacement = pa.scalar(str(rule.params["value"]))
        return pc.if_else(pc.is_valid(values), replacement, pa.scalar(None, pa.string()))
    typed = _generalize_typed(values, rule) if rule.op == "generalize" else None
    if typed is not None:
        return typed
    text = column_text(values)
    if rule.op == "mask_spans":
        return _mask_spans_column(text, rule.params.get("char", "*"))
    text = _canonical_column(text)
    if _in_sql(rule):
        whole = _whole_column(text, rule, secret)
        return whole if whole is not None else _apply_sql({"v": (text, rule)}, secret)["v"]
    return _per_distinct(text, lambda v: mask_value(v, rule, secret))


def _whole_column(text: pa.Array, rule: Rule, secret: bytes) -> pa.Array | None:
    """A position mask or pseudonym (`_in_sql` rules) of a normalised column without SQL: in C
    where the extension was built, each distinct value keyed once where values repeat. None:
    left to the one DuckDB query (`_apply_sql`)."""
    if rule.op == "pseudonym" and _repeats(text):
        return _pseudonyms_of_distinct(text, rule, secret)
    if rule.op == "pseudonym" and _native_fits(text):
        return _pseudonym_column(text, secret)
    if rule.op == "mask":
        return _mask_column(text, rule.params)
    return None


def _repeats(text: pa.Array, sample: int = 10_000) -> bool:
    """Whether the first values repeat enough (under half distinct) to key each distinct value once."""
    head = text.slice(0, sample)
    return len(head) > 0 and pc.count_distinct(head).as_py() < len(head) / 2


def _pseudonyms_of_distinct(text: pa.Array, rule: Rule, secret: bytes) -> pa.Array:
    """HMAC once per distinct value (a transaction log repeats its customers' numbers)."""
    encoded = pc.dictionary_encode(text)
    if _native_fits(encoded.dictionary):
        return pc.take(_pseudonym_column(encoded.dictionary, secret), encoded.indices)
    return pc.take(_apply_sql({"v": (encoded.dictionary, rule)}, secret)["v"], encoded.indices)


_NATIVE_CHUNK = 65_536  # values below which one thread hashes the whole column


def _native_fits(text: pa.Array) -> bool:
    """Whether the C pseudonyms can take the column (their output has int32 offsets)."""
    return _NATIVE is not None and (text.offset + len(text)) * PSEUDONYM_HEX < 2**31


def _pseudonym_column(text: pa.Array, secret: bytes, threads: int | None = None) -> pa.Array:
    """`pseudonym` of every value of a string column, in C (_hmac.c), equal to the SQL form.

    Nulls stay null and empty strings stay empty. The output reuses the input's validity bitmap
    and offset; the hashing runs outside the GIL, one range of the column per thread (a range
    costs about 0.1 µs a value with the CPU's SHA extensions).
    """
    assert _NATIVE is not None
    large = pa.types.is_large_string(text.type)
    validity, offsets, data = _string_buffers(text)
    first, n = text.offset, len(text)
    out_offsets = pa.allocate_buffer(4 * (first + n + 1))
    total = _NATIVE.offsets(offsets, validity, large, first, n, out_offsets)
    out = pa.allocate_buffer(total)
    inner, outer = _hmac_pads(secret)
    threads = threads or min(_cpus(), 8)
    steps = min(threads, max(1, n // _NATIVE_CHUNK))
    bounds = [first + n * k // steps for k in range(steps + 1)]

    def run(start: int, stop: int) -> None:
        _NATIVE.hmac16(inner, outer, offsets, data, large, out_offsets, out, start, stop)

    if steps == 1:
        run(first, first + n)
    else:
        with ThreadPoolExecutor(steps) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return pa.Array.from_buffers(
        pa.string(), n, [validity, out_offsets, out], null_count=text.null_count, offset=first
    )


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _decoded(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column_text(_decoded(column))


def _in_sql(rule: Rule) -> bool:
    """Plain position masks and pseudonyms: the operators worth a vectorised SQL form."""
    if rule.op == "pseudonym":
        return True
    return rule.op == "mask" and not (rule.params.get("keep_surname") or rule.params.get("keep_domain"))


def _apply_sql(columns: dict[str, tuple[pa.Array, Rule]], secret: bytes) -> dict[str, pa.Array]:
    """Masks and pseudonyms of several columns in one DuckDB query, equal to `mask_value`.

    Columns are renamed c0, c1 … (no quoting of user column names); the mask characters and the
    HMAC pads are query parameters; the keep counts are validated integers.
    """
    if not columns:
        return {}
    params: dict[str, Any] = {}
    selects = []
    for i, (_name, (_values, rule)) in enumerate(columns.items()):
        if rule.op == "pseudonym":
            params["inner"], params["outer"] = _hmac_pads(secret)
            selects.append(f"{_HMAC_SQL.format(c=f'c{i}')} AS c{i}")
        else:
            params[f"char{i}"] = rule.params.get("char", "*")
            selects.append(f"{_mask_sql(f'c{i}', f'$char{i}', rule.params)} AS c{i}")
    source = pa.table({f"c{i}": values for i, (values, _rule) in enumerate(columns.values())})
    con = duckdb.connect()
    try:
        con.register("source", source)
        query = f"SELECT {', '.join(selects)} FROM source"  # noqa: S608 - built from c0… and integers only
        result = con.sql(query, params=params).to_arrow_table()
    finally:
        con.close()
    return {name: result.column(i).combine_chunks() for i, name in enumerate(columns)}


_HMAC = "substr(sha256($outer::BLOB || unhex(sha256($inner::BLOB || encode({c})))), 1, 16)"
_HMAC_SQL = "CASE WHEN {c} = '' THEN {c} ELSE " + _HMAC + " END"  # RFC 2104 over the padded key


def _mask_column(text: pa.Array, params: Mapping[str, Any]) -> pa.Array | None:
    """A plain position mask (`positional`) of a whole string column, in C (_hmac.c); without
    the extension, with Arrow kernels when every value is empty or longer than the kept
    characters (the usual case). None otherwise: the short values' rule is left to SQL."""
    first, last, width = _keeps(params)
    char = str(params.get("char", "*"))
    if _NATIVE is not None:
        return _mask_native(text, first, last, int(width or 0), char)
    n = pc.utf8_length(text)
    short = pc.and_(pc.greater(n, 0), pc.less_equal(n, first + last))
    if pc.any(short).as_py():
        return None
    head = pc.utf8_slice_codeunits(text, 0, first)
    tail = pc.utf8_slice_codeunits(text, -last) if last else pa.scalar("", text.type)
    if width:
        run: pa.Array | pa.Scalar = pa.scalar(char * int(width), text.type)
    else:
        run = pc.binary_repeat(
            pa.scalar(char, text.type), pc.max_element_wise(pc.subtract(n, first + last), 0)
        )
    masked = pc.binary_join_element_wise(head, run, tail, pa.scalar("", text.type))
    if width and pc.any(pc.equal(n, 0)).as_py():
        masked = pc.if_else(pc.equal(n, 0), text, masked)
    return masked.cast(pa.string())


def _mask_native(text: pa.Array, first: int, last: int, width: int, char: str) -> pa.Array | None:
    assert _NATIVE is not None
    validity, offsets, data = _string_buffers(text)
    start, n, chars = text.offset, len(text), char.encode("utf-8")
    bound = data.size * (1 + len(chars)) + n * width * len(chars)
    if bound > 2**31 - 1:
        return None  # beyond int32 offsets: SQL
    out_offsets, out = pa.allocate_buffer(4 * (start + n + 1)), pa.allocate_buffer(bound)
    size = _NATIVE.mask(
        offsets, data, validity, pa.types.is_large_string(text.type), start, n,
        first, last, width, chars, out_offsets, out,
    )  # fmt: skip
    return pa.Array.from_buffers(
        pa.string(), n, [validity, out_offsets, out.slice(0, size)], null_count=text.null_count, offset=start
    )


def _string_buffers(text: pa.Array) -> tuple[pa.Buffer | None, pa.Buffer, pa.Buffer]:
    """Validity (None without nulls), offsets and data of a string or large_string array."""
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        raise TypeError(f"not a string column: {text.type}")
    validity, offsets, data = text.buffers()
    return validity, offsets, data if data is not None else pa.py_buffer(b"")


def _keeps(params: Mapping[str, Any]) -> tuple[int, int, Any]:
    """A position mask's characters kept at the start and the end, and its fixed width (or None)."""
    return int(params.get("keep_first", 0)), int(params.get("keep_last", 0)), params.get("width")


def _mask_sql(c: str, char: str, params: Mapping[str, Any]) -> str:
    """`positional` as a SQL expression (DuckDB's length/left/right count characters)."""
    first, last, width = _keeps(params)
    n, kept = f"length({c})", first + last
    reveal = f"(greatest({n} - 1, 0) // 2)"
    head = f"CASE WHEN {n} > {kept} THEN {first} ELSE least({first}, {reveal}) END"
    tail = f"CASE WHEN {n} > {kept} THEN {last} ELSE least({last}, {reveal} - least({first}, {reveal})) END"
    run = f"repeat({char}, {int(width)})" if width else f"repeat({char}, {n} - ({head}) - ({tail}))"
    return f"CASE WHEN {n} = 0 THEN {c} ELSE left({c}, {head}) || {run} || right({c}, {tail}) END"


def _canonical_column(text: pa.Array) -> pa.Array:
    if not pc.all(pc.string_is_ascii(text)).as_py():
        text = pc.utf8_normalize(text, "NFKC")
    return pc.utf8_trim_whitespace(text)


def _per_distinct(text: pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    """`fn` once per distinct value, mapped back (nulls stay null)."""
    encoded = pc.dictionary_encode(text)
    mapped = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, encoded.indices)


def _hmac_pads(secret: bytes) -> tuple[bytes, bytes]:
    """The inner and outer keys of RFC 2104 (the secret padded to SHA-256's 64-byte block)."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _mask_spans_column(text: pa.Array, char: str) -> pa.Array:
    candidate = pc.fill_null(pc.match_substring_regex(text, SPAN_CANDIDATE), False)
    if not pc.any(candidate).as_py():
        return text
    masked = [mask_spans(v, char) for v in pc.filter(text, candidate).to_pylist()]
    return pc.replace_with_mask(text, candidate, pa.array(masked, pa.string()))


def _generalize_typed(values: pa.Array, rule: Rule) -> pa.Array | None:
    """Dates and timestamps to month or year, floats rounded, without going through text."""
    to = rule.params["to"]
    if to in ("month", "year") and (pa.types.is_date(values.type) or pa.types.is_timestamp(values.type)):
        return pc.strftime(values, "%Y-%m" if to == "month" else "%Y")
    if to == "round" and pa.types.is_floating(values.type):
        return pc.round(values, int(rule.params.get("digits", gen.DEFAULTS["digits"])))
    return None
