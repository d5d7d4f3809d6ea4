"""Chinese full-text search over the catalog, in the metadata database itself.

Text is segmented with jieba (search mode) into space-separated tokens (``search_docs``), indexed
by SQLite FTS5 (``search_fts``) or a PostgreSQL tsvector column; both are created by the
migration. A query is segmented the same way; every query word must match (a word matches as
itself, as all of its sub-words, or — for one-character and Latin words — as a prefix). When no
entry matches every word, the search falls back to entries matching any word and says so.
Ranking puts title matches first, then BM25 (SQLite) or ts_rank (PostgreSQL) with fields
weighted title > keywords > provider > summary.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

import jieba
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import Organisation
from kaifang.accounts.permissions import Actor
from kaifang.catalog.models import (
    FREQUENCY_LABELS,
    OPEN_TYPE_LABELS,
    CatalogState,
    Entry,
    EntryFormat,
    EntryStatus,
    OpenType,
    SearchDoc,
    TaxonomyTerm,
)
from kaifang.db import is_sqlite

jieba.setLogLevel(logging.WARNING)

FACETS = ("theme", "provider", "open_type", "format", "update_frequency", "grade")
FACET_LABELS = {
    "theme": "主题分类",
    "provider": "数据提供方",
    "open_type": "开放类型",
    "format": "数据格式",
    "update_frequency": "更新频率",
    "grade": "数据分级",
}
# Function words that never decide a search.
STOPWORDS = frozenset(
    {
        "的",
        "了",
        "和",
        "与",
        "及",
        "或",
        "在",
        "是",
        "有",
        "吗",
        "呢",
        "啊",
        "吧",
        "之",
        "等",
        "对",
        "从",
        "把",
        "被",
        "就",
        "也",
        "都",
        "而",
    }
)
_WORD = re.compile(r"\w", re.UNICODE)
_MAX_QUERY_WORDS = 12


def normalise(text_: str) -> str:
    """Full-width to half-width and case folding, so ＰＭ１０, PM10 and pm10 are one term."""
    return unicodedata.normalize("NFKC", text_).casefold()


def tokens(text_: str) -> list[str]:
    """Search-mode segmentation: words and their sub-words, without punctuation."""
    return [t for t in (w.strip() for w in jieba.cut_for_search(normalise(text_))) if t and _WORD.search(t)]


def query_words(q: str) -> list[str]:
    words = [w.strip() for w in jieba.cut(normalise(q))]
    return [w for w in words if w and _WORD.search(w) and w not in STOPWORDS][:_MAX_QUERY_WORDS]


def index_entry(db: Session, entry: Entry) -> None:
    """(Re)index an entry's live fields and format rows; called whenever those fields change."""
    provider = (
        entry.provider.name
        if entry.provider is not None
        else db.get_one(Organisation, entry.provider_id).name
    )
    doc = db.get(SearchDoc, entry.id) or SearchDoc(entry_id=entry.id)
    doc.title = " ".join(tokens(entry.title))
    doc.keywords = " ".join(tokens(" ".join(entry.keywords or [])))
    doc.summary = " ".join(tokens(entry.summary or ""))
    doc.provider = " ".join(tokens(provider))
    db.merge(doc)
    db.query(EntryFormat).filter(EntryFormat.entry_id == entry.id).delete()
    for fmt in dict.fromkeys(entry.formats or []):
        db.add(EntryFormat(entry_id=entry.id, format=fmt))
    db.flush()
    if is_sqlite(db):
        db.execute(text("DELETE FROM search_fts WHERE rowid = :id"), {"id": entry.id})
        db.execute(
            text(
                "INSERT INTO search_fts(rowid, title, keywords, summary, provider) "
                "VALUES (:id, :title, :keywords, :summary, :provider)"
            ),
            {
                "id": entry.id,
                "title": doc.title,
                "keywords": doc.keywords,
                "summary": doc.summary,
                "provider": doc.provider,
            },
        )
    touch_catalog(db)


# --- query building -----------------------------------------------------------------------------


def _alternatives(word: str) -> list[list[str]]:
    """Ways a query word may match: itself, all of its sub-words together, or as a prefix."""
    subs = [t for t in jieba.cut_for_search(word) if t != word and _WORD.search(t)]
    alts = [[word]]
    if len(subs) > 1:
        alts.append(subs)
    return alts


def _prefixable(word: str) -> bool:
    return len(word) == 1 or word.isascii()


def _fts5_query(words: Sequence[str], joiner: str) -> str:
    def phrase(t: str) -> str:
        return '"' + t.replace('"', '""') + '"'

    groups = []
    for w in words:
        alts = [" AND ".join(phrase(t) for t in alt) for alt in _alternatives(w)]
        if _prefixable(w):
            alts.append(phrase(w) + "*")
        groups.append("(" + " OR ".join(f"({a})" for a in alts) + ")")
    return f" {joiner} ".join(groups)


def _tsquery(words: Sequence[str], joiner: str) -> str:
    def lexeme(t: str) -> str:
        return "'" + t.replace("'", "''").replace("\\", "\\\\") + "'"

    groups = []
    for w in words:
        alts = [" & ".join(lexeme(t) for t in alt) for alt in _alternatives(w)]
        if _prefixable(w):
            alts.append(lexeme(w) + ":*")
        groups.append("(" + " | ".join(f"({a})" for a in alts) + ")")
    return f" {'&' if joiner == 'AND' else '|'} ".join(groups)


def _matches(db: Session, words: Sequence[str], joiner: str) -> dict[int, tuple[bool, float]]:
    """Entry id → (title matched, score) for the words; a lower score ranks first."""
    if is_sqlite(db):
        expr = _fts5_query(words, joiner)
        rows = db.execute(
            text(
                "SELECT rowid, bm25(search_fts, 10.0, 5.0, 1.0, 3.0) "
                "FROM search_fts WHERE search_fts MATCH :q"
            ),
            {"q": expr},
        ).all()
        scores: dict[int, float] = dict(rows)
        in_title = set(
            db.scalars(
                text("SELECT rowid FROM search_fts WHERE search_fts MATCH :q"), {"q": f"title : ({expr})"}
            ).all()
        )
        return {entry_id: (entry_id in in_title, score) for entry_id, score in scores.items()}
    rows = db.execute(
        text(
            "SELECT entry_id, to_tsvector('simple', title) @@ q, -ts_rank(tsv, q, 1) "
            "FROM search_docs, to_tsquery('simple', :q) AS q WHERE tsv @@ q"
        ),
        {"q": _tsquery(words, joiner)},
    ).all()
    return {entry_id: (hit, score) for entry_id, hit, score in rows}


# --- the published catalog, held in memory between changes ---------------------------------------


@dataclass(frozen=True)
class Row:
    """What search needs of one published entry to filter, count facets and sort."""

    id: int
    provider_id: int
    values: dict[str, tuple[str, ...]]  # facet → values (several for formats)
    keys: tuple[int, ...]  # the same as numbered (facet, value) pairs, for counting in one go
    published_at: float
    closed: bool


@dataclass
class Snapshot:
    token: str | None
    rows: list[Row]  # newest first
    public_rows: list[Row]  # without 不予开放
    provider_names: dict[str, str]
    pairs: list[tuple[str, str]]  # number → (facet, value)
    labels: dict[tuple[str, str], str]  # (taxonomy kind, code) → name
    unfiltered: dict[object, tuple[list[Row], dict[str, Counter[str]]]] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)  # entry id → index in rows

    def __post_init__(self) -> None:
        self.position = {r.id: i for i, r in enumerate(self.rows)}

    def matching(self, match: dict[int, tuple[bool, float]], actor: Actor) -> list[Row]:
        """The visible rows among the matches, newest first, without scanning the whole catalog."""
        found = sorted(self.position[i] for i in match if i in self.position)
        return [row for p in found if _sees(actor, row := self.rows[p])]


_snapshots: dict[int, Snapshot] = {}
_lock = threading.Lock()


def catalog_token(db: Session) -> str | None:
    return db.scalar(select(CatalogState.token).where(CatalogState.id == 1))


def touch_catalog(db: Session) -> None:
    """Mark the published catalog as changed so every process reloads its snapshot."""
    token = secrets.token_hex(8)
    if not db.execute(update(CatalogState).where(CatalogState.id == 1).values(token=token)).rowcount:  # type: ignore[attr-defined]
        db.add(CatalogState(id=1, token=token))
        db.flush()


def _load_snapshot(db: Session, token: str | None) -> Snapshot:
    formats: dict[int, list[str]] = {}
    for entry_id, fmt in db.execute(select(EntryFormat.entry_id, EntryFormat.format)):
        formats.setdefault(entry_id, []).append(fmt)
    query = (
        select(
            Entry.id,
            Entry.provider_id,
            Organisation.slug,
            Organisation.name,
            Entry.theme,
            Entry.open_type,
            Entry.update_frequency,
            Entry.grade,
            Entry.published_at,
        )
        .join(Organisation, Organisation.id == Entry.provider_id)
        .where(Entry.status == EntryStatus.published)
    )
    rows, names = [], {}
    numbers: dict[tuple[str, str], int] = {}
    for id_, provider_id, slug, name, theme, open_type, freq, grade, published_at in db.execute(query):
        names[slug] = name
        values = {
            "theme": (theme,),
            "provider": (slug,),
            "open_type": (open_type,),
            "format": tuple(formats.get(id_, ())),
            "update_frequency": (freq,),
            "grade": (grade,),
        }
        stamp = published_at.timestamp() if published_at else 0.0
        keys = tuple(numbers.setdefault((f, v), len(numbers)) for f, vs in values.items() for v in vs if v)
        rows.append(Row(id_, provider_id, values, keys, stamp, open_type == OpenType.closed))
    rows.sort(key=lambda r: (-r.published_at, -r.id))  # newest first: filtered lists keep this order
    labels = {
        (kind, code): name
        for kind, code, name in db.execute(
            select(TaxonomyTerm.kind, TaxonomyTerm.code, TaxonomyTerm.name)
        ).all()
    }
    return Snapshot(token, rows, [r for r in rows if not r.closed], names, list(numbers), labels)


def snapshot(db: Session) -> Snapshot:
    """The published catalog, reloaded only when its token changed (one tiny query per search)."""
    token = catalog_token(db)
    key = id(db.get_bind())
    cached = _snapshots.get(key)
    if token is not None and cached is not None and cached.token == token:
        return cached
    fresh = _load_snapshot(db, token)
    with _lock:
        _snapshots[key] = fresh
    return fresh


# --- the search ---------------------------------------------------------------------------------


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class SearchResult:
    query: str
    count: int
    page: int
    page_size: int
    sort: str
    entries: list[Entry]
    facets: dict[str, list[FacetValue]]
    filters: dict[str, list[str]]
    partial: bool = False  # no entry matched every word; these match some of them
    words: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.page_size))


def _sees(actor: Actor, row: Row) -> bool:
    """不予开放 entries only for their provider's staff and the supervisors (Art. 7)."""
    return not row.closed or actor.is_supervisor or actor.is_member(row.provider_id)


def _visible_rows(snap: Snapshot, actor: Actor) -> list[Row]:
    if actor.is_supervisor:
        return snap.rows
    if not actor.org_roles:
        return snap.public_rows  # the common case, precomputed
    return [r for r in snap.rows if _sees(actor, r)]


def _count_facets(
    snap: Snapshot, rows: list[Row], filters: dict[str, list[str]]
) -> tuple[list[Row], dict[str, Counter[str]]]:
    """Rows passing every filter, and disjunctive facet counts in one pass: a value's count is the
    number of results the user gets on selecting it (all other facets' filters applied)."""
    wanted = {f: set(v) for f, v in filters.items()}
    passing, near = rows, []
    if wanted:
        passing = []
        for row in rows:
            failed = [f for f, allowed in wanted.items() if allowed.isdisjoint(row.values[f])]
            if not failed:
                passing.append(row)
            elif len(failed) == 1:
                near.append((failed[0], row))
    numbered: Counter[int] = Counter(chain.from_iterable(r.keys for r in passing))
    counts: dict[str, Counter[str]] = {f: Counter() for f in FACETS}
    for number, n in numbered.items():
        f, v = snap.pairs[number]
        counts[f][v] = n
    for f, row in near:
        counts[f].update(v for v in row.values[f] if v)
    return passing, counts


def search_catalog(
    db: Session,
    actor: Actor,
    q: str = "",
    filters: dict[str, list[str]] | None = None,
    *,
    sort: str = "relevance",
    page: int = 1,
    page_size: int = 20,
    labels: dict[tuple[str, str], str] | None = None,
) -> SearchResult:
    """Search the published catalog the actor may see; the page and the API both call this."""
    filters = {k: [v for v in vs if v] for k, vs in (filters or {}).items() if k in FACETS}
    filters = {k: vs for k, vs in filters.items() if vs}
    snap = snapshot(db)
    rows = _visible_rows(snap, actor)
    words = query_words(q)
    partial = False
    match: dict[int, tuple[bool, float]] = {}
    if words:
        match = _matches(db, words, "AND")
        rows = snap.matching(match, actor)
        if not rows and len(words) > 1:
            match = _matches(db, words, "OR")
            rows = snap.matching(match, actor)
            partial = bool(rows)
    if words or filters:
        passing, counts = _count_facets(snap, rows, filters)
    else:  # browsing the whole catalog (home page, first catalog page): the same answer until it changes
        key = "all" if actor.is_supervisor else tuple(sorted(actor.org_roles))
        if key not in snap.unfiltered:
            snap.unfiltered[key] = _count_facets(snap, rows, filters)
        passing, counts = snap.unfiltered[key]
    if sort == "newest" or not words:
        sort = "newest"  # the snapshot is already newest first
    else:
        # Title matches first, then the score; sorted is stable, so ties stay newest first.
        passing = sorted(passing, key=lambda r: (not match[r.id][0], match[r.id][1]))
    page = max(1, page)
    ids = [r.id for r in passing[(page - 1) * page_size : page * page_size]]
    by_id = {
        e.id: e
        for e in db.scalars(select(Entry).where(Entry.id.in_(ids)).options(joinedload(Entry.provider)))
    }
    facets = {
        f: _facet_values(f, counts[f], filters.get(f, []), labels or snap.labels, snap.provider_names)
        for f in FACETS
    }
    return SearchResult(
        query=q,
        count=len(passing),
        page=page,
        page_size=page_size,
        sort=sort,
        entries=[by_id[i] for i in ids if i in by_id],
        facets=facets,
        filters=filters,
        partial=partial,
        words=words,
    )


def _facet_values(
    facet: str,
    counts: Counter[str],
    selected: list[str],
    labels: dict[tuple[str, str], str],
    provider_names: dict[str, str],
) -> list[FacetValue]:
    names: dict[str, str]
    if facet == "provider":
        names = provider_names
    elif facet == "open_type":
        names = {str(k): v for k, v in OPEN_TYPE_LABELS.items()}
    elif facet == "update_frequency":
        names = dict(FREQUENCY_LABELS)
    elif facet == "format":
        names = {}
    else:
        names = {code: name for (kind, code), name in labels.items() if kind == facet}
    values = [
        FacetValue(v, names.get(v, v), counts.get(v, 0), v in selected) for v in set(counts) | set(selected)
    ]
    values.sort(key=lambda fv: (-fv.count, fv.label))
    return values
