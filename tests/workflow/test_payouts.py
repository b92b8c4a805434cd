"""Payout workflows on the time-skipping server, with the real activities (PostgreSQL, SMTP
sink): dates and amounts from `domain/`, paid exactly once, client payments and credit notes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import (
    Client,
    ClientPayment,
    Cra,
    CraLine,
    CraLineKind,
    CreditNote,
    EmailOutbox,
    Invoice,
    InvoiceKind,
    Mission,
    MissionEvent,
    Payout,
    Proposal,
    Provider,
    Rfp,
)
from domain.calendar import next_business_day_on_or_after
from domain.clock import paris_date, paris_instant
from domain.fees import offer_fee, service_amount
from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import compute_payout, payout_terms
from domain.penalties import late_payment_penalty
from schemas.activities import TransitionResult
from schemas.enums import (
    CraStatus,
    InvoiceStatus,
    LegalForm,
    MissionStage,
    PaymentOffer,
    PayoutStatus,
    ProposalStatus,
)
from schemas.events import ClientPaymentReceived, InvoiceCancelled, InvoiceImported
from schemas.ids import payout_workflow_id
from schemas.names import (
    CLIENT_PAYMENT_RECEIVED,
    INVOICE_CANCELLED,
    INVOICE_IMPORTED,
    PAYOUT_WORKFLOW,
    RECORD_PAYOUT_TRANSITION,
)
from schemas.payouts import PayoutInput, PayoutProvider, PayoutState, PayoutTransition
from settings import Settings
from starter.devstack.mailsink import MailSink, ReceivedMessage
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import skip_time
from tests.support.factories import new_siren
from tests.support.waits import about, eventually
from workflows.payout import PAY_AT
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"
Handle = WorkflowHandle[Any, Any]
TJM = Decimal("650.00")
DAYS = Decimal("18.5")
EXPENSES = Decimal("120.00")
VAT = Decimal("2429.00")
"""20 % of the invoice's 12,145.00 excl. VAT (18.5 days at 650.00, 120.00 of expenses)."""
INCL_VAT = Decimal("14574.00")
MONTH = "2026-11"


class Harness:
    def __init__(
        self, env: WorkflowEnvironment, queue: str, sink: MailSink, engine: AsyncEngine
    ) -> None:
        self.env = env
        self.queue = queue
        self.sink = sink
        self.engine = engine

    async def today(self) -> date:
        return paris_date(await self.env.get_current_time())

    async def seed(
        self, *, invoice_number: str | None, due_on: date | None, incl_vat: Decimal
    ) -> tuple[str, PayoutProvider]:
        """The rows a payout refers to: client, provider, proposal, mission, CRA, invoice."""
        mission_id = f"PAY-{uuid.uuid4().hex[:12]}"
        siren = new_siren()
        client_id = f"C-{mission_id}"
        provider = PayoutProvider(
            siren=siren, email=f"{mission_id.lower()}@provider.example", name="Durand Conseil"
        )
        start = date(2026, 11, 1)
        excl_vat = (incl_vat / Decimal("1.2")).quantize(Decimal("0.01"))
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(Client).values(
                    client_id=client_id, name="Acme Industries", siren="552100554"
                )
            )
            await conn.execute(
                insert(Provider).values(
                    siren=siren,
                    name=provider.name,
                    email=provider.email,
                    country="FR",
                    legal_form=LegalForm.COMPANY,
                )
            )
            await conn.execute(insert(Rfp).values(rfp_id=f"RFP-{mission_id}", client_id=client_id))
            await conn.execute(
                insert(Proposal).values(
                    proposal_id=mission_id,
                    rfp_id=f"RFP-{mission_id}",
                    provider_siren=siren,
                    client_id=client_id,
                    tjm=TJM,
                    start_date=start,
                    end_date=start + timedelta(days=180),
                    status=ProposalStatus.RETAINED,
                )
            )
            await conn.execute(
                insert(Mission).values(
                    mission_id=mission_id,
                    client_id=client_id,
                    provider_siren=siren,
                    stage=MissionStage.IN_PROGRESS,
                    start_date=start,
                    end_date=start + timedelta(days=180),
                )
            )
            cra_id = (
                await conn.execute(
                    insert(Cra)
                    .values(
                        mission_id=mission_id, month=MONTH, days=DAYS, status=CraStatus.VALIDATED
                    )
                    .returning(Cra.id)
                )
            ).scalar_one()
            # A validated CRA has its priced lines (credit notes are rendered from them).
            await conn.execute(
                insert(CraLine).values(
                    cra_id=cra_id,
                    position=1,
                    kind=CraLineKind.DAYS,
                    label="Jours travaillés",
                    quantity=DAYS,
                    unit_price=TJM,
                    amount=service_amount(TJM, DAYS),
                )
            )
            await conn.execute(
                insert(CraLine).values(
                    cra_id=cra_id,
                    position=2,
                    kind=CraLineKind.EXPENSE,
                    label="Train",
                    amount=EXPENSES,
                    vat_rate=Decimal("20"),
                    receipt_ref="s3://receipts/train.pdf",
                )
            )
            await conn.execute(
                insert(Invoice).values(
                    issuer_siren=siren,
                    number=invoice_number,
                    mission_id=mission_id,
                    month=MONTH,
                    kind=InvoiceKind.GENERATED if invoice_number else InvoiceKind.IMPORTED,
                    status=InvoiceStatus.IN_PAYMENT,
                    amount_excl_vat=excl_vat,
                    vat_amount=incl_vat - excl_vat,
                    amount_incl_vat=incl_vat,
                    due_on=due_on,
                )
            )
        return mission_id, provider

    async def start(
        self,
        offer: PaymentOffer,
        *,
        validated_on: date | None = None,
        invoice_date: date | None = None,
        manual_import: bool = False,
        due_in_days: int = 30,
    ) -> tuple[Handle, PayoutInput]:
        validated_on = validated_on or await self.today()
        number = None if manual_import else f"F-{uuid.uuid4().hex[:10]}"
        mission_id, provider = await self.seed(
            invoice_number=number,
            due_on=validated_on + timedelta(days=due_in_days),
            incl_vat=INCL_VAT,
        )
        # The terms as the CRA validation computes them (activities/cra.py).
        amounts = compute_invoice_amounts(
            tjm=TJM, days=DAYS, expenses=[Expense(amount_excl_vat=EXPENSES, vat_rate=Decimal(20))]
        )
        assert (amounts.vat, amounts.total_incl_vat) == (VAT, INCL_VAT)
        terms = payout_terms(
            offer,
            validated_on,
            None if manual_import else invoice_date or validated_on,
            amounts,
            tjm=TJM,
            days=DAYS,
        )
        inp = PayoutInput(
            mission_id=mission_id,
            month=MONTH,
            provider=provider,
            invoice_number=number,
            terms=terms,
        )
        handle = await self.env.client.start_workflow(
            PAYOUT_WORKFLOW,
            inp,
            id=payout_workflow_id(mission_id, MONTH),
            task_queue=self.queue,
            result_type=PayoutState,
        )
        return handle, inp

    async def state(self, handle: Handle) -> PayoutState:
        result: PayoutState = await handle.query("state", result_type=PayoutState)
        return result

    async def reach_payment(self, payout_date: date) -> None:
        """Let the test server's clock run to the payout's instant (PAY_AT, Paris, on its
        date): a payout due today waits for 09:00, whatever the hour the test started at."""
        delay = (
            paris_instant(payout_date, PAY_AT)
            + timedelta(minutes=1)
            - await self.env.get_current_time()
        )
        if delay > timedelta(0):
            await skip_time(self.env, delay)

    async def until(self, handle: Handle, check: Callable[[PayoutState], bool]) -> PayoutState:
        async def reached() -> bool:
            return check(await self.state(handle))

        await eventually(reached, within=15)
        return await self.state(handle)

    async def send(self, handle: Handle, name: str, payload: Any) -> PayoutState:
        result: PayoutState = await handle.execute_update(
            name, payload, id=uuid.uuid4().hex, result_type=PayoutState
        )
        return result

    async def mails(
        self, predicate: Callable[[ReceivedMessage], bool], count: int
    ) -> list[ReceivedMessage]:
        async def arrived() -> bool:
            return len([m for m in self.sink.messages if predicate(m)]) >= count

        await eventually(arrived, within=15)
        return [m for m in self.sink.messages if predicate(m)]

    async def count(self, stmt: Any) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def invoice_row(self, mission_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(Invoice.__table__).where(Invoice.mission_id == mission_id)
                )
            ).one()

    async def payout_row(self, mission_id: str) -> Any:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(Payout.__table__).where(Payout.mission_id == mission_id))
            ).one()


def _gross() -> Decimal:
    """What production pays: the invoice's total incl. VAT (days and expenses excl. VAT, and
    the 20 % VAT the seeded invoice carries)."""
    return service_amount(TJM, DAYS) + EXPENSES + VAT


@pytest_asyncio.fixture
async def make_harness(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> AsyncIterator[Callable[..., Any]]:
    """A worker on its own queue; `extra` activities replace the real ones by name."""
    env = own_time_skipping_env
    activities = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    workers: list[Worker] = []

    async def make(*extra: Callable[..., Any]) -> Harness:
        queue = f"tq-{uuid.uuid4().hex}"
        replaced = {activity._Definition.must_from_callable(fn).name for fn in extra}
        kept = [
            fn
            for fn in activities.all()
            if activity._Definition.must_from_callable(fn).name not in replaced
        ]
        worker = Worker(
            env.client,
            task_queue=queue,
            workflows=list(WORKFLOWS),
            activities=[*kept, *extra],
        )
        await worker.__aenter__()
        workers.append(worker)
        return Harness(env, queue, smtp_sink, db_engine)

    yield make
    for worker in workers:
        await worker.__aexit__(None, None, None)
    await activities.close()


async def test_fixed_date_and_immediate_payouts_match_domain(
    make_harness: Callable[..., Any],
) -> None:
    """Each offer's payout date and amounts are domain's; Basic's early client payment does
    not move it; a Basic invoice dated early is pulled back by the legal cap; Flash validated
    Friday 2026-07-10 pays Thursday 2026-07-16 (at once: that date is past on this server)."""
    h: Harness = await make_harness()
    today = await h.today()
    cases = [
        (PaymentOffer.BASIC, today, None),
        (PaymentOffer.BASIC, today, today - timedelta(days=12)),  # legal cap
        (PaymentOffer.EXPRESS, today, None),
        (PaymentOffer.FLASH, today, None),
        (PaymentOffer.FLASH, date(2026, 7, 10), None),
        (PaymentOffer.IMMEDIATE, today, None),
    ]
    started = [
        (await h.start(offer, validated_on=validated, invoice_date=invoiced), invoiced)
        for offer, validated, invoiced in cases
    ]
    basic, basic_inp = started[0][0]
    # The client pays the Basic invoice early: recorded, no penalty, the date does not move.
    early = await h.send(
        basic,
        CLIENT_PAYMENT_RECEIVED,
        ClientPaymentReceived(
            invoice_number=basic_inp.invoice_number or "",
            amount=Decimal("14574.00"),
            paid_on=today,
        ),
    )
    assert early.facts.client_paid_on == today and early.facts.client_penalties == 0
    assert early.payout_date == compute_payout(PaymentOffer.BASIC, today).payout_date
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # the same payment, resent
        await h.send(
            basic,
            CLIENT_PAYMENT_RECEIVED,
            ClientPaymentReceived(
                invoice_number=basic_inp.invoice_number or "", amount=Decimal("1.00"), paid_on=today
            ),
        )
    assert "already received" in str(refused.value.cause)

    for (handle, inp), invoiced in started:
        expected = compute_payout(inp.terms.offer, inp.terms.validated_on, invoiced)
        assert expected.payout_date is not None
        await h.reach_payment(expected.payout_date)
        result = await h.until(handle, lambda s: s.status is PayoutStatus.PAID)
        fee = offer_fee(inp.terms.offer, TJM, DAYS)
        assert result.status is PayoutStatus.PAID
        assert result.payout_date == expected.payout_date
        assert (result.amount, result.fee, result.net_amount) == (_gross(), fee, _gross() - fee)
        assert result.amount == (await h.invoice_row(inp.mission_id)).amount_incl_vat
        assert result.paid_at is not None
        # Paid on its date, from 09:00 Paris; one whose date is past when it starts, at once.
        assert paris_date(result.paid_at) == max(expected.payout_date, today)
        assert result.paid_at >= paris_instant(expected.payout_date, PAY_AT)
        assert result.facts.capped_by_legal_limit == expected.capped_by_legal_limit
        row = await h.payout_row(inp.mission_id)
        assert (row.status, row.due_on, row.net_amount, row.fee) == (
            PayoutStatus.PAID,
            expected.payout_date,
            _gross() - fee,
            fee,
        )
        assert row.invoice_id is not None
        mails = await h.mails(about(inp.mission_id, "Paiement effectué"), 1)
        assert len(mails) == 1 and mails[0].rcpt_tos == (inp.provider.email,)
    assert started[1][0][1].terms.offer is PaymentOffer.BASIC
    assert (await h.state(started[1][0][0])).facts.capped_by_legal_limit
    assert (await h.state(started[4][0][0])).payout_date == date(2026, 7, 16)
    await record_history(basic, "payout_basic")
    await record_history(started[3][0][0], "payout_flash")
    await record_history(started[5][0][0], "payout_immediate")


async def test_paid_once_when_the_pay_activity_is_retried_after_its_commit(
    make_harness: Callable[..., Any], stack_settings: Settings
) -> None:
    real = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    crashed: list[str] = []

    @activity.defn(name=RECORD_PAYOUT_TRANSITION)
    async def crash_after_commit(t: PayoutTransition) -> TransitionResult:
        result = await real.payouts.record_payout_transition(t)
        if t.kind == "paid" and not crashed:
            crashed.append(t.key)
            raise RuntimeError("worker lost after the commit, before the reply")
        return result

    try:
        h: Harness = await make_harness(crash_after_commit)
        handle, inp = await h.start(PaymentOffer.IMMEDIATE)
        expected = next_business_day_on_or_after(await h.today())
        await h.reach_payment(expected)
        state = await h.until(handle, lambda s: s.status is PayoutStatus.PAID)
        assert crashed and state.payout_date == expected
        assert state.paid_at is not None and paris_date(state.paid_at) == expected
        await h.mails(about(inp.mission_id, "Paiement effectué"), 1)
        assert (
            await h.count(
                select(func.count()).where(
                    Payout.mission_id == inp.mission_id, Payout.status == PayoutStatus.PAID
                )
            )
            == 1
        )
        assert (
            await h.count(
                select(func.count()).where(
                    MissionEvent.mission_id == inp.mission_id, MissionEvent.kind == "payout.paid"
                )
            )
            == 1
        )
        assert (
            await h.count(
                select(func.count()).where(
                    EmailOutbox.mission_id == inp.mission_id, EmailOutbox.template == "payout_paid"
                )
            )
            == 1
        )
        assert len([m for m in h.sink.messages if about(inp.mission_id, "Paiement")(m)]) == 1
    finally:
        await real.close()


async def test_back_to_back_waits_for_the_client_payment_then_pays(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness()
    today = await h.today()
    handle, inp = await h.start(PaymentOffer.BACK_TO_BACK)
    state = await h.until(handle, lambda s: s.status is PayoutStatus.WAITING_CLIENT_PAYMENT)
    assert state.payout_date is None and "après l'encaissement" in state.facts.explanation
    await skip_time(h.env, timedelta(days=20))
    assert (await h.state(handle)).status is PayoutStatus.WAITING_CLIENT_PAYMENT
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.send(
            handle,
            CLIENT_PAYMENT_RECEIVED,
            ClientPaymentReceived(invoice_number="F-OTHER", amount=Decimal("1.00"), paid_on=today),
        )
    assert "not the invoice of this payout" in str(refused.value.cause)
    paid_on = today + timedelta(days=20)
    await h.send(
        handle,
        CLIENT_PAYMENT_RECEIVED,
        ClientPaymentReceived(
            invoice_number=inp.invoice_number or "", amount=Decimal("14574.00"), paid_on=paid_on
        ),
    )
    await h.reach_payment(next_business_day_on_or_after(paid_on))
    result: PayoutState = await handle.result()
    assert result.status is PayoutStatus.PAID
    assert result.payout_date == next_business_day_on_or_after(paid_on)
    assert result.fee == 0 and result.net_amount == _gross()
    assert result.facts.client_days_late == 0  # due 30 days after validation
    assert "Client payé le" in result.facts.explanation
    await h.mails(about(inp.mission_id, "Paiement effectué"), 1)
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == "paid" and invoice.paid_at is not None  # the client settled it
    await record_history(handle, "payout_back_to_back")


async def test_a_late_client_payment_records_penalties_and_does_not_delay_the_payout(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness()
    today = await h.today()
    handle, inp = await h.start(PaymentOffer.BASIC)
    expected = compute_payout(PaymentOffer.BASIC, today).payout_date
    assert expected is not None
    await skip_time(h.env, timedelta(days=65))
    state = await h.state(handle)
    assert state.status is PayoutStatus.PAID and state.payout_date == expected
    assert state.paid_at is not None and paris_date(state.paid_at) == expected
    due_on = today + timedelta(days=30)
    paid_on = today + timedelta(days=65)
    await h.send(
        handle,
        CLIENT_PAYMENT_RECEIVED,
        ClientPaymentReceived(
            invoice_number=inp.invoice_number or "", amount=Decimal("14574.00"), paid_on=paid_on
        ),
    )
    result: PayoutState = await handle.result()
    penalty = late_payment_penalty(Decimal("14574.00"), due_on, paid_on)
    assert result.facts.client_days_late == 35 == penalty.days_late
    assert result.facts.client_penalties == penalty.interest > 0
    assert result.facts.client_indemnity == Decimal("40.00")
    async with h.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ClientPayment.__table__)
                .join(Invoice, Invoice.id == ClientPayment.invoice_id)
                .where(Invoice.mission_id == inp.mission_id)
            )
        ).one()
    assert (row.days_late, row.penalties, row.indemnity) == (35, penalty.interest, Decimal("40"))
    assert (await h.payout_row(inp.mission_id)).paid_at == state.paid_at
    assert result.payout_date == expected and result.status is PayoutStatus.PAID


async def test_cancelled_invoice_cancels_a_pending_payout_and_flags_a_paid_one(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness()
    pending, pending_inp = await h.start(PaymentOffer.BASIC)
    paid, paid_inp = await h.start(PaymentOffer.IMMEDIATE)
    await h.until(pending, lambda s: s.status is PayoutStatus.SCHEDULED)
    await h.reach_payment(next_business_day_on_or_after(await h.today()))
    await h.until(paid, lambda s: s.status is PayoutStatus.PAID)
    assert (await h.state(pending)).status is PayoutStatus.SCHEDULED
    for handle, inp in ((pending, pending_inp), (paid, paid_inp)):
        await h.send(
            handle,
            INVOICE_CANCELLED,
            InvoiceCancelled(invoice_number=inp.invoice_number or "", reason="Avoir AV-1"),
        )
    cancelled: PayoutState = await pending.result()
    flagged: PayoutState = await paid.result()
    assert cancelled.status is PayoutStatus.CANCELLED and cancelled.paid_at is None
    assert flagged.status is PayoutStatus.FLAGGED and flagged.reason == "Avoir AV-1"
    assert (await h.payout_row(pending_inp.mission_id)).status == PayoutStatus.CANCELLED
    assert (await h.payout_row(paid_inp.mission_id)).status == PayoutStatus.FLAGGED
    mails = await h.mails(about(pending_inp.mission_id, "Paiement annulé"), 1)
    assert mails[0].rcpt_tos == (pending_inp.provider.email,)
    mails = await h.mails(about(paid_inp.mission_id, "facture annulée après paiement"), 1)
    assert mails[0].rcpt_tos == ("ops@contracting.localhost",)
    assert not [m for m in h.sink.messages if about(pending_inp.mission_id, "effectué")(m)]


async def test_manual_import_waits_for_the_invoice_then_pays_immediately(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness()
    today = await h.today()
    handle, inp = await h.start(PaymentOffer.IMMEDIATE, manual_import=True)
    state = await h.until(handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT)
    assert state.payout_date is None and "pas encore importée" in state.facts.explanation
    await skip_time(h.env, timedelta(days=9))
    imported_on = await h.today()
    assert imported_on >= today + timedelta(days=9)
    await h.send(
        handle,
        INVOICE_IMPORTED,
        InvoiceImported(
            mission_id=inp.mission_id,
            month=MONTH,
            number="F-IMPORTED-1",
            issued_on=today,
            amount_excl_vat=Decimal("12145.00"),
            vat_amount=Decimal("2429.00"),
            file_ref="s3://invoices/F-IMPORTED-1.pdf",
        ),
    )
    await skip_time(h.env, timedelta(days=4))  # past the first business day at 09:00
    state = await h.until(handle, lambda s: s.status is PayoutStatus.PAID)
    assert state.payout_date == next_business_day_on_or_after(imported_on)
    assert state.facts.invoice_date == imported_on
    assert state.fee == offer_fee(PaymentOffer.IMMEDIATE, TJM, DAYS) == Decimal("370.00")
    assert state.invoice_number == "F-IMPORTED-1"


def _import(inp: PayoutInput, number: str, excl_vat: str, vat: str) -> InvoiceImported:
    return InvoiceImported(
        mission_id=inp.mission_id,
        month=MONTH,
        number=number,
        issued_on=inp.terms.validated_on,
        amount_excl_vat=Decimal(excl_vat),
        vat_amount=Decimal(vat),
        file_ref=f"s3://invoices/{number}.pdf",
    )


async def test_a_mismatched_import_blocks_the_invoice_and_a_matching_one_lets_it_pay(
    make_harness: Callable[..., Any],
) -> None:
    """The import is checked against the validated CRA (the invoice row's amounts): a wrong
    amount blocks the invoice with the reason, the provider is told the fix goes through next
    month's CRA, the payout keeps waiting; the right invoice is then numbered and paid."""
    h: Harness = await make_harness()
    handle, inp = await h.start(PaymentOffer.IMMEDIATE, manual_import=True)
    await h.until(handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT)
    number = f"F-{uuid.uuid4().hex[:10]}"

    state = await h.send(handle, INVOICE_IMPORTED, _import(inp, number, "12100.00", "2429.00"))
    reason = "montant HT 12 145,00 € attendu, 12 100,00 € importé"
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT
    assert state.invoice_blocked_reason == reason
    assert state.invoice_number is None and state.payout_date is None
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.BLOCKED and invoice.blocked_reason == reason
    assert invoice.number is None
    mails = await h.mails(about(inp.mission_id, "Facture bloquée"), 1)
    assert mails[0].rcpt_tos == (inp.provider.email,)
    body = mails[0].text()
    assert "12 100,00 €" in body and "CRA du mois suivant" in body

    state = await h.send(handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00"))
    assert state.invoice_number == number and state.invoice_blocked_reason is None
    imported_on = await h.today()
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.blocked_reason is None
    assert invoice.number == number and invoice.issued_on == imported_on
    await skip_time(h.env, timedelta(days=4))  # past the first business day at 09:00
    state = await h.until(handle, lambda s: s.status is PayoutStatus.PAID)
    assert state.payout_date == next_business_day_on_or_after(imported_on)
    # Imported once: a second import of the month is refused.
    with pytest.raises(WorkflowUpdateFailedError):
        await h.send(handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00"))


async def test_cancelling_writes_one_credit_note_and_cancels_the_invoice(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness()
    handle, inp = await h.start(PaymentOffer.BASIC)
    await h.until(handle, lambda s: s.status is PayoutStatus.SCHEDULED)
    cancel = InvoiceCancelled(invoice_number=inp.invoice_number or "", reason="Erreur de TJM")
    await h.send(handle, INVOICE_CANCELLED, cancel)
    await handle.result()
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.CANCELLED and invoice.cancelled_at is not None
    async with h.engine.connect() as conn:
        notes = (
            await conn.execute(select(CreditNote).where(CreditNote.invoice_id == invoice.id))
        ).all()
    assert len(notes) == 1
    assert notes[0].number == f"AV-{invoice.issuer_siren}-000001"
    assert notes[0].reason == "Erreur de TJM"
    assert notes[0].amount_incl_vat == invoice.amount_incl_vat


async def test_importing_again_after_a_blocked_import(
    make_harness: Callable[..., Any],
) -> None:
    """The policy after a blocked import (workflows/payout.py): the same import again is
    refused (409, nothing written) and says where the difference goes; other wrong amounts
    are blocked again with their own reason and email; an import matching the validated CRA
    is accepted and the payout proceeds; after that, every import is refused."""
    h: Harness = await make_harness()
    handle, inp = await h.start(PaymentOffer.BASIC, manual_import=True)
    await h.until(handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT)
    number = f"F-{uuid.uuid4().hex[:10]}"
    wrong = _import(inp, number, "12100.00", "2429.00")
    await h.send(handle, INVOICE_IMPORTED, wrong)
    await h.mails(about(inp.mission_id, "Facture bloquée"), 1)
    blocked_rows = select(func.count()).where(
        MissionEvent.mission_id == inp.mission_id, MissionEvent.kind == "invoice.blocked"
    )
    assert await h.count(blocked_rows) == 1

    # The very same invoice again, under a new event id: refused before history.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.send(handle, INVOICE_IMPORTED, wrong.model_copy(update={"file_ref": "s3://x"}))
    message = str(refused.value.cause)
    assert "already imported and blocked" in message and "next month's CRA" in message
    assert "12145.00 excl. VAT and 2429.00 VAT" in message
    assert await h.count(blocked_rows) == 1

    # Other wrong amounts: blocked again, with their own reason and email.
    state = await h.send(handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2400.00"))
    assert state.invoice_blocked_reason == "TVA 2 429,00 € attendue, 2 400,00 € importée"
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT and state.payout_date is None
    mails = await h.mails(about(inp.mission_id, "Facture bloquée"), 2)
    assert "2 400,00 €" in mails[-1].text()
    assert await h.count(blocked_rows) == 2
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.BLOCKED and "2 400,00" in invoice.blocked_reason

    # The CRA's amounts: accepted, the payout's date counts from this import.
    state = await h.send(handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00"))
    imported_on = await h.today()
    assert state.invoice_number == number and state.invoice_blocked_reason is None
    state = await h.until(handle, lambda s: s.payout_date is not None)
    assert (
        state.payout_date
        == compute_payout(PaymentOffer.BASIC, inp.terms.validated_on, imported_on).payout_date
    )
    invoice = await h.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.issued_on == imported_on
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.send(handle, INVOICE_IMPORTED, _import(inp, "F-OTHER", "12145.00", "2429.00"))
    assert "already imported" in str(refused.value.cause)
    assert len([m for m in h.sink.messages if about(inp.mission_id, "Facture bloquée")(m)]) == 2


async def test_a_basic_payout_waits_for_its_imported_invoice(
    make_harness: Callable[..., Any],
) -> None:
    """Manual import under Basic: nothing is scheduled or paid while the invoice is not
    imported, even past the 60 days; the date then counts from the validation, capped at 60
    days after the import (the invoice date)."""
    h: Harness = await make_harness()
    validated_on = await h.today()
    handle, inp = await h.start(PaymentOffer.BASIC, manual_import=True)
    await skip_time(h.env, timedelta(days=70))
    state = await h.state(handle)
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT and state.payout_date is None
    assert "pas encore importée" in state.facts.explanation
    assert not [m for m in h.sink.messages if about(inp.mission_id, "Paiement effectué")(m)]

    state = await h.send(handle, INVOICE_IMPORTED, _import(inp, "F-LATE-1", "12145.00", "2429.00"))
    assert state.invoice_number == "F-LATE-1"
    imported_on = await h.today()
    expected = compute_payout(PaymentOffer.BASIC, validated_on, imported_on)
    assert expected.payout_date is not None
    state = await h.until(handle, lambda s: s.payout_date is not None)
    assert state.payout_date == expected.payout_date and state.facts.invoice_date == imported_on
    assert expected.payout_date < imported_on  # the 60 days have passed: paid at once
    state = await h.until(handle, lambda s: s.status is PayoutStatus.PAID)
    assert state.paid_at is not None and paris_date(state.paid_at) == imported_on
    row = await h.payout_row(inp.mission_id)
    assert row.status == PayoutStatus.PAID and row.due_on == expected.payout_date
