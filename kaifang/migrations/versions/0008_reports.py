"""use reports, compliance checks, suspensions

Why: a grantee reports on the use of 有条件开放 data at the points the agreement sets (Art. 22), the
provider records its compliance checks (Art. 27), and a user who breaks the agreement is suspended
once the provider and the operator have both confirmed it (Art. 29).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaifang.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def _grant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["grant_id"],
        ["access_grants.id"],
        name=op.f(f"fk_{table}_grant_id_access_grants"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    when = kaifang.db.UTCDateTime(timezone=True)
    op.create_table(
        "access_use_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("point", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("work", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("links", sa.Text(), nullable=False),
        sa.Column("attachment_key", sa.String(length=200), nullable=False),
        sa.Column("attachment_name", sa.String(length=200), nullable=False),
        sa.Column("attachment_size", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.Integer(), nullable=False),
        sa.Column("submitted_at", when, nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", when, nullable=True),
        sa.Column("review_note", sa.Text(), nullable=False),
        _grant_fk("access_use_reports"),
        _user_fk("access_use_reports", "submitted_by"),
        _user_fk("access_use_reports", "reviewed_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_use_reports")),
        sa.UniqueConstraint("grant_id", "point", name="uq_access_use_reports_grant_point"),
    )
    op.create_table(
        "access_compliance_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.String(length=20), nullable=False),
        sa.Column("follow_up", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        _grant_fk("access_compliance_checks"),
        _user_fk("access_compliance_checks", "recorded_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_compliance_checks")),
    )
    with op.batch_alter_table("access_compliance_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_compliance_checks_grant_id"), ["grant_id"], unique=False)
    op.create_table(
        "access_suspensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=False),
        sa.Column("proposed_at", when, nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", when, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("reinstate_reason", sa.Text(), nullable=False),
        sa.Column("reinstate_proposed_by", sa.Integer(), nullable=True),
        sa.Column("reinstate_proposed_at", when, nullable=True),
        sa.Column("reinstate_note", sa.Text(), nullable=False),
        sa.Column("lifted_by", sa.Integer(), nullable=True),
        sa.Column("lifted_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_suspensions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisations.id"],
            name=op.f("fk_access_suspensions_provider_id_organisations"),
        ),
        _user_fk("access_suspensions", "proposed_by"),
        _user_fk("access_suspensions", "decided_by"),
        _user_fk("access_suspensions", "reinstate_proposed_by"),
        _user_fk("access_suspensions", "lifted_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_suspensions")),
    )
    with op.batch_alter_table("access_suspensions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_suspensions_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index("ix_access_suspensions_user_status", ["user_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_suspensions", schema=None) as batch_op:
        batch_op.drop_index("ix_access_suspensions_user_status")
        batch_op.drop_index(batch_op.f("ix_access_suspensions_provider_id"))
    op.drop_table("access_suspensions")
    with op.batch_alter_table("access_compliance_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_compliance_checks_grant_id"))
    op.drop_table("access_compliance_checks")
    op.drop_table("access_use_reports")
