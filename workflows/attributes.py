"""Search attributes upserted only when they change.

Each upsert is a history event. The activity that starts a CRA cycle or a payout
(activities/starts.py) sets the attributes it already knows at the start; the workflow
upserts only what it holds differently (a workflow started otherwise, by a test or by
hand, still gets them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate


def upsert_changed(updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """Upsert the updates whose value differs from the workflow's current one, if any."""
    current = workflow.info().typed_search_attributes
    changed = [u for u in updates if current.get(u.key) != u.value]
    if changed:
        workflow.upsert_search_attributes(changed)
