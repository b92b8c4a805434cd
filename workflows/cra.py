"""The monthly CRA cycle `cra-<mission_id>-<YYYY-MM>`: from the provider's activity report to
the start of billing. A child of the mission workflow, one per month of a mission in progress.

- Platform events are **updates** named after their event type (`cra.submitted`,
  `cra.validated`, `cra.rejected`). Validators ask `domain/` whether the event applies (days in
  half-day steps, no more than the mission's calendar days in the month, corrections only of
  validated earlier months; not before the due day, the submission's Paris day taken from
  `occurred_at`, since days not yet worked are not billed; only an approver of the mission
  validates or rejects, only a submitted CRA); a refusal (the gateway's 409) writes nothing,
  not even to history. A validated CRA is immutable: every later submission, validation or
  rejection is refused.
- Handlers change the in-memory state and queue a transition; the main loop writes each one,
  in order, through one idempotent activity, then delivers its emails in the background.
- Reminder: when the CRA is not submitted by the last business day of the mission's part of
  the month, the provider is emailed at 09:00 Paris on the next business day, then every 7
  days until the first submission (durable timers; a rejected CRA is announced by its own
  email instead). The due and reminder days are rules of `domain/cra.py`.
- The mission tells the cycle when its end date moves (renewal, early termination): the
  month's pro rata, the most days a CRA may declare and the reminder move with it.
- Validation: one activity, one transaction (validated CRA + lines, BPF, invoice or its
  awaiting-import row, payout schedule, timeline, outbox): the legal record. Then, at once,
  the month's files (BPF, invoice as Factur-X) are rendered by their own activity
  (`issue_billing_documents`, on the render task queue the validation names), while the
  payout workflow `payout-<mission_id>-<YYYY-MM>` is started by an activity
  (activities/starts.py) and the mission's current run is signalled (`mission.cra_closed`,
  so that a mission that continued as new still learns it); the cycle completes with a
  `CraResult` once its files are stored.

History cost of a month (submitted then validated, no reminder): 2 updates, 2 local record
activities, 2 local e-mail deliveries, 1 local start, the rendering activity, 1 signal.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.clock import paris_date, paris_text
from domain.cra import (
    check_cra,
    check_submission_day,
    due_day,
    mission_days_in_month,
    reminder_at,
)
from domain.records import cra_email_context, cra_validation
from schemas import search_attributes as sa
from schemas.activities import IssueDocumentsInput, IssueDocumentsResult, TransitionResult
from schemas.cra import (
    CraClosed,
    CraInput,
    CraResult,
    CraState,
    CraTimelineEntry,
    CraTransition,
    CraTransitionKind,
    CraUpdateAccepted,
    CraValidation,
    CraValidationResult,
    MissionPeriodChanged,
    MonthValidated,
)
from schemas.enums import CraStatus
from schemas.events import CraRejected, CraSubmitted, CraValidated
from schemas.ids import mission_workflow_id, payout_workflow_id
from schemas.names import (
    CRA_CLOSED,
    CRA_REJECTED,
    CRA_SUBMITTED,
    CRA_VALIDATED,
    CRA_WORKFLOW,
    ISSUE_BILLING_DOCUMENTS,
    MISSION_PERIOD_CHANGED,
    MONTH_VALIDATED,
    RECORD_CRA_TRANSITION,
    RECORD_CRA_VALIDATION,
    START_PAYOUT,
    STATE_QUERY,
)
from schemas.payouts import PayoutInput, PayoutProvider
from workflows.attributes import upsert_changed
from workflows.effects import deliver_outbox, tell
from workflows.options import DB_RETRY, RENDER_TIMEOUT, local_db_activity
from workflows.timers import Deadline
from workflows.transitions import TransitionQueue, record_refusal
from workflows.validation import check, occurred, refuse

_OPEN = (CraStatus.DRAFT, CraStatus.REJECTED)


@workflow.defn(name=CRA_WORKFLOW)
class CraWorkflow:
    @workflow.init
    def __init__(self, inp: CraInput) -> None:
        self._deadline = Deadline("next reminder of the CRA")
        self._inp = inp
        self._validated_months = set(inp.validated_months)
        self._state = CraState(
            mission_id=inp.mission_id,
            month=inp.month,
            max_days=mission_days_in_month(inp.month, inp.mission_start, inp.mission_end),
        )
        self._effects = TransitionQueue[CraTransition | CraValidation](self._write, self._refused)
        self._billing: CraValidationResult | None = None

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, inp: CraInput) -> CraResult:
        upsert_changed(  # set at the start by open_cra_cycle: no upsert then
            [
                sa.MISSION_ID.value_set(inp.mission_id),
                sa.CLIENT_ID.value_set(inp.client_id),
                sa.PROVIDER_ID.value_set(inp.provider.siren),
                sa.PAYMENT_OFFER.value_set(inp.payment_offer.value),
            ]
        )
        while True:
            await self._effects.drain()
            if self._billing is not None:
                break
            self._maybe_remind(workflow.now())
            if self._effects:
                continue
            await self._sleep_until_woken_or(self._next_reminder())
        billing = self._billing
        # The legal record is committed: the files are rendered now, beside the rest.
        # The payout starts and the mission is told side by side, in the validation's own
        # workflow task: each is a local activity that waits on a Temporal RPC, and the
        # validation's update is answered once the task completes.
        files = asyncio.ensure_future(self._issue_documents(billing))
        payout = asyncio.ensure_future(self._start_payout(billing)) if inp.start_payout else None
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._effects.drain()
        # The mission learns the month is billed at once: neither its e-mails nor its files
        # gate the business (during an SMTP outage the mission would otherwise see the month
        # as open and accept, say, a termination inside a month already billed in full). The
        # month is billed whether or not its payout could start (that failure fails the cycle).
        await self._report_to_mission()
        payout_id = await payout if payout is not None else None
        await files
        await self._effects.delivered()
        return CraResult(
            mission_id=inp.mission_id,
            month=inp.month,
            status=self._state.status,
            validated_on=self._state.validated_on,
            days=self._state.days,
            bpf_number=billing.bpf_number,
            invoice_number=billing.invoice_number,
            amount_excl_vat=billing.amount_excl_vat,
            amount_incl_vat=billing.amount_incl_vat,
            payout_status=billing.payout_status,
            payout_date=billing.payout_date,
            payout_workflow_id=payout_id,
        )

    async def _sleep_until_woken_or(self, deadline: datetime | None) -> None:
        # When the deadline passes first, `_maybe_remind` acts on it.
        await self._deadline.wait(deadline, lambda: bool(self._effects))

    async def _write(self, effect: CraTransition | CraValidation) -> list[str]:
        """Write one queued transition; the validation also bills the month."""
        if isinstance(effect, CraValidation):
            billing = await local_db_activity(RECORD_CRA_VALIDATION, effect, CraValidationResult)
            self._billing = billing
            self._state.bpf_number = billing.bpf_number
            self._state.invoice_number = billing.invoice_number
            self._state.payout_status = billing.payout_status
            self._state.payout_date = billing.payout_date
            return billing.outbox_keys
        result = await local_db_activity(RECORD_CRA_TRANSITION, effect, TransitionResult)
        return result.outbox_keys

    async def _refused(
        self, effect: CraTransition | CraValidation, error: ApplicationError
    ) -> list[str]:
        """A write the database refused for good: logged at ERROR, the mission's timeline row
        `transition.failed` and one ops e-mail (as the mission's own). A submission, a
        rejection or a reminder not written leaves the cycle going; a validation not written
        bills nothing, so the cycle fails with the refusal (visible in the Temporal UI)
        rather than start a payout for rows that do not exist."""
        kind = "cra.validated" if isinstance(effect, CraValidation) else f"cra.{effect.kind}"
        keys = await record_refusal(self._inp.mission_id, effect.key, kind, error)
        if isinstance(effect, CraValidation):
            await deliver_outbox(keys)
            raise error
        return keys

    async def _issue_documents(self, billing: CraValidationResult) -> None:
        """Render and store the month's files (idempotent by document key), on the render
        task queue; a file that cannot be issued is an ops alert, delivered like the rest."""
        issued = await workflow.execute_activity(
            ISSUE_BILLING_DOCUMENTS,
            IssueDocumentsInput(
                mission_id=self._inp.mission_id, month=self._inp.month, at=self._state_at()
            ),
            result_type=IssueDocumentsResult,
            task_queue=billing.render_task_queue or workflow.info().task_queue,
            start_to_close_timeout=RENDER_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._effects.deliver(issued.outbox_keys)

    def _state_at(self) -> datetime:
        """The validation's instant (what the files' alerts are dated with)."""
        assert self._state.validated_at is not None
        return self._state.validated_at

    async def _start_payout(self, billing: CraValidationResult) -> str:
        """The payout outlives this cycle: started by an activity (activities/starts.py)."""
        inp = self._inp
        workflow_id = payout_workflow_id(inp.mission_id, inp.month)
        payout_input = PayoutInput(
            mission_id=inp.mission_id,
            month=inp.month,
            provider=PayoutProvider(
                siren=inp.provider.siren, email=inp.provider.email, name=inp.provider.name
            ),
            invoice_number=billing.invoice_number,
            terms=billing.terms,  # computed once by the validation: the payout pays them
        )
        await local_db_activity(START_PAYOUT, payout_input)
        self._note("payout.started", workflow_id)
        return workflow_id

    async def _report_to_mission(self) -> None:
        """Tell the mission's current run (it may have continued as new since it started us)."""
        await tell(  # a local activity; a mission gone has nothing left to learn
            mission_workflow_id(self._inp.mission_id),
            CRA_CLOSED,
            CraClosed(month=self._inp.month, status=self._state.status),
        )

    # ------------------------------------------------------------------ reminders

    def _next_reminder(self) -> datetime | None:
        if self._state.status is not CraStatus.DRAFT:
            return None  # a submission stops the reminders for good
        inp, sent = self._inp, self._state.reminders_sent
        return reminder_at(inp.month, inp.mission_start, inp.mission_end, sent)

    def _maybe_remind(self, now: datetime) -> None:
        due = self._next_reminder()
        self._state.next_reminder_at = due
        if due is None or now < due:
            return
        self._state.reminders_sent += 1
        number = self._state.reminders_sent
        self._state.next_reminder_at = self._next_reminder()
        self._queue(
            "reminder",
            key=f"cra.reminder:{self._inp.mission_id}:{self._inp.month}:{number}",
            template="cra_reminder",
            reminder_count=str(number),
            due_on=due_day(
                self._inp.month, self._inp.mission_start, self._inp.mission_end
            ).isoformat(),
        )

    # ------------------------------------------------------------------ queries and signals

    @workflow.query(name=STATE_QUERY)
    def state(self) -> CraState:
        return self._state

    @workflow.signal(name=MONTH_VALIDATED)
    def month_validated(self, event: MonthValidated) -> None:
        self._validated_months.add(event.month)

    @workflow.signal(name=MISSION_PERIOD_CHANGED)
    def mission_period_changed(self, event: MissionPeriodChanged) -> None:
        inp = self._inp.model_copy(update={"mission_end": event.mission_end})
        self._inp = inp
        self._state.max_days = mission_days_in_month(inp.month, inp.mission_start, inp.mission_end)

    # ------------------------------------------------------------------ updates

    @workflow.update(name=CRA_SUBMITTED)
    def cra_submitted(self, event: CraSubmitted) -> CraUpdateAccepted:
        self._state.status = CraStatus.SUBMITTED
        self._state.days = event.days
        self._state.lines = event
        self._state.submitted_at = occurred(event)
        self._state.rejection_comment = None
        self._state.next_reminder_at = None
        return self._queue("submitted", cra=event, template="cra_submitted", days=str(event.days))

    @cra_submitted.validator
    def _validate_submitted(self, event: CraSubmitted) -> None:
        self._check_target(event.mission_id, event.month)
        if self._state.status not in _OPEN:
            raise refuse(self._closed_reason("submit"))
        inp = self._inp
        check(
            lambda: check_cra(
                event, inp.mission_start, inp.mission_end, self._validated_months, inp.tjm
            )
        )
        on = paris_date(occurred(event))  # days not yet worked are not billed
        check(lambda: check_submission_day(inp.month, on, inp.mission_start, inp.mission_end))

    @workflow.update(name=CRA_VALIDATED)
    def cra_validated(self, event: CraValidated) -> CraUpdateAccepted:
        now = occurred(event)
        self._state.status = CraStatus.VALIDATED
        self._state.validated_at = now
        self._state.validated_on = paris_date(now)
        self._state.approver_id = event.approver_id
        self._state.next_reminder_at = None
        self._effects.put(cra_validation(self._inp, self._cra(), event.approver_id, now))
        self._note("cra.validated", f"par {event.approver_id}")
        return self._accepted()

    @cra_validated.validator
    def _validate_validated(self, event: CraValidated) -> None:
        self._check_decision(event.mission_id, event.month, event.approver_id, "validate")
        self._check_after_submission(occurred(event), "validate", "validation")
        days, most = self._cra().days, self._state.max_days
        if days > most:
            raise refuse(
                f"cannot validate the {self._inp.month} CRA: it declares {days} days but the "
                f"mission now ends on {self._inp.mission_end.isoformat()}, so the month has "
                f"{most} days of mission at most; reject it so the provider corrects it"
            )

    @workflow.update(name=CRA_REJECTED)
    def cra_rejected(self, event: CraRejected) -> CraUpdateAccepted:
        self._state.status = CraStatus.REJECTED
        self._state.rejection_comment = event.comment
        self._state.rejected_at = occurred(event)
        self._state.approver_id = event.approver_id
        return self._queue(
            "rejected",
            cra=self._state.lines,
            approver_id=event.approver_id,
            comment=event.comment,
            template="cra_rejected",
            detail=event.comment,
        )

    @cra_rejected.validator
    def _validate_rejected(self, event: CraRejected) -> None:
        self._check_decision(event.mission_id, event.month, event.approver_id, "reject")
        self._check_after_submission(occurred(event), "reject", "rejection")

    # ------------------------------------------------------------------ helpers

    def _check_target(self, mission_id: str, month: str) -> None:
        inp = self._inp
        if (mission_id, month) != (inp.mission_id, inp.month):
            raise refuse(
                f"event for the {month} CRA of mission {mission_id} sent to the {inp.month} "
                f"CRA of mission {inp.mission_id}"
            )

    def _check_after_submission(self, at: datetime, action: str, decision: str) -> None:
        """A client's decision follows the submission it decides on."""
        submitted_at = self._state.submitted_at
        if submitted_at is not None and at < submitted_at:
            raise refuse(
                f"cannot {action} the {self._inp.month} CRA at {paris_text(at)}: it was "
                f"submitted later, at {paris_text(submitted_at)}; a {decision} follows its "
                "submission"
            )

    def _check_decision(self, mission_id: str, month: str, approver_id: str, action: str) -> None:
        self._check_target(mission_id, month)
        if approver_id not in self._inp.approver_ids:
            raise refuse(
                f"approver {approver_id} is not an approver of mission {self._inp.mission_id}: "
                f"only {', '.join(self._inp.approver_ids)} may {action} its CRA"
            )
        if self._state.status is not CraStatus.SUBMITTED:
            raise refuse(self._closed_reason(action))

    def _closed_reason(self, action: str) -> str:
        month = self._inp.month
        status = self._state.status
        if status is CraStatus.VALIDATED:
            return (
                f"cannot {action} the {month} CRA: it was validated on "
                f"{self._validated_on().isoformat()} and a validated CRA is immutable; correct "
                "it with a correction line on a later month's CRA"
            )
        if status is CraStatus.SUBMITTED:
            return f"cannot {action} the {month} CRA: it is already submitted, awaiting the client"
        return f"cannot {action} the {month} CRA: it is {status.value}, not submitted yet"

    def _cra(self) -> CraSubmitted:
        assert self._state.lines is not None, "a validated CRA was submitted"
        return self._state.lines

    def _validated_on(self) -> date:
        assert self._state.validated_on is not None
        return self._state.validated_on

    def _accepted(self) -> CraUpdateAccepted:
        return CraUpdateAccepted(
            mission_id=self._inp.mission_id, month=self._inp.month, status=self._state.status
        )

    def _context(self, **extra: str) -> dict[str, str]:
        return cra_email_context(self._inp, **extra)

    def _queue(
        self,
        kind: CraTransitionKind,
        *,
        key: str | None = None,
        cra: CraSubmitted | None = None,
        approver_id: str | None = None,
        comment: str | None = None,
        template: str | None = None,
        detail: str = "",
        **context: str,
    ) -> CraUpdateAccepted:
        """Queue one transition; an update's key is its id (the platform's event id)."""
        inp = self._inp
        if key is None:
            update = workflow.current_update_info()
            assert update is not None, "a transition outside an update needs a key"
            key = f"cra.{kind}:{inp.mission_id}:{inp.month}:{update.id}"
        self._effects.put(
            CraTransition(
                key=key,
                kind=kind,
                at=workflow.now(),
                mission_id=inp.mission_id,
                month=inp.month,
                status=self._state.status,
                cra=cra,
                approver_id=approver_id,
                comment=comment,
                provider_email=inp.provider.email,
                email_template=template,
                email_context=self._context(**({"comment": comment} if comment else {}), **context),
            )
        )
        self._note(f"cra.{kind}", detail)
        return self._accepted()

    def _note(self, kind: str, detail: str = "") -> None:
        self._state.timeline.append(CraTimelineEntry(at=workflow.now(), kind=kind, detail=detail))
