"""Reading PostgreSQL from a test."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine


async def count(engine: AsyncEngine, stmt: Any) -> int:
    """The integer a `select(func.count())…` statement answers."""
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def rows(engine: AsyncEngine, stmt: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())
