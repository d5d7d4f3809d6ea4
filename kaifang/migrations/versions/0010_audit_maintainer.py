"""audit maintenance role: only the retention archive may delete audit rows

Why: the append-only guard of 0004 let any session lift it with a setting
(`SET LOCAL kaifang.audit_maintenance = 'on'`), and the application's own role can set any
setting, so "the application's role cannot update or delete audit rows" held only by convention.
Now the trigger asks who is acting: only a member of the role `kaifang_audit_maintainer` (a
NOLOGIN group role created here) may delete audit rows, and only what that role was granted
(SELECT and DELETE on records and seals, INSERT for the archive's manifest record; reading the
checkpoints; no UPDATE anywhere). The
application's role is not a member; the archive connects with a separate database URL whose role
is (`KAIFANG_AUDIT_MAINTENANCE_DATABASE_URL`, see README), or, where the operator made the
application's role a member on purpose, takes the role for its DELETE statements only. Superuser
rights are not membership here: a database superuser can do anything anyway, and the hash chain
is what catches that.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 11:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLE = "kaifang_audit_maintainer"
AUDIT_TABLES = ("audit_records", "audit_seals", "audit_checkpoints")

# Roles belong to the whole server, not to one database: several databases (and parallel test
# processes) create it, so "already exists" from a concurrent creation is not an error. A
# migrating role without CREATEROLE gets a notice naming the statement for the DBA.
CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE WARNING 'kaifang: cannot create role {ROLE}; ask the DBA to run: CREATE ROLE {ROLE} NOLOGIN';
END
$$
"""

GRANT = f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        GRANT SELECT, DELETE ON audit_records, audit_seals TO {ROLE};
        GRANT SELECT ON audit_checkpoints TO {ROLE};
        -- the archive's manifest is itself an audit record, written in the same transaction
        GRANT INSERT ON audit_records TO {ROLE};
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {ROLE}', pg_get_serial_sequence('audit_records', 'id'));
    END IF;
END
$$
"""

# Membership is looked up in pg_auth_members (direct or through other roles), not with
# pg_has_role(), which answers yes for every superuser.
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION kaifang_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME IN ('audit_records', 'audit_seals') AND EXISTS (
        WITH RECURSIVE member_of(oid) AS (
            SELECT oid FROM pg_roles WHERE rolname = current_user
            UNION
            SELECT m.roleid FROM pg_auth_members m JOIN member_of ON m.member = member_of.oid
        )
        SELECT FROM member_of JOIN pg_roles r ON r.oid = member_of.oid
        WHERE r.rolname = 'kaifang_audit_maintainer'
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = 'audit records are append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME
            || ' by ' || current_user;
END;
$$ LANGUAGE plpgsql
"""

PREVIOUS_FUNCTION = """
CREATE OR REPLACE FUNCTION kaifang_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('kaifang.audit_maintenance', true) = 'on' THEN
        IF TG_OP = 'UPDATE' THEN
            RETURN NEW;
        END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = 'audit records are append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CREATE_ROLE)
    op.execute(GRANT)
    op.execute(APPEND_ONLY_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(PREVIOUS_FUNCTION)
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "  # noqa: S608
        f"REVOKE ALL ON {', '.join(AUDIT_TABLES)} FROM {ROLE}; END IF; END $$"
    )
