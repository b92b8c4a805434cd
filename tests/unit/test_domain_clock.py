"""Paris civil time computed by rule agrees with the IANA database."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from domain.clock import paris_date, paris_instant, paris_offset

PARIS = ZoneInfo("Europe/Paris")


@given(st.datetimes(min_value=datetime(1996, 1, 1), max_value=datetime(2100, 1, 1)))
def test_offset_and_date_match_the_tz_database(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    assert paris_offset(instant) == instant.astimezone(PARIS).utcoffset()
    assert paris_date(instant) == instant.astimezone(PARIS).date()


@given(st.dates(min_value=date(1996, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 23))
def test_paris_instant_is_that_wall_clock_time(day: date, hour: int) -> None:
    instant = paris_instant(day, time(hour))
    local = instant.astimezone(PARIS)
    # Only the missing spring hour (02:00-03:00 on one Sunday a year) can differ.
    assert local.date() == day
    assert local.hour == hour or (hour == 2 and local.hour == 3)


def test_transitions_of_2026() -> None:
    assert paris_offset(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == timedelta(hours=1)
    assert paris_offset(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == timedelta(hours=2)
    assert paris_offset(datetime(2026, 10, 25, 0, 59, tzinfo=UTC)) == timedelta(hours=2)
    assert paris_offset(datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == timedelta(hours=1)
    assert paris_instant(date(2026, 7, 14)) == datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    assert paris_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2027, 1, 1)
