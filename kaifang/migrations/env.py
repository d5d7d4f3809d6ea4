"""Alembic environment: the URL comes from the caller (kaifang.migrate) or KAIFANG settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kaifang import models  # noqa: F401  (registers every table on Base.metadata)
from kaifang.db import Base, make_engine

# Objects the migration creates by hand that the ORM does not model (full-text index structures).
UNMODELLED = {"search_fts", "tsv", "ix_search_docs_tsv"}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (name in UNMODELLED or (name or "").startswith("search_fts_"))


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from kaifang.settings import load_settings

        url = load_settings().db_url
    engine = make_engine(url)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
