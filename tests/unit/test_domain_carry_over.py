"""No negative invoice, no negative payout (issue 11 point 2): the pure carry-over rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.carry_over import explain_carry_over, month_invoice, nothing_to_collect, settle_payout
from domain.explanations import why_payout_not_arrived
from domain.payouts import payout_terms
from schemas.enums import CraStatus, PaymentOffer, PayoutStatus, VatRegime
from schemas.events import CraSubmitted
from schemas.payouts import CarriedBalance, CarryKind

TJM = Decimal("650.00")

FR_VAT = VatRegime.FRENCH_VAT


def cra(month: str, days: str, **lines: Any) -> CraSubmitted:
    return CraSubmitted.model_validate({"mission_id": "M-1", "month": month, "days": days, **lines})


def owed(kind: CarryKind, month: str, amount: str, number: str | None = None) -> CarriedBalance:
    return CarriedBalance(
        kind=kind, from_month=month, amount=Decimal(amount), invoice_number=number
    )


CORRECTION = {"label": "Trop facturé", "amount": "-1300.00", "corrects_month": "2026-10"}


def test_zero_days_and_a_larger_negative_correction_invoice_zero_and_carry_the_rest() -> None:
    month = month_invoice(cra("2026-11", "0", corrections=[CORRECTION]), TJM, regime=FR_VAT)
    assert month.amounts.total_excl_vat == Decimal("0.00")
    assert month.amounts.total_incl_vat == Decimal("0.00")  # not -1,560 €
    assert month.carried_out == Decimal("1300.00")
    closing = month.cra.corrections[-1]
    assert closing.label == "Solde négatif de novembre 2026 reporté sur la facture du mois suivant"
    assert closing.amount == Decimal("1300.00")


def test_the_next_month_opens_with_the_balance_naming_its_origin() -> None:
    carried = [owed(CarryKind.INVOICE, "2026-11", "1300.00", "F-123456789-000004")]
    month = month_invoice(cra("2026-12", "10"), TJM, regime=FR_VAT, carried=carried)
    line = month.cra.corrections[-1]
    assert line.label == (
        "Report du solde négatif de novembre 2026 (facture F-123456789-000004, CRA 2026-11)"
    )
    assert line.amount == Decimal("-1300.00")
    assert month.amounts.total_excl_vat == Decimal("5200.00")  # 6,500 - 1,300
    assert month.amounts.vat == Decimal("1040.00")
    assert month.carried_out == Decimal("0.00")


def test_a_month_that_absorbs_only_part_carries_the_remainder_again() -> None:
    carried = [owed(CarryKind.INVOICE, "2026-11", "1300.00", "F-1")]
    month = month_invoice(cra("2026-12", "1.5"), TJM, regime=FR_VAT, carried=carried)
    assert month.amounts.total_incl_vat == Decimal("0.00")
    assert month.carried_out == Decimal("325.00")  # 1,300 - 975


def test_a_correction_is_not_set_off_against_expenses_at_another_vat_rate() -> None:
    """Setting -300 € at 20 % off 200 € at 10 % would make the VAT negative (-40 + 20)."""
    expense = {"label": "Train", "amount": "200.00", "vat_rate": "10", "receipt_ref": "R-1"}
    correction = {**CORRECTION, "amount": "-300.00"}
    month = month_invoice(
        cra("2026-11", "0", corrections=[correction], expenses=[expense]),
        TJM,
        regime=FR_VAT,
    )
    assert month.carried_out == Decimal("300.00")
    assert month.amounts.total_excl_vat == Decimal("200.00")
    assert month.amounts.vat == Decimal("20.00")
    assert all(line.base >= 0 and line.vat >= 0 for line in month.amounts.vat_breakdown)


def test_under_the_vat_franchise_expenses_absorb_a_correction_too() -> None:
    expense = {"label": "Train", "amount": "200.00", "vat_rate": "10", "receipt_ref": "R-1"}
    correction = {**CORRECTION, "amount": "-300.00"}
    month = month_invoice(
        cra("2026-11", "0", corrections=[correction], expenses=[expense]),
        TJM,
        regime=VatRegime.FRANCHISE,
    )
    # The 200 € ticket cost the auto-entrepreneur 220 € (10 % VAT it cannot recover): billed
    # 220 €, which absorbs 220 € of the -300 €.
    assert month.amounts.total_incl_vat == Decimal("0.00")
    assert month.carried_out == Decimal("80.00")


def test_a_month_with_no_balance_is_invoiced_as_before() -> None:
    month = month_invoice(cra("2026-11", "10"), TJM, regime=FR_VAT)
    assert month.cra.corrections == []
    assert month.amounts.total_incl_vat == Decimal("7800.00")


def test_a_fee_larger_than_the_gross_pays_nothing_and_carries_the_shortfall() -> None:
    settled = settle_payout(Decimal("0.00"), Decimal("48.75"))
    assert (settled.net, settled.deducted, settled.carried_out) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("48.75"),
    )


def test_a_fee_balance_is_deducted_from_the_next_payout_never_below_zero() -> None:
    fee = [owed(CarryKind.FEE, "2026-11", "48.75")]
    invoice = [owed(CarryKind.INVOICE, "2026-11", "325.00")]  # not the payout's business
    settled = settle_payout(Decimal("7800.00"), Decimal("325.00"), [*fee, *invoice])
    assert settled.net == Decimal("7426.25")  # 7,800 - 325 - 48.75
    assert settled.deducted == Decimal("48.75")
    small = settle_payout(Decimal("30.00"), Decimal("0.00"), fee)
    assert (small.net, small.carried_out) == (Decimal("0.00"), Decimal("18.75"))
    # net = gross - fee - deducted + carried out, the payouts row's CHECK
    assert small.net == Decimal("30.00") - 0 - small.deducted + small.carried_out


def test_explain_names_where_a_balance_comes_from_how_much_and_into_which_month() -> None:
    taken = CarriedBalance(
        kind=CarryKind.INVOICE,
        from_month="2026-11",
        amount=Decimal("1300.00"),
        invoice_number="F-1",
        into_month="2026-12",
    )
    out = CarriedBalance(kind=CarryKind.INVOICE, from_month="2026-12", amount=Decimal("325.00"))
    reasons = explain_carry_over("2026-12", [taken], [out])
    assert [r.code for r in reasons] == ["carried_in", "carried_out"]
    assert "novembre 2026 (facture F-1)" in reasons[0].message
    assert "1 300,00 €" in reasons[0].message and "décembre 2026" in reasons[0].message
    assert reasons[0].facts == {
        "kind": "invoice",
        "from_month": "2026-11",
        "into_month": "2026-12",
        "amount": "1300.00",
    }
    assert "325,00 €" in reasons[1].message
    assert "prochain mois validé" in reasons[1].message


def test_a_back_to_back_payout_of_a_zero_invoice_waits_for_no_client_payment() -> None:
    month = month_invoice(cra("2026-11", "0", corrections=[CORRECTION]), TJM, regime=FR_VAT)
    validated = date(2026, 12, 4)  # a Friday
    terms = payout_terms(
        PaymentOffer.BACK_TO_BACK, validated, validated, month.amounts, tjm=TJM, days=Decimal(0)
    )
    assert terms.status is PayoutStatus.WAITING_CLIENT_PAYMENT
    dated = nothing_to_collect(terms)
    assert dated.status is PayoutStatus.SCHEDULED
    assert dated.payout_date == date(2026, 12, 4)
    assert dated.net_amount == Decimal("0.00")
    paid_later = month_invoice(cra("2026-11", "1"), TJM, regime=FR_VAT).amounts
    owed_by_client = payout_terms(
        PaymentOffer.BACK_TO_BACK, validated, validated, paid_later, tjm=TJM, days=Decimal(1)
    )
    assert nothing_to_collect(owed_by_client) == owed_by_client


def test_explain_says_a_zero_payout_wired_nothing() -> None:
    reasons = why_payout_not_arrived(
        month="2026-11",
        today=date(2026, 12, 10),
        offer=PaymentOffer.FLASH,
        cra_status=CraStatus.VALIDATED,
        validated_on=date(2026, 12, 1),
        invoice_number="F-1",
        payout_status=PayoutStatus.PAID,
        payout_date=date(2026, 12, 4),
        paid_on=date(2026, 12, 4),
        net_amount=Decimal("0.00"),
    )
    [paid] = [r for r in reasons if r.code == "paid"]
    assert paid.message.startswith("Aucun virement de la facture F-1")
    assert "effectué" not in paid.message
