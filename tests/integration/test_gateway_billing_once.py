"""Exactly once on the billing path through the gateway, on the real dev server with the real
worker, PostgreSQL and an SMTP sink that answers 451 before recovering: `cra.validated` and
`client_payment.received` delivered twice (same event id, then a new one) still give one
invoice, one payout paid once, one billing-started email and one payout-paid email."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import EmailOutbox, Invoice, MissionEvent, Payout
from domain.clock import paris_date
from schemas.enums import PayoutStatus
from starter.devstack.mailsink import MailSink
from tests.support.db import count
from tests.support.factories import envelope
from tests.support.gateway import GatewayTestClient, cra_instants, file_cra, month_open, view
from tests.support.waits import eventually


async def _submitted_month(gateway: GatewayTestClient) -> tuple[str, str]:
    """A back-to-back mission in progress whose month's CRA is submitted."""
    # Signed before 2025-04-28: back-to-back.
    pid, month = await month_open(gateway, "back_to_back", 1, signed_on=date(2025, 3, 3))
    submitted_at, _ = cra_instants(month)
    await file_cra(gateway, pid, month, submitted_at, days="2")
    return pid, month


async def test_validation_and_client_payment_delivered_twice_with_smtp_451_bill_and_pay_once(
    gateway: GatewayTestClient, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    pid, month = await _submitted_month(gateway)
    served = smtp_sink.failures_served

    smtp_sink.fail_next(1, code=451)  # the billing-started email is refused once
    _, validated_at = cra_instants(month)
    validation = envelope(
        "cra.validated",
        {"mission_id": pid, "month": month, "approver_id": "APR-1"},
        occurred_at=validated_at,
    )
    first = await gateway.post_event(validation)
    assert first.status_code == 202, first.text
    again = await gateway.post_event(validation)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    async def validated() -> bool:
        return (await view(gateway, pid)).state.validated_months == [month]

    await eventually(validated, within=20)
    other = await gateway.post_event(
        envelope(
            "cra.validated",
            {"mission_id": pid, "month": month, "approver_id": "APR-1"},
            occurred_at=validated_at,
        )
    )
    assert other.status_code == 409, other.text

    async with db_engine.connect() as conn:
        [invoice] = (
            await conn.execute(
                select(Invoice.number, Invoice.amount_incl_vat, Invoice.issued_on).where(
                    Invoice.mission_id == pid, Invoice.month == month
                )
            )
        ).all()
    assert invoice.number is not None
    # Dated by the validation's occurred_at, not by when the gateway processed it.
    assert invoice.issued_on == paris_date(validated_at)

    # The client pays the day of the validation (a past business day: the payout is due at
    # once, on that day).
    smtp_sink.fail_next(1, code=451)  # the payout-paid email is refused once
    payment = envelope(
        "client_payment.received",
        {
            "invoice_number": invoice.number,
            "amount": str(invoice.amount_incl_vat),
            "paid_on": paris_date(validated_at).isoformat(),
        },
    )
    assert (await gateway.post_event(payment)).status_code == 202
    assert (await gateway.post_event(payment)).json()["status"] == "duplicate"
    # The same payment under another event id is another payment: recorded and flagged to
    # ops as an overpayment while the payout is open, refused once it is closed; never paid
    # twice.
    payment["event_id"] = f"{payment['event_id']}-again"
    resent = await gateway.post_event(payment)
    assert resent.status_code in (202, 409), resent.text
    if resent.status_code == 202:
        flagged = select(func.count()).where(
            MissionEvent.mission_id == pid, MissionEvent.kind == "client_payment.overpaid"
        )
        assert await count(db_engine, flagged) == 1
    else:
        assert "closed" in resent.text

    async def paid_and_mailed() -> bool:
        paid = await count(
            db_engine,
            select(func.count()).where(
                Payout.mission_id == pid, Payout.month == month, Payout.status == PayoutStatus.PAID
            ),
        )
        mails = [m for m in smtp_sink.messages if pid in (m.message_id or "")]
        return paid == 1 and any("Paiement effectué" in m.subject for m in mails)

    await eventually(paid_and_mailed, within=30)
    for model in (Invoice, Payout):
        assert (
            await count(
                db_engine,
                select(func.count()).select_from(model).where(model.mission_id == pid),
            )
            == 1
        )
    assert smtp_sink.failures_served - served == 2
    async with db_engine.connect() as conn:
        due_on = (
            await conn.execute(select(Payout.due_on).where(Payout.mission_id == pid))
        ).scalar_one()
    assert due_on == paris_date(validated_at)  # back-to-back: the business day of the payment
    for template, subject in (
        ("cra_validated", f"CRA {month} validé"),
        ("payout_paid", "Paiement effectué"),
    ):
        sent = await count(
            db_engine,
            select(func.count()).where(
                EmailOutbox.mission_id == pid,
                EmailOutbox.template == template,
                EmailOutbox.status == "sent",
            ),
        )
        assert sent == 1, template
        received = [
            m for m in smtp_sink.messages if pid in (m.message_id or "") and subject in m.subject
        ]
        assert len(received) == 1, template
