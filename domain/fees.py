"""Platform fees of the payment offers.

Fees are charged on the days of service (TJM × days), never on expenses or overtime (a
product decision, domain-rules.md). The fee is computed on the exact product and rounded
once, half up, to the cent, so 18.5 days at 650 € under Flash is 5 % × 12 025 € = 601.25 €.
"""

from __future__ import annotations

from decimal import Decimal

from domain.money import non_negative, to_money
from domain.offers import offer_rule
from schemas.enums import PaymentOffer


def service_amount(tjm: Decimal, days: Decimal) -> Decimal:
    """TJM × days, to the cent."""
    return to_money(non_negative(tjm, "TJM") * non_negative(days, "days"))


def offer_fee(offer: PaymentOffer, tjm: Decimal, days: Decimal) -> Decimal:
    """The fee the offer costs for `days` of service at `tjm`; never negative.

    Basic and back-to-back: none. Express: 2.5 % of the TJM per day invoiced. Flash: 5 %.
    Immediate payment: 20 € per day of service (10 € for a half day).
    """
    rule = offer_rule(offer)
    tjm = non_negative(tjm, "TJM")
    days = non_negative(days, "days")
    fee = rule.fee_rate_of_tjm * tjm * days + rule.fee_per_day * days
    return to_money(fee)
