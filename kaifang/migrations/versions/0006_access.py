"""conditional access: applications, agreements, grants, holiday table

Why: 有条件开放 data is released only under a grant from an approved application and a signed
usage agreement (Art. 10, 28); the two-working-day deadline is counted with a holiday table the
operator can edit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:06:10.863396
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holiday_overrides")),
        sa.UniqueConstraint("day", name=op.f("uq_holiday_overrides_day")),
    )
    op.create_table(
        "access_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("scenario", sa.Text(), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("security_measures", sa.Text(), nullable=False),
        sa.Column("resource_ids", sa.JSON(), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("created_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("return_note", sa.Text(), nullable=False),
        sa.Column("accepted_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("due_estimated", sa.Boolean(), nullable=False),
        sa.Column("decided_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=False),
        sa.Column("refusal_basis", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["entries.id"],
            name=op.f("fk_access_applications_entry_id_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisations.id"],
            name=op.f("fk_access_applications_provider_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_access_applications_reviewer_id_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_applications_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_applications")),
    )
    with op.batch_alter_table("access_applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_applications_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(
            "ix_access_applications_provider_status", ["provider_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_access_applications_user_id"), ["user_id"], unique=False)

    op.create_table(
        "access_agreements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_signed_by", sa.Integer(), nullable=True),
        sa.Column("user_signed_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("provider_signed_by", sa.Integer(), nullable=True),
        sa.Column("provider_signed_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_signed_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["access_applications.id"],
            name=op.f("fk_access_agreements_application_id_access_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_signed_by"], ["users.id"], name=op.f("fk_access_agreements_provider_signed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_signed_by"], ["users.id"], name=op.f("fk_access_agreements_user_signed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_agreements")),
        sa.UniqueConstraint("application_id", name=op.f("uq_access_agreements_application_id")),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_at", kaifang.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", kaifang.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["access_agreements.id"],
            name=op.f("fk_access_grants_agreement_id_access_agreements"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["access_applications.id"],
            name=op.f("fk_access_grants_application_id_access_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_access_grants_entry_id_entries"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["revoked_by"], ["users.id"], name=op.f("fk_access_grants_revoked_by_users")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
        sa.UniqueConstraint("application_id", name=op.f("uq_access_grants_application_id")),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index("ix_access_grants_user_entry", ["user_id", "entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_access_grants_user_entry")
        batch_op.drop_index(batch_op.f("ix_access_grants_entry_id"))

    op.drop_table("access_grants")
    op.drop_table("access_agreements")
    with op.batch_alter_table("access_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_applications_user_id"))
        batch_op.drop_index("ix_access_applications_provider_status")
        batch_op.drop_index(batch_op.f("ix_access_applications_entry_id"))

    op.drop_table("access_applications")
    op.drop_table("holiday_overrides")
