"""The payout workflow `payout-<mission_id>-<YYYY-MM>`: its input, state, updates and activities.

One payout per validated CRA (hence per invoice). Its terms (date, gross, fee, net, initial
status) are computed once, by `domain.payouts.payout_terms`, in the CRA validation's
transaction (activities/cra.py): the provider's e-mail, the `payouts` row and the payout
workflow all read that one `PayoutTerms`, carried in `PayoutInput.terms`. Only a manual
import re-dates them (`domain.payouts.imported_invoice_terms`, in the import's transaction).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import Email, Model, Money, Month, NonEmptyText, PlatformId
from schemas.enums import PaymentOffer, PayoutStatus


class PayoutProvider(Model):
    siren: str = Field(pattern=r"^[0-9]{9}$")
    email: Email
    name: NonEmptyText


class PayoutDateFacts(Model):
    """Why the payout date is what it is (domain.payouts.PayoutSchedule), for support."""

    raw_date: date | None = None
    shift: str = "none"
    skipped_holidays: list[str] = Field(default_factory=list, description="'2026-07-14 (…)'")
    legal_limit: date | None = None
    capped_by_legal_limit: bool = False
    explanation: str = ""


class CarryKind(StrEnum):
    """Whom a carried balance is owed to (domain.carry_over): the client (`invoice`, excl.
    VAT, a line of the next invoice) or the platform (`fee`, deducted from the next payout)."""

    INVOICE = "invoice"
    FEE = "fee"


class CarriedBalance(Model):
    """A balance a month could not absorb (owed by the provider), as the ledger
    (`carried_balances`) holds it: from which month, how much, into which month once taken."""

    kind: CarryKind
    from_month: Month
    amount: Money = Field(description="owed by the provider, > 0")
    invoice_number: str | None = Field(
        default=None, description="the invoice of from_month, named by the carry line"
    )
    into_month: Month | None = Field(default=None, description="None while still owed")


class PayoutTerms(Model):
    """The payout of one validated CRA, computed once by `domain.payouts.payout_terms`.

    `invoice_date` (and with it `client_due_on`, `payout_date` and `schedule`) is None while
    a manually imported invoice awaits its import; `payout_date` is None for back-to-back
    too (paid after the client's payment). `amount` is the invoice's total incl. VAT (days of
    service, expenses, overtime and corrections, and VAT); `fee` applies to the days of
    service only (domain.fees); `net_amount` = `amount` - `fee`. `status` is the payout's
    initial status: scheduled, waiting for the client's payment or for the invoice's import.
    """

    offer: PaymentOffer
    validated_on: date = Field(description="CRA validation date (Europe/Paris)")
    invoice_date: date | None = None
    client_due_on: date | None = Field(
        default=None, description="the client's due date: invoice date + the payment term"
    )
    status: PayoutStatus
    payout_date: date | None = None
    service_amount: Money
    amount_excl_vat: Money
    vat_amount: Money
    amount: Money = Field(description="gross: the invoice's total incl. VAT")
    fee: Money
    net_amount: Money = Field(description="what the provider receives, never below zero")
    schedule: PayoutDateFacts | None = None
    carried_in: list[CarriedBalance] = Field(default_factory=list)
    carried_out: list[CarriedBalance] = Field(default_factory=list)

    @property
    def fee_deducted(self) -> Decimal:
        """The fee balances of earlier months taken from this payout."""
        return sum((b.amount for b in self.carried_in if b.kind is CarryKind.FEE), Decimal("0.00"))

    @property
    def fee_carried_out(self) -> Decimal:
        """What this payout could not cover, carried to the next one."""
        return sum((b.amount for b in self.carried_out if b.kind is CarryKind.FEE), Decimal("0.00"))


class PayoutInput(Model):
    """What the monthly CRA cycle knows once the client validated the CRA: the terms the
    validation computed and stored (never recomputed by the payout).

    `invoice_number` is None while a manual-import invoice awaits its import: the payout then
    waits for `invoice.imported`.
    """

    mission_id: PlatformId
    month: Month
    provider: PayoutProvider
    invoice_number: NonEmptyText | None = None
    terms: PayoutTerms


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
    client_paid_on: date | None = Field(
        default=None, description="the day the client's payments came to cover the invoice"
    )
    client_paid: Decimal = Field(default=Decimal("0.00"), description="paid so far by the client")
    client_still_due: Decimal | None = Field(
        default=None, description="what the client still owes (None: no payment yet)"
    )
    client_overpaid_by: Decimal = Decimal("0.00")
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
    carried_in: list[CarriedBalance] = Field(default_factory=list)
    carried_out: list[CarriedBalance] = Field(default_factory=list)


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
    fee_deducted: Decimal = Decimal("0.00")
    fee_carried_out: Decimal = Decimal("0.00")
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
    event_id: str = Field(description="the platform's event id: one payment per event")
    amount: Decimal
    paid_on: date
    at: datetime
    invoice_total: Decimal = Field(
        description="the payout's gross (the invoice total incl. VAT) when the invoice row "
        "holds no total"
    )
    provider_name: str = ""


class ClientPaymentResult(BaseModel):
    """This payment's late fees, and where all the invoice's payments stand
    (`domain.client_payments.payment_progress`)."""

    applied: bool
    due_on: date | None = None
    days_late: int = 0
    penalties: Decimal = Decimal("0.00")
    indemnity: Decimal = Decimal("0.00")
    paid: Decimal = Decimal("0.00")
    still_due: Decimal = Decimal("0.00")
    complete_on: date | None = None
    overpaid_by: Decimal = Decimal("0.00")
    days_late_max: int = 0
    penalties_total: Decimal = Decimal("0.00")
    indemnity_total: Decimal = Decimal("0.00")
    outbox_keys: list[str] = Field(default_factory=list)


class InvoiceImport(BaseModel):
    """A manual import checked against the validated CRA, in one transaction: the `invoices`
    row is numbered, dated of its own issue date and in payment, or blocked with the reason (and the
    provider's email).

    `terms` are the payout's terms as the validation computed them: their amounts are the
    ones expected when the invoice row holds none, and an accepted import re-dates them."""

    model_config = ConfigDict(frozen=True)

    mission_id: str
    month: str
    number: str
    issued_on: date = Field(
        description="the invoice's own issue date (the provider's): the invoice date"
    )
    imported_on: date = Field(
        description="the import's day (Paris): the invoice cannot be issued after it"
    )
    amount_excl_vat: Decimal
    vat_amount: Decimal
    file_ref: str
    terms: PayoutTerms
    at: datetime
    provider_email: str
    context: dict[str, str] = Field(default_factory=dict)


class InvoiceImportResult(BaseModel):
    accepted: bool
    terms: PayoutTerms | None = None
    """The payout's terms dated from the accepted invoice (`imported_invoice_terms`)."""
    reason: str | None = None
    expected_excl_vat: Decimal | None = None
    """What the validated CRA invoices (excl. VAT), when the import was blocked."""
    expected_vat: Decimal | None = None
    outbox_keys: list[str] = Field(default_factory=list)
