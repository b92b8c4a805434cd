"""Field types shared by events, workflow inputs and activity inputs."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

CENT = Decimal("0.01")
MONEY_LIMIT = Decimal("1000000000")
"""Amounts are below a billion euros in absolute value: no mission comes near, and a larger one
(1e26 from a buggy sender) cannot be quantized to cents in the decimal context (28 digits)."""


def _two_decimals(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite amount")
    if abs(value) >= MONEY_LIMIT:
        raise ValueError(
            "too large: an amount must be below 1000000000 (a billion) in absolute value"
        )
    if value != value.quantize(CENT, rounding=ROUND_HALF_UP):
        raise ValueError("must have at most two decimals (euros and cents)")
    return value.quantize(CENT)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


# Money: a decimal string on the wire ("650.00"), Decimal with two places everywhere else.
Money = Annotated[Decimal, AfterValidator(_two_decimals)]
PositiveMoney = Annotated[Decimal, AfterValidator(_two_decimals), AfterValidator(_non_negative)]

# A calendar month of a CRA, "YYYY-MM"; or, for a month split by a change of terms (a renewal
# or a new contract from a day inside it), the key of its N-th billing period, "YYYY-MM-pN"
# (N from 2: the first period keeps the month's key). docs/domain-rules.md.
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])(-p[2-9])?$")]

# Identifiers chosen by the platform: printable, no spaces, usable in a workflow id.
PlatformId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
    ),
]

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

NonEmptyText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]

Days = Annotated[Decimal, Field(ge=0, le=31)]


class Model(BaseModel):
    """Base of every contract model: unknown fields are rejected, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
