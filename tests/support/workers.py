"""A worker with the real activities (PostgreSQL, SMTP) on a task queue of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.data_errors import DataRefusals
from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from settings import Settings
from worker import DEFAULT_ACTIVITY_SLOTS
from workflows.bytecode import compile_workflow_modules
from workflows.registry import RESTRICTIONS, WORKFLOWS


class SandboxValidatedOnce(SandboxedWorkflowRunner):
    """The worker's sandbox (`workflows.registry.WORKFLOW_RUNNER`: the SDK's, the pure layers
    passed through), which runs every workflow of the tests, validating each workflow class
    once per test process. A Worker validates every workflow it registers by
    instantiating it in a fresh sandbox (~0.6 s for ours on 2 cores), the same work for every
    test that starts a worker; the workflows still run sandboxed, as in production."""

    _validated: ClassVar[set[type]] = set()

    def prepare_workflow(self, defn: workflow._Definition) -> None:
        if defn.cls not in self._validated:
            super().prepare_workflow(defn)
            self._validated.add(defn.cls)


WORKFLOW_RUNNER = SandboxValidatedOnce(restrictions=RESTRICTIONS)


def sandboxed_worker(client: Client, **options: Any) -> Worker:
    """A `Worker` of the tests: `options` as Worker's, the sandbox validated once, and, as
    the production worker (worker.build_worker), data errors final (`DataRefusals`)."""
    compile_workflow_modules()
    interceptors = [*options.pop("interceptors", []), DataRefusals()]
    options.setdefault("max_concurrent_activities", DEFAULT_ACTIVITY_SLOTS)
    return Worker(client, workflow_runner=WORKFLOW_RUNNER, interceptors=interceptors, **options)


def new_queue() -> str:
    return f"tq-{uuid.uuid4().hex}"


def replacing(real: list[Callable[..., Any]], *fakes: Callable[..., Any]) -> list[Any]:
    """The real activities, those named like one of `fakes` replaced by it."""
    names = {activity._Definition.must_from_callable(fn).name for fn in fakes}
    kept = [fn for fn in real if activity._Definition.must_from_callable(fn).name not in names]
    return [*kept, *fakes]


@asynccontextmanager
async def real_worker(
    env: WorkflowEnvironment,
    settings: Settings,
    *fakes: Callable[..., Any],
    queue: str | None = None,
) -> AsyncIterator[tuple[str, Activities]]:
    """Every workflow and the real activities (`fakes` replace theirs by name) on a new task
    queue of `env`, or on `queue` (workflows already waiting there, with no worker until
    now): (the queue, the activities)."""
    queue = queue or new_queue()
    settings = settings.model_copy(update={"task_queue": queue})
    activities = Activities(
        create_engine(settings.database_url),
        Mailer(settings),
        settings=settings,
        temporal=env.client,
    )
    try:
        async with sandboxed_worker(
            env.client,
            task_queue=queue,
            workflows=list(WORKFLOWS),
            activities=replacing(activities.all(), *fakes),
        ):
            yield queue, activities
    finally:
        await activities.close()
