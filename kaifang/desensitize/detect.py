"""Sensitive-data discovery: classify each column of a table from its name and a value sample.

A column is classified by the share of sampled values that have a kind's shape *and* pass its
check digits (the match ratio), combined with what the column name suggests:

- with a suggestive name, confidence = 0.4 + 0.6 × ratio (a third of the values suffices);
- without, confidence = strength × ratio, where the strength is 1 for self-evident kinds
  (check-digit IDs, mobiles, e-mails, plates …), 0.65 for kinds whose shape also fits ordinary
  values (names, addresses, passports, landlines), and 0 for kinds that are only ever plausible
  under a suggestive name (birth dates, single longitude/latitude numbers, bare 7–8 digit
  landlines: dates and decimals are everywhere in open data).

A kind is reported from confidence 0.6. So a column of 18-digit order numbers (about one in
eleven passes the ID check by chance) or of company names under 姓名 stays unclassified, and a
text column with one phone number in a thousand rows is free text with an embedded span count,
not a phone column. Values are examined after NFKC normalisation (full-width digits and
letters become ASCII) and trimming; number-like kinds also without inner spaces and hyphens.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kaifang.desensitize import checks, patterns
from kaifang.desensitize.kinds import DIRECT_IDENTIFIERS, LABELS, QUASI_IDENTIFIERS, Kind

__all__ = [
    "DIRECT_IDENTIFIERS",
    "LABELS",
    "QUASI_IDENTIFIERS",
    "ColumnFinding",
    "Kind",
    "find_spans",
    "scan_file",
    "scan_table",
]

CLASSIFY_AT = 0.6
STRENGTH: dict[Kind, float] = {
    Kind.ID_CARD: 1.0,
    Kind.MOBILE: 1.0,
    Kind.LANDLINE: 0.65,
    Kind.BANK_CARD: 1.0,
    Kind.EMAIL: 1.0,
    Kind.PERSON_NAME: 0.65,
    Kind.ADDRESS: 0.65,
    Kind.PLATE: 1.0,
    Kind.PASSPORT: 0.65,
    Kind.TRAVEL_PERMIT: 0.65,
    Kind.IP: 1.0,
    Kind.COORDINATES: 1.0,  # pairs in one cell; single numbers count only under a hint
    Kind.BIRTH_DATE: 0.0,
    Kind.CREDIT_CODE: 1.0,
}
_SINGLE = pa.array(sorted(patterns.SINGLE_SURNAMES))
_COMPOUND = pa.array(sorted(patterns.COMPOUND_SURNAMES))
NAME_MIN_DISTINCT = 0.5
SAMPLE_BLOCKS = 20
# Every kind is first tried on PROBE values spread over the sample; only kinds found there are
# counted on the whole sample. A kind missing from 500 values is below 1% of the column, far
# from the third needed to classify it (and spans in free text are counted separately).
PROBE = 500  # without a name-like header: people's names rarely repeat, categories do


@dataclass(frozen=True)
class ColumnFinding:
    """What the scanner found in one column (confidence and match ratio are 0 when kind is None)."""

    column: str
    kind: Kind | None  # None: nothing detected
    confidence: float  # 0..1
    match_ratio: float  # share of non-empty sampled values that match (and pass checksums)
    sample_count: int  # non-empty values examined
    embedded: dict[Kind, int]  # free-text columns: detected spans of ID/mobile etc. in the sample
    personal: bool  # kind in DIRECT_IDENTIFIERS or embedded personal spans

    @property
    def label(self) -> str:
        """The kind's Chinese name, or 未发现 when nothing was detected."""
        return LABELS[self.kind] if self.kind is not None else "未发现"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": str(self.kind) if self.kind is not None else None,
            "label": self.label,
            "confidence": self.confidence,
            "match_ratio": self.match_ratio,
            "sample_count": self.sample_count,
            "embedded": {str(k): n for k, n in self.embedded.items()},
            "personal": self.personal,
        }


def scan_table(table: pa.Table, sample_rows: int = 10_000) -> list[ColumnFinding]:
    """Classify every column from its name and up to `sample_rows` rows spread evenly over the table."""
    blocks = _sample_blocks(table.num_rows, sample_rows)
    return [_scan_column(name, table.column(name), blocks) for name in table.column_names]


def scan_file(path: Path, sheet: str | None = None) -> list[ColumnFinding]:
    """Scan a tabular file read exactly as an upload is (encoding, title rows, header, sheet).

    Raises InvalidInput (Chinese message) for files the platform cannot read.
    """
    from kaifang.datastore.reader import read_table

    return scan_table(read_table(Path(path), filename=Path(path).name, sheet=sheet).table)


def find_spans(text: str) -> list[tuple[int, int, Kind]]:
    """Resident IDs, mobiles, e-mails and bank cards inside free text: (start, end, kind), in order.

    Offsets are character offsets into `text` (full-width digits are recognised without changing
    positions). IDs and bank cards must pass their check digits; where shapes overlap, the
    e-mail, then the ID, then the bank card wins.
    """
    folded = patterns.fold_width(text)
    spans: list[tuple[int, int, Kind]] = []
    for kind, pattern in patterns.SPAN_PATTERNS:
        for match in pattern.finditer(folded):
            start, end = match.span()
            if any(start < e and s < end for s, e, _ in spans) or not _span_passes(kind, match.group()):
                continue
            spans.append((start, end, kind))
    return sorted(spans)


def _span_passes(kind: Kind, found: str) -> bool:
    if kind is Kind.ID_CARD and len(found) == 18:
        return checks.id18_valid(found.upper())
    if kind is Kind.BANK_CARD:
        return checks.luhn_valid(found.replace(" ", "").replace("-", ""))
    return True


# --- one column --------------------------------------------------------------------------------


def _sample_blocks(rows: int, sample_rows: int) -> list[tuple[int, int]] | None:
    """(offset, length) of SAMPLE_BLOCKS runs of rows spread evenly over the table: zero-copy
    slices, deterministic, and covering the end of a sorted file as well as its start."""
    if rows <= sample_rows:
        return None
    length = max(sample_rows // SAMPLE_BLOCKS, 1)
    blocks = max(sample_rows // length, 1)
    step = (rows - length) / max(blocks - 1, 1)
    return [(int(i * step), length) for i in range(blocks)]


def _sample_text(column: pa.ChunkedArray, blocks: list[tuple[int, int]] | None) -> pa.Array | None:
    """The sampled non-empty values as normalised text; None for columns that cannot hold PII text."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_date(kind)
        or pa.types.is_decimal(kind)
    ):
        return None
    parts = [column] if blocks is None else [column.slice(offset, length) for offset, length in blocks]
    # As text chunk by chunk: dictionary chunks may each have their own dictionary.
    chunks = [column_text(chunk) for part in parts for chunk in part.chunks]
    values = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
    if not pc.all(pc.string_is_ascii(values)).as_py():
        values = pc.utf8_normalize(values, "NFKC")
    values = pc.utf8_trim_whitespace(values)
    return pc.filter(values, pc.greater(pc.utf8_length(values), 0))


def column_text(values: pa.Array) -> pa.Array:
    """Values as the text a person would read: whole-number floats (phone numbers and IDs that a
    spreadsheet stored as numbers) as integers, not 1.3800138e+10."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_floating(values.type):
        whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), 1e18))
        if pc.all(whole).as_py() is not False:
            values = pc.cast(values, pa.int64())
    return pc.cast(values, pa.string())


def _scan_column(name: str, column: pa.ChunkedArray, blocks: list[tuple[int, int]] | None) -> ColumnFinding:
    values = _sample_text(column, blocks)
    if values is None or len(values) == 0:
        return ColumnFinding(name, None, 0.0, 0.0, 0, {}, False)
    hints = patterns.header_hints(name)
    counts = _evidence(values, hints)
    kind, confidence, ratio = _classify(counts, len(values), hints)
    embedded: dict[Kind, int] = {}
    if kind is None and _is_text(column.type) and _is_free_text(values):
        embedded = _embedded(values)
    personal = kind in DIRECT_IDENTIFIERS or any(k in DIRECT_IDENTIFIERS for k in embedded)
    return ColumnFinding(name, kind, confidence, ratio, len(values), embedded, personal)


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_free_text(values: pa.Array) -> bool:
    """Mostly values with words, spaces or punctuation: not a column of codes or serial numbers,
    in which a digit run passing a check by chance is noise, not an embedded identifier."""
    worded = pc.sum(pc.match_substring_regex(values, patterns.WORDED)).as_py() or 0
    return worded >= len(values) / 2


def _classify(counts: dict[Kind, int], n: int, hints: frozenset[Kind]) -> tuple[Kind | None, float, float]:
    best: tuple[Kind | None, float, float] = (None, 0.0, 0.0)
    for kind in Kind:  # declaration order breaks ties: the ID before the bank card
        ratio = counts.get(kind, 0) / n
        if ratio == 0:
            continue
        confidence = 0.4 + 0.6 * ratio if kind in hints else STRENGTH[kind] * ratio
        if confidence > best[1]:
            best = (kind, round(confidence, 3), round(ratio, 4))
    return best if best[1] >= CLASSIFY_AT else (None, 0.0, 0.0)


def _count(values: pa.Array, pattern: str) -> int:
    return int(pc.sum(pc.match_substring_regex(values, pattern)).as_py() or 0)


def _matching(values: pa.Array, pattern: str) -> pa.Array:
    return pc.filter(values, pc.match_substring_regex(values, pattern))


def _checked(values: pa.Array, pattern: str, check: Any) -> int:
    candidates = _matching(values, pattern)
    return int(pc.sum(check(candidates)).as_py() or 0) if len(candidates) else 0


Count = Callable[[pa.Array, pa.Array], int]  # (values, compact values) -> how many are of a kind


def _counters(hints: frozenset[Kind]) -> dict[Kind, Count]:
    """For each kind, a function counting that kind's values in (values, compact values)."""

    def landline(v: pa.Array, c: pa.Array) -> int:
        bare = _count(c, patterns.LANDLINE_BARE) if Kind.LANDLINE in hints else 0
        return _count(c, patterns.LANDLINE_FULL) + bare

    def coordinates(v: pa.Array, c: pa.Array) -> int:
        single = _count(v, patterns.COORD_ONE) if Kind.COORDINATES in hints else 0
        return _count(v, patterns.COORD_PAIR) + single

    return {
        Kind.ID_CARD: lambda v, c: _checked(c, patterns.ID18, checks.id18_mask) + _count(c, patterns.ID15),
        Kind.MOBILE: lambda v, c: _count(c, patterns.MOBILE),
        Kind.LANDLINE: landline,
        Kind.BANK_CARD: lambda v, c: _checked(c, patterns.BANK_CARD, checks.luhn_mask),
        Kind.EMAIL: lambda v, c: _count(v, patterns.EMAIL),
        Kind.PERSON_NAME: lambda v, c: _names(v, Kind.PERSON_NAME in hints),
        Kind.ADDRESS: lambda v, c: _count(v, patterns.ADDRESS),
        Kind.PLATE: lambda v, c: _count(c, patterns.PLATE),
        Kind.PASSPORT: lambda v, c: _count(c, patterns.PASSPORT),
        Kind.TRAVEL_PERMIT: lambda v, c: _count(c, patterns.TRAVEL_PERMIT),
        Kind.IP: lambda v, c: _count(v, patterns.IPV4) + _ipv6(v),
        Kind.COORDINATES: coordinates,
        Kind.BIRTH_DATE: lambda v, c: _count(v, patterns.BIRTH_DATE),
        Kind.CREDIT_CODE: lambda v, c: _checked(c, patterns.CREDIT_CODE, checks.credit_code_mask),
    }


def _compact(values: pa.Array) -> pa.Array:
    return pc.utf8_upper(pc.replace_substring_regex(values, patterns.COMPACT, ""))


def _evidence(values: pa.Array, hints: frozenset[Kind]) -> dict[Kind, int]:
    """For each kind found, how many sampled values are of that kind."""
    counters = _counters(hints)
    if len(values) > PROBE:
        probe = values.take(pa.array(range(0, len(values), len(values) // PROBE)))
        probe_compact = _compact(probe)
        counters = {kind: count for kind, count in counters.items() if count(probe, probe_compact)}
    compact = _compact(values)
    return {kind: count(values, compact) for kind, count in counters.items()}


def _names(values: pa.Array, hinted: bool) -> int:
    """Values shaped like a person's name: 2–4 Han characters starting with a common surname, or
    a dotted minority/foreign name; never an organisation or place."""
    shaped = _matching(values, patterns.NAME_SHAPE)
    if len(shaped) == 0:
        return 0
    single = pc.is_in(pc.utf8_slice_codeunits(shaped, 0, 1), value_set=_SINGLE)
    compound = pc.is_in(pc.utf8_slice_codeunits(shaped, 0, 2), value_set=_COMPOUND)
    dotted = pc.match_substring_regex(shaped, patterns.DOTTED_NAME)
    organisation = pc.match_substring_regex(shaped, patterns.ORGANISATION)
    person = pc.and_(pc.or_(pc.or_(single, compound), dotted), pc.invert(organisation))
    names = pc.filter(shaped, person)
    if not hinted and len(names) >= 20 and pc.count_distinct(names).as_py() < NAME_MIN_DISTINCT * len(names):
        return 0
    return len(names)


def _ipv6(values: pa.Array) -> int:
    found = 0
    for text in _matching(values, patterns.IPV6).to_pylist():
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            continue
        found += 1
    return found


def _embedded(values: pa.Array) -> dict[Kind, int]:
    candidates = _matching(values, patterns.SPAN_CANDIDATE).to_pylist()
    found = Counter(kind for text in candidates for _, _, kind in find_spans(text))
    return {kind: found[kind] for kind in Kind if found[kind]}
