"""Finding the entries that match a query's forms, and ranking them.

One statement asks the full-text index (SQLite FTS5 / the PostgreSQL tsvector) which entries hold
each form in the title, in the keywords, and in the summary or provider name (FTS5 column
filters / tsquery weight labels: the tsvector weighs title A, keywords B, provider C, summary D).
The score is then computed here, the same on both databases:

- per concept, its best form: form weight (own word 1.0 … vocabulary expansion 0.35–0.5) × field
  weight (title 3, keywords 2, summary or provider 1; a tenth more for each further field the
  form is in), plus a fifth of the weight of every form that matches, at most half as much again;
- concepts weighted by how rare they are (idf over the index), averaged, so the score is 0–4.5;
- then gentle tie-breakers: how much of the title the person's Chinese words cover (up to 0.3),
  freshness (up to 0.04, halving every half year) and use — downloads and data API calls over the
  last year from the audit log, cached per process for five minutes (up to 0.04).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kaifang.audit.models import AuditRecord, RecordKind
from kaifang.audit.tags import Tag
from kaifang.catalog import analysis
from kaifang.catalog.query import Concept, Form
from kaifang.db import is_sqlite, utcnow

TITLE, KEYWORDS, OTHER = 3.0, 2.0, 1.0
COVERAGE = 0.3
FRESHNESS = 0.04
USE = 0.04
HALF_LIFE_DAYS = 182.0
USE_TTL_SECONDS = 300.0
USE_ACTIONS = (Tag.data_access_download, Tag.data_access_query, Tag.data_access_sql)
# Where a form is looked for; all of a form's terms must occur in the same one of these, so that
# 保障 in the keywords and 标准 in the summary do not make 保障标准.
_FIELDS = ("title", "keywords", "summary provider")
_WEIGHTS = {"title": "A", "keywords": "B", "summary provider": "CD"}  # setweight in the migration
FIELD_EXTRA = 0.1  # a form in several fields counts a tenth of each further field
EXTRA = 0.2  # each matching form of a concept adds a fifth of its weight …
EXTRA_CAP = 0.5  # … up to half the best form's score


@dataclass
class Hits:
    anywhere: set[int] = field(default_factory=set)
    title: set[int] = field(default_factory=set)
    keywords: set[int] = field(default_factory=set)
    rest: set[int] = field(default_factory=set)  # summary or provider name

    def field_scores(self) -> dict[int, float]:
        """Per entry: the best field the form is in, and a tenth of each other field it is in."""
        table = [0.0] * 8  # by (in title, in keywords, elsewhere) as three bits
        for bits in range(1, 8):
            fields = [w for bit, w in ((4, TITLE), (2, KEYWORDS), (1, OTHER)) if bits & bit]
            table[bits] = max(fields) + FIELD_EXTRA * (sum(fields) - max(fields))
        title, keywords, rest = self.title, self.keywords, self.rest
        return {i: table[(i in title) << 2 | (i in keywords) << 1 | (i in rest)] for i in self.anywhere}


def _fts5(form: Form, column: str) -> str:
    phrases = ['"' + t.replace('"', '""') + '"' for t in form.terms]
    if form.prefix:
        phrases[-1] += "*"
    expr = " AND ".join(phrases)
    return f"{{{column}}} : ({expr})"


def _tsquery(form: Form, column: str = "") -> str:
    weight = _WEIGHTS[column] if column else ""
    lexemes = []
    for i, term in enumerate(form.terms):
        lexeme = "'" + term.replace("'", "''").replace("\\", "\\\\") + "'"
        star = "*" if form.prefix and i == len(form.terms) - 1 else ""
        lexemes.append(lexeme + (":" + star + weight if star or weight else ""))
    return " & ".join(lexemes)


def find(db: Session, forms: list[Form]) -> dict[Form, Hits]:
    """Entry ids holding each form in the title, in the keywords, elsewhere: one statement, whose
    rows are one list of ids per form and field (not one row per id: thousands of rows for a
    common word cost more to fetch than to find)."""
    if not forms:
        return {}
    hits = {form: Hits() for form in forms}
    for key, ids in _find_fts5(db, forms) if is_sqlite(db) else _find_tsvector(db, forms):
        found = hits[forms[key // 3]]
        (found.title, found.keywords, found.rest)[key % 3].update(ids)
    for found in hits.values():
        found.anywhere = found.title | found.keywords | found.rest
    return hits


def _find_fts5(db: Session, forms: list[Form]) -> list[tuple[int, list[int]]]:
    """(3 × form number + field number, entry ids): one FTS5 query per form and field."""
    parts, params = [], {}
    for i, form in enumerate(forms):
        for j, column in enumerate(_FIELDS):
            key = 3 * i + j  # only this number is written into the SQL; the query text is bound
            params[f"q{key}"] = _fts5(form, column)
            parts.append(
                f"SELECT {key}, group_concat(rowid) FROM search_fts WHERE search_fts MATCH :q{key}"  # noqa: S608
            )
    rows = db.execute(text(" UNION ALL ".join(parts)), params)
    return [(key, [int(i) for i in ids.split(",")]) for key, ids in rows if ids]


def _find_tsvector(db: Session, forms: list[Form]) -> list[tuple[int, list[int]]]:
    """The same from PostgreSQL with one GIN index scan per form: weight labels cannot be answered
    by the index, so each row a form finds is then tested per field. (One scan per form rather
    than one for all: the planner estimates a single form well even before the table is analysed,
    an OR of many forms badly, and then reads the whole table.)"""
    parts, params = [], {}
    for i, form in enumerate(forms):
        params[f"f{i}"] = _tsquery(form)
        fields = []
        for j, column in enumerate(_FIELDS):
            params[f"q{3 * i + j}"] = _tsquery(form, column)
            fields.append(f"to_tsquery('simple', :q{3 * i + j}) AS q{j}")
        ids = ", ".join(f"array_agg(d.entry_id) FILTER (WHERE d.tsv @@ q.q{j})" for j in range(3))
        # only numbers are written into the SQL; the query texts are bound
        parts.append(
            f"SELECT {i}, {ids} FROM search_docs d, (SELECT {', '.join(fields)}) AS q "  # noqa: S608
            f"WHERE d.tsv @@ to_tsquery('simple', :f{i})"
        )
    rows = db.execute(text(" UNION ALL ".join(parts)), params)
    return [(3 * i + j, ids) for i, *found in rows for j, ids in enumerate(found) if ids]


@dataclass
class Match:
    """How one entry matches a query."""

    score: float = 0.0  # 0–3 before tie-breakers
    required: int = 0  # required concepts it matches
    own: int = 0  # required concepts it matches by the person's own words
    title_chars: int = 0  # characters of the title the person's words matched


def _best(concept: Concept, hits: dict[Form, Hits]) -> tuple[dict[int, float], set[int], dict[int, int]]:
    """Per entry: the concept's score (its best form, plus a little for each further form that
    matches: 出入境 and 证件受理 and 护照 beat 出入境 alone), whether an own form matched, and the
    title characters the person's own Chinese words matched."""
    best: dict[int, float] = {}
    weights: dict[int, float] = {}
    own: set[int] = set()
    chars: dict[int, int] = {}
    for form, weight in concept.forms.items():
        found = hits[form]
        for entry_id, where in found.field_scores().items():
            score = weight * where
            weights[entry_id] = weights.get(entry_id, 0.0) + weight
            if score > best.get(entry_id, 0.0):
                best[entry_id] = score
        if form in concept.own:
            own |= found.anywhere
            if analysis.is_han("".join(form.terms)):
                length = form.length
                for entry_id in found.title:
                    if length > chars.get(entry_id, 0):
                        chars[entry_id] = length
    return {i: b + min(EXTRA * weights[i], EXTRA_CAP * b) for i, b in best.items()}, own, chars


def rank(concepts: list[Concept], hits: dict[Form, Hits], total: int) -> dict[int, Match]:
    """Every entry matching at least one concept, with its score."""
    scores: dict[int, float] = {}
    required: dict[int, int] = {}
    owned: dict[int, int] = {}
    chars: dict[int, int] = {}
    weights = 0.0
    for concept in concepts:
        best, own, title_chars = _best(concept, hits)
        idf = math.log(1 + max(total, 1) / max(len(best), 1))
        weights += idf
        for entry_id, score in best.items():
            scores[entry_id] = scores.get(entry_id, 0.0) + idf * score
        for entry_id, n in title_chars.items():
            chars[entry_id] = chars.get(entry_id, 0) + n
        if concept.required:
            for entry_id in best:
                required[entry_id] = required.get(entry_id, 0) + 1
            for entry_id in own & best.keys():
                owned[entry_id] = owned.get(entry_id, 0) + 1
    return {
        i: Match(s / weights, required.get(i, 0), owned.get(i, 0), chars.get(i, 0)) for i, s in scores.items()
    }


def tie_breakers(
    matches: dict[int, Match], rows: list[tuple[int, int, float]], uses: dict[int, int], now: float
) -> dict[int, float]:
    """Each entry's score with the small additions that order near-equal matches: title coverage,
    freshness and use. `rows` are (entry id, title length, last publication as a timestamp)."""
    most = math.log1p(max((uses.get(i, 0) for i, _l, _u in rows), default=0)) or 1.0
    half_life = HALF_LIFE_DAYS * 86400.0
    final = {}
    for entry_id, title_len, updated in rows:
        m = matches[entry_id]
        coverage = min(1.0, m.title_chars / title_len) if title_len else 0.0
        fresh = 0.5 ** (max(now - updated, 0.0) / half_life)
        used = math.log1p(uses.get(entry_id, 0)) / most
        final[entry_id] = m.score + COVERAGE * coverage + FRESHNESS * fresh + USE * used
    return final


# --- use of each entry, from the audit log ----------------------------------------------------------

_uses: dict[int, tuple[float, dict[int, int]]] = {}
_uses_lock = threading.Lock()


def use_counts(db: Session) -> dict[int, int]:
    """Downloads and data API calls per entry over the last year; recounted every few minutes."""
    key = id(db.get_bind())
    cached = _uses.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < USE_TTL_SECONDS:
        return cached[1]
    rows = db.execute(
        select(AuditRecord.entry_id, func.count())
        .where(
            AuditRecord.kind == RecordKind.access,
            AuditRecord.action.in_([str(a) for a in USE_ACTIONS]),
            AuditRecord.entry_id.is_not(None),
            AuditRecord.at >= utcnow() - timedelta(days=365),
        )
        .group_by(AuditRecord.entry_id)
    ).all()
    counts = {entry_id: int(n) for entry_id, n in rows if entry_id is not None}
    with _uses_lock:
        _uses[key] = (now, counts)
    return counts


def forget_use_counts() -> None:
    """Drop the cached counts (tests, and after bulk imports of the audit log)."""
    with _uses_lock:
        _uses.clear()
