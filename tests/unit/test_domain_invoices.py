"""Invoice amounts: service, overtime, corrections, expenses per VAT rate, VAT franchise."""

from decimal import Decimal as D

import pytest

from domain.errors import InvalidAmount
from domain.invoices import (
    VAT_FRANCHISE_MENTION,
    Expense,
    VatLine,
    compute_invoice_amounts,
    invoice_amounts_for_cra,
    late_payment_mention,
    parse_vat_rate,
)
from schemas.enums import VatRegime
from schemas.events import CorrectionLine, CraSubmitted, ExpenseLine, OvertimeLine


def test_company_invoice_with_overtime_correction_and_mixed_vat_expenses():
    amounts = compute_invoice_amounts(
        tjm=D("650"),
        days=D("18.5"),
        overtime=[D("200.00")],
        corrections=[D("-325.00")],
        expenses=[
            Expense(D("100.00"), D("20")),  # hotel... at 20 %
            Expense(D("45.50"), D("10")),  # meal
            Expense(D("80.00"), D("5.5")),
            Expense(D("30.00"), D("0")),  # train abroad, no French VAT
        ],
    )
    assert amounts.service == D("12025.00")
    assert amounts.overtime == D("200.00")
    assert amounts.corrections == D("-325.00")
    assert amounts.expenses == D("255.50")
    assert amounts.total_excl_vat == D("12155.50")
    # 20 %: (12025 + 200 - 325 + 100) = 12000 → 2400.00; 10 %: 45.50 → 4.55;
    # 5.5 %: 80 → 4.40; 0 %: 30 → 0.
    assert amounts.vat_breakdown == (
        VatLine(D("20"), D("12000.00"), D("2400.00")),
        VatLine(D("10"), D("45.50"), D("4.55")),
        VatLine(D("5.5"), D("80.00"), D("4.40")),
        VatLine(D("0"), D("30.00"), D("0.00")),
    )
    assert amounts.vat == D("2408.95")
    assert amounts.total_incl_vat == D("14564.45")
    assert amounts.vat_mention is None


def test_vat_is_rounded_half_up_per_rate():
    amounts = compute_invoice_amounts(
        tjm=D("0"), days=D("0"), expenses=[Expense(D("0.10"), D("5.5"))]
    )
    assert amounts.vat == D("0.01")  # 0.0055 → 0.01


def test_auto_entrepreneur_under_293_b_charges_no_vat():
    amounts = compute_invoice_amounts(
        tjm=D("400"),
        days=D("10"),
        expenses=[Expense(D("50.00"), D("20"))],
        regime=VatRegime.FRANCHISE,
    )
    # The 50 € expense cost the auto-entrepreneur 60 € with VAT it cannot recover: billed 60 €.
    assert amounts.expenses == D("60.00")
    assert amounts.total_excl_vat == D("4060.00")
    assert amounts.vat == D("0.00")
    assert amounts.total_incl_vat == D("4060.00")
    assert amounts.vat_mention == VAT_FRANCHISE_MENTION == "TVA non applicable, art. 293 B du CGI"


def test_amounts_from_a_cra():
    cra = CraSubmitted(
        mission_id="M-1",
        month="2026-03",
        days=D("20"),
        expenses=[ExpenseLine(label="train", amount=D("100.00"), vat_rate="10", receipt_ref="r1")],
        overtime=[OvertimeLine(label="astreinte", amount=D("150.00"))],
        corrections=[CorrectionLine(label="oubli", amount=D("50.00"), corrects_month="2026-02")],
    )
    amounts = invoice_amounts_for_cra(cra, D("500"), regime=VatRegime.FRENCH_VAT)
    assert amounts.total_excl_vat == D("10300.00")
    assert amounts.vat == D("2050.00")  # 20 % × 10200 + 10 % × 100


def test_negative_overtime_or_expense_is_refused():
    with pytest.raises(InvalidAmount, match="overtime amount must not be negative"):
        compute_invoice_amounts(tjm=D("500"), days=D("1"), overtime=[D("-1")])
    with pytest.raises(InvalidAmount, match="expense amount must not be negative"):
        compute_invoice_amounts(tjm=D("500"), days=D("1"), expenses=[Expense(D("-1"), D("20"))])


def test_parse_vat_rate():
    assert parse_vat_rate("5.5") == D("5.5")
    assert parse_vat_rate("5,5") == D("5.5")
    with pytest.raises(InvalidAmount):
        parse_vat_rate("abc")
    with pytest.raises(InvalidAmount):
        parse_vat_rate("120")


def test_late_payment_mention_is_the_faq_sentence_by_default():
    assert late_payment_mention() == (
        "Tout retard de paiement donnera lieu, en plus des pénalités de retard (10 % par an), "
        "au versement d'une indemnité forfaitaire de 40€ pour frais de recouvrement"
    )


def test_late_payment_mention_with_another_rate():
    text = late_payment_mention(D("0.1215"))
    assert "(12,15 % par an)" in text
    assert "40€" in text
