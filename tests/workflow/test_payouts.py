"""Payout workflows on the time-skipping server, with the real activities (PostgreSQL, SMTP
sink): dates and amounts from `domain/`, paid exactly once, client payments and credit notes."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.registry import Activities
from db.models import (
    ClientPayment,
    CreditNote,
    EmailOutbox,
    Invoice,
    MissionEvent,
    Payout,
)
from domain.calendar import next_business_day_on_or_after
from domain.clock import paris_date, paris_instant
from domain.fees import offer_fee
from domain.payouts import PAY_AT, compute_payout
from domain.penalties import late_payment_penalty
from schemas.activities import TransitionResult
from schemas.enums import (
    InvoiceStatus,
    PaymentOffer,
    PayoutStatus,
)
from schemas.events import InvoiceCancelled, InvoiceImported
from schemas.names import (
    INVOICE_CANCELLED,
    INVOICE_IMPORTED,
    RECORD_PAYOUT_TRANSITION,
)
from schemas.payouts import PayoutInput, PayoutState, PayoutTransition
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import skip_time
from tests.support.payouts import DAYS, MONTH, TJM, PayoutHarness, gross
from tests.support.waits import about
from tests.support.workers import real_worker


async def test_fixed_date_and_immediate_payouts_match_domain(
    payout_harness: PayoutHarness,
) -> None:
    """Each offer's payout date and amounts are domain's; Basic's early client payment does
    not move it; a Basic invoice dated early is pulled back by the legal cap; Flash validated
    Friday 2026-07-10 pays Thursday 2026-07-16 (at once: that date is past on this server)."""
    today = await payout_harness.today()
    cases = [
        (PaymentOffer.BASIC, today, None),
        (PaymentOffer.BASIC, today, today - timedelta(days=12)),  # legal cap
        (PaymentOffer.EXPRESS, today, None),
        (PaymentOffer.FLASH, today, None),
        (PaymentOffer.FLASH, date(2026, 7, 10), None),
        (PaymentOffer.IMMEDIATE, today, None),
    ]
    started = [
        (await payout_harness.start(offer, validated_on=validated, invoice_date=invoiced), invoiced)
        for offer, validated, invoiced in cases
    ]
    basic, basic_inp = started[0][0]
    # The client pays the Basic invoice early: recorded, no penalty, the date does not move.
    event_id = f"evt-{uuid.uuid4().hex}"
    early = await payout_harness.client_pays(
        basic, today, invoice_number=basic_inp.invoice_number, event_id=event_id
    )
    assert early.facts.client_paid_on == today and early.facts.client_penalties == 0
    assert early.payout_date == compute_payout(PaymentOffer.BASIC, today).payout_date
    again = await payout_harness.client_pays(  # the same event, delivered again: counted once
        basic, today, invoice_number=basic_inp.invoice_number, event_id=event_id
    )
    assert again.facts.client_paid == gross() and again.facts.client_overpaid_by == 0

    for (handle, inp), invoiced in started:
        expected = compute_payout(inp.terms.offer, inp.terms.validated_on, invoiced)
        assert expected.payout_date is not None
        await payout_harness.reach_payment(expected.payout_date)
        result = await payout_harness.until(handle, lambda s: s.status is PayoutStatus.PAID)
        fee = offer_fee(inp.terms.offer, TJM, DAYS)
        assert result.status is PayoutStatus.PAID
        assert result.payout_date == expected.payout_date
        assert (result.amount, result.fee, result.net_amount) == (gross(), fee, gross() - fee)
        assert result.amount == (await payout_harness.invoice_row(inp.mission_id)).amount_incl_vat
        assert result.paid_at is not None
        # Paid on its date, from 09:00 Paris; one whose date is past when it starts, at once.
        assert paris_date(result.paid_at) == max(expected.payout_date, today)
        assert result.paid_at >= paris_instant(expected.payout_date, PAY_AT)
        assert result.facts.capped_by_legal_limit == expected.capped_by_legal_limit
        row = await payout_harness.payout_row(inp.mission_id)
        assert (row.status, row.due_on, row.net_amount, row.fee) == (
            PayoutStatus.PAID,
            expected.payout_date,
            gross() - fee,
            fee,
        )
        assert row.invoice_id is not None
        mails = await payout_harness.mails(about(inp.mission_id, "Paiement effectué"), 1)
        assert len(mails) == 1 and mails[0].rcpt_tos == (inp.provider.email,)
    assert started[1][0][1].terms.offer is PaymentOffer.BASIC
    assert (await payout_harness.state(started[1][0][0])).facts.capped_by_legal_limit
    assert (await payout_harness.state(started[4][0][0])).payout_date == date(2026, 7, 16)
    await record_history(basic, "payout_basic")
    await record_history(started[3][0][0], "payout_flash")
    await record_history(started[5][0][0], "payout_immediate")


async def test_paid_once_when_the_pay_activity_is_retried_after_its_commit(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> None:
    real: list[Activities] = []
    crashed: list[str] = []

    @activity.defn(name=RECORD_PAYOUT_TRANSITION)
    async def crash_after_commit(t: PayoutTransition) -> TransitionResult:
        result = await real[0].payouts.record_payout_transition(t)
        if t.kind == "paid" and not crashed:
            crashed.append(t.key)
            raise RuntimeError("worker lost after the commit, before the reply")
        return result

    env = own_time_skipping_env
    async with real_worker(env, stack_settings, crash_after_commit) as (queue, activities):
        real.append(activities)
        payout_harness = PayoutHarness(env, queue, db_engine, smtp_sink)
        handle, inp = await payout_harness.start(PaymentOffer.IMMEDIATE)
        expected = next_business_day_on_or_after(await payout_harness.today())
        await payout_harness.reach_payment(expected)
        state = await payout_harness.until(handle, lambda s: s.status is PayoutStatus.PAID)
        assert crashed and state.payout_date == expected
        assert state.paid_at is not None and paris_date(state.paid_at) == expected
        await payout_harness.mails(about(inp.mission_id, "Paiement effectué"), 1)
        assert (
            await payout_harness.count(
                select(func.count()).where(
                    Payout.mission_id == inp.mission_id, Payout.status == PayoutStatus.PAID
                )
            )
            == 1
        )
        assert (
            await payout_harness.count(
                select(func.count()).where(
                    MissionEvent.mission_id == inp.mission_id, MissionEvent.kind == "payout.paid"
                )
            )
            == 1
        )
        assert (
            await payout_harness.count(
                select(func.count()).where(
                    EmailOutbox.mission_id == inp.mission_id, EmailOutbox.template == "payout_paid"
                )
            )
            == 1
        )
        assert (
            len([m for m in payout_harness.sink.messages if about(inp.mission_id, "Paiement")(m)])
            == 1
        )


async def test_back_to_back_waits_for_the_whole_payment_then_pays_once(
    payout_harness: PayoutHarness,
) -> None:
    """A partial payment (delivered twice: counted once) is recorded and the payout waits,
    saying what is still due; the payment that covers the invoice releases it, dated from that
    payment's day; the provider is paid once."""
    today = await payout_harness.today()
    handle, inp = await payout_harness.start(PaymentOffer.BACK_TO_BACK)
    state = await payout_harness.until(
        handle, lambda s: s.status is PayoutStatus.WAITING_CLIENT_PAYMENT
    )
    assert state.payout_date is None and "après l'encaissement" in state.facts.explanation
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await payout_harness.client_pays(
            handle, today, invoice_number="F-OTHER", amount=Decimal("1.00")
        )
    assert "not the invoice of this payout" in str(refused.value.cause)

    partial_on = today + timedelta(days=5)
    await skip_time(payout_harness.env, timedelta(days=5))
    event_id = f"evt-{uuid.uuid4().hex}"
    for _ in range(2):  # the platform sends the same event again
        partial = await payout_harness.client_pays(
            handle,
            partial_on,
            invoice_number=inp.invoice_number,
            amount=Decimal("4000.00"),
            event_id=event_id,
        )
        assert partial.status is PayoutStatus.WAITING_CLIENT_PAYMENT
        assert partial.payout_date is None and partial.facts.client_paid_on is None
        assert partial.facts.client_paid == Decimal("4000.00")
        assert partial.facts.client_still_due == gross() - Decimal("4000.00")
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.paid_at is None
    await skip_time(payout_harness.env, timedelta(days=15))
    assert (await payout_harness.state(handle)).status is PayoutStatus.WAITING_CLIENT_PAYMENT

    paid_on = today + timedelta(days=20)
    await payout_harness.client_pays(
        handle, paid_on, invoice_number=inp.invoice_number, amount=gross() - Decimal("4000.00")
    )
    await payout_harness.reach_payment(next_business_day_on_or_after(paid_on))
    result: PayoutState = await handle.result()
    assert result.status is PayoutStatus.PAID
    assert result.payout_date == next_business_day_on_or_after(paid_on)
    assert result.fee == 0 and result.net_amount == gross()
    assert result.facts.client_paid_on == paid_on and result.facts.client_still_due == 0
    assert result.facts.client_days_late == 0  # due 30 days after validation
    assert "Client payé le" in result.facts.explanation
    await payout_harness.mails(about(inp.mission_id, "Paiement effectué"), 1)
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == "paid" and invoice.paid_at is not None  # the client settled it
    async with payout_harness.engine.connect() as conn:
        payments = (
            await conn.execute(
                select(ClientPayment.amount, ClientPayment.paid_on)
                .join(Invoice, Invoice.id == ClientPayment.invoice_id)
                .where(Invoice.mission_id == inp.mission_id)
                .order_by(ClientPayment.paid_on)
            )
        ).all()
        paid_rows = await conn.scalar(
            select(func.count())
            .select_from(Payout)
            .where(Payout.mission_id == inp.mission_id, Payout.status == PayoutStatus.PAID)
        )
    assert [tuple(p) for p in payments] == [
        (Decimal("4000.00"), partial_on),
        (gross() - Decimal("4000.00"), paid_on),
    ]
    assert paid_rows == 1
    await record_history(handle, "payout_back_to_back")


async def test_an_overpayment_is_recorded_and_flagged_to_ops(payout_harness: PayoutHarness) -> None:
    """Basic, paid in full then 50 € more before its date: both payments recorded, the second
    flagged (timeline row, one e-mail to ops, even when delivered again); the date does not
    move."""
    today = await payout_harness.today()
    handle, inp = await payout_harness.start(PaymentOffer.BASIC)
    await payout_harness.until(handle, lambda s: s.status is PayoutStatus.SCHEDULED)
    await payout_harness.client_pays(handle, today, invoice_number=inp.invoice_number)
    event_id = f"evt-{uuid.uuid4().hex}"
    for _ in range(2):
        state = await payout_harness.client_pays(
            handle,
            today,
            invoice_number=inp.invoice_number,
            amount=Decimal("50.00"),
            event_id=event_id,
        )
        assert state.facts.client_overpaid_by == Decimal("50.00")
        assert state.facts.client_paid == gross() + Decimal("50.00")
    assert state.payout_date == compute_payout(PaymentOffer.BASIC, today).payout_date
    assert state.status is PayoutStatus.SCHEDULED
    mails = await payout_harness.mails(about(inp.mission_id, "au-delà de son montant"), 1)
    assert len(mails) == 1 and mails[0].rcpt_tos != (inp.provider.email,)
    body = mails[0].message.get_body(preferencelist=("plain",))
    assert body is not None and "50,00" in body.get_content()
    async with payout_harness.engine.connect() as conn:
        flagged = (
            await conn.execute(
                select(MissionEvent.data).where(
                    MissionEvent.mission_id == inp.mission_id,
                    MissionEvent.kind == "client_payment.overpaid",
                )
            )
        ).all()
    assert [row.data["overpaid_by"] for row in flagged] == ["50.00"]
    await handle.terminate("test over")


async def test_a_late_client_payment_records_penalties_and_does_not_delay_the_payout(
    payout_harness: PayoutHarness,
) -> None:
    today = await payout_harness.today()
    handle, inp = await payout_harness.start(PaymentOffer.BASIC)
    expected = compute_payout(PaymentOffer.BASIC, today).payout_date
    assert expected is not None
    await skip_time(payout_harness.env, timedelta(days=65))
    state = await payout_harness.state(handle)
    assert state.status is PayoutStatus.PAID and state.payout_date == expected
    assert state.paid_at is not None and paris_date(state.paid_at) == expected
    due_on = today + timedelta(days=30)
    paid_on = today + timedelta(days=65)
    await payout_harness.client_pays(handle, paid_on, invoice_number=inp.invoice_number)
    result: PayoutState = await handle.result()
    penalty = late_payment_penalty(Decimal("14574.00"), due_on, paid_on)
    assert result.facts.client_days_late == 35 == penalty.days_late
    assert result.facts.client_penalties == penalty.interest > 0
    assert result.facts.client_indemnity == Decimal("40.00")
    async with payout_harness.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ClientPayment.__table__)
                .join(Invoice, Invoice.id == ClientPayment.invoice_id)
                .where(Invoice.mission_id == inp.mission_id)
            )
        ).one()
    assert (row.days_late, row.penalties, row.indemnity) == (35, penalty.interest, Decimal("40"))
    assert (await payout_harness.payout_row(inp.mission_id)).paid_at == state.paid_at
    assert result.payout_date == expected and result.status is PayoutStatus.PAID


async def test_cancelled_invoice_cancels_a_pending_payout_and_flags_a_paid_one(
    payout_harness: PayoutHarness,
) -> None:
    pending, pending_inp = await payout_harness.start(PaymentOffer.BASIC)
    paid, paid_inp = await payout_harness.start(PaymentOffer.IMMEDIATE)
    await payout_harness.until(pending, lambda s: s.status is PayoutStatus.SCHEDULED)
    await payout_harness.reach_payment(next_business_day_on_or_after(await payout_harness.today()))
    await payout_harness.until(paid, lambda s: s.status is PayoutStatus.PAID)
    assert (await payout_harness.state(pending)).status is PayoutStatus.SCHEDULED
    for handle, inp in ((pending, pending_inp), (paid, paid_inp)):
        await payout_harness.send(
            handle,
            INVOICE_CANCELLED,
            InvoiceCancelled(invoice_number=inp.invoice_number or "", reason="Avoir AV-1"),
        )
    cancelled: PayoutState = await pending.result()
    flagged: PayoutState = await paid.result()
    assert cancelled.status is PayoutStatus.CANCELLED and cancelled.paid_at is None
    assert flagged.status is PayoutStatus.FLAGGED and flagged.reason == "Avoir AV-1"
    assert (
        await payout_harness.payout_row(pending_inp.mission_id)
    ).status == PayoutStatus.CANCELLED
    assert (await payout_harness.payout_row(paid_inp.mission_id)).status == PayoutStatus.FLAGGED
    mails = await payout_harness.mails(about(pending_inp.mission_id, "Paiement annulé"), 1)
    assert mails[0].rcpt_tos == (pending_inp.provider.email,)
    mails = await payout_harness.mails(
        about(paid_inp.mission_id, "facture annulée après paiement"), 1
    )
    assert mails[0].rcpt_tos == ("ops@contracting.localhost",)
    assert not [
        m for m in payout_harness.sink.messages if about(pending_inp.mission_id, "effectué")(m)
    ]


async def test_manual_import_waits_for_the_invoice_then_pays_immediately(
    payout_harness: PayoutHarness,
) -> None:
    today = await payout_harness.today()
    handle, inp = await payout_harness.start(PaymentOffer.IMMEDIATE, manual_import=True)
    state = await payout_harness.until(
        handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT
    )
    assert state.payout_date is None and "pas encore importée" in state.facts.explanation
    await skip_time(payout_harness.env, timedelta(days=9))
    imported_on = await payout_harness.today()
    assert imported_on >= today + timedelta(days=9)
    await payout_harness.send(
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
    await skip_time(payout_harness.env, timedelta(days=4))  # past the first business day at 09:00
    state = await payout_harness.until(handle, lambda s: s.status is PayoutStatus.PAID)
    # Dated of its own issue date (the validation day), not of its import 9 days later: the
    # first business day on or after it has passed, so it is paid at the import.
    assert state.payout_date == next_business_day_on_or_after(today)
    assert state.facts.invoice_date == today
    assert state.paid_at is not None and paris_date(state.paid_at) == imported_on
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
    payout_harness: PayoutHarness,
) -> None:
    """The import is checked against the validated CRA (the invoice row's amounts): a wrong
    amount blocks the invoice with the reason, the provider is told the fix goes through next
    month's CRA, the payout keeps waiting; the right invoice is then numbered and paid."""
    handle, inp = await payout_harness.start(PaymentOffer.IMMEDIATE, manual_import=True)
    await payout_harness.until(handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT)
    number = f"F-{uuid.uuid4().hex[:10]}"

    state = await payout_harness.send(
        handle, INVOICE_IMPORTED, _import(inp, number, "12100.00", "2429.00")
    )
    reason = "montant HT 12 145,00 € attendu, 12 100,00 € importé"
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT
    assert state.invoice_blocked_reason == reason
    assert state.invoice_number is None and state.payout_date is None
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.BLOCKED and invoice.blocked_reason == reason
    assert invoice.number is None
    mails = await payout_harness.mails(about(inp.mission_id, "Facture bloquée"), 1)
    assert mails[0].rcpt_tos == (inp.provider.email,)
    body = mails[0].text()
    assert "12 100,00 €" in body and "CRA du mois suivant" in body

    state = await payout_harness.send(
        handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00")
    )
    assert state.invoice_number == number and state.invoice_blocked_reason is None
    issued_on = inp.terms.validated_on  # the invoice's own date (_import)
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.blocked_reason is None
    assert invoice.number == number and invoice.issued_on == issued_on
    await skip_time(payout_harness.env, timedelta(days=4))  # past the first business day at 09:00
    state = await payout_harness.until(handle, lambda s: s.status is PayoutStatus.PAID)
    assert state.payout_date == next_business_day_on_or_after(issued_on)
    # Imported once: a second import of the month is refused.
    with pytest.raises(WorkflowUpdateFailedError):
        await payout_harness.send(
            handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00")
        )


async def test_cancelling_writes_one_credit_note_and_cancels_the_invoice(
    payout_harness: PayoutHarness,
) -> None:
    handle, inp = await payout_harness.start(PaymentOffer.BASIC)
    await payout_harness.until(handle, lambda s: s.status is PayoutStatus.SCHEDULED)
    cancel = InvoiceCancelled(invoice_number=inp.invoice_number or "", reason="Erreur de TJM")
    await payout_harness.send(handle, INVOICE_CANCELLED, cancel)
    await handle.result()
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.CANCELLED and invoice.cancelled_at is not None
    async with payout_harness.engine.connect() as conn:
        notes = (
            await conn.execute(select(CreditNote).where(CreditNote.invoice_id == invoice.id))
        ).all()
    assert len(notes) == 1
    assert notes[0].number == f"AV-{invoice.issuer_siren}-000001"
    assert notes[0].reason == "Erreur de TJM"
    assert notes[0].amount_incl_vat == invoice.amount_incl_vat


async def test_importing_again_after_a_blocked_import(
    payout_harness: PayoutHarness,
) -> None:
    """The policy after a blocked import (workflows/payout.py): the same import again is
    refused (409, nothing written) and says where the difference goes; other wrong amounts
    are blocked again with their own reason and email; an import matching the validated CRA
    is accepted and the payout proceeds; after that, every import is refused."""
    handle, inp = await payout_harness.start(PaymentOffer.BASIC, manual_import=True)
    await payout_harness.until(handle, lambda s: s.status is PayoutStatus.WAITING_INVOICE_IMPORT)
    number = f"F-{uuid.uuid4().hex[:10]}"
    wrong = _import(inp, number, "12100.00", "2429.00")
    await payout_harness.send(handle, INVOICE_IMPORTED, wrong)
    await payout_harness.mails(about(inp.mission_id, "Facture bloquée"), 1)
    blocked_rows = select(func.count()).where(
        MissionEvent.mission_id == inp.mission_id, MissionEvent.kind == "invoice.blocked"
    )
    assert await payout_harness.count(blocked_rows) == 1

    # The very same invoice again, under a new event id: refused before history.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await payout_harness.send(
            handle, INVOICE_IMPORTED, wrong.model_copy(update={"file_ref": "s3://x"})
        )
    message = str(refused.value.cause)
    assert "already imported and blocked" in message and "next month's CRA" in message
    assert "12145.00 excl. VAT and 2429.00 VAT" in message
    assert await payout_harness.count(blocked_rows) == 1

    # Other wrong amounts: blocked again, with their own reason and email.
    state = await payout_harness.send(
        handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2400.00")
    )
    assert state.invoice_blocked_reason == "TVA 2 429,00 € attendue, 2 400,00 € importée"
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT and state.payout_date is None
    mails = await payout_harness.mails(about(inp.mission_id, "Facture bloquée"), 2)
    assert "2 400,00 €" in mails[-1].text()
    assert await payout_harness.count(blocked_rows) == 2
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.BLOCKED and "2 400,00" in invoice.blocked_reason

    # The CRA's amounts: accepted, the payout's date counts from this invoice's issue date.
    state = await payout_harness.send(
        handle, INVOICE_IMPORTED, _import(inp, number, "12145.00", "2429.00")
    )
    issued_on = inp.terms.validated_on  # the invoice's own date (_import)
    assert state.invoice_number == number and state.invoice_blocked_reason is None
    state = await payout_harness.until(handle, lambda s: s.payout_date is not None)
    assert (
        state.payout_date
        == compute_payout(PaymentOffer.BASIC, inp.terms.validated_on, issued_on).payout_date
    )
    invoice = await payout_harness.invoice_row(inp.mission_id)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.issued_on == issued_on
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await payout_harness.send(
            handle, INVOICE_IMPORTED, _import(inp, "F-OTHER", "12145.00", "2429.00")
        )
    assert "already imported" in str(refused.value.cause)
    assert (
        len(
            [m for m in payout_harness.sink.messages if about(inp.mission_id, "Facture bloquée")(m)]
        )
        == 2
    )


async def test_a_basic_payout_waits_for_its_imported_invoice(
    payout_harness: PayoutHarness,
) -> None:
    """Manual import under Basic: nothing is scheduled or paid while the invoice is not
    imported, even past the 60 days; the date then counts from the validation, capped at 60
    days after the invoice's date (here issued the day of its import)."""
    validated_on = await payout_harness.today()
    handle, inp = await payout_harness.start(PaymentOffer.BASIC, manual_import=True)
    await skip_time(payout_harness.env, timedelta(days=70))
    state = await payout_harness.state(handle)
    assert state.status is PayoutStatus.WAITING_INVOICE_IMPORT and state.payout_date is None
    assert "pas encore importée" in state.facts.explanation
    assert not [
        m for m in payout_harness.sink.messages if about(inp.mission_id, "Paiement effectué")(m)
    ]

    imported_on = await payout_harness.today()
    late = _import(inp, "F-LATE-1", "12145.00", "2429.00")
    state = await payout_harness.send(
        handle, INVOICE_IMPORTED, late.model_copy(update={"issued_on": imported_on})
    )
    assert state.invoice_number == "F-LATE-1"
    expected = compute_payout(PaymentOffer.BASIC, validated_on, imported_on)
    assert expected.payout_date is not None
    state = await payout_harness.until(handle, lambda s: s.payout_date is not None)
    assert state.payout_date == expected.payout_date and state.facts.invoice_date == imported_on
    assert expected.payout_date < imported_on  # the 60 days have passed: paid at once
    state = await payout_harness.until(handle, lambda s: s.status is PayoutStatus.PAID)
    assert state.paid_at is not None and paris_date(state.paid_at) == imported_on
    row = await payout_harness.payout_row(inp.mission_id)
    assert row.status == PayoutStatus.PAID and row.due_on == expected.payout_date
