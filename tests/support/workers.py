"""A worker with the real activities (PostgreSQL, SMTP) on a task queue of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from settings import Settings
from workflows.registry import WORKFLOWS


def new_queue() -> str:
    return f"tq-{uuid.uuid4().hex}"


def replacing(real: list[Callable[..., Any]], *fakes: Callable[..., Any]) -> list[Any]:
    """The real activities, those named like one of `fakes` replaced by it."""
    names = {activity._Definition.must_from_callable(fn).name for fn in fakes}
    kept = [fn for fn in real if activity._Definition.must_from_callable(fn).name not in names]
    return [*kept, *fakes]


@asynccontextmanager
async def real_worker(
    env: WorkflowEnvironment, settings: Settings, *fakes: Callable[..., Any]
) -> AsyncIterator[tuple[str, Activities]]:
    """Every workflow and the real activities (`fakes` replace theirs by name) on a new task
    queue of `env`: (the queue, the activities)."""
    queue = new_queue()
    settings = settings.model_copy(update={"task_queue": queue})
    activities = Activities(
        create_engine(settings.database_url),
        Mailer(settings),
        settings=settings,
        temporal=env.client,
    )
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=list(WORKFLOWS),
            activities=replacing(activities.all(), *fakes),
        ):
            yield queue, activities
    finally:
        await activities.close()
