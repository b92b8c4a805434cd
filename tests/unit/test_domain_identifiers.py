"""SIREN, SIRET (with La Poste's exception) and IBAN checks."""

import pytest

from domain.errors import InvalidIdentifier
from domain.identifiers import (
    format_iban,
    siren_of_siret,
    validate_iban,
    validate_siren,
    validate_siret,
)


def test_valid_siren_is_compacted():
    assert validate_siren("732 829 320") == "732829320"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("732829321", "check digit"),
        ("73282932", "wrong length"),
        ("73282932A", "malformed"),
    ],
)
def test_invalid_siren(value, problem):
    with pytest.raises(InvalidIdentifier, match=problem):
        validate_siren(value)


def test_valid_siret():
    assert validate_siret("732 829 320 00074") == "73282932000074"
    assert siren_of_siret("73282932000074") == "732829320"


def test_invalid_siret():
    with pytest.raises(InvalidIdentifier, match="SIRET '73282932000075' fails its check digit"):
        validate_siret("73282932000075")
    with pytest.raises(InvalidIdentifier, match="wrong length"):
        validate_siret("7328293200007")


def test_la_poste_sirets_use_the_digit_sum_rule():
    assert validate_siret("35600000000048") == "35600000000048"  # head office, Luhn-valid
    # Not Luhn-valid, but La Poste: digit sum 15 is a multiple of 5.
    assert validate_siret("35600000000001") == "35600000000001"
    # Luhn-valid but La Poste with digit sum 19: refused.
    with pytest.raises(InvalidIdentifier, match="check digit"):
        validate_siret("35600000000014")


def test_iban():
    assert validate_iban("fr76 3000 6000 0112 3456 7890 189") == "FR7630006000011234567890189"
    assert format_iban("FR7630006000011234567890189") == "FR76 3000 6000 0112 3456 7890 189"
    with pytest.raises(InvalidIdentifier, match="check digit"):
        validate_iban("FR7630006000011234567890188")
    with pytest.raises(InvalidIdentifier, match="IBAN"):
        validate_iban("FR76300060000112345678901")
