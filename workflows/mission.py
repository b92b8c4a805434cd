"""The mission workflow `mission-<proposal_id>`: one per proposal, for the mission's whole life.

This first stage records the proposal and notifies both sides; the stages that follow
(qualification, legal verification, CRAs, renewals) arrive as signals and updates.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from schemas.activities import (
    DELIVER_OUTBOX,
    RECORD_PROPOSAL,
    DeliverOutboxInput,
    DeliverOutboxResult,
    RecordProposalInput,
    TransitionResult,
)
from schemas.enums import MissionStage, ProposalStatus
from schemas.mission import MissionInput, MissionResult, MissionState, TimelineEntry

FINAL_STAGES = frozenset(
    {MissionStage.COMPLETED, MissionStage.LOST, MissionStage.CANCELLED, MissionStage.TERMINATED}
)

# A database write is short; transient faults retry (bad input is raised non-retryable).
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# SMTP may be down for a while: keep retrying, backing off to 10 minutes between attempts.
MAIL_TIMEOUT = timedelta(minutes=2)
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10))


@workflow.defn(name="MissionWorkflow")
class MissionWorkflow:
    @workflow.init
    def __init__(self, inp: MissionInput) -> None:
        proposal = inp.proposal
        self._state = MissionState(
            mission_id=proposal.proposal_id,
            rfp_id=proposal.rfp_id,
            client_id=proposal.client.id,
            provider_siren=proposal.provider.siren,
            stage=MissionStage.PROPOSAL,
            proposal_status=ProposalStatus.SENT,
            tjm=proposal.tjm,
            start_date=proposal.start_date,
            end_date=proposal.end_date,
        )

    @workflow.run
    async def run(self, inp: MissionInput) -> MissionResult:
        recorded = await workflow.execute_activity(
            RECORD_PROPOSAL,
            RecordProposalInput(
                event_id=inp.event_id, occurred_at=inp.occurred_at, proposal=inp.proposal
            ),
            result_type=TransitionResult,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._note("proposal.submitted", f"TJM {inp.proposal.tjm} €")
        await self._deliver(recorded)
        await workflow.wait_condition(lambda: self._state.stage in FINAL_STAGES)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return MissionResult(mission_id=self._state.mission_id, stage=self._state.stage)

    @workflow.query
    def state(self) -> MissionState:
        return self._state

    async def _deliver(self, transition: TransitionResult) -> None:
        if transition.outbox_keys:
            await workflow.execute_activity(
                DELIVER_OUTBOX,
                DeliverOutboxInput(keys=transition.outbox_keys),
                result_type=DeliverOutboxResult,
                start_to_close_timeout=MAIL_TIMEOUT,
                retry_policy=MAIL_RETRY,
            )

    def _note(self, kind: str, detail: str = "") -> None:
        self._state.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, detail=detail))
