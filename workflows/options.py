"""Activity options, once: how long an activity may run and how it retries.

Every workflow runs its database activities through `db_activity` or `local_db_activity`, so
a change of policy (how long a write may take, how often it retries, how long SMTP may be
down) is one edit here.

Why local activities for the lifecycle's transitions (`local_db_activity`): a transition is
one short transaction (milliseconds). As a regular activity it costs six history events
(scheduled, started, completed, and the workflow task that reads its result) and two round
trips through the server's task queue; as a local activity, run by the worker inside the
workflow task that asks for it, one marker event and none. A retry after a crashed worker
re-runs it (the workflow task times out and is retried on another worker): the transitions
are idempotent by key, like every activity here. The long or CPU-bound ones stay regular
activities (the rendering of the billing documents, on its own task queue, and SMTP retries).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutError

ACTIVITY_FAILED = (ActivityError, ApplicationError, TimeoutError)
"""What awaiting a failed activity raises: a regular activity an `ActivityError` whose cause
is the failure; a local activity may raise the failure itself (an `ApplicationError`, or a
`TimeoutError` once its timeout passed)."""

T = TypeVar("T")

# A database write is short; transient faults retry (bad input is raised non-retryable).
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# SMTP may be down for a while: keep retrying, backing off to 10 minutes between attempts.
MAIL_TIMEOUT = timedelta(minutes=2)
MAIL_BACKOFF_LIMIT = timedelta(minutes=10)
MAIL_RETRY = RetryPolicy(maximum_interval=MAIL_BACKOFF_LIMIT)
# One attempt per activity where the workflow retries on its own timer (`effects.Courier`).
MAIL_ATTEMPT = RetryPolicy(maximum_attempts=1)
# The first attempt of a delivery runs as a local activity, briefly: SMTP answers in
# milliseconds when it is up; past this, the regular retried activities take over.
MAIL_LOCAL_TIMEOUT = timedelta(seconds=5)
# A local activity's one attempt (`local_db_activity`): a transaction and, for a transition, the
# first attempt of its e-mails (activities.outbox.SEND_NOW_BUDGET) take milliseconds; past
# this, the regular activity takes over and the workflow task (and the update) is answered.
LOCAL_ATTEMPT_TIMEOUT = timedelta(seconds=3)
LOCAL_ATTEMPT = RetryPolicy(maximum_attempts=1)
# Rendering a month's files: a few milliseconds a document (bench/render.py) and two rows;
# retried like a write. Short, so that a render worker killed mid-task is replaced within
# seconds, not minutes (there is no heartbeat to notice it sooner).
RENDER_TIMEOUT = timedelta(seconds=30)


def failed_for_good(exc: FailureError) -> ApplicationError | None:
    """The non-retryable application error that ended the activity, if that is what did
    (the failure itself for a local activity, the cause of an `ActivityError` otherwise)."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


@overload
async def db_activity(activity: str, arg: Any) -> None: ...
@overload
async def db_activity(activity: str, arg: Any, result_type: type[T]) -> T: ...
async def db_activity(activity: str, arg: Any, result_type: type[Any] | None = None) -> Any:
    """Run a database activity (one transaction) with the database options."""
    return await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=DB_TIMEOUT,
        retry_policy=DB_RETRY,
    )


@overload
async def local_db_activity(activity: str, arg: Any) -> None: ...
@overload
async def local_db_activity(activity: str, arg: Any, result_type: type[T]) -> T: ...
async def local_db_activity(activity: str, arg: Any, result_type: type[Any] | None = None) -> Any:
    """Run a short database activity (one transaction) as one local attempt, bounded by
    `LOCAL_ATTEMPT_TIMEOUT`: one marker in the history instead of an activity's six events.

    A local activity holds its workflow task open, and with it the answer to the update that
    queued the transition: so it gets one short attempt. A failure that may pass (the database
    away, a lock, a slow SMTP after the commit) goes on as the regular activity, retried with
    the database options, while the workflow task completes and the update is answered; the
    activities are idempotent by key, so the second run finds the first one's commit. A
    failure for good (non-retryable) is raised as it is."""
    try:
        return await workflow.execute_local_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=LOCAL_ATTEMPT_TIMEOUT,
            retry_policy=LOCAL_ATTEMPT,
        )
    except ACTIVITY_FAILED as exc:
        if failed_for_good(exc) is not None:
            raise
        workflow.logger.warning(
            "%s: the local attempt failed (%s), retrying as a regular activity",
            activity,
            exc.cause if isinstance(exc, ActivityError) else exc,
        )
    return await db_activity(activity, arg, result_type)  # type: ignore[arg-type]
