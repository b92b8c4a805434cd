"""Every recorded history under tests/histories/ replays against the current workflow code.

A change that running workflows would replay differently (a new activity, a reordered
timer) fails here. Before v1.0.0, re-record the histories it changes
(`RECORD_HISTORIES=<names>`); from v1.0.0 on, guard it with `workflow.patched()` and keep the
old histories (docs/design.md, "Changing workflow code").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert HISTORIES, "tests/histories/ holds no recorded workflow history"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
