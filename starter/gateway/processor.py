"""Exactly-once hand-off of platform events: validate, claim the event_id, dispatch, record.

The claim is a row in `processed_events` inserted before dispatching, with its owner (this
gateway) and a lease the owner renews while it dispatches. A second delivery of the same
`event_id` finds it: `duplicate` once the first was accepted; while a live claim is still
dispatching, a 503 `in_flight` with Retry-After (the first may yet fail, and a platform told
`duplicate` would never send the event again); once the lease has expired (the claimant died),
it takes the claim over in one compare-and-set and dispatches the event itself —
re-dispatching is harmless: workflow starts are checked against the event that started the
workflow, updates are deduplicated by their update id (the event_id). A delivery that fails
(404, 409, 503) releases its claim, so the platform may send the event again once the mission
is ready for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from temporalio.client import Client, Interceptor

from activities.temporal_client import connect_temporal
from db.engine import create_engine, session_factory
from db.models import ProcessedEvent
from observability import context
from observability.tracing import with_interceptors
from schemas.events import Event, ProposalSubmitted
from settings import (
    DEFAULT_GATEWAY_CLAIM_LEASE_SECONDS,
    DEFAULT_GATEWAY_RPC_TIMEOUT_SECONDS,
    Settings,
)
from starter.gateway.directory import DatabaseDirectory
from starter.gateway.dispatch import Context, dispatch, handler_for
from starter.gateway.events import (
    EventError,
    InFlight,
    NotApplicable,
    Unavailable,
    parse_event,
)

log = logging.getLogger(__name__)

PROCESSING = "processing"
ACCEPTED = "accepted"
CLAIM_ATTEMPTS = 3
"""A claim found and released between two statements is claimed again, a few times at most."""


def content_digest(raw: bytes) -> str:
    """SHA-256 of the event's canonical JSON (keys sorted, no spacing): a redelivery the
    platform re-serialized — other key order, other whitespace, escaped or raw UTF-8 — is the
    same event, while any change of a value is another one (issue 12 point 9)."""
    canonical = json.dumps(
        json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def gateway_identity() -> str:
    """Who holds a claim: host, process and a per-processor nonce (a restarted process that
    reuses a pid is still another claimant)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]


class EventProcessor:
    """Shared by the HTTP gateway, the Python client and the CLI."""

    def __init__(
        self,
        temporal: Client,
        sessions: async_sessionmaker[Any],
        task_queue: str,
        *,
        rpc_timeout: timedelta = timedelta(seconds=DEFAULT_GATEWAY_RPC_TIMEOUT_SECONDS),
        claim_lease: timedelta = timedelta(seconds=DEFAULT_GATEWAY_CLAIM_LEASE_SECONDS),
    ) -> None:
        self._sessions = sessions
        self._context = Context(
            temporal, task_queue, DatabaseDirectory(sessions), rpc_timeout=rpc_timeout
        )
        self._lease = claim_lease
        self.identity = gateway_identity()

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
        context.bind(
            event_id=event.event_id,
            event_type=event.type,
            mission_id=getattr(event.payload, "mission_id", None)
            or getattr(event.payload, "proposal_id", None),
        )
        handler_for(event.type)  # 501 before anything is recorded
        digest = content_digest(raw)
        try:
            answered = await self._claim_or_answer(event, digest)
            if answered is not None:
                return answered
            try:
                async with self._renewing(event.event_id):
                    dispatched = await dispatch(self._context, event)
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

    async def _claim_or_answer(self, event: Event, digest: str) -> Outcome | None:
        """None once this delivery holds the claim (new, or taken over from a dead claimant);
        else the answer: `duplicate` for an accepted event, `InFlight` (503) while another
        delivery's claim is live, 409 for an event_id reused for another event."""
        for _ in range(CLAIM_ATTEMPTS):
            if await self._claim(event, digest):
                return None
            async with self._sessions() as session:
                found = (
                    await session.execute(
                        select(
                            ProcessedEvent,
                            sa.func.extract(
                                "epoch", ProcessedEvent.lease_expires_at - sa.func.now()
                            ),
                        ).where(ProcessedEvent.event_id == event.event_id)
                    )
                ).one_or_none()
            if found is None:  # released by its failed delivery meanwhile: claim it again
                continue
            first, lease_left = found
            if first.payload_sha256 != digest:
                raise NotApplicable(
                    f"event_id {event.event_id!r} was already used for a different event "
                    f"({first.type}); every event needs its own event_id"
                )
            if first.status == ACCEPTED:
                return Outcome(
                    200,
                    {
                        "event_id": event.event_id,
                        "status": "duplicate",
                        "workflow_id": first.workflow_id,
                        "first_delivery": ACCEPTED,
                    },
                )
            if lease_left is not None and lease_left > 0:
                raise InFlight(
                    f"event {event.event_id!r} is being dispatched by another delivery "
                    f"({first.claimed_by}) and is not accepted yet; retry later with the "
                    "same event_id: it will be answered 'duplicate' once accepted, or "
                    "dispatched again if that delivery fails",
                    retry_after=math.ceil(lease_left),
                )
        raise InFlight(
            f"event {event.event_id!r} is being claimed by other deliveries right now; retry "
            "later with the same event_id"
        )

    async def _claim(self, event: Event, digest: str) -> bool:
        """Insert the claim, or take over an expired one of the same event, in one statement
        (the compare-and-set: of two deliveries that find the same expired claim, one wins)."""
        lease_end = sa.func.now() + sa.literal(self._lease, sa.Interval())
        rfp_id = event.payload.rfp_id if isinstance(event.payload, ProposalSubmitted) else None
        table = ProcessedEvent.__table__
        statement = (
            insert(ProcessedEvent)
            .values(
                event_id=event.event_id,
                type=event.type,
                status=PROCESSING,
                payload_sha256=digest,
                received_at=datetime.now(UTC),
                claimed_by=self.identity,
                lease_expires_at=lease_end,
                rfp_id=rfp_id,
            )
            .on_conflict_do_update(
                index_elements=[ProcessedEvent.event_id],
                set_={"claimed_by": self.identity, "lease_expires_at": lease_end},
                where=(
                    (table.c.status == PROCESSING)
                    & (table.c.payload_sha256 == digest)
                    & (
                        table.c.lease_expires_at.is_(None)
                        | (table.c.lease_expires_at <= sa.func.now())
                    )
                ),
            )
            .returning(ProcessedEvent.event_id)
        )
        async with self._sessions.begin() as session:
            claimed = (await session.execute(statement)).scalar_one_or_none()
        if claimed is not None:
            log.debug("event %s claimed by %s", event.event_id, self.identity)
        return claimed is not None

    @asynccontextmanager
    async def _renewing(self, event_id: str) -> AsyncIterator[None]:
        """Keep the claim's lease alive while this delivery dispatches (an rfp.closed fans out
        to many missions): only a gateway that died or hangs lets it expire."""
        renewer = asyncio.create_task(self._renew_until_cancelled(event_id))
        try:
            yield
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer

    async def _renew_until_cancelled(self, event_id: str) -> None:
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self._sessions.begin() as session:
                    await session.execute(
                        update(ProcessedEvent)
                        .where(
                            ProcessedEvent.event_id == event_id,
                            ProcessedEvent.status == PROCESSING,
                            ProcessedEvent.claimed_by == self.identity,
                        )
                        .values(
                            lease_expires_at=sa.func.now() + sa.literal(self._lease, sa.Interval())
                        )
                    )
            except SQLAlchemyError as exc:  # the next renewal may succeed; the lease says
                log.warning("could not renew the claim on event %s: %s", event_id, exc)

    async def _release(self, event_id: str) -> None:
        """Drop this delivery's claim (never one another delivery took over since)."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.event_id == event_id,
                    ProcessedEvent.status == PROCESSING,
                    ProcessedEvent.claimed_by == self.identity,
                )
            )

    async def _record(self, event_id: str, workflow_id: str) -> None:
        """Accepted: whoever holds the claim now, the event was handed to its workflow."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id == event_id)
                .values(status=ACCEPTED, workflow_id=workflow_id, lease_expires_at=None)
            )


@asynccontextmanager
async def open_processor(
    settings: Settings, *, interceptors: Sequence[Interceptor] = ()
) -> AsyncIterator[EventProcessor]:
    """Connect to Temporal (with `interceptors` on the client: the gateway's tracing) and
    PostgreSQL for the life of a gateway or a CLI command."""
    engine: AsyncEngine = create_engine(settings.database_url)
    try:
        temporal = with_interceptors(await connect_temporal(settings), interceptors)
        yield EventProcessor(
            temporal,
            session_factory(engine),
            settings.task_queue,
            rpc_timeout=timedelta(seconds=settings.gateway_rpc_timeout_seconds),
            claim_lease=timedelta(seconds=settings.gateway_claim_lease_seconds),
        )
    finally:
        await engine.dispose()


__all__ = ["EventError", "EventProcessor", "Outcome", "open_processor"]
