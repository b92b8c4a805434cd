"""The monthly CRA cycle on the time-skipping server, with the real activities (PostgreSQL, SMTP
sink) and the real payout workflow as its child."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from db.models import (
    Bpf,
    Cra,
    CraLine,
    EmailOutbox,
    Invoice,
    InvoiceNumberSequence,
    MissionEvent,
    Payout,
)
from domain.calendar import next_business_day_on_or_after, previous_business_day_on_or_before
from domain.clock import paris_instant
from domain.cra import REMINDER_AT, REMINDER_EVERY, month_bounds, month_of
from domain.fees import offer_fee
from domain.payouts import compute_payout
from schemas import search_attributes as sa
from schemas.cra import CraResult, CraValidation, MonthValidated
from schemas.enums import LegalForm, PaymentOffer, VatRegime
from schemas.events import CraRejected, CraSubmitted
from schemas.ids import cra_workflow_id, payout_workflow_id
from schemas.names import MONTH_VALIDATED
from schemas.payouts import PayoutState
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import skip_time
from tests.support.cra import CraHarness, opens_on, submitted, validated
from tests.support.factories import APPROVER, new_siren
from tests.support.months import next_month
from tests.support.waits import about, eventually

HISTORIES = Path(__file__).parent.parent / "histories"
Handle = WorkflowHandle[Any, Any]


async def _scalar(engine: AsyncEngine, stmt: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one_or_none()


async def test_impossible_cras_are_refused_before_history(cra_harness: CraHarness) -> None:
    month = next_month(await cra_harness.today())
    first, _ = month_bounds(month)
    start = first + timedelta(days=19)  # first month pro rata: from the 20th
    inp = await cra_harness.mission(start=start)
    handle = await cra_harness.start(inp)
    limit = (month_bounds(month)[1] - start).days + 1

    too_many = await cra_harness.refused(
        handle, "cra.submitted", submitted(inp, str(limit + Decimal("0.5")))
    )
    assert f"only {limit} calendar days" in too_many
    assert "half-day steps" in await cra_harness.refused(
        handle, "cra.submitted", submitted(inp, "8.3")
    )
    correction = {
        "label": "oubli",
        "amount": "100.00",
        "corrects_month": month_of(first - timedelta(days=1)),
    }
    assert "no validated CRA" in await cra_harness.refused(
        handle, "cra.submitted", submitted(inp, "5", corrections=[correction])
    )
    assert "not submitted yet" in await cra_harness.refused(handle, "cra.validated", validated(inp))
    wrong_month = CraSubmitted(
        mission_id=inp.mission_id, month=month_of(first - timedelta(days=1)), days=Decimal(1)
    )
    assert "sent to the" in await cra_harness.refused(handle, "cra.submitted", wrong_month)

    # The mission tells the cycle when an earlier month gets validated: corrections of it apply.
    await handle.signal(MONTH_VALIDATED, MonthValidated(month=correction["corrects_month"]))
    await cra_harness.send(
        handle, "cra.submitted", submitted(inp, str(limit), corrections=[correction])
    )
    assert "is not an approver" in await cra_harness.refused(
        handle, "cra.validated", validated(inp, "APR-999")
    )
    assert "already submitted" in await cra_harness.refused(
        handle, "cra.submitted", submitted(inp, "1")
    )
    state = await cra_harness.state(handle)
    assert state.status == "submitted" and state.max_days == limit
    await handle.terminate("test over")


async def test_rejection_then_resubmission_then_validation_bills_once(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    previous = month_of(await cra_harness.today())
    inp = await cra_harness.mission(offer=PaymentOffer.EXPRESS, validated_months=[previous])
    inp = inp.model_copy(update={"mission_start": month_bounds(previous)[0]})
    handle = await cra_harness.start(inp)
    mid = inp.mission_id

    await cra_harness.send(handle, "cra.submitted", submitted(inp, "19"))
    await cra_harness.mails(about(mid, f"CRA {inp.month} transmis"), 1)
    comment = "Il manque le jour férié travaillé"
    await cra_harness.send(
        handle,
        "cra.rejected",
        CraRejected(
            mission_id=mid,
            month=inp.month,
            approver_id=APPROVER,
            comment=comment,
            occurred_at=paris_instant(opens_on(inp), time(12)),
        ),
    )
    rejected = (await cra_harness.mails(about(mid, "refusé par votre client"), 1))[0]
    assert comment in rejected.text()
    assert rejected.rcpt_tos == (inp.provider.email,)
    assert (await cra_harness.state(handle)).status == "rejected"

    lines = {
        "expenses": [
            {"label": "Train", "amount": "120.00", "vat_rate": "10", "receipt_ref": "R-1"}
        ],
        "overtime": [{"label": "Astreinte", "amount": "200.00"}],
        "corrections": [{"label": "Oubli", "amount": "-50.00", "corrects_month": previous}],
    }
    resubmitted_at = paris_instant(opens_on(inp), time(14))
    await cra_harness.send(
        handle, "cra.submitted", submitted(inp, "20.5", at=resubmitted_at, **lines)
    )
    event_id = f"evt-{uuid.uuid4().hex}"
    # The same event delivered twice: one update, one validation.
    await asyncio.gather(
        cra_harness.send(handle, "cra.validated", validated(inp), event_id),
        cra_harness.send(handle, "cra.validated", validated(inp), event_id),
    )
    result: CraResult = await handle.result()

    state = await cra_harness.state(handle)
    assert state.status == "validated" and state.validated_on is not None
    validated_on = state.validated_on
    expected = compute_payout(PaymentOffer.EXPRESS, validated_on).payout_date
    assert expected is not None
    assert result.payout_date == expected and result.payout_status == "scheduled"
    assert result.invoice_number == f"F-{inp.provider.siren}-000001"
    assert result.bpf_number == f"BPF-{mid}-{inp.month}"
    # 20.5 × 650 + 200 − 50 = 13475 at 20 %, 120 at 10 %.
    assert result.amount_excl_vat == Decimal("13595.00")
    assert result.amount_incl_vat == Decimal("13595.00") + Decimal("2695.00") + Decimal("12.00")
    assert result.payout_workflow_id == f"payout-{mid}-{inp.month}"
    search = (await handle.describe()).typed_search_attributes
    assert search.get(sa.MISSION_ID) == mid and search.get(sa.PAYMENT_OFFER) == "express"
    payout_handle = cra_harness.env.client.get_workflow_handle(result.payout_workflow_id)
    payout_state = await payout_handle.query("state")
    assert payout_state["payout_date"] == expected.isoformat()
    assert Decimal(payout_state["amount"]) == result.amount_incl_vat

    mail = (await cra_harness.mails(about(mid, "la facturation de la mission"), 1))[0]
    assert (
        expected.strftime("%d/%m/%Y") in mail.text()
        and f"F-{inp.provider.siren}-000001" in mail.text()
    )
    async with db_engine.connect() as conn:
        cra = (
            await conn.execute(select(Cra).where(Cra.mission_id == mid, Cra.month == inp.month))
        ).one()
        kinds = (
            (
                await conn.execute(
                    select(CraLine.kind).where(CraLine.cra_id == cra.id).order_by(CraLine.position)
                )
            )
            .scalars()
            .all()
        )
        invoices = (await conn.execute(select(Invoice).where(Invoice.mission_id == mid))).all()
        payouts = (await conn.execute(select(Payout).where(Payout.mission_id == mid))).all()
        bpf = (await conn.execute(select(Bpf).where(Bpf.mission_id == mid))).one()
        emails = (
            await conn.execute(
                select(func.count())
                .select_from(EmailOutbox)
                .where(EmailOutbox.mission_id == mid, EmailOutbox.template == "cra_validated")
            )
        ).scalar_one()
    assert cra.status == "validated" and cra.days == Decimal("20.5")
    assert cra.validated_on == validated_on and cra.approver_id == APPROVER
    assert kinds == ["days", "expense", "overtime", "correction"]
    assert len(invoices) == 1 and invoices[0].number == f"F-{inp.provider.siren}-000001"
    invoice = invoices[0]
    assert invoice.issued_on == validated_on and invoice.status == "in_payment"
    assert invoice.amount_incl_vat == result.amount_incl_vat
    assert bpf.number == f"BPF-{mid}-{inp.month}" and bpf.amount_excl_vat == Decimal("13595.00")
    assert len(payouts) == 1
    payout = payouts[0]
    fee = offer_fee(PaymentOffer.EXPRESS, Decimal("650.00"), Decimal("20.5"))
    assert payout.due_on == expected and payout.invoice_id == invoice.id
    assert payout.fee == fee and payout.net_amount == result.amount_incl_vat - fee
    assert payout.status in ("scheduled", "paid")
    assert emails == 1
    assert len([m for m in cra_harness.sink.messages if about(mid, "la facturation")(m)]) == 1

    await record_history(handle, "cra_validated")


async def test_a_validated_cra_is_immutable_and_numbers_continue_across_missions(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    siren = new_siren()
    first = await cra_harness.mission(siren=siren, offer=PaymentOffer.FLASH)
    second = await cra_harness.mission(
        siren=siren, offer=PaymentOffer.BACK_TO_BACK, start_payout=False
    )
    numbers = []
    for inp in (first, second):
        handle = await cra_harness.start(inp)
        await cra_harness.send(handle, "cra.submitted", submitted(inp, "10"))
        await cra_harness.send(handle, "cra.validated", validated(inp))
        result: CraResult = await handle.result()
        numbers.append(result.invoice_number)
    assert numbers == [f"F-{siren}-000001", f"F-{siren}-000002"]
    assert result.payout_status == "waiting_client_payment" and result.payout_date is None
    last = await _scalar(
        db_engine,
        select(InvoiceNumberSequence.last_number).where(
            InvoiceNumberSequence.issuer_siren == siren
        ),
    )
    assert last == 2

    # Once validated the cycle is complete: no later event reaches it (the test server answers
    # "update not found", a real server "workflow execution already completed").
    handle = cra_harness.env.client.get_workflow_handle(
        cra_workflow_id(first.mission_id, first.month)
    )
    with pytest.raises(RPCError) as closed:
        await handle.execute_update("cra.submitted", submitted(first, "5"), id=uuid.uuid4().hex)
    assert closed.value.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_manual_import_invoice_awaits_import_with_no_number(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    inp = await cra_harness.mission(invoice_mode="imported", start_payout=False)
    handle = await cra_harness.start(inp)
    await cra_harness.send(handle, "cra.submitted", submitted(inp, "3"))
    await cra_harness.send(handle, "cra.validated", validated(inp))
    result: CraResult = await handle.result()
    assert result.invoice_number is None and result.payout_status == "waiting_invoice_import"
    async with db_engine.connect() as conn:
        invoice = (
            await conn.execute(select(Invoice).where(Invoice.mission_id == inp.mission_id))
        ).one()
        payout = (
            await conn.execute(select(Payout).where(Payout.mission_id == inp.mission_id))
        ).one()
    assert invoice.status == "awaiting_import" and invoice.number is None
    assert payout.status == "waiting_invoice_import" and payout.due_on is None
    mail = (await cra_harness.mails(about(inp.mission_id, "la facturation"), 1))[0]
    assert "dès que vous aurez importé votre facture" in mail.text()


async def test_validation_retried_after_commit_writes_nothing_twice(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    inp = await cra_harness.mission()
    first_day, last_day = month_bounds(inp.month)
    validation = CraValidation(
        key=f"cra.validated:{inp.mission_id}:{inp.month}",
        at=datetime.now(UTC),
        validated_on=last_day,
        mission_id=inp.mission_id,
        month=inp.month,
        cra=submitted(inp, "18"),
        approver_id=APPROVER,
        tjm=inp.tjm,
        payment_offer=inp.payment_offer,
        provider=inp.provider,
        client_name=inp.client_name,
        invoice_mode="generated",
        service_start=first_day,
        service_end=last_day,
        email_context={
            "mission_id": inp.mission_id,
            "month": inp.month,
            "days": "18",
            "provider_name": inp.provider.name,
            "client_name": inp.client_name,
        },
    )
    run = cra_harness.activities.cra.record_cra_validation
    once = await ActivityEnvironment().run(run, validation)
    again = await ActivityEnvironment().run(run, validation)
    assert once.applied and not again.applied
    assert once.invoice_number == again.invoice_number == f"F-{inp.provider.siren}-000001"
    assert once.payout_date == again.payout_date
    assert once.outbox_keys == again.outbox_keys
    mid = inp.mission_id
    for model in (Invoice, Payout, Bpf):
        count = await _scalar(
            db_engine, select(func.count()).select_from(model).where(model.mission_id == mid)
        )
        assert count == 1, model
    assert (
        await _scalar(
            db_engine,
            select(InvoiceNumberSequence.last_number).where(
                InvoiceNumberSequence.issuer_siren == inp.provider.siren
            ),
        )
        == 1
    )
    assert (
        await _scalar(
            db_engine,
            select(func.count()).select_from(EmailOutbox).where(EmailOutbox.mission_id == mid),
        )
        == 3
    )  # the proposal's two emails, then one for the validation
    assert (
        await _scalar(
            db_engine,
            select(func.count())
            .select_from(MissionEvent)
            .where(MissionEvent.mission_id == mid, MissionEvent.kind == "cra.validated"),
        )
        == 1
    )


async def test_reminders_the_business_day_after_the_due_day_then_weekly_until_submitted(
    cra_harness: CraHarness,
) -> None:
    """The CRA is due on the month's last business day; the reminder goes out the next
    business day at 09:00 Paris, then weekly until the first submission."""
    inp = await cra_harness.mission()
    handle = await cra_harness.start(inp)
    mid = inp.mission_id
    due = previous_business_day_on_or_before(month_bounds(inp.month)[1])
    first_at = paris_instant(next_business_day_on_or_after(due + timedelta(days=1)), REMINDER_AT)
    assert first_at > paris_instant(due, REMINDER_AT)

    now = await cra_harness.env.get_current_time()
    await skip_time(cra_harness.env, (first_at - now) - timedelta(minutes=1))
    assert not [m for m in cra_harness.sink.messages if about(mid, "Rappel")(m)]
    await skip_time(cra_harness.env, timedelta(minutes=2))
    await cra_harness.mails(about(mid, "Rappel"), 1)
    await skip_time(cra_harness.env, REMINDER_EVERY)
    reminders = await cra_harness.mails(about(mid, "Rappel"), 2)
    assert "rappel n° 2" in reminders[-1].text()
    assert (await cra_harness.state(handle)).reminders_sent == 2

    await cra_harness.send(handle, "cra.submitted", submitted(inp, "10"))
    await skip_time(cra_harness.env, REMINDER_EVERY * 3)
    await asyncio.sleep(0.3)
    assert len([m for m in cra_harness.sink.messages if about(mid, "Rappel")(m)]) == 2
    state = await cra_harness.state(handle)
    assert state.reminders_sent == 2 and state.next_reminder_at is None
    await record_history(handle, "cra_reminders_after_due_day")
    await handle.terminate("test over")


async def test_a_provider_under_the_vat_franchise_is_billed_and_paid_no_vat(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    """An auto-entrepreneur under art. 293 B: the invoice carries no VAT and the mention, and
    the payout pays the invoice's total (excl. VAT = incl. VAT)."""
    inp = await cra_harness.mission(offer=PaymentOffer.FLASH)
    inp = inp.model_copy(
        update={
            "provider": inp.provider.model_copy(
                update={
                    "legal_form": LegalForm.AUTO_ENTREPRENEUR,
                    "vat_regime": VatRegime.FRANCHISE,
                }
            )
        }
    )
    handle = await cra_harness.start(inp)
    await cra_harness.send(handle, "cra.submitted", submitted(inp, "10"))
    await cra_harness.send(handle, "cra.validated", validated(inp))
    result: CraResult = await handle.result()
    assert result.amount_excl_vat == result.amount_incl_vat == Decimal("6500.00")
    async with db_engine.connect() as conn:
        invoice = (
            await conn.execute(
                select(
                    Invoice.vat_amount,
                    Invoice.amount_incl_vat,
                    Invoice.vat_regime,
                    Invoice.vat_mention,
                ).where(Invoice.mission_id == inp.mission_id)
            )
        ).one()
    assert invoice.vat_amount == 0 and invoice.amount_incl_vat == Decimal("6500.00")
    assert invoice.vat_regime is VatRegime.FRANCHISE and invoice.vat_mention is not None
    assert "293 B" in invoice.vat_mention
    payout = cra_harness.env.client.get_workflow_handle(
        payout_workflow_id(inp.mission_id, inp.month)
    )

    async def scheduled() -> bool:
        try:
            state: PayoutState = await payout.query("state", result_type=PayoutState)
        except RPCError:
            return False
        return state.amount == Decimal("6500.00")

    await eventually(scheduled, within=15)
