"""Plain BM25 over jieba-segmented text: Kaifang's catalog search before issue 7, kept as the
baseline of ``relevance_bench.py``.

The same SQLite FTS5 table and weights, the same normalisation (NFKC, case folding) and stop words,
every query word required (as itself, all its sub-words, or a Latin or one-character prefix), a
fallback to any word when nothing matches all, title matches first and then BM25 with fields
weighted title 10 > keywords 5 > provider 3 > summary 1. No traditional characters, pinyin,
question words, vocabulary, use or freshness.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from typing import Any

import jieba

jieba.setLogLevel(logging.WARNING)

STOPWORDS = frozenset(
    {
        *("的", "了", "和", "与", "及", "或", "在", "是", "有", "吗", "呢", "啊"),
        *("吧", "之", "等", "对", "从", "把", "被", "就", "也", "都", "而"),
    }
)
_WORD = re.compile(r"\w", re.UNICODE)
_MAX_QUERY_WORDS = 12


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _tokens(text: str) -> list[str]:
    return [t for t in (w.strip() for w in jieba.cut_for_search(_normalise(text))) if t and _WORD.search(t)]


def _query_words(q: str) -> list[str]:
    words = [w.strip() for w in jieba.cut(_normalise(q))]
    return [w for w in words if w and _WORD.search(w) and w not in STOPWORDS][:_MAX_QUERY_WORDS]


def _alternatives(word: str) -> list[list[str]]:
    subs = [t for t in jieba.cut_for_search(word) if t != word and _WORD.search(t)]
    alts = [[word]]
    if len(subs) > 1:
        alts.append(subs)
    return alts


def _fts5_query(words: Sequence[str], joiner: str) -> str:
    def phrase(t: str) -> str:
        return '"' + t.replace('"', '""') + '"'

    groups = []
    for w in words:
        alts = [" AND ".join(phrase(t) for t in alt) for alt in _alternatives(w)]
        if len(w) == 1 or w.isascii():
            alts.append(phrase(w) + "*")
        groups.append("(" + " OR ".join(f"({a})" for a in alts) + ")")
    return f" {joiner} ".join(groups)


class PlainBM25:
    """The public catalog (不予开放 entries left out) in an in-memory FTS5 table."""

    def __init__(self, entries: list[dict[str, Any]], provider_names: dict[str, str]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "title, keywords, summary, provider, tokenize = 'unicode61 remove_diacritics 0')"
        )
        self.keys: dict[int, str] = {}
        self.age: dict[int, int] = {}
        for rowid, entry in enumerate(entries, 1):
            if entry.get("open_type") == "closed":
                continue
            self.keys[rowid] = entry["key"]
            self.age[rowid] = entry["age_days"]
            self.db.execute(
                "INSERT INTO search_fts(rowid, title, keywords, summary, provider) VALUES (?, ?, ?, ?, ?)",
                (
                    rowid,
                    " ".join(_tokens(entry["title"])),
                    " ".join(_tokens(" ".join(entry["keywords"]))),
                    " ".join(_tokens(entry["summary"])),
                    " ".join(_tokens(provider_names[entry["provider"]])),
                ),
            )

    def _matches(self, words: list[str], joiner: str) -> dict[int, tuple[bool, float]]:
        expr = _fts5_query(words, joiner)
        rows = self.db.execute(
            "SELECT rowid, bm25(search_fts, 10.0, 5.0, 1.0, 3.0) FROM search_fts WHERE search_fts MATCH ?",
            (expr,),
        ).fetchall()
        in_title = {
            r[0]
            for r in self.db.execute(
                "SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (f"title : ({expr})",)
            )
        }
        return {rowid: (rowid in in_title, score) for rowid, score in rows}

    def search(self, q: str, limit: int = 10) -> list[str]:
        """Entry keys, best first; ties newest first as in the old search."""
        words = _query_words(q)
        if not words:
            return []
        match = self._matches(words, "AND")
        if not match and len(words) > 1:
            match = self._matches(words, "OR")
        ranked = sorted(match, key=lambda r: (not match[r][0], match[r][1], self.age[r]))
        return [self.keys[r] for r in ranked[:limit]]
