"""CRA rules: pro rata months, half-day steps, corrections of validated months only."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.clock import paris_instant
from domain.cra import (
    REMINDER_AT,
    REMINDER_EVERY,
    check_correction,
    check_cra,
    check_days,
    check_submission_day,
    due_day,
    first_reminder_day,
    mission_days_in_month,
    mission_months,
    month_bounds,
    month_of,
    reminder_at,
    submission_opens_on,
)
from domain.errors import InvalidCra
from schemas.events import CorrectionLine, CraSubmitted, OvertimeLine

START, END = date(2026, 1, 15), date(2026, 6, 10)


def test_mission_months_from_start_to_end():
    assert mission_months(START, END) == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-05",
        "2026-06",
    ]
    assert mission_months(date(2025, 12, 31), date(2026, 1, 1)) == ["2025-12", "2026-01"]


def test_pro_rata_first_and_last_month():
    assert mission_days_in_month("2026-01", START, END) == 17  # 15 to 31 January
    assert mission_days_in_month("2026-02", START, END) == 28
    assert mission_days_in_month("2026-06", START, END) == 10  # 1 to 10 June
    assert mission_days_in_month("2026-07", START, END) == 0
    assert mission_days_in_month("2024-02", date(2024, 1, 1), date(2024, 12, 31)) == 29


def test_month_helpers():
    assert month_of(date(2026, 7, 14)) == "2026-07"
    assert month_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    with pytest.raises(InvalidCra, match="YYYY-MM"):
        month_bounds("2026-13")


def test_days_accepted_up_to_the_mission_part_of_the_month():
    assert check_days(D("17"), "2026-01", START, END) == D("17")
    assert check_days(D("0"), "2026-01", START, END) == D("0")
    assert check_days(D("9.5"), "2026-06", START, END) == D("9.5")


def test_days_over_the_limit_say_how_many_are_allowed():
    with pytest.raises(InvalidCra) as error:
        check_days(D("17.5"), "2026-01", START, END)
    assert "only 17 calendar days" in str(error.value)
    assert "from 2026-01-15 to 2026-01-31" in str(error.value)


def test_days_not_in_half_day_steps_are_refused():
    with pytest.raises(InvalidCra, match="half-day steps"):
        check_days(D("10.25"), "2026-02", START, END)


def test_negative_days_are_refused():
    with pytest.raises(InvalidCra, match="negative"):
        check_days(D("-1"), "2026-02", START, END)


def test_a_month_outside_the_mission_is_refused():
    with pytest.raises(InvalidCra, match="has no days in 2026-07"):
        check_days(D("1"), "2026-07", START, END)


def test_correction_must_refer_to_an_earlier_validated_month():
    check_correction("2026-03", "2026-02", {"2026-01", "2026-02"})
    with pytest.raises(InvalidCra, match="earlier month"):
        check_correction("2026-03", "2026-03", {"2026-03"})
    with pytest.raises(InvalidCra, match="earlier month"):
        check_correction("2026-03", "2026-04", {"2026-04"})
    with pytest.raises(InvalidCra, match="2026-01, which has no validated CRA"):
        check_correction("2026-03", "2026-01", {"2026-02"})


def test_check_cra_applies_days_and_corrections():
    cra = CraSubmitted(
        mission_id="M-1",
        month="2026-03",
        days=D("20"),
        corrections=[CorrectionLine(label="oubli", amount=D("-325.00"), corrects_month="2026-02")],
    )
    check_cra(cra, START, END, {"2026-01", "2026-02"})
    with pytest.raises(InvalidCra, match="2026-02, which has no validated CRA"):
        check_cra(cra, START, END, {"2026-01"})


def test_a_cra_whose_amounts_would_not_fit_the_ledger_is_refused():
    """Each amount of the contract is below a billion, but a month adds them up: the cycle
    refuses a CRA whose invoice would not fit NUMERIC(12, 2), and takes the largest that does."""
    many = [OvertimeLine(label=f"astreinte {n}", amount=D("999999999.99")) for n in range(9)]
    fits = CraSubmitted(mission_id="M-1", month="2026-03", days=D("0"), overtime=many[:8])
    check_cra(fits, START, END, set(), tjm=D("650.00"))  # 8.0e9 incl. VAT: 9.6e9
    beyond = fits.model_copy(update={"overtime": many})
    with pytest.raises(InvalidCra, match=r"2026-03 CRA's .* beyond the largest amount"):
        check_cra(beyond, START, END, set(), tjm=D("650.00"))
    days = CraSubmitted(mission_id="M-1", month="2026-03", days=D("31"))
    with pytest.raises(InvalidCra, match=r"days worked would be 30999999999\.69"):
        check_cra(days, START, END, set(), tjm=D("999999999.99"))


@given(
    st.decimals(min_value=-3, max_value=40, places=2),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=120),
)
def test_days_accepted_exactly_when_half_day_multiple_within_limit(days, start, length):
    end = date.fromordinal(start.toordinal() + length)
    month = month_of(start)
    limit = mission_days_in_month(month, start, end)
    doubled = days * 2
    expected = doubled == doubled.to_integral_value() and 0 <= days <= limit
    try:
        check_days(days, month, start, end)
        accepted = True
    except InvalidCra:
        accepted = False
    assert accepted == expected


def test_a_cra_is_due_on_the_last_business_day_of_the_missions_part_of_the_month() -> None:
    # January 2027 ends on a Sunday: due Friday the 29th, reminded Monday 1 February.
    assert due_day("2027-01", date(2026, 12, 1), date(2027, 5, 31)) == date(2027, 1, 29)
    assert first_reminder_day("2027-01", date(2026, 12, 1), date(2027, 5, 31)) == date(2027, 2, 1)
    # A mission ending on Wednesday 13 January: due that day, reminded the next.
    assert due_day("2027-01", date(2026, 12, 1), date(2027, 1, 13)) == date(2027, 1, 13)
    # December 2026 ends on a Thursday: due the 31st, reminded Monday 4 January (New Year).
    assert due_day("2026-12", date(2026, 12, 1), date(2027, 5, 31)) == date(2026, 12, 31)
    assert first_reminder_day("2026-12", date(2026, 12, 1), date(2027, 5, 31)) == date(2027, 1, 4)
    # A part of the month with no business day (a Saturday-Sunday mission end): its last day.
    assert due_day("2027-01", date(2027, 1, 2), date(2027, 1, 3)) == date(2027, 1, 3)


LONG = date(2020, 1, 1), date(2030, 12, 31)
"""A mission covering every month below whole."""


@pytest.mark.parametrize(
    ("month", "start", "end", "opens"),
    [
        # May 2026 ends on a Sunday: the CRA opens Friday the 29th.
        ("2026-05", *LONG, date(2026, 5, 29)),
        # October 2026 ends on a Saturday: Friday the 30th.
        ("2026-10", *LONG, date(2026, 10, 30)),
        # 31 December is a business day (Thursday in 2026, Friday in 2027): that day itself.
        ("2026-12", *LONG, date(2026, 12, 31)),
        ("2027-12", *LONG, date(2027, 12, 31)),
        # The eve of 1 May (Thursday 30 April 2026) closes April: that day.
        ("2026-04", *LONG, date(2026, 4, 30)),
        # A mission ending mid-month on a Saturday: the Friday before.
        ("2026-11", LONG[0], date(2026, 11, 14), date(2026, 11, 13)),
        # ... on a holiday that falls on a Saturday (15 August 2026): Friday the 14th.
        ("2026-08", LONG[0], date(2026, 8, 15), date(2026, 8, 14)),
        # ... on Pentecost Monday (25 May 2026): Friday the 22nd.
        ("2026-05", LONG[0], date(2026, 5, 25), date(2026, 5, 22)),
        # ... on a business day: that day.
        ("2027-01", LONG[0], date(2027, 1, 13), date(2027, 1, 13)),
        # A part of the month with no business day (1 May 2026, a holiday): its last day.
        ("2026-05", LONG[0], date(2026, 5, 1), date(2026, 5, 1)),
        ("2027-01", date(2027, 1, 2), date(2027, 1, 3), date(2027, 1, 3)),
    ],
)
def test_a_cra_opens_on_the_last_business_day_of_the_missions_part_of_the_month(
    month: str, start: date, end: date, opens: date
) -> None:
    assert submission_opens_on(month, start, end) == opens
    assert submission_opens_on(month, start, end) == due_day(month, start, end)
    check_submission_day(month, opens, start, end)  # on the day: accepted
    check_submission_day(month, date(2031, 1, 1), start, end)  # any day after too
    with pytest.raises(InvalidCra) as early:
        check_submission_day(month, opens - timedelta(days=1), start, end)
    assert f"cannot be submitted before {opens.isoformat()} (Europe/Paris)" in str(early.value)


@given(st.dates(min_value=date(2025, 1, 1), max_value=LONG[1]))
def test_a_whole_month_never_opens_before_its_last_week_nor_on_a_non_business_day(
    day: date,
) -> None:
    month = month_of(day)
    opens = submission_opens_on(month, *LONG)
    assert opens.weekday() < 5 and month_of(opens) == month
    assert (month_bounds(month)[1] - opens).days < 7


def test_reminders_go_at_nine_paris_then_every_week() -> None:
    first = reminder_at("2027-01", date(2026, 12, 1), date(2027, 5, 31), 0)
    assert first == paris_instant(date(2027, 2, 1), REMINDER_AT)
    assert (
        reminder_at("2027-01", date(2026, 12, 1), date(2027, 5, 31), 2)
        == first + 2 * REMINDER_EVERY
    )
