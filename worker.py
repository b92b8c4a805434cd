"""The worker: every workflow and activity, the pydantic converter, a graceful shutdown.

Run it with `python -m worker` (the dev stack does) or `contracting worker`. It serves the
Temporal SDK's metrics on `CONTRACTING_METRICS_PORT`, `/health` and `/ready` on
`CONTRACTING_WORKER_HEALTH_PORT`, and traces when `CONTRACTING_OTLP_ENDPOINT` is set.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
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
from activities.temporal_client import TemporalConfigError, connect_temporal, temporal_target
from observability.internal_server import InternalServer, probe_routes
from observability.logs import configure_logging
from observability.probes import Readiness, database_check, readiness, temporal_check
from observability.temporal_runtime import install_prometheus_runtime
from observability.tracing import tracing_from, with_interceptors
from settings import Settings, startup_settings
from workflows.bytecode import compile_workflow_modules
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger("contracting.worker")

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
        # The transitions run as local activities (workflows/options.py): as many at once as
        # the pool has connections for, like the regular ones, never 100 waiting on 20.
        "max_concurrent_local_activities": settings.worker_activity_slots,
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
    compile_workflow_modules()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=list(activities),
        interceptors=[DataRefusals()],
        graceful_shutdown_timeout=timedelta(seconds=10),
        **(
            options
            or {
                "max_concurrent_activities": activity_slots,
                "max_concurrent_local_activities": activity_slots,
            }
        ),
    )


def build_render_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    activity_slots: int = DEFAULT_ACTIVITY_SLOTS,
) -> Worker:
    """A worker of the render task queue: the billing documents' rendering alone, no
    workflow (CPU-bound: run as many of these processes as there are cores to spare)."""
    return Worker(
        client,
        task_queue=task_queue,
        activities=list(activities),
        max_concurrent_activities=activity_slots,
        interceptors=[DataRefusals()],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


@dataclass(frozen=True)
class Polled:
    """One task queue a worker process polls: its activities, and the workflows or not."""

    task_queue: str
    activities: list[Callable[..., Any]]
    workflows: bool


def polled_queues(settings: Settings, activities: Activities) -> list[Polled]:
    """The task queues of `settings.worker_role`: `all` polls the main task queue and, when
    the rendering has a queue of its own, that one too; `main` leaves that queue to
    render-only workers (with no queue of its own, the rendering stays on the main one);
    `render` polls only the rendering's queue."""
    own_queue = settings.render_task_queue not in (None, settings.task_queue)
    polled = []
    if settings.worker_role != "render":
        main = activities.main() if own_queue else activities.all()
        polled.append(Polled(settings.task_queue, main, workflows=True))
    if settings.worker_role == "render" or (own_queue and settings.worker_role == "all"):
        polled.append(Polled(settings.rendering_task_queue, activities.rendering(), False))
    return polled


def _workers(settings: Settings, client: Client, activities: Activities) -> list[Worker]:
    slots = settings.worker_activity_slots
    return [
        build_worker(client, queue.task_queue, queue.activities, options=worker_options(settings))
        if queue.workflows
        else build_render_worker(client, queue.task_queue, queue.activities, slots)
        for queue in polled_queues(settings, activities)
    ]


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then let running activities finish (up to 10 s)."""
    if settings.metrics_port:
        # Before the client connects: the worker's metrics come from its client's runtime.
        install_prometheus_runtime(f"{settings.metrics_host}:{settings.metrics_port}")
    tracing = tracing_from(settings.otlp_endpoint, "contracting-worker")
    client = with_interceptors(
        await connect_temporal(settings), [tracing.interceptor()] if tracing else []
    )
    activities: Activities = build_activities(settings, client)
    workers = _workers(settings, client, activities)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker (%s) polling task queue(s) %s on %s, payloads %s",
        settings.worker_role,
        ", ".join(repr(w.task_queue) for w in workers),
        temporal_target(settings).describe(),
        "encrypted" if settings.codec_keyring() else "in clear (no codec key)",
    )
    async with AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        if settings.worker_health_port:  # ready while its first queue's worker polls
            await running.enter_async_context(
                health_server(workers[0], client, activities, settings, settings.worker_health_port)
            )
        await stop.wait()
        log.info("stopping: waiting for running activities to finish")
    await activities.close()
    if tracing is not None:
        tracing.shutdown()
    log.info("worker stopped")


def health_server(
    worker: Worker, client: Client, activities: Activities, settings: Settings, port: int
) -> InternalServer:
    """`/health` (the process answers) and `/ready` (polling, Temporal and the database
    reachable) on `port`, for an orchestrator's probes."""

    async def ready() -> Readiness:
        async def polling() -> None:
            if not worker.is_running:
                raise RuntimeError("the worker is not polling")

        return await readiness(
            {
                "worker": polling,
                "temporal": temporal_check(client, settings.readiness_timeout_seconds),
                "database": database_check(activities.sessions),
            },
            within=settings.readiness_timeout_seconds,
        )

    return InternalServer(probe_routes(ready), settings.metrics_host, port)


def main() -> None:
    settings = startup_settings()
    configure_logging(settings.log_format)
    try:
        asyncio.run(run_worker(settings))
    except TemporalConfigError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
