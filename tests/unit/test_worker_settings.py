"""The worker's activity slots and its connection pool come from one setting; every other
option of the Worker (cache, slots, pollers) from its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum

from activities.registry import build_activities
from settings import Settings
from worker import DEFAULT_ACTIVITY_SLOTS, worker_options


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
