"""Manual invoice import end to end (issue 11 point 8): a mission whose contract was signed
with `invoicing: provider`, through MissionWorkflow on the time-skipping server with the real
activities (PostgreSQL, SMTP sink). Its validated month generates no invoice and its payout
waits for `invoice.imported`; an invoice dated after its import day is refused (409, nothing
written); the accepted one is dated of its own issue date, from which the legal 60-day cap
and the client's due date run, and the payout is made on the date computed from it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import time, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from db.models import Invoice, InvoiceKind, Payout
from domain.calendar import previous_business_day_on_or_before
from domain.clock import paris_date, paris_instant
from domain.payouts import CLIENT_PAYMENT_TERM, LEGAL_MAX_PAYMENT_DAYS, compute_payout
from schemas.enums import InvoiceStatus, PaymentOffer, PayoutStatus
from schemas.events import InvoiceImported
from schemas.ids import payout_workflow_id
from schemas.names import INVOICE_IMPORTED
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.support.mission import MissionHarness
from tests.support.months import last_day
from tests.support.waits import eventually
from tests.support.workers import real_worker


@pytest_asyncio.fixture
async def harness(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> AsyncIterator[MissionHarness]:
    async with AsyncExitStack() as stack:
        queue, _ = await stack.enter_async_context(
            real_worker(own_time_skipping_env, stack_settings)
        )
        yield MissionHarness(own_time_skipping_env, queue, db_engine, sink=smtp_sink)


async def _invoice(h: MissionHarness, pid: str, month: str) -> Any:
    [row] = await h.rows(
        select(Invoice.__table__).where(Invoice.mission_id == pid, Invoice.month == month)
    )
    return row


async def test_a_provider_invoiced_month_waits_for_its_import_dated_of_its_issue_date(
    harness: MissionHarness,
) -> None:
    h = harness
    mission, months = await h.mission_in_progress(
        PaymentOffer.BASIC, months=2, invoicing="provider"
    )
    state = await h.state(mission)
    pid = state.mission_id
    assert state.legal.contract is not None and state.legal.contract.invoicing == "provider"
    month = months[0]

    # Validated: no invoice generated, the payout waits for the provider's.
    result = await h.month(mission, month)
    assert result.invoice_number is None and result.validated_on is not None
    validated_on = result.validated_on
    payout = h.env.client.get_workflow_handle(payout_workflow_id(pid, month))

    async def waiting() -> bool:
        s = await h.payout_state(pid, month)
        return s.status is PayoutStatus.WAITING_INVOICE_IMPORT

    await eventually(waiting, within=20)
    invoice = await _invoice(h, pid, month)
    assert invoice.kind == InvoiceKind.IMPORTED and invoice.status == InvoiceStatus.AWAITING_IMPORT
    assert invoice.number is None and invoice.issued_on is None

    # Five days after the validation, the provider imports its invoice, issued on the month's
    # last business day (before the validation: its own date, not the import's, counts).
    await h.sleep_until(paris_instant(validated_on + timedelta(days=5), time(10)))
    now = await h.now()
    import_day = paris_date(now)
    issued_on = previous_business_day_on_or_before(last_day(month))
    assert issued_on < validated_on < import_day
    number = f"FP-{uuid.uuid4().hex[:8]}"
    event = InvoiceImported(
        mission_id=pid,
        month=month,
        number=number,
        issued_on=issued_on,
        amount_excl_vat=invoice.amount_excl_vat,
        vat_amount=invoice.vat_amount,
        file_ref=f"s3://invoices/{number}.pdf",
        occurred_at=now,
    )

    # Dated the day after its import: refused with the reason, nothing written.
    late = event.model_copy(update={"issued_on": import_day + timedelta(days=1)})
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.send(payout, INVOICE_IMPORTED, late)
    message = str(refused.value.cause)
    assert f"dated {import_day + timedelta(days=1)}, after its import on {import_day}" in message
    assert (await h.payout_state(pid, month)).status is PayoutStatus.WAITING_INVOICE_IMPORT
    invoice = await _invoice(h, pid, month)
    assert invoice.status == InvoiceStatus.AWAITING_IMPORT and invoice.number is None

    # Dated of its issue date: accepted, the 60-day cap runs from it.
    expected = compute_payout(PaymentOffer.BASIC, validated_on, issued_on)
    assert expected.payout_date is not None and expected.legal_limit is not None
    assert expected.legal_limit == issued_on + timedelta(days=LEGAL_MAX_PAYMENT_DAYS)
    await h.send(payout, INVOICE_IMPORTED, event)
    state_after = await h.payout_state(pid, month)
    assert state_after.invoice_number == number
    assert state_after.payout_date == expected.payout_date
    assert state_after.facts.invoice_date == issued_on
    assert state_after.facts.legal_limit == expected.legal_limit
    assert state_after.facts.capped_by_legal_limit == expected.capped_by_legal_limit
    invoice = await _invoice(h, pid, month)
    assert invoice.status == InvoiceStatus.IN_PAYMENT and invoice.number == number
    assert invoice.issued_on == issued_on
    assert invoice.due_on == issued_on + CLIENT_PAYMENT_TERM

    # Paid on that date, at 09:00.
    await h.sleep_until(paris_instant(expected.payout_date, time(9, 30)))

    async def paid() -> bool:
        s = await h.payout_state(pid, month)
        return s.status is PayoutStatus.PAID

    await eventually(paid, within=20)
    final = await h.payout_state(pid, month)
    assert final.paid_at is not None and paris_date(final.paid_at) == expected.payout_date
    [row] = await h.rows(
        select(Payout.__table__).where(Payout.mission_id == pid, Payout.month == month)
    )
    assert row.status == PayoutStatus.PAID and row.due_on == expected.payout_date
    assert row.invoice_id == invoice.id
