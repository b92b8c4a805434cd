"""French company identifiers and bank accounts, checked with python-stdnum.

SIREN: 9 digits, Luhn. SIRET: 14 digits (SIREN + 5-digit establishment number), Luhn,
except La Poste's establishments (SIRET starting 356000000), whose digit sum must be a
multiple of 5. IBAN: ISO 13616 mod-97 checksum and the country's length and format.
Each function returns the compact value (no spaces, upper case) or raises
InvalidIdentifier with a message naming the problem.
"""

from __future__ import annotations

from stdnum import iban as _iban
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.exceptions import ValidationError as _StdnumError
from stdnum.fr import siren as _siren
from stdnum.fr import siret as _siret

from domain.errors import InvalidIdentifier


def _explain(what: str, value: str, expected: str, error: _StdnumError) -> InvalidIdentifier:
    if isinstance(error, InvalidLength):
        problem = f"has the wrong length ({expected})"
    elif isinstance(error, InvalidChecksum):
        problem = "fails its check digit: a digit is probably mistyped"
    elif isinstance(error, InvalidComponent):
        problem = "has an unknown country code or a bank account part in the wrong format"
    elif isinstance(error, InvalidFormat):
        problem = f"is malformed ({expected})"
    else:  # pragma: no cover - stdnum raises only the subclasses above
        problem = "is invalid"
    return InvalidIdentifier(f"{what} {value!r} {problem}")


def validate_siren(value: str) -> str:
    """The 9-digit SIREN, spaces removed; InvalidIdentifier if malformed or Luhn fails."""
    try:
        return str(_siren.validate(value))
    except _StdnumError as error:
        raise _explain("SIREN", value, "expected 9 digits", error) from None


def validate_siret(value: str) -> str:
    """The 14-digit SIRET, spaces removed; La Poste establishments use their own check."""
    try:
        return str(_siret.validate(value))
    except _StdnumError as error:
        raise _explain("SIRET", value, "expected 14 digits", error) from None


def siren_of_siret(siret: str) -> str:
    """The SIREN (first 9 digits) of a valid SIRET."""
    return validate_siret(siret)[:9]


def validate_iban(value: str) -> str:
    """The IBAN in compact form ("FR7630006000011234567890189"); checks country and mod 97."""
    try:
        return str(_iban.validate(value))
    except _StdnumError as error:
        raise _explain(
            "IBAN", value, "expected the country's IBAN length, letters and digits only", error
        ) from None


def format_iban(value: str) -> str:
    """A valid IBAN grouped by four for display ("FR76 3000 6000 ...")."""
    return str(_iban.format(validate_iban(value)))
