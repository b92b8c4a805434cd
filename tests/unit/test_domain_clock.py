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


def test_the_change_days_hour_by_hour() -> None:
    for day in (date(2026, 3, 29), date(2026, 10, 25), date(2031, 3, 30), date(2031, 10, 26)):
        for minutes in range(0, 24 * 60, 15):
            at = time(minutes // 60, minutes % 60)
            local = paris_instant(day, at).astimezone(PARIS)
            if day.month == 3 and at.hour == 2:  # skipped hour: read as winter time
                assert (local.hour, local.minute) == (3, at.minute)
            else:
                assert (local.date(), local.time()) == (day, at)
                # the repeated autumn hour resolves to its first, summer-time occurrence
                assert local.fold == 0 or local.utcoffset() == timedelta(hours=2)
    assert paris_instant(date(2026, 10, 25), time(2, 30)).astimezone(PARIS).utcoffset() == (
        timedelta(hours=2)
    )


def test_transitions_of_2026() -> None:
    assert paris_offset(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == timedelta(hours=1)
    assert paris_offset(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == timedelta(hours=2)
    assert paris_offset(datetime(2026, 10, 25, 0, 59, tzinfo=UTC)) == timedelta(hours=2)
    assert paris_offset(datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == timedelta(hours=1)
    assert paris_instant(date(2026, 7, 14)) == datetime(2026, 7, 13, 22, 0, tzinfo=UTC)
    assert paris_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2027, 1, 1)


def test_every_half_hour_around_each_midnight_and_change_of_time_from_1996_to_2040() -> None:
    """Where a Paris date can go wrong: the hours around every Paris midnight (21:30 to 01:30
    UTC, both offsets), and every half hour of the days around each change of summer time."""
    day = date(1996, 1, 1)
    while day < date(2040, 1, 1):
        midnight = datetime.combine(day, time(21, 30), tzinfo=UTC)
        for step in range(9):
            instant = midnight + timedelta(minutes=30 * step)
            assert paris_date(instant) == instant.astimezone(PARIS).date(), instant
        if day.month in (3, 10) and day.day >= 22:  # the last Sunday is on the 25th-31st
            for step in range(48):
                instant = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(minutes=30 * step)
                assert paris_date(instant) == instant.astimezone(PARIS).date(), instant
        day += timedelta(days=1)
    day = date(1996, 1, 1)
    while day < date(2040, 1, 1):
        for at in (time(0), time(8)):
            expected = datetime.combine(day, at, tzinfo=PARIS).astimezone(UTC)
            assert paris_instant(day, at) == expected, (day, at)
        day += timedelta(days=1)
