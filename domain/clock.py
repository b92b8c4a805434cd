"""Europe/Paris civil time without a time-zone database.

Workflows run in Temporal's sandbox, where `zoneinfo` is off limits, yet business dates (a
start date, a reminder day) are Paris dates. France follows the EU rule since 1996: summer
time (UTC+2) from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC,
UTC+1 otherwise. A unit test checks this against the IANA database over decades.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def _last_sunday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def paris_offset(instant: datetime) -> timedelta:
    """UTC offset of Paris at an aware instant."""
    utc = instant.astimezone(UTC)
    summer_from = datetime.combine(_last_sunday(utc.year, 3), time(1), UTC)
    summer_until = datetime.combine(_last_sunday(utc.year, 10), time(1), UTC)
    return timedelta(hours=2) if summer_from <= utc < summer_until else timedelta(hours=1)


def paris_date(instant: datetime) -> date:
    """The Paris calendar date of an aware instant (what "today" means for business dates)."""
    utc = instant.astimezone(UTC)
    return (utc + paris_offset(utc)).date()


def paris_instant(day: date, at: time = time(0)) -> datetime:
    """The UTC instant of the Paris wall-clock time `at` on `day`.

    In the hour skipped in spring, the winter offset applies (02:30 is 03:30 summer time); in
    the hour repeated in autumn, the first (summer time) occurrence.
    """
    local = datetime.combine(day, at, tzinfo=UTC)
    summer = local - timedelta(hours=2)
    if paris_offset(summer) == timedelta(hours=2):
        return summer
    return local - timedelta(hours=1)


def paris_text(instant: datetime) -> str:
    """An instant as a person in Paris reads it: '2026-11-30 10:00 (Paris)'."""
    utc = instant.astimezone(UTC)
    local = utc + paris_offset(utc)
    return f"{local:%Y-%m-%d %H:%M} (Paris)"
