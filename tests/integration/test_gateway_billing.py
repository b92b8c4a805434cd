"""Billing events through the gateway, on the real dev server with the real worker and
PostgreSQL: `client_payment.received` and `invoice.cancelled` find the month's payout from the
invoice number; a cancellation writes the credit note and cancels the invoice and the payout.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from db.models import CreditNote, Invoice, Payout
from schemas.enums import InvoiceStatus, PayoutStatus
from schemas.events import Event, InvoiceCancelled
from starter.gateway.dispatch import Context, dispatch
from starter.gateway.events import NotApplicable, UnknownTarget
from tests.support.factories import envelope
from tests.support.gateway import (
    GatewayTestClient,
    post,
    today,
    validated_month,
)
from tests.support.waits import eventually


async def _invoice(engine: AsyncEngine, mission_id: str, month: str) -> Invoice | None:
    async with engine.connect() as conn:
        stmt = select(Invoice).where(Invoice.mission_id == mission_id, Invoice.month == month)
        row = (await conn.execute(stmt)).first()
    return None if row is None else Invoice(**row._asdict())


async def _payout_status(engine: AsyncEngine, mission_id: str, month: str) -> str | None:
    async with engine.connect() as conn:
        stmt = select(Payout.status).where(Payout.mission_id == mission_id, Payout.month == month)
        status = (await conn.execute(stmt)).scalar_one_or_none()
    return None if status is None else str(status)


async def test_a_payment_of_an_unknown_invoice_is_404(gateway: GatewayTestClient) -> None:
    response = await post(
        gateway,
        "client_payment.received",
        invoice_number=f"F-NOPE-{uuid.uuid4().hex[:8]}",
        amount="100.00",
        paid_on=today().isoformat(),
    )
    assert response.status_code == 404, response.text
    assert "unknown invoice" in response.text


async def test_invoice_cancelled_before_payment_writes_one_credit_note_and_cancels(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid, month = await validated_month(gateway)

    async def scheduled() -> bool:
        return await _payout_status(db_engine, pid, month) == PayoutStatus.SCHEDULED.value

    await eventually(scheduled)
    invoice = await _invoice(db_engine, pid, month)
    assert invoice is not None and invoice.number is not None
    assert invoice.status == InvoiceStatus.IN_PAYMENT

    cancel = envelope(
        "invoice.cancelled",
        {"invoice_number": invoice.number, "reason": "Erreur de TJM sur la facture"},
    )
    response = await gateway.post_event(cancel)
    assert response.status_code == 202, response.text
    again = await gateway.post_event(cancel)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["workflow_id"] == f"payout-{pid}-{month}"

    async with db_engine.connect() as conn:
        notes = (
            await conn.execute(select(CreditNote).where(CreditNote.invoice_id == invoice.id))
        ).all()
        count = (
            await conn.execute(
                select(func.count())
                .select_from(CreditNote)
                .where(CreditNote.invoice_id == invoice.id)
            )
        ).scalar_one()
    assert count == 1
    note = notes[0]
    assert note.number.startswith("AV-")
    assert note.issuer_siren == invoice.issuer_siren
    assert note.reason == "Erreur de TJM sur la facture"
    assert note.amount_excl_vat == invoice.amount_excl_vat
    assert note.amount_incl_vat == invoice.amount_incl_vat
    cancelled = await _invoice(db_engine, pid, month)
    assert cancelled is not None and cancelled.status == InvoiceStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert await _payout_status(db_engine, pid, month) == PayoutStatus.CANCELLED.value

    # The payout is cancelled (its workflow closed): a payment of the invoice is refused.
    paid = await post(
        gateway,
        "client_payment.received",
        invoice_number=invoice.number,
        amount=str(invoice.amount_incl_vat),
        paid_on=today().isoformat(),
    )
    assert paid.status_code == 409, paid.text
    assert "closed" in paid.text


class _Directory:
    def __init__(self, invoices: Sequence[tuple[str, str, str]]) -> None:
        self._invoices = invoices

    async def proposals_of_rfp(self, rfp_id: str) -> Sequence[str]:
        return []

    async def proposals_being_submitted(self, rfp_id: str) -> Sequence[str]:
        return []

    async def provider_of_document(self, document_id: str) -> str | None:
        return None

    async def invoices_by_number(self, number: str) -> Sequence[tuple[str, str, str]]:
        return self._invoices


async def test_an_invoice_number_of_several_issuers_is_409_and_names_them() -> None:
    """The events name no issuer: a number two issuers use is refused, never guessed."""
    directory = _Directory([("111111118", "M-1", "2026-10"), ("222222226", "M-2", "2026-11")])
    ctx = Context(client=cast(Client, None), task_queue="q", directory=directory)
    event = Event(
        event_id="evt-ambiguous",
        type="invoice.cancelled",
        occurred_at=datetime.now(UTC),
        payload=InvoiceCancelled(invoice_number="F-000001", reason="Erreur"),
    )
    with pytest.raises(NotApplicable) as refused:
        await dispatch(ctx, event)
    assert "several issuers (111111118, 222222226)" in refused.value.message
    with pytest.raises(UnknownTarget, match="unknown invoice"):
        await dispatch(replace(ctx, directory=_Directory([])), event)
