"""The transition queue every main loop shares.

Handlers change the in-memory state and `put` a transition; the main loop `drain`s the queue:
each transition written in order by one idempotent activity, its emails then delivered in the
background, so an update answers at once and an SMTP outage never holds the next transition.
A run waits for every delivery (`delivered`) before it ends; one that continues as new waits
only for the attempts in flight (`quiet`) and hands the emails still undelivered to the next
run (`undelivered`) instead of waiting for SMTP to come back.

A transition whose write fails for good (a non-retryable activity failure: the database
refuses its data, activities/data_errors.py) is handed to `refused`, when the workflow gives
one: it makes the failure visible and the queue goes on with the next transition, instead of
failing the workflow or, as a retried write would, holding every later transition behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from schemas.activities import FailedTransition, TransitionResult
from schemas.names import RECORD_FAILED_TRANSITION
from workflows.effects import Courier
from workflows.options import ACTIVITY_FAILED, failed_for_good, local_db_activity

T = TypeVar("T")


class TransitionQueue(Generic[T]):
    """Transitions waiting to be written; `write` records one and returns its outbox keys."""

    def __init__(
        self,
        write: Callable[[T], Awaitable[list[str]]],
        refused: Callable[[T, ApplicationError], Awaitable[list[str]]] | None = None,
    ) -> None:
        self._write = write
        self._refused = refused
        self._pending: list[T] = []
        self._courier = Courier()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def put(self, transition: T) -> None:
        self._pending.append(transition)

    async def drain(self) -> None:
        """Write the queued transitions in order (including those queued meanwhile)."""
        while self._pending:
            transition = self._pending.pop(0)
            try:
                keys = await self._write(transition)
            except ACTIVITY_FAILED as exc:
                final = failed_for_good(exc)
                if final is None or self._refused is None:
                    raise
                keys = await self._refused(transition, final)
            self.deliver(keys)

    def deliver(self, keys: list[str]) -> None:
        """Send emails in the background; `delivered` waits for them."""
        self._courier.deliver(keys)

    def quiet(self) -> bool:
        return self._courier.quiet()

    def undelivered(self) -> list[str]:
        return self._courier.undelivered()

    async def delivered(self) -> None:
        await self._courier.delivered()


async def record_refusal(
    mission_id: str, key: str, kind: str, error: ApplicationError
) -> list[str]:
    """Make a write refused for good visible: an ERROR log naming the mission, then
    `record_failed_transition` (the timeline row `transition.failed` and one ops e-mail, keyed
    by the refused transition's `key`); returns the alert's outbox keys."""
    workflow.logger.error(
        "mission %s: transition %s (%s) refused for good: %s", mission_id, kind, key, error.message
    )
    result = await local_db_activity(
        RECORD_FAILED_TRANSITION,
        FailedTransition(
            mission_id=mission_id, key=key, kind=kind, at=workflow.now(), reason=error.message
        ),
        TransitionResult,
    )
    return result.outbox_keys
