"""A payment quote: what a provider receives for a month's CRA, when, and why.

Used by the `contracting quote` support command and by anything that must tell a provider
the amount and date of a payout before it happens. The figures are the ledger's: the invoice
amounts come from `domain.invoices.compute_invoice_amounts` and the payout (gross incl. VAT,
fee, net, date and its explanation) from `domain.payouts.payout_terms`, the function the CRA
validation calls; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.errors import DomainError, InvalidAmount
from domain.formatting import money_fr, percent_fr
from domain.invoices import (
    STANDARD_VAT_RATE,
    Expense,
    InvoiceAmounts,
    compute_invoice_amounts,
    parse_vat_rate,
)
from domain.money import ZERO, is_half_day_multiple, non_negative, to_money
from domain.offers import check_offer_eligibility, offer_rule
from domain.payouts import payout_terms
from domain.vat import vat_regime
from schemas.enums import PaymentOffer
from schemas.payouts import PayoutTerms

MAX_DAYS_IN_A_CRA = 31


@dataclass(frozen=True, slots=True)
class Quote:
    offer: PaymentOffer
    amounts: InvoiceAmounts
    """The invoice's amounts: service, overtime, corrections, expenses, excl. VAT, VAT."""
    terms: PayoutTerms
    """`payout_terms` for these amounts: gross incl. VAT, fee, net, date, schedule."""
    explanation: str

    @property
    def service_amount(self) -> Decimal:
        return self.amounts.service

    @property
    def amount_excl_vat(self) -> Decimal:
        return self.terms.amount_excl_vat

    @property
    def vat_amount(self) -> Decimal:
        return self.terms.vat_amount

    @property
    def amount_incl_vat(self) -> Decimal:
        return self.terms.amount

    @property
    def fee(self) -> Decimal:
        return self.terms.fee

    @property
    def net_amount(self) -> Decimal:
        """What the provider receives: total incl. VAT − fee."""
        return self.terms.net_amount

    @property
    def payout_date(self) -> date | None:
        """None for back-to-back: paid once the client has paid."""
        return self.terms.payout_date


def _fee_sentence(offer: PaymentOffer, fee: Decimal) -> str:
    rule = offer_rule(offer)
    if rule.fee_rate_of_tjm:
        return f"Frais {percent_fr(rule.fee_rate_of_tjm)} du TJM par jour : {money_fr(fee)}."
    if rule.fee_per_day:
        per_day = money_fr(rule.fee_per_day).replace(",00 €", " €")
        return f"Frais {per_day} par jour de prestation : {money_fr(fee)}."
    return "Sans frais."


def _cents(amount: Decimal, what: str) -> Decimal:
    if amount != to_money(amount):
        raise InvalidAmount(f"{what} must have at most two decimals, got {amount}")
    return amount


def compute_quote(
    *,
    offer: PaymentOffer,
    tjm: Decimal,
    days: Decimal,
    validated_on: date,
    expenses: Decimal = ZERO,
    expenses_vat_rate: Decimal = STANDARD_VAT_RATE,
    overtime: Iterable[Decimal] = (),
    corrections: Iterable[Decimal] = (),
    vat_franchise: bool = False,
    contract_signed_on: date | None = None,
    provider_country: str = "FR",
    invoice_date: date | None = None,
) -> Quote:
    """Quote the payout of `days` at `tjm` under `offer` for a CRA validated on `validated_on`.

    `expenses` (excl. VAT, at `expenses_vat_rate`), `overtime` amounts (excl. VAT, not
    negative) and `corrections` (excl. VAT, may be negative) are invoiced with the days; VAT
    follows where the provider is established (`domain.vat`): French 20 %, none under
    `vat_franchise` (art. 293 B), reverse-charged (no VAT) for a `provider_country` abroad.
    Defaults: the contract was signed on the validation date, the provider is in France and
    the invoice is dated on the validation. Raises a DomainError (IneligibleOffer,
    InvalidAmount) with a message saying what to fix.
    """
    offer = PaymentOffer(offer)
    tjm = non_negative(tjm, "TJM")
    if tjm == 0:
        raise InvalidAmount("TJM must be greater than zero")
    days = non_negative(days, "days")
    if days > MAX_DAYS_IN_A_CRA:
        raise InvalidAmount(
            f"days must be at most {MAX_DAYS_IN_A_CRA} (one month's CRA), got {days}"
        )
    if not is_half_day_multiple(days):
        raise InvalidAmount(f"days go in half-day steps (e.g. 18 or 18.5), got {days}")
    expenses = _cents(non_negative(expenses, "expenses"), "expenses")
    _cents(tjm, "TJM")
    overtime_lines = [_cents(non_negative(a, "overtime"), "overtime") for a in overtime]
    correction_lines = [_cents(a, "a correction") for a in corrections]
    signed_on = validated_on if contract_signed_on is None else contract_signed_on
    if signed_on > validated_on:
        raise DomainError(
            f"the contract signature date {signed_on.isoformat()} is after the CRA validation "
            f"{validated_on.isoformat()}: a CRA is validated only on a signed contract"
        )
    check_offer_eligibility(offer, signed_on, provider_country)
    amounts = compute_invoice_amounts(
        tjm=tjm,
        days=days,
        overtime=overtime_lines,
        corrections=correction_lines,
        expenses=(
            [Expense(amount_excl_vat=expenses, vat_rate=parse_vat_rate(expenses_vat_rate))]
            if expenses
            else []
        ),
        regime=vat_regime(provider_country, vat_franchise),
    )
    terms = payout_terms(
        offer,
        validated_on,
        validated_on if invoice_date is None else invoice_date,
        amounts,
        tjm=tjm,
        days=days,
    )
    date_sentence = "" if terms.schedule is None else terms.schedule.explanation + " "
    return Quote(
        offer=offer,
        amounts=amounts,
        terms=terms,
        explanation=date_sentence + _fee_sentence(offer, terms.fee),
    )
