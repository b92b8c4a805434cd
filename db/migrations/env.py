"""Alembic environment: runs the revisions against PostgreSQL with psycopg 3 (sync).

Where the database comes from, first match wins:
1. `config.attributes["connection"]`: an open SQLAlchemy connection (db.migrate does this);
2. `config.attributes["url"]`, or `-x url=…` on the command line;
3. the settings' `database_url` (`CONTRACTING_DATABASE_URL`).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from db.engine import create_sync_engine, normalize_url
from db.models import Base

config = context.config
target_metadata = Base.metadata


if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        from settings import get_settings  # only on the command line, without a URL

        url = get_settings().database_url
    return str(url)


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`)."""
    context.configure(
        url=normalize_url(_database_url()),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        target_metadata=target_metadata,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_with(connection)
        return
    engine = create_sync_engine(_database_url(), poolclass=NullPool)
    try:
        with engine.connect() as new_connection:
            _run_with(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
