"""A workflow whose activity fails for good and which then fails itself: what makes a worker's
failure metrics (`temporal_activity_execution_failed`, `temporal_workflow_failed`) appear."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError


@activity.defn(name="observability_failing_activity")
async def failing_activity() -> None:
    raise ApplicationError("failing on purpose", non_retryable=True)


@workflow.defn(name="ObservabilityFailingWorkflow", sandboxed=False)
class FailingWorkflow:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.execute_activity(
                failing_activity,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except Exception as exc:
            raise ApplicationError("its activity failed, as meant", non_retryable=True) from exc
