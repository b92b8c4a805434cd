"""Late-payment penalties: rate × amount × days / 365 plus the 40 € indemnity."""

from datetime import date
from decimal import Decimal as D

import pytest

from domain.client_payments import ClientPayment
from domain.errors import InvalidAmount
from domain.penalties import late_payment_penalties, late_payment_penalty


def test_thirty_days_late_at_ten_percent():
    # 12 000 × 10 % × 30 / 365 = 98.6301… → 98.63, plus 40 €.
    penalty = late_payment_penalty(D("12000.00"), date(2026, 3, 1), date(2026, 3, 31))
    assert penalty.days_late == 30
    assert penalty.interest == D("98.63")
    assert penalty.indemnity == D("40.00")
    assert penalty.total == D("138.63")


def test_rounding_is_half_up():
    # 18.25 × 10 % × 1 / 365 = 0.005 exactly: half up gives 0.01 (banker's rounding: 0.00).
    assert late_payment_penalty(D("18.25"), date(2026, 1, 1), date(2026, 1, 2)).interest == D(
        "0.01"
    )
    # 5 × 10 % × 1 / 365 = 0.00137 → 0.00, but the indemnity is still due.
    penalty = late_payment_penalty(D("5.00"), date(2026, 1, 1), date(2026, 1, 2))
    assert penalty.interest == D("0.00")
    assert penalty.total == D("40.00")


def test_nothing_owed_when_paid_on_or_before_the_due_date():
    for paid in (date(2026, 3, 1), date(2026, 2, 20)):
        penalty = late_payment_penalty(D("12000.00"), date(2026, 3, 1), paid)
        assert penalty.total == D("0.00")
        assert penalty.days_late == 0


def test_rate_and_indemnity_are_parameters():
    penalty = late_payment_penalty(
        D("10000.00"), date(2026, 1, 1), date(2026, 2, 1), rate=D("0.1215"), indemnity=D("60")
    )
    # 10 000 × 12.15 % × 31 / 365 = 103.19…
    assert penalty.interest == D("103.19")
    assert penalty.total == D("163.19")


def test_negative_amount_is_refused():
    with pytest.raises(InvalidAmount):
        late_payment_penalty(D("-1"), date(2026, 1, 1), date(2026, 2, 1))


def _pay(amount: str, paid_on: date) -> ClientPayment:
    return ClientPayment(amount=D(amount), paid_on=paid_on)


def test_each_payment_bears_interest_on_what_it_settles_for_its_own_days_late():
    due = date(2026, 3, 1)
    payments = [
        _pay("2000.00", date(2026, 2, 20)),  # on time: nothing
        _pay("4000.00", date(2026, 3, 11)),  # 10 days late on 4 000
        _pay("7000.00", date(2026, 3, 31)),  # 30 days late on the 6 000 still due, not 7 000
    ]
    first, second, third = late_payment_penalties(D("12000.00"), due, payments)
    assert first == late_payment_penalty(D("2000.00"), due, date(2026, 2, 20))
    assert (second.days_late, second.interest, second.indemnity) == (10, D("10.96"), D("40.00"))
    # 6 000 × 10 % × 30 / 365 = 49.315… → 49.32; the indemnity only once per invoice.
    assert (third.days_late, third.interest, third.indemnity) == (30, D("49.32"), D("0.00"))
    assert third.total == D("49.32")


def test_one_whole_payment_owes_what_late_payment_penalty_says():
    due, paid = date(2026, 3, 1), date(2026, 3, 31)
    (only,) = late_payment_penalties(D("12000.00"), due, [_pay("12000.00", paid)])
    assert only == late_payment_penalty(D("12000.00"), due, paid)


def test_penalties_follow_the_payment_days_not_the_order_received():
    due = date(2026, 3, 1)
    later = _pay("8000.00", date(2026, 3, 31))
    earlier = _pay("8000.00", date(2026, 3, 11))
    late, early = late_payment_penalties(D("12000.00"), due, [later, earlier])
    assert (early.days_late, early.interest, early.indemnity) == (10, D("21.92"), D("40.00"))
    # Only 4 000 was still due on 31 March: 4 000 × 10 % × 30 / 365 = 32.876… → 32.88.
    assert (late.days_late, late.interest, late.indemnity) == (30, D("32.88"), D("0.00"))
