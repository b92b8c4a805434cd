"""How workflows reach their side effects: activity timeouts and retries, and email delivery.

Shared by every workflow so that a change of policy (how long SMTP may be down, how often a
database write retries) is one edit.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

from schemas.activities import DELIVER_OUTBOX, DeliverOutboxInput, DeliverOutboxResult

# A database write is short; transient faults retry (bad input is raised non-retryable).
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# SMTP may be down for a while: keep retrying, backing off to 10 minutes between attempts.
MAIL_TIMEOUT = timedelta(minutes=2)
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10))


def root_message(exc: BaseException) -> str:
    """The innermost failure's message: what a person needs, not the wrapping layers."""
    while isinstance(exc, FailureError) and exc.cause is not None:
        exc = exc.cause
    return exc.message if isinstance(exc, FailureError) else str(exc)


async def deliver_outbox(keys: list[str]) -> None:
    """Send outbox rows by key; a permanent refusal is logged and left in the outbox row
    (`last_error`) for ops: it never fails the workflow that queued the email."""
    try:
        await workflow.execute_activity(
            DELIVER_OUTBOX,
            DeliverOutboxInput(keys=keys),
            result_type=DeliverOutboxResult,
            start_to_close_timeout=MAIL_TIMEOUT,
            retry_policy=MAIL_RETRY,
        )
    except ActivityError as exc:
        workflow.logger.error("emails %s not delivered: %s", keys, root_message(exc))
