"""The invoice, credit note and BPF of a validated CRA, as documents to render.

Pure: a CRA (`events.CraSubmitted`), the TJM, the parties and the numbers in, a
`schemas.billing` model out. The totals and the VAT breakdown are those of
`domain.invoices.invoice_amounts_for_cra`; the document model checks them against the lines
it prints, so the PDF and the Factur-X XML always show the amounts the domain computed.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

from domain.carry_over import is_carry_line
from domain.formatting import month_year_fr
from domain.invoices import (
    DEFAULT_LATE_PAYMENT_RATE,
    DEFAULT_RECOVERY_INDEMNITY,
    STANDARD_VAT_RATE,
    billed_expense,
    invoice_amounts_for_cra,
    parse_vat_rate,
)
from domain.money import ZERO, to_money
from domain.vat import VatRegime, french_vat_number
from schemas.billing import (
    PLATFORM_NAME,
    BpfApprover,
    BpfDocument,
    InvoiceDocument,
    InvoiceLine,
    LineKind,
    LineUnit,
    Party,
    VatBreakdownLine,
)
from schemas.events import CraSubmitted, PostalAddress, Registration


def month_fr(month: str) -> str:
    """ "2026-07" as "juillet 2026"; a later period of a split month, "2026-07-p2", as
    "juillet 2026, période 2"."""
    return month_year_fr(month)


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a "YYYY-MM" month (of its month, for a period key)."""
    year, number = (int(part) for part in month[:7].split("-"))
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def party(
    name: str,
    siren: str,
    address: PostalAddress,
    *,
    vat_number: str | None,
    registration: Registration | None = None,
    individual_entrepreneur: bool = False,
    email: str | None = None,
) -> Party:
    """A party as its documents name it: name ("EI" beside an individual entrepreneur's),
    postal address, SIREN, legal form, share capital and RCS city of a company, and its
    intra-community VAT number (`domain.vat.provider_vat_number` for a provider,
    `client_party` for the client)."""
    return Party(
        name=name,
        address_lines=list(address.lines),
        postcode=address.postal_code,
        city=address.city,
        country=address.country,
        siren=siren,
        vat_number=vat_number,
        registration=registration,
        individual_entrepreneur=individual_entrepreneur,
        email=email,
    )


def client_party(
    name: str, siren: str, address: PostalAddress, registration: Registration | None
) -> Party:
    """The client: a French company, whose VAT number follows from its SIREN."""
    return party(
        name,
        siren,
        address,
        vat_number=french_vat_number(siren),
        registration=registration,
    )


def invoice_lines_for_cra(
    cra: CraSubmitted,
    tjm: Decimal,
    *,
    regime: VatRegime,
    vat_rate: Decimal = STANDARD_VAT_RATE,
) -> list[InvoiceLine]:
    """The lines of the CRA's invoice: service, overtime, corrections, expenses.

    Service, overtime and corrections are at `vat_rate`, each expense at its own rate, when
    the provider charges VAT; every line is at 0 % otherwise (franchise, reverse charge), an
    expense billed at `domain.invoices.billed_expense` (VAT included under the franchise). A
    negative correction has quantity -1 and a positive unit price (EN 16931 BR-27: prices
    are never negative).
    """

    def rate(value: Decimal | str) -> Decimal:
        return parse_vat_rate(value) if regime.charges_vat else ZERO

    def expense_label(label: str, vat: str) -> str:
        if regime is VatRegime.FRANCHISE and parse_vat_rate(vat) > 0:
            return f"Frais : {label} (coût TTC, TVA non récupérable)"
        return f"Frais : {label}"

    def one_unit(
        kind: LineKind,
        label: str,
        amount: Decimal,
        vat: Decimal | str,
        *,
        corrects_month: str | None = None,
        receipt_ref: str | None = None,
    ) -> InvoiceLine:
        """One unit of `amount`; a negative amount is one unit less, at a positive price."""
        return InvoiceLine(
            kind=kind,
            label=label,
            quantity=Decimal(-1) if amount < 0 else Decimal(1),
            unit=LineUnit.UNIT,
            unit_price_excl_vat=abs(amount),
            vat_rate=rate(vat),
            amount_excl_vat=amount,
            corrects_month=corrects_month,
            receipt_ref=receipt_ref,
        )

    lines = [
        InvoiceLine(
            kind=LineKind.SERVICE,
            label=f"Prestation de services, mission {cra.mission_id}, {month_fr(cra.month)}",
            quantity=cra.days,
            unit=LineUnit.DAY,
            unit_price_excl_vat=to_money(tjm),
            vat_rate=rate(vat_rate),
            amount_excl_vat=to_money(tjm * cra.days),
        )
    ]
    lines += [
        one_unit(
            LineKind.OVERTIME,
            f"Astreinte / heures supplémentaires : {line.label}",
            line.amount,
            vat_rate,
        )
        for line in cra.overtime
    ]
    lines += [
        one_unit(
            LineKind.CORRECTION,
            line.label
            if is_carry_line(line.label)
            else f"Régularisation {month_fr(line.corrects_month)} : {line.label}",
            line.amount,
            vat_rate,
            corrects_month=line.corrects_month,
        )
        for line in cra.corrections
    ]
    lines += [
        one_unit(
            LineKind.EXPENSE,
            expense_label(line.label, line.vat_rate),
            billed_expense(line.amount, parse_vat_rate(line.vat_rate), regime),
            line.vat_rate,
            receipt_ref=line.receipt_ref,
        )
        for line in cra.expenses
    ]
    return lines


def invoice_document_for_cra(
    cra: CraSubmitted,
    tjm: Decimal,
    *,
    number: str,
    issued_on: date,
    due_on: date,
    seller: Party,
    buyer: Party,
    regime: VatRegime,
    vat_rate: Decimal = STANDARD_VAT_RATE,
    service_start: date | None = None,
    service_end: date | None = None,
    late_payment_rate: Decimal = DEFAULT_LATE_PAYMENT_RATE,
    recovery_indemnity: Decimal = DEFAULT_RECOVERY_INDEMNITY,
    purchase_order: str | None = None,
    issued_by: str | None = PLATFORM_NAME,
) -> InvoiceDocument:
    """The self-billed invoice of a validated CRA; `number` comes from `db.sequences`.

    The service period defaults to the CRA's month (pass the mission's start or end date for
    a first or last month). Raises pydantic's ValidationError if the lines and the domain's
    amounts ever disagree.
    """
    amounts = invoice_amounts_for_cra(cra, tjm, regime=regime, vat_rate=vat_rate)
    first, last = month_bounds(cra.month)
    return InvoiceDocument(
        number=number,
        issued_on=issued_on,
        due_on=due_on,
        mission_id=cra.mission_id,
        month=cra.month,
        service_start=service_start or first,
        service_end=service_end or last,
        seller=seller,
        buyer=buyer,
        lines=invoice_lines_for_cra(cra, tjm, regime=regime, vat_rate=vat_rate),
        vat_regime=regime,
        total_excl_vat=amounts.total_excl_vat,
        vat_breakdown=[
            VatBreakdownLine(rate=line.rate, base=line.base, vat=line.vat)
            for line in amounts.vat_breakdown
        ],
        total_vat=amounts.vat,
        total_incl_vat=amounts.total_incl_vat,
        late_payment_rate=late_payment_rate,
        recovery_indemnity=to_money(recovery_indemnity),
        purchase_order=purchase_order,
        issued_by=issued_by,
    )


def bpf_document_for_cra(
    cra: CraSubmitted,
    tjm: Decimal,
    *,
    number: str,
    issued_on: date,
    client: Party,
    provider: Party,
    validated_on: date,
    approver: BpfApprover,
    regime: VatRegime = VatRegime.FRENCH_VAT,
    vat_rate: Decimal = STANDARD_VAT_RATE,
    submitted_on: date | None = None,
    purchase_order: str | None = None,
) -> BpfDocument:
    """The BPF of a validated CRA: its days and lines excluding VAT, as the invoice bills
    them under the provider's `regime` (an expense at its cost VAT included under the
    franchise), so the BPF's amount is the invoice's total excluding VAT."""
    lines = invoice_lines_for_cra(cra, tjm, regime=regime, vat_rate=vat_rate)
    return BpfDocument(
        number=number,
        issued_on=issued_on,
        mission_id=cra.mission_id,
        month=cra.month,
        client=client,
        provider=provider,
        tjm=to_money(tjm),
        days=cra.days,
        lines=lines,
        amount_excl_vat=to_money(sum((line.amount_excl_vat for line in lines), ZERO)),
        submitted_on=submitted_on,
        validated_on=validated_on,
        approver=approver,
        purchase_order=purchase_order,
    )
