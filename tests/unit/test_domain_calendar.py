"""French business days: metropolitan holidays only, weekends, business-day arithmetic."""

from datetime import date, timedelta

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import (
    CALENDAR_FROM_YEAR,
    add_business_days,
    add_months,
    holiday_name,
    holidays_of_year,
    is_business_day,
    next_business_day_on_or_after,
    non_business_days_between,
    previous_business_day_on_or_before,
)
from domain.errors import DomainError

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def test_metropolitan_calendar_has_the_eleven_public_holidays_of_2026():
    assert sorted(holidays_of_year(2026)) == [
        date(2026, 1, 1),
        date(2026, 4, 6),
        date(2026, 5, 1),
        date(2026, 5, 8),
        date(2026, 5, 14),
        date(2026, 5, 25),
        date(2026, 7, 14),
        date(2026, 8, 15),
        date(2026, 11, 1),
        date(2026, 11, 11),
        date(2026, 12, 25),
    ]


def test_calendar_is_the_holidays_package_metropolitan_calendar():
    # The reference: `holidays`' France calendar, no subdivision, in French. Any change in the
    # package (a new or removed holiday) must show up here.
    for year in range(CALENDAR_FROM_YEAR, 2101):  # the package stops at 2100
        reference = holidays.country_holidays("FR", years=year, language="fr")
        assert dict(holidays_of_year(year)) == dict(reference), year


def test_two_holidays_on_one_day_keep_both_names():
    assert holiday_name(date(2008, 5, 1)) == "Ascension; Fête du Travail"


def test_pentecost_monday_was_not_a_holiday_from_2005_to_2007():
    assert is_business_day(date(2006, 6, 5))
    assert not is_business_day(date(2008, 5, 12))


def test_years_before_the_current_calendar_are_refused():
    with pytest.raises(DomainError, match="from 1982"):
        is_business_day(date(1981, 6, 1))


def test_holiday_names_are_french():
    assert holiday_name(date(2026, 7, 14)) == "Fête nationale"
    assert holiday_name(date(2026, 7, 15)) is None


def test_alsace_moselle_days_are_not_holidays():
    # Good Friday and 26 December are holidays only in Moselle, Bas-Rhin and Haut-Rhin.
    assert is_business_day(date(2026, 4, 3))  # Good Friday 2026
    assert is_business_day(date(2025, 12, 26))  # a Friday


def test_weekends_and_holidays_are_not_business_days():
    assert not is_business_day(date(2026, 7, 11))  # Saturday
    assert not is_business_day(date(2026, 7, 12))  # Sunday
    assert not is_business_day(date(2026, 7, 14))  # Tuesday, Fête nationale
    assert is_business_day(date(2026, 7, 13))


def test_add_business_days_skips_weekend_and_holiday():
    assert add_business_days(date(2026, 7, 10), 3) == date(2026, 7, 16)
    assert add_business_days(date(2026, 7, 16), -3) == date(2026, 7, 10)
    assert add_business_days(date(2026, 7, 11), 0) == date(2026, 7, 11)
    assert add_business_days(date(2026, 7, 11), 1) == date(2026, 7, 13)


def test_next_and_previous_business_day():
    assert next_business_day_on_or_after(date(2026, 5, 1)) == date(2026, 5, 4)
    assert previous_business_day_on_or_before(date(2026, 5, 2)) == date(2026, 4, 30)
    assert next_business_day_on_or_after(date(2026, 7, 13)) == date(2026, 7, 13)


def test_non_business_days_between_names_the_holidays():
    days = non_business_days_between(date(2026, 7, 10), date(2026, 7, 16))
    assert [(d.day, d.holiday) for d in days] == [
        (date(2026, 7, 11), None),
        (date(2026, 7, 12), None),
        (date(2026, 7, 14), "Fête nationale"),
    ]
    assert non_business_days_between(date(2026, 7, 16), date(2026, 7, 10)) == ()


def test_add_months_clamps_to_the_end_of_the_month():
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)
    assert add_months(date(2026, 11, 30), 2) == date(2027, 1, 30)


@given(dates, st.integers(min_value=-20, max_value=20))
def test_add_business_days_counts_exactly_n_business_days(start, n):
    result = add_business_days(start, n)
    if n == 0:
        assert result == start
        return
    assert is_business_day(result)
    if n > 0:  # the days after start, up to and including the result
        span = [start + timedelta(days=i) for i in range(1, (result - start).days + 1)]
    else:  # the days from the result up to, but excluding, start
        span = [result + timedelta(days=i) for i in range((start - result).days)]
    assert sum(is_business_day(d) for d in span) == abs(n)


@given(dates)
def test_next_and_previous_business_days_are_the_closest(d):
    nxt = next_business_day_on_or_after(d)
    prev = previous_business_day_on_or_before(d)
    assert is_business_day(nxt) and is_business_day(prev)
    assert prev <= d <= nxt
    assert all(not is_business_day(d + timedelta(days=i)) for i in range((nxt - d).days))
    assert all(not is_business_day(d - timedelta(days=i)) for i in range((d - prev).days))
