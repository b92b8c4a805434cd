"""A payment quote: what a provider receives for a month's CRA, when, and why.

Used by the `contracting quote` support command and by anything that must tell a provider
the amount and date of a payout before it happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.errors import DomainError, InvalidAmount
from domain.fees import offer_fee, service_amount
from domain.formatting import money_fr, percent_fr
from domain.money import ZERO, is_half_day_multiple, non_negative, to_money
from domain.offers import check_offer_eligibility, offer_rule
from domain.payouts import PayoutSchedule, compute_payout, explain_payout
from schemas.enums import PaymentOffer

MAX_DAYS_IN_A_CRA = 31


@dataclass(frozen=True, slots=True)
class Quote:
    offer: PaymentOffer
    service_amount: Decimal
    fee: Decimal
    expenses: Decimal
    payout_amount: Decimal
    """service − fee + expenses (excl. VAT)."""
    payout_date: date | None
    """None for back-to-back: paid once the client has paid."""
    explanation: str
    schedule: PayoutSchedule


def _fee_sentence(offer: PaymentOffer, fee: Decimal) -> str:
    rule = offer_rule(offer)
    if rule.fee_rate_of_tjm:
        return f"Frais {percent_fr(rule.fee_rate_of_tjm)} du TJM par jour : {money_fr(fee)}."
    if rule.fee_per_day:
        per_day = money_fr(rule.fee_per_day).replace(",00 €", " €")
        return f"Frais {per_day} par jour de prestation : {money_fr(fee)}."
    return "Sans frais."


def compute_quote(
    *,
    offer: PaymentOffer,
    tjm: Decimal,
    days: Decimal,
    validated_on: date,
    expenses: Decimal = ZERO,
    contract_signed_on: date | None = None,
    provider_country: str = "FR",
    invoice_date: date | None = None,
) -> Quote:
    """Quote the payout of `days` at `tjm` under `offer` for a CRA validated on `validated_on`.

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
    expenses = non_negative(expenses, "expenses")
    if expenses != to_money(expenses):
        raise InvalidAmount(f"expenses must have at most two decimals, got {expenses}")
    if tjm != to_money(tjm):
        raise InvalidAmount(f"TJM must have at most two decimals, got {tjm}")
    signed_on = validated_on if contract_signed_on is None else contract_signed_on
    if signed_on > validated_on:
        raise DomainError(
            f"the contract signature date {signed_on.isoformat()} is after the CRA validation "
            f"{validated_on.isoformat()}: a CRA is validated only on a signed contract"
        )
    check_offer_eligibility(offer, signed_on, provider_country)
    service = service_amount(tjm, days)
    fee = offer_fee(offer, tjm, days)
    expenses = to_money(expenses)
    schedule = compute_payout(offer, validated_on, invoice_date)
    explanation = f"{explain_payout(schedule)} {_fee_sentence(offer, fee)}"
    return Quote(
        offer=offer,
        service_amount=service,
        fee=fee,
        expenses=expenses,
        payout_amount=service - fee + expenses,
        payout_date=schedule.payout_date,
        explanation=explanation,
        schedule=schedule,
    )
