"""The mission workflow `mission-<proposal_id>`: one per proposal, for the mission's whole life.

Stages: proposal → qualification → legal verification → to start → in progress
(⇄ renewal pending) → completed or terminated (or lost / cancelled, which end it early).

What the mission decides is in `domain/mission_rules.py` (pure: state and event in, the
transition out; its French texts in `domain/mission_texts.py`). This class sequences:

- Platform events are **updates** named after their event type (`proposal.retained`, …).
  Each validator decides the event on a copy of the state: a refusal (the gateway's 409)
  writes nothing, not even to history. The update id is the platform's `event_id`, so a
  re-sent event is deduplicated by Temporal too.
- Handlers apply the decision to the state and queue its `MissionTransition`; the main loop
  writes each one, in order, through one idempotent activity (state + timeline + outbox),
  then delivers its emails (`workflows/transitions.py`). Updates answer at once, and an SMTP
  outage never holds one.
- Timers (one `Deadline`): the QM reminder the day before the meeting, the start date, the
  first day of each month (its CRA cycle, opened by an activity), the provider's documents'
  expiry, the day after the end date. Legal verification reacts to the provider workflow's
  compliance signals; nothing polls.
- CRA cycles report to the mission by signal (`mission.cra_closed`); the mission tells the
  cycles still open of a validated month and of a new end date.
- Long life: the mission continues as new at each renewal and whenever Temporal suggests it,
  carrying its one state model in `MissionInput.state` and the emails still on their way
  (`undelivered_emails`: the next run delivers them; SMTP is never waited for). Cycles and
  payouts are workflows of their own: they survive it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain import mission_rules as rules
from domain.clock import paris_instant
from domain.errors import DomainError
from domain.mission_rules import FINAL_STAGES, RUNNING_STAGES, Context, Step
from schemas import search_attributes as sa
from schemas.activities import RecordProposalInput, TransitionResult
from schemas.compliance import ComplianceStatus, WatchRequest
from schemas.cra import CraClosed, MissionPeriodChanged, MonthValidated
from schemas.events import (
    ContractSigned,
    MissionTerminated,
    ProposalCancelled,
    ProposalLost,
    ProposalRated,
    ProposalRead,
    ProposalRetained,
    ProposalUpdated,
    PurchaseOrderConfirmed,
    QualificationMeetingHeld,
    QualificationMeetingScheduled,
    RenewalAccepted,
    RenewalDeclined,
    RenewalRequested,
    RenewalValidated,
    RfpClosed,
)
from schemas.ids import cra_workflow_id
from schemas.mission import (
    MissionInput,
    MissionResult,
    MissionState,
    MissionTransition,
    TimelineEntry,
    UpdateAccepted,
)
from schemas.names import (
    COMPLIANCE_CHANGED,
    CONTRACT_SIGNED,
    CRA_CLOSED,
    MISSION_PERIOD_CHANGED,
    MISSION_TERMINATED,
    MISSION_WORKFLOW,
    MONTH_VALIDATED,
    OPEN_CRA_CYCLE,
    PROPOSAL_CANCELLED,
    PROPOSAL_LOST,
    PROPOSAL_RATED,
    PROPOSAL_READ,
    PROPOSAL_RETAINED,
    PROPOSAL_UPDATED,
    PURCHASE_ORDER_CONFIRMED,
    QUALIFICATION_MEETING_HELD,
    QUALIFICATION_MEETING_SCHEDULED,
    RECORD_MISSION_TRANSITION,
    RECORD_PROPOSAL,
    RENEWAL_ACCEPTED,
    RENEWAL_DECLINED,
    RENEWAL_REQUESTED,
    RENEWAL_VALIDATED,
    RFP_CLOSED,
    STATE_QUERY,
    WATCH_PROVIDER,
)
from workflows.attributes import upsert_changed
from workflows.effects import tell
from workflows.options import local_db_activity
from workflows.timers import Deadline
from workflows.transitions import TransitionQueue, record_refusal
from workflows.validation import check, refuse

TIMELINE_KEPT = 60
"""Timeline entries carried over a continue-as-new (the whole timeline is in the database)."""

E = TypeVar("E")
Decision = Callable[[MissionState, E, Context], Step]


@workflow.defn(name=MISSION_WORKFLOW)
class MissionWorkflow:
    @workflow.init
    def __init__(self, inp: MissionInput) -> None:
        self._deadline = Deadline("next deadline of the mission")
        self._proposal = inp.proposal
        self._state = (
            inp.state.model_copy(update={"run": inp.state.run + 1})
            if inp.state
            else rules.initial_state(inp.proposal, inp.occurred_at)
        )
        self._effects = TransitionQueue[MissionTransition](self._write, self._refused)
        self._cra_opening: set[str] = set(self._state.cra_months)
        self._openings: list[asyncio.Future[None]] = []  # cycles being opened
        self._announcements: list[tuple[str, str, BaseModel]] = []
        self._continue_as_new_requested = False
        self._watch_requested = False
        self._wake = False

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, inp: MissionInput) -> MissionResult:
        self._effects.deliver(inp.undelivered_emails)  # the previous run's, still on their way
        if inp.state is None:
            recorded = await local_db_activity(
                RECORD_PROPOSAL,
                RecordProposalInput(
                    event_id=inp.event_id, occurred_at=inp.occurred_at, proposal=inp.proposal
                ),
                TransitionResult,
            )
            self._effects.deliver(recorded.outbox_keys)
        while True:
            await self._drain()
            self._progress()
            if self._effects:
                continue
            if self._state.stage in FINAL_STAGES:
                break
            if self._continue_as_new_due():
                await self._continue_as_new(inp)
                continue
            await self._sleep_until_woken_or(
                rules.next_deadline(self._state, workflow.now(), self._cra_opening)
            )
        await self._settle()
        return MissionResult(mission_id=self._state.mission_id, stage=self._state.stage)

    def _progress(self) -> None:
        """Act on what the state and the clock now allow: timers and automatic stages."""
        for step in rules.progress(self._state, self._context()):
            self._apply(step)
        if self._state.stage in RUNNING_STAGES:
            self._open_due_cras(workflow.now())

    def _continue_as_new_due(self) -> bool:
        """At each renewal and when Temporal suggests it, once no CRA cycle is being opened."""
        if self._state.stage not in RUNNING_STAGES:
            return False
        wanted = self._continue_as_new_requested or workflow.info().is_continue_as_new_suggested()
        return wanted and all(opening.done() for opening in self._openings)

    async def _continue_as_new(self, inp: MissionInput) -> None:
        """Finish every handler and write what is queued, then start the next run with the
        state and the emails still on their way (it delivers them; SMTP is not waited for);
        returns (to the main loop) only if new work arrived meanwhile."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        await workflow.wait_condition(self._effects.quiet)  # no e-mail attempt abandoned
        if self._effects or self._announcements or self._watch_requested:
            return
        state = self._state.model_copy(update={"timeline": self._state.timeline[-TIMELINE_KEPT:]})
        workflow.continue_as_new(
            inp.model_copy(
                update={
                    "proposal": self._proposal,
                    "state": state,
                    "undelivered_emails": self._effects.undelivered(),
                }
            )
        )

    async def _settle(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        await self._effects.delivered()

    async def _sleep_until_woken_or(self, deadline: datetime | None) -> None:
        self._wake = False
        # When the deadline passes first, `_progress` acts on it.
        await self._deadline.wait(deadline, lambda: self._wake or bool(self._effects))

    async def _drain(self) -> None:
        """Write the queued transitions, subscribe to the provider, then tell the cycles."""
        await self._effects.drain()
        if self._watch_requested:
            self._watch_requested = False
            await local_db_activity(
                WATCH_PROVIDER,
                WatchRequest(
                    mission_id=self._state.mission_id,
                    provider=rules.provider_ref(self._proposal),
                ),
            )
        while self._announcements:
            due: dict[str, list[tuple[str, BaseModel]]] = {}
            for month, signal, payload in self._announcements:
                if month not in self._state.validated_months:  # else it has closed since
                    due.setdefault(month, []).append((signal, payload))
            self._announcements = []
            await asyncio.gather(*(self._tell_cycle(month, told) for month, told in due.items()))

    async def _tell_cycle(self, month: str, told: list[tuple[str, BaseModel]]) -> None:
        """Tell a month's CRA cycle what changed, in order (`effects.tell`: a local activity
        each; the cycles are told side by side). A cycle already closed (terminated by ops,
        or completed before its `cra.closed` arrived) has nothing left to learn: logged, and
        the mission goes on."""
        workflow_id = cra_workflow_id(self._state.mission_id, month)
        for signal, payload in told:
            await tell(workflow_id, signal, payload)

    async def _write(self, transition: MissionTransition) -> list[str]:
        result = await local_db_activity(RECORD_MISSION_TRANSITION, transition, TransitionResult)
        return result.outbox_keys

    async def _refused(self, transition: MissionTransition, error: ApplicationError) -> list[str]:
        """A transition the database refused for good: logged, on the timeline, alerted to
        ops (`record_refusal`) and in the search attribute `FailedTransitions`; the mission
        goes on with its next transitions (the refused one stays unwritten: ops fix the data
        and complete it by hand, as the alert says)."""
        state = self._state
        if transition.kind not in state.failed_transitions:
            state.failed_transitions.append(transition.kind)
            upsert_changed([sa.FAILED_TRANSITIONS.value_set(list(state.failed_transitions))])
        state.timeline.append(
            TimelineEntry(
                at=workflow.now(), kind="transition.failed", detail=f"{transition.kind}: {error}"
            )
        )
        return await record_refusal(state.mission_id, transition.key, transition.kind, error)

    # ------------------------------------------------------------------ applying decisions

    def _context(self) -> Context:
        update = workflow.current_update_info()
        return Context(
            proposal=self._proposal,
            now=workflow.now(),
            update_id=None if update is None else update.id,
        )

    def _decide(self, decide: Decision[E], event: E) -> UpdateAccepted:
        """An update's handler: apply the decision its validator already accepted."""
        try:
            step = decide(self._state, event, self._context())
        except DomainError as exc:  # the state changed since the validator ran
            raise refuse(str(exc)) from exc
        return self._apply(step)

    def _validate(self, decide: Decision[E], event: E) -> None:
        """An update's validator: decide the event on a copy of the state, keep nothing."""
        check(lambda: decide(self._state.model_copy(deep=True), event, self._context()))

    def _apply(self, step: Step) -> UpdateAccepted:
        """Queue the step's transition, with its stage, search attributes and side requests."""
        state = self._state
        key = step.key
        if key is None:
            update = workflow.current_update_info()
            assert update is not None, "a transition outside an update needs a key"
            key = f"{step.kind}:{state.mission_id}:{update.id}"
        stage = rules.stage_change(state, step.stage)
        attributes = []
        if step.payment_offer is not None:
            attributes.append(sa.PAYMENT_OFFER.value_set(step.payment_offer.value))
        if stage is not None:
            state.stage = stage
            attributes.append(sa.MISSION_STAGE.value_set(stage.value))
        upsert_changed(attributes)
        self._watch_requested |= step.watch_provider
        self._continue_as_new_requested |= step.continue_as_new
        for period in step.period_changed:  # each open cycle learns the end it now bills to
            change = MissionPeriodChanged(mission_end=rules.cycle_bounds(state, period)[1])
            self._announce(period, MISSION_PERIOD_CHANGED, change)
        now = workflow.now()
        self._effects.put(
            MissionTransition(
                mission_id=state.mission_id,
                key=key,
                kind=step.kind,
                at=now,
                detail=step.detail,
                stage=stage,
                proposal_status=state.proposal_status,
                emails=step.emails,
                **step.changes,
            )
        )
        state.timeline.append(TimelineEntry(at=now, kind=step.kind, detail=step.detail))
        return UpdateAccepted(
            mission_id=state.mission_id, stage=state.stage, proposal_status=state.proposal_status
        )

    def _announce(self, month: str, signal: str, payload: BaseModel) -> None:
        """Queue a signal to the month's open cycle; the main loop sends it, unless the month
        is validated by then (several cycles closing at once: the cycle has closed)."""
        self._announcements.append((month, signal, payload))

    # ------------------------------------------------------------------ CRA cycles

    def _open_due_cras(self, now: datetime) -> None:
        while (month := rules.next_cra_month(self._state, self._cra_opening)) is not None:
            if now < paris_instant(rules.cra_opens_on(self._state, month)):
                return
            self._cra_opening.add(month)
            self._openings.append(asyncio.ensure_future(self._open_cra_cycle(month)))

    async def _open_cra_cycle(self, month: str) -> None:
        """One cycle per month, started by an idempotent activity; it outlives a
        continue-as-new, as does its payout. Routable once it exists, not before."""
        await local_db_activity(OPEN_CRA_CYCLE, rules.cra_input(self._state, self._proposal, month))
        self._state.cra_months.append(month)

    @workflow.signal(name=CRA_CLOSED)
    def cra_closed(self, event: CraClosed) -> None:
        """A cycle ended; cycles still open may now accept corrections of a validated month."""
        tell = rules.cra_closed(self._state, event)
        if event.month in self._state.validated_months:
            self._wake = True
        for other in tell:
            self._announce(other, MONTH_VALIDATED, MonthValidated(month=event.month))

    # ------------------------------------------------------------------ queries and signals

    @workflow.query(name=STATE_QUERY)
    def state(self) -> MissionState:
        return self._state

    @workflow.signal(name=COMPLIANCE_CHANGED)
    def provider_compliance_changed(self, status: ComplianceStatus) -> None:
        rules.compliance_changed(self._state, status)
        self._wake = True

    # ------------------------------------------------------------------ platform events

    @workflow.update(name=PROPOSAL_READ)
    def proposal_read(self, event: ProposalRead) -> UpdateAccepted:
        return self._decide(rules.proposal_read, event)

    @proposal_read.validator
    def _validate_read(self, event: ProposalRead) -> None:
        self._validate(rules.proposal_read, event)

    @workflow.update(name=PROPOSAL_RATED)
    def proposal_rated(self, event: ProposalRated) -> UpdateAccepted:
        return self._decide(rules.proposal_rated, event)

    @proposal_rated.validator
    def _validate_rated(self, event: ProposalRated) -> None:
        self._validate(rules.proposal_rated, event)

    @workflow.update(name=PROPOSAL_UPDATED)
    def proposal_updated(self, event: ProposalUpdated) -> UpdateAccepted:
        return self._decide(rules.proposal_updated, event)

    @proposal_updated.validator
    def _validate_updated(self, event: ProposalUpdated) -> None:
        self._validate(rules.proposal_updated, event)

    @workflow.update(name=PROPOSAL_CANCELLED)
    def proposal_cancelled(self, event: ProposalCancelled) -> UpdateAccepted:
        return self._decide(rules.proposal_cancelled, event)

    @proposal_cancelled.validator
    def _validate_cancelled(self, event: ProposalCancelled) -> None:
        self._validate(rules.proposal_cancelled, event)

    @workflow.update(name=QUALIFICATION_MEETING_SCHEDULED)
    def qm_scheduled(self, event: QualificationMeetingScheduled) -> UpdateAccepted:
        return self._decide(rules.qm_scheduled, event)

    @qm_scheduled.validator
    def _validate_qm_scheduled(self, event: QualificationMeetingScheduled) -> None:
        self._validate(rules.qm_scheduled, event)

    @workflow.update(name=QUALIFICATION_MEETING_HELD)
    def qm_held(self, event: QualificationMeetingHeld) -> UpdateAccepted:
        return self._decide(rules.qm_held, event)

    @qm_held.validator
    def _validate_qm_held(self, event: QualificationMeetingHeld) -> None:
        self._validate(rules.qm_held, event)

    @workflow.update(name=PROPOSAL_RETAINED)
    def proposal_retained(self, event: ProposalRetained) -> UpdateAccepted:
        return self._decide(rules.proposal_retained, event)

    @proposal_retained.validator
    def _validate_retained(self, event: ProposalRetained) -> None:
        self._validate(rules.proposal_retained, event)

    @workflow.update(name=PROPOSAL_LOST)
    def proposal_lost(self, event: ProposalLost) -> UpdateAccepted:
        return self._decide(rules.proposal_lost, event)

    @proposal_lost.validator
    def _validate_lost(self, event: ProposalLost) -> None:
        self._validate(rules.proposal_lost, event)

    @workflow.update(name=RFP_CLOSED)
    def rfp_closed(self, event: RfpClosed) -> UpdateAccepted:
        return self._decide(rules.rfp_closed, event)

    @rfp_closed.validator
    def _validate_rfp_closed(self, event: RfpClosed) -> None:
        self._validate(rules.rfp_closed, event)

    @workflow.update(name=PURCHASE_ORDER_CONFIRMED)
    def purchase_order_confirmed(self, event: PurchaseOrderConfirmed) -> UpdateAccepted:
        return self._decide(rules.purchase_order_confirmed, event)

    @purchase_order_confirmed.validator
    def _validate_purchase_order(self, event: PurchaseOrderConfirmed) -> None:
        self._validate(rules.purchase_order_confirmed, event)

    @workflow.update(name=CONTRACT_SIGNED)
    def contract_signed(self, event: ContractSigned) -> UpdateAccepted:
        return self._decide(rules.contract_signed, event)

    @contract_signed.validator
    def _validate_contract(self, event: ContractSigned) -> None:
        self._validate(rules.contract_signed, event)

    @workflow.update(name=RENEWAL_REQUESTED)
    def renewal_requested(self, event: RenewalRequested) -> UpdateAccepted:
        return self._decide(rules.renewal_requested, event)

    @renewal_requested.validator
    def _validate_renewal_requested(self, event: RenewalRequested) -> None:
        self._validate(rules.renewal_requested, event)

    @workflow.update(name=RENEWAL_ACCEPTED)
    def renewal_accepted(self, event: RenewalAccepted) -> UpdateAccepted:
        return self._decide(rules.renewal_accepted, event)

    @renewal_accepted.validator
    def _validate_renewal_accepted(self, event: RenewalAccepted) -> None:
        self._validate(rules.renewal_accepted, event)

    @workflow.update(name=RENEWAL_VALIDATED)
    def renewal_validated(self, event: RenewalValidated) -> UpdateAccepted:
        return self._decide(rules.renewal_validated, event)

    @renewal_validated.validator
    def _validate_renewal_validated(self, event: RenewalValidated) -> None:
        self._validate(rules.renewal_validated, event)

    @workflow.update(name=RENEWAL_DECLINED)
    def renewal_declined(self, event: RenewalDeclined) -> UpdateAccepted:
        return self._decide(rules.renewal_declined, event)

    @renewal_declined.validator
    def _validate_renewal_declined(self, event: RenewalDeclined) -> None:
        self._validate(rules.renewal_declined, event)

    @workflow.update(name=MISSION_TERMINATED)
    def mission_terminated(self, event: MissionTerminated) -> UpdateAccepted:
        return self._decide(rules.mission_terminated, event)

    @mission_terminated.validator
    def _validate_terminated(self, event: MissionTerminated) -> None:
        self._validate(rules.mission_terminated, event)
