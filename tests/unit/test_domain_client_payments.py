"""A client's payments of one invoice accumulate until they cover its total incl. VAT."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from domain.client_payments import ClientPayment, payment_progress
from domain.errors import InvalidAmount

TOTAL = D("14574.00")


def pay(amount: str, day: int) -> ClientPayment:
    return ClientPayment(amount=D(amount), paid_on=date(2026, 8, day))


def test_no_payment_yet_everything_is_due() -> None:
    progress = payment_progress(TOTAL, [])
    assert (progress.paid, progress.still_due, progress.complete_on, progress.overpaid_by) == (
        D("0.00"),
        TOTAL,
        None,
        D("0.00"),
    )
    assert not progress.complete


def test_a_partial_payment_leaves_the_rest_due() -> None:
    progress = payment_progress(TOTAL, [pay("1.00", 3)])
    assert (progress.paid, progress.still_due) == (D("1.00"), D("14573.00"))
    assert progress.complete_on is None and progress.overpaid_by == 0


def test_complete_on_the_day_of_the_payment_that_covers_the_total() -> None:
    progress = payment_progress(TOTAL, [pay("4000.00", 3), pay("10574.00", 12)])
    assert (progress.paid, progress.still_due, progress.overpaid_by) == (TOTAL, D(0), D(0))
    assert progress.complete and progress.complete_on == date(2026, 8, 12)


def test_payments_count_in_the_order_of_their_payment_day() -> None:
    # Received late, the 10 August transfer still completed the invoice on the 10th.
    progress = payment_progress(TOTAL, [pay("4000.00", 3), pay("100.00", 20), pay("10574.00", 10)])
    assert progress.complete_on == date(2026, 8, 10)
    assert progress.overpaid_by == D("100.00") and progress.still_due == 0


def test_an_overpayment_is_what_exceeds_the_total() -> None:
    progress = payment_progress(TOTAL, [pay("14600.00", 5)])
    assert progress.complete_on == date(2026, 8, 5)
    assert (progress.paid, progress.still_due, progress.overpaid_by) == (
        D("14600.00"),
        D("0.00"),
        D("26.00"),
    )


def test_a_payment_is_positive() -> None:
    with pytest.raises(InvalidAmount):
        payment_progress(TOTAL, [pay("0.00", 5)])
