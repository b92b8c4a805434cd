"""Run the schema migrations from Python, independently of the current directory.

    from db.migrate import upgrade
    upgrade("postgresql://contracting@127.0.0.1:5433/contracting")

`upgrade` is idempotent and cheap when the database is already at head (one query, no
migration environment loaded). Concurrent callers (a worker and a gateway starting together)
serialise on a PostgreSQL advisory lock, and each migration run is one transaction: a failed
upgrade leaves the database as it was.

Command line: `python -m db.migrate upgrade|downgrade|current [--url URL] [revision]`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from db.engine import create_sync_engine, render_url

PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"

# pg_advisory_xact_lock key shared by every migration run ("contract" in ASCII).
MIGRATION_LOCK_KEY = 0x636F6E7472616374


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of this package, wherever it is installed or run from."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["skip_logging_config"] = True
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the code expects (the single head of the migration scripts)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


@contextmanager
def _locked_connection(url: str | URL) -> Iterator[Connection]:
    """One connection, one transaction, holding the migration advisory lock until commit."""
    engine = create_sync_engine(url, poolclass=NullPool, application_name="contracting-migrate")
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            yield connection
    finally:
        engine.dispose()


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = create_sync_engine(url, poolclass=NullPool, application_name="contracting-migrate")
    try:
        with engine.connect() as connection:
            heads = _current_heads(connection)
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise RuntimeError(f"database has several migration heads: {', '.join(heads)}")
    return heads[0] if heads else None


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (default: the latest)."""
    if revision in ("head", "heads") and current_revision(url) == head_revision():
        return
    with _locked_connection(url) as connection:
        # Another process may have migrated while we waited for the lock: Alembic re-reads
        # the version table and does nothing when there is nothing to do.
        command.upgrade(alembic_config(connection), revision)


def downgrade(url: str | URL, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision` (default: drop everything)."""
    with _locked_connection(url) as connection:
        command.downgrade(alembic_config(connection), revision)


async def upgrade_async(url: str | URL, revision: str = "head") -> None:
    """`upgrade` in a thread, for callers running an event loop."""
    await asyncio.to_thread(upgrade, url, revision)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m db.migrate", description=__doc__)
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", help="default: head (upgrade), base (downgrade)")
    parser.add_argument("--url", help="database URL (default: CONTRACTING_DATABASE_URL)")
    args = parser.parse_args(argv)
    url: str = args.url
    if not url:
        from settings import get_settings

        url = get_settings().database_url
    if args.action == "upgrade":
        upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        downgrade(url, args.revision or "base")
    print(f"{render_url(url)}: at revision {current_revision(url) or 'base (empty)'}")


if __name__ == "__main__":
    main()
