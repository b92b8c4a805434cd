"""Late-payment penalties on an invoice (L441-10 and D441-5 Code de commerce).

Penalty interest runs from the day after the due date to the payment date:
rate × amount × days late / 365, rounded half up to the cent, plus the fixed recovery
indemnity, once per invoice. Nothing is owed when the invoice is paid on or before its due
date. The rate (contractual 10 %/year; legal default ECB rate + 10 points) and the indemnity
(40 €) are parameters, read from settings by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.invoices import DEFAULT_LATE_PAYMENT_RATE, DEFAULT_RECOVERY_INDEMNITY
from domain.money import ZERO, non_negative, to_money

DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class LatePenalty:
    days_late: int
    interest: Decimal
    indemnity: Decimal
    total: Decimal


def late_payment_penalty(
    amount: Decimal,
    due_on: date,
    paid_on: date,
    *,
    rate: Decimal = DEFAULT_LATE_PAYMENT_RATE,
    indemnity: Decimal = DEFAULT_RECOVERY_INDEMNITY,
) -> LatePenalty:
    """Penalties owed on `amount` (the invoice total incl. VAT) due on `due_on`, paid on `paid_on`.

    `rate` is yearly, as a fraction (0.10 for 10 %).
    """
    amount = non_negative(amount, "invoice amount")
    rate = non_negative(rate, "late-payment rate")
    indemnity = to_money(non_negative(indemnity, "recovery indemnity"))
    days_late = max((paid_on - due_on).days, 0)
    if days_late == 0:
        return LatePenalty(days_late=0, interest=ZERO, indemnity=ZERO, total=ZERO)
    interest = to_money(rate * amount * days_late / DAYS_PER_YEAR)
    return LatePenalty(
        days_late=days_late, interest=interest, indemnity=indemnity, total=interest + indemnity
    )
