"""The client's payments of one invoice: they accumulate until they cover its total.

A client may pay an invoice in several transfers (`client_payment.received` may be partial).
The invoice is settled (`complete_on`) on the `paid_on` of the payment that brings the sum of
the payments, taken in the order of their `paid_on` (same day: the order received), to the
invoice total incl. VAT; until then `still_due` is what remains. Whatever exceeds the total is
`overpaid_by` (flagged to ops: the platform owes it back to the client). Back-to-back pays the
provider from `complete_on` (`domain.payouts.back_to_back_payout_date`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.errors import InvalidAmount
from domain.money import ZERO, non_negative, to_money


@dataclass(frozen=True, slots=True)
class ClientPayment:
    amount: Decimal
    paid_on: date


@dataclass(frozen=True, slots=True)
class PaymentProgress:
    """Where the payments of an invoice stand."""

    total: Decimal
    """The invoice total incl. VAT."""
    paid: Decimal
    """The sum of the payments."""
    still_due: Decimal
    """What the client still owes (0 once complete)."""
    complete_on: date | None
    """The day the payments came to cover the total (None: not yet)."""
    overpaid_by: Decimal
    """What was paid beyond the total (0 unless overpaid)."""

    @property
    def complete(self) -> bool:
        return self.complete_on is not None


def in_payment_order(payments: Iterable[ClientPayment]) -> list[ClientPayment]:
    """The payments by their `paid_on` (stable: same day, the order received)."""
    return sorted(payments, key=lambda p: p.paid_on)


def payment_progress(total: Decimal, payments: Iterable[ClientPayment]) -> PaymentProgress:
    """Paid so far, still due, complete on which day and overpaid by how much."""
    total = to_money(non_negative(total, "invoice total"))
    paid = ZERO
    complete_on: date | None = None
    for payment in in_payment_order(payments):
        if payment.amount <= 0:
            raise InvalidAmount(f"a client payment must be positive, got {payment.amount}")
        paid = to_money(paid + payment.amount)
        if complete_on is None and paid >= total:
            complete_on = payment.paid_on
    return PaymentProgress(
        total=total,
        paid=paid,
        still_due=max(total - paid, ZERO),
        complete_on=complete_on,
        overpaid_by=max(paid - total, ZERO),
    )
