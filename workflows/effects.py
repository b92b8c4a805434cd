"""How workflows deliver email: the outbox delivery activity, never failing its workflow.

The first attempt of each delivery is a local activity (one marker in the history, no round
trip through the task queue; bounded by `MAIL_LOCAL_TIMEOUT`): SMTP up, that is all it costs.
Only when it fails do regular activities, retried and backing off, take over. The activity
options (timeouts, retries) are in `workflows/options.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

from schemas.activities import DeliverOutboxInput, DeliverOutboxResult, SignalInput
from schemas.names import DELIVER_OUTBOX, SIGNAL_WORKFLOW
from workflows.options import (
    ACTIVITY_FAILED,
    MAIL_ATTEMPT,
    MAIL_BACKOFF_LIMIT,
    MAIL_LOCAL_TIMEOUT,
    MAIL_RETRY,
    MAIL_TIMEOUT,
    local_db_activity,
)


def root_message(exc: BaseException) -> str:
    """The innermost failure's message: what a person needs, not the wrapping layers."""
    while isinstance(exc, FailureError) and exc.cause is not None:
        exc = exc.cause
    return exc.message if isinstance(exc, FailureError) else str(exc)


async def tell(workflow_id: str, signal: str, payload: BaseModel) -> None:
    """Signal a workflow's current run through a local activity (`signal_workflow`: one
    marker event). A workflow that has closed has nothing left to learn: logged, never a
    failure of the sender (a failed signal would otherwise fail the whole workflow)."""
    told = await local_db_activity(
        SIGNAL_WORKFLOW,
        SignalInput(
            workflow_id=workflow_id, signal=signal, payload=payload.model_dump(mode="json")
        ),
        bool,
    )
    if not told:
        workflow.logger.warning("%s not told %s: it has closed", workflow_id, signal)


async def _send(keys: list[str], retry_policy: RetryPolicy) -> DeliverOutboxResult:
    """The outbox delivery activity for `keys`, retried as `retry_policy` says."""
    result: DeliverOutboxResult = await workflow.execute_activity(
        DELIVER_OUTBOX,
        DeliverOutboxInput(keys=keys),
        result_type=DeliverOutboxResult,
        start_to_close_timeout=MAIL_TIMEOUT,
        retry_policy=retry_policy,
    )
    return result


async def _first_attempt(keys: list[str]) -> bool:
    """One local attempt (the common case: SMTP up); False when it did not deliver."""
    try:
        await workflow.execute_local_activity(
            DELIVER_OUTBOX,
            DeliverOutboxInput(keys=keys),
            result_type=DeliverOutboxResult,
            start_to_close_timeout=MAIL_LOCAL_TIMEOUT,
            retry_policy=MAIL_ATTEMPT,
        )
        return True
    except ACTIVITY_FAILED as exc:
        workflow.logger.warning(
            "emails %s not delivered at once, retrying: %s", keys, root_message(exc)
        )
        return False


async def deliver_outbox(keys: list[str]) -> None:
    """Send outbox rows by key; a permanent refusal is recorded on its row (`refused`) by
    the activity, which goes on with the other keys: it never fails the workflow that queued
    the email. What still fails (retries exhausted) is logged."""
    if not keys or await _first_attempt(keys):
        return
    try:
        await _send(keys, MAIL_RETRY)
    except ActivityError as exc:
        workflow.logger.error("emails %s not delivered: %s", keys, root_message(exc))


@dataclass
class _Delivery:
    keys: list[str]
    attempting: bool = True


class Courier:
    """Emails delivered in the background, after the business step that queued them.

    Nothing waits for an SMTP outage but the end of a run. Each attempt is one activity
    (`MAIL_ATTEMPT`); between attempts the courier waits on a workflow timer, backing off
    like `MAIL_RETRY`. A run that continues as new waits only for the attempts in flight
    (`quiet`: never an activity abandoned mid-send) and hands the keys still undelivered to
    the next run (`undelivered`), which delivers them again (the outbox sends a row once)."""

    def __init__(self) -> None:
        self._deliveries: list[tuple[_Delivery, asyncio.Future[None]]] = []

    def deliver(self, keys: list[str]) -> None:
        if keys:
            delivery = _Delivery(list(keys))
            self._deliveries.append((delivery, asyncio.ensure_future(self._attempts(delivery))))

    async def _attempts(self, delivery: _Delivery) -> None:
        backoff = MAIL_RETRY.initial_interval
        if await _first_attempt(delivery.keys):
            return
        delivery.attempting = False
        await workflow.sleep(backoff)
        backoff = min(backoff * MAIL_RETRY.backoff_coefficient, MAIL_BACKOFF_LIMIT)
        while True:
            delivery.attempting = True
            try:
                await _send(delivery.keys, MAIL_ATTEMPT)
                return
            except ActivityError as exc:
                workflow.logger.warning(
                    "emails %s not delivered yet, next attempt in %s: %s",
                    delivery.keys,
                    backoff,
                    root_message(exc),
                )
            delivery.attempting = False
            await workflow.sleep(backoff)
            backoff = min(backoff * MAIL_RETRY.backoff_coefficient, MAIL_BACKOFF_LIMIT)

    def quiet(self) -> bool:
        """No attempt in flight: every delivery is done or waiting for its next attempt."""
        return not any(d.attempting for d, done in self._deliveries if not done.done())

    def undelivered(self) -> list[str]:
        """Keys whose delivery has not finished, in the order they were queued."""
        return [key for d, done in self._deliveries if not done.done() for key in d.keys]

    async def delivered(self) -> None:
        """Wait for every delivery (before a run ends for good)."""
        while self._deliveries:
            await self._deliveries.pop(0)[1]
