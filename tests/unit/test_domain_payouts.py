"""Payout dates per offer, with the facts that explain them."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import is_business_day
from domain.errors import DomainError
from domain.fees import offer_fee
from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import (
    CLIENT_PAYMENT_TERM,
    LEGAL_MAX_PAYMENT_DAYS,
    Shift,
    back_to_back_payout_date,
    client_due_date,
    compute_payout,
    explain_payout,
    imported_invoice_terms,
    payout_terms,
)
from schemas.enums import PaymentOffer as O
from schemas.enums import PayoutStatus
from schemas.payouts import PayoutTerms

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


def test_express_validated_25_november_2026_pays_24_december_not_after_christmas():
    # The issue's example: day 30 is Friday 25/12/2026 (Noël). The next business day, Monday
    # 28/12, would be day 33: the payout moves to the previous business day, Thursday 24/12.
    schedule = compute_payout(O.EXPRESS, date(2026, 11, 25))
    assert schedule.raw_date == date(2026, 12, 25)
    assert schedule.payout_date == date(2026, 12, 24)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit
    assert [(d.day, d.holiday) for d in schedule.skipped] == [(date(2026, 12, 25), "Noël")]
    assert explain_payout(schedule) == (
        "Offre Express : CRA validé le mercredi 25/11/2026, paiement 30 jours plus tard : le "
        "vendredi 25/12/2026 est férié (Noël), paiement avancé au jour ouvré précédent, le "
        "jeudi 24/12/2026."
    )


def test_basic_whose_day_60_is_a_sunday_pays_the_friday_before():
    # Validated Wednesday 07/01/2026: day 60 is Sunday 08/03/2026, paid Friday 06/03.
    schedule = compute_payout(O.BASIC, date(2026, 1, 7))
    assert schedule.raw_date == date(2026, 3, 8)
    assert schedule.payout_date == date(2026, 3, 6)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit
    assert [d.day for d in schedule.skipped] == [date(2026, 3, 7), date(2026, 3, 8)]
    text = explain_payout(schedule)
    assert "le dimanche 08/03/2026 tombe un week-end" in text
    assert "L441-10" not in text
    assert text.endswith("paiement avancé au jour ouvré précédent, le vendredi 06/03/2026.")


def test_basic_pulled_back_over_a_holiday_too():
    # +60 is Saturday 02/05/2026; Friday 01/05 is Fête du Travail → Thursday 30/04.
    schedule = compute_payout(O.BASIC, date(2026, 3, 3))
    assert schedule.payout_date == date(2026, 4, 30)
    assert [d.holiday for d in schedule.skipped_holidays] == ["Fête du Travail"]
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit
    assert explain_payout(schedule).endswith(
        "le samedi 02/05/2026 tombe un week-end, paiement avancé au jour ouvré précédent, le "
        "jeudi 30/04/2026 (le 01/05 est férié : Fête du Travail)."
    )


def test_basic_landing_on_a_holiday_moves_to_the_previous_business_day():
    # Validated Tuesday 16/06/2026, invoiced Thursday 18/06: +60 is Saturday 15/08
    # (Assomption), well within the cap (17/08): paid Friday 14/08, not Monday 17/08.
    schedule = compute_payout(O.BASIC, date(2026, 6, 16), invoice_date=date(2026, 6, 18))
    assert schedule.payout_date == date(2026, 8, 14)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit
    assert "le samedi 15/08/2026 est férié (Assomption)" in explain_payout(schedule)


def test_basic_with_a_later_invoice_still_pays_before_the_weekend():
    # Invoice two days after the validation: the cap is Monday 09/03, but day 60, Saturday
    # 07/03, moves back to Friday 06/03: a later invoice never makes the payout later.
    schedule = compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2026, 1, 8))
    assert schedule.payout_date == date(2026, 3, 6)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not schedule.capped_by_legal_limit


def test_basic_never_pays_later_than_60_days_after_an_earlier_invoice():
    # Invoice dated 20/12/2025, before the validation of 06/01/2026: the cap, Wednesday
    # 18/02/2026, comes before day 60 (07/03) and is a business day.
    schedule = compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 12, 20))
    assert schedule.payout_date == date(2026, 2, 18)  # 20/12/2025 + 60 days, a Wednesday
    assert schedule.legal_limit == date(2026, 2, 18)
    assert schedule.capped_by_legal_limit
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert schedule.skipped == ()
    assert explain_payout(schedule) == (
        "Offre Basic : CRA validé le mardi 06/01/2026, paiement 60 jours plus tard (le samedi "
        "07/03/2026), ramené à la limite légale de 60 jours après la facture du 20/12/2025 "
        "(art. L441-10 du Code de commerce) : le mercredi 18/02/2026."
    )


def test_the_legal_cap_on_a_weekend_pays_the_business_day_before_it():
    # Invoice dated 10/12/2025, validated 06/01/2026: the cap is Sunday 08/02/2026, earlier
    # than day 60: paid Friday 06/02, and the sentence names the cap, not day 60, as the day
    # that is not a business day.
    schedule = compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 12, 10))
    assert schedule.legal_limit == date(2026, 2, 8)
    assert schedule.payout_date == date(2026, 2, 6)
    assert schedule.capped_by_legal_limit
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert [d.day for d in schedule.skipped] == [date(2026, 2, 7), date(2026, 2, 8)]
    assert explain_payout(schedule) == (
        "Offre Basic : CRA validé le mardi 06/01/2026, paiement 60 jours plus tard (le samedi "
        "07/03/2026), ramené à la limite légale de 60 jours après la facture du 10/12/2025 "
        "(art. L441-10 du Code de commerce) : le dimanche 08/02/2026 tombe un week-end, "
        "paiement avancé au jour ouvré précédent, le vendredi 06/02/2026."
    )


def test_a_cap_one_day_before_a_weekend_day_60_is_not_what_moved_the_date():
    # Validated 07/01/2026, invoiced 06/01: day 60 is Sunday 08/03, the cap Saturday 07/03.
    # Both give Friday 06/03: the weekend moved it, the cap did not.
    schedule = compute_payout(O.BASIC, date(2026, 1, 7), invoice_date=date(2026, 1, 6))
    assert schedule.payout_date == date(2026, 3, 6)
    assert not schedule.capped_by_legal_limit
    assert "L441-10" not in explain_payout(schedule)


def test_invoice_so_early_that_no_date_is_legal_is_refused():
    with pytest.raises(DomainError, match="invoice date 2025-10-01 is too early"):
        compute_payout(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 10, 1))


def test_express_across_a_weekend():
    # Thursday 08/01/2026 + 30 days = Saturday 07/02 → Friday 06/02 (never day 32).
    schedule = compute_payout(O.EXPRESS, date(2026, 1, 8))
    assert schedule.raw_date == date(2026, 2, 7)
    assert schedule.payout_date == date(2026, 2, 6)
    assert schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert [d.day for d in schedule.skipped] == [date(2026, 2, 7)]
    assert explain_payout(schedule) == (
        "Offre Express : CRA validé le jeudi 08/01/2026, paiement 30 jours plus tard : le samedi "
        "07/02/2026 tombe un week-end, paiement avancé au jour ouvré précédent, le vendredi "
        "06/02/2026."
    )


def test_a_business_day_30_or_60_is_kept():
    schedule = compute_payout(O.EXPRESS, date(2026, 1, 5))  # + 30 = Wednesday 04/02
    assert schedule.payout_date == date(2026, 2, 4)
    assert (schedule.shift, schedule.skipped, schedule.shifted) == (Shift.NONE, (), False)
    assert explain_payout(schedule).endswith("30 jours plus tard : le mercredi 04/02/2026.")


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


def test_only_flash_and_immediate_still_move_later_over_christmas():
    # The previous-business-day rule is Basic's and Express's only: Flash counts business days
    # (Thursday 24/12/2026: Monday 28, Tuesday 29, Wednesday 30), immediate payment on Noël
    # waits for the next business day.
    flash = compute_payout(O.FLASH, date(2026, 12, 24))
    assert (flash.payout_date, flash.shift) == (date(2026, 12, 30), Shift.NONE)
    assert [d.holiday for d in flash.skipped_holidays] == ["Noël"]
    immediate = compute_payout(O.IMMEDIATE, date(2026, 12, 25))
    assert (immediate.payout_date, immediate.shift) == (date(2026, 12, 28), Shift.NEXT_BUSINESS_DAY)
    assert immediate.legal_limit is None and not immediate.capped_by_legal_limit


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
    target = min(raw, limit)
    assert payout <= target  # never after the promised day, never after the cap
    # The latest business day on or before it: only non-business days lie after the payout.
    assert all(
        not is_business_day(target - timedelta(days=i)) for i in range((target - payout).days)
    )
    assert schedule.shift is (Shift.NONE if payout == raw else Shift.PREVIOUS_BUSINESS_DAY)
    # Capped only when the cap is what moved it: a business day lies between it and day N.
    assert schedule.capped_by_legal_limit == any(
        is_business_day(payout + timedelta(days=i)) for i in range(1, (raw - payout).days + 1)
    )


@pytest.mark.parametrize("offer", [O.BASIC, O.EXPRESS])
def test_every_validation_day_2025_to_2032_pays_a_business_day_never_late(offer):
    """Invoiced on the validation day, every day of 2025–2032: a business day, on or after
    the validation, never after the promised day 30 / 60 nor the legal cap, and the latest
    business day that is so (only non-business days between the payout and that day)."""
    delay = 60 if offer is O.BASIC else 30
    day = date(2025, 1, 1)
    while day <= date(2032, 12, 31):
        schedule = compute_payout(offer, day)
        payout = schedule.payout_date
        promised = day + timedelta(days=delay)
        assert payout is not None and is_business_day(payout), day
        assert day <= payout <= promised <= day + timedelta(days=LEGAL_MAX_PAYMENT_DAYS), day
        assert all(
            not is_business_day(payout + timedelta(days=i))
            for i in range(1, (promised - payout).days + 1)
        ), day
        assert not schedule.capped_by_legal_limit, day
        assert (schedule.shift is Shift.NONE) == (payout == promised), day
        day += timedelta(days=1)


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


# --- payout_terms: the one computation the validation stores, e-mails and carries ---------

TJM = Decimal("650.00")
DAYS = Decimal("18.5")
# 18.5 days at 650.00 (12,025.00), a 120.00 train ticket at 20 % VAT and 300.00 of on-call
# time: 12,445.00 excl. VAT, 2,489.00 VAT, 14,934.00 incl. VAT.
AMOUNTS = compute_invoice_amounts(
    tjm=TJM,
    days=DAYS,
    overtime=[Decimal("300.00")],
    expenses=[Expense(amount_excl_vat=Decimal("120.00"), vat_rate=Decimal("20"))],
)


def _terms(
    offer: O, validated: date, invoice_date: date | Literal["validation"] | None = "validation"
) -> PayoutTerms:
    invoice = validated if invoice_date == "validation" else invoice_date
    return payout_terms(offer, validated, invoice, AMOUNTS, tjm=TJM, days=DAYS)


@pytest.mark.parametrize(
    ("offer", "validated", "status", "payout", "fee"),
    [
        # Tuesday 2 March 2027: day 60 is Saturday 1 May (a holiday): Friday 30 April.
        (O.BASIC, date(2027, 3, 2), PayoutStatus.SCHEDULED, date(2027, 4, 30), "0.00"),
        # Thursday 8 January 2026: day 30 is Saturday 7 February, paid Friday 6 February.
        (O.EXPRESS, date(2026, 1, 8), PayoutStatus.SCHEDULED, date(2026, 2, 6), "300.63"),
        # Friday 10 July 2026: the 14 July holiday pushes it to Thursday 16.
        (O.FLASH, date(2026, 7, 10), PayoutStatus.SCHEDULED, date(2026, 7, 16), "601.25"),
        # Saturday 11 July 2026: the first business day on or after, Monday 13.
        (O.IMMEDIATE, date(2026, 7, 11), PayoutStatus.SCHEDULED, date(2026, 7, 13), "370.00"),
        (O.BACK_TO_BACK, date(2026, 7, 11), PayoutStatus.WAITING_CLIENT_PAYMENT, None, "0.00"),
    ],
)
def test_payout_terms_of_every_offer(offer, validated, status, payout, fee):
    terms = _terms(offer, validated)
    assert (terms.offer, terms.status, terms.payout_date) == (offer, status, payout)
    assert (terms.validated_on, terms.invoice_date) == (validated, validated)
    assert terms.client_due_on == validated + timedelta(days=30)
    # The fee is on the days of service only, never on expenses or on-call time.
    assert terms.fee == Decimal(fee) == offer_fee(offer, TJM, DAYS)
    assert terms.service_amount == Decimal("12025.00")
    assert (terms.amount_excl_vat, terms.vat_amount) == (Decimal("12445.00"), Decimal("2489.00"))
    assert terms.amount == Decimal("14934.00") == AMOUNTS.total_incl_vat
    assert terms.net_amount == terms.amount - terms.fee
    schedule = compute_payout(offer, validated)
    assert terms.schedule is not None
    assert terms.schedule.explanation == explain_payout(schedule)
    assert terms.schedule.raw_date == schedule.raw_date
    assert terms.schedule.shift == schedule.shift.value
    assert terms.schedule.capped_by_legal_limit == schedule.capped_by_legal_limit


def test_payout_terms_say_why_the_date_moved():
    flash = _terms(O.FLASH, date(2026, 7, 10)).schedule
    assert flash is not None and flash.skipped_holidays == ["2026-07-14 (Fête nationale)"]
    basic = _terms(O.BASIC, date(2027, 3, 2)).schedule
    assert basic is not None
    assert basic.shift == "previous_business_day" and not basic.capped_by_legal_limit
    assert basic.skipped_holidays == ["2027-05-01 (Fête du Travail)"]
    assert basic.legal_limit == date(2027, 5, 1)
    capped = _terms(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 12, 10)).schedule
    assert capped is not None
    assert capped.capped_by_legal_limit and capped.shift == "previous_business_day"
    assert capped.legal_limit == date(2026, 2, 8)


def test_payout_terms_count_the_legal_cap_from_the_invoice_date():
    # The issuer's latest invoice is dated two days after the validation: the cap moves too,
    # but never the payout past day 60 (Saturday 1 May 2027, a holiday: Friday 30 April).
    terms = _terms(O.BASIC, date(2027, 3, 2), invoice_date=date(2027, 3, 4))
    assert terms.payout_date == date(2027, 4, 30)
    assert terms.schedule is not None and terms.schedule.legal_limit == date(2027, 5, 3)
    assert terms.client_due_on == date(2027, 4, 3)
    # An invoice dated before the validation brings the cap, and the payout, earlier.
    early = _terms(O.BASIC, date(2027, 3, 2), invoice_date=date(2027, 2, 20))
    assert early.payout_date == date(2027, 4, 21)  # 20/02/2027 + 60 days, a Wednesday
    assert early.schedule is not None and early.schedule.capped_by_legal_limit


def test_payout_terms_refuse_an_invoice_that_leaves_no_business_day():
    with pytest.raises(DomainError, match="too early"):
        _terms(O.BASIC, date(2026, 1, 6), invoice_date=date(2025, 10, 1))


def test_payout_terms_with_expenses_only_beside_no_service():
    amounts = compute_invoice_amounts(
        tjm=TJM,
        days=Decimal("0"),
        expenses=[Expense(amount_excl_vat=Decimal("50.00"), vat_rate=Decimal("5.5"))],
    )
    terms = payout_terms(
        O.FLASH, date(2026, 6, 1), date(2026, 6, 1), amounts, tjm=TJM, days=Decimal("0")
    )
    assert (terms.amount, terms.fee, terms.net_amount) == (
        Decimal("52.75"),
        Decimal("0.00"),
        Decimal("52.75"),
    )


@pytest.mark.parametrize("offer", list(O))
def test_a_manual_import_leaves_the_terms_undated_until_the_import(offer):
    terms = _terms(offer, date(2026, 7, 10), invoice_date=None)
    assert terms.status is PayoutStatus.WAITING_INVOICE_IMPORT
    assert (terms.invoice_date, terms.client_due_on, terms.payout_date, terms.schedule) == (
        None,
        None,
        None,
        None,
    )
    assert (terms.amount, terms.fee) == (AMOUNTS.total_incl_vat, offer_fee(offer, TJM, DAYS))
    # Issued and imported on the 14 July holiday: the invoice is dated of its issue date.
    imported = imported_invoice_terms(terms, date(2026, 7, 14), date(2026, 7, 14))
    assert imported == _terms(offer, date(2026, 7, 10), invoice_date=date(2026, 7, 14))
    assert imported.client_due_on == date(2026, 8, 13)
    if offer is O.IMMEDIATE:
        assert imported.payout_date == date(2026, 7, 15)


def test_an_imported_invoice_is_dated_of_its_own_issue_date_not_of_its_import():
    """Validated Friday 10 July 2026, the invoice issued Tuesday 30 June, imported Monday 20
    July: the legal cap runs from 30 June (29 August, a Saturday: paid Friday 28 August, not
    on day 60 of the validation, 8 September), and so does the client's due date."""
    terms = _terms(O.BASIC, date(2026, 7, 10), invoice_date=None)
    imported = imported_invoice_terms(terms, date(2026, 6, 30), date(2026, 7, 20))
    assert imported == _terms(O.BASIC, date(2026, 7, 10), invoice_date=date(2026, 6, 30))
    assert imported.invoice_date == date(2026, 6, 30)
    assert imported.client_due_on == date(2026, 7, 30)
    assert imported.payout_date == date(2026, 8, 28)
    assert imported.schedule is not None and imported.schedule.capped_by_legal_limit
    assert imported.schedule.legal_limit == date(2026, 8, 29)
    # The import day would have given day 60 of the validation.
    assert compute_payout(O.BASIC, date(2026, 7, 10), date(2026, 7, 20)).payout_date == date(
        2026, 9, 8
    )


@pytest.mark.parametrize("offer", list(O))
def test_an_invoice_issued_on_its_import_day_is_accepted_and_after_it_refused(offer):
    terms = _terms(offer, date(2026, 7, 10), invoice_date=None)
    same_day = imported_invoice_terms(terms, date(2026, 7, 20), date(2026, 7, 20))
    assert same_day.invoice_date == date(2026, 7, 20)
    with pytest.raises(DomainError, match="dated 2026-07-21, after its import on 2026-07-20"):
        imported_invoice_terms(terms, date(2026, 7, 21), date(2026, 7, 20))


def test_an_imported_invoice_too_old_for_the_legal_cap_is_refused():
    """Issued 1 May 2026: its 60 days end on 30 June, before the validation of 10 July."""
    terms = _terms(O.EXPRESS, date(2026, 7, 10), invoice_date=None)
    with pytest.raises(DomainError, match="invoice date 2026-05-01 is too early"):
        imported_invoice_terms(terms, date(2026, 5, 1), date(2026, 7, 20))


def test_the_client_payment_term():
    assert CLIENT_PAYMENT_TERM.days == 30
    assert client_due_date(date(2026, 1, 31)) == date(2026, 3, 2)
    assert client_due_date(date(2026, 1, 31), timedelta(days=45)) == date(2026, 3, 17)
    terms = payout_terms(
        O.BASIC,
        date(2026, 1, 31),
        date(2026, 1, 31),
        AMOUNTS,
        tjm=TJM,
        days=DAYS,
        client_payment_term=timedelta(days=45),
    )
    assert terms.client_due_on == date(2026, 3, 17)


def test_back_to_back_pays_the_first_business_day_on_or_after_the_client_payment():
    assert back_to_back_payout_date(date(2026, 7, 10)) == date(2026, 7, 10)  # Friday
    assert back_to_back_payout_date(date(2026, 7, 11)) == date(2026, 7, 13)  # Saturday
    assert back_to_back_payout_date(date(2026, 7, 14)) == date(2026, 7, 15)  # Fête nationale


@given(st.sampled_from(list(O)), dates, st.integers(min_value=0, max_value=10))
def test_payout_terms_are_the_date_and_fee_rules(offer, validated, later):
    """The terms add no rule: the date is compute_payout's, the fee offer_fee's."""
    invoice = validated + timedelta(days=later)
    terms = _terms(offer, validated, invoice_date=invoice)
    assert terms.payout_date == compute_payout(offer, validated, invoice).payout_date
    assert terms.fee == offer_fee(offer, TJM, DAYS)
    assert terms.status is (
        PayoutStatus.WAITING_CLIENT_PAYMENT if offer is O.BACK_TO_BACK else PayoutStatus.SCHEDULED
    )
