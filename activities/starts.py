"""Start the workflows that outlive the one that decides them: the month's CRA cycle (decided
by the mission) and the month's payout (decided by the CRA cycle); and signal them
(`signal_workflow`: the mission and its cycles tell each other what changed through a local
activity, one marker event, rather than an external signal's two events and task).

They are started through the client rather than as child workflows: a mission continues as
new while its cycles run, a cycle completes long before its payout, and neither needs the
parent-child link (they report by signal and are found by their readable ids). It also keeps
the time-skipping test server working: it stops skipping time once a child closes after its
parent run did.

Each start is idempotent: a retried activity, or a workflow of that id that already ran (even
closed), starts nothing the second time.

The search attributes the started workflow would upsert first (its mission, client,
provider, offer; a payout's `NextPayoutDate` when its date is known) are set at its start:
an upsert is a history event, a start's attributes are not (workflows/attributes.py).
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
from temporalio.service import RPCError, RPCStatusCode

from domain.clock import paris_instant
from domain.payouts import PAY_AT
from schemas import search_attributes as sa
from schemas.activities import SignalInput
from schemas.cra import CraInput
from schemas.enums import PayoutStatus
from schemas.ids import cra_workflow_id, payout_workflow_id
from schemas.names import (
    CRA_WORKFLOW,
    OPEN_CRA_CYCLE,
    PAYOUT_WORKFLOW,
    SIGNAL_WORKFLOW,
    START_PAYOUT,
)
from schemas.payouts import PayoutInput


class StartActivities:
    def __init__(self, task_queue: str, temporal: Client | None = None) -> None:
        self._task_queue = task_queue
        self._temporal = temporal

    @activity.defn(name=OPEN_CRA_CYCLE)
    async def open_cra_cycle(self, inp: CraInput) -> None:
        attributes = [
            SearchAttributePair(sa.MISSION_ID, inp.mission_id),
            SearchAttributePair(sa.CLIENT_ID, inp.client_id),
            SearchAttributePair(sa.PROVIDER_ID, inp.provider.siren),
            SearchAttributePair(sa.PAYMENT_OFFER, inp.payment_offer.value),
        ]
        await self._start_once(
            CRA_WORKFLOW, inp, cra_workflow_id(inp.mission_id, inp.month), attributes
        )

    @activity.defn(name=START_PAYOUT)
    async def start_payout(self, inp: PayoutInput) -> None:
        terms = inp.terms
        attributes: list[SearchAttributePair[Any]] = [
            SearchAttributePair(sa.MISSION_ID, inp.mission_id),
            SearchAttributePair(sa.PAYMENT_OFFER, terms.offer.value),
        ]
        if (
            inp.invoice_number is not None
            and terms.status is PayoutStatus.SCHEDULED
            and terms.payout_date is not None
        ):  # the date it waits for from its start (workflows/payout.py)
            at = paris_instant(terms.payout_date, PAY_AT)
            attributes.append(SearchAttributePair(sa.NEXT_PAYOUT_DATE, at))
        await self._start_once(
            PAYOUT_WORKFLOW, inp, payout_workflow_id(inp.mission_id, inp.month), attributes
        )

    @activity.defn(name=SIGNAL_WORKFLOW)
    async def signal_workflow(self, inp: SignalInput) -> bool:
        """Signal the workflow's current run; False when it has closed (nothing left to tell:
        a cycle completed, a mission ended), which the sender only logs. The receiving
        handlers are idempotent: a signal repeated by a retried workflow task changes
        nothing twice."""
        client = self._client(inp.workflow_id)
        try:
            await client.get_workflow_handle(inp.workflow_id).signal(inp.signal, inp.payload)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            activity.logger.warning("%s not told %s: %s", inp.workflow_id, inp.signal, exc)
            return False
        return True

    def _client(self, workflow_id: str) -> Client:
        if self._temporal is None:
            raise RuntimeError(f"reaching {workflow_id} needs a Temporal client (see Activities)")
        return self._temporal

    async def _start_once(
        self,
        workflow: str,
        arg: Any,
        workflow_id: str,
        attributes: list[SearchAttributePair[Any]],
    ) -> None:
        try:
            await self._client(workflow_id).start_workflow(
                workflow,
                arg,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(attributes),
            )
        except WorkflowAlreadyStartedError:
            activity.logger.info("%s already ran: not started again", workflow_id)
