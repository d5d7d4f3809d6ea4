"""What a query asks for: its concepts, and for each the forms that match it and how much each counts.

A query is normalised and segmented (kaifang.catalog.analysis). Everyday phrases of the vocabulary
are recognised first, even across words (办+护照, 带+孩子+去+哪+玩); the remaining words become one
concept each, question words and fillers dropped. A concept matches an entry through one of its
forms, each a set of index terms that must all occur:

- the person's own word (weight 1.0), its parts (0.85: 公交车辆 → 公交 + 车辆), or for a Latin or
  one-character word any indexed word it begins (0.6: pm → pm10);
- the Chinese word a pinyin spelling stands for in the vocabulary (0.9: shebao → 社保) — the
  catalog's own pinyin (tushuguan, tsg) is indexed and matches as the person's own word;
- the catalog words the vocabulary gives for it (0.5 for the first, a little less for each next,
  down to 0.35: 办护照 → 出入境, 证件受理 …).

Weak words (办, 数据, 明天 …) form optional concepts: they add to the score but decide nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaifang.catalog import analysis
from kaifang.catalog.analysis import FILLERS, WEAK
from kaifang.catalog.vocabulary import Lexicon, Meaning

OWN = 1.0
OWN_PARTS = 0.85
PINYIN = 0.9
PREFIX = 0.6
EXPANSION = 0.5
EXPANSION_STEP = 0.03
EXPANSION_FLOOR = 0.35
MAX_TOKENS = 24
MAX_CONCEPTS = 12
MAX_EXPANSIONS = 16  # catalog words per concept


@dataclass(frozen=True)
class Form:
    """Index terms that must all occur in an entry; with `prefix`, the last may begin a term."""

    terms: tuple[str, ...]
    prefix: bool = False

    @property
    def length(self) -> int:
        return sum(len(t) for t in self.terms)


@dataclass
class Concept:
    text: str  # what the person typed for it (normalised)
    required: bool
    forms: dict[Form, float] = field(default_factory=dict)  # form → weight
    own: set[Form] = field(default_factory=set)  # the forms that are the person's own words
    expansions: list[str] = field(default_factory=list)  # catalog words from the vocabulary
    themes: list[str] = field(default_factory=list)  # theme codes from the vocabulary
    highlights: list[str] = field(default_factory=list)  # words to mark in the results

    def add(self, terms: list[str], weight: float, *, own: bool, prefix: bool = False) -> None:
        terms = [t for t in terms if t not in FILLERS]
        if not terms:
            return
        form = Form(tuple(terms), prefix)
        if weight > self.forms.get(form, 0.0):
            self.forms[form] = weight
        if own:
            self.own.add(form)


@dataclass
class Query:
    concepts: list[Concept]

    @property
    def required(self) -> list[Concept]:
        return [c for c in self.concepts if c.required]

    @property
    def forms(self) -> list[Form]:
        return list(dict.fromkeys(f for c in self.concepts for f in c.forms))

    @property
    def highlights(self) -> list[str]:
        return list(dict.fromkeys(w for c in self.concepts for w in c.highlights))

    @property
    def expansions(self) -> list[str]:
        return list(dict.fromkeys(w for c in self.concepts for w in c.expansions))

    @property
    def themes(self) -> list[str]:
        return list(dict.fromkeys(t for c in self.concepts for t in c.themes))


def parse(q: str, lexicon: Lexicon) -> Query:
    """The concepts of a query; none when it holds only fillers (then it filters nothing)."""
    tokens = analysis.words(q)[:MAX_TOKENS]
    concepts: list[Concept] = []
    i = 0
    while i < len(tokens) and len(concepts) < MAX_CONCEPTS:
        n = lexicon.span_at(tokens, i) or 1
        span, i = tokens[i : i + n], i + n
        if n == 1 and span[0] in FILLERS:
            continue
        concepts.append(_concept(span, lexicon))
    if not any(c.required for c in concepts):  # 数据, 办理: weak words alone are what is wanted
        for c in concepts:
            c.required = True
    return Query(concepts)


def _concept(span: list[str], lexicon: Lexicon) -> Concept:
    text = "".join(span)
    content = [t for t in span if t not in FILLERS and t not in WEAK]
    meanings = _meanings(text, span, lexicon)
    concept = Concept(text, required=bool(content) or lexicon.get(text) is not None)
    concept.add([text], OWN, own=True)
    concept.highlights += [text, *content]
    if len(span) > 1:
        concept.add(content, OWN, own=True)
    else:
        parts = [s for s in analysis.sub_words(text) if s not in FILLERS and s not in WEAK]
        if len(parts) > 1:
            concept.add(parts, OWN_PARTS, own=True)
        if concept.required and (len(text) == 1 or text.isascii()):
            concept.add([text], PREFIX, own=True, prefix=True)
    hanzi = lexicon.by_pinyin.get(text) if analysis.is_latin(text) else None
    if hanzi:
        concept.add(analysis.words(hanzi), PINYIN, own=True)
        concept.highlights.append(hanzi)
        meanings += [m for m in [lexicon.get(hanzi)] if m]
    _expand(concept, meanings)
    return concept


def _meanings(text: str, span: list[str], lexicon: Lexicon) -> list[Meaning]:
    """The vocabulary's meanings of the concept, or else of the words inside it (考驾照 → 驾照)."""
    found = lexicon.get(text)
    if found:
        return [found]
    inside = analysis.sub_words(text) if len(span) == 1 else span
    return [m for m in (lexicon.get(w) for w in inside) if m]


def _expand(concept: Concept, meanings: list[Meaning]) -> None:
    """Add the catalog words; the vocabulary lists the closest first, so later ones weigh less."""
    words = list(dict.fromkeys(w for m in meanings for w in m.expansions))[:MAX_EXPANSIONS]
    for i, word in enumerate(words):
        weight = max(EXPANSION - EXPANSION_STEP * i, EXPANSION_FLOOR)
        concept.add(analysis.words(word), weight, own=False)
    concept.expansions += words
    concept.highlights += words
    concept.themes += list(dict.fromkeys(t for m in meanings for t in m.themes))
