"""Small stand-ins for the activities, registered under the real activity names
(`@activity.defn(name=...)`, the names in schemas/): a worker built with them runs the real
workflows with no PostgreSQL and no SMTP (the fast workflow tier, tests/workflow/fast/).

Each fake records what it was asked, so a test can assert what the workflow wrote and in what
order; none writes anything anywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.client_payments import ClientPayment as Payment
from domain.client_payments import payment_progress
from domain.clock import paris_date
from domain.invoices import invoice_amounts_for_cra
from domain.payouts import payout_terms
from schemas.activities import (
    DeliverOutboxInput,
    DeliverOutboxResult,
    IssueDocumentsInput,
    IssueDocumentsResult,
    RecordProposalInput,
    SignalInput,
    TransitionResult,
)
from schemas.compliance import ComplianceStatus, WatchRequest
from schemas.cra import CraInput, CraTransition, CraValidation, CraValidationResult
from schemas.ids import mission_workflow_id
from schemas.mission import MissionTransition
from schemas.names import (
    COMPLIANCE_CHANGED,
    DELIVER_OUTBOX,
    ISSUE_BILLING_DOCUMENTS,
    OPEN_CRA_CYCLE,
    RECORD_CLIENT_PAYMENT,
    RECORD_CRA_TRANSITION,
    RECORD_CRA_VALIDATION,
    RECORD_MISSION_TRANSITION,
    RECORD_PAYOUT_TRANSITION,
    RECORD_PROPOSAL,
    SIGNAL_WORKFLOW,
    START_PAYOUT,
    WATCH_PROVIDER,
)
from schemas.payouts import (
    ClientPaymentResult,
    PayoutInput,
    PayoutTransition,
    RecordClientPaymentInput,
)
from tests.support.workers import sandboxed_worker
from workflows.registry import WORKFLOWS


@dataclass
class Recorded:
    """What the fake activities were asked, in order: (activity name, its input)."""

    calls: list[tuple[str, BaseModel]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def inputs(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]

    def kinds(self, name: str) -> list[str]:
        """The `kind` of every transition written through activity `name`, in order."""
        return [arg.kind for arg in self.inputs(name)]


class FakeOutbox:
    """`deliver_outbox` and `signal_workflow`, shared by the fakes: the keys and the signals
    recorded, nothing sent (the signalled workflow counts as closed)."""

    def __init__(self) -> None:
        self.recorded = Recorded()

    @activity.defn(name=DELIVER_OUTBOX)
    async def deliver_outbox(self, inp: DeliverOutboxInput) -> DeliverOutboxResult:
        self.recorded.calls.append((DELIVER_OUTBOX, inp))
        return DeliverOutboxResult(sent=len(inp.keys))

    @activity.defn(name=SIGNAL_WORKFLOW)
    async def signal_workflow(self, inp: SignalInput) -> bool:
        self.recorded.calls.append((SIGNAL_WORKFLOW, inp))
        return False


class FakeCraActivities(FakeOutbox):
    """The CRA cycle's activities: transitions and the billing recorded in memory, the
    payout's start recorded (not started), emails dropped."""

    @activity.defn(name=RECORD_CRA_TRANSITION)
    async def record_cra_transition(self, t: CraTransition) -> TransitionResult:
        self.recorded.calls.append((RECORD_CRA_TRANSITION, t))
        return TransitionResult(applied=True)

    @activity.defn(name=RECORD_CRA_VALIDATION)
    async def record_cra_validation(self, v: CraValidation) -> CraValidationResult:
        """The month billed as production bills it (domain/ alone): invoice dated of the
        validation day, generated number."""
        self.recorded.calls.append((RECORD_CRA_VALIDATION, v))
        amounts = invoice_amounts_for_cra(v.cra, v.tjm, regime=v.provider.vat_regime)
        terms = payout_terms(
            v.payment_offer, v.validated_on, v.validated_on, amounts, tjm=v.tjm, days=v.cra.days
        )
        return CraValidationResult(
            applied=True,
            bpf_number=f"BPF-{v.mission_id}-{v.month}",
            invoice_number=f"F-{v.provider.siren}-000001",
            terms=terms,
        )

    @activity.defn(name=START_PAYOUT)
    async def start_payout(self, inp: PayoutInput) -> None:
        self.recorded.calls.append((START_PAYOUT, inp))

    @activity.defn(name=ISSUE_BILLING_DOCUMENTS)
    async def issue_billing_documents(self, inp: IssueDocumentsInput) -> IssueDocumentsResult:
        self.recorded.calls.append((ISSUE_BILLING_DOCUMENTS, inp))
        return IssueDocumentsResult(written=[f"BPF-{inp.mission_id}-{inp.month}.pdf"])

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_cra_transition,
            self.record_cra_validation,
            self.start_payout,
            self.issue_billing_documents,
            self.deliver_outbox,
            self.signal_workflow,
        ]


class FakeMissionActivities(FakeOutbox):
    """The mission's activities: the proposal and the transitions recorded in memory (their
    emails stay in the transition, none is queued), the month's CRA cycle recorded (not
    started), and `watch_provider` answering as the provider workflow does: it signals
    `provider_compliance_changed` to the mission at once, compliant unless told otherwise
    (`compliant`), with nothing missing."""

    def __init__(self, client: Client, *, compliant: bool = True) -> None:
        super().__init__()
        self._client = client
        self.compliant = compliant

    @activity.defn(name=RECORD_PROPOSAL)
    async def record_proposal(self, inp: RecordProposalInput) -> TransitionResult:
        self.recorded.calls.append((RECORD_PROPOSAL, inp))
        return TransitionResult(applied=True)

    @activity.defn(name=RECORD_MISSION_TRANSITION)
    async def record_mission_transition(self, t: MissionTransition) -> TransitionResult:
        self.recorded.calls.append((RECORD_MISSION_TRANSITION, t))
        return TransitionResult(applied=True)

    @activity.defn(name=WATCH_PROVIDER)
    async def watch_provider(self, request: WatchRequest) -> None:
        """What `provider-<SIREN>` does for a new watcher: signal it the status at once."""
        self.recorded.calls.append((WATCH_PROVIDER, request))
        status = ComplianceStatus(
            siren=request.provider.siren,
            on=paris_date(activity.info().current_attempt_scheduled_time),
            compliant=self.compliant,
        )
        mission = self._client.get_workflow_handle(mission_workflow_id(request.mission_id))
        await mission.signal(COMPLIANCE_CHANGED, status)

    @activity.defn(name=OPEN_CRA_CYCLE)
    async def open_cra_cycle(self, inp: CraInput) -> None:
        self.recorded.calls.append((OPEN_CRA_CYCLE, inp))

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_proposal,
            self.record_mission_transition,
            self.watch_provider,
            self.open_cra_cycle,
            self.deliver_outbox,
            self.signal_workflow,
        ]


class FakePayoutActivities(FakeOutbox):
    """The payout's transitions recorded in memory (each with its instant, `at`); the keys of
    their emails returned and recorded as delivered, nothing sent. The client's payments kept
    per invoice (mission, month) and event id."""

    def __init__(self) -> None:
        super().__init__()
        self.client_payments: dict[tuple[str, str], dict[str, Payment]] = {}

    @activity.defn(name=RECORD_PAYOUT_TRANSITION)
    async def record_payout_transition(self, t: PayoutTransition) -> TransitionResult:
        self.recorded.calls.append((RECORD_PAYOUT_TRANSITION, t))
        return TransitionResult(applied=True, outbox_keys=[f"{t.key}:{e.to}" for e in t.emails])

    @activity.defn(name=RECORD_CLIENT_PAYMENT)
    async def record_client_payment(self, inp: RecordClientPaymentInput) -> ClientPaymentResult:
        """The payment kept once per event id in memory; where the invoice's payments stand
        (`payment_progress` on the payout's gross), no late fees; an overpayment's ops
        e-mail key when this payment made it."""
        self.recorded.calls.append((RECORD_CLIENT_PAYMENT, inp))
        invoice = self.client_payments.setdefault((inp.mission_id, inp.month), {})
        before = payment_progress(inp.invoice_total, invoice.values())
        applied = inp.event_id not in invoice
        invoice.setdefault(inp.event_id, Payment(amount=inp.amount, paid_on=inp.paid_on))
        progress = payment_progress(inp.invoice_total, invoice.values())
        overpaid = applied and progress.overpaid_by > before.overpaid_by
        return ClientPaymentResult(
            applied=applied,
            paid=progress.paid,
            still_due=progress.still_due,
            complete_on=progress.complete_on,
            overpaid_by=progress.overpaid_by,
            outbox_keys=[f"client_payment:{inp.event_id}:overpaid:ops"] if overpaid else [],
        )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_payout_transition,
            self.record_client_payment,
            self.deliver_outbox,
            self.signal_workflow,
        ]


@asynccontextmanager
async def fake_worker(
    env: WorkflowEnvironment, activities: list[Callable[..., Any]]
) -> AsyncIterator[str]:
    """Every workflow, and only the given (fake) activities, on a new task queue: the queue."""
    queue = f"fast-{uuid.uuid4().hex}"
    async with sandboxed_worker(
        env.client, task_queue=queue, workflows=list(WORKFLOWS), activities=activities
    ):
        yield queue
