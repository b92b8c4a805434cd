"""Payout transitions and client payments: state, timeline and outbox in one transaction.

The `payouts` row is written with `INSERT … ON CONFLICT (mission_id, month) DO UPDATE`, and
the update is guarded by the statuses it may leave: a paid payout is never paid again (nor
scheduled or cancelled: only flagged), a cancelled or flagged one never changes. Cancelling
or flagging (`invoice.cancelled`) also writes, in the same transaction, the credit note that
references the invoice (numbered from the issuer's `CREDIT_NOTE_SERIES`, once per invoice),
its Factur-X file (`activities.billing_files`), and sets the invoice `cancelled`. The timeline
key decides whether the transition was already committed (a retry after a crash): the row is
then left alone and only the outbox keys are returned again for the send activity.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.billing_files import issue_credit_note_document
from activities.outbox import SendNow, keep_for_later
from activities.transitions import payout_schedule, queue_email, record_timeline
from db.keys import fit_key
from db.models import ClientPayment, CreditNote, Invoice, MissionEvent, Payout
from db.sequences import CREDIT_NOTE_SERIES, next_number
from domain.client_payments import ClientPayment as Payment
from domain.client_payments import PaymentProgress, payment_progress
from domain.clock import paris_date
from domain.document_numbers import credit_note_number
from domain.errors import DomainError
from domain.formatting import money_fr
from domain.money import ZERO
from domain.payouts import imported_invoice_terms
from domain.penalties import late_payment_penalties
from schemas.activities import TransitionResult
from schemas.enums import InvoiceStatus, PayoutStatus
from schemas.names import RECORD_CLIENT_PAYMENT, RECORD_INVOICE_IMPORT, RECORD_PAYOUT_TRANSITION
from schemas.payouts import (
    ClientPaymentResult,
    InvoiceImport,
    InvoiceImportResult,
    PayoutTransition,
    PayoutTransitionKind,
    RecordClientPaymentInput,
)

log = logging.getLogger(__name__)

_FINAL = (PayoutStatus.PAID, PayoutStatus.CANCELLED, PayoutStatus.FLAGGED)


class PayoutActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ops_email: str,
        send_now: SendNow = keep_for_later,
    ) -> None:
        """`send_now` sends a transition's e-mails after its commit (activities.outbox)."""
        self._sessions = sessions
        self._send_now = send_now
        self._ops_email = ops_email

    @activity.defn(name=RECORD_PAYOUT_TRANSITION)
    async def record_payout_transition(self, t: PayoutTransition) -> TransitionResult:
        async with self._sessions.begin() as session:
            applied = await _record_and_write(session, t)
            if applied and t.kind in ("cancelled", "flagged"):
                await _credit_note(session, t)
            keys = []
            for email in t.emails:
                to = t.provider_email if email.to == "provider" else self._ops_email
                keys.append(
                    await queue_email(
                        session,
                        key=f"{t.key}:{email.to}",
                        mission_id=t.mission_id,
                        recipients=[to],
                        template=email.template,
                        context=dict(email.context),
                    )
                )
        return TransitionResult(applied=applied, outbox_keys=await self._send_now(keys))

    @activity.defn(name=RECORD_CLIENT_PAYMENT)
    async def record_client_payment(self, inp: RecordClientPaymentInput) -> ClientPaymentResult:
        """One client payment of the invoice (one row per platform event: a retry or a re-sent
        event counts once), and where all its payments stand (`payment_progress`): the invoice
        is paid once they cover its total incl. VAT. The payment bears the late-payment
        interest on what it settles, and the fixed recovery indemnity when it is the invoice's
        first late payment (L441-10, D441-5). A payment beyond the total is flagged to ops
        (timeline row, warning log, e-mail), once per event."""
        async with self._sessions.begin() as session:
            invoice = (
                await session.execute(
                    select(Invoice)
                    .where(
                        Invoice.mission_id == inp.mission_id,
                        Invoice.month == inp.month,
                        Invoice.number == inp.invoice_number,
                    )
                    .with_for_update()  # the invoice's payments are summed one writer at a time
                )
            ).scalar_one_or_none()
            if invoice is None:
                raise ApplicationError(
                    f"no invoice {inp.invoice_number!r} for mission {inp.mission_id} "
                    f"({inp.month}): record the invoice before its payment",
                    type="UnknownInvoice",
                    non_retryable=True,
                )
            total = (
                invoice.amount_incl_vat
                if invoice.amount_incl_vat is not None
                else inp.invoice_total
            )
            inserted = await session.execute(
                insert(ClientPayment)
                .values(
                    event_id=inp.event_id,
                    invoice_id=invoice.id,
                    amount=inp.amount,
                    paid_on=inp.paid_on,
                )
                .on_conflict_do_nothing(index_elements=[ClientPayment.event_id])
                .returning(ClientPayment.id)
            )
            applied = inserted.scalar_one_or_none() is not None
            rows = list(
                (
                    await session.execute(
                        select(ClientPayment)
                        .where(ClientPayment.invoice_id == invoice.id)
                        .order_by(ClientPayment.paid_on, ClientPayment.id)
                    )
                ).scalars()
            )
            (mine,) = [row for row in rows if row.event_id == inp.event_id]
            payments = [Payment(amount=row.amount, paid_on=row.paid_on) for row in rows]
            progress = payment_progress(total, payments)
            due_on = invoice.due_on
            if applied and due_on is not None:
                kwargs: dict[str, Any] = {}
                if invoice.late_payment_rate is not None:
                    kwargs["rate"] = invoice.late_payment_rate
                if invoice.recovery_indemnity is not None:
                    kwargs["indemnity"] = invoice.recovery_indemnity
                penalty = late_payment_penalties(total, due_on, payments, **kwargs)[
                    rows.index(mine)
                ]
                mine.days_late = penalty.days_late
                mine.penalties = penalty.interest
                # The indemnity is owed once per invoice, whatever order the payments came in.
                others = any(row.indemnity > 0 for row in rows if row is not mine)
                mine.indemnity = ZERO if others else penalty.indemnity
                await session.flush()
            if applied and progress.complete and invoice.status == InvoiceStatus.IN_PAYMENT:
                # The client settled it: the invoice is paid (a cancelled one stays cancelled).
                invoice.status = InvoiceStatus.PAID
                invoice.paid_at = inp.at
            event_key = _payment_key(inp)
            await record_timeline(
                session,
                key=f"{event_key}:received",
                mission_id=inp.mission_id,
                kind="client_payment.received",
                at=inp.at,
                data={
                    "month": inp.month,
                    "invoice_number": inp.invoice_number,
                    "amount": str(inp.amount),
                    "paid_on": inp.paid_on.isoformat(),
                    "due_on": due_on.isoformat() if due_on else None,
                    "days_late": mine.days_late,
                    "penalties": str(mine.penalties),
                    "indemnity": str(mine.indemnity),
                    "paid": str(progress.paid),
                    "still_due": str(progress.still_due),
                    "complete_on": progress.complete_on.isoformat()
                    if progress.complete_on
                    else None,
                },
            )
            keys = []
            before = payment_progress(
                total, [p for p, row in zip(payments, rows, strict=True) if row is not mine]
            )
            if progress.overpaid_by > before.overpaid_by:
                keys.append(await self._flag_overpayment(session, inp, event_key, progress))
        return ClientPaymentResult(
            applied=applied,
            due_on=due_on,
            days_late=mine.days_late,
            penalties=mine.penalties,
            indemnity=mine.indemnity,
            paid=progress.paid,
            still_due=progress.still_due,
            complete_on=progress.complete_on,
            overpaid_by=progress.overpaid_by,
            days_late_max=max(row.days_late for row in rows),
            penalties_total=sum((row.penalties for row in rows), ZERO),
            indemnity_total=sum((row.indemnity for row in rows), ZERO),
            outbox_keys=keys,
        )

    async def _flag_overpayment(
        self,
        session: AsyncSession,
        inp: RecordClientPaymentInput,
        event_key: str,
        progress: PaymentProgress,
    ) -> str:
        """The client paid beyond the invoice total: a timeline row, a warning and an e-mail
        to ops (once per event; a retry only returns the e-mail's key again)."""
        data = {
            "month": inp.month,
            "invoice_number": inp.invoice_number,
            "invoice_total": str(progress.total),
            "paid": str(progress.paid),
            "overpaid_by": str(progress.overpaid_by),
        }
        if await record_timeline(
            session,
            key=f"{event_key}:overpaid",
            mission_id=inp.mission_id,
            kind="client_payment.overpaid",
            at=inp.at,
            data=data,
        ):
            log.warning(
                "client overpaid invoice %s of mission %s (%s): %s paid for %s, %s too much",
                inp.invoice_number,
                inp.mission_id,
                inp.month,
                progress.paid,
                progress.total,
                progress.overpaid_by,
            )
        return await queue_email(
            session,
            key=f"{event_key}:overpaid:ops",
            mission_id=inp.mission_id,
            recipients=[self._ops_email],
            template="client_overpaid",
            context={
                "mission_id": inp.mission_id,
                "provider_name": inp.provider_name,
                **data,
            },
        )

    @activity.defn(name=RECORD_INVOICE_IMPORT)
    async def record_invoice_import(self, inp: InvoiceImport) -> InvoiceImportResult:
        """A manual import checked against the validated CRA: amounts equal, the invoice is
        numbered, dated of its own issue date (`issued_on`, never after its import day) and in
        payment (under verification while checked), and the payout's terms are dated from it
        (`imported_invoice_terms`: the invoice's due date and the payout date); different, it
        is blocked with the reason and the provider is told that the fix goes through next
        month's CRA. A retry after the commit finds the same outcome."""
        key = f"invoice.imported:{inp.mission_id}:{inp.month}:{inp.number}"
        async with self._sessions.begin() as session:
            invoice = await _locked_invoice(session, inp.mission_id, inp.month)
            if invoice is None:
                raise ApplicationError(
                    f"no invoice awaits import for mission {inp.mission_id} ({inp.month}): "
                    "its CRA is not validated",
                    type="UnknownInvoice",
                    non_retryable=True,
                )
            if invoice.number == inp.number and invoice.status in (
                InvoiceStatus.IN_PAYMENT,
                InvoiceStatus.PAID,
            ):
                terms = imported_invoice_terms(
                    inp.terms, invoice.issued_on or inp.issued_on, inp.imported_on
                )
                return InvoiceImportResult(accepted=True, terms=terms)
            reason = _mismatch(invoice, inp)
            if reason is not None:
                invoice.status = InvoiceStatus.BLOCKED
                invoice.blocked_reason = reason
                # One block (timeline row, email) per distinct import: the same import again
                # (a retry) finds its row; other wrong amounts get their own reason and email.
                blocked = f"{key}:{inp.amount_excl_vat}:{inp.vat_amount}:blocked"
                await record_timeline(
                    session,
                    key=blocked,
                    mission_id=inp.mission_id,
                    kind="invoice.blocked",
                    at=inp.at,
                    data={"month": inp.month, "number": inp.number, "reason": reason},
                )
                outbox = await queue_email(
                    session,
                    key=f"{blocked}:provider",
                    mission_id=inp.mission_id,
                    recipients=[inp.provider_email],
                    template="invoice_blocked",
                    context={**inp.context, "invoice_number": inp.number, "reason": reason},
                )
                expected_excl, expected_vat = _expected(invoice, inp)
                return InvoiceImportResult(
                    accepted=False,
                    reason=reason,
                    outbox_keys=[outbox],
                    expected_excl_vat=expected_excl,
                    expected_vat=expected_vat,
                )
            clash = (
                await session.execute(
                    select(Invoice.mission_id, Invoice.month).where(
                        Invoice.issuer_siren == invoice.issuer_siren,
                        Invoice.number == inp.number,
                        Invoice.id != invoice.id,
                    )
                )
            ).first()
            if clash is not None:
                raise ApplicationError(
                    f"invoice number {inp.number} is already used by this provider "
                    f"(mission {clash.mission_id}, {clash.month})",
                    type="InvoiceNumberTaken",
                    non_retryable=True,
                )
            try:
                terms = imported_invoice_terms(inp.terms, inp.issued_on, inp.imported_on)
            except DomainError as exc:
                raise ApplicationError(
                    str(exc), type="InvoiceDateRefused", non_retryable=True
                ) from exc
            await session.execute(
                update(Payout)
                .where(Payout.mission_id == inp.mission_id, Payout.month == inp.month)
                .values(schedule=payout_schedule(terms))
            )
            invoice.status = InvoiceStatus.UNDER_VERIFICATION
            invoice.number = inp.number
            invoice.issued_on = terms.invoice_date
            invoice.due_on = terms.client_due_on
            invoice.amount_excl_vat = inp.amount_excl_vat
            invoice.vat_amount = inp.vat_amount
            invoice.amount_incl_vat = inp.amount_excl_vat + inp.vat_amount
            invoice.pdf_ref = inp.file_ref
            invoice.blocked_reason = None
            await session.flush()  # verified: the amounts are the CRA's
            invoice.status = InvoiceStatus.IN_PAYMENT
            await record_timeline(
                session,
                key=key,
                mission_id=inp.mission_id,
                kind="invoice.imported",
                at=inp.at,
                data={
                    "month": inp.month,
                    "number": inp.number,
                    "issued_on": str(terms.invoice_date),
                    "amount_excl_vat": str(inp.amount_excl_vat),
                    "vat_amount": str(inp.vat_amount),
                },
            )
        return InvoiceImportResult(accepted=True, terms=terms)


def _expected(invoice: Invoice, inp: InvoiceImport) -> tuple[Decimal, Decimal]:
    """The validated CRA's amounts (excl. VAT, VAT) the import must carry."""
    expected_excl = (
        invoice.amount_excl_vat
        if invoice.amount_excl_vat is not None
        else inp.terms.amount_excl_vat
    )
    expected_vat = invoice.vat_amount if invoice.vat_amount is not None else inp.terms.vat_amount
    return expected_excl, expected_vat


def _mismatch(invoice: Invoice, inp: InvoiceImport) -> str | None:
    """How the import differs from the validated CRA, in French, or None."""
    expected_excl, expected_vat = _expected(invoice, inp)
    differences = []
    if inp.amount_excl_vat != expected_excl:
        differences.append(
            f"montant HT {money_fr(expected_excl)} attendu, {money_fr(inp.amount_excl_vat)} importé"
        )
    if inp.vat_amount != expected_vat:
        differences.append(
            f"TVA {money_fr(expected_vat)} attendue, {money_fr(inp.vat_amount)} importée"
        )
    return "; ".join(differences) or None


async def _record_and_write(session: AsyncSession, t: PayoutTransition) -> bool:
    """The transition's timeline row and, when it is new (False: committed before, by an
    earlier attempt), the payout row: one statement, one round trip (`_payout_transition`)."""
    row = (
        await session.execute(
            _payout_transition(t.kind),
            {
                "event_key": fit_key(t.key),
                "event_mission_id": t.mission_id,
                "event_kind": f"payout.{t.kind}",
                "event_at": t.at,
                "event_data": {
                    "month": t.month,
                    "offer": t.offer.value,
                    "net_amount": str(t.net_amount),
                    "due_on": t.due_on.isoformat() if t.due_on else None,
                    "reason": t.reason,
                },
                "mission_id": t.mission_id,
                "month": t.month,
                "offer": t.offer,
                "amount": t.amount,
                "fee": t.fee,
                "fee_deducted": t.fee_deducted,
                "fee_carried_out": t.fee_carried_out,
                "net_amount": t.net_amount,
                "due_on": t.due_on,
                "status": t.status,
                "status_reason": t.reason,
                "paid_at": t.at if t.kind == "paid" else None,
            },
        )
    ).one()
    if row.recorded is None:
        return False
    if row.payout is None:
        activity.logger.warning(
            "payout %s %s not changed to %s: its row is already final",
            t.mission_id,
            t.month,
            t.status,
        )
    return True


_PAYOUTS: Table = Payout.__table__  # type: ignore[assignment]
_INVOICES: Table = Invoice.__table__  # type: ignore[assignment]
_AMOUNTS = ("amount", "fee", "fee_deducted", "fee_carried_out", "net_amount", "due_on")


_EVENTS: Table = MissionEvent.__table__  # type: ignore[assignment]
_AMOUNTS = ("amount", "fee", "fee_deducted", "fee_carried_out", "net_amount", "due_on")
_PAYOUT_VALUES = (
    "mission_id",
    "month",
    "offer",
    *_AMOUNTS,
    "status",
    "status_reason",
    "paid_at",
)
"""The payout row's columns a transition gives (`invoice_id` is the month's invoice's)."""


@cache
def _payout_transition(kind: PayoutTransitionKind) -> Select[int | None, int | None]:
    """A transition of `kind` as one statement, built once per kind: the timeline row
    (`ON CONFLICT DO NOTHING`, as `record_timeline` writes it), then, only if it was new, the
    payout row's upsert; answers (recorded, payout): the timeline row's id (None: recorded
    before) and the payout's (None: not written, or its row may not change).

    The upsert: the invoice is the month's, the update sets the status and its reason, the
    amounts when scheduled or paid, the payment's time when paid, and only on a row the
    transition may change: a paid one is only flagged, a final one never changes."""
    events = _EVENTS.c
    recorded = (
        insert(_EVENTS)
        .values(
            idempotency_key=bindparam("event_key"),
            mission_id=bindparam("event_mission_id"),
            kind=bindparam("event_kind"),
            at=bindparam("event_at"),
            data=bindparam("event_data"),
        )
        .on_conflict_do_nothing(index_elements=[events.idempotency_key])
        .returning(events.id)
        .cte("recorded")
    )
    invoice_id = (
        select(_INVOICES.c.id)
        .where(
            _INVOICES.c.mission_id == bindparam("mission_id", type_=_INVOICES.c.mission_id.type),
            _INVOICES.c.month == bindparam("month", type_=_INVOICES.c.month.type),
        )
        .scalar_subquery()
    )
    values = select(
        *(bindparam(name, type_=_PAYOUTS.c[name].type) for name in _PAYOUT_VALUES), invoice_id
    ).where(exists(select(recorded.c.id)))
    statement = insert(_PAYOUTS).from_select([*_PAYOUT_VALUES, "invoice_id"], values)
    changed = ["status", "status_reason"]
    if kind in ("scheduled", "paid"):
        changed += _AMOUNTS
    if kind == "paid":
        changed.append("paid_at")
    set_: dict[str, Any] = {
        "invoice_id": func.coalesce(statement.excluded.invoice_id, _PAYOUTS.c.invoice_id)
    }
    set_.update((name, statement.excluded[name]) for name in changed)
    may_update = (
        _PAYOUTS.c.status == PayoutStatus.PAID
        if kind == "flagged"
        else _PAYOUTS.c.status.notin_(_FINAL)
    )
    written = (
        statement.on_conflict_do_update(
            index_elements=[_PAYOUTS.c.mission_id, _PAYOUTS.c.month], set_=set_, where=may_update
        )
        .returning(_PAYOUTS.c.id)
        .cte("written")
    )
    return select(
        select(recorded.c.id).scalar_subquery().label("recorded"),
        select(written.c.id).scalar_subquery().label("payout"),
    )


def _payment_key(inp: RecordClientPaymentInput) -> str:
    """The idempotency key of a payment's timeline rows and e-mail: its mission, month and
    event (the event id digested when the whole would not fit the 300-character keys)."""
    key = f"client_payment:{inp.mission_id}:{inp.month}:{inp.event_id}"
    if len(key) <= _KEY_ROOM:
        return key
    digest = hashlib.sha256(inp.event_id.encode()).hexdigest()[:32]
    return f"client_payment:{inp.mission_id}:{inp.month}:{digest}"


_KEY_ROOM = 300 - len(":overpaid:ops")


async def _locked_invoice(session: AsyncSession, mission_id: str, month: str) -> Invoice | None:
    """The month's invoice row, locked until the transaction ends (one writer at a time)."""
    return (
        await session.execute(
            select(Invoice)
            .where(Invoice.mission_id == mission_id, Invoice.month == month)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _credit_note(session: AsyncSession, t: PayoutTransition) -> None:
    """The invoice is cancelled; a numbered invoice gets its credit note (one per invoice, so a
    retry never spends a second number). An invoice never imported has nothing to credit."""
    invoice = await _locked_invoice(session, t.mission_id, t.month)
    if invoice is None:
        activity.logger.warning("no invoice for %s %s to cancel", t.mission_id, t.month)
        return
    invoice.status = InvoiceStatus.CANCELLED
    invoice.cancelled_at = t.at
    if invoice.number is None or invoice.amount_excl_vat is None:
        return
    existing = (
        await session.execute(select(CreditNote.id).where(CreditNote.invoice_id == invoice.id))
    ).scalar_one_or_none()
    if existing is not None:
        return
    vat = invoice.vat_amount if invoice.vat_amount is not None else ZERO
    sequence = await next_number(session, invoice.issuer_siren, CREDIT_NOTE_SERIES)
    session.add(
        CreditNote(
            issuer_siren=invoice.issuer_siren,
            number=credit_note_number(invoice.issuer_siren, sequence),
            invoice_id=invoice.id,
            reason=t.reason or "facture annulée",
            issued_on=paris_date(t.at),
            amount_excl_vat=invoice.amount_excl_vat,
            vat_amount=vat,
            amount_incl_vat=invoice.amount_excl_vat + vat,
        )
    )
    await session.flush()
    await issue_credit_note_document(session, t.mission_id, t.month, at=t.at)
