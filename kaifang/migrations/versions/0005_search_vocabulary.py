"""search vocabulary, and the catalog re-indexed with normalisation and pinyin

Why: issue 7 ("search that understands how people ask"). People search with everyday words (办护照,
交社保); the vocabulary mapping them to the catalog's words is kept in a table so the regulator and
the operator can extend it (it is filled from kaifang/catalog/vocabulary.txt on start-up). The
index now holds simplified, case-folded text and the pinyin of title and keyword words, so every
indexed entry is rewritten with kaifang.catalog.search.doc_fields.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_vocabulary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("expansions", sa.JSON(), nullable=False),
        sa.Column("theme", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_vocabulary")),
    )
    with op.batch_alter_table("search_vocabulary", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_vocabulary_theme"), ["theme"], unique=False)
    _reindex()


def _reindex() -> None:
    """Rewrite every search document the way index_entry now writes it."""
    from kaifang.catalog.search import doc_fields

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT e.id, e.title, e.keywords, e.summary, o.name FROM entries e "
            "JOIN organisations o ON o.id = e.provider_id JOIN search_docs d ON d.entry_id = e.id"
        )
    ).all()
    docs = []
    for entry_id, title, keywords, summary, provider in rows:
        words = json.loads(keywords) if isinstance(keywords, str) else keywords
        docs.append({"id": entry_id, **doc_fields(title, words or [], summary or "", provider)})
    if docs:
        bind.execute(
            sa.text(
                "UPDATE search_docs SET title = :title, keywords = :keywords, summary = :summary, "
                "provider = :provider WHERE entry_id = :id"
            ),
            docs,
        )
    if bind.dialect.name == "sqlite":
        bind.execute(sa.text("DELETE FROM search_fts"))
        bind.execute(
            sa.text(
                "INSERT INTO search_fts(rowid, title, keywords, summary, provider) "
                "SELECT entry_id, title, keywords, summary, provider FROM search_docs"
            )
        )
    bind.execute(sa.text("UPDATE catalog_state SET token = 'reindexed-0005' WHERE id = 1"))


def downgrade() -> None:
    with op.batch_alter_table("search_vocabulary", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_vocabulary_theme"))
    op.drop_table("search_vocabulary")
