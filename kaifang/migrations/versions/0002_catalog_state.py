"""catalog_state: a token that changes with every catalog change

Why: search keeps the published catalog in memory per process; the token tells each process
(with one indexed read) when that snapshot is stale.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_state")),
    )
    op.execute("INSERT INTO catalog_state (id, token) VALUES (1, 'initial')")


def downgrade() -> None:
    op.drop_table("catalog_state")
