"""Monthly activity report (CRA) rules: which months, how many days, which corrections.

A mission has one CRA per calendar month from its start date to its end date. The first and
last months are pro rata: the most a provider may declare in a month is the number of
calendar days of that month that belong to the mission (weekends included, since some
missions work them). Days go in half-day steps. A validated CRA is immutable: a mistake is
fixed by a correction line, possibly negative, on a later month's CRA, and that line must
point at an earlier month whose CRA was validated.

The CRA is due by the last business day of the mission's part of the month; when it is not
submitted by then, the provider is reminded at 09:00 Paris the next business day, then every
7 days until the first submission. Days not yet worked are not billed: the CRA can be
submitted from that same day (its Paris day), not before (`submission_opens_on`).

A month that straddles a change of terms (a renewal or a new contract from a day inside the
month, with another TJM or offer) is billed in periods, each with its own CRA: the period
key is the month (`2026-07`) for the first and `2026-07-p2` for the second (`period_key`).
Every rule here takes a period key where it takes a month: the bounds given with it (the
mission's start and end, or the period's) make a period's days, due day and reminders.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from domain.calendar import next_business_day_on_or_after, previous_business_day_on_or_before
from domain.clock import paris_instant
from domain.errors import InvalidCra
from domain.invoices import invoice_amounts_for_cra
from domain.money import is_half_day_multiple
from schemas.enums import VatRegime
from schemas.events import CraSubmitted
from schemas.limits import MONEY_COLUMN_LIMIT

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])(?:-p([2-9]))?$")
PART_SEPARATOR = "-p"
"""`2026-07-p2`: the second billing period of July 2026 (the first is `2026-07`)."""

REMINDER_AT = time(9, 0)
"""CRA reminders go at 09:00, Europe/Paris."""
REMINDER_EVERY = timedelta(days=7)
"""After the first reminder (the business day after the due day), one more every week."""


def parse_month(month: str) -> tuple[int, int]:
    """("2026-07") -> (2026, 7), and a period key ("2026-07-p2") -> its month's (2026, 7);
    raises InvalidCra for anything else."""
    match = _MONTH.match(month)
    if match is None:
        raise InvalidCra(
            f"month must be written YYYY-MM (for example 2026-07), or YYYY-MM-pN for the "
            f"N-th period of a month split by a change of terms, got {month!r}"
        )
    return int(match.group(1)), int(match.group(2))


def period_key(month: str, part: int) -> str:
    """The key of a month's `part`-th billing period: the month itself for the first."""
    if not 1 <= part <= 9:
        raise InvalidCra(f"a month has billing periods 1 to 9, got {part}")
    return month if part == 1 else f"{month}{PART_SEPARATOR}{part}"


def period_month(key: str) -> str:
    """The YYYY-MM month of a period key."""
    year, number = parse_month(key)
    return f"{year:04d}-{number:02d}"


def period_part(key: str) -> int:
    """The period's rank in its month (1 for a whole month or its first period)."""
    match = _MONTH.match(key)
    if match is None:
        raise InvalidCra(f"not a month or a period key: {key!r}")
    return int(match.group(3) or 1)


def month_of(d: date) -> str:
    """The YYYY-MM month containing `d`."""
    return f"{d.year:04d}-{d.month:02d}"


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM month."""
    year, number = parse_month(month)
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def mission_months(start: date, end: date) -> list[str]:
    """Every month that needs a CRA for a mission running from `start` to `end` (inclusive)."""
    if end < start:
        raise InvalidCra(f"mission end {end.isoformat()} is before its start {start.isoformat()}")
    months: list[str] = []
    year, number = start.year, start.month
    while (year, number) <= (end.year, end.month):
        months.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return months


def mission_days_in_month(month: str, start: date, end: date) -> int:
    """Calendar days of `month` between the mission's start and end, both included (0 if none).

    This is the most days a CRA may declare for that month: the whole month in the middle of
    a mission, pro rata in its first and last months.
    """
    first, last = month_bounds(month)
    overlap_start, overlap_end = max(first, start), min(last, end)
    if overlap_end < overlap_start:
        return 0
    return (overlap_end - overlap_start).days + 1


def check_days(days: Decimal, month: str, start: date, end: date) -> Decimal:
    """Return `days` if acceptable for the CRA of `month`; raise InvalidCra saying why not."""
    if not isinstance(days, Decimal) or not days.is_finite():
        raise InvalidCra(f"days must be a decimal number such as 18.5, got {days!r}")
    if days < 0:
        raise InvalidCra(f"days must not be negative, got {days}")
    if not is_half_day_multiple(days):
        raise InvalidCra(f"days go in half-day steps (e.g. 18 or 18.5), got {days}")
    limit = mission_days_in_month(month, start, end)
    if limit == 0:
        raise InvalidCra(
            f"the mission (from {start.isoformat()} to {end.isoformat()}) has no days in {month}"
        )
    if days > limit:
        raise InvalidCra(
            f"{days} days declared for {month} but the mission covers only {limit} calendar "
            f"days of that month (from {max(start, month_bounds(month)[0]).isoformat()} to "
            f"{min(end, month_bounds(month)[1]).isoformat()})"
        )
    return days


def check_correction(month: str, corrects_month: str, validated_months: Collection[str]) -> None:
    """A correction on the CRA of `month` must fix an earlier month whose CRA was validated."""
    if parse_month(corrects_month) >= parse_month(month):
        raise InvalidCra(
            f"a correction on the {month} CRA must refer to an earlier month, got {corrects_month}"
        )
    if corrects_month not in validated_months:
        raise InvalidCra(
            f"a correction refers to {corrects_month}, which has no validated CRA: only a "
            "validated CRA is corrected this way (a rejected or pending CRA is simply resubmitted)"
        )


def check_amounts(cra: CraSubmitted, tjm: Decimal) -> None:
    """Raise InvalidCra when an amount the validation would write (a line, a total, the VAT)
    does not fit the ledger's money columns, under any VAT regime: each amount of the
    contract fits, but a month adds them up (schemas/limits.py)."""
    for regime in VatRegime:
        amounts = invoice_amounts_for_cra(cra, tjm, regime=regime)
        written = {
            "days worked": amounts.service,
            "overtime": amounts.overtime,
            "corrections": amounts.corrections,
            "expenses": amounts.expenses,
            "total excl. VAT": amounts.total_excl_vat,
            "VAT": amounts.vat,
            "total incl. VAT": amounts.total_incl_vat,
        }
        for what, amount in written.items():
            if abs(amount) >= MONEY_COLUMN_LIMIT:
                raise InvalidCra(
                    f"the {cra.month} CRA's {what} would be {amount}, beyond the largest "
                    f"amount the ledger holds (below {MONEY_COLUMN_LIMIT:f})"
                )


def check_cra(
    cra: CraSubmitted,
    start: date,
    end: date,
    validated_months: Collection[str],
    tjm: Decimal | None = None,
) -> None:
    """All the rules a submitted CRA must satisfy against its mission; raise InvalidCra.
    With the `tjm`, also that its amounts fit the ledger (`check_amounts`)."""
    check_days(cra.days, cra.month, start, end)
    for line in cra.corrections:
        check_correction(cra.month, line.corrects_month, validated_months)
    if tjm is not None:
        check_amounts(cra, tjm)


def due_day(month: str, mission_start: date, mission_end: date) -> date:
    """The last business day of the mission's part of `month`: the CRA is due by then (the
    part's last day when it has no business day)."""
    first, last = month_bounds(month)
    last = min(last, mission_end)
    first = max(first, mission_start)
    day = previous_business_day_on_or_before(last)
    return day if day >= first else last


def submission_opens_on(month: str, mission_start: date, mission_end: date) -> date:
    """The first Paris day the CRA of `month` may be submitted: its due day, that is the
    month's last business day, or, when the mission ends earlier in that month, the last
    business day on or before the mission's last day (that last day itself when the
    mission's part of the month has no business day). Days not yet worked are not billed."""
    return due_day(month, mission_start, mission_end)


def check_submission_day(
    month: str, submitted_on: date, mission_start: date, mission_end: date
) -> None:
    """Raise InvalidCra when a CRA of `month` is submitted (Paris day) before it opens."""
    opens = submission_opens_on(month, mission_start, mission_end)
    if submitted_on < opens:
        raise InvalidCra(
            f"the {month} CRA cannot be submitted before {opens.isoformat()} (Europe/Paris), "
            f"the last business day of the mission's part of the month: days not yet worked "
            f"are not billed (submitted on {submitted_on.isoformat()})"
        )


def first_reminder_day(month: str, mission_start: date, mission_end: date) -> date:
    """The first reminder: the business day after the due day."""
    due = due_day(month, mission_start, mission_end)
    return next_business_day_on_or_after(due + timedelta(days=1))


def reminder_at(month: str, mission_start: date, mission_end: date, sent: int) -> datetime:
    """When the reminder after `sent` earlier ones goes out (09:00 Paris, then weekly)."""
    first = paris_instant(first_reminder_day(month, mission_start, mission_end), REMINDER_AT)
    return first + REMINDER_EVERY * sent
