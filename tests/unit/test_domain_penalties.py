"""Late-payment penalties: rate × amount × days / 365 plus the 40 € indemnity."""

from datetime import date
from decimal import Decimal as D

import pytest

from domain.errors import InvalidAmount
from domain.penalties import late_payment_penalty


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
