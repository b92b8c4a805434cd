"""Late-payment penalties on an invoice (L441-10 and D441-5 Code de commerce).

Penalty interest runs from the day after the due date to the payment date:
rate × amount × days late / 365, rounded half up to the cent, plus the fixed recovery
indemnity, once per invoice. Nothing is owed when the invoice is paid on or before its due
date. An invoice paid in several transfers (`late_payment_penalties`): each payment bears
interest on the part of it that settles the invoice (never on an overpayment), for its own
days late; the indemnity goes with the first late payment only. The rate (contractual
10 %/year; legal default ECB rate + 10 points) and the indemnity (40 €) are parameters, read
from settings by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.client_payments import ClientPayment
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


def late_payment_penalties(
    total: Decimal,
    due_on: date,
    payments: Sequence[ClientPayment],
    *,
    rate: Decimal = DEFAULT_LATE_PAYMENT_RATE,
    indemnity: Decimal = DEFAULT_RECOVERY_INDEMNITY,
) -> list[LatePenalty]:
    """The penalties of each payment of an invoice of `total` incl. VAT due on `due_on`, in the
    order of `payments`: interest on what the payment settles of what was still due (the
    payments taken by `paid_on`), for its days late; the indemnity with the first late one."""
    total = non_negative(total, "invoice amount")
    still_due = total
    indemnity_due = True
    penalties: dict[int, LatePenalty] = {}
    order = sorted(enumerate(payments), key=lambda each: each[1].paid_on)  # stable
    for index, payment in order:
        settled = min(payment.amount, still_due)
        still_due -= settled
        penalty = late_payment_penalty(
            settled, due_on, payment.paid_on, rate=rate, indemnity=indemnity
        )
        if penalty.days_late and not indemnity_due:
            penalty = LatePenalty(
                days_late=penalty.days_late,
                interest=penalty.interest,
                indemnity=ZERO,
                total=penalty.interest,
            )
        elif penalty.days_late:
            indemnity_due = False
        penalties[index] = penalty
    return [penalties[index] for index in range(len(payments))]
