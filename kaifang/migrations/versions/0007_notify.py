"""notifications, renewal link, one open application per user and entry

Why: every step of 有条件开放 tells the other side in an in-platform inbox (and by e-mail); a
grantee's renewal is a new application that names the grant it renews; and the rule that a user
holds at most one open application per entry is kept by the database, not only by the service.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('submitted', 'returned', 'accepted', 'approved')")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=False),
        sa.Column("created_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_user_read", ["user_id", "read_at"], unique=False)

    with op.batch_alter_table("access_applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renews_grant_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_access_applications_renews_grant_id_access_grants"),
            "access_grants",
            ["renews_grant_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_access_applications_one_open",
            ["user_id", "entry_id"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table("access_applications", schema=None) as batch_op:
        batch_op.drop_index("ix_access_applications_one_open")
        batch_op.drop_constraint(
            batch_op.f("fk_access_applications_renews_grant_id_access_grants"), type_="foreignkey"
        )
        batch_op.drop_column("renews_grant_id")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_user_read")

    op.drop_table("notifications")
