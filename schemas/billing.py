"""Billing documents to render: the invoice, the credit note and the billing voucher (BPF).

One model in, bytes out (`activities/billing_documents.py`). A model carries everything the
document prints, including what the database row holds (`db.models.Invoice`, `Bpf`,
`CreditNote`): the number (allocated beforehand by `db.sequences`, never here), the dates, the
parties, the lines and the totals. The totals are checked against the lines when the model
is built (sum of the lines, VAT per rate on the summed bases rounded half up — the rule of
`domain.invoices` and of EN 16931), so a document whose amounts disagree never renders.

Signs: an invoice line may be negative (a correction gives back an amount invoiced too much
in an earlier month): its quantity is negative and its unit price positive, as EN 16931
requires (BR-27: a price is never negative). A credit note carries the amounts it credits
with the sign they had on the invoice it cancels (positive for a normal invoice): the
document type says that they are credited, as in EN 16931 (type code 381 / 261); its PDF
prints them preceded by a minus sign. `CreditNoteDocument.signed_*` give the ledger view.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.common import (
    CENT,
    CountryCode,
    Days,
    Email,
    Model,
    Money,
    Month,
    NonEmptyText,
    PlatformId,
    PositiveMoney,
)
from schemas.enums import VatRegime
from schemas.events import Registration, Siren

PLATFORM_NAME = "LittleBig Connection"
"""The platform that issues self-billed invoices on the providers' behalf (mandate)."""

Siret = Annotated[str, StringConstraints(pattern=r"^\d{14}$")]
# Intra-community VAT number: country prefix and 2 to 13 characters ("FR40303265045").
VatNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z]{2}[0-9A-Z+*.]{2,13}$")
]
# VAT rate in percent (20, 10, 5.5, 2.1, 0); 0 <= rate < 100, at most two decimals.
VatRatePercent = Annotated[Decimal, Field(ge=0, lt=100, decimal_places=2)]
# A document number: EN 16931 / French CTC (BR-FR-01, BR-FR-02) allow 35 characters.
DocumentNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=35, pattern=r"^[A-Za-z0-9+\-_/]+$")
]
Quantity = Annotated[Decimal, Field(decimal_places=2, ge=-10000, le=10000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class LineKind(StrEnum):
    """What a line bills: the lines of a CRA (events.CraSubmitted)."""

    SERVICE = "service"  # TJM × days
    OVERTIME = "overtime"  # overtime / on-call amount
    CORRECTION = "correction"  # correction of an earlier month, may be negative
    EXPENSE = "expense"  # expense, at its own VAT rate


class LineUnit(StrEnum):
    """Unit of a line's quantity, as a UN/ECE Recommendation 20 code (EN 16931 BT-130)."""

    DAY = "DAY"
    UNIT = "C62"  # "one": a lump sum

    @property
    def label_fr(self) -> str:
        return "jour(s)" if self is LineUnit.DAY else "forfait"


class Party(Model):
    """A company or an individual entrepreneur on a document: seller (the provider) or buyer
    (the client). A company prints its registration (legal form, share capital, RCS city);
    an individual entrepreneur prints "EI" beside its name (L526-22 C. com.)."""

    name: NonEmptyText
    address_lines: list[ShortText] = Field(min_length=1, max_length=3)
    postcode: ShortText
    city: ShortText
    country: CountryCode = "FR"
    siren: Siren
    siret: Siret | None = None
    vat_number: VatNumber | None = None
    email: Email | None = None
    registration: Registration | None = None
    individual_entrepreneur: bool = False

    @property
    def display_name(self) -> str:
        """The name as printed: an individual entrepreneur's followed by "EI"."""
        if self.individual_entrepreneur and not self.name.rstrip().endswith(" EI"):
            return f"{self.name} EI"
        return self.name

    @model_validator(mode="after")
    def _siret_extends_siren(self) -> Self:
        if self.siret is not None and not self.siret.startswith(self.siren):
            raise ValueError(f"SIRET {self.siret} does not start with SIREN {self.siren}")
        return self


class InvoiceLine(Model):
    """One billed line; `amount_excl_vat` = quantity × unit price, to the cent."""

    kind: LineKind
    label: NonEmptyText
    quantity: Quantity
    unit: LineUnit
    unit_price_excl_vat: PositiveMoney
    vat_rate: VatRatePercent
    amount_excl_vat: Money
    corrects_month: Month | None = None
    receipt_ref: ShortText | None = None

    @model_validator(mode="after")
    def _amount_is_quantity_times_price(self) -> Self:
        expected = _money(self.quantity * self.unit_price_excl_vat)
        if self.amount_excl_vat != expected:
            raise ValueError(
                f"line {self.label!r}: amount {self.amount_excl_vat} is not quantity "
                f"{self.quantity} × unit price {self.unit_price_excl_vat} = {expected}"
            )
        if self.kind is LineKind.CORRECTION and self.corrects_month is None:
            raise ValueError(f"correction line {self.label!r} needs corrects_month")
        return self


class VatBreakdownLine(Model):
    """VAT on the lines taxed at `rate` percent: `vat` = `base` × rate / 100, half up."""

    rate: VatRatePercent
    base: Money
    vat: Money


def vat_breakdown_of(lines: list[InvoiceLine], *, regime: VatRegime) -> list[VatBreakdownLine]:
    """The VAT breakdown of `lines`, highest rate first (EN 16931 BG-23).

    When the seller charges no VAT (franchise, reverse charge) every line is at 0 % and there
    is one breakdown line, no VAT.
    """
    bases: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        bases[line.vat_rate if regime.charges_vat else Decimal(0)] += line.amount_excl_vat
    return [
        VatBreakdownLine(rate=rate, base=_money(base), vat=_money(base * rate / 100))
        for rate, base in sorted(bases.items(), reverse=True)
    ]


class BilledDocument(Model):
    """What an invoice and a credit note share: parties, lines and checked totals."""

    number: DocumentNumber
    issued_on: date
    mission_id: PlatformId
    month: Month
    service_start: date
    service_end: date
    seller: Party  # the provider
    buyer: Party  # the client company
    lines: list[InvoiceLine] = Field(min_length=1)
    vat_regime: VatRegime = VatRegime.FRENCH_VAT
    """Only FRENCH_VAT charges VAT; franchise (293 B) and reverse charge put every line at 0 %."""
    total_excl_vat: Money
    vat_breakdown: list[VatBreakdownLine] = Field(min_length=1)
    total_vat: Money
    total_incl_vat: Money
    issued_by: NonEmptyText | None = PLATFORM_NAME
    """Self-billing: the platform issuing the document on the seller's behalf (mandate of
    art. 289 I-2 CGI); None when the seller issued it."""
    purchase_order: ShortText | None = None
    late_payment_rate: Annotated[Decimal, Field(ge=0, le=1)]
    """Yearly late-payment penalty rate as a fraction (0.10 = 10 %), settings.late_payment_rate."""
    recovery_indemnity: PositiveMoney
    """The fixed recovery indemnity (40.00), settings.recovery_indemnity."""

    @property
    def self_billed(self) -> bool:
        return self.issued_by is not None

    @property
    def vat_franchise(self) -> bool:
        return self.vat_regime is VatRegime.FRANCHISE

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.service_end < self.service_start:
            raise ValueError("service_end must be on or after service_start")
        regime = self.vat_regime
        if not regime.charges_vat and any(line.vat_rate != 0 for line in self.lines):
            why = "the VAT franchise (293 B)" if self.vat_franchise else "reverse charge"
            raise ValueError(f"under {why} every line must be at 0 % VAT")
        if regime in (VatRegime.FRENCH_VAT, VatRegime.REVERSE_CHARGE_EU) and (
            self.seller.vat_number is None
        ):
            raise ValueError(
                f"under {regime.value} the seller's intra-community VAT number is mandatory"
            )
        if regime.reverse_charge and self.buyer.vat_number is None:
            raise ValueError("a reverse-charged invoice names the buyer's VAT number")
        total_excl = _money(sum((line.amount_excl_vat for line in self.lines), Decimal(0)))
        if self.total_excl_vat != total_excl:
            raise ValueError(
                f"total_excl_vat {self.total_excl_vat} differs from the sum of the lines "
                f"{total_excl}"
            )
        expected = vat_breakdown_of(self.lines, regime=regime)
        if self.vat_breakdown != expected:
            shown = ", ".join(f"{v.rate} %: base {v.base}, VAT {v.vat}" for v in expected)
            raise ValueError(f"vat_breakdown differs from the lines' breakdown ({shown})")
        total_vat = sum((v.vat for v in expected), Decimal(0))
        if self.total_vat != total_vat:
            raise ValueError(f"total_vat {self.total_vat} differs from the breakdown {total_vat}")
        if self.total_incl_vat != self.total_excl_vat + self.total_vat:
            raise ValueError("total_incl_vat must equal total_excl_vat + total_vat")
        return self


class InvoiceDocument(BilledDocument):
    """A generated invoice (self-billing by default), with every mandatory mention.

    The renderer writes the late-payment sentence of `domain.invoices.late_payment_mention`
    from `late_payment_rate` and `recovery_indemnity`.
    """

    due_on: date

    @model_validator(mode="after")
    def _due_after_issue(self) -> Self:
        if self.due_on < self.issued_on:
            raise ValueError("due_on must be on or after issued_on")
        return self


class CreditNoteDocument(BilledDocument):
    """A credit note (avoir) cancelling an invoice: it references that invoice.

    Lines and totals are the amounts credited, with their invoice signs (see module doc).
    The late-payment terms are the cancelled invoice's: the French CTC rules (BR-FR-05) want
    them on every invoice-type document, credit notes included.
    """

    invoice_number: DocumentNumber
    invoice_issued_on: date
    reason: NonEmptyText

    @property
    def signed_total_excl_vat(self) -> Decimal:
        return -self.total_excl_vat

    @property
    def signed_total_vat(self) -> Decimal:
        return -self.total_vat

    @property
    def signed_total_incl_vat(self) -> Decimal:
        return -self.total_incl_vat

    @classmethod
    def cancelling(
        cls, invoice: InvoiceDocument, *, number: str, issued_on: date, reason: str
    ) -> CreditNoteDocument:
        """The credit note that cancels `invoice` in full."""
        return cls(
            number=number,
            issued_on=issued_on,
            mission_id=invoice.mission_id,
            month=invoice.month,
            service_start=invoice.service_start,
            service_end=invoice.service_end,
            seller=invoice.seller,
            buyer=invoice.buyer,
            lines=invoice.lines,
            vat_regime=invoice.vat_regime,
            total_excl_vat=invoice.total_excl_vat,
            vat_breakdown=invoice.vat_breakdown,
            total_vat=invoice.total_vat,
            total_incl_vat=invoice.total_incl_vat,
            issued_by=invoice.issued_by,
            purchase_order=invoice.purchase_order,
            late_payment_rate=invoice.late_payment_rate,
            recovery_indemnity=invoice.recovery_indemnity,
            invoice_number=invoice.number,
            invoice_issued_on=invoice.issued_on,
            reason=reason,
        )


class BpfApprover(Model):
    """The client's approver who validated the CRA."""

    id: PlatformId
    email: Email | None = None
    name: NonEmptyText | None = None


class BpfDocument(Model):
    """The billing voucher (bon pour facturation) of a validated CRA: the facts it rests on.

    Amounts are excluding VAT; `amount_excl_vat` (the `bpfs` row) is the sum of the lines.
    """

    number: DocumentNumber
    issued_on: date
    mission_id: PlatformId
    month: Month
    client: Party
    provider: Party
    tjm: PositiveMoney
    days: Days
    lines: list[InvoiceLine] = Field(min_length=1)
    amount_excl_vat: Money
    submitted_on: date | None = None
    validated_on: date
    approver: BpfApprover
    purchase_order: ShortText | None = None

    @model_validator(mode="after")
    def _amount_is_sum_of_lines(self) -> Self:
        total = _money(sum((line.amount_excl_vat for line in self.lines), Decimal(0)))
        if self.amount_excl_vat != total:
            raise ValueError(
                f"amount_excl_vat {self.amount_excl_vat} differs from the lines' sum {total}"
            )
        return self
