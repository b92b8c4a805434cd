"""The worker's activity slots and its connection pool come from one setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.registry import build_activities
from settings import Settings
from worker import DEFAULT_ACTIVITY_SLOTS


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
