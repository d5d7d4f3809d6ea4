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
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jieba
from sqlalchemy import Boolean, ColumnElement, Float, Integer, Select, and_, column, func, or_, select, text
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import Organisation
from kaifang.accounts.permissions import Actor
from kaifang.catalog.models import (
    FREQUENCY_LABELS,
    OPEN_TYPE_LABELS,
    Entry,
    EntryFormat,
    EntryStatus,
    OpenType,
    SearchDoc,
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
    ["的", "了", "和", "与", "及", "或", "在", "是", "有", "吗", "呢", "啊"]
    + ["吧", "之", "等", "对", "从", "把", "被", "就", "也", "都", "而"]
)
_WORD = re.compile(r"\w", re.UNICODE)
_MAX_QUERY_WORDS = 12
_MATCH_COLUMNS = (column("entry_id", Integer), column("title_hit", Boolean), column("score", Float))


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


def _matches(db: Session, words: Sequence[str], joiner: str) -> Any:
    """A subquery of (entry_id, title_hit, score) for the words; lower score ranks first."""
    if is_sqlite(db):
        expr = _fts5_query(words, joiner)
        return (
            text(
                "SELECT rowid AS entry_id, "
                "(rowid IN (SELECT rowid FROM search_fts WHERE search_fts MATCH :title_q)) AS title_hit, "
                "bm25(search_fts, 10.0, 5.0, 1.0, 3.0) AS score "
                "FROM search_fts WHERE search_fts MATCH :q"
            )
            .bindparams(q=expr, title_q="title : (" + expr + ")")
            .columns(*_MATCH_COLUMNS)
            .subquery("m")
        )
    expr = _tsquery(words, joiner)
    return (
        text(
            "SELECT entry_id, (to_tsvector('simple', title) @@ to_tsquery('simple', :q)) AS title_hit, "
            "-ts_rank(tsv, to_tsquery('simple', :q), 1) AS score "
            "FROM search_docs WHERE tsv @@ to_tsquery('simple', :q)"
        )
        .bindparams(q=expr)
        .columns(*_MATCH_COLUMNS)
        .subquery("m")
    )


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


def _visible(actor: Actor) -> ColumnElement[bool]:
    """The published catalog; 不予开放 entries only for their provider's staff and the supervisors."""
    published = Entry.status == EntryStatus.published
    if actor.is_supervisor:
        return published
    open_ = Entry.open_type != OpenType.closed
    own = list(actor.org_roles)
    return and_(published, or_(open_, Entry.provider_id.in_(own)) if own else open_)


def _facet_condition(facet: str, values: list[str]) -> ColumnElement[bool]:
    if facet == "provider":
        return Entry.provider_id.in_(select(Organisation.id).where(Organisation.slug.in_(values)))
    if facet == "format":
        return Entry.id.in_(select(EntryFormat.entry_id).where(EntryFormat.format.in_(values)))
    return getattr(Entry, facet).in_(values)


def _facet_counts(db: Session, base: Select[Any], facet: str) -> dict[str, int]:
    ids = base.with_only_columns(Entry.id).subquery()
    if facet == "provider":
        q = (
            select(Organisation.slug, func.count())
            .select_from(Entry)
            .join(ids, ids.c.id == Entry.id)
            .join(Organisation, Organisation.id == Entry.provider_id)
            .group_by(Organisation.slug)
        )
    elif facet == "format":
        q = (
            select(EntryFormat.format, func.count())
            .join(ids, ids.c.id == EntryFormat.entry_id)
            .group_by(EntryFormat.format)
        )
    else:
        col = getattr(Entry, facet)
        q = select(col, func.count()).select_from(Entry).join(ids, ids.c.id == Entry.id).group_by(col)
    return {str(value): count for value, count in db.execute(q) if value}


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
    words = query_words(q)
    match = None
    partial = False
    if words:
        match = _matches(db, words, "AND")
        if len(words) > 1 and not db.scalar(select(func.count()).select_from(match)):
            match, partial = _matches(db, words, "OR"), True

    def base(skip: str | None = None) -> Select[Any]:
        query = select(Entry).where(_visible(actor))
        if match is not None:
            query = query.join(match, match.c.entry_id == Entry.id)
        for facet, values in filters.items():
            if facet != skip:
                query = query.where(_facet_condition(facet, values))
        return query

    full = base()
    count = db.scalar(full.with_only_columns(func.count()).order_by(None)) or 0
    if sort == "newest" or match is None:
        order: list[Any] = [Entry.published_at.desc(), Entry.id.desc()]
        sort = "newest" if sort == "newest" or match is None else sort
    else:
        assert match is not None
        order = [match.c.title_hit.desc(), match.c.score.asc(), Entry.published_at.desc(), Entry.id.desc()]
    page = max(1, page)
    rows = db.scalars(
        full.options(joinedload(Entry.provider))
        .order_by(*order)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    facets = {
        f: _facet_values(db, f, _facet_counts(db, base(skip=f), f), filters.get(f, []), labels or {})
        for f in FACETS
    }
    return SearchResult(
        query=q,
        count=count,
        page=page,
        page_size=page_size,
        sort=sort,
        entries=list(rows.unique()),
        facets=facets,
        filters=filters,
        partial=partial,
        words=words,
    )


def _facet_values(
    db: Session, facet: str, counts: dict[str, int], selected: list[str], labels: dict[tuple[str, str], str]
) -> list[FacetValue]:
    if facet == "provider":
        rows = db.execute(
            select(Organisation.slug, Organisation.name).where(Organisation.slug.in_(list(counts) + selected))
        )
        names = {slug: name for slug, name in rows}
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
