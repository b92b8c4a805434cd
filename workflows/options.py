"""Activity options, once: how long an activity may run and how it retries.

Every workflow runs its database activities through `db_activity`, so a change of policy (how
long a write may take, how often it retries, how long SMTP may be down) is one edit here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy

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
