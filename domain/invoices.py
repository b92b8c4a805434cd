"""Invoice amounts from a validated CRA, and the mandatory mentions that depend on them.

Lines: service (TJM × days), overtime / on-call amounts, corrections of earlier months (may
be negative) — all at the standard VAT rate — and expenses, each at its own VAT rate. VAT is
computed per rate on the summed bases (EN 16931 VAT breakdown), rounded half up to the cent.

Only a provider under `VatRegime.FRENCH_VAT` charges VAT (`domain.vat`). Under the franchise
(auto-entrepreneur, art. 293 B du CGI) no line carries VAT and an expense is re-billed at
what it cost the provider, VAT included (`billed_expense`): it cannot recover that VAT.
Under reverse charge (a provider established abroad) no line carries VAT either and
expenses are billed excluding VAT, like the service they belong to: the client accounts for
the VAT of the whole invoice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.errors import InvalidAmount
from domain.fees import service_amount
from domain.formatting import money_fr, percent_fr
from domain.money import ZERO, non_negative, to_money
from domain.vat import VAT_FRANCHISE_MENTION, VatRegime, vat_mention
from schemas.events import CraSubmitted

__all__ = ["VAT_FRANCHISE_MENTION"]

STANDARD_VAT_RATE = Decimal("20")
"""French standard VAT rate, in percent, on services."""

DEFAULT_LATE_PAYMENT_RATE = Decimal("0.10")
"""Contractual late-payment rate per year (the FAQ's 10 %); settings.late_payment_rate."""

DEFAULT_RECOVERY_INDEMNITY = Decimal("40.00")
"""Fixed recovery indemnity per invoice (D441-5 Code de commerce); settings.recovery_indemnity."""


def parse_vat_rate(text: str | Decimal) -> Decimal:
    """A VAT rate in percent ("20", "5.5", "2.1") as a Decimal; 0 <= rate < 100."""
    try:
        rate = Decimal(str(text).strip().replace(",", "."))
    except InvalidOperation:
        raise InvalidAmount(
            f"VAT rate must be a percentage such as 20 or 5.5, got {text!r}"
        ) from None
    if not rate.is_finite() or rate < 0 or rate >= 100:
        raise InvalidAmount(f"VAT rate must be a percentage between 0 and 100, got {text!r}")
    return rate


@dataclass(frozen=True, slots=True)
class Expense:
    """An expense line: amount excluding VAT and its VAT rate in percent."""

    amount_excl_vat: Decimal
    vat_rate: Decimal


@dataclass(frozen=True, slots=True)
class VatLine:
    """One line of the VAT breakdown: the base taxed at `rate` percent and the VAT on it."""

    rate: Decimal
    base: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    """Every amount printed on an invoice; all Decimal euros with two decimals."""

    service: Decimal
    overtime: Decimal
    corrections: Decimal
    expenses: Decimal
    total_excl_vat: Decimal
    vat: Decimal
    total_incl_vat: Decimal
    vat_breakdown: tuple[VatLine, ...]
    regime: VatRegime

    @property
    def vat_franchise(self) -> bool:
        return self.regime is VatRegime.FRANCHISE

    @property
    def vat_mention(self) -> str | None:
        """The VAT mention the invoice must carry (293 B, Autoliquidation), if any."""
        return vat_mention(self.regime)


def _vat_on(base: Decimal, rate: Decimal) -> Decimal:
    return to_money(base * rate / 100)


def billed_expense(amount_excl_vat: Decimal, vat_rate: Decimal, regime: VatRegime) -> Decimal:
    """What an expense line bills, excluding the invoice's VAT: its amount excluding VAT,
    or under the franchise what it cost the provider, VAT included (rounded to the cent)."""
    amount = to_money(non_negative(amount_excl_vat, "expense amount"))
    if regime is VatRegime.FRANCHISE:
        return amount + _vat_on(amount, parse_vat_rate(vat_rate))
    return amount


def compute_invoice_amounts(
    *,
    tjm: Decimal,
    days: Decimal,
    overtime: Iterable[Decimal] = (),
    corrections: Iterable[Decimal] = (),
    expenses: Iterable[Expense] = (),
    regime: VatRegime = VatRegime.FRENCH_VAT,
    vat_rate: Decimal = STANDARD_VAT_RATE,
) -> InvoiceAmounts:
    """Amounts of the invoice of one CRA under the provider's VAT `regime`.

    Overtime and expense amounts must not be negative; corrections may be (they give back an
    amount invoiced too much in an earlier month).
    """
    regime = VatRegime(regime)
    service = service_amount(tjm, days)
    overtime_total = to_money(sum((non_negative(a, "overtime amount") for a in overtime), ZERO))
    corrections_total = to_money(sum((to_money(a) for a in corrections), ZERO))
    expense_lines = list(expenses)
    bases: dict[Decimal, Decimal] = {}
    service_base = service + overtime_total + corrections_total
    bases[parse_vat_rate(vat_rate)] = service_base
    expenses_total = ZERO
    for line in expense_lines:
        amount = billed_expense(line.amount_excl_vat, line.vat_rate, regime)
        rate = parse_vat_rate(line.vat_rate)
        bases[rate] = bases.get(rate, ZERO) + amount
        expenses_total += amount
    total_excl_vat = service_base + expenses_total
    if not regime.charges_vat:
        breakdown: tuple[VatLine, ...] = (VatLine(rate=ZERO, base=total_excl_vat, vat=ZERO),)
    else:
        breakdown = tuple(
            VatLine(rate=rate, base=base, vat=_vat_on(base, rate))
            for rate, base in sorted(bases.items(), reverse=True)
            if base != 0 or rate == vat_rate
        )
    vat = sum((line.vat for line in breakdown), ZERO)
    return InvoiceAmounts(
        service=service,
        overtime=overtime_total,
        corrections=corrections_total,
        expenses=expenses_total,
        total_excl_vat=total_excl_vat,
        vat=vat,
        total_incl_vat=total_excl_vat + vat,
        vat_breakdown=breakdown,
        regime=regime,
    )


def invoice_amounts_for_cra(
    cra: CraSubmitted, tjm: Decimal, *, regime: VatRegime, vat_rate: Decimal = STANDARD_VAT_RATE
) -> InvoiceAmounts:
    """`compute_invoice_amounts` fed from a submitted (then validated) CRA."""
    return compute_invoice_amounts(
        tjm=tjm,
        days=cra.days,
        overtime=[line.amount for line in cra.overtime],
        corrections=[line.amount for line in cra.corrections],
        expenses=[
            Expense(amount_excl_vat=line.amount, vat_rate=parse_vat_rate(line.vat_rate))
            for line in cra.expenses
        ],
        regime=regime,
        vat_rate=vat_rate,
    )


def late_payment_mention(
    rate: Decimal = DEFAULT_LATE_PAYMENT_RATE, indemnity: Decimal = DEFAULT_RECOVERY_INDEMNITY
) -> str:
    """The late-payment sentence every invoice must carry (L441-9, L441-10, D441-5).

    `rate` is the yearly penalty rate as a fraction (0.10 for 10 %); with the defaults this is
    the FAQ's sentence word for word.
    """
    rate = non_negative(rate, "late-payment rate")
    indemnity = to_money(non_negative(indemnity, "recovery indemnity"))
    amount = money_fr(indemnity).removesuffix(" €")
    amount = amount.removesuffix(",00")
    return (
        "Tout retard de paiement donnera lieu, en plus des pénalités de retard "
        f"({percent_fr(rate)} par an), au versement d'une indemnité forfaitaire de {amount}€ "
        "pour frais de recouvrement"
    )
