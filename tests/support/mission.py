"""Drives a mission through MissionWorkflow from `proposal.submitted` to its monthly payouts,
renewals and end, as the platform and the client would: the platform's side of the workflow
tests (billing, contracting, renewal, lifecycle edges, long life) and of
bench/history_per_month.py. It runs against any worker (real activities or fakes) on the
time-skipping server or the dev server.

Each month the provider submits the CRA on the month's last business day (08:00 Paris, before
the 09:00 reminder) and the client validates it on a day the test chooses (`MonthPlan`); the
expected invoice and payout are then computed from `domain/` alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.calendar import next_business_day_on_or_after, previous_business_day_on_or_before
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds
from domain.fees import offer_fee
from domain.invoices import InvoiceAmounts, invoice_amounts_for_cra
from domain.payouts import PayoutSchedule, compute_payout
from schemas.cra import CraResult
from schemas.enums import PaymentOffer, VatRegime
from schemas.events import (
    ClientPaymentReceived,
    ContractSigned,
    CraSubmitted,
    CraValidated,
    Invoicing,
    ProposalRetained,
    ProposalSubmitted,
    PurchaseOrderConfirmed,
    RenewalAccepted,
    RenewalRequested,
    RenewalValidated,
)
from schemas.ids import (
    cra_workflow_id,
    mission_workflow_id,
    payout_workflow_id,
    provider_workflow_id,
)
from schemas.mission import MissionInput, MissionResult, MissionState
from schemas.names import (
    CLIENT_PAYMENT_RECEIVED,
    CONTRACT_SIGNED,
    DOCUMENT_REVIEWED,
    DOCUMENT_UPLOADED,
    MISSION_WORKFLOW,
    PURCHASE_ORDER_CONFIRMED,
)
from schemas.payouts import PayoutState
from starter.devstack.mailsink import MailSink, ReceivedMessage
from tests.fixtures.temporal import send_update, skip_until
from tests.support import db
from tests.support.factories import (
    APPROVER,
    DOCUMENTS,
    document_events,
    event_id,
    new_siren,
    proposal_submitted,
)
from tests.support.months import due_day, last_day, next_month
from tests.support.waits import about, eventually, mails

Handle = WorkflowHandle[Any, Any]
TJM = Decimal("650.00")
DAYS = Decimal("10")
WAIT = 60.0
"""Seconds a workflow result may take once the clock is past what it waits for."""
SUBMIT_AT = time(10, 17)
VALIDATE_AT = time(14, 43)
"""The platform's events land off the hour: the workflows' own timers fire on the hour
(00:00, 08:00, 09:00), and temporal-test-server 1.40 strands a workflow whose task cancels a
timer that fired while the task was with the worker (docs/testing.md)."""
LEGACY_SIGNATURE = date(2025, 3, 3)
"""Back-to-back and immediate payment are for contracts signed before 2025-04-28."""


def first_validation_day(
    month: str, predicate: Callable[[date], bool] | None = None, *, within: int = 14
) -> date | None:
    """The first day from the month's last business day on (`within` days) that `predicate`
    accepts; by default the first business day after it."""
    start = due_day(month)
    if predicate is None:
        return next_business_day_on_or_after(start + timedelta(days=1))
    for offset in range(within + 1):
        day = start + timedelta(days=offset)
        if predicate(day):
            return day
    return None


@dataclass
class MonthPlan:
    """What the platform sends for one month, and when."""

    month: str
    days: Decimal
    validate_on: date
    lines: dict[str, Any] = field(default_factory=dict)
    """`expenses`, `overtime`, `corrections` of the `cra.submitted` payload."""
    before_validation: Callable[[], None] | None = None
    """Called just before the validation is sent (to script an SMTP failure, say)."""
    deliver_validation: Callable[[Handle, CraValidated], Awaitable[None]] | None = None
    """How the platform delivers `cra.validated` (twice, say); once by default."""


@dataclass
class MonthOutcome:
    """What a month produced, and what `domain/` says it must be."""

    plan: MonthPlan
    cra: CraResult
    amounts: InvoiceAmounts
    schedule: PayoutSchedule
    expected_payout_date: date | None
    """None for back-to-back until the client pays."""
    fee: Decimal
    client_paid_on: date | None = None

    @property
    def month(self) -> str:
        return self.plan.month

    @property
    def payout_on(self) -> date:
        assert self.expected_payout_date is not None, "back-to-back: the client has not paid"
        return self.expected_payout_date

    @property
    def net(self) -> Decimal:
        return self.amounts.total_incl_vat - self.fee


class MissionDriver:
    """The platform and the client, posting events to one mission as the gateway would."""

    def __init__(self, env: WorkflowEnvironment, queue: str, patience: float = 20.0) -> None:
        self.env = env
        self.queue = queue
        self.patience = patience
        """Seconds a state may take to be reached (more on the real dev server, where a
        mission that starts in the past opens all its months at once)."""

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def today(self) -> date:
        return paris_date(await self.now())

    async def sleep_until(self, instant: datetime) -> None:
        """Move the clock to `instant` once nothing is in flight (tests/fixtures/temporal.py)."""
        await skip_until(self.env, instant)

    async def state(self, handle: Handle) -> MissionState:
        result: MissionState = await handle.query("state", result_type=MissionState)
        return result

    async def until(self, handle: Handle, check: Callable[[MissionState], bool]) -> MissionState:
        async def reached() -> bool:
            return check(await self.state(handle))

        try:
            await eventually(reached, within=self.patience)
        except AssertionError:
            state = await self.state(handle)
            raise AssertionError(
                f"mission {state.mission_id} did not reach the expected state within "
                f"{self.patience:.0f} s: "
                f"stage {state.stage.value}, renewal {state.renewal}, missing "
                f"{state.legal.missing()}, last entries "
                f"{[(e.kind, e.detail) for e in state.timeline[-4:]]}"
            ) from None
        return await self.state(handle)

    async def continued(self, handle: Handle, run_id: str) -> MissionState:
        """The state of the run that run `run_id` continued as new into.

        Waits by describing the workflow, never by querying it: temporal-test-server 1.40
        leaks a time lock for good (every later skip stalls) when a query is answered in the
        workflow task that continues the run as new."""

        async def moved() -> bool:
            return (await handle.describe()).run_id != run_id

        await eventually(moved, within=self.patience)
        return await self.state(handle)

    # ------------------------------------------------------------------ contracting

    async def submit(
        self, start: date, end: date, *, prefix: str = "BILL", **provider: Any
    ) -> Handle:
        """`proposal.submitted` (its own provider, with a fresh SIREN, unless `provider` says
        otherwise), dated now on the server's clock: the mission's handle."""
        data = proposal_submitted(
            proposal_id=f"{prefix}-{uuid.uuid4().hex[:10]}",
            start_date=start.isoformat(),
            end_date=end.isoformat(),
        )
        data["provider"].update({"siren": new_siren(), **provider})
        proposal = ProposalSubmitted.model_validate(data)
        return await self.env.client.start_workflow(
            MISSION_WORKFLOW,
            MissionInput(event_id=event_id(), occurred_at=await self.now(), proposal=proposal),
            id=mission_workflow_id(proposal.proposal_id),
            task_queue=self.queue,
            result_type=MissionResult,
        )

    async def upload_documents(self, siren: str, issued_on: date, prefix: str) -> Handle:
        """The provider uploads every legal document (ids `DOC-<prefix>-<kind>`), each accepted
        at once: the provider workflow's handle."""
        provider = self.env.client.get_workflow_handle(provider_workflow_id(siren))
        for kind in DOCUMENTS:
            upload, review = document_events(siren, kind, issued_on, f"DOC-{prefix}-{kind.value}")
            await send_update(provider, DOCUMENT_UPLOADED, upload)
            await send_update(provider, DOCUMENT_REVIEWED, review)
        return provider

    async def retain_with_documents(self, handle: Handle, issued_on: date) -> Handle:
        """Retain the proposal, then upload and accept every document the provider needs: the
        provider workflow's handle."""
        state = await self.state(handle)
        pid = state.mission_id
        await send_update(handle, "proposal.retained", ProposalRetained(proposal_id=pid))
        await self.until(handle, lambda s: bool(s.legal.provider_missing))
        return await self.upload_documents(state.provider_siren, issued_on, pid)

    async def contract(
        self,
        offer: PaymentOffer,
        start: date,
        end: date,
        *,
        issued_on: date | None = None,
        prefix: str = "BILL",
        invoicing: Invoicing = "platform",
    ) -> Handle:
        """proposal.submitted → retained → every legal document (issued on `issued_on`, today
        by default) accepted → purchase order → contract signed today with `offer` (before
        2025-04-28 for back-to-back and immediate payment) and `invoicing`: legal verification
        complete."""
        handle = await self.submit(start, end, prefix=prefix)
        await self.retain_with_documents(handle, issued_on or await self.today())
        await self.sign(handle, offer, invoicing=invoicing)
        return handle

    async def sign(
        self,
        handle: Handle,
        offer: PaymentOffer,
        *,
        po_number: str | None = None,
        invoicing: Invoicing = "platform",
    ) -> None:
        """The client's side of legal verification: the purchase order (`PO-<id>` unless
        given) confirmed, then the contract signed with `offer` today (before 2025-04-28 for
        back-to-back and immediate payment)."""
        pid = (await self.state(handle)).mission_id
        await send_update(
            handle,
            PURCHASE_ORDER_CONFIRMED,
            PurchaseOrderConfirmed(proposal_id=pid, po_number=po_number or f"PO-{pid}"),
        )
        fixed = offer in (PaymentOffer.BASIC, PaymentOffer.EXPRESS, PaymentOffer.FLASH)
        await send_update(
            handle,
            CONTRACT_SIGNED,
            ContractSigned(
                proposal_id=pid,
                signed_on=await self.today() if fixed else LEGACY_SIGNATURE,
                payment_offer=offer,
                special_conditions_ref=f"CP-{pid}",
                invoicing=invoicing,
            ),
        )

    async def mission_in_progress(
        self,
        offer: PaymentOffer,
        months: int = 3,
        first_month: str | None = None,
        invoicing: Invoicing = "platform",
    ) -> tuple[Handle, list[str]]:
        """proposal.submitted → retained → legal verification complete → contract signed with
        `offer` → started on the 1st of `first_month` (next month by default; a past month on
        the dev server, whose clock cannot skip); the mission runs `months` whole months."""
        today = await self.today()
        first_month = first_month or next_month(today)
        start = month_bounds(first_month)[0]
        mission_months = [first_month]
        while len(mission_months) < months:
            mission_months.append(next_month(month_bounds(mission_months[-1])[0]))
        end = month_bounds(mission_months[-1])[1]
        handle = await self.contract(offer, start, end, invoicing=invoicing)
        # A mission whose start date is past goes through to_start at once.
        await self.until(handle, lambda s: s.stage in ("to_start", "in_progress"))
        await self.sleep_until(paris_instant(start, time(0, 5)))
        await self.until(handle, lambda s: s.stage == "in_progress")
        return handle, mission_months

    # ------------------------------------------------------------------ a month

    async def run_month(
        self, mission: Handle, offer: PaymentOffer, plan: MonthPlan
    ) -> MonthOutcome:
        """Submit the month's CRA, validate it, and (back-to-back) have the client pay."""
        pid = (await self.state(mission)).mission_id
        await self.sleep_until(paris_instant(due_day(plan.month), SUBMIT_AT))
        await self.until(mission, lambda s: plan.month in s.cra_months)
        cycle = self.env.client.get_workflow_handle(
            cra_workflow_id(pid, plan.month), result_type=CraResult
        )
        cra = CraSubmitted.model_validate(
            {"mission_id": pid, "month": plan.month, "days": plan.days, **plan.lines}
        ).model_copy(update={"occurred_at": paris_instant(due_day(plan.month), SUBMIT_AT)})
        await send_update(cycle, "cra.submitted", cra, f"evt-{uuid.uuid4().hex}")
        validated_at = paris_instant(plan.validate_on, VALIDATE_AT)
        await self.sleep_until(validated_at)
        if plan.before_validation is not None:
            plan.before_validation()
        event = CraValidated(
            mission_id=pid, month=plan.month, approver_id=APPROVER, occurred_at=validated_at
        )
        if plan.deliver_validation is None:
            await send_update(cycle, "cra.validated", event, f"evt-{uuid.uuid4().hex}")
        else:
            await plan.deliver_validation(cycle, event)
        result: CraResult = await asyncio.wait_for(cycle.result(), 60)
        assert result.validated_on == plan.validate_on, (result.validated_on, plan)

        amounts = invoice_amounts_for_cra(cra, TJM, regime=VatRegime.FRENCH_VAT)
        schedule = compute_payout(offer, plan.validate_on)
        expected = schedule.payout_date
        return MonthOutcome(
            plan=plan,
            cra=result,
            amounts=amounts,
            schedule=schedule,
            expected_payout_date=expected,
            fee=offer_fee(offer, TJM, plan.days),
        )

    async def client_pays(self, pid: str, outcome: MonthOutcome) -> None:
        """Back-to-back: the client pays the month's invoice today; the provider is paid on
        the first business day on or after.

        Call it once the test needs no more `env.sleep`: after an update to a payout,
        temporal-test-server 1.40 may stop skipping time for good (`env.sleep` then times
        out). Reproduced every time while payouts were children of the closed CRA cycle; seen
        again under load since they are started by an activity."""
        paid_on = await self.today()
        payout = self.env.client.get_workflow_handle(payout_workflow_id(pid, outcome.month))
        assert outcome.cra.invoice_number is not None
        await send_update(
            payout,
            CLIENT_PAYMENT_RECEIVED,
            ClientPaymentReceived(
                invoice_number=outcome.cra.invoice_number,
                amount=outcome.amounts.total_incl_vat,
                paid_on=paid_on,
            ),
            f"evt-{uuid.uuid4().hex}",
        )
        outcome.client_paid_on = paid_on
        outcome.expected_payout_date = next_business_day_on_or_after(paid_on)

    async def payout_state(self, pid: str, month: str) -> PayoutState:
        handle = self.env.client.get_workflow_handle(payout_workflow_id(pid, month))
        state: PayoutState = await handle.query("state", result_type=PayoutState)
        return state


class MissionHarness(MissionDriver):
    """The driver, with the database (rows and counts) and the SMTP sink, and the steps of a
    mission's life (a month submitted and validated, renewal, fresh documents, the end)."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        queue: str,
        engine: AsyncEngine,
        patience: float = 20.0,
        sink: MailSink | None = None,
    ) -> None:
        super().__init__(env, queue, patience)
        self.engine = engine
        self.sink = sink

    async def mails(
        self, predicate: Callable[[ReceivedMessage], bool], count: int, within: float = 20.0
    ) -> list[ReceivedMessage]:
        """The sink's mails `predicate` accepts, once there are `count` of them."""
        assert self.sink is not None, "no SMTP sink given"
        return await mails(self.sink, predicate, count, within=within)

    def sent(self, mission_id: str, subject_part: str) -> list[ReceivedMessage]:
        """The mails of that mission already in the sink whose subject holds `subject_part`."""
        assert self.sink is not None, "no SMTP sink given"
        return [m for m in self.sink.messages if about(mission_id, subject_part)(m)]

    async def state(self, handle: Handle) -> MissionState:
        """The current run's state; a query that lands while the run continues as new is
        asked again."""
        for _ in range(20):
            try:
                return await super().state(handle)
            except RPCError:
                await asyncio.sleep(0.2)
        return await super().state(handle)

    async def count(self, stmt: Any) -> int:
        return await db.count(self.engine, stmt)

    async def rows(self, stmt: Any) -> list[Any]:
        return await db.rows(self.engine, stmt)

    async def send(self, handle: Handle, name: str, payload: Any) -> Any:
        return await send_update(handle, name, payload, f"evt-{uuid.uuid4().hex}")

    async def month(
        self,
        mission: Handle,
        month: str,
        *,
        days: Decimal = DAYS,
        ends: date | None = None,
        quick: bool = False,
    ) -> CraResult:
        """The provider submits on the last business day of the mission's part of the month,
        an approver validates the next business day; the cycle's result."""
        state = await self.state(mission)
        pid = state.mission_id
        due = previous_business_day_on_or_before(min(last_day(month), ends or last_day(month)))
        await self.sleep_until(paris_instant(due, SUBMIT_AT))
        await self.until(mission, lambda s: month in s.cra_months)
        cycle = self.env.client.get_workflow_handle(
            cra_workflow_id(pid, month), result_type=CraResult
        )
        submitted = CraSubmitted(
            mission_id=pid, month=month, days=days, occurred_at=paris_instant(due, SUBMIT_AT)
        )
        await self.send(cycle, "cra.submitted", submitted)
        validate_on = next_business_day_on_or_after(due + timedelta(days=1))
        if quick:  # the client validates the same day: one time skip less per month
            validate_on = due
        validated_at = paris_instant(validate_on, VALIDATE_AT)
        await self.sleep_until(validated_at)
        await self.send(
            cycle,
            "cra.validated",
            CraValidated(
                mission_id=pid, month=month, approver_id=APPROVER, occurred_at=validated_at
            ),
        )
        result: CraResult = await asyncio.wait_for(cycle.result(), WAIT)
        assert result.validated_on == validate_on
        return result

    async def ended(self, mission: Handle) -> MissionResult:
        """The mission's result, once the clock is past its end date (the result call alone
        would wait forever if the test server stopped skipping time)."""
        end = (await self.state(mission)).end_date
        await self.sleep_until(paris_instant(end + timedelta(days=1), time(1, 7)))
        result: MissionResult = await asyncio.wait_for(mission.result(), WAIT)
        return result

    async def refresh_documents(self, state: MissionState) -> None:
        """The provider uploads fresh legal documents, accepted at once."""
        today = await self.today()
        await self.upload_documents(
            state.provider_siren, today, f"{state.mission_id}-{today.isoformat()}"
        )

    async def renew(
        self,
        mission: Handle,
        new_end: date,
        *,
        tjm: str | None = None,
        offer: PaymentOffer | None = None,
    ) -> None:
        pid = (await self.state(mission)).mission_id
        await self.send(
            mission,
            "renewal.requested",
            RenewalRequested(mission_id=pid, new_end_date=new_end, new_tjm=tjm),
        )
        await self.send(
            mission, "renewal.accepted", RenewalAccepted(mission_id=pid, payment_offer=offer)
        )
        await self.send(
            mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id=APPROVER)
        )


def renewed_after(run: int) -> Callable[[MissionState], bool]:
    """The renewal took effect and the workflow continued as new past run `run`."""
    return lambda state: state.renewal is None and state.run > run


def check_billing(
    result: CraResult, offer: PaymentOffer, tjm: Decimal, days: Decimal = DAYS
) -> None:
    """The month was invoiced at `tjm` and is paid on `offer`'s date (domain/)."""
    assert result.validated_on is not None
    assert result.amount_excl_vat == tjm * days
    assert result.payout_date == compute_payout(offer, result.validated_on).payout_date
    assert result.amount_incl_vat == (tjm * days * Decimal("1.2")).quantize(Decimal("0.01"))


async def next_run(harness: MissionHarness, workflow_id: str, run_id: str) -> str | None:
    """The run a run continued as new into, if it did."""
    handle = harness.env.client.get_workflow_handle(workflow_id, run_id=run_id)
    last = (await handle.fetch_history()).events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return str(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def run_chain(
    harness: MissionHarness, workflow_id: str, first_run: str
) -> list[tuple[int, int]]:
    """(events, bytes) of every run of a workflow, following its continue-as-new chain."""
    sizes: list[tuple[int, int]] = []
    run_id: str | None = first_run
    while run_id:
        handle = harness.env.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        sizes.append((len(history.events), sum(e.ByteSize() for e in history.events)))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return sizes
