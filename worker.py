"""The worker: every workflow and activity, the pydantic converter, a graceful shutdown.

Run it with `python -m worker` (the dev stack does) or `contracting worker`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    Worker,
)

from activities.data_errors import DataRefusals
from activities.registry import Activities, build_activities
from activities.temporal_client import connect_temporal
from settings import Settings, get_settings
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger("contracting.worker")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


DEFAULT_ACTIVITY_SLOTS = 20
"""Activities a worker runs at once unless told (`CONTRACTING_WORKER_ACTIVITY_SLOTS`): no more
than the connections its pool keeps (db.engine's default 10 + 10)."""


def worker_options(settings: Settings) -> dict[str, Any]:
    """The Worker's concurrency, cache and pollers from the `CONTRACTING_WORKER_*` settings
    (README, "Configuration"): one place, so that tuning a worker is configuration."""

    def pollers(maximum: int) -> PollerBehavior:
        if settings.worker_autoscale_pollers:
            return PollerBehaviorAutoscaling(minimum=1, maximum=maximum, initial=min(5, maximum))
        return PollerBehaviorSimpleMaximum(maximum=maximum)

    return {
        "max_concurrent_activities": settings.worker_activity_slots,
        "max_concurrent_workflow_tasks": settings.worker_workflow_task_slots,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "workflow_task_poller_behavior": pollers(settings.worker_workflow_task_pollers),
        "activity_task_poller_behavior": pollers(settings.worker_activity_task_pollers),
    }


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    activity_slots: int = DEFAULT_ACTIVITY_SLOTS,
    *,
    options: dict[str, Any] | None = None,
) -> Worker:
    """The worker for a client, running `activity_slots` activities at once unless
    `options` (`worker_options`) say otherwise; tests build it on the time-skipping server
    the same way.
    Data the database refuses fails its activity for good (`DataRefusals`), never in a loop."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=list(activities),
        interceptors=[DataRefusals()],
        graceful_shutdown_timeout=timedelta(seconds=10),
        **(options or {"max_concurrent_activities": activity_slots}),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then let running activities finish (up to 10 s)."""
    client = await connect_temporal(settings)
    activities: Activities = build_activities(settings, client)
    worker = build_worker(
        client, settings.task_queue, activities.all(), options=worker_options(settings)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %r on %s (namespace %s)",
        settings.task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
    )
    async with worker:
        await stop.wait()
        log.info("stopping: waiting for running activities to finish")
    await activities.close()
    log.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
