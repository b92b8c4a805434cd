"""Who may choose which payment offer."""

from datetime import date

import pytest

from domain.errors import IneligibleOffer
from domain.offers import (
    FIXED_DATE_OFFERS_FROM,
    check_offer_eligibility,
    eligible_offers,
    is_fixed_date_offer,
)
from schemas.enums import PaymentOffer as O

FIXED = {O.BASIC, O.EXPRESS, O.FLASH}
LEGACY = {O.BACK_TO_BACK, O.IMMEDIATE}


def test_cutoff_is_28_april_2025():
    assert date(2025, 4, 28) == FIXED_DATE_OFFERS_FROM


@pytest.mark.parametrize(
    ("signed_on", "country", "expected"),
    [
        (date(2025, 4, 28), "FR", FIXED),
        (date(2026, 1, 1), "fr", FIXED),
        (date(2025, 4, 27), "FR", LEGACY),
        (date(2026, 1, 1), "BE", LEGACY),
        (date(2024, 1, 1), "DE", LEGACY),
    ],
)
def test_eligible_offers(signed_on, country, expected):
    assert set(eligible_offers(signed_on, country)) == expected


def test_flash_on_an_old_contract_is_refused_with_the_reason():
    with pytest.raises(IneligibleOffer) as error:
        check_offer_eligibility(O.FLASH, date(2025, 4, 27), "FR")
    message = str(error.value)
    assert "signed on 2025-04-27, before 2025-04-28" in message
    assert "back_to_back, immediate" in message
    assert "new contract" in message


def test_fixed_date_offer_for_a_provider_outside_france_is_refused():
    with pytest.raises(IneligibleOffer, match=r"outside France \(BE\)"):
        check_offer_eligibility(O.BASIC, date(2026, 1, 1), "BE")


def test_back_to_back_for_a_recent_french_contract_is_refused():
    with pytest.raises(IneligibleOffer, match="basic, express, flash"):
        check_offer_eligibility(O.BACK_TO_BACK, date(2026, 1, 1), "FR")


def test_eligible_combinations_pass():
    check_offer_eligibility(O.FLASH, date(2025, 4, 28), "FR")
    check_offer_eligibility(O.IMMEDIATE, date(2026, 1, 1), "ES")
    check_offer_eligibility(O.BACK_TO_BACK, date(2024, 6, 1), "FR")


def test_country_must_be_two_letters():
    with pytest.raises(IneligibleOffer, match="two-letter"):
        check_offer_eligibility(O.BASIC, date(2026, 1, 1), "France")


def test_fixed_date_flags():
    assert {o for o in O if is_fixed_date_offer(o)} == FIXED
