"""Renewal and early termination rules (domain/renewals.py), with worked examples."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.errors import IneligibleOffer
from domain.proposals import NotApplicable
from domain.renewals import (
    check_declinable,
    check_renewal_offer,
    check_renewal_request,
    check_renewal_step,
    check_termination,
    earliest_termination,
    renewed_period_start,
)
from schemas.enums import MissionStage, PaymentOffer, RenewalStep

END = date(2027, 5, 31)


def test_a_renewal_is_requested_while_in_progress_for_a_later_end() -> None:
    check_renewal_request(MissionStage.IN_PROGRESS, END, date(2027, 11, 30), Decimal("700"))
    with pytest.raises(NotApplicable, match="after the current end date 2027-05-31"):
        check_renewal_request(MissionStage.IN_PROGRESS, END, END, None)
    with pytest.raises(NotApplicable, match="no other renewal is pending"):
        check_renewal_request(MissionStage.RENEWAL_PENDING, END, date(2027, 11, 30), None)
    with pytest.raises(NotApplicable, match="mission is completed"):
        check_renewal_request(MissionStage.COMPLETED, END, date(2027, 11, 30), None)
    with pytest.raises(NotApplicable, match="greater than zero"):
        check_renewal_request(MissionStage.IN_PROGRESS, END, date(2027, 11, 30), Decimal("0"))


def test_steps_go_requested_accepted_validated() -> None:
    check_renewal_step(RenewalStep.REQUESTED, RenewalStep.REQUESTED, "accept the renewal")
    with pytest.raises(NotApplicable, match="no renewal is pending"):
        check_renewal_step(None, RenewalStep.REQUESTED, "accept the renewal")
    with pytest.raises(NotApplicable, match="is requested, this applies when it is accepted"):
        check_renewal_step(RenewalStep.REQUESTED, RenewalStep.ACCEPTED, "validate the renewal")


def test_the_offer_changes_only_to_an_eligible_one() -> None:
    today = date(2026, 11, 27)
    # No choice, or the same: the current offer stays, even a legacy one.
    assert (
        check_renewal_offer(None, PaymentOffer.BACK_TO_BACK, today, "FR")
        is PaymentOffer.BACK_TO_BACK
    )
    # A French provider's renewal is a new contract: it may switch to fixed dates.
    assert (
        check_renewal_offer(PaymentOffer.FLASH, PaymentOffer.BACK_TO_BACK, today, "FR")
        is PaymentOffer.FLASH
    )
    with pytest.raises(IneligibleOffer, match="contracts signed before 2025-04-28"):
        check_renewal_offer(PaymentOffer.BACK_TO_BACK, PaymentOffer.BASIC, today, "FR")
    with pytest.raises(IneligibleOffer, match="outside France"):
        check_renewal_offer(PaymentOffer.EXPRESS, PaymentOffer.BACK_TO_BACK, today, "FI")


def test_a_validated_renewal_cannot_be_declined() -> None:
    check_declinable(RenewalStep.ACCEPTED)
    with pytest.raises(NotApplicable, match=r"mission\.terminated instead"):
        check_declinable(RenewalStep.VALIDATED)
    with pytest.raises(NotApplicable, match="no renewal is pending"):
        check_declinable(None)


def test_termination_never_cuts_into_a_validated_or_open_month() -> None:
    start = date(2027, 1, 4)
    assert earliest_termination(start, [], []) == start
    # January validated, February open: the earliest end is February 1st.
    months = ["2027-01", "2027-02"]
    assert earliest_termination(start, months, ["2027-01"]) == date(2027, 2, 1)
    # Both validated: not before the end of February.
    assert earliest_termination(start, months, months) == date(2027, 2, 28)
    check_termination(MissionStage.IN_PROGRESS, END, date(2027, 2, 15), start, months, [])
    with pytest.raises(NotApplicable, match="2027-02-28 at the earliest"):
        check_termination(MissionStage.IN_PROGRESS, END, date(2027, 2, 15), start, months, months)
    with pytest.raises(NotApplicable, match="before the current end date"):
        check_termination(MissionStage.IN_PROGRESS, END, END, start, months, [])
    with pytest.raises(NotApplicable, match="it is legal_verification"):
        check_termination(MissionStage.LEGAL_VERIFICATION, END, date(2027, 2, 15), start, [], [])


def test_the_renewed_period_starts_the_day_after_the_end() -> None:
    assert renewed_period_start(date(2027, 2, 28)) == date(2027, 3, 1)
    assert renewed_period_start(date(2028, 2, 28)) == date(2028, 2, 29)
