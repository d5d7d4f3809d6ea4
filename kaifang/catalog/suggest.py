"""No dead ends: themes that match a query, and "did you mean" for words the catalog does not use.

Chinese typing errors are mostly homophones (图书管 for 图书馆: the input method offered the wrong
characters for the right pinyin) or one wrong character; pinyin typed by hand is misspelt
(tushugaun). Suggestions come from the words of the public catalog's titles and keywords and the
vocabulary's everyday words, so each one finds something. Words of 不予开放 entries are left out:
a suggestion must not reveal what the public cannot see.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.catalog import analysis
from kaifang.catalog.analysis import FILLERS, WEAK
from kaifang.catalog.models import SearchDoc
from kaifang.catalog.query import Query

if TYPE_CHECKING:
    from kaifang.catalog.search import Snapshot

MAX_THEMES = 4
MAX_SUGGESTIONS = 3
PINYIN_CUTOFF = 0.8
_WILD = "\x00"


@dataclass
class Dictionary:
    """The words people could mean, with how many public entries use each."""

    frequency: Counter[str] = field(default_factory=Counter)
    by_pinyin: dict[str, list[str]] = field(default_factory=dict)  # tushuguan → [图书馆]
    by_pattern: dict[str, list[str]] = field(default_factory=dict)  # 图书_ / 图_馆 / _书馆 → [图书馆]
    by_shorter: dict[str, list[str]] = field(default_factory=dict)  # 图书 / 图馆 / 书馆 → [图书馆]

    def add(self, word: str, n: int) -> None:
        self.frequency[word] += n

    def build(self) -> Dictionary:
        for word in sorted(self.frequency, key=lambda w: (-self.frequency[w], w)):
            self.by_pinyin.setdefault(analysis.full_pinyin(word), []).append(word)
            if len(word) >= 3:
                for i in range(len(word)):
                    self.by_pattern.setdefault(word[:i] + _WILD + word[i + 1 :], []).append(word)
                    self.by_shorter.setdefault(word[:i] + word[i + 1 :], []).append(word)
        return self


def _dictionary(db: Session, snap: Snapshot) -> Dictionary:
    """Built on the first query that needs it, then kept with the snapshot it came from."""
    cached = snap.cache.get("dictionary")
    if isinstance(cached, Dictionary):
        return cached
    public = {r.id for r in snap.public_rows}
    words = Dictionary()
    for entry_id, title, keywords in db.execute(
        select(SearchDoc.entry_id, SearchDoc.title, SearchDoc.keywords)
    ):
        if entry_id in public:
            for word in set(f"{title} {keywords}".split()):
                if len(word) >= 2 and analysis.is_han(word):
                    words.add(word, 1)
    for word, meaning in snap.lexicon.meanings.items():  # everyday words whose catalog words are used
        if len(word) >= 2 and analysis.is_han(word) and _used(meaning.expansions, words.frequency):
            words.add(word, 1)
    snap.cache["dictionary"] = words.build()
    return words


def _used(expansions: tuple[str, ...], frequency: Counter[str]) -> bool:
    return any(all(t in frequency for t in analysis.words(e)) for e in expansions)


def _alternatives(word: str, words: Dictionary) -> list[str]:
    """Known words the person may have meant, most used first; none if the word is known."""
    if word in words.frequency or len(word) < 2:
        return []
    if analysis.is_latin(word):
        keys = difflib.get_close_matches(word, list(words.by_pinyin), n=MAX_SUGGESTIONS, cutoff=PINYIN_CUTOFF)
        return [words.by_pinyin[k][0] for k in keys if k != word]
    if not analysis.is_han(word):
        return []
    found = list(words.by_pinyin.get(analysis.full_pinyin(word), []))
    if len(word) >= 3:
        for i in range(len(word)):
            found += words.by_pattern.get(word[:i] + _WILD + word[i + 1 :], [])
            shorter = word[:i] + word[i + 1 :]
            found += [shorter] if shorter in words.frequency else []
    found += words.by_shorter.get(word, [])
    ranked = sorted(dict.fromkeys(w for w in found if w != word), key=lambda w: -words.frequency[w])
    return ranked[:MAX_SUGGESTIONS]


def did_you_mean(db: Session, snap: Snapshot, query: Query, q: str) -> list[str]:
    """Queries with the first unknown word replaced by the words it most likely stands for."""
    words = _dictionary(db, snap)
    texts = [c.text for c in query.concepts if c.required]
    for i, text in enumerate(texts):
        options = _alternatives(text, words)
        if options:
            suggestions = [" ".join([*texts[:i], option, *texts[i + 1 :]]) for option in options]
            return [s for s in dict.fromkeys(suggestions) if s != analysis.normalise(q)]
    return []


def matching_themes(query: Query, theme_text: dict[str, str], counts: Counter[str]) -> list[tuple[str, int]]:
    """Themes the vocabulary gives for the query's words, then themes whose name or description
    uses them; only themes with entries the person can see, at most four."""
    found = dict.fromkeys(query.themes)
    words = [w for w in query.highlights if len(w) >= 2 and w not in WEAK and w not in FILLERS]
    by_count = sorted(theme_text, key=lambda code: -counts.get(code, 0))
    found.update(dict.fromkeys(code for code in by_count if any(w in theme_text[code] for w in words)))
    return [(code, counts[code]) for code in found if counts.get(code)][:MAX_THEMES]
