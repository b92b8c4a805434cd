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
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.data_errors import DataRefusals
from activities.registry import Activities, build_activities
from activities.temporal_client import TemporalConfigError, connect_temporal, temporal_target
from observability.internal_server import InternalServer, probe_routes
from observability.logs import configure_logging
from observability.probes import Readiness, database_check, readiness, temporal_check
from observability.temporal_runtime import install_prometheus_runtime
from observability.tracing import tracing_from, with_interceptors
from settings import Settings, startup_settings
from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

log = logging.getLogger("contracting.worker")

DEFAULT_ACTIVITY_SLOTS = 20
"""Activities a worker runs at once unless told (`CONTRACTING_WORKER_ACTIVITY_SLOTS`): no more
than the connections its pool keeps (db.engine's default 10 + 10)."""


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    activity_slots: int = DEFAULT_ACTIVITY_SLOTS,
) -> Worker:
    """The worker for a client, running `activity_slots` activities at once; tests build it
    on the time-skipping server the same way.
    Data the database refuses fails its activity for good (`DataRefusals`), never in a loop."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=list(activities),
        max_concurrent_activities=activity_slots,
        interceptors=[DataRefusals()],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


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
    worker = build_worker(
        client, settings.task_queue, activities.all(), settings.worker_activity_slots
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %r on %s, payloads %s",
        settings.task_queue,
        temporal_target(settings).describe(),
        "encrypted" if settings.codec_keyring() else "in clear (no codec key)",
    )
    async with worker, AsyncExitStack() as probes:
        if settings.worker_health_port:
            await probes.enter_async_context(
                health_server(worker, client, activities, settings, settings.worker_health_port)
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
