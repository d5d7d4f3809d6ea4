"""The search vocabulary: the everyday words people type and the catalog's words they mean.

People search for 办护照, 考驾照 or 交社保; catalogs say 出入境证件受理点, 机动车驾驶人考试场地 and
社会保险经办服务网点. The vocabulary maps one to the other. Its default (``vocabulary.txt``, one
group per line, grouped by theme) is loaded into ``search_vocabulary`` on first start; the
regulator and the operator extend and correct it on the admin page ``/admin/vocabulary``, each
change audited. Search compiles the active groups into a `Lexicon` and applies an everyday word's
catalog words as weaker matches than the words the person typed (kaifang.catalog.query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor, require, require_login
from kaifang.audit.service import diff, record
from kaifang.audit.tags import Tag
from kaifang.catalog import analysis
from kaifang.catalog.models import TaxonomyKind, TaxonomyTerm, VocabularyEntry
from kaifang.catalog.state import touch_catalog
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import InvalidInput, NotFound

DEFAULT_FILE = Path(__file__).with_name("vocabulary.txt")
MAX_TERMS = 30
MAX_TERM_LENGTH = 20
MAX_SPAN = 6  # jieba words an everyday phrase may span (带孩子去哪玩)
_SEPARATORS = re.compile(r"[\s,，、;；|/]+")
_SECTION = re.compile(r"^\[([a-z0-9_.-]*)\]$")


# --- the shipped default --------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    terms: tuple[str, ...]
    expansions: tuple[str, ...]
    theme: str


def split_terms(text: str) -> list[str]:
    """Words as typed in a form or the file: separated by spaces, commas or 、, without repeats."""
    return list(dict.fromkeys(t for t in _SEPARATORS.split(text) if t))


def parse(text: str) -> list[Group]:
    """Read the vocabulary file format: ``[theme]`` lines and ``everyday words = catalog words``."""
    groups, theme = [], ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        section = _SECTION.match(line)
        if section:
            theme = section.group(1)
            continue
        left, sep, right = line.partition("=")
        terms, expansions = split_terms(left), split_terms(right)
        if not sep or not terms or not expansions:
            raise ValueError(f"vocabulary line {number}: expected 'everyday words = catalog words'")
        groups.append(Group(tuple(terms), tuple(expansions), theme))
    return groups


@lru_cache(maxsize=1)
def default_groups() -> tuple[Group, ...]:
    """The shipped vocabulary, read once per process."""
    return tuple(parse(DEFAULT_FILE.read_text(encoding="utf-8")))


def ensure_default_vocabulary(db: Session) -> int:
    """Load the shipped vocabulary into an empty table; returns how many groups were added.

    Groups are switched off rather than deleted, so an empty table means a new platform."""
    if db.scalar(select(VocabularyEntry.id).limit(1)) is not None:
        return 0
    rows = [
        {"terms": list(g.terms), "expansions": list(g.expansions), "theme": g.theme, "is_active": True}
        for g in default_groups()
    ]
    db.execute(insert(VocabularyEntry), rows)
    touch_catalog(db)
    return len(rows)


# --- compiled for search --------------------------------------------------------------------------


@dataclass(frozen=True)
class Meaning:
    """What an everyday word means in the catalog."""

    expansions: tuple[str, ...]
    themes: tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    meanings: dict[str, Meaning]  # normalised everyday word → its catalog words and themes
    by_pinyin: dict[str, str]  # full pinyin of an everyday word (shebao) → the word (社保)

    def get(self, word: str) -> Meaning | None:
        return self.meanings.get(word)

    def span_at(self, tokens: list[str], start: int) -> int:
        """How many tokens from `start` form the longest everyday phrase (0 if none)."""
        for n in range(min(MAX_SPAN, len(tokens) - start), 0, -1):
            if "".join(tokens[start : start + n]) in self.meanings:
                return n
        return 0


Rows = tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...]


@lru_cache(maxsize=4)
def compile_lexicon(rows: Rows) -> Lexicon:
    """The active groups merged by everyday word (a word may appear in several groups)."""
    expansions: dict[str, dict[str, None]] = {}
    themes: dict[str, dict[str, None]] = {}
    for terms, words, theme in rows:
        catalog_words = [w for w in (analysis.normalise(x).strip() for x in words) if w]
        for term in terms:
            key = "".join(analysis.normalise(term).split())
            if not key:
                continue
            expansions.setdefault(key, {}).update(dict.fromkeys(w for w in catalog_words if w != key))
            if theme:
                themes.setdefault(key, {})[theme] = None
    meanings = {k: Meaning(tuple(v), tuple(themes.get(k, ()))) for k, v in expansions.items()}
    by_pinyin = {analysis.full_pinyin(k): k for k in meanings if analysis.is_han(k) and len(k) >= 2}
    return Lexicon(meanings, by_pinyin)


def load_lexicon(db: Session) -> Lexicon:
    """The active vocabulary, compiled once per distinct content."""
    rows = db.execute(
        select(VocabularyEntry.terms, VocabularyEntry.expansions, VocabularyEntry.theme)
        .where(VocabularyEntry.is_active.is_(True))
        .order_by(VocabularyEntry.id)
    ).all()
    return compile_lexicon(tuple((tuple(t or ()), tuple(e or ()), theme or "") for t, e, theme in rows))


# --- the admin page's service ---------------------------------------------------------------------


@dataclass
class VocabularyForm:
    """A group as posted: words separated by spaces, commas or 、."""

    terms: str
    expansions: str
    theme: str = ""
    is_active: bool = True


def _supervisor(actor: Actor) -> None:
    require_login(actor)
    require(actor.is_supervisor, "检索词表仅限市互联网信息主管部门和市大数据管理中心维护")


def list_vocabulary(db: Session, actor: Actor, q: str = "", theme: str = "") -> list[VocabularyEntry]:
    """Every group, newest change first; `q` finds a word on either side, `theme` one theme's."""
    _supervisor(actor)
    query = select(VocabularyEntry).order_by(VocabularyEntry.updated_at.desc(), VocabularyEntry.id.desc())
    if theme:
        query = query.where(VocabularyEntry.theme == theme)
    rows = list(db.scalars(query))
    if q:
        wanted = analysis.normalise(q).strip()
        rows = [r for r in rows if any(wanted in analysis.normalise(w) for w in [*r.terms, *r.expansions])]
    return rows


def get_vocabulary_entry(db: Session, actor: Actor, vocabulary_id: int) -> VocabularyEntry:
    _supervisor(actor)
    row = db.get(VocabularyEntry, vocabulary_id) if 0 < vocabulary_id <= MAX_ID else None
    if row is None:
        raise NotFound("未找到该检索词组")
    return row


def _checked(db: Session, form: VocabularyForm) -> dict[str, Any]:
    """The group's fields, or InvalidInput naming each field that is wrong."""
    errors: dict[str, str] = {}
    fields = {"terms": split_terms(form.terms), "expansions": split_terms(form.expansions)}
    labels = {"terms": "日常说法", "expansions": "目录用语"}
    for key, words in fields.items():
        if not words:
            errors[key] = f"请填写{labels[key]}"
        elif len(words) > MAX_TERMS:
            errors[key] = f"{labels[key]}最多 {MAX_TERMS} 个"
        elif any(len(w) > MAX_TERM_LENGTH for w in words):
            errors[key] = f"每个词不超过 {MAX_TERM_LENGTH} 个字"
    themes = set(db.scalars(select(TaxonomyTerm.code).where(TaxonomyTerm.kind == TaxonomyKind.theme)))
    if form.theme and form.theme not in themes:
        errors["theme"] = "请选择有效的主题分类"
    if errors:
        raise InvalidInput("检索词组信息有误", fields=errors)
    return {**fields, "theme": form.theme, "is_active": form.is_active}


def save_vocabulary(
    db: Session, actor: Actor, form: VocabularyForm, vocabulary_id: int | None = None
) -> VocabularyEntry:
    """Add a group, or change the group `vocabulary_id`; audited, and every search sees it at once."""
    _supervisor(actor)
    row = get_vocabulary_entry(db, actor, vocabulary_id) if vocabulary_id else VocabularyEntry()
    before = {k: getattr(row, k) for k in ("terms", "expansions", "theme", "is_active")} if row.id else {}
    after = _checked(db, form)
    if row.id and before == after:
        return row
    for key, value in after.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    db.add(row)
    db.flush()
    tag = Tag.catalog_vocabulary_updated if before else Tag.catalog_vocabulary_created
    record(db, actor, tag, "vocabulary", row.id, summary=diff(before, after))
    touch_catalog(db)
    return row


def vocabulary_counts(db: Session, actor: Actor) -> tuple[int, int]:
    """(active groups, all groups), for the page's heading."""
    _supervisor(actor)
    rows = db.execute(select(VocabularyEntry.is_active)).scalars().all()
    return sum(1 for active in rows if active), len(rows)
