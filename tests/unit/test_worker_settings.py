"""The worker's activity slots and its connection pool come from one setting; every other
option of the Worker (cache, slots, pollers) from its own; the task queues a worker polls come
from its role and the rendering's queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum

from activities.registry import build_activities
from schemas.names import ISSUE_BILLING_DOCUMENTS
from settings import Settings
from worker import DEFAULT_ACTIVITY_SLOTS, polled_queues, worker_options


async def test_the_pool_keeps_one_connection_per_activity_slot() -> None:
    assert Settings().worker_activity_slots == DEFAULT_ACTIVITY_SLOTS
    activities = build_activities(Settings(worker_activity_slots=7))
    try:
        assert activities._engine.pool.size() == 7  # type: ignore[attr-defined]
    finally:
        await activities.close()


@pytest.mark.parametrize("slots", [0, 201])
def test_activity_slots_out_of_range_are_refused(slots: int) -> None:
    with pytest.raises(ValidationError, match="worker_activity_slots"):
        Settings(worker_activity_slots=slots)


def _names(functions: Sequence[Callable[..., Any]]) -> set[str]:
    return {getattr(f, "__temporal_activity_definition").name for f in functions}


@pytest.mark.parametrize(
    ("role", "render_queue", "expected"),
    [
        ("all", None, [("contracting", True, True)]),
        ("main", None, [("contracting", True, True)]),  # nowhere else to render
        ("all", "render", [("contracting", True, False), ("render", False, True)]),
        ("main", "render", [("contracting", True, False)]),
        ("render", "render", [("render", False, True)]),
        ("render", None, [("contracting", False, True)]),
    ],
)
async def test_each_role_polls_its_queues(
    role: str, render_queue: str | None, expected: list[tuple[str, bool, bool]]
) -> None:
    """(queue, workflows, rendering) for each role: a render-only worker runs the rendering
    alone; the main worker leaves it to them only when it has a queue of its own."""
    settings = Settings(worker_role=role, render_task_queue=render_queue)
    activities = build_activities(settings)
    try:
        polled = polled_queues(settings, activities)
        seen = [
            (q.task_queue, q.workflows, ISSUE_BILLING_DOCUMENTS in _names(q.activities))
            for q in polled
        ]
        assert seen == expected
        for queue in polled:
            if not queue.workflows:  # a render-only queue: nothing but the rendering
                assert _names(queue.activities) == {ISSUE_BILLING_DOCUMENTS}
    finally:
        await activities.close()


def test_an_unknown_worker_role_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_role"):
        Settings(worker_role="renderer")


def test_the_worker_options_come_from_the_settings() -> None:
    settings = Settings(
        worker_activity_slots=12,
        worker_workflow_task_slots=30,
        worker_max_cached_workflows=400,
        worker_workflow_task_pollers=3,
        worker_activity_task_pollers=2,
    )
    options = worker_options(settings)
    assert options == {
        "max_concurrent_activities": 12,
        "max_concurrent_local_activities": 12,
        "max_concurrent_workflow_tasks": 30,
        "max_cached_workflows": 400,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(maximum=3),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(maximum=2),
    }


def test_autoscaled_pollers_keep_their_maximum() -> None:
    options = worker_options(
        Settings(worker_autoscale_pollers=True, worker_workflow_task_pollers=8)
    )
    assert options["workflow_task_poller_behavior"] == PollerBehaviorAutoscaling(
        minimum=1, maximum=8, initial=5
    )
    assert options["activity_task_poller_behavior"] == PollerBehaviorAutoscaling(
        minimum=1, maximum=5, initial=5
    )


def test_the_worker_options_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTRACTING_WORKER_MAX_CACHED_WORKFLOWS", "250")
    monkeypatch.setenv("CONTRACTING_WORKER_WORKFLOW_TASK_SLOTS", "50")
    options = worker_options(Settings())
    assert (options["max_cached_workflows"], options["max_concurrent_workflow_tasks"]) == (250, 50)


def test_no_cache_is_allowed_one_workflow_poller_is_not() -> None:
    # no cache at all is allowed (every task replays its history)...
    assert worker_options(Settings(worker_max_cached_workflows=0))["max_cached_workflows"] == 0
    # ...one workflow poller is not: the SDK needs a sticky and a normal one
    with pytest.raises(ValidationError, match="worker_workflow_task_pollers"):
        Settings(worker_workflow_task_pollers=1)
