"""Payment quote: amounts, date, explanation and input validation."""

from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, IneligibleOffer, InvalidAmount
from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import payout_terms
from domain.quote import compute_quote
from domain.vat import vat_regime
from schemas.enums import PaymentOffer as O
from schemas.enums import VatRegime

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
    assert quote.amounts.expenses == D("120.40")
    assert quote.amount_excl_vat == D("12145.40")
    assert quote.vat_amount == D("2429.08")
    assert quote.amount_incl_vat == D("14574.48")
    assert quote.net_amount == D("13973.23")
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
    # Established in Germany: reverse charge, no French VAT is paid out (it was 8,200 €).
    assert quote.amounts.regime is VatRegime.REVERSE_CHARGE_EU
    assert quote.vat_amount == 0
    assert quote.net_amount == D("6800.00")  # 7,000 − 200
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
    assert quote.net_amount == D("8400.00")


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
        ({"overtime": [D("-1")]}, InvalidAmount, "overtime must not be negative"),
        ({"corrections": [D("-0.001")]}, InvalidAmount, "at most two decimals"),
    ],
)
def test_ineligible_offers_and_invalid_amounts_are_refused(changes, error, message):
    with pytest.raises(error, match=message):
        compute_quote(**(FLASH | changes))


def test_vat_franchise_quotes_no_vat():
    quote = compute_quote(**FLASH, vat_franchise=True)
    assert quote.vat_amount == D("0.00")
    assert quote.amount_incl_vat == quote.amount_excl_vat == D("12025.00")
    assert quote.net_amount == D("11423.75")


def test_a_vat_registered_provider_is_quoted_its_vat():
    """The quote used to announce 11,423.75 €: the net excl. VAT, 20 % of the service short."""
    quote = compute_quote(**FLASH)
    assert quote.net_amount == D("14430.00") - D("601.25")


@given(
    st.sampled_from(list(O)),
    st.decimals(min_value=D("0.01"), max_value=3000, places=2),
    st.integers(min_value=0, max_value=62).map(lambda halves: D(halves) / 2),
    st.decimals(min_value=0, max_value=5000, places=2),
    st.lists(st.decimals(min_value=0, max_value=2000, places=2), max_size=2),
    st.lists(st.decimals(min_value=-2000, max_value=2000, places=2), max_size=2),
    st.booleans(),
    st.dates(min_value=date(2025, 4, 28), max_value=date(2030, 12, 31)),
)
def test_quote_is_what_payout_terms_pays(
    offer, tjm, days, expenses, overtime, corrections, franchise, validated
):
    """Same inputs, same figures as the CRA validation's payout_terms, for every offer, with
    and without the franchise, overtime and corrections."""
    fixed = offer in (O.BASIC, O.EXPRESS, O.FLASH)
    country = "FR" if fixed or franchise else "IT"
    quote = compute_quote(
        offer=offer,
        tjm=tjm,
        days=days,
        expenses=expenses,
        overtime=overtime,
        corrections=corrections,
        vat_franchise=franchise,
        validated_on=validated,
        provider_country=country,
        contract_signed_on=None if fixed else date(2024, 9, 1),
    )
    amounts = compute_invoice_amounts(
        tjm=tjm,
        days=days,
        overtime=overtime,
        corrections=corrections,
        expenses=[Expense(amount_excl_vat=expenses, vat_rate=D("20"))] if expenses else [],
        regime=vat_regime(country, franchise),
    )
    terms = payout_terms(offer, validated, validated, amounts, tjm=tjm, days=days)
    assert quote.terms == terms
    assert quote.amount_excl_vat == terms.amount_excl_vat
    assert quote.vat_amount == terms.vat_amount
    assert quote.amount_incl_vat == terms.amount
    assert quote.fee == terms.fee
    assert quote.net_amount == terms.net_amount == terms.amount - terms.fee
    assert quote.payout_date == terms.payout_date
    assert terms.schedule is not None
    assert quote.explanation.startswith(terms.schedule.explanation)
    if franchise:
        assert quote.vat_amount == 0


@pytest.mark.parametrize("offer", list(O))
@pytest.mark.parametrize("franchise", [False, True])
def test_each_offer_with_overtime_and_a_correction(offer, franchise):
    fixed = offer in (O.BASIC, O.EXPRESS, O.FLASH)
    country = "FR" if fixed or franchise else "IT"
    quote = compute_quote(
        offer=offer,
        tjm=D("500"),
        days=D("20"),
        validated_on=date(2026, 7, 10),
        overtime=[D("300.00")],
        corrections=[D("-150.00")],
        vat_franchise=franchise,
        provider_country=country,
        contract_signed_on=None if fixed else date(2024, 9, 1),
    )
    amounts = compute_invoice_amounts(
        tjm=D("500"),
        days=D("20"),
        overtime=[D("300.00")],
        corrections=[D("-150.00")],
        regime=vat_regime(country, franchise),
    )
    terms = payout_terms(
        offer, date(2026, 7, 10), date(2026, 7, 10), amounts, tjm=D("500"), days=D("20")
    )
    assert quote.terms == terms
    assert quote.amount_excl_vat == D("10150.00")
    # VAT only from a French provider outside the franchise (Italy: reverse charge).
    assert quote.vat_amount == (D("2030.00") if country == "FR" and not franchise else D("0.00"))


@given(
    st.sampled_from(list(O)),
    st.decimals(min_value=D("0.01"), max_value=3000, places=2),
    st.integers(min_value=0, max_value=62).map(lambda halves: D(halves) / 2),
    st.decimals(min_value=0, max_value=5000, places=2),
    st.dates(min_value=date(2025, 4, 28), max_value=date(2030, 12, 31)),
)
def test_net_is_total_incl_vat_minus_fee(offer, tjm, days, expenses, validated):
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
    assert quote.amounts.expenses == expenses
    assert quote.amount_excl_vat == quote.service_amount + expenses
    assert quote.net_amount == quote.amount_incl_vat - quote.fee
    assert quote.net_amount.as_tuple().exponent == -2
    assert (quote.payout_date is None) == (offer is O.BACK_TO_BACK)
