"""The payout workflow `payout-<mission_id>-<YYYY-MM>`: its input, state, updates and activities.

One payout per validated CRA (hence per invoice). The workflow computes every amount and the
date from `domain/` (one source of truth): the caller passes the CRA's facts (TJM, days,
expenses), never an amount or a date it computed itself.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import Days, Email, Model, Money, Month, NonEmptyText, PlatformId
from schemas.enums import PaymentOffer, PayoutStatus

PAYOUT_WORKFLOW = "PayoutWorkflow"

# Updates (each with a validator: a wrong invoice number is refused before anything is
# written) and the query.
CLIENT_PAYMENT_RECEIVED = "client_payment.received"
"""Payload `schemas.events.ClientPaymentReceived`."""
INVOICE_IMPORTED = "invoice.imported"
"""Payload `schemas.events.InvoiceImported`: the import date becomes the invoice date."""
INVOICE_CANCELLED = "invoice.cancelled"
"""Payload `schemas.events.InvoiceCancelled`: cancels a payout not yet made, flags a paid one."""
STATE_QUERY = "state"

# Activities, called by name from the workflow.
RECORD_PAYOUT_TRANSITION = "record_payout_transition"
RECORD_CLIENT_PAYMENT = "record_client_payment"
RECORD_INVOICE_IMPORT = "record_invoice_import"


def credit_note_number(issuer_siren: str, sequence: int) -> str:
    """The issuer's continuous credit-note number, unique platform-wide: `AV-<SIREN>-000001`."""
    return f"AV-{issuer_siren}-{sequence:06d}"


class PayoutProvider(Model):
    siren: str = Field(pattern=r"^[0-9]{9}$")
    email: Email
    name: NonEmptyText


class PayoutInput(Model):
    """What the monthly CRA cycle knows when the client validates the CRA.

    `invoice_number` is None while a manual-import invoice awaits its import: the payout then
    waits for `invoice.imported`. The gross amount is TJM × days + `expenses_excl_vat` +
    `vat_amount` (the invoice's VAT, 0 under the VAT franchise): the invoice's total incl.
    VAT. `expenses_excl_vat` is everything invoiced beside the days of service (expenses,
    overtime / on-call, corrections of earlier months, which may make it negative); the
    offer's fee applies to the days of service only (domain.fees).
    """

    mission_id: PlatformId
    month: Month
    offer: PaymentOffer
    provider: PayoutProvider
    invoice_number: NonEmptyText | None = None
    invoice_date: date | None = Field(
        default=None, description="the invoice's date; the validation date when None"
    )
    validated_on: date = Field(description="CRA validation date (Europe/Paris)")
    tjm: Money
    days: Days
    expenses_excl_vat: Money = Decimal("0.00")
    vat_amount: Money = Decimal("0.00")


class PayoutFacts(BaseModel):
    """Why the payout is (or will be) made on its date: what support reads to the provider."""

    validated_on: date
    invoice_date: date | None = None
    raw_date: date | None = None
    shift: str = "none"
    skipped_holidays: list[str] = Field(default_factory=list, description="'2026-07-14 (…)'")
    legal_limit: date | None = None
    capped_by_legal_limit: bool = False
    explanation: str = ""
    client_paid_on: date | None = None
    client_days_late: int = 0
    client_penalties: Decimal = Decimal("0.00")
    client_indemnity: Decimal = Decimal("0.00")


class PayoutState(BaseModel):
    """Result of the `state` query and of the workflow."""

    mission_id: str
    month: str
    offer: PaymentOffer
    status: PayoutStatus
    invoice_number: str | None = None
    payout_date: date | None = None
    service_amount: Decimal
    amount: Decimal = Field(description="gross: service + expenses + VAT")
    fee: Decimal
    net_amount: Decimal = Field(description="what the provider receives: amount - fee")
    paid_at: datetime | None = None
    reason: str | None = None
    invoice_blocked_reason: str | None = Field(
        default=None, description="why the last imported invoice was blocked (amounts)"
    )
    facts: PayoutFacts


# --- Activities -------------------------------------------------------------------------------

PayoutTransitionKind = Literal["scheduled", "paid", "cancelled", "flagged"]
Recipient = Literal["provider", "ops"]


class PayoutEmail(BaseModel):
    model_config = ConfigDict(frozen=True)

    to: Recipient
    template: str
    context: dict[str, str] = Field(default_factory=dict)


class PayoutTransition(BaseModel):
    """One payout transition: the `payouts` row, the timeline row and the outbox rows, in one
    transaction. `key` is the timeline key ("payout.paid:M-1:2026-11")."""

    model_config = ConfigDict(frozen=True)

    key: str
    kind: PayoutTransitionKind
    at: datetime
    mission_id: str
    month: str
    offer: PaymentOffer
    status: PayoutStatus
    amount: Decimal
    fee: Decimal
    net_amount: Decimal
    due_on: date | None = None
    reason: str | None = None
    provider_email: str
    emails: list[PayoutEmail] = Field(default_factory=list)


class RecordClientPaymentInput(BaseModel):
    """The client's payment of the invoice: a `client_payments` row with its late fees."""

    model_config = ConfigDict(frozen=True)

    mission_id: str
    month: str
    invoice_number: str
    amount: Decimal
    paid_on: date
    at: datetime


class ClientPaymentResult(BaseModel):
    applied: bool
    due_on: date | None = None
    days_late: int = 0
    penalties: Decimal = Decimal("0.00")
    indemnity: Decimal = Decimal("0.00")


class InvoiceImport(BaseModel):
    """A manual import checked against the validated CRA, in one transaction: the `invoices`
    row is numbered and in payment, or blocked with the reason (and the provider's email).

    `expected_*` are the CRA's amounts as the payout knows them, used only when the invoice
    row holds none (rows written before the CRA validation stored the expected amounts)."""

    model_config = ConfigDict(frozen=True)

    mission_id: str
    month: str
    number: str
    imported_on: date = Field(description="the import date: the invoice's issue date")
    amount_excl_vat: Decimal
    vat_amount: Decimal
    file_ref: str
    expected_excl_vat: Decimal
    expected_vat: Decimal
    at: datetime
    provider_email: str
    context: dict[str, str] = Field(default_factory=dict)


class InvoiceImportResult(BaseModel):
    accepted: bool
    reason: str | None = None
    expected_excl_vat: Decimal | None = None
    """What the validated CRA invoices (excl. VAT), when the import was blocked."""
    expected_vat: Decimal | None = None
    outbox_keys: list[str] = Field(default_factory=list)
