"""desensitization rules, staging uploads and pre-publication reviews

Why: personal data must not reach a published version by accident (Art. 7, 16, 25, 26). A
resource keeps the rules that mask each column, reapplied to every new version; each version is
published only after a recorded 保密审查 and 安全风险评估 under exactly the rules it was reviewed
with. The unmasked data of an unpublished version lives under its own `staging/` key (no
schema change needed for that).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desensitize_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=64), nullable=False),
        sa.Column("op", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("quasi", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_desensitize_rules_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_desensitize_rules_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desensitize_rules")),
        sa.UniqueConstraint("resource_id", "column", name="uq_desensitize_rules_column"),
    )
    with op.batch_alter_table("desensitize_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desensitize_rules_resource_id"), ["resource_id"], unique=False)
    op.create_table(
        "desensitize_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("confidentiality", sa.String(length=10), nullable=False),
        sa.Column("risk_assessment", sa.String(length=10), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("override_justification", sa.Text(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("rules_sha256", sa.String(length=64), nullable=False),
        sa.Column("risk_report", sa.JSON(), nullable=False),
        sa.Column("created_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_desensitize_reviews_reviewer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["resource_versions.id"],
            name=op.f("fk_desensitize_reviews_version_id_resource_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desensitize_reviews")),
    )
    with op.batch_alter_table("desensitize_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desensitize_reviews_version_id"), ["version_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("desensitize_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desensitize_reviews_version_id"))
    op.drop_table("desensitize_reviews")
    with op.batch_alter_table("desensitize_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desensitize_rules_resource_id"))
    op.drop_table("desensitize_rules")
