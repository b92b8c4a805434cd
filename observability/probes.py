"""Readiness checks: can this process reach Temporal and the database right now? Each check
is bounded by a short timeout, so a probe answers even when a dependency hangs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Readiness:
    """Each dependency's state: `ok`, or why not (no host names or credentials: the answer
    may be read from outside; the log has the details)."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(state == "ok" for state in self.checks.values())

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> dict[str, Any]:
        failed = [name for name, state in self.checks.items() if state != "ok"]
        return {
            "status": "ready" if self.ready else "unavailable",
            "checks": self.checks,
            **({"failed": failed} if failed else {}),
        }


def temporal_check(client: Client, timeout: float = DEFAULT_TIMEOUT) -> Check:
    """Temporal's health service answers SERVING within `timeout`."""

    async def check() -> None:
        healthy = await client.service_client.check_health(timeout=timedelta(seconds=timeout))
        if not healthy:
            raise RuntimeError("Temporal's health check says not serving")

    return check


def database_check(sessions: async_sessionmaker[Any]) -> Check:
    """`SELECT 1` on a connection of the pool."""

    async def check() -> None:
        async with sessions() as session:
            await session.execute(sa.text("SELECT 1"))

    return check


async def readiness(checks: Mapping[str, Check], within: float = DEFAULT_TIMEOUT) -> Readiness:
    """Run every check at once, each within `within` seconds."""

    async def state(name: str, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), within)
        except TimeoutError:
            log.warning("readiness: %s did not answer within %g s", name, within)
            return f"timed out after {within:g} s"
        except Exception as exc:
            log.warning("readiness: %s is unavailable: %s", name, exc)
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    names = list(checks)
    states = await asyncio.gather(*(state(name, checks[name]) for name in names))
    return Readiness(dict(zip(names, states, strict=True)))
