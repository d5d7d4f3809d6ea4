"""auth stamp: a counter the database moves whenever a permission-deciding row changes

Why: every API call resolved its key, the user's memberships and grants, and the resource's
entry and version with four queries, about a third of a small call's time. A process may now
keep those facts in memory while this counter has not moved. Triggers move it on any insert or
delete of the tables below and on updates of the columns permissions are decided from, whoever
writes (the application, the shell, a DBA's SQL): `api_keys.last_used_at`, a version's progress
or an entry's title do not move it.

On PostgreSQL the triggers are deferred constraint triggers: they run at commit, after every
other lock the transaction takes, so two transactions never wait on the counter and on each
other's rows in opposite orders. SQLite has one writer at a time and runs them at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 16:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# table -> the columns whose updates change what a caller may read (inserts and deletes always do)
WATCHED = {
    "api_keys": ("user_id", "prefix", "key_hash", "revoked_at"),
    "users": ("username", "display_name", "system_role", "is_active"),
    "memberships": ("user_id", "org_id", "role"),
    "access_grants": ("user_id", "entry_id", "starts_on", "ends_on", "revoked_at"),
    "access_suspensions": ("user_id", "status"),
    "entries": ("provider_id", "status", "open_type"),
    "resources": ("entry_id", "kind", "published_version_id"),
    "resource_versions": ("resource_id", "number", "status", "data_key", "sha256", "schema"),
}

BUMP_SQLITE = "INSERT INTO auth_stamp (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1;"

PG_FUNCTION = """
CREATE FUNCTION kaifang_auth_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO auth_stamp (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = auth_stamp.n + 1;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "auth_stamp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_stamp")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table, columns in WATCHED.items():
            op.execute(
                f"CREATE CONSTRAINT TRIGGER auth_stamp_{table} "
                f"AFTER INSERT OR DELETE OR UPDATE OF {', '.join(columns)} ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kaifang_auth_stamp()"
            )
        return
    for table, columns in WATCHED.items():
        for event in ("INSERT", "DELETE", f"UPDATE OF {', '.join(columns)}"):
            name = f"auth_stamp_{table}_{event.split()[0].lower()}"
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP_SQLITE} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER auth_stamp_{table} ON {table}")
        op.execute("DROP FUNCTION kaifang_auth_stamp()")
    else:
        for table in WATCHED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER auth_stamp_{table}_{event}")
    op.drop_table("auth_stamp")
