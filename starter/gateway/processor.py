"""Exactly-once hand-off of platform events: validate, claim the event_id, dispatch, record.

The claim is a row in `processed_events` inserted before dispatching: a second delivery of the
same `event_id` finds it (even while the first is still in flight, even after a restart) and
gets `duplicate` without touching the workflow. A delivery that fails (404, 409, 503) releases
its claim, so the platform may send the event again once the mission is ready for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from temporalio.client import Client

from activities.temporal_client import connect_temporal
from db.engine import create_engine, session_factory
from db.models import ProcessedEvent
from settings import Settings
from starter.gateway.directory import DatabaseDirectory
from starter.gateway.dispatch import Context, dispatch, handler_for
from starter.gateway.events import EventError, NotApplicable, Unavailable, parse_event

PROCESSING = "processing"
ACCEPTED = "accepted"
STALE_CLAIM = timedelta(minutes=2)
"""Longer than any dispatch takes (Temporal calls time out well before)."""


def content_digest(raw: bytes) -> str:
    """SHA-256 of the event's canonical JSON (keys sorted, no spacing): a redelivery the
    platform re-serialized — other key order, other whitespace, escaped or raw UTF-8 — is the
    same event, while any change of a value is another one (issue 12 point 9)."""
    canonical = json.dumps(
        json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]


class EventProcessor:
    """Shared by the HTTP gateway, the Python client and the CLI."""

    def __init__(
        self, temporal: Client, sessions: async_sessionmaker[Any], task_queue: str
    ) -> None:
        self._sessions = sessions
        self._context = Context(temporal, task_queue, DatabaseDirectory(sessions))

    @property
    def sessions(self) -> async_sessionmaker[Any]:
        """The database sessions (the gateway's document routes read with them too)."""
        return self._sessions

    @property
    def temporal(self) -> Client:
        """The Temporal client events are dispatched with (the gateway's queries use it too)."""
        return self._context.client

    async def process(self, raw: bytes) -> Outcome:
        event = parse_event(raw)
        handler_for(event.type)  # 501 before anything is recorded
        digest = content_digest(raw)
        try:
            claimed = await self._claim(event.event_id, event.type, digest)
            resumed = False
            if not claimed:
                resumed = await self._take_over_stale_claim(event.event_id, digest)
                if not resumed:
                    return await self._duplicate(event.event_id, digest)
            try:
                dispatched = await dispatch(self._context, event, resumed=resumed)
            except BaseException:
                await self._release(event.event_id)
                raise
            await self._record(event.event_id, dispatched.workflow_id)
        except OperationalError as exc:
            raise Unavailable(f"the event ledger database is unavailable: {exc.orig}") from exc
        body: dict[str, Any] = {
            "event_id": event.event_id,
            "status": "accepted",
            "workflow_id": dispatched.workflow_id,
        }
        if event.type == "rfp.closed" or dispatched.also or dispatched.skipped:
            body["workflow_ids"] = [dispatched.workflow_id, *dispatched.also]
            body["skipped"] = dispatched.skipped
        return Outcome(202, body)

    async def _claim(self, event_id: str, event_type: str, digest: str) -> bool:
        async with self._sessions.begin() as session:
            inserted = await session.execute(
                insert(ProcessedEvent)
                .values(
                    event_id=event_id,
                    type=event_type,
                    status=PROCESSING,
                    payload_sha256=digest,
                    received_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
                .returning(ProcessedEvent.event_id)
            )
            return inserted.scalar_one_or_none() is not None

    async def _take_over_stale_claim(self, event_id: str, digest: str) -> bool:
        """A claim still `processing` after STALE_CLAIM was left by a gateway that died before
        dispatching or recording: this delivery takes it over instead of answering `duplicate`
        for an event nothing may have acted on. Re-dispatching is safe: starts are idempotent by
        workflow id, updates by update id (the event id)."""
        async with self._sessions.begin() as session:
            taken = await session.execute(
                update(ProcessedEvent)
                .where(
                    ProcessedEvent.event_id == event_id,
                    ProcessedEvent.status == PROCESSING,
                    ProcessedEvent.payload_sha256 == digest,
                    ProcessedEvent.received_at < datetime.now(UTC) - STALE_CLAIM,
                )
                .values(received_at=datetime.now(UTC))
                .returning(ProcessedEvent.event_id)
            )
            return taken.scalar_one_or_none() is not None

    async def _duplicate(self, event_id: str, digest: str) -> Outcome:
        async with self._sessions() as session:
            first = (
                await session.execute(
                    select(ProcessedEvent).where(ProcessedEvent.event_id == event_id)
                )
            ).scalar_one()
        if first.payload_sha256 != digest:
            raise NotApplicable(
                f"event_id {event_id!r} was already used for a different event "
                f"({first.type}); every event needs its own event_id"
            )
        return Outcome(
            200,
            {
                "event_id": event_id,
                "status": "duplicate",
                "workflow_id": first.workflow_id,
                "first_delivery": first.status,
            },
        )

    async def _release(self, event_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.event_id == event_id, ProcessedEvent.status == PROCESSING
                )
            )

    async def _record(self, event_id: str, workflow_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id == event_id)
                .values(status=ACCEPTED, workflow_id=workflow_id)
            )


@asynccontextmanager
async def open_processor(settings: Settings) -> AsyncIterator[EventProcessor]:
    """Connect to Temporal and PostgreSQL for the life of a gateway or a CLI command."""
    engine: AsyncEngine = create_engine(settings.database_url)
    try:
        temporal = await connect_temporal(settings)
        yield EventProcessor(temporal, session_factory(engine), settings.task_queue)
    finally:
        await engine.dispose()


__all__ = ["EventError", "EventProcessor", "Outcome", "open_processor"]
