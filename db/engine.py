"""Engines and sessions (psycopg 3, async for activities, sync for Alembic and scripts).

URLs may be given as `postgresql://…` or `postgres://…` (what managed PostgreSQL services
hand out): they are normalised to SQLAlchemy's `postgresql+psycopg://` driver.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine as _create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}

# Pool defaults: a worker runs a bounded number of concurrent activities, each holding one
# connection for one short transaction.
POOL_SIZE = 10
MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 30.0
POOL_RECYCLE_S = 1800
CONNECT_TIMEOUT_S = 10
APPLICATION_NAME = "contracting"


def normalize_url(url: str | URL) -> URL:
    """The SQLAlchemy URL of `url`, with the psycopg 3 driver.

    Raises ValueError for a URL that is not PostgreSQL.
    """
    parsed = make_url(url)
    if parsed.drivername not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: expected postgresql:// "
            "or postgresql+psycopg://"
        )
    return parsed.set(drivername=DRIVER)


def render_url(url: str | URL, *, hide_password: bool = True) -> str:
    """`url` normalised, as a string (password masked unless asked otherwise)."""
    return normalize_url(url).render_as_string(hide_password=hide_password)


def _connect_args(application_name: str) -> dict[str, Any]:
    return {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": application_name}


def create_engine(
    url: str | URL,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    echo: bool = False,
    application_name: str = APPLICATION_NAME,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine (psycopg 3) with a pre-pinged, recycled connection pool.

    Extra keyword arguments go to `sqlalchemy.ext.asyncio.create_async_engine`.
    """
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": POOL_TIMEOUT_S,
        "pool_recycle": POOL_RECYCLE_S,
        "pool_pre_ping": True,
        "echo": echo,
        "connect_args": _connect_args(application_name),
    }
    options.update(kwargs)
    return _create_async_engine(normalize_url(url), **options)


def create_sync_engine(
    url: str | URL,
    *,
    echo: bool = False,
    application_name: str = APPLICATION_NAME,
    **kwargs: Any,
) -> Engine:
    """A synchronous engine (psycopg 3), for Alembic and one-off scripts."""
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "echo": echo,
        "connect_args": _connect_args(application_name),
    }
    options.update(kwargs)
    return _create_sync_engine(normalize_url(url), **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit.

    One activity = one transaction: `async with factory.begin() as session: …`.
    """
    return async_sessionmaker(engine, expire_on_commit=False)
