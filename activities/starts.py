"""Start the workflows that outlive the one that decides them: the month's CRA cycle (decided
by the mission) and the month's payout (decided by the CRA cycle).

They are started through the client rather than as child workflows: a mission continues as
new while its cycles run, a cycle completes long before its payout, and neither needs the
parent-child link (they report by signal and are found by their readable ids). It also keeps
the time-skipping test server working: it stops skipping time once a child closes after its
parent run did.

Each start is idempotent: a retried activity, or a workflow of that id that already ran (even
closed), starts nothing the second time.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.cra import CraInput
from schemas.ids import cra_workflow_id, payout_workflow_id
from schemas.names import CRA_WORKFLOW, OPEN_CRA_CYCLE, PAYOUT_WORKFLOW, START_PAYOUT
from schemas.payouts import PayoutInput
from schemas.search_attributes import MISSION_ID


class StartActivities:
    def __init__(self, task_queue: str, temporal: Client | None = None) -> None:
        self._task_queue = task_queue
        self._temporal = temporal

    @activity.defn(name=OPEN_CRA_CYCLE)
    async def open_cra_cycle(self, inp: CraInput) -> None:
        await self._start_once(
            CRA_WORKFLOW, inp, cra_workflow_id(inp.mission_id, inp.month), inp.mission_id
        )

    @activity.defn(name=START_PAYOUT)
    async def start_payout(self, inp: PayoutInput) -> None:
        await self._start_once(
            PAYOUT_WORKFLOW, inp, payout_workflow_id(inp.mission_id, inp.month), inp.mission_id
        )

    async def _start_once(self, workflow: str, arg: Any, workflow_id: str, mission: str) -> None:
        if self._temporal is None:
            raise RuntimeError(f"starting {workflow_id} needs a Temporal client (see Activities)")
        try:
            await self._temporal.start_workflow(
                workflow,
                arg,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(MISSION_ID, mission)]),
            )
        except WorkflowAlreadyStartedError:
            activity.logger.info("%s already ran: not started again", workflow_id)
