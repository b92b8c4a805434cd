"""How workflows deliver email: the outbox delivery activity, never failing its workflow.

The activity options (timeouts, retries) are in `workflows/options.py`.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

from schemas.activities import DeliverOutboxInput, DeliverOutboxResult
from schemas.names import DELIVER_OUTBOX
from workflows.options import MAIL_RETRY, MAIL_TIMEOUT


def root_message(exc: BaseException) -> str:
    """The innermost failure's message: what a person needs, not the wrapping layers."""
    while isinstance(exc, FailureError) and exc.cause is not None:
        exc = exc.cause
    return exc.message if isinstance(exc, FailureError) else str(exc)


async def deliver_outbox(keys: list[str]) -> None:
    """Send outbox rows by key; a permanent refusal is recorded on its row (`refused`) by
    the activity, which goes on with the other keys: it never fails the workflow that queued
    the email. What still fails (retries exhausted) is logged."""
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
