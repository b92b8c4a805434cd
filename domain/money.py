"""Money conventions: Decimal euros, two decimals, ROUND_HALF_UP, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from domain.errors import InvalidAmount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HALF_DAY = Decimal("0.5")


def to_money(value: Decimal | int) -> Decimal:
    """Round to the cent, half up (the one rounding rule for every amount)."""
    if isinstance(value, float):  # defensive: a float has already lost the cents
        raise InvalidAmount("amounts must be Decimal, not float")
    amount = Decimal(value)
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be a finite number, got {value}")
    try:
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the decimal context holds
        raise InvalidAmount(f"amount {value} is too large") from None


def non_negative(value: Decimal | int, what: str) -> Decimal:
    """`value` as a Decimal, refusing negative or non-finite numbers; `what` names it."""
    if isinstance(value, float):
        raise InvalidAmount(f"{what} must be a Decimal, not a float")
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidAmount(f"{what} must be a finite number, got {value}")
    if number < 0:
        raise InvalidAmount(f"{what} must not be negative, got {value}")
    return number


def is_half_day_multiple(days: Decimal) -> bool:
    """True when `days` is a whole number of half days (0, 0.5, 1, 1.5...)."""
    if not days.is_finite():
        return False
    try:
        return (days % HALF_DAY) == 0
    except InvalidOperation:  # too large to divide exactly: certainly not a day count
        return False
