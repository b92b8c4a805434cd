"""Month arithmetic on "YYYY-MM" strings, from domain/ alone."""

from __future__ import annotations

from datetime import date, timedelta

from domain.calendar import previous_business_day_on_or_before
from domain.cra import month_bounds, month_of


def following(month: str) -> str:
    return month_of(month_bounds(month)[1] + timedelta(days=1))


def next_month(day: date) -> str:
    """The month after `day`'s."""
    return following(month_of(day))


def last_day(month: str) -> date:
    return month_bounds(month)[1]


def due_day(month: str) -> date:
    """The month's last business day: the provider submits the CRA then."""
    return previous_business_day_on_or_before(last_day(month))
