"""Business days in France: Monday to Friday minus the metropolitan public holidays.

The calendar is the `holidays` package's France calendar without a subdivision (metropolitan:
no Alsace-Moselle Good Friday or 26 December, no overseas days), reproduced here from the
law (L3133-1 Code du travail: eight fixed dates and three that follow Easter) instead of
being built by the package at run time. The package loads its names through gettext, which
reads locale files and calls `locale`: that is I/O, and the Temporal workflow sandbox refuses
it, so workflows could not compute a payout date. A unit test compares this calendar, dates
and French names, with the package's for every year from 1982 to 2100, so a change in the
package (a new holiday) fails the build instead of silently diverging.

Payout dates are computed for every CRA and every support question: each year is built once
and cached.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

from domain.errors import DomainError

_ONE_DAY = timedelta(days=1)

CALENDAR_FROM_YEAR = 1982
"""First year of the current list (8 May was not a holiday from 1960 to 1981)."""

_FIXED_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 1, "Jour de l'an"),
    (5, 1, "Fête du Travail"),
    (5, 8, "Fête de la Victoire"),
    (7, 14, "Fête nationale"),
    (8, 15, "Assomption"),
    (11, 1, "Toussaint"),
    (11, 11, "Armistice"),
    (12, 25, "Noël"),
)

_EASTER_HOLIDAYS: tuple[tuple[int, str], ...] = (
    (1, "Lundi de Pâques"),
    (39, "Ascension"),
    (50, "Lundi de Pentecôte"),
)

_NO_PENTECOST_MONDAY = range(2005, 2008)
"""2005-2007: Pentecost Monday was the "journée de solidarité", not a public holiday."""


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def holidays_of_year(year: int) -> Mapping[date, str]:
    """French metropolitan public holidays of `year`, with their French names (read-only).

    Two holidays on the same day share it, their names joined by "; " in alphabetical order
    ("Ascension; Fête du Travail" on 1 May 2008), as the `holidays` package does.
    """
    if year < CALENDAR_FROM_YEAR:
        raise DomainError(
            f"the French holiday calendar is only defined here from {CALENDAR_FROM_YEAR}; "
            f"got a date in {year}"
        )
    names: dict[date, list[str]] = {}
    for month, day, name in _FIXED_HOLIDAYS:
        names.setdefault(date(year, month, day), []).append(name)
    easter = easter_sunday(year)
    for offset, name in _EASTER_HOLIDAYS:
        if offset == 50 and year in _NO_PENTECOST_MONDAY:
            continue
        names.setdefault(easter + timedelta(days=offset), []).append(name)
    return MappingProxyType({day: "; ".join(sorted(found)) for day, found in sorted(names.items())})


def holiday_name(d: date) -> str | None:
    """The French name of the public holiday on `d` ("Fête nationale"), or None."""
    return holidays_of_year(d.year).get(d)


def is_holiday(d: date) -> bool:
    """True on a French metropolitan public holiday, whatever the weekday."""
    return d in holidays_of_year(d.year)


def is_weekend(d: date) -> bool:
    return d.weekday() >= 5


def is_business_day(d: date) -> bool:
    """Monday to Friday and not a public holiday."""
    return not is_weekend(d) and not is_holiday(d)


def next_business_day_on_or_after(d: date) -> date:
    """`d` itself if it is a business day, else the first business day after it."""
    while not is_business_day(d):
        d += _ONE_DAY
    return d


def previous_business_day_on_or_before(d: date) -> date:
    """`d` itself if it is a business day, else the last business day before it."""
    while not is_business_day(d):
        d -= _ONE_DAY
    return d


def add_business_days(d: date, n: int) -> date:
    """The n-th business day after `d` (before it when n < 0); `d` itself when n == 0.

    `d` does not need to be a business day: 3 business days after a Saturday is the Wednesday
    of the following week (Monday, Tuesday, Wednesday), holidays permitting.
    """
    step = _ONE_DAY if n >= 0 else -_ONE_DAY
    remaining = abs(n)
    while remaining:
        d += step
        if is_business_day(d):
            remaining -= 1
    return d


@dataclass(frozen=True, slots=True)
class NonBusinessDay:
    """A day a payout could not fall on, and why: a weekend day or a named public holiday."""

    day: date
    holiday: str | None  # the holiday's name, None for an ordinary Saturday or Sunday

    @property
    def is_holiday(self) -> bool:
        return self.holiday is not None


def non_business_days_between(first: date, last: date) -> tuple[NonBusinessDay, ...]:
    """The non-business days from `first` to `last`, both included (empty if last < first)."""
    found: list[NonBusinessDay] = []
    d = first
    while d <= last:
        if not is_business_day(d):
            found.append(NonBusinessDay(day=d, holiday=holiday_name(d)))
        d += _ONE_DAY
    return tuple(found)


def add_months(d: date, months: int) -> date:
    """Same day number `months` later (earlier if negative), clamped to the month's last day.

    31 March minus one month is 28 (or 29) February, not 3 March.
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    last_day = _stdlib_calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(d.day, last_day))
