"""Payout dates per offer, with the facts that explain them."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import is_business_day
from domain.errors import DomainError
from domain.payouts import LEGAL_MAX_PAYMENT_DAYS, Shift, compute_payout, explain_payout
from schemas.enums import PaymentOffer as O

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 10, 31))


def test_flash_validated_friday_10_july_2026_pays_thursday_16():
    # Mon 13 business, Tue 14 July holiday, Wed 15, Thu 16.
    schedule = compute_payout(O.FLASH, date(2026, 7, 10))
    assert schedule.payout_date == date(2026, 7, 16)
    assert [(d.day, d.holiday) for d in schedule.skipped_holidays] == [
        (date(2026, 7, 14), "Fête nationale")
    ]
    assert schedule.shifted
    assert explain_payout(schedule) == (
        "Offre Flash : CRA validé le vendredi 10/07/2026, paiement 3 jours ouvrés plus tard, "
        "le jeudi 16/07/2026 (le 14/07 est férié : Fête nationale)."
    )


def test_flash_on_a_plain_week_is_not_shifted():
    schedule = compute_payout(O.FLASH, date(2026, 6, 1))  # Monday
    assert schedule.payout_date == date(2026, 6, 4)
    assert not schedule.shifted


def test_basic_pulled_back_by_the_legal_cap():
    # Validated (and invoiced) Tuesday 06/01/2026: +60 days is Saturday 07/03/2026. The next
    # business day, Monday 09/03, is 62 days after the invoice: past the legal 60, so the
    # payout moves back to Friday 06/03/2026.
    schedule = compute_payout(O.BASIC, date(2026, 1, 6))
    assert schedule.raw_date == date(2026, 3, 7)
    assert schedule.legal_limit == date(2026, 3, 7)
    assert schedule.payout_date == date(2026, 3, 6)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert schedule.capped_by_legal_limit
    text = explain_payout(schedule)
    assert "samedi 07/03/2026 tombe un week-end" in text
    assert "L441-10" in text
    assert text.endswith("paiement le jour ouvré précédent, le vendredi 06/03/2026.")


def test_basic_pulled_back_over_a_holiday_too():
    # +60 is Saturday 02/05/2026; Friday 01/05 is Fête du Travail → Thursday 30/04.
    schedule = compute_payout(O.BASIC, date(2026, 3, 3))
    assert schedule.payout_date == date(2026, 4, 30)
    assert [d.holiday for d in schedule.skipped_holidays] == ["Fête du Travail"]
    assert "Fête du Travail" in explain_payout(schedule)


def test_basic_with_a_later_invoice_moves_forward_within_the_cap():
    # Invoice imported two days after validation: the limit is Monday 09/03, so the weekend
    # date moves forward to that Monday.
    schedule = compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2026, 1, 8))
    assert schedule.payout_date == date(2026, 3, 9)
    assert schedule.shift is Shift.NEXT_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit


def test_basic_never_pays_later_than_60_days_after_an_earlier_invoice():
    schedule = compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 12, 20))
    assert schedule.payout_date == date(2026, 2, 18)  # 20/12/2025 + 60 days, a Wednesday
    assert schedule.capped_by_legal_limit
    assert schedule.shift is Shift.NONE


def test_invoice_so_early_that_no_date_is_legal_is_refused():
    with pytest.raises(DomainError, match="invoice date 2025-10-01 is too early"):
        compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 10, 1))


def test_basic_landing_on_a_holiday_moves_to_the_next_business_day():
    # Validated Tuesday 16/06/2026, invoiced Thursday 18/06: +60 is Saturday 15/08 (Assomption).
    schedule = compute_payout(O.BASIC, date(2026, 6, 16), invoice_date=date(2026, 6, 18))
    assert schedule.payout_date == date(2026, 8, 17)
    assert "est férié (Assomption)" in explain_payout(schedule)


def test_express_across_a_weekend():
    # Thursday 08/01/2026 + 30 days = Saturday 07/02 → Monday 09/02 (well within 60 days).
    schedule = compute_payout(O.EXPRESS, date(2026, 1, 8))
    assert schedule.raw_date == date(2026, 2, 7)
    assert schedule.payout_date == date(2026, 2, 9)
    assert schedule.shift is Shift.NEXT_BUSINESS_DAY
    assert [d.day for d in schedule.skipped] == [date(2026, 2, 7), date(2026, 2, 8)]
    assert explain_payout(schedule) == (
        "Offre Express : CRA validé le jeudi 08/01/2026, paiement 30 jours plus tard : le samedi "
        "07/02/2026 tombe un week-end, paiement le jour ouvré suivant, le lundi 09/02/2026."
    )


def test_immediate_on_a_saturday_validation_pays_monday():
    schedule = compute_payout(O.IMMEDIATE, date(2026, 7, 11))
    assert schedule.payout_date == date(2026, 7, 13)
    assert schedule.shift is Shift.NEXT_BUSINESS_DAY


def test_immediate_with_manual_import_waits_for_the_import():
    # Imported on the 14 July holiday: first business day on or after is the 15th.
    schedule = compute_payout(O.IMMEDIATE, date(2026, 7, 10), invoice_date=date(2026, 7, 14))
    assert schedule.payout_date == date(2026, 7, 15)
    assert "facture importée le mardi 14/07/2026" in explain_payout(schedule)


def test_immediate_on_a_business_day_pays_the_same_day():
    assert compute_payout(O.IMMEDIATE, date(2026, 7, 10)).payout_date == date(2026, 7, 10)


def test_back_to_back_has_no_date():
    schedule = compute_payout(O.BACK_TO_BACK, date(2026, 7, 10))
    assert schedule.payout_date is None
    assert "après l'encaissement de la facture par le client" in explain_payout(schedule)


@given(
    st.sampled_from([O.BASIC, O.EXPRESS]),
    dates,
    st.integers(min_value=-30, max_value=90),
)
def test_fixed_calendar_payouts_are_business_days_within_the_legal_cap(offer, validated, offset):
    invoice = validated + timedelta(days=offset)
    schedule = compute_payout(offer, validated, invoice_date=invoice)
    payout = schedule.payout_date
    assert payout is not None
    assert is_business_day(payout)
    assert payout <= invoice + timedelta(days=LEGAL_MAX_PAYMENT_DAYS)
    assert payout >= validated
    delay = 60 if offer is O.BASIC else 30
    raw = validated + timedelta(days=delay)
    limit = invoice + timedelta(days=LEGAL_MAX_PAYMENT_DAYS)
    if raw <= limit and is_business_day(raw):
        assert payout == raw
    if payout > raw:  # moved forward: only non-business days were skipped
        assert all(not is_business_day(raw + timedelta(days=i)) for i in range((payout - raw).days))


@given(dates)
def test_flash_is_exactly_three_business_days_later(validated):
    payout = compute_payout(O.FLASH, validated).payout_date
    assert payout is not None
    assert is_business_day(payout)
    between = [validated + timedelta(days=i) for i in range(1, (payout - validated).days + 1)]
    assert sum(is_business_day(d) for d in between) == 3


@given(dates, st.integers(min_value=0, max_value=30))
def test_immediate_is_the_first_business_day_after_validation_and_import(validated, delay):
    imported = validated + timedelta(days=delay)
    payout = compute_payout(O.IMMEDIATE, validated, invoice_date=imported).payout_date
    assert payout is not None
    assert is_business_day(payout)
    assert payout >= imported
    assert all(
        not is_business_day(imported + timedelta(days=i)) for i in range((payout - imported).days)
    )
