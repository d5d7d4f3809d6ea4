"""The catalog's change token (one row of ``catalog_state``).

Search keeps the published catalog, its vocabulary and its statistics in memory in every app
process; each search reads this token (one indexed row) and reloads when it changed. Every change
to an entry, a provider's name, a taxonomy or the vocabulary calls `touch_catalog`.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kaifang.catalog.models import CatalogState


def catalog_token(db: Session) -> str | None:
    return db.scalar(select(CatalogState.token).where(CatalogState.id == 1))


def touch_catalog(db: Session) -> None:
    """Mark the published catalog as changed so every process reloads its snapshot."""
    token = secrets.token_hex(8)
    if not db.execute(update(CatalogState).where(CatalogState.id == 1).values(token=token)).rowcount:  # type: ignore[attr-defined]
        db.add(CatalogState(id=1, token=token))
        db.flush()
