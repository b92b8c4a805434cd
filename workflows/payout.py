"""The payout workflow `payout-<mission_id>-<YYYY-MM>`: one per validated CRA, until paid.

Each payout lives in its own workflow so that a mission can continue-as-new while payouts are
pending. The monthly CRA cycle starts it through the idempotent `start_payout` activity
(activities/starts.py): a payout outlives the cycle that started it.

- The terms (gross amount = the invoice's total incl. VAT, fee = the offer's fee on the days of
  service, net, date, initial status) come in `PayoutInput.terms`, computed once by
  `domain.payouts.payout_terms` when the CRA was validated (activities/cra.py): the payout
  pays what the provider's e-mail promised and the ledger row holds, and never recomputes.
- Basic, Express, Flash: one durable timer to 09:00 Europe/Paris on the terms' date (computed
  from the CRA validation, the legal cap counting from the invoice date). The client's payment is
  recorded (with late-payment interest and the €40 indemnity when it is late) but never moves
  the date: an early payment does not make it earlier, a late one does not delay it.
- Back-to-back: waits until the client's payments (`client_payment.received` may be partial:
  they accumulate per invoice, `domain.client_payments`) cover the invoice total incl. VAT,
  then pays on the first business day on or after the day they did. A partial payment is
  recorded and the payout keeps waiting (`explain` says what is still due); a payment beyond
  the total is recorded and flagged to ops by the activity. Each payment is one platform
  event (its id is the update id): a retried or re-sent event counts once.
- Immediate: pays on the first business day on or after the validation (or the import).
- Manual import (`invoice_number` None at start, undated terms): waits for `invoice.imported`,
  whose activity checks the amounts against the validated CRA in one transaction. Equal: the
  invoice is numbered and in payment, its own issue date (`issued_on`) becomes the invoice
  date (refused by the validator, 409, when after the import's Paris day) and the activity
  returns the terms dated from it (`domain.payouts.imported_invoice_terms`).
  Different: the invoice is blocked with the reason, the provider is told that the fix goes
  through next month's CRA, and the payout keeps waiting (the update is accepted: the event
  was valid).
- Importing again after a blocked import (policy): the validated CRA is immutable, so the
  payout waits for an invoice with the CRA's amounts; the difference the provider wanted to
  invoice goes on next month's CRA as a correction line. Hence an import that matches the
  CRA is accepted (numbered, in payment, the payout computes its date from its issue date); an
  import with other wrong amounts or another number is blocked again with its own reason and
  its own email; the very same import again (same number and amounts, a new event id) is
  refused by the validator (409 at the gateway, nothing written) with the amounts expected
  and where the difference goes. Once an import is accepted, any further import is refused.
- `invoice.cancelled`: cancels a payout not yet made; a payout already made is flagged for ops.
- After paying, the workflow stays open (no timer running but `KEEP_OPEN_AFTER_PAID`) until the
  client's payments cover the invoice or the invoice is cancelled, so late payments and credit
  notes still reach it.

Each transition is one local activity (payout row, timeline, outbox: one marker event), its
e-mails then a local delivery attempt (workflows/effects.py). A Basic payout costs: its
start (search attributes included), schedule, timer, pay, deliver, the unset of
`NextPayoutDate` and the timer that keeps it open.

Ops find upcoming payouts in the Temporal UI with the `NextPayoutDate` search attribute,
set on this workflow when its date is known and cleared once it is paid or cancelled:
`WorkflowType = "PayoutWorkflow" AND NextPayoutDate < "2026-12-31T00:00:00Z"`.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal

from temporalio import workflow

from domain.clock import paris_date, paris_instant
from domain.formatting import long_date_fr
from domain.payouts import PAY_AT, back_to_back_payout_date, imported_invoice_terms
from domain.records import payout_email_context
from schemas import search_attributes as sa
from schemas.activities import TransitionResult
from schemas.enums import PayoutStatus
from schemas.events import ClientPaymentReceived, InvoiceCancelled, InvoiceImported
from schemas.names import (
    CLIENT_PAYMENT_RECEIVED,
    INVOICE_CANCELLED,
    INVOICE_IMPORTED,
    PAYOUT_WORKFLOW,
    RECORD_CLIENT_PAYMENT,
    RECORD_INVOICE_IMPORT,
    RECORD_PAYOUT_TRANSITION,
    STATE_QUERY,
)
from schemas.payouts import (
    ClientPaymentResult,
    InvoiceImport,
    InvoiceImportResult,
    PayoutEmail,
    PayoutFacts,
    PayoutInput,
    PayoutState,
    PayoutTransition,
    PayoutTransitionKind,
    Recipient,
    RecordClientPaymentInput,
)
from workflows.attributes import upsert_changed
from workflows.effects import deliver_outbox, root_message
from workflows.options import ACTIVITY_FAILED, failed_for_good, local_db_activity
from workflows.timers import Deadline
from workflows.transitions import record_refusal
from workflows.validation import check, occurred, refuse

KEEP_OPEN_AFTER_PAID = timedelta(days=400)
"""How long a paid payout still waits for the client's payment or a credit note."""

_DONE = frozenset({PayoutStatus.PAID, PayoutStatus.CANCELLED, PayoutStatus.FLAGGED})


def _same_import(a: InvoiceImported, b: InvoiceImported) -> bool:
    """The same invoice sent again: same number and amounts (the file may be re-uploaded)."""
    return (a.number, a.amount_excl_vat, a.vat_amount) == (
        b.number,
        b.amount_excl_vat,
        b.vat_amount,
    )


@workflow.defn(name=PAYOUT_WORKFLOW)
class PayoutWorkflow:
    @workflow.init
    def __init__(self, inp: PayoutInput) -> None:
        self._inp = inp
        self._terms = inp.terms
        """What is paid, and when: the validation's terms, re-dated only by an accepted import."""
        self._invoice_number = inp.invoice_number
        self._imported = inp.invoice_number is not None
        self._payment_ids: set[str] = set()
        """The events of the client's payments taken (recorded or being recorded)."""
        self._client: ClientPaymentResult | None = None
        """Where the client's payments stand, after the last one recorded."""
        self._paid_after_client: date | None = None
        """Back-to-back: the payout date, known once the client has paid."""
        self._lock = asyncio.Lock()  # transitions take turns; state changes after a commit
        self._status = inp.terms.status if self._imported else PayoutStatus.WAITING_INVOICE_IMPORT
        self._paid_at: datetime | None = None
        self._committed_at: datetime | None = None
        self._reason: str | None = None
        self._blocked_reason: str | None = None
        self._blocked_import: InvoiceImported | None = None
        """The last import blocked by its amounts (validators refuse it if sent again)."""
        self._blocked_expected: tuple[Decimal | None, Decimal | None] = (None, None)

    # --- The run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PayoutInput) -> PayoutState:
        # Search attributes go in as few upserts as possible (each is a history event): the
        # start set those it knew (activities/starts.py), only what differs is upserted.
        attributes = [
            sa.MISSION_ID.value_set(inp.mission_id),
            sa.PAYMENT_OFFER.value_set(self._terms.offer.value),
        ]
        if not self._imported:
            upsert_changed(attributes)
            attributes = []
            await self._step("scheduled", PayoutStatus.WAITING_INVOICE_IMPORT)
            await workflow.wait_condition(lambda: self._imported or self._done)
        if not self._done and self._terms.status is PayoutStatus.WAITING_CLIENT_PAYMENT:
            upsert_changed(attributes)
            attributes = []
            await self._step("scheduled", PayoutStatus.WAITING_CLIENT_PAYMENT)
            await workflow.wait_condition(lambda: self._client_paid_on is not None or self._done)
            if self._client_paid_on is not None:
                self._paid_after_client = back_to_back_payout_date(self._client_paid_on)
        if not self._done:
            assert self._payout_date is not None
            upsert_changed(
                [
                    *attributes,
                    sa.NEXT_PAYOUT_DATE.value_set(paris_instant(self._payout_date, PAY_AT)),
                ]
            )
            await self._step("scheduled", PayoutStatus.SCHEDULED)
            await self._until_payout_date()
            paid = await self._step("paid", PayoutStatus.PAID, email=("provider", "payout_paid"))
            if paid is not None:
                self._paid_at = self._committed_at
                upsert_changed([sa.NEXT_PAYOUT_DATE.value_unset()])
                await deliver_outbox(paid.outbox_keys)
        if self._status is PayoutStatus.PAID:
            # Late client payments and credit notes still reach a paid payout for a while.
            await Deadline("client payment or credit note after the payout").wait(
                workflow.now() + KEEP_OPEN_AFTER_PAID,
                lambda: (
                    (self._client_paid_on is not None and not self._lock.locked())
                    or self._status is not PayoutStatus.PAID
                ),
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state()

    @property
    def _done(self) -> bool:
        return self._status in _DONE

    @property
    def _client_paid_on(self) -> date | None:
        """The day the client's payments came to cover the invoice (None: not yet)."""
        return self._client.complete_on if self._client is not None else None

    @property
    def _payout_date(self) -> date | None:
        return self._terms.payout_date or self._paid_after_client

    async def _until_payout_date(self) -> None:
        assert self._payout_date is not None
        # The payout date came, or the payout was cancelled meanwhile.
        await Deadline(f"payout on {self._payout_date.isoformat()}").wait(
            paris_instant(self._payout_date, PAY_AT), lambda: self._done
        )

    async def _step(
        self,
        kind: PayoutTransitionKind,
        status: PayoutStatus,
        *,
        email: tuple[Recipient, str] | None = None,
    ) -> TransitionResult | None:
        """A transition of the main loop, unless a handler cancelled the payout meanwhile;
        the caller delivers the emails."""
        async with self._lock:
            if self._done:
                return None
            return await self._transition(kind, status, email=email)

    async def _transition(
        self,
        kind: PayoutTransitionKind,
        status: PayoutStatus,
        *,
        email: tuple[Recipient, str] | None = None,
    ) -> TransitionResult:
        """One activity: the payout row, the timeline row and the email; the status changes
        once it is committed."""
        inp = self._inp
        suffix = "" if kind != "scheduled" else f":{status.value}"
        key = f"payout.{kind}:{inp.mission_id}:{inp.month}{suffix}"
        emails = []
        if email is not None:
            emails.append(PayoutEmail(to=email[0], template=email[1], context=self._context()))
        at = workflow.now()
        try:
            result = await self._record(key, kind, status, at, emails)
        except ACTIVITY_FAILED as exc:
            final = failed_for_good(exc)
            if final is None:
                raise
            # Refused for good: visible (log, timeline, one ops e-mail), then the payout
            # stops with the refusal: no money moves on a ledger row that was not written.
            await deliver_outbox(await record_refusal(inp.mission_id, key, f"payout.{kind}", final))
            raise final from None
        self._status = status
        self._committed_at = at  # the row's paid_at for a payment
        return result

    async def _record(
        self,
        key: str,
        kind: PayoutTransitionKind,
        status: PayoutStatus,
        at: datetime,
        emails: list[PayoutEmail],
    ) -> TransitionResult:
        inp = self._inp
        result: TransitionResult = await local_db_activity(
            RECORD_PAYOUT_TRANSITION,
            PayoutTransition(
                key=key,
                kind=kind,
                at=at,
                mission_id=inp.mission_id,
                month=inp.month,
                offer=self._terms.offer,
                status=status,
                amount=self._terms.amount,
                fee=self._terms.fee,
                net_amount=self._terms.net_amount,
                fee_deducted=self._terms.fee_deducted,
                fee_carried_out=self._terms.fee_carried_out,
                due_on=self._payout_date,
                reason=self._reason,
                provider_email=inp.provider.email,
                emails=emails,
            ),
            TransitionResult,
        )
        return result

    def _context(self) -> dict[str, str]:
        return payout_email_context(
            mission_id=self._inp.mission_id,
            month=self._inp.month,
            provider_name=self._inp.provider.name,
            terms=self._terms,
            invoice_number=self._invoice_number,
            payout_date=self._payout_date,
            reason=self._reason,
        )

    # --- Updates --------------------------------------------------------------------------

    def _check_invoice(self, number: str) -> None:
        if self._invoice_number is None:
            raise refuse(
                f"the invoice of mission {self._inp.mission_id} ({self._inp.month}) is not "
                "imported yet"
            )
        if number != self._invoice_number:
            raise refuse(
                f"invoice {number} is not the invoice of this payout "
                f"({self._invoice_number}, mission {self._inp.mission_id}, {self._inp.month})"
            )

    @workflow.update(name=CLIENT_PAYMENT_RECEIVED)
    async def client_payment_received(self, event: ClientPaymentReceived) -> PayoutState:
        # One payment per event (the update id is the platform's event id): Temporal answers
        # a second delivery of a completed update itself, and the ledger counts it once.
        update = workflow.current_update_info()
        assert update is not None, "a client payment is an update"
        event_id = update.id
        if event_id in self._payment_ids:
            return self._state()
        self._payment_ids.add(event_id)
        async with self._lock:
            try:
                result: ClientPaymentResult = await local_db_activity(
                    RECORD_CLIENT_PAYMENT,
                    RecordClientPaymentInput(
                        mission_id=self._inp.mission_id,
                        month=self._inp.month,
                        invoice_number=event.invoice_number,
                        event_id=event_id,
                        amount=event.amount,
                        paid_on=event.paid_on,
                        at=workflow.now(),
                        invoice_total=self._terms.amount,
                        provider_name=self._inp.provider.name,
                    ),
                    ClientPaymentResult,
                )
            except ACTIVITY_FAILED as exc:
                self._payment_ids.discard(event_id)  # not recorded: it may be sent again
                raise refuse(root_message(exc)) from exc
            self._client = result
        if result.outbox_keys:  # an overpayment's e-mail to ops
            await deliver_outbox(result.outbox_keys)
        return self._state()

    @client_payment_received.validator
    def _validate_client_payment(self, event: ClientPaymentReceived) -> None:
        self._check_invoice(event.invoice_number)
        if self._status in (PayoutStatus.CANCELLED, PayoutStatus.FLAGGED):
            raise refuse(f"invoice {event.invoice_number} is cancelled")
        invoiced_on = self._terms.invoice_date or self._terms.validated_on
        paid_on = min(event.paid_on, paris_date(occurred(event)))
        if paid_on < invoiced_on:
            raise refuse(
                f"a payment of invoice {event.invoice_number} on {paid_on.isoformat()} precedes "
                f"the invoice, dated {invoiced_on.isoformat()}: check paid_on and occurred_at"
            )

    @workflow.update(name=INVOICE_IMPORTED)
    async def invoice_imported(self, event: InvoiceImported) -> PayoutState:
        async with self._lock:
            if self._imported or self._done:
                raise refuse(
                    f"the invoice of mission {self._inp.mission_id} ({self._inp.month}) "
                    f"was already imported ({self._invoice_number}) or cancelled"
                )
            try:
                result: InvoiceImportResult = await local_db_activity(
                    RECORD_INVOICE_IMPORT,
                    InvoiceImport(
                        mission_id=self._inp.mission_id,
                        month=self._inp.month,
                        number=event.number,
                        issued_on=event.issued_on,
                        imported_on=paris_date(occurred(event)),
                        amount_excl_vat=event.amount_excl_vat,
                        vat_amount=event.vat_amount,
                        file_ref=event.file_ref,
                        terms=self._terms,
                        at=workflow.now(),
                        provider_email=self._inp.provider.email,
                        context=self._context(),
                    ),
                    InvoiceImportResult,
                )
            except ACTIVITY_FAILED as exc:
                raise refuse(root_message(exc)) from exc
            if result.accepted:
                # The invoice exists from its import on: the terms are dated from it.
                assert result.terms is not None, "an accepted import dates the terms"
                self._terms = result.terms
                self._invoice_number = event.number
                self._blocked_reason = None
                self._blocked_import = None
                self._imported = True
                return self._state()
            self._blocked_reason = result.reason
            self._blocked_import = event
            self._blocked_expected = (result.expected_excl_vat, result.expected_vat)
        # The payout keeps waiting for a matching invoice.
        await deliver_outbox(result.outbox_keys)
        return self._state()

    @invoice_imported.validator
    def _validate_invoice_imported(self, event: InvoiceImported) -> None:
        if (event.mission_id, event.month) != (self._inp.mission_id, self._inp.month):
            raise refuse(
                f"invoice {event.number} is for mission {event.mission_id} ({event.month}), "
                f"not {self._inp.mission_id} ({self._inp.month})"
            )
        if self._imported:
            raise refuse(
                f"the invoice of mission {self._inp.mission_id} ({self._inp.month}) was already "
                f"imported ({self._invoice_number})"
            )
        # The invoice's own date: never after its import, never so early that the legal cap
        # leaves no business day on or after the validation.
        check(
            lambda: imported_invoice_terms(
                self._terms, event.issued_on, paris_date(occurred(event))
            )
        )
        blocked = self._blocked_import
        if blocked is not None and _same_import(blocked, event):
            excl, vat = self._blocked_expected
            amounts = (
                f"{excl} excl. VAT and {vat} VAT"
                if excl is not None and vat is not None
                else "the validated CRA's amounts"
            )
            raise refuse(
                f"invoice {event.number} was already imported and blocked "
                f"({self._blocked_reason}): the validated CRA is immutable, import an invoice of "
                f"{amounts} for {self._inp.month}, and put the difference on next month's CRA "
                "as a correction line"
            )

    @workflow.update(name=INVOICE_CANCELLED)
    async def invoice_cancelled(self, event: InvoiceCancelled) -> PayoutState:
        async with self._lock:
            if self._status in (PayoutStatus.CANCELLED, PayoutStatus.FLAGGED):
                return self._state()
            self._reason = event.reason
            if self._status is PayoutStatus.PAID:
                result = await self._transition(
                    "flagged", PayoutStatus.FLAGGED, email=("ops", "payout_flagged")
                )
            else:
                result = await self._transition(
                    "cancelled", PayoutStatus.CANCELLED, email=("provider", "payout_cancelled")
                )
                upsert_changed([sa.NEXT_PAYOUT_DATE.value_unset()])
        await deliver_outbox(result.outbox_keys)
        return self._state()

    @invoice_cancelled.validator
    def _validate_invoice_cancelled(self, event: InvoiceCancelled) -> None:
        if self._invoice_number is not None:
            self._check_invoice(event.invoice_number)

    # --- Query ----------------------------------------------------------------------------

    @workflow.query(name=STATE_QUERY)
    def state(self) -> PayoutState:
        return self._state()

    def _state(self) -> PayoutState:
        inp, terms = self._inp, self._terms
        facts = PayoutFacts(
            validated_on=terms.validated_on,
            invoice_date=terms.invoice_date,
            **(terms.schedule.model_dump() if terms.schedule is not None else {}),
        )
        if terms.schedule is not None:
            if self._paid_after_client is not None:
                assert self._client_paid_on is not None
                facts.explanation += (
                    f" Client payé le {long_date_fr(self._client_paid_on)} : paiement "
                    f"le {long_date_fr(self._paid_after_client)}."
                )
        elif not self._imported:
            facts.explanation = (
                f"Facture du CRA {inp.month} pas encore importée : la date de paiement sera "
                "calculée à son import."
            )
        if self._client is not None:
            facts.client_paid_on = self._client.complete_on
            facts.client_paid = self._client.paid
            facts.client_still_due = self._client.still_due
            facts.client_overpaid_by = self._client.overpaid_by
            facts.client_days_late = self._client.days_late_max
            facts.client_penalties = self._client.penalties_total
            facts.client_indemnity = self._client.indemnity_total
        return PayoutState(
            mission_id=inp.mission_id,
            month=inp.month,
            offer=terms.offer,
            status=self._status,
            invoice_number=self._invoice_number,
            payout_date=self._payout_date,
            service_amount=terms.service_amount,
            amount=terms.amount,
            fee=terms.fee,
            net_amount=terms.net_amount,
            paid_at=self._paid_at,
            reason=self._reason,
            invoice_blocked_reason=self._blocked_reason,
            facts=facts,
            carried_in=list(terms.carried_in),
            carried_out=list(terms.carried_out),
        )
