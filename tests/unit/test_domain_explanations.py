"""domain.explanations: every reason support can read, with the facts it rests on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.explanations import Explanation, why_cra_not_visible, why_payout_not_arrived
from domain.payouts import compute_payout
from schemas.enums import CraStatus, MissionStage, PaymentOffer, PayoutStatus

TODAY = date(2026, 7, 13)


def codes(reasons: list[Explanation]) -> list[str]:
    return [reason.code for reason in reasons]


def cra_reason(
    stage: MissionStage, start_date: date, month: str, **facts: Any
) -> Explanation | None:
    """Why `month`'s CRA is not visible, asked on TODAY."""
    return why_cra_not_visible(
        stage=stage, start_date=start_date, month=month, today=TODAY, **facts
    )


def june_payout(offer: PaymentOffer | None, **facts: Any) -> list[Explanation]:
    """Why June 2026's payout has not arrived, asked on TODAY."""
    return why_payout_not_arrived(month="2026-06", today=TODAY, offer=offer, **facts)


def validated_june(
    offer: PaymentOffer, validated_on: date = date(2026, 7, 1), **facts: Any
) -> list[Explanation]:
    """The same, June's CRA validated on `validated_on`."""
    return june_payout(offer, cra_status=CraStatus.VALIDATED, validated_on=validated_on, **facts)


# --- CRA visibility ---------------------------------------------------------------------------


def test_visible_cra_has_no_reason() -> None:
    assert cra_reason(MissionStage.IN_PROGRESS, date(2026, 7, 1), "2026-07", cra_open=True) is None


def test_contracting_in_progress_at_the_client() -> None:
    reason = cra_reason(MissionStage.LEGAL_VERIFICATION, date(2026, 8, 3), "2026-08")
    assert reason is not None
    assert reason.code == "contracting_in_progress"
    assert "la contractualisation est en cours chez le client" in reason.message
    assert "03/08/2026" in reason.message
    assert reason.facts["stage"] == "legal_verification"


def test_proposal_not_retained_yet() -> None:
    reason = cra_reason(MissionStage.QUALIFICATION, date(2026, 8, 3), "2026-08")
    assert reason is not None and reason.code == "contracting_not_begun"


def test_mission_not_started_names_the_start_date() -> None:
    reason = cra_reason(MissionStage.TO_START, date(2026, 9, 1), "2026-09")
    assert reason is not None
    assert reason.code == "mission_not_started"
    assert "la mission n'a pas démarré (elle démarre le 01/09/2026)" in reason.message


def test_renewal_awaiting_validation() -> None:
    for stage, flag in ((MissionStage.RENEWAL_PENDING, False), (MissionStage.IN_PROGRESS, True)):
        reason = cra_reason(stage, date(2026, 1, 5), "2026-07", renewal_pending=flag)
        assert reason is not None and reason.code == "renewal_pending"
        assert "validation du prestataire ou du client" in reason.message


def test_in_progress_months_outside_or_not_begun() -> None:
    outside = cra_reason(
        MissionStage.IN_PROGRESS, date(2026, 3, 2), "2026-02", end_date=date(2026, 12, 31)
    )
    assert outside is not None and outside.code == "not_a_mission_month"
    future = cra_reason(MissionStage.IN_PROGRESS, date(2026, 3, 2), "2026-08")
    assert future is not None and future.code == "month_not_begun"
    assert "01/08/2026" in future.message
    missing = cra_reason(MissionStage.IN_PROGRESS, date(2026, 3, 2), "2026-07")
    assert missing is not None and missing.code == "cycle_not_open"
    closed = cra_reason(MissionStage.CANCELLED, date(2026, 3, 2), "2026-07")
    assert closed is not None and closed.code == "mission_closed"


# --- Payout -----------------------------------------------------------------------------------


def test_cra_not_validated() -> None:
    submitted = june_payout(
        PaymentOffer.BASIC, cra_status=CraStatus.SUBMITTED, submitted_on=date(2026, 6, 30)
    )
    assert codes(submitted) == ["cra_not_validated"]
    assert "soumis le 30/06/2026" in submitted[0].message
    rejected = june_payout(
        PaymentOffer.BASIC, cra_status=CraStatus.REJECTED, rejection_comment="2 jours en trop"
    )
    assert "« 2 jours en trop »" in rejected[0].message
    none = june_payout(None, cra_status=None)
    assert codes(none) == ["cra_not_validated"] and none[0].facts["cra_status"] == "none"
    draft = june_payout(None, cra_status=CraStatus.DRAFT)
    assert "pas encore soumis" in draft[0].message


def test_a_draft_cra_that_cannot_be_submitted_yet_says_the_day_it_opens() -> None:
    """Days not yet worked are not billed: July's CRA opens on its last business day."""
    july = why_payout_not_arrived(
        month="2026-07",
        today=TODAY,
        offer=PaymentOffer.FLASH,
        cra_status=CraStatus.DRAFT,
        submission_opens=date(2026, 7, 31),
    )
    assert codes(july) == ["cra_not_validated"]
    assert "qu'à partir du 31/07/2026" in july[0].message, july[0].message
    assert july[0].facts["submission_opens_on"] == "2026-07-31"
    # Once open (June's opened on 30 June), only "not submitted yet".
    june = june_payout(None, cra_status=CraStatus.DRAFT, submission_opens=date(2026, 6, 30))
    assert "à partir du" not in june[0].message and "submission_opens_on" not in june[0].facts


def test_flash_shifted_by_weekend_and_the_14_july() -> None:
    schedule = compute_payout(PaymentOffer.FLASH, date(2026, 7, 10))
    assert schedule.payout_date == date(2026, 7, 16)
    reasons = validated_june(
        PaymentOffer.FLASH,
        date(2026, 7, 10),
        invoice_number="F-000001",
        payout_status=PayoutStatus.SCHEDULED,
        payout_date=schedule.payout_date,
    )
    assert codes(reasons) == ["cra_validated_late", "flash_shifted", "due_date_not_reached"]
    flash = reasons[1]
    assert "vendredi 10/07/2026" in flash.message
    assert "jeudi 16/07/2026" in flash.message
    assert "le 14/07 est férié : Fête nationale" in flash.message
    assert "week-end (11/07, 12/07)" in flash.message
    assert "2026-07-14 (Fête nationale)" in flash.facts["skipped"]
    assert reasons[0].facts["days_after_month_end"] == "10"


def test_basic_fixed_delay_running_until_its_date() -> None:
    schedule = compute_payout(PaymentOffer.BASIC, date(2026, 7, 2))
    assert schedule.payout_date is not None
    reasons = validated_june(
        PaymentOffer.BASIC,
        date(2026, 7, 2),
        payout_status=PayoutStatus.SCHEDULED,
        payout_date=schedule.payout_date,
        raw_date=schedule.raw_date,
    )
    assert codes(reasons)[0] == "fixed_delay_running"
    assert "délai fixe de 60 jours" in reasons[0].message
    assert "02/07/2026" in reasons[0].message
    assert reasons[0].facts["payout_date"] == schedule.payout_date.isoformat()
    assert "due_date_not_reached" in codes(reasons)


def scheduled_june(
    offer: PaymentOffer, validated_on: date, invoice_date: date | None = None
) -> list[Explanation]:
    """June's reasons for a payout scheduled as `compute_payout` dates it, with its facts."""
    schedule = compute_payout(offer, validated_on, invoice_date)
    return validated_june(
        offer,
        validated_on,
        invoice_date=schedule.invoice_date,
        payout_status=PayoutStatus.SCHEDULED,
        payout_date=schedule.payout_date,
        raw_date=schedule.raw_date,
        legal_limit=schedule.legal_limit,
        capped_by_legal_limit=schedule.capped_by_legal_limit,
    )


def test_express_date_brought_back_off_a_weekend() -> None:
    # 2026-07-03 + 30 days = Sunday 2026-08-02 → Friday 2026-07-31, never after day 30.
    assert compute_payout(PaymentOffer.EXPRESS, date(2026, 7, 3)).payout_date == date(2026, 7, 31)
    reasons = scheduled_june(PaymentOffer.EXPRESS, date(2026, 7, 3))
    assert codes(reasons) == ["fixed_delay_running", "date_shifted", "due_date_not_reached"]
    assert reasons[1].message == (
        "Offre Express : la date théorique du dimanche 02/08/2026 n'est pas un jour ouvré (le "
        "week-end (01/08, 02/08)), paiement avancé au jour ouvré précédent, le vendredi "
        "31/07/2026 (jamais après la date promise)."
    )
    assert "legal_limit" not in reasons[1].facts
    assert reasons[1].facts["raw_date"] == "2026-08-02"


def test_express_brought_back_before_christmas() -> None:
    # The example as support reads it: validated Wednesday 25/11/2026 (the helper's
    # CRA is June's, so it also counts as validated late; only the date's reason matters).
    reasons = scheduled_june(PaymentOffer.EXPRESS, date(2026, 11, 25))
    shifted = next(reason for reason in reasons if reason.code == "date_shifted")
    assert "vendredi 25/12/2026 n'est pas un jour ouvré (le 25/12 est férié : Noël)" in (
        shifted.message
    )
    assert "avancé au jour ouvré précédent, le jeudi 24/12/2026" in shifted.message


def test_legal_cap_on_a_business_day_is_not_called_a_non_business_day() -> None:
    # Invoice dated 20/06/2026, validated 03/07: the cap, Wednesday 19/08/2026, comes before
    # day 60 (Tuesday 01/09, a business day): the cap moved the date, not a weekend.
    reasons = scheduled_june(PaymentOffer.BASIC, date(2026, 7, 3), date(2026, 6, 20))
    shifted = next(reason for reason in reasons if reason.code == "date_shifted")
    assert "n'est pas un jour ouvré" not in shifted.message
    assert shifted.message == (
        "Offre Basic : la date théorique du mardi 01/09/2026 dépasse la limite légale de 60 "
        "jours après la facture (art. L441-10 du Code de commerce), le mercredi 19/08/2026 : "
        "paiement avancé à cette limite, le mercredi 19/08/2026."
    )
    assert shifted.facts["legal_limit"] == "2026-08-19"
    assert shifted.facts["invoice_date"] == "2026-06-20"


def test_legal_cap_on_a_holiday_then_the_previous_business_day() -> None:
    # Invoice dated 16/06/2026: the cap is Saturday 15/08 (Assomption): paid Friday 14/08.
    reasons = scheduled_june(PaymentOffer.BASIC, date(2026, 7, 3), date(2026, 6, 16))
    shifted = next(reason for reason in reasons if reason.code == "date_shifted")
    assert shifted.message == (
        "Offre Basic : la date théorique du mardi 01/09/2026 dépasse la limite légale de 60 "
        "jours après la facture (art. L441-10 du Code de commerce), le samedi 15/08/2026, qui "
        "n'est pas un jour ouvré (le 15/08 est férié : Assomption) : paiement avancé au jour "
        "ouvré précédent, le vendredi 14/08/2026."
    )


def test_immediate_payment_on_a_saturday_is_moved_to_the_next_business_day() -> None:
    reasons = scheduled_june(PaymentOffer.IMMEDIATE, date(2026, 7, 11))
    shifted = next(reason for reason in reasons if reason.code == "date_shifted")
    assert shifted.message == (
        "Offre paiement immédiat : la date théorique du samedi 11/07/2026 n'est pas un jour "
        "ouvré (le week-end (11/07, 12/07)), paiement reporté au jour ouvré suivant, le lundi "
        "13/07/2026."
    )


def test_back_to_back_waits_for_the_client_payment_of_the_invoice() -> None:
    reasons = validated_june(
        PaymentOffer.BACK_TO_BACK,
        invoice_number="F-000001",
        payout_status=PayoutStatus.WAITING_CLIENT_PAYMENT,
    )
    assert codes(reasons) == ["client_not_paid"]
    assert "le client n'a pas encore payé la facture F-000001" in reasons[0].message
    assert reasons[0].facts["invoice_number"] == "F-000001"


def test_back_to_back_partly_paid_says_how_much_is_still_due() -> None:
    reasons = validated_june(
        PaymentOffer.BACK_TO_BACK,
        invoice_number="F-000001",
        payout_status=PayoutStatus.WAITING_CLIENT_PAYMENT,
        client_paid=Decimal("4000.00"),
        client_still_due=Decimal("10574.00"),
    )
    assert codes(reasons) == ["client_partly_paid"]
    assert "le client a réglé 4 000,00 € de la facture F-000001" in reasons[0].message
    assert "il reste 10 574,00 € à payer" in reasons[0].message
    assert reasons[0].facts["client_still_due"] == "10574.00"


def test_manual_import_invoice_not_imported() -> None:
    reasons = validated_june(
        PaymentOffer.EXPRESS, payout_status=PayoutStatus.WAITING_INVOICE_IMPORT
    )
    assert codes(reasons) == ["invoice_not_imported"]
    assert "import manuel" in reasons[0].message


def test_already_paid_names_the_date_and_amount() -> None:
    reasons = validated_june(
        PaymentOffer.FLASH,
        invoice_number="F-000002",
        payout_status=PayoutStatus.PAID,
        payout_date=date(2026, 7, 6),
        paid_on=date(2026, 7, 6),
        net_amount=Decimal("9500.00"),
    )
    assert codes(reasons) == ["paid"]
    assert "lundi 06/07/2026" in reasons[0].message
    assert "9 500,00 € net" in reasons[0].message


def test_due_date_passed_and_other_states() -> None:
    overdue = validated_june(
        PaymentOffer.FLASH, payout_status=PayoutStatus.SCHEDULED, payout_date=date(2026, 7, 6)
    )
    assert codes(overdue) == ["flash_shifted", "payout_overdue"]
    cancelled = validated_june(
        PaymentOffer.FLASH, invoice_number="F-000003", payout_status=PayoutStatus.CANCELLED
    )
    assert "F-000003" in cancelled[0].message
    missing = validated_june(PaymentOffer.FLASH)
    assert codes(missing) == ["payout_not_started"]
