"""Builds every activity with its dependencies (engine, mailer) for the worker and the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.mailer import Mailer
from activities.outbox import OutboxActivities
from activities.proposals import ProposalActivities
from db.engine import create_engine, session_factory
from settings import Settings


class Activities:
    """The worker's activity instances, sharing one connection pool."""

    def __init__(self, engine: AsyncEngine, mailer: Mailer) -> None:
        self._engine = engine
        sessions = session_factory(engine)
        self.proposals = ProposalActivities(sessions)
        self.outbox = OutboxActivities(sessions, mailer)

    def all(self) -> list[Callable[..., Any]]:
        return [self.proposals.record_proposal, self.outbox.deliver_outbox]

    async def close(self) -> None:
        await self._engine.dispose()


def build_activities(settings: Settings) -> Activities:
    return Activities(create_engine(settings.database_url), Mailer(settings))
