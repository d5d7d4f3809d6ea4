"""Related entries on an entry's page: the same theme, shared keywords, the same provider.

Drawn from the in-memory snapshot of the published catalog (kaifang.catalog.search), so only
published entries the visitor may see are offered; 不予开放 entries only to those who see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.permissions import Actor
from kaifang.catalog import analysis, search
from kaifang.catalog.models import Entry

SHARED_KEYWORD = 3.0
SAME_THEME = 2.0
SAME_PROVIDER = 1.0
LIMIT = 6


@dataclass
class Related:
    entry: Entry
    shared: list[str]  # keywords both entries carry (normalised)
    same_theme: bool
    same_provider: bool


def _index(snap: search.Snapshot) -> dict[str, list[search.Row]]:
    """Rows by theme, provider and keyword, built once per snapshot."""
    cached = snap.cache.get("related")
    if isinstance(cached, dict):
        return cached
    index: dict[str, list[search.Row]] = {}
    for row in snap.rows:
        keys = [f"t:{row.values['theme'][0]}", f"p:{row.provider_id}", *(f"k:{k}" for k in row.keywords)]
        for key in keys:
            index.setdefault(key, []).append(row)
    snap.cache["related"] = index
    return index


def related_entries(db: Session, actor: Actor, entry: Entry, limit: int = LIMIT) -> list[Related]:
    """Entries sharing keywords, theme or provider with `entry`, most in common first, then newest."""
    snap = search.snapshot(db)
    index = _index(snap)
    keywords = frozenset(analysis.normalise(k) for k in entry.keywords or [])
    keys = [f"p:{entry.provider_id}", *(f"k:{k}" for k in keywords)]
    if entry.theme:
        keys.append(f"t:{entry.theme}")
    candidates = {row.id: row for key in keys for row in index.get(key, []) if row.id != entry.id}
    scored: list[tuple[float, int, search.Row]] = []
    for row in candidates.values():
        if not search.sees(actor, row):
            continue
        score = (
            SHARED_KEYWORD * len(keywords & row.keywords)
            + SAME_THEME * (bool(entry.theme) and row.values["theme"][0] == entry.theme)
            + SAME_PROVIDER * (row.provider_id == entry.provider_id)
        )
        scored.append((-score, snap.position[row.id], row))
    best = [row for _s, _p, row in sorted(scored, key=lambda t: (t[0], t[1]))[:limit]]
    found = {
        e.id: e
        for e in db.scalars(
            select(Entry).where(Entry.id.in_([r.id for r in best])).options(joinedload(Entry.provider))
        )
    }
    return [
        Related(
            found[row.id],
            sorted(keywords & row.keywords),
            bool(entry.theme) and row.values["theme"][0] == entry.theme,
            row.provider_id == entry.provider_id,
        )
        for row in best
        if row.id in found
    ]
