"""VAT follows where the provider is established (docs/domain-rules.md, "VAT regimes"): the
regime, the VAT numbers, the amounts paid, what the gateway refuses, and the documents of
every regime × offer, invoice and credit note, against the EN 16931 and French CTC
schematrons."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from pypdf import PdfReader

from activities.billing_documents import (
    credit_note_cii_xml,
    invoice_cii_xml,
    render_facturx_pdf,
)
from domain.billing_documents import client_party, invoice_document_for_cra, party
from domain.errors import DomainError
from domain.invoices import Expense, compute_invoice_amounts
from domain.payouts import payout_terms
from domain.vat import french_vat_number, provider_vat_number, vat_regime
from schemas.billing import CreditNoteDocument, InvoiceDocument, Party
from schemas.enums import PaymentOffer, VatRegime
from schemas.events import (
    CraSubmitted,
    ExpenseLine,
    PostalAddress,
    ProposalSubmitted,
    Registration,
)
from starter.gateway.events import parse_event
from tests.support.einvoice import compile_schematrons
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import parse_errors

R = VatRegime


@pytest.mark.parametrize(
    ("country", "franchise", "regime"),
    [
        ("FR", False, R.FRENCH_VAT),
        ("FR", True, R.FRANCHISE),
        ("PT", False, R.REVERSE_CHARGE_EU),
        ("FI", False, R.REVERSE_CHARGE_EU),
        ("GR", False, R.REVERSE_CHARGE_EU),
        ("CH", False, R.REVERSE_CHARGE_NON_EU),
        ("US", False, R.REVERSE_CHARGE_NON_EU),
        ("GB", False, R.REVERSE_CHARGE_NON_EU),
    ],
)
def test_the_regime_follows_the_country(country: str, franchise: bool, regime: R) -> None:
    assert vat_regime(country, franchise) is regime


def test_the_franchise_is_french() -> None:
    with pytest.raises(DomainError, match=r"293 B.*established in PT"):
        vat_regime("PT", True)


def test_vat_numbers() -> None:
    # France: derived from the SIREN (the key python-stdnum checks), or checked when sent.
    assert provider_vat_number("FR", "303265045", None, vat_franchise=False) == "FR40303265045"
    assert provider_vat_number("FR", "303265045", "fr 40 303265045", vat_franchise=False) == (
        "FR40303265045"
    )
    with pytest.raises(DomainError, match="not the VAT number of SIREN 200780963"):
        provider_vat_number("FR", "200780963", "FR40303265045", vat_franchise=False)
    assert provider_vat_number("FR", "518554019", None, vat_franchise=True) is None
    # Another EU state: required and valid there; Greece's numbers start with EL.
    assert provider_vat_number("PT", "552081317", "PT 501 964 843", vat_franchise=False) == (
        "PT501964843"
    )
    with pytest.raises(DomainError, match="required for a provider established in PT"):
        provider_vat_number("PT", "552081317", None, vat_franchise=False)
    with pytest.raises(DomainError, match="not a valid VAT number of PT"):
        provider_vat_number("PT", "552081317", "PT501964844", vat_franchise=False)
    with pytest.raises(DomainError, match="must start with PT"):
        provider_vat_number("PT", "552081317", "FI20774740", vat_franchise=False)
    with pytest.raises(DomainError, match="starting with EL"):
        provider_vat_number("GR", "552081317", None, vat_franchise=False)
    # Outside the EU: optional.
    assert provider_vat_number("CH", "552081317", None, vat_franchise=False) is None
    assert provider_vat_number("CH", "552081317", "che-116.281.710", vat_franchise=False) == (
        "CHE-116.281.710"
    )


def test_a_portuguese_provider_is_paid_what_its_invoice_says_no_french_vat() -> None:
    """20 days at 500 €: the invoice is 10,000 € with no VAT (reverse charge); the payout was
    12,000 € minus the fee, 2,000 € that no one owed."""
    amounts = compute_invoice_amounts(
        tjm=D("500"), days=D("20"), regime=vat_regime("PT", vat_franchise=False)
    )
    assert (amounts.total_excl_vat, amounts.vat, amounts.total_incl_vat) == (
        D("10000.00"),
        D("0.00"),
        D("10000.00"),
    )
    assert amounts.vat_mention is not None and amounts.vat_mention.startswith("Autoliquidation")
    terms = payout_terms(
        PaymentOffer.IMMEDIATE, date(2026, 7, 10), date(2026, 7, 10), amounts, tjm=D("500"),
        days=D("20"),
    )  # fmt: skip
    assert terms.amount == D("10000.00") and terms.vat_amount == 0
    assert terms.net_amount == D("10000.00") - terms.fee


def test_expenses_under_each_regime() -> None:
    """A 100 € train ticket excl. VAT at 20 %: a French provider bills 100 € + 20 % VAT; an
    auto-entrepreneur, who cannot recover the 20 €, bills its cost, 120 €, with no VAT; a
    provider abroad bills 100 €, reverse-charged."""
    ticket = [Expense(amount_excl_vat=D("100.00"), vat_rate=D("20"))]

    def billed(regime: R) -> tuple[D, D]:
        amounts = compute_invoice_amounts(tjm=D("1"), days=D("0"), expenses=ticket, regime=regime)
        return amounts.expenses, amounts.total_incl_vat

    assert billed(R.FRENCH_VAT) == (D("100.00"), D("120.00"))
    assert billed(R.FRANCHISE) == (D("120.00"), D("120.00"))
    assert billed(R.REVERSE_CHARGE_EU) == (D("100.00"), D("100.00"))
    assert billed(R.REVERSE_CHARGE_NON_EU) == (D("100.00"), D("100.00"))


# --- At the gateway: a clear 422 -------------------------------------------------------------


def _abroad(country: str, **extra: Any) -> dict[str, Any]:
    data = proposal_submitted()
    provider = data["provider"]
    provider.pop("registration")
    provider.update(country=country, **extra)
    provider["address"] = {
        "lines": ["Rua Augusta 100"],
        "postal_code": "1100-053",
        "city": "Lisboa",
        "country": country,
    }
    return data


@pytest.mark.parametrize(
    ("data", "loc", "says"),
    [
        (_abroad("PT"), "data.provider.vat_number", "required for a provider established in PT"),
        (_abroad("PT", vat_number="PT123"), "data.provider.vat_number", "not a valid VAT number"),
        (
            _abroad(
                "PT", vat_number="PT501964843", legal_form="auto_entrepreneur", vat_franchise=True
            ),
            "data.provider.vat_franchise",
            "293 B du CGI) is French",
        ),
    ],
)
def test_the_gateway_refuses_a_vat_number_that_cannot_be_printed(
    data: dict[str, Any], loc: str, says: str
) -> None:
    errors = parse_errors(data)
    assert says in errors[loc], errors


def test_the_gateway_requires_a_french_company_s_registration_and_the_client_s() -> None:
    data = proposal_submitted()
    del data["provider"]["registration"]
    del data["client"]["registration"]
    errors = parse_errors(data)
    assert "RCS city" in errors["data.provider.registration"]
    assert errors["data.client.registration"] == "Field required"


def test_an_eu_provider_s_vat_number_is_kept_compact() -> None:
    raw = json.dumps(
        envelope("proposal.submitted", _abroad("PT", vat_number="pt 501 964 843"))
    ).encode()
    payload = parse_event(raw).payload
    assert isinstance(payload, ProposalSubmitted)
    assert payload.provider.vat_number == "PT501964843"


# --- Documents of every regime × offer, invoice and credit note -----------------------------

ADDRESSES = {
    "FR": PostalAddress(lines=["8 quai Saint-Vincent"], postal_code="69001", city="Lyon",
                        country="FR"),
    "PT": PostalAddress(lines=["Rua Augusta 100"], postal_code="1100-053", city="Lisboa",
                        country="PT"),
    "CH": PostalAddress(lines=["Bahnhofstrasse 1"], postal_code="8001", city="Zürich",
                        country="CH"),
}  # fmt: skip
SELLERS: dict[R, Party] = {
    R.FRENCH_VAT: party(
        "Durand Conseil", "200780963", ADDRESSES["FR"],
        vat_number=french_vat_number("200780963"),
        registration=Registration(form="SARL", share_capital=D("10000.00"), rcs_city="Lyon"),
    ),
    R.FRANCHISE: party(
        "Léa Petit", "518554019", ADDRESSES["FR"], vat_number=None, individual_entrepreneur=True
    ),
    R.REVERSE_CHARGE_EU: party(
        "Lisboa Dev Lda", "552081317", ADDRESSES["PT"], vat_number="PT501964843"
    ),
    R.REVERSE_CHARGE_NON_EU: party("Alpes Data AG", "847144854", ADDRESSES["CH"], vat_number=None),
}  # fmt: skip
BUYER = client_party(
    "Acme Industries",
    "325437259",
    PostalAddress(lines=["12 rue de la Paix"], postal_code="75002", city="Paris", country="FR"),
    Registration(form="SA", share_capital=D("1200000.00"), rcs_city="Paris"),
)
CRA = CraSubmitted(
    mission_id="M-42",
    month="2026-07",
    days=D("20"),
    expenses=[
        ExpenseLine(label="Train Paris-Lyon", amount=D("100.00"), vat_rate="20", receipt_ref="R-1")
    ],
)
VALIDATED = date(2026, 8, 3)


def _invoice(regime: R, offer: PaymentOffer) -> InvoiceDocument:
    """The month's invoice as the validation issues it under `offer` (its due date is the
    client's term from the invoice date that payout_terms computes)."""
    amounts = compute_invoice_amounts(
        tjm=D("500"),
        days=CRA.days,
        expenses=[Expense(amount_excl_vat=D("100.00"), vat_rate=D("20"))],
        regime=regime,
    )
    terms = payout_terms(offer, VALIDATED, VALIDATED, amounts, tjm=D("500"), days=CRA.days)
    assert terms.invoice_date is not None and terms.client_due_on is not None
    doc = invoice_document_for_cra(
        CRA,
        D("500"),
        number="F-2026-000042",
        issued_on=terms.invoice_date,
        due_on=terms.client_due_on,
        seller=SELLERS[regime],
        buyer=BUYER,
        regime=regime,
    )
    assert doc.total_incl_vat == terms.amount  # the payout pays what the invoice says
    return doc


@pytest.fixture(scope="module")
def schematrons() -> Callable[[bytes], list[str]]:
    return compile_schematrons()


@pytest.mark.parametrize("offer", list(PaymentOffer))
@pytest.mark.parametrize("regime", list(R))
def test_every_regime_and_offer_passes_the_schematrons_invoice_and_credit_note(
    schematrons: Callable[[bytes], list[str]], regime: R, offer: PaymentOffer
) -> None:
    invoice = _invoice(regime, offer)
    credit_note = CreditNoteDocument.cancelling(
        invoice, number="AV-2026-000003", issued_on=date(2026, 8, 20), reason="Erreur de TJM"
    )
    assert schematrons(invoice_cii_xml(invoice)) == []
    assert schematrons(credit_note_cii_xml(credit_note)) == []


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.mark.parametrize(
    ("regime", "printed", "absent"),
    [
        (
            R.FRENCH_VAT,
            [
                "SARL au capital de 10 000,00 € · RCS Lyon",
                "Total TVA : 2 020,00 €",
                "N° TVA intracommunautaire : FR96325437259",
            ],
            ["Autoliquidation", "293 B"],
        ),
        (
            R.FRANCHISE,
            [
                "Léa Petit EI",
                "TVA non applicable, art. 293 B du CGI",
                "coût TTC, TVA non récupérable",
                "Net à payer : 10 120,00 €",
            ],
            ["Autoliquidation", "Total TVA"],
        ),
        (
            R.REVERSE_CHARGE_EU,
            [
                "Autoliquidation : TVA due par le preneur, art. 283-2 du CGI et art. 196 de la "
                "directive 2006/112/CE",
                "N° TVA intracommunautaire : PT501964843",
                "N° TVA intracommunautaire : FR96325437259",
                "Net à payer : 10 100,00 €",
                "PT",
            ],
            ["Total TVA", "293 B"],
        ),
        (
            R.REVERSE_CHARGE_NON_EU,
            [
                "Autoliquidation : TVA due par le preneur, art. 283-2 du CGI",
                "N° TVA intracommunautaire : FR96325437259",
                "Net à payer : 10 100,00 €",
            ],
            ["Total TVA", "directive 2006/112/CE"],
        ),
    ],
)
def test_each_regime_prints_its_mentions(regime: R, printed: list[str], absent: list[str]) -> None:
    text = _text(render_facturx_pdf(_invoice(regime, PaymentOffer.IMMEDIATE)))
    for mention in printed:
        assert mention in text, (mention, text)
    for mention in absent:
        assert mention not in text, (mention, text)
    assert "SA au capital de 1 200 000,00 € · RCS Paris" in text  # the client
