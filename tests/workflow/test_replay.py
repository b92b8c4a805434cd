"""Every recorded history under tests/histories/ replays against the current workflow code.

A change that running workflows would replay differently (a new activity, a reordered
timer) fails here. Before v1.0.0, re-record the histories it changes
(`RECORD_HISTORIES=<names>`); from v1.0.0 on, guard it with `workflow.patched()` and keep the
old histories (docs/design.md, "Changing workflow code").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.registry import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert HISTORIES, "tests/histories/ holds no recorded workflow history"


@pytest.fixture(scope="module")
async def replayed() -> dict[str, BaseException | None]:
    """Every history replayed by one replayer (one replay worker for all: ~1.5 s each
    otherwise), each history's failure or None, by file name."""

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in HISTORIES:
            yield WorkflowHistory.from_json(path.stem, path.read_text())

    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=WORKFLOW_RUNNER,
    )
    outcomes: list[BaseException | None] = []
    async with replayer.workflow_replay_iterator(histories()) as results:
        async for result in results:
            outcomes.append(result.replay_failure)
    assert len(outcomes) == len(HISTORIES), "the replayer skipped a history"
    return {path.stem: failure for path, failure in zip(HISTORIES, outcomes, strict=True)}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history_replays(path: Path, replayed: dict[str, BaseException | None]) -> None:
    failure = replayed[path.stem]
    if failure is not None:
        raise AssertionError(f"{path.name} no longer replays: {failure}") from failure
