"""The ledger (PostgreSQL, CONTRACTING_DATABASE_URL) for one ops command.

A server that does not answer, or refuses the connection, is `Unreachable` (exit status 4),
named by its host and database, never by its password; a database without the ledger's
tables is `Refused` (exit status 1), pointing at `contracting migrate`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import create_engine, render_url
from settings import Settings
from starter.ops.errors import Refused, Unreachable

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
"""An ops command fails fast on a database that does not answer."""


@asynccontextmanager
async def ledger_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A small engine for one command, checked by connecting once; disposed after."""
    engine = create_engine(
        settings.database_url,
        pool_size=1,
        max_overflow=1,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "contracting-ops"},
    )
    try:
        try:
            connection = await engine.connect()
        except (DBAPIError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            where = render_url(settings.database_url)
            raise Unreachable(f"cannot reach the database at {where}: {reason}") from exc
        await connection.close()
        try:
            yield engine
        except ProgrammingError as exc:  # e.g. a table missing: a database never migrated
            reason = str(exc.orig).strip().splitlines()[0]
            raise Refused(
                f"the database refused the query ({reason}): is its schema up to date? run "
                "`contracting migrate`"
            ) from exc
    finally:
        await engine.dispose()


def read_ledger(settings: Settings, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """What `read` answers on one connection (a read-only use: its transaction is rolled
    back)."""

    async def run() -> T:
        async with ledger_engine(settings) as engine, engine.connect() as connection:
            return await read(connection)

    return asyncio.run(run())
