"""Offer fees: on days of service only, rounded once, never negative."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount
from domain.fees import offer_fee, service_amount
from schemas.enums import PaymentOffer as O


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (O.BASIC, D("0.00")),
        (O.EXPRESS, D("300.63")),  # 2.5 % × 12 025 = 300.625 → half up
        (O.FLASH, D("601.25")),  # 5 % × 650 × 18.5
        (O.BACK_TO_BACK, D("0.00")),
        (O.IMMEDIATE, D("370.00")),  # 20 € × 18.5 days
    ],
)
def test_fee_for_18_5_days_at_650(offer, expected):
    assert offer_fee(offer, D("650"), D("18.5")) == expected


def test_service_amount():
    assert service_amount(D("650"), D("18.5")) == D("12025.00")
    assert service_amount(D("333.33"), D("0.5")) == D("166.67")  # 166.665 → half up


def test_half_day_of_immediate_payment_costs_10_euros():
    assert offer_fee(O.IMMEDIATE, D("500"), D("0.5")) == D("10.00")


def test_negative_inputs_are_refused():
    with pytest.raises(InvalidAmount, match="TJM must not be negative"):
        offer_fee(O.FLASH, D("-1"), D("1"))
    with pytest.raises(InvalidAmount, match="days must not be negative"):
        offer_fee(O.FLASH, D("650"), D("-0.5"))


@given(
    st.sampled_from(list(O)),
    st.decimals(min_value=0, max_value=5000, places=2),
    st.integers(min_value=0, max_value=62).map(lambda halves: D(halves) / 2),
)
def test_fees_are_never_negative_and_rounded_to_the_cent(offer, tjm, days):
    fee = offer_fee(offer, tjm, days)
    assert fee >= 0
    assert fee == fee.quantize(D("0.01"))
    if offer in (O.BASIC, O.BACK_TO_BACK) or days == 0:
        assert fee == 0
    if offer in (O.EXPRESS, O.FLASH):
        assert fee <= service_amount(tjm, days)
