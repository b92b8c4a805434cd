"""Reading PostgreSQL from a test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


async def count(engine: AsyncEngine, stmt: Any) -> int:
    """The integer a `select(func.count())…` statement answers."""
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def rows(engine: AsyncEngine, stmt: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


@asynccontextmanager
async def refusing(engine: AsyncEngine, table: str, check: str) -> AsyncIterator[str]:
    """A CHECK constraint on `table` for the block's length (`NOT VALID`: existing rows are not
    checked), so the database refuses what the test chooses; its name.

    The ALTER takes the table's exclusive lock in the database every test shares: bounded by
    a lock timeout, so that it never queues the other tests' writes behind a long wait."""
    name = f"ck_{table}_poison_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as connection:
        await connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        await connection.execute(
            sa.text(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check}) NOT VALID")
        )
    try:
        yield name
    finally:
        async with engine.begin() as connection:
            await connection.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
            await connection.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
