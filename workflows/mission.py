"""The mission workflow `mission-<proposal_id>`: one per proposal, for the mission's whole life.

Stages: proposal → qualification → legal verification → to start → in progress
(⇄ renewal pending) → completed or terminated (or lost / cancelled, which end it early).

- Platform events are **updates** named after their event type (`proposal.retained`, …).
  Each validator asks `domain/` whether the event applies; a refusal (the gateway's 409)
  writes nothing, not even to history. The update id is the platform's `event_id`, so a
  re-sent event is deduplicated by Temporal too.
- Handlers change the in-memory state and queue a `MissionTransition`; the main loop writes
  each one, in order, through one idempotent activity (state + timeline + outbox), then
  delivers its emails. Updates therefore answer at once, and an SMTP outage never holds one.
- Timers: the QM reminder the day before the meeting (moved when the QM is rescheduled), the
  start date, the first day of each month (its CRA cycle, a child), the day after the end
  date. Legal verification reacts to the provider workflow's compliance signals; nothing
  polls.
- Renewal: requested (client) → accepted (provider, the only time the offer may change) →
  validated (client approver) → effective once the provider is compliant: a new contract
  version governs the months of the renewed period (domain/renewals.py). An early
  termination moves the end date; the open month's cycle is told its new pro rata.
- End: the day after the end date, once every month's CRA is validated, the mission completes
  (or ends as terminated); its payouts go on as workflows of their own.
- Long life: CRA cycles report to the mission by signal (`mission.cra_closed`), so the
  mission continues as new at each renewal and whenever Temporal suggests it, carrying its
  one state model in `MissionInput.state`. Cycles and payouts are ABANDON children: they
  survive it.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from domain import proposals as rules
from domain.clock import paris_date, paris_instant
from domain.cra import mission_months, month_bounds, month_of
from domain.offers import check_offer_eligibility, offer_rule
from domain.renewals import (
    check_declinable,
    check_renewal_offer,
    check_renewal_request,
    check_renewal_step,
    check_termination,
    renewed_period_start,
)
from schemas import search_attributes as sa
from schemas.activities import (
    OPEN_CRA_CYCLE,
    RECORD_MISSION_TRANSITION,
    RECORD_PROPOSAL,
    WATCH_PROVIDER,
    RecordProposalInput,
    TransitionResult,
)
from schemas.compliance import COMPLIANCE_CHANGED, ComplianceStatus, ProviderRef, WatchRequest
from schemas.cra import (
    CRA_CLOSED,
    CRA_WORKFLOW,
    MISSION_PERIOD_CHANGED,
    MONTH_VALIDATED,
    CraClosed,
    CraInput,
    CraProvider,
    CraResult,
    MissionPeriodChanged,
    MonthValidated,
)
from schemas.enums import CraStatus, MissionStage, PaymentOffer, ProposalStatus, RenewalStep
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
    ContractTerms,
    EmailSpec,
    MissionInput,
    MissionResult,
    MissionState,
    MissionTransition,
    Renewal,
    Role,
    Termination,
    TimelineEntry,
    UpdateAccepted,
)
from workflows.effects import DB_RETRY, DB_TIMEOUT, deliver_outbox
from workflows.timers import Deadline
from workflows.validation import check, occurred, refuse

FINAL_STAGES = frozenset(
    {MissionStage.COMPLETED, MissionStage.LOST, MissionStage.CANCELLED, MissionStage.TERMINATED}
)

QM_REMINDER_BEFORE = timedelta(days=1)

RUNNING_STAGES = frozenset({MissionStage.IN_PROGRESS, MissionStage.RENEWAL_PENDING})

# Missions that reached "in progress" before this change open no CRA cycle on replay.
MONTHLY_CRA_PATCH = "monthly-cra-cycle"
# Missions begun before these changes keep awaiting their CRA children and never end by date.
CRA_BY_SIGNAL_PATCH = "cra-cycles-report-by-signal"
# Cycles are started by an activity, not as children (activities/starts.py says why).
CRA_BY_ACTIVITY_PATCH = "cra-cycles-started-by-activity"
MISSION_END_PATCH = "mission-ends-after-end-date"

TIMELINE_KEPT = 60
"""Timeline entries carried over a continue-as-new (the whole timeline is in the database)."""


@workflow.defn(name="MissionWorkflow")
class MissionWorkflow:
    @workflow.init
    def __init__(self, inp: MissionInput) -> None:
        self._deadline = Deadline("next deadline of the mission")
        proposal = inp.proposal
        self._proposal = proposal
        self._state = (
            inp.state.model_copy(update={"run": inp.state.run + 1})
            if inp.state
            else MissionState(
                mission_id=proposal.proposal_id,
                rfp_id=proposal.rfp_id,
                client_id=proposal.client.id,
                provider_siren=proposal.provider.siren,
                stage=MissionStage.PROPOSAL,
                proposal_status=ProposalStatus.SENT,
                tjm=proposal.tjm,
                start_date=proposal.start_date,
                end_date=proposal.end_date,
                timeline=[
                    TimelineEntry(
                        at=inp.occurred_at,
                        kind="proposal.submitted",
                        detail=f"TJM {proposal.tjm} €",
                    )
                ],
            )
        )
        self._effects: list[MissionTransition] = []
        self._deliveries: list[asyncio.Future[None]] = []
        self._cycles: list[asyncio.Future[None]] = []
        self._cra_opening: set[str] = set(self._state.cra_months)
        self._announcements: list[tuple[str, str, Any]] = []
        self._continue_as_new_requested = False
        self._watch_requested = False
        self._wake = False
        self._qm_reminded_for: datetime | None = None

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, inp: MissionInput) -> MissionResult:
        if inp.state is None:
            recorded = await workflow.execute_activity(
                RECORD_PROPOSAL,
                RecordProposalInput(
                    event_id=inp.event_id, occurred_at=inp.occurred_at, proposal=inp.proposal
                ),
                result_type=TransitionResult,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            await self._deliver(recorded)
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
            await self._sleep_until_woken_or(self._next_deadline())
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        await self._deliveries_done()
        return MissionResult(mission_id=self._state.mission_id, stage=self._state.stage)

    def _continue_as_new_due(self) -> bool:
        """At each renewal and when Temporal suggests it, once no CRA cycle is being started
        or awaited the old way (cycles begun before `CRA_BY_SIGNAL_PATCH`)."""
        if self._state.stage not in RUNNING_STAGES:
            return False
        wanted = self._continue_as_new_requested or workflow.info().is_continue_as_new_suggested()
        return wanted and all(cycle.done() for cycle in self._cycles)

    async def _continue_as_new(self, inp: MissionInput) -> None:
        """Finish every handler, write and deliver what is queued, then start the next run
        with the state; returns (to the main loop) only if new work arrived meanwhile."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        await self._deliveries_done()
        if self._effects or self._announcements or self._watch_requested:
            return
        state = self._state.model_copy(update={"timeline": self._state.timeline[-TIMELINE_KEPT:]})
        workflow.continue_as_new(
            MissionInput(
                event_id=inp.event_id,
                occurred_at=inp.occurred_at,
                proposal=self._proposal,
                state=state,
            )
        )

    async def _sleep_until_woken_or(self, deadline: datetime | None) -> None:
        self._wake = False
        # When the deadline passes first, `_progress` acts on it.
        await self._deadline.wait(deadline, lambda: self._wake or bool(self._effects))

    async def _drain(self) -> None:
        """Write the queued transitions in order: one activity each, then their emails."""
        while self._effects:
            transition = self._effects.pop(0)
            result = await workflow.execute_activity(
                RECORD_MISSION_TRANSITION,
                transition,
                result_type=TransitionResult,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            await self._deliver(result)
        if self._watch_requested:
            self._watch_requested = False
            await workflow.execute_activity(
                WATCH_PROVIDER,
                WatchRequest(mission_id=self._state.mission_id, provider=self._provider_ref()),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
        while self._announcements:
            workflow_id, signal, payload = self._announcements.pop(0)
            await workflow.get_external_workflow_handle(workflow_id).signal(signal, payload)

    async def _deliver(self, transition: TransitionResult) -> None:
        """Send a transition's emails in the background: an SMTP outage never holds the next
        transitions; the run waits for every delivery before it ends."""
        if transition.outbox_keys:
            self._deliveries.append(asyncio.ensure_future(deliver_outbox(transition.outbox_keys)))

    async def _deliveries_done(self) -> None:
        while self._deliveries:
            await self._deliveries.pop(0)

    def _progress(self) -> None:
        """Act on what the state and the clock now allow: timers and automatic stages."""
        now = workflow.now()
        stage = self._state.stage
        if stage is MissionStage.QUALIFICATION:
            self._maybe_remind_qm(now)
        elif stage is MissionStage.LEGAL_VERIFICATION and self._state.legal.complete:
            self._to_start()
        elif stage is MissionStage.TO_START and now >= paris_instant(self._state.start_date):
            self._start(now)
        elif stage in RUNNING_STAGES:
            self._watch_compliance(now)
            self._maybe_renew(now)
            if workflow.patched(MONTHLY_CRA_PATCH):
                self._open_due_cras(now)
            self._maybe_end(now)

    def _next_deadline(self) -> datetime | None:
        stage = self._state.stage
        if stage is MissionStage.QUALIFICATION and self._qm_reminder_pending():
            assert self._state.qualification_meeting_at is not None
            return self._state.qualification_meeting_at - QM_REMINDER_BEFORE
        if stage is MissionStage.TO_START:
            return paris_instant(self._state.start_date)
        if stage not in RUNNING_STAGES:
            return None
        deadlines = []
        until = self._state.legal.provider_valid_until
        if until and not self._state.compliance_alert:
            deadlines.append(paris_instant(until))
        next_month = self._next_cra_month()
        if next_month is not None and workflow.patched(MONTHLY_CRA_PATCH):
            deadlines.append(paris_instant(self._cra_opens_on(next_month)))
        after_end = paris_instant(self._state.end_date + timedelta(days=1))
        if workflow.now() < after_end and workflow.patched(MISSION_END_PATCH):
            deadlines.append(after_end)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------ queries and signals

    @workflow.query
    def state(self) -> MissionState:
        return self._state

    @workflow.signal(name=COMPLIANCE_CHANGED)
    def provider_compliance_changed(self, status: ComplianceStatus) -> None:
        legal = self._state.legal
        legal.provider_compliant = status.compliant
        legal.provider_missing = list(status.missing)
        legal.provider_valid_until = status.valid_until
        self._wake = True

    # ------------------------------------------------------------------ proposal stage

    @workflow.update(name="proposal.read")
    def proposal_read(self, event: ProposalRead) -> UpdateAccepted:
        self._state.proposal_status = rules.on_read(self._state.proposal_status)
        return self._record("proposal.read", emails=[self._email("provider", "proposal_read")])

    @proposal_read.validator
    def _validate_read(self, event: ProposalRead) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_read(self._state.proposal_status))

    @workflow.update(name="proposal.rated")
    def proposal_rated(self, event: ProposalRated) -> UpdateAccepted:
        status = rules.on_rated(self._state.proposal_status, event.interesting)
        self._state.proposal_status = status
        return self._record(
            "proposal.rated",
            detail=rules.label(status),
            emails=[self._email("provider", "proposal_rated", interesting=event.interesting)],
        )

    @proposal_rated.validator
    def _validate_rated(self, event: ProposalRated) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_rated(self._state.proposal_status, event.interesting))

    @workflow.update(name="proposal.updated")
    def proposal_updated(self, event: ProposalUpdated) -> UpdateAccepted:
        previous = self._state.tjm
        self._state.tjm = event.tjm
        return self._record(
            "proposal.updated",
            detail=f"TJM {previous} € → {event.tjm} €",
            tjm=event.tjm,
            emails=[self._email("client", "proposal_tjm_updated", previous_tjm=str(previous))],
        )

    @proposal_updated.validator
    def _validate_updated(self, event: ProposalUpdated) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_tjm_updated(self._state.proposal_status))
        if event.tjm <= 0:
            raise refuse("the new TJM must be greater than zero")
        if event.tjm == self._state.tjm:
            raise refuse(f"the TJM is already {event.tjm} €")

    @workflow.update(name="proposal.cancelled")
    def proposal_cancelled(self, event: ProposalCancelled) -> UpdateAccepted:
        self._state.proposal_status = rules.on_cancelled(self._state.proposal_status)
        self._state.cancel_reason = event.reason
        return self._record(
            "proposal.cancelled",
            detail=event.reason,
            cancel_reason=event.reason,
            emails=[self._email("client", "proposal_cancelled", reason=event.reason)],
        )

    @proposal_cancelled.validator
    def _validate_cancelled(self, event: ProposalCancelled) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_cancelled(self._state.proposal_status))

    @workflow.update(name="qualification_meeting.scheduled")
    def qm_scheduled(self, event: QualificationMeetingScheduled) -> UpdateAccepted:
        rescheduled = self._state.qualification_meeting_at is not None
        self._state.proposal_status = rules.on_qm_scheduled(
            self._state.proposal_status, event.at, workflow.now()
        )
        self._state.qualification_meeting_at = event.at
        self._state.qualification_meeting_held = False
        context = {"qm_at": event.at.isoformat(), "rescheduled": rescheduled}
        return self._record(
            "qualification_meeting.scheduled",
            detail=event.at.isoformat(),
            qualification_meeting_at=event.at,
            emails=[
                self._email("provider", "qm_scheduled", **context),
                self._email("client", "qm_scheduled", **context),
            ],
        )

    @qm_scheduled.validator
    def _validate_qm_scheduled(self, event: QualificationMeetingScheduled) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_qm_scheduled(self._state.proposal_status, event.at, workflow.now()))

    @workflow.update(name="qualification_meeting.held")
    def qm_held(self, event: QualificationMeetingHeld) -> UpdateAccepted:
        self._state.qualification_meeting_held = True
        return self._record("qualification_meeting.held")

    @qm_held.validator
    def _validate_qm_held(self, event: QualificationMeetingHeld) -> None:
        self._check_target(event.proposal_id)
        check(
            lambda: rules.on_qm_held(
                self._state.proposal_status,
                self._state.qualification_meeting_at is not None,
                self._state.qualification_meeting_held,
            )
        )

    def _qm_reminder_pending(self) -> bool:
        at = self._state.qualification_meeting_at
        return (
            at is not None
            and not self._state.qualification_meeting_held
            and self._qm_reminded_for != at
            and at > workflow.now()
        )

    def _maybe_remind_qm(self, now: datetime) -> None:
        at = self._state.qualification_meeting_at
        if at is None or not self._qm_reminder_pending() or now < at - QM_REMINDER_BEFORE:
            return
        self._qm_reminded_for = at
        context = {"qm_at": at.isoformat()}
        self._record(
            "qualification_meeting.reminder",
            key=f"qualification_meeting.reminder:{self._state.mission_id}:{at.isoformat()}",
            detail=at.isoformat(),
            emails=[
                self._email("provider", "qm_reminder", **context),
                self._email("client", "qm_reminder", **context),
            ],
        )

    @workflow.update(name="proposal.retained")
    def proposal_retained(self, event: ProposalRetained) -> UpdateAccepted:
        self._state.proposal_status = rules.on_retained(self._state.proposal_status)
        self._watch_requested = True
        return self._record(
            "proposal.retained",
            detail="Vérification légale en cours",
            emails=[
                self._email("provider", "proposal_retained"),
                self._email("client", "proposal_retained_client"),
            ],
        )

    @proposal_retained.validator
    def _validate_retained(self, event: ProposalRetained) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_retained(self._state.proposal_status))

    @workflow.update(name="proposal.lost")
    def proposal_lost(self, event: ProposalLost) -> UpdateAccepted:
        self._state.proposal_status = rules.on_lost(self._state.proposal_status)
        return self._record(
            "proposal.lost",
            emails=[self._email("provider", "proposal_lost", rfp_closed=False)],
        )

    @proposal_lost.validator
    def _validate_lost(self, event: ProposalLost) -> None:
        self._check_target(event.proposal_id)
        check(lambda: rules.on_lost(self._state.proposal_status))

    @workflow.update(name="rfp.closed")
    def rfp_closed(self, event: RfpClosed) -> UpdateAccepted:
        status = rules.on_rfp_closed(self._state.proposal_status)
        self._state.rfp_closed = True
        if status is ProposalStatus.RETAINED:
            return self._record(
                "rfp.closed", emails=[self._email("provider", "rfp_closed_retained")]
            )
        self._state.proposal_status = status
        return self._record(
            "rfp.closed",
            detail="AO clôturé : proposition non retenue",
            emails=[self._email("provider", "proposal_lost", rfp_closed=True)],
        )

    @rfp_closed.validator
    def _validate_rfp_closed(self, event: RfpClosed) -> None:
        if event.rfp_id != self._state.rfp_id:
            raise refuse(f"this proposal answers RFP {self._state.rfp_id}, not {event.rfp_id}")
        if self._state.rfp_closed:
            raise refuse(f"RFP {event.rfp_id} was already closed for this proposal")
        check(lambda: rules.on_rfp_closed(self._state.proposal_status))

    # ------------------------------------------------------------------ legal verification

    @workflow.update(name="purchase_order.confirmed")
    def purchase_order_confirmed(self, event: PurchaseOrderConfirmed) -> UpdateAccepted:
        self._state.legal.purchase_order = event.po_number
        return self._record(
            "purchase_order.confirmed", detail=event.po_number, purchase_order=event.po_number
        )

    @purchase_order_confirmed.validator
    def _validate_purchase_order(self, event: PurchaseOrderConfirmed) -> None:
        self._check_target(event.proposal_id)
        self._require_legal_verification("confirm a purchase order")
        if self._state.legal.purchase_order is not None:
            raise refuse(f"purchase order {self._state.legal.purchase_order} is already confirmed")

    @workflow.update(name="contract.signed")
    def contract_signed(self, event: ContractSigned) -> UpdateAccepted:
        terms = ContractTerms(
            version=1,
            signed_on=event.signed_on,
            payment_offer=event.payment_offer,
            special_conditions_ref=event.special_conditions_ref,
            tjm=self._state.tjm,
            start_date=self._state.start_date,
            end_date=self._state.end_date,
        )
        self._state.legal.contract = terms
        workflow.upsert_search_attributes([sa.PAYMENT_OFFER.value_set(event.payment_offer.value)])
        label = offer_rule(event.payment_offer).label
        return self._record(
            "contract.signed",
            detail=f"offre {label}",
            contract=terms,
            emails=[self._email("client", "contract_signed", offer=label)],
        )

    @contract_signed.validator
    def _validate_contract(self, event: ContractSigned) -> None:
        self._check_target(event.proposal_id)
        self._require_legal_verification("sign the contract")
        if self._state.legal.contract is not None:
            raise refuse(
                f"the contract was already signed on {self._state.legal.contract.signed_on}; "
                "the payment offer can only change at renewal"
            )
        check(
            lambda: check_offer_eligibility(
                event.payment_offer, event.signed_on, self._proposal.provider.country
            )
        )

    def _require_legal_verification(self, action: str) -> None:
        if self._state.stage is not MissionStage.LEGAL_VERIFICATION:
            raise refuse(
                f"cannot {action}: the mission is at stage {self._state.stage.value}; this "
                "applies during legal verification (after the proposal is retained)"
            )

    def _to_start(self) -> None:
        self._state.ready_on = paris_date(workflow.now())
        self._record(
            "legal_verification.completed",
            key=f"legal_verification.completed:{self._state.mission_id}:{self._state.start_date}",
            stage=MissionStage.TO_START,
            detail=f"démarrage le {self._state.start_date.isoformat()}",
            emails=[
                self._email("provider", "mission_to_start"),
                self._email("client", "mission_to_start"),
            ],
        )

    # ------------------------------------------------------------------ start and compliance

    def _compliant_on(self, day: date) -> bool:
        legal = self._state.legal
        until = legal.provider_valid_until
        return legal.provider_compliant and (until is None or day < until)

    def _start(self, now: datetime) -> None:
        today = paris_date(now)
        if not self._compliant_on(today):
            # Documents lapsed between verification and the start date: verify again.
            self._state.legal.provider_compliant = False
            missing = "; ".join(self._state.legal.missing()["provider"])
            self._record(
                "mission.start_blocked",
                key=f"mission.start_blocked:{self._state.mission_id}:{today.isoformat()}",
                stage=MissionStage.LEGAL_VERIFICATION,
                detail=missing,
                emails=[
                    self._email("provider", "mission_start_blocked", missing=missing),
                    self._email("ops", "mission_start_blocked", missing=missing),
                ],
            )
            return
        # The mission starts on its start date, even when the worker notices it later (an
        # outage across midnight), or, when legal verification completed after that date,
        # on the day it completed.
        ready_on = self._state.ready_on or self._state.start_date
        started_on = max(self._state.start_date, ready_on)
        self._state.started_on = started_on
        self._record(
            "mission.started",
            key=f"mission.started:{self._state.mission_id}",
            stage=MissionStage.IN_PROGRESS,
            started_on=started_on,
            detail=f"démarrée le {started_on.isoformat()}",
            emails=[
                self._email("provider", "mission_started"),
                self._email("client", "mission_started"),
            ],
        )

    def _watch_compliance(self, now: datetime) -> None:
        """A lapse alerts ops and the provider once; the mission goes on (product decision)."""
        today = paris_date(now)
        compliant = self._compliant_on(today)
        if not compliant and not self._state.compliance_alert:
            self._state.compliance_alert = True
            missing = "; ".join(self._state.legal.missing()["provider"]) or "documents expirés"
            self._record(
                "compliance.lapsed",
                key=f"compliance.lapsed:{self._state.mission_id}:{today.isoformat()}",
                detail=missing,
                emails=[
                    self._email("provider", "compliance_lapsed", missing=missing),
                    self._email("ops", "compliance_lapsed", missing=missing),
                ],
            )
        elif compliant and self._state.compliance_alert:
            self._state.compliance_alert = False
            self._record(
                "compliance.restored",
                key=f"compliance.restored:{self._state.mission_id}:{today.isoformat()}",
            )

    # ------------------------------------------------------------------ monthly CRA cycles

    def _next_cra_month(self) -> str | None:
        opened = self._cra_opening
        months = mission_months(self._state.start_date, self._state.end_date)
        return next((m for m in months if m not in opened), None)

    def _cra_opens_on(self, month: str) -> date:
        """The CRA of a month opens on its first day, or on the start date in the first month."""
        return max(month_bounds(month)[0], self._state.start_date)

    def _open_due_cras(self, now: datetime) -> None:
        while (month := self._next_cra_month()) is not None:
            if now < paris_instant(self._cra_opens_on(month)):
                return
            self._cra_opening.add(month)
            self._cycles.append(asyncio.ensure_future(self._run_cra_cycle(month)))

    def _cra_input(self, month: str) -> CraInput:
        contract = self._state.terms_on(self._cra_opens_on(month))
        assert contract is not None, "a mission in progress has a signed contract"
        proposal = self._proposal
        provider = proposal.provider
        return CraInput(
            mission_id=self._state.mission_id,
            month=month,
            mission_start=self._state.start_date,
            mission_end=self._state.end_date,
            tjm=contract.tjm,
            payment_offer=contract.payment_offer,
            provider=CraProvider(
                siren=provider.siren,
                name=provider.name,
                email=provider.email,
                legal_form=provider.legal_form,
                vat_franchise=provider.vat_franchise,
                country=provider.country,
            ),
            client_id=proposal.client.id,
            client_name=proposal.client.name,
            approver_ids=[approver.id for approver in proposal.client.approvers],
            validated_months=list(self._state.validated_months),
            terms_version=contract.version,
        )

    async def _run_cra_cycle(self, month: str) -> None:
        """One cycle per month, started by an activity; it outlives a continue-as-new, as does
        its payout. The month is billed on the contract in force on its first mission day.
        (Missions begun before `CRA_BY_ACTIVITY_PATCH` start it as an ABANDON child.)"""
        inp = self._cra_input(month)
        if workflow.patched(CRA_BY_ACTIVITY_PATCH):
            await workflow.execute_activity(
                OPEN_CRA_CYCLE, inp, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
            )
            self._state.cra_months.append(month)
            return
        cycle = await workflow.start_child_workflow(
            CRA_WORKFLOW,
            inp,
            id=cra_workflow_id(self._state.mission_id, month),
            result_type=CraResult,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        # Shown (and routable by the gateway) once the child exists, not before.
        self._state.cra_months.append(month)
        if workflow.patched(CRA_BY_SIGNAL_PATCH):
            return  # the cycle reports by signal (`cra_closed`), to whichever run is current
        result = await cycle
        if result.status is not CraStatus.VALIDATED or month in self._state.validated_months:
            return
        self._state.validated_months.append(month)
        self._wake = True
        # Cycles still open may now accept corrections of this month.
        for other in self._state.cra_months:
            if other not in self._state.validated_months:
                await workflow.get_external_workflow_handle(
                    cra_workflow_id(self._state.mission_id, other)
                ).signal(MONTH_VALIDATED, MonthValidated(month=month))

    @workflow.signal(name=CRA_CLOSED)
    def cra_closed(self, event: CraClosed) -> None:
        """A cycle ended; cycles still open may now accept corrections of a validated month."""
        month = event.month
        if event.status is not CraStatus.VALIDATED or month in self._state.validated_months:
            return
        self._state.validated_months.append(month)
        self._wake = True
        for other in self._state.cra_months:
            if other not in self._state.validated_months:
                self._announce(other, MONTH_VALIDATED, MonthValidated(month=month))

    def _announce(self, month: str, signal: str, payload: Any) -> None:
        """Queue a signal to the month's open cycle; the main loop sends it."""
        workflow_id = cra_workflow_id(self._state.mission_id, month)
        self._announcements.append((workflow_id, signal, payload))

    def _tell_open_cycles_the_end(self, *months: str) -> None:
        """The open cycles of `months` recompute their pro rata for the new end date."""
        change = MissionPeriodChanged(mission_end=self._state.end_date)
        for month in months:
            if month in self._state.cra_months and month not in self._state.validated_months:
                self._announce(month, MISSION_PERIOD_CHANGED, change)

    # ------------------------------------------------------------------ renewal

    @workflow.update(name="renewal.requested")
    def renewal_requested(self, event: RenewalRequested) -> UpdateAccepted:
        self._state.renewal = Renewal(
            step=RenewalStep.REQUESTED,
            requested_at=occurred(event),
            new_end_date=event.new_end_date,
            new_tjm=event.new_tjm,
        )
        context = self._renewal_context()
        return self._record(
            "renewal.requested",
            stage=MissionStage.RENEWAL_PENDING,
            detail=self._renewal_detail(),
            emails=[self._email("provider", "renewal_requested", **context)],
        )

    @renewal_requested.validator
    def _validate_renewal_requested(self, event: RenewalRequested) -> None:
        self._check_target(event.mission_id)
        if self._state.termination is not None:
            raise refuse(
                f"the mission was terminated early (it ends on {self._state.end_date}); "
                "a terminated mission is not renewed"
            )
        check(
            lambda: check_renewal_request(
                self._state.stage, self._state.end_date, event.new_end_date, event.new_tjm
            )
        )

    @workflow.update(name="renewal.accepted")
    def renewal_accepted(self, event: RenewalAccepted) -> UpdateAccepted:
        renewal = self._pending_renewal()
        renewal.step = RenewalStep.ACCEPTED
        renewal.payment_offer = self._renewal_offer(event)
        return self._record(
            "renewal.accepted",
            detail=self._renewal_detail(),
            emails=[self._email("client", "renewal_accepted", **self._renewal_context())],
        )

    @renewal_accepted.validator
    def _validate_renewal_accepted(self, event: RenewalAccepted) -> None:
        self._check_target(event.mission_id)
        step = self._state.renewal.step if self._state.renewal else None
        check(lambda: check_renewal_step(step, RenewalStep.REQUESTED, "accept the renewal"))
        check(lambda: self._renewal_offer(event))

    def _renewal_offer(self, event: RenewalAccepted) -> PaymentOffer:
        current = self._state.current_terms
        assert current is not None, "a mission in progress has a signed contract"
        return check_renewal_offer(
            event.payment_offer,
            current.payment_offer,
            paris_date(occurred(event)),
            self._proposal.provider.country,
        )

    @workflow.update(name="renewal.validated")
    def renewal_validated(self, event: RenewalValidated) -> UpdateAccepted:
        renewal = self._pending_renewal()
        renewal.step = RenewalStep.VALIDATED
        renewal.approver_id = event.approver_id
        return self._record(
            "renewal.validated",
            detail=f"par {event.approver_id}; vérification légale du renouvellement",
            emails=[
                self._email("provider", "renewal_validated", **self._renewal_context()),
                self._email("client", "renewal_validated", **self._renewal_context()),
            ],
        )

    @renewal_validated.validator
    def _validate_renewal_validated(self, event: RenewalValidated) -> None:
        self._check_target(event.mission_id)
        step = self._state.renewal.step if self._state.renewal else None
        check(lambda: check_renewal_step(step, RenewalStep.ACCEPTED, "validate the renewal"))
        approvers = [approver.id for approver in self._proposal.client.approvers]
        if event.approver_id not in approvers:
            raise refuse(
                f"approver {event.approver_id} is not an approver of mission "
                f"{self._state.mission_id}: only {', '.join(approvers)} may validate its renewal"
            )

    @workflow.update(name="renewal.declined")
    def renewal_declined(self, event: RenewalDeclined) -> UpdateAccepted:
        self._state.renewal = None
        other: Role = "provider" if event.by == "client" else "client"
        context = {"reason": event.reason, "declined_by": event.by}
        return self._record(
            "renewal.declined",
            stage=MissionStage.IN_PROGRESS,
            detail=f"par le {'client' if event.by == 'client' else 'prestataire'} : {event.reason}",
            emails=[
                self._email(other, "renewal_declined", **context),
                self._email(event.by, "renewal_declined", **context),
            ],
        )

    @renewal_declined.validator
    def _validate_renewal_declined(self, event: RenewalDeclined) -> None:
        self._check_target(event.mission_id)
        check(lambda: check_declinable(self._state.renewal.step if self._state.renewal else None))

    def _maybe_renew(self, now: datetime) -> None:
        """A validated renewal takes effect once the provider is compliant (legal verification
        of the renewal); until then it waits, and says why."""
        renewal = self._state.renewal
        if renewal is None or renewal.step is not RenewalStep.VALIDATED:
            return
        today = paris_date(now)
        if not self._compliant_on(today):
            missing = "; ".join(self._state.legal.missing()["provider"]) or "documents expirés"
            if renewal.blocked != missing:
                renewal.blocked = missing
                self._record(
                    "renewal.blocked",
                    key=f"renewal.blocked:{self._state.mission_id}:{renewal.new_end_date}:{today}",
                    detail=missing,
                    emails=[
                        self._email("provider", "renewal_blocked", missing=missing),
                        self._email("ops", "renewal_blocked", missing=missing),
                    ],
                )
            return
        current = self._state.current_terms
        assert current is not None and renewal.payment_offer is not None
        terms = ContractTerms(
            version=current.version + 1,
            signed_on=today,
            payment_offer=renewal.payment_offer,
            special_conditions_ref=current.special_conditions_ref,
            tjm=renewal.new_tjm or current.tjm,
            start_date=renewed_period_start(self._state.end_date),
            end_date=renewal.new_end_date,
        )
        previous_end = self._state.end_date
        self._state.renewals.append(terms)
        self._state.end_date = renewal.new_end_date
        self._state.tjm = terms.tjm
        self._state.renewal = None
        self._continue_as_new_requested = True
        if terms.payment_offer is not current.payment_offer:
            workflow.upsert_search_attributes(
                [sa.PAYMENT_OFFER.value_set(terms.payment_offer.value)]
            )
        label = offer_rule(terms.payment_offer).label
        self._record(
            "renewal.effective",
            key=f"renewal.effective:{self._state.mission_id}:{terms.version}",
            stage=MissionStage.IN_PROGRESS,
            detail=(
                f"contrat v{terms.version} du {terms.start_date.isoformat()} au "
                f"{terms.end_date.isoformat()}, TJM {terms.tjm} €, offre {label}"
            ),
            contract=terms,
            end_date=terms.end_date,
            emails=[
                self._email("provider", "renewal_effective", offer=label, version=terms.version),
                self._email("client", "renewal_effective", offer=label, version=terms.version),
            ],
        )
        # The month of the old end date, if open, now runs to the month's end (or the new end).
        self._tell_open_cycles_the_end(month_of(previous_end))

    def _pending_renewal(self) -> Renewal:
        assert self._state.renewal is not None, "validated: a renewal is pending"
        return self._state.renewal

    def _renewal_detail(self) -> str:
        renewal = self._pending_renewal()
        detail = f"jusqu'au {renewal.new_end_date.isoformat()}"
        if renewal.new_tjm is not None:
            detail += f", TJM {renewal.new_tjm} €"
        if renewal.payment_offer is not None:
            detail += f", offre {offer_rule(renewal.payment_offer).label}"
        return detail

    def _renewal_context(self) -> dict[str, Any]:
        renewal = self._pending_renewal()
        tjm: Decimal = renewal.new_tjm or self._state.tjm
        context: dict[str, Any] = {
            "new_end_date": renewal.new_end_date.isoformat(),
            "new_tjm": str(tjm),
            "tjm_changed": renewal.new_tjm is not None and renewal.new_tjm != self._state.tjm,
        }
        if renewal.payment_offer is not None:
            context["offer"] = offer_rule(renewal.payment_offer).label
        return context

    # ------------------------------------------------------------------ end of the mission

    @workflow.update(name="mission.terminated")
    def mission_terminated(self, event: MissionTerminated) -> UpdateAccepted:
        previous_end = self._state.end_date
        self._state.termination = Termination(
            end_date=event.end_date, reason=event.reason, at=occurred(event)
        )
        self._state.end_date = event.end_date
        self._state.renewal = None  # a pending renewal falls with the mission
        stage = MissionStage.IN_PROGRESS if self._state.stage in RUNNING_STAGES else None
        context = {"new_end_date": event.end_date.isoformat(), "reason": event.reason}
        accepted = self._record(
            "mission.terminated",
            stage=stage,
            detail=f"fin anticipée au {event.end_date.isoformat()} : {event.reason}",
            end_date=event.end_date,
            emails=[
                self._email("provider", "mission_terminated", **context),
                self._email("client", "mission_terminated", **context),
            ],
        )
        self._tell_open_cycles_the_end(month_of(event.end_date), month_of(previous_end))
        return accepted

    @mission_terminated.validator
    def _validate_terminated(self, event: MissionTerminated) -> None:
        self._check_target(event.mission_id)
        state = self._state
        check(
            lambda: check_termination(
                state.stage,
                state.end_date,
                event.end_date,
                state.start_date,
                state.cra_months,
                state.validated_months,
            )
        )

    def _maybe_end(self, now: datetime) -> None:
        """The day after the end date, once every month's CRA is validated (and no renewal is
        pending), the mission ends; its payouts complete on their own."""
        state = self._state
        if paris_date(now) <= state.end_date or state.renewal is not None:
            return
        months = mission_months(state.start_date, state.end_date)
        if any(month not in state.validated_months for month in months):
            return
        if not workflow.patched(MISSION_END_PATCH):
            return
        terminated = state.termination is not None
        reason = state.termination.reason if state.termination else "fin de mission"
        state.ended_on = state.end_date
        self._record(
            "mission.ended",
            key=f"mission.ended:{state.mission_id}",
            stage=MissionStage.TERMINATED if terminated else MissionStage.COMPLETED,
            detail=f"terminée le {state.end_date.isoformat()} ({reason})",
            ended_on=state.end_date,
            end_reason=reason,
            emails=[
                self._email("provider", "mission_ended", terminated=terminated, reason=reason),
                self._email("client", "mission_ended", terminated=terminated, reason=reason),
            ],
        )

    # ------------------------------------------------------------------ helpers

    def _check_target(self, proposal_id: str) -> None:
        if proposal_id != self._state.mission_id:
            raise refuse(
                f"event for mission {proposal_id} sent to mission {self._state.mission_id}"
            )

    def _record(
        self,
        kind: str,
        *,
        key: str | None = None,
        stage: MissionStage | None = None,
        detail: str = "",
        emails: list[EmailSpec] | None = None,
        **changes: Any,
    ) -> UpdateAccepted:
        """Queue one transition; the stage follows the proposal status unless given."""
        if key is None:
            update = workflow.current_update_info()
            assert update is not None, "a transition outside an update needs a key"
            key = f"{kind}:{self._state.mission_id}:{update.id}"
        if stage is None and self._state.stage in (
            MissionStage.PROPOSAL,
            MissionStage.QUALIFICATION,
        ):
            stage = rules.stage_of(self._state.proposal_status)
        if stage is not None and stage is not self._state.stage:
            self._state.stage = stage
            workflow.upsert_search_attributes([sa.MISSION_STAGE.value_set(stage.value)])
        else:
            stage = None
        self._effects.append(
            MissionTransition(
                mission_id=self._state.mission_id,
                key=key,
                kind=kind,
                at=workflow.now(),
                detail=detail,
                stage=stage,
                proposal_status=self._state.proposal_status,
                emails=emails or [],
                **changes,
            )
        )
        self._note(kind, detail)
        return UpdateAccepted(
            mission_id=self._state.mission_id,
            stage=self._state.stage,
            proposal_status=self._state.proposal_status,
        )

    def _email(self, role: Role, template: str, **extra: Any) -> EmailSpec:
        proposal = self._proposal
        context: dict[str, Any] = {
            "mission_id": self._state.mission_id,
            "proposal_id": proposal.proposal_id,
            "rfp_id": proposal.rfp_id,
            "client_name": proposal.client.name,
            "provider_name": proposal.provider.name,
            "tjm": str(self._state.tjm),
            "start_date": self._state.start_date.isoformat(),
            "end_date": self._state.end_date.isoformat(),
            **extra,
        }
        return EmailSpec(role=role, template=template, context=context)

    def _provider_ref(self) -> ProviderRef:
        provider = self._proposal.provider
        return ProviderRef(
            siren=provider.siren,
            name=provider.name,
            email=provider.email,
            legal_form=provider.legal_form,
        )

    def _note(self, kind: str, detail: str = "") -> None:
        self._state.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, detail=detail))
