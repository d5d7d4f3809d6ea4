"""audit journal files: which journals of data-access records have been written into the log

Why: the data API's access records are appended to a journal file before the answer leaves (so a
killed process loses none) and written into `audit_records` in batches by the audit writer. The
name of each journal file goes into this table in the same transaction as its records, so a file
found again after a crash between that commit and the file's deletion is not written twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_journal_files",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_journal_files")),
    )


def downgrade() -> None:
    op.drop_table("audit_journal_files")
