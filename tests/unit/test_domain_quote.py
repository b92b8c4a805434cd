"""Payment quote: amounts, date, explanation and input validation."""

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, IneligibleOffer, InvalidAmount
from domain.quote import compute_quote
from schemas.enums import PaymentOffer as O

FLASH: dict[str, Any] = {
    "offer": O.FLASH,
    "tjm": D("650"),
    "days": D("18.5"),
    "validated_on": date(2026, 7, 10),
}
"""Flash, validated on Friday 2026-07-10: the worked example, and what each refusal changes."""


def test_flash_quote_worked_example():
    quote = compute_quote(**FLASH, expenses=D("120.40"), contract_signed_on=date(2025, 6, 1))
    assert quote.service_amount == D("12025.00")
    assert quote.fee == D("601.25")
    assert quote.expenses == D("120.40")
    assert quote.payout_amount == D("11544.15")
    assert quote.payout_date == date(2026, 7, 16)
    assert quote.explanation == (
        "Offre Flash : CRA validé le vendredi 10/07/2026, paiement 3 jours ouvrés plus tard, "
        "le jeudi 16/07/2026 (le 14/07 est férié : Fête nationale). "
        "Frais 5 % du TJM par jour : 601,25 €."
    )


def test_basic_quote_has_no_fee():
    quote = compute_quote(offer=O.BASIC, tjm=D("500"), days=D("20"), validated_on=date(2026, 1, 6))
    assert quote.fee == D("0.00")
    assert quote.payout_date == date(2026, 3, 6)
    assert quote.explanation.endswith("Sans frais.")


def test_immediate_quote_for_a_foreign_provider():
    quote = compute_quote(
        offer=O.IMMEDIATE,
        tjm=D("700"),
        days=D("10"),
        validated_on=date(2026, 7, 11),
        provider_country="DE",
    )
    assert quote.fee == D("200.00")
    assert quote.payout_amount == D("6800.00")
    assert quote.payout_date == date(2026, 7, 13)
    assert "Frais 20 € par jour de prestation : 200,00 €." in quote.explanation


def test_back_to_back_quote_has_no_date():
    quote = compute_quote(
        offer=O.BACK_TO_BACK,
        tjm=D("700"),
        days=D("10"),
        validated_on=date(2026, 7, 10),
        contract_signed_on=date(2024, 9, 1),
    )
    assert quote.payout_date is None
    assert quote.payout_amount == D("7000.00")


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"contract_signed_on": date(2025, 4, 27)}, IneligibleOffer, "before 2025-04-28"),
        ({"offer": O.EXPRESS, "provider_country": "BE"}, IneligibleOffer, "outside France"),
        ({"contract_signed_on": date(2026, 7, 11)}, DomainError, "after the CRA validation"),
        ({"days": D("18.3")}, InvalidAmount, "half-day steps"),
        ({"days": D("32")}, InvalidAmount, "at most 31"),
        ({"days": D("-1")}, InvalidAmount, "days must not be negative"),
        ({"tjm": D("-650")}, InvalidAmount, "TJM must not be negative"),
        ({"tjm": D("0")}, InvalidAmount, "TJM must be greater than zero"),
        ({"tjm": D("650.001")}, InvalidAmount, "at most two decimals"),
        ({"expenses": D("-0.01")}, InvalidAmount, "expenses must not be negative"),
        ({"expenses": D("1.005")}, InvalidAmount, "at most two decimals"),
    ],
)
def test_ineligible_offers_and_invalid_amounts_are_refused(changes, error, message):
    with pytest.raises(error, match=message):
        compute_quote(**(FLASH | changes))


@given(
    st.sampled_from(list(O)),
    st.decimals(min_value=D("0.01"), max_value=3000, places=2),
    st.integers(min_value=0, max_value=62).map(lambda halves: D(halves) / 2),
    st.decimals(min_value=0, max_value=5000, places=2),
    st.dates(min_value=date(2025, 4, 28), max_value=date(2030, 12, 31)),
)
def test_payout_amount_is_service_minus_fee_plus_expenses(offer, tjm, days, expenses, validated):
    fixed = offer in (O.BASIC, O.EXPRESS, O.FLASH)
    quote = compute_quote(
        offer=offer,
        tjm=tjm,
        days=days,
        expenses=expenses,
        validated_on=validated,
        provider_country="FR" if fixed else "IT",
    )
    exact_service = tjm * days
    assert abs(quote.service_amount - exact_service) <= D("0.005")
    assert quote.fee >= 0
    assert quote.expenses == expenses
    assert quote.payout_amount == quote.service_amount - quote.fee + expenses
    assert quote.payout_amount.as_tuple().exponent == -2
    assert (quote.payout_date is None) == (offer is O.BACK_TO_BACK)
