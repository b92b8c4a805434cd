"""Field types shared by events, workflow inputs and activity inputs."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas.limits import EMAIL_LENGTH, ID_LENGTH, MONEY_LIMIT, REFERENCE_LENGTH, TEXT_LENGTH

CENT = Decimal("0.01")


def _two_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite amount")
    if abs(value) >= MONEY_LIMIT:
        raise ValueError(
            f"too large: an amount must be below {MONEY_LIMIT:f} (a billion) in absolute value"
        )
    if value != value.quantize(CENT, rounding=ROUND_HALF_UP):
        raise ValueError("must have at most two decimals (euros and cents)")
    return value.quantize(CENT)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _above_zero(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


# Money: a decimal string on the wire ("650.00"), Decimal with two places everywhere else.
Money = Annotated[Decimal, AfterValidator(_two_decimals)]
PositiveMoney = Annotated[Decimal, AfterValidator(_two_decimals), AfterValidator(_non_negative)]
"""Money ≥ 0 (the name predates `MoneyAboveZero`)."""
MoneyAboveZero = Annotated[Decimal, AfterValidator(_two_decimals), AfterValidator(_above_zero)]
"""Money > 0: where the ledger's CHECK refuses zero (a client payment)."""

# A calendar month of a CRA, "YYYY-MM"; or, for a month split by a change of terms (a renewal
# or a new contract from a day inside it), the key of its N-th billing period, "YYYY-MM-pN"
# (N from 2: the first period keeps the month's key). docs/domain-rules.md.
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])(-p[2-9])?$")]

# Identifiers chosen by the platform: printable, no spaces, usable in a workflow id.
PlatformId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_LENGTH, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"),
]

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=EMAIL_LENGTH, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
    ),
]

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

NonEmptyText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TEXT_LENGTH)
]

Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REFERENCE_LENGTH)
]
"""A business reference the ledger keys on (a purchase order or invoice number)."""

Days = Annotated[Decimal, Field(ge=0, le=31)]


class Model(BaseModel):
    """Base of every contract model: unknown fields are rejected, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
