"""The bare engine's floor: how many workflows per second the same Temporal server completes
when each does the least a validation does — wait for a signal, then run one activity that
does nothing — on a task queue and a worker (SDK defaults) of the benchmark's own."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

GO = "go"


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Nothing: the cost of scheduling, running and recording one activity."""


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    """Waits for `go`, then runs `noop` once."""

    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._go)
        await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=60))

    @workflow.signal(name=GO)
    def go(self) -> None:
        self._go = True


@dataclass(frozen=True)
class Floor:
    workflows: int
    elapsed: float

    @property
    def per_second(self) -> float:
        return self.workflows / self.elapsed


async def gather_bounded(jobs: list[object], parallel: int) -> None:
    """Await the coroutines `jobs`, at most `parallel` at a time (a client does not send
    thousands of RPCs at once)."""
    gate = asyncio.Semaphore(parallel)

    async def one(job: object) -> None:
        async with gate:
            await job  # type: ignore[misc]

    await asyncio.gather(*(one(j) for j in jobs))


async def measure_floor(client: Client, workflows: int, parallel: int = 100) -> Floor:
    """Start `workflows` floor workflows (all waiting), then signal them all at once and time
    until the last one completed."""
    queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
    ids = [f"bench-floor-{uuid.uuid4().hex}" for _ in range(workflows)]
    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[noop]):
        await gather_bounded(
            [client.start_workflow(FloorWorkflow.run, id=i, task_queue=queue) for i in ids],
            parallel,
        )
        handles = [client.get_workflow_handle(i) for i in ids]
        started = time.monotonic()
        await gather_bounded([h.signal(GO) for h in handles], parallel)
        await gather_bounded([h.result() for h in handles], parallel)
        return Floor(workflows, time.monotonic() - started)
