"""Chinese full-text search over the catalog, in the metadata database itself.

Text is normalised and segmented (kaifang.catalog.analysis: simplified characters, half-width,
case folded, jieba search mode, pinyin of title and keyword words) into space-separated terms
(``search_docs``), indexed by SQLite FTS5 (``search_fts``) or a PostgreSQL tsvector column; both
are created by the migration. A query becomes concepts, each matched by the person's own words,
their pinyin or, more weakly, the catalog words the search vocabulary gives for them
(kaifang.catalog.query); kaifang.catalog.ranking finds and scores the matches.

Never a dead end: entries matching every concept come first; when none matches the person's own
words the result says it was found through related words (`expanded`); when no entry matches
every concept, entries matching some of them are shown and the result says so (`partial`); a
query that finds nothing, or only through those fallbacks, gets "did you mean" suggestions and
matching themes (kaifang.catalog.suggest).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain

from sqlalchemy import select, text
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import Organisation
from kaifang.accounts.permissions import Actor
from kaifang.catalog import analysis, ranking, suggest
from kaifang.catalog.models import (
    FREQUENCY_LABELS,
    OPEN_TYPE_LABELS,
    Entry,
    EntryFormat,
    EntryStatus,
    OpenType,
    SearchDoc,
    TaxonomyKind,
    TaxonomyTerm,
)
from kaifang.catalog.query import Query, parse
from kaifang.catalog.state import catalog_token, touch_catalog
from kaifang.catalog.vocabulary import Lexicon, load_lexicon
from kaifang.db import is_sqlite

FACETS = ("theme", "provider", "open_type", "format", "update_frequency", "grade")
FACET_LABELS = {
    "theme": "主题分类",
    "provider": "数据提供方",
    "open_type": "开放类型",
    "format": "数据格式",
    "update_frequency": "更新频率",
    "grade": "数据分级",
}


def doc_fields(title: str, keywords: list[str], summary: str, provider: str) -> dict[str, str]:
    """The indexed text of an entry's fields; title and keywords carry their words' pinyin too."""
    return {
        "title": analysis.field_text(title, with_pinyin=True),
        "keywords": analysis.field_text(" ".join(keywords), with_pinyin=True),
        "summary": analysis.field_text(summary),
        "provider": analysis.field_text(provider),
    }


def index_entry(db: Session, entry: Entry) -> None:
    """(Re)index an entry's live fields and format rows; called whenever those fields change."""
    provider = (
        entry.provider.name
        if entry.provider is not None
        else db.get_one(Organisation, entry.provider_id).name
    )
    fields = doc_fields(entry.title, entry.keywords or [], entry.summary or "", provider)
    doc = db.get(SearchDoc, entry.id) or SearchDoc(entry_id=entry.id)
    for name, value in fields.items():
        setattr(doc, name, value)
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
            {"id": entry.id, **fields},
        )
    touch_catalog(db)


# --- the published catalog, held in memory between changes ---------------------------------------


@dataclass(frozen=True)
class Row:
    """What search needs of one published entry to filter, count facets, rank and relate."""

    id: int
    provider_id: int
    values: dict[str, tuple[str, ...]]  # facet → values (several for formats)
    keys: tuple[int, ...]  # the same as numbered (facet, value) pairs, for counting in one go
    published_at: float
    closed: bool
    updated_at: float = 0.0  # last publication, for freshness
    title_len: int = 0
    keywords: frozenset[str] = frozenset()


@dataclass
class Snapshot:
    token: str | None
    rows: list[Row]  # newest first
    public_rows: list[Row]  # without 不予开放
    provider_names: dict[str, str]
    pairs: list[tuple[str, str]]  # number → (facet, value)
    labels: dict[tuple[str, str], str]  # (taxonomy kind, code) → name
    lexicon: Lexicon
    theme_text: dict[str, str] = field(default_factory=dict)  # active theme code → name and description
    unfiltered: dict[object, tuple[list[Row], dict[str, Counter[str]]]] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)  # entry id → index in rows
    cache: dict[str, object] = field(default_factory=dict)  # derived data built on first need

    def __post_init__(self) -> None:
        self.position = {r.id: i for i, r in enumerate(self.rows)}

    def matching(self, ids: Mapping[int, object], actor: Actor) -> list[Row]:
        """The visible rows among `ids`, newest first, without scanning the whole catalog."""
        found = sorted(self.position[i] for i in ids if i in self.position)
        return [row for p in found if sees(actor, row := self.rows[p])]


_snapshots: dict[int, Snapshot] = {}
_lock = threading.Lock()


def _formats(db: Session) -> dict[int, list[str]]:
    formats: dict[int, list[str]] = {}
    for entry_id, fmt in db.execute(select(EntryFormat.entry_id, EntryFormat.format)):
        formats.setdefault(entry_id, []).append(fmt)
    return formats


def _load_rows(db: Session) -> tuple[list[Row], dict[str, str], list[tuple[str, str]]]:
    formats = _formats(db)
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
            Entry.last_published_at,
            Entry.title,
            Entry.keywords,
        )
        .join(Organisation, Organisation.id == Entry.provider_id)
        .where(Entry.status == EntryStatus.published)
    )
    rows, names = [], {}
    numbers: dict[tuple[str, str], int] = {}
    for (
        id_,
        provider_id,
        slug,
        name,
        theme,
        open_type,
        freq,
        grade,
        published,
        updated,
        title,
        kws,
    ) in db.execute(query):
        names[slug] = name
        values = {
            "theme": (theme,),
            "provider": (slug,),
            "open_type": (open_type,),
            "format": tuple(formats.get(id_, ())),
            "update_frequency": (freq,),
            "grade": (grade,),
        }
        stamp = published.timestamp() if published else 0.0
        keys = tuple(numbers.setdefault((f, v), len(numbers)) for f, vs in values.items() for v in vs if v)
        keywords = frozenset(analysis.normalise(k) for k in kws or [])
        fresh = updated.timestamp() if updated else stamp
        closed = open_type == OpenType.closed
        rows.append(Row(id_, provider_id, values, keys, stamp, closed, fresh, len(title), keywords))
    rows.sort(key=lambda r: (-r.published_at, -r.id))  # newest first: filtered lists keep this order
    return rows, names, list(numbers)


def _load_snapshot(db: Session, token: str | None) -> Snapshot:
    rows, names, pairs = _load_rows(db)
    terms = db.execute(
        select(
            TaxonomyTerm.kind,
            TaxonomyTerm.code,
            TaxonomyTerm.name,
            TaxonomyTerm.description,
            TaxonomyTerm.is_active,
        )
    ).all()
    labels = {(kind, code): name for kind, code, name, _d, _a in terms}
    theme_text = {
        code: analysis.normalise(f"{name} {description}")
        for kind, code, name, description, active in terms
        if kind == TaxonomyKind.theme and active
    }
    public = [r for r in rows if not r.closed]
    return Snapshot(token, rows, public, names, pairs, labels, load_lexicon(db), theme_text)


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
    partial: bool = False  # no entry matched every concept; these match some of them
    expanded: bool = False  # no entry matched the person's own words; found through related words
    words: list[str] = field(default_factory=list)  # to mark in the results
    expansions: list[str] = field(default_factory=list)  # the catalog words the vocabulary added
    did_you_mean: list[str] = field(default_factory=list)  # other queries that find entries
    themes: list[FacetValue] = field(default_factory=list)  # themes matching the query

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.page_size))


def sees(actor: Actor, row: Row) -> bool:
    """不予开放 entries only for their provider's staff and the supervisors (Art. 7)."""
    return not row.closed or actor.is_supervisor or actor.is_member(row.provider_id)


def visible_rows(snap: Snapshot, actor: Actor) -> list[Row]:
    if actor.is_supervisor:
        return snap.rows
    if not actor.org_roles:
        return snap.public_rows  # the common case, precomputed
    return [r for r in snap.rows if sees(actor, r)]


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


def browse_counts(snap: Snapshot, actor: Actor) -> tuple[list[Row], dict[str, Counter[str]]]:
    """The whole catalog the actor sees and its facet counts: the same answer until it changes."""
    key = "all" if actor.is_supervisor else tuple(sorted(actor.org_roles))
    if key not in snap.unfiltered:
        snap.unfiltered[key] = _count_facets(snap, visible_rows(snap, actor), {})
    return snap.unfiltered[key]


@dataclass
class Found:
    """The rows a query matched, ranked, and how they were found."""

    rows: list[Row]
    partial: bool = False
    expanded: bool = False


def _found(db: Session, snap: Snapshot, actor: Actor, query: Query, sort: str) -> Found:
    """Entries matching every required concept. When none of them matches the person's own words,
    entries matching some of the concepts follow them (the answer is already a looser one); when
    no entry matches every concept, those matching some are the answer (partial)."""
    matches = ranking.rank(query.concepts, ranking.find(db, query.forms), len(snap.rows))
    visible = snap.matching(matches, actor)
    needed = len(query.required)
    complete = [r for r in visible if matches[r.id].required == needed]
    some = [r for r in visible if matches[r.id].required]  # complete ones included, newest first
    if complete and any(matches[r.id].own == needed for r in complete):
        found = Found(complete)
    elif complete:
        found = Found(some, expanded=True)
    else:
        found = Found(some, partial=bool(some))
    if sort == "relevance":
        found.rows = _ranked(db, found.rows, matches)
    return found


def _ranked(db: Session, rows: list[Row], matches: dict[int, ranking.Match]) -> list[Row]:
    final = ranking.tie_breakers(
        matches, [(r.id, r.title_len, r.updated_at) for r in rows], ranking.use_counts(db), time.time()
    )
    # More required concepts first (only partial answers differ), then the score; sorted is
    # stable, so equal scores stay newest first.
    order = {i: matches[i].required * 100.0 + score for i, score in final.items()}
    return sorted(rows, key=lambda r: -order[r.id])


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
    query = parse(q, snap.lexicon)
    sort = sort if sort == "newest" or query.concepts else "newest"  # the snapshot is newest first
    found = Found(visible_rows(snap, actor))
    if query.concepts:
        found = _found(db, snap, actor, query, sort)
    if query.concepts or filters:
        passing, counts = _count_facets(snap, found.rows, filters)
    else:  # browsing the whole catalog (home page, first catalog page)
        passing, counts = browse_counts(snap, actor)
    page = max(1, page)
    ids = [r.id for r in passing[(page - 1) * page_size : page * page_size]]
    by_id = {
        e.id: e
        for e in db.scalars(select(Entry).where(Entry.id.in_(ids)).options(joinedload(Entry.provider)))
    }
    names = labels or snap.labels
    result = SearchResult(
        query=q,
        count=len(passing),
        page=page,
        page_size=page_size,
        sort=sort,
        entries=[by_id[i] for i in ids if i in by_id],
        facets={
            f: _facet_values(f, counts[f], filters.get(f, []), names, snap.provider_names) for f in FACETS
        },
        filters=filters,
        partial=found.partial,
        expanded=found.expanded,
        words=query.highlights,
        expansions=query.expansions,
    )
    if query.concepts:
        _help(db, snap, actor, query, result, names)
    return result


def _help(
    db: Session,
    snap: Snapshot,
    actor: Actor,
    query: Query,
    result: SearchResult,
    names: dict[tuple[str, str], str],
) -> None:
    """Themes matching the query; and "did you mean" when the person's words found nothing."""
    _rows, counts = browse_counts(snap, actor)
    themes = suggest.matching_themes(query, snap.theme_text, counts["theme"])
    result.themes = [FacetValue(code, names.get(("theme", code), code), n, False) for code, n in themes]
    if result.partial or result.expanded or not result.count:
        result.did_you_mean = suggest.did_you_mean(db, snap, query, result.query)


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
