"""The ledger queries of the ops commands, and the rows they answer (their `--json` shape).

Read-only: every fact comes from PostgreSQL, the system of record, so the answers hold for a
mission whose workflows are long gone. What makes a payout "blocked" is what the payout
workflow (workflows/payout.py) and its activities (activities/payouts.py, the failed
transitions of activities/missions.py) record: `BlockedReason` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    Client,
    ClientPayment,
    EmailOutbox,
    Invoice,
    Mission,
    MissionEvent,
    Payout,
    Provider,
)
from schemas.enums import InvoiceStatus, MissionStage, OutboxStatus, PaymentOffer, PayoutStatus
from schemas.ids import payout_workflow_id

# --- Missions -------------------------------------------------------------------------------


class MissionRow(BaseModel):
    mission_id: str
    stage: MissionStage
    client_id: str
    client_name: str
    provider_siren: str
    provider_name: str
    payment_offer: PaymentOffer | None
    start_date: date
    end_date: date
    ended_on: date | None


class MissionFilter(BaseModel):
    """Every filter given must hold (several stages: any of them)."""

    stages: list[MissionStage] = []
    client_id: str | None = None
    provider_siren: str | None = None
    offer: PaymentOffer | None = None


class MissionPage(BaseModel):
    """`limit` missions from `offset`, newest first, out of `total` matching the filter."""

    total: int
    offset: int
    limit: int
    missions: list[MissionRow]


def _filtered(stmt: Select[*tuple[Any, ...]], f: MissionFilter) -> Select[*tuple[Any, ...]]:
    if f.stages:
        stmt = stmt.where(Mission.stage.in_(f.stages))
    if f.client_id is not None:
        stmt = stmt.where(Mission.client_id == f.client_id)
    if f.provider_siren is not None:
        stmt = stmt.where(Mission.provider_siren == f.provider_siren)
    if f.offer is not None:
        stmt = stmt.where(Mission.payment_offer == f.offer)
    return stmt


async def list_missions(
    conn: AsyncConnection, f: MissionFilter, *, limit: int, offset: int
) -> MissionPage:
    total = (await conn.execute(_filtered(select(func.count(Mission.mission_id)), f))).scalar_one()
    stmt = _filtered(
        select(
            Mission.mission_id,
            Mission.stage,
            Mission.client_id,
            Client.name.label("client_name"),
            Mission.provider_siren,
            Provider.name.label("provider_name"),
            Mission.payment_offer,
            Mission.start_date,
            Mission.end_date,
            Mission.ended_on,
        )
        .join(Client, Client.client_id == Mission.client_id)
        .join(Provider, Provider.siren == Mission.provider_siren),
        f,
    )
    rows = await conn.execute(
        stmt.order_by(Mission.created_at.desc(), Mission.mission_id).limit(limit).offset(offset)
    )
    return MissionPage(
        total=total,
        offset=offset,
        limit=limit,
        missions=[MissionRow.model_validate(row, from_attributes=True) for row in rows],
    )


# --- Payouts due on a day -------------------------------------------------------------------


class PayoutRow(BaseModel):
    mission_id: str
    month: str
    workflow_id: str
    provider_siren: str
    provider_name: str
    offer: PaymentOffer
    status: PayoutStatus
    invoice_number: str | None
    amount: Decimal
    """What the invoice totals incl. VAT."""
    fee: Decimal
    net_amount: Decimal
    """What the provider receives."""
    due_on: date | None
    paid_at: datetime | None


class PayoutsDue(BaseModel):
    """The payouts whose fixed date is `on`, whatever their status; `to_pay` sums the net of
    those still scheduled, `paid` of those paid."""

    on: date
    count: int
    to_pay: Decimal
    paid: Decimal
    payouts: list[PayoutRow]


def _payouts() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Payout.mission_id,
            Payout.month,
            Mission.provider_siren,
            Provider.name.label("provider_name"),
            Payout.offer,
            Payout.status,
            Invoice.number.label("invoice_number"),
            Payout.amount,
            Payout.fee,
            Payout.net_amount,
            Payout.due_on,
            Payout.paid_at,
        )
        .join(Mission, Mission.mission_id == Payout.mission_id)
        .join(Provider, Provider.siren == Mission.provider_siren)
        .outerjoin(Invoice, Invoice.id == Payout.invoice_id)
    )


def _payout_row(row: Row[Any]) -> PayoutRow:
    data = PayoutRow.model_validate(
        {**row._mapping, "workflow_id": ""},
    )
    data.workflow_id = payout_workflow_id(data.mission_id, data.month)
    return data


async def payouts_due(conn: AsyncConnection, on: date) -> PayoutsDue:
    rows = await conn.execute(
        _payouts().where(Payout.due_on == on).order_by(Payout.mission_id, Payout.month)
    )
    payouts = [_payout_row(row) for row in rows]
    return PayoutsDue(
        on=on,
        count=len(payouts),
        to_pay=_total(p.net_amount for p in payouts if p.status is PayoutStatus.SCHEDULED),
        paid=_total(p.net_amount for p in payouts if p.status is PayoutStatus.PAID),
        payouts=payouts,
    )


def _total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, Decimal("0.00"))


# --- Blocked payouts ------------------------------------------------------------------------


class BlockedReason(StrEnum):
    """Why a payout cannot be paid, from what the ledger records."""

    TRANSITION_FAILED = "transition_failed"
    """A payout transition was refused for good by the database (`transition.failed` on the
    timeline, one ops e-mail): the payout workflow stopped; no money moves until ops fix it."""
    OVERDUE = "overdue"
    """Scheduled, its date passed, not paid: the workflow is not running (worker down, the
    workflow terminated or failed)."""
    CLIENT_NOT_PAID = "client_not_paid"
    """Back-to-back: waits until the client's payments cover the invoice."""
    INVOICE_BLOCKED = "invoice_blocked"
    """Manual import: the imported invoice's amounts differ from the validated CRA."""
    INVOICE_NOT_IMPORTED = "invoice_not_imported"
    """Manual import: the provider has not imported the invoice yet."""
    FLAGGED = "flagged"
    """Paid, then its invoice was cancelled: ops recover the money from the provider."""


class BlockedPayout(BaseModel):
    mission_id: str
    month: str
    workflow_id: str
    reason: BlockedReason
    detail: str
    """One English sentence for ops: amounts, dates, the recorded reason."""
    since: datetime
    """When the ledger last recorded the blocking fact."""
    provider_siren: str | None
    provider_name: str | None
    offer: PaymentOffer | None
    status: PayoutStatus | None
    """None: the payout's first write failed (`transition_failed`), no row exists."""
    invoice_number: str | None
    net_amount: Decimal | None
    due_on: date | None


class BlockedPayouts(BaseModel):
    today: date
    count: int
    payouts: list[BlockedPayout]


_WAITING = (
    PayoutStatus.WAITING_CLIENT_PAYMENT,
    PayoutStatus.WAITING_INVOICE_IMPORT,
    PayoutStatus.FLAGGED,
)


async def blocked_payouts(conn: AsyncConnection, today: date) -> BlockedPayouts:
    """Every payout that cannot be paid now, oldest blocking fact first; `today` (Paris)
    decides which scheduled payouts are overdue."""
    paid_so_far = (
        select(ClientPayment.invoice_id, func.sum(ClientPayment.amount).label("paid"))
        .group_by(ClientPayment.invoice_id)
        .subquery()
    )
    stmt = (
        _payouts()
        .add_columns(
            Payout.status_reason,
            Payout.updated_at,
            Invoice.status.label("invoice_status"),
            Invoice.blocked_reason,
            Invoice.amount_incl_vat,
            func.coalesce(paid_so_far.c.paid, 0).label("client_paid"),
        )
        .outerjoin(paid_so_far, paid_so_far.c.invoice_id == Payout.invoice_id)
        .where(
            or_(
                Payout.status.in_(_WAITING),
                and_(Payout.status == PayoutStatus.SCHEDULED, Payout.due_on < today),
            )
        )
    )
    blocked: dict[tuple[str, str], BlockedPayout] = {}
    for row in await conn.execute(stmt):
        payout = _payout_row(row)
        reason, detail = _why(payout, row)
        blocked[(payout.mission_id, payout.month)] = BlockedPayout(
            **payout.model_dump(exclude={"amount", "fee", "paid_at"}),
            reason=reason,
            detail=detail,
            since=row.updated_at,
        )
    for failure in await _failed_transitions(conn):
        blocked[(failure.mission_id, failure.month)] = failure
    payouts = sorted(blocked.values(), key=lambda p: (p.since, p.mission_id, p.month))
    return BlockedPayouts(today=today, count=len(payouts), payouts=payouts)


def _why(payout: PayoutRow, row: Row[Any]) -> tuple[BlockedReason, str]:
    r = row._mapping
    if payout.status is PayoutStatus.FLAGGED:
        return BlockedReason.FLAGGED, (
            f"paid {payout.net_amount}, then invoice {payout.invoice_number} was cancelled "
            f"({r['status_reason'] or 'no reason given'}): recover it from the provider"
        )
    if payout.status is PayoutStatus.WAITING_CLIENT_PAYMENT:
        total = r["amount_incl_vat"] or payout.amount
        paid = Decimal(r["client_paid"])
        return BlockedReason.CLIENT_NOT_PAID, (
            f"back-to-back: the client paid {paid} of invoice {payout.invoice_number}'s "
            f"{total}, {total - paid} still due; the payout follows the client's payment"
        )
    if payout.status is PayoutStatus.WAITING_INVOICE_IMPORT:
        if r["invoice_status"] is InvoiceStatus.BLOCKED:
            return BlockedReason.INVOICE_BLOCKED, (
                f"the imported invoice was blocked: {r['blocked_reason']}; the provider must "
                "import an invoice of the validated CRA's amounts"
            )
        return BlockedReason.INVOICE_NOT_IMPORTED, (
            "waiting for the provider to import the invoice of the validated CRA"
        )
    assert payout.due_on is not None, "an overdue payout is dated"
    return BlockedReason.OVERDUE, (
        f"due on {payout.due_on.isoformat()}, still scheduled: check that the worker runs "
        f"and workflow {payout.workflow_id}"
    )


async def _failed_transitions(conn: AsyncConnection) -> list[BlockedPayout]:
    """The payout transitions refused for good (`transition.failed`, written by
    activities/missions.py with the refused key `payout.<kind>:<mission>:<month>[:…]`),
    unless the payout was paid or cancelled since."""
    stmt = (
        select(
            MissionEvent.mission_id,
            MissionEvent.at,
            MissionEvent.data["transition"].astext.label("transition"),
            MissionEvent.data["key"].astext.label("key"),
            MissionEvent.data["reason"].astext.label("reason"),
        )
        .where(
            MissionEvent.kind == "transition.failed",
            MissionEvent.data["transition"].astext.like("payout.%"),
        )
        .order_by(MissionEvent.at)
    )
    failures = []
    for event in await conn.execute(stmt):
        prefix = f"{event.transition}:{event.mission_id}:"
        if not event.key.startswith(prefix):
            continue  # not a payout's key: nothing to name
        month = event.key.removeprefix(prefix).split(":")[0]
        payout = (
            await conn.execute(
                _payouts().where(Payout.mission_id == event.mission_id, Payout.month == month)
            )
        ).one_or_none()
        row = _payout_row(payout) if payout is not None else None
        if row is not None and row.status in (PayoutStatus.PAID, PayoutStatus.CANCELLED):
            continue  # resolved since
        provider = None
        if row is None:
            provider = (
                await conn.execute(
                    select(Mission.provider_siren, Provider.name)
                    .join(Provider, Provider.siren == Mission.provider_siren)
                    .where(Mission.mission_id == event.mission_id)
                )
            ).one_or_none()
        failures.append(
            BlockedPayout(
                mission_id=event.mission_id,
                month=month,
                workflow_id=payout_workflow_id(event.mission_id, month),
                reason=BlockedReason.TRANSITION_FAILED,
                detail=(
                    f"{event.transition} was refused for good by the database: {event.reason}; "
                    "the payout workflow stopped (ops were e-mailed): fix the data, then "
                    "reset the workflow"
                ),
                since=event.at,
                provider_siren=row.provider_siren if row else provider and provider[0],
                provider_name=row.provider_name if row else provider and provider[1],
                offer=row.offer if row else None,
                status=row.status if row else None,
                invoice_number=row.invoice_number if row else None,
                net_amount=row.net_amount if row else None,
                due_on=row.due_on if row else None,
            )
        )
    return failures


# --- Outbox e-mails ---------------------------------------------------------------------------


class MailStatus(BaseModel):
    outbox_key: str
    sent: bool
    """Sent by this command."""
    status: OutboxStatus
    recipients: list[str]
    template: str
    attempts: int
    sent_at: datetime | None
    message_id: str | None
    last_error: str | None
    """The server's last refusal (kept after a later success, for the record)."""

    def sentence(self) -> str:
        to = ", ".join(self.recipients)
        if self.sent:
            return f"e-mail {self.outbox_key} sent to {to} (attempt {self.attempts}): status sent"
        return (
            f"e-mail {self.outbox_key} to {to} refused again by the SMTP server: "
            f"{self.last_error}; status {self.status.value}: fix the recipient or the relay, "
            "then resend it"
        )


async def mail_status(conn: AsyncConnection, key: str, *, sent: bool) -> MailStatus:
    row = (
        await conn.execute(
            select(
                EmailOutbox.outbox_key,
                EmailOutbox.status,
                EmailOutbox.recipients,
                EmailOutbox.template,
                EmailOutbox.attempts,
                EmailOutbox.sent_at,
                EmailOutbox.message_id,
                EmailOutbox.last_error,
            ).where(EmailOutbox.outbox_key == key)
        )
    ).one()
    return MailStatus.model_validate({**row._mapping, "sent": sent})
