"""Billing documents as bytes: the invoice (PDF and Factur-X), the credit note, the BPF.

Pure rendering, no database and no network: a `schemas.billing` model in, the file out. The
activity that stores the files calls these; the models are built by
`domain.billing_documents` from the validated CRA.

- PDFs are drawn with fpdf2 in Source Sans Pro (the `font-source-sans-pro` wheel, SIL OFL),
  embedded and subset: it has every French character and "€", and an embedded font is what
  PDF/A requires (the 14 core PDF fonts are Latin-1 only and never embedded).
- Factur-X: the EN 16931 CII XML is built here (`invoice_cii_xml`, `credit_note_cii_xml`),
  checked against the profile's XSD and embedded by the factur-x library into a PDF/A-3B
  drawn by fpdf2 in its PDF/A-3B compliance mode (embedded fonts, sRGB output intent);
  factur-x writes the XMP metadata (pdfaid 3B, the fx: extension schema) and attaches
  `factur-x.xml` with AFRelationship /Data.
- Deterministic: the same model gives the same bytes, so a retried activity rewrites an
  identical file. Every date written in the files (PDF creation date, XMP dates, the
  attachment's date) is the document's issue date at 00:00 UTC, the file identifier is
  derived from the document, and factur-x's "now" is pinned while it runs (under a lock).

Self-billed documents (the default: the platform issues the invoice on the provider's behalf,
art. 289 I-2 CGI) carry the "Autofacturation" mention (art. 242 nonies A I-13° CGI) and the
type codes 389 (self-billed invoice) and 261 (self-billed credit note); otherwise 380 / 381.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

import facturx
from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

from activities.pdf_fonts import FAMILY, add_source_sans_pro
from domain.billing_documents import month_fr
from domain.formatting import date_fr, money_fr, percent_fr
from domain.invoices import late_payment_mention
from domain.vat import exemption_code, vat_category, vat_mention
from schemas.billing import (
    BilledDocument,
    BpfDocument,
    CreditNoteDocument,
    InvoiceDocument,
    InvoiceLine,
    Party,
)

EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
"""BT-24 of the Factur-X EN 16931 (COMFORT) profile."""

BUSINESS_PROCESS_SERVICES = "S1"
"""BT-23, French CTC billing framework: invoice for services (S1)."""

NO_DISCOUNT_MENTION = "Pas d'escompte pour paiement anticipé."
"""L441-9: the discount conditions, here that there is none (note AAB in the XML)."""

_FONT = FAMILY
_GREY = (235, 235, 235)
_Compliance = Literal["PDF/A-3B"] | None

# --- Mentions -----------------------------------------------------------------------------


def self_billing_mention(doc: BilledDocument) -> str | None:
    """The self-billing mention (art. 242 nonies A I-13° and 289 I-2 CGI), if self-billed."""
    if doc.issued_by is None:
        return None
    issued = "avoir émis" if isinstance(doc, CreditNoteDocument) else "facture émise"
    return (
        f"Autofacturation : {issued} par {doc.issued_by} au nom et pour le compte de "
        f"{doc.seller.name}, en vertu d'un mandat de facturation."
    )


def recovery_indemnity_mention(indemnity: Decimal) -> str:
    return (
        "Indemnité forfaitaire pour frais de recouvrement due en cas de retard de paiement : "
        f"{money_fr(indemnity)} (art. L441-10 et D441-5 du Code de commerce)."
    )


def penalty_mention(doc: BilledDocument) -> str:
    """The FAQ's late-payment sentence with the document's rate and indemnity, and a period."""
    return late_payment_mention(doc.late_payment_rate, doc.recovery_indemnity) + "."


# --- PDF drawing --------------------------------------------------------------------------


def _at_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


class _Pdf(FPDF):
    """A4 portrait, Source Sans Pro, a footer with the document's name, a fixed date."""

    def __init__(self, *, title: str, footer: str, issued_on: date, compliance: _Compliance):
        super().__init__(orientation="P", unit="mm", format="A4", enforce_compliance=compliance)
        self._footer_text = footer
        self._identity = f"{footer}|{issued_on.isoformat()}|{compliance}".encode()
        self.set_creation_date(_at_midnight_utc(issued_on))
        self.set_title(title)
        self.set_author(footer)
        self.set_creator("contracting")
        self.set_lang("fr-FR")
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=True, margin=18)
        add_source_sans_pro(self)
        self.set_font(_FONT, size=9.5)
        self.alias_nb_pages()
        self.add_page()

    def file_id(self) -> str:
        # fpdf2 hashes the whole file, which in PDF/A mode holds an XMP packet stamped "now";
        # the document's identity is stable and unique enough for /ID.
        digest = hashlib.md5(self._identity, usedforsecurity=False).hexdigest().upper()
        return f"<{digest}><{digest}>"

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=7.5)
        self.cell(0, 4, f"{self._footer_text} · page {self.page_no()}/{{nb}}", align="C")
        self.set_font(_FONT, size=9.5)

    # Small drawing vocabulary -------------------------------------------------------------

    def title_line(self, text: str) -> None:
        self.set_font(_FONT, "B", 15)
        self.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=9.5)

    def paragraph(self, text: str, *, bold: bool = False, size: float = 9.5) -> None:
        self.set_font(_FONT, "B" if bold else "", size)
        self.multi_cell(0, 4.6, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=9.5)

    def facts(self, rows: Sequence[tuple[str, str]]) -> None:
        """Label : value lines."""
        for label, value in rows:
            self.set_font(_FONT, "B", 9.5)
            self.cell(48, 5, label)
            self.set_font(_FONT, size=9.5)
            self.multi_cell(0, 5, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def gap(self, height: float = 3) -> None:
        self.ln(height)

    def parties(self, left: tuple[str, Party], right: tuple[str, Party]) -> None:
        with self.table(
            col_widths=(1, 1),
            borders_layout=TableBordersLayout.NONE,
            headings_style=FontFace(emphasis="BOLD", fill_color=_GREY),
            text_align="LEFT",
            v_align="TOP",
            line_height=4.6,
            padding=(1, 2),
        ) as table:
            table.row([left[0], right[0]])
            table.row([_party_block(left[1]), _party_block(right[1])])

    def grid(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        align: Sequence[str],
        *,
        width: float | None = None,
    ) -> None:
        with self.table(
            width=width or self.epw,
            align="LEFT",
            col_widths=tuple(widths),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            headings_style=FontFace(emphasis="BOLD", fill_color=_GREY),
            text_align=tuple(align),
            line_height=4.6,
            padding=(1, 1.5),
        ) as table:
            table.row(list(headings))
            for row in rows:
                table.row(list(row))

    def totals(self, rows: Sequence[tuple[str, str]], *, last_bold: bool = True) -> None:
        for index, (label, value) in enumerate(rows):
            bold = last_bold and index == len(rows) - 1
            self.set_font(_FONT, "B" if bold else "", 10.5 if bold else 9.5)
            self.set_x(self.w - self.r_margin - 90)
            self.cell(55, 5.5, label, align="R")
            self.cell(35, 5.5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=9.5)

    def finish(self) -> bytes:
        return bytes(self.output())


def registration_mention(party: Party) -> str | None:
    """A company's legal form, share capital and RCS city (L441-9, R123-237 C. com.)."""
    if party.registration is None:
        return None
    r = party.registration
    return f"{r.form} au capital de {money_fr(r.share_capital)} · RCS {r.rcs_city}"


def _party_block(party: Party) -> str:
    lines = [party.display_name]
    registration = registration_mention(party)
    if registration:
        lines.append(registration)
    lines += [*party.address_lines, f"{party.postcode} {party.city}"]
    if party.country != "FR":
        lines.append(party.country)
    lines.append(f"SIREN : {party.siren}")
    if party.siret:
        lines.append(f"SIRET : {party.siret}")
    if party.vat_number:
        lines.append(f"N° TVA intracommunautaire : {party.vat_number}")
    return "\n".join(lines)


def _quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text.replace(".", ",")


def _rate(rate: Decimal) -> str:
    return percent_fr(rate / 100)


def _line_label(line: InvoiceLine) -> str:
    if line.receipt_ref:
        return f"{line.label} (justificatif {line.receipt_ref})"
    return line.label


def _lines_grid(pdf: _Pdf, lines: Sequence[InvoiceLine], *, with_vat: bool, sign: int = 1) -> None:
    """The lines table; without the VAT column under the franchise."""
    vat_column = [4] if with_vat else []
    columns = [0, 1, 2, 3, *vat_column, 5]
    headings = ["Désignation", "Qté", "Unité", "PU HT", "TVA", "Montant HT"]
    widths = [74.0, 14.0, 16.0, 24.0, 14.0, 28.0]
    if not with_vat:
        widths[0] += widths[4]
    align = ["LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT", "RIGHT"]
    rows = [
        [
            _line_label(line),
            _quantity(line.quantity),
            line.unit.label_fr,
            money_fr(line.unit_price_excl_vat),
            _rate(line.vat_rate),
            money_fr(sign * line.amount_excl_vat),
        ]
        for line in lines
    ]
    pdf.grid(
        [headings[i] for i in columns],
        [[row[i] for i in columns] for row in rows],
        [widths[i] for i in columns],
        [align[i] for i in columns],
    )


def _billed_header_facts(doc: BilledDocument) -> list[tuple[str, str]]:
    facts = [
        ("Date d'émission :", date_fr(doc.issued_on)),
        (
            "Période de prestation :",
            f"du {date_fr(doc.service_start)} au {date_fr(doc.service_end)}",
        ),
        ("Mission :", f"{doc.mission_id}, {month_fr(doc.month)} ({doc.month})"),
    ]
    if doc.purchase_order:
        facts.append(("Bon de commande :", doc.purchase_order))
    return facts


def _vat_section(pdf: _Pdf, doc: BilledDocument, *, sign: int = 1) -> None:
    mention = vat_mention(doc.vat_regime)
    if mention is not None:
        pdf.totals(
            [
                ("Total HT :", money_fr(sign * doc.total_excl_vat)),
                (
                    "Net à payer :" if sign > 0 else "Total de l'avoir :",
                    money_fr(sign * doc.total_incl_vat),
                ),
            ]
        )
        pdf.gap(2)
        pdf.paragraph(mention, bold=True)
        return
    pdf.grid(
        ["Taux de TVA", "Base HT", "Montant TVA"],
        [
            [_rate(v.rate), money_fr(sign * v.base), money_fr(sign * v.vat)]
            for v in doc.vat_breakdown
        ],
        [30, 40, 40],
        ["LEFT", "RIGHT", "RIGHT"],
        width=110,
    )
    pdf.gap(2)
    pdf.totals(
        [
            ("Total HT :", money_fr(sign * doc.total_excl_vat)),
            ("Total TVA :", money_fr(sign * doc.total_vat)),
            ("Total TTC :", money_fr(sign * doc.total_incl_vat)),
        ]
    )


def _invoice_pdf(doc: InvoiceDocument, compliance: _Compliance) -> bytes:
    kind = "Facture" if doc.issued_by is None else "Facture (autofacturation)"
    pdf = _Pdf(
        title=f"{kind} {doc.number}",
        footer=f"Facture {doc.number} · {doc.seller.name}",
        issued_on=doc.issued_on,
        compliance=compliance,
    )
    pdf.title_line(f"FACTURE N° {doc.number}")
    mention = self_billing_mention(doc)
    if mention:
        pdf.paragraph("AUTOFACTURATION", bold=True)
        pdf.paragraph(mention)
    pdf.gap()
    pdf.facts([*_billed_header_facts(doc), ("Date d'échéance :", date_fr(doc.due_on))])
    pdf.gap()
    pdf.parties(("Prestataire (vendeur)", doc.seller), ("Client (acheteur)", doc.buyer))
    pdf.gap()
    _lines_grid(pdf, doc.lines, with_vat=doc.vat_regime.charges_vat)
    pdf.gap()
    _vat_section(pdf, doc)
    pdf.gap()
    pdf.paragraph("Conditions de paiement", bold=True)
    pdf.paragraph(f"Paiement à l'échéance du {date_fr(doc.due_on)}. {NO_DISCOUNT_MENTION}")
    pdf.paragraph(penalty_mention(doc))
    pdf.paragraph(recovery_indemnity_mention(doc.recovery_indemnity))
    return pdf.finish()


def _credit_note_pdf(doc: CreditNoteDocument, compliance: _Compliance) -> bytes:
    pdf = _Pdf(
        title=f"Avoir {doc.number}",
        footer=f"Avoir {doc.number} · {doc.seller.name}",
        issued_on=doc.issued_on,
        compliance=compliance,
    )
    pdf.title_line(f"AVOIR N° {doc.number}")
    pdf.paragraph(
        f"Avoir annulant la facture n° {doc.invoice_number} du {date_fr(doc.invoice_issued_on)}.",
        bold=True,
    )
    mention = self_billing_mention(doc)
    if mention:
        pdf.paragraph("AUTOFACTURATION", bold=True)
        pdf.paragraph(mention)
    pdf.gap()
    pdf.facts(
        [
            *_billed_header_facts(doc),
            ("Facture annulée :", f"n° {doc.invoice_number} du {date_fr(doc.invoice_issued_on)}"),
            ("Motif :", doc.reason),
        ]
    )
    pdf.gap()
    pdf.parties(("Prestataire (vendeur)", doc.seller), ("Client (acheteur)", doc.buyer))
    pdf.gap()
    _lines_grid(pdf, doc.lines, with_vat=doc.vat_regime.charges_vat, sign=-1)
    pdf.gap()
    _vat_section(pdf, doc, sign=-1)
    pdf.gap()
    pdf.paragraph(
        "Les montants ci-dessus sont crédités au client : ils viennent en déduction des "
        "sommes dues au titre de la facture annulée, ou sont remboursés si elle a été réglée."
    )
    pdf.gap()
    pdf.paragraph(
        f"Rappel des conditions de la facture annulée : {NO_DISCOUNT_MENTION} "
        f"{penalty_mention(doc)}",
        size=8,
    )
    return pdf.finish()


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as a PDF with every mandatory mention (L441-9 C. com., 242 nonies A CGI)."""
    return _invoice_pdf(doc, None)


def render_credit_note_pdf(doc: CreditNoteDocument) -> bytes:
    """The credit note as a PDF; it names the invoice it cancels, its date and the reason."""
    return _credit_note_pdf(doc, None)


def render_bpf_pdf(doc: BpfDocument) -> bytes:
    """The billing voucher (BPF) of a validated CRA as a PDF."""
    pdf = _Pdf(
        title=f"Bon pour facturation {doc.number}",
        footer=f"BPF {doc.number} · mission {doc.mission_id}",
        issued_on=doc.issued_on,
        compliance=None,
    )
    pdf.title_line(f"BON POUR FACTURATION (BPF) N° {doc.number}")
    pdf.paragraph(
        f"Compte rendu d'activité de {month_fr(doc.month)} validé par le client : le "
        "prestataire peut être facturé des montants ci-dessous. Ce document n'est pas une "
        "facture."
    )
    pdf.gap()
    approver = doc.approver.name or doc.approver.email or doc.approver.id
    if doc.approver.name and doc.approver.email:
        approver = f"{doc.approver.name} ({doc.approver.email})"
    facts = [
        ("Date d'émission :", date_fr(doc.issued_on)),
        ("Mission :", doc.mission_id),
        ("Mois :", f"{month_fr(doc.month)} ({doc.month})"),
        ("Jours travaillés :", f"{_quantity(doc.days)} jour(s)"),
        ("TJM :", f"{money_fr(doc.tjm)} HT"),
    ]
    if doc.submitted_on:
        facts.append(("CRA soumis le :", date_fr(doc.submitted_on)))
    facts += [
        ("CRA validé le :", date_fr(doc.validated_on)),
        ("Validé par :", f"{approver} (approbateur {doc.approver.id})"),
    ]
    if doc.purchase_order:
        facts.append(("Bon de commande :", doc.purchase_order))
    pdf.facts(facts)
    pdf.gap()
    pdf.parties(("Client", doc.client), ("Prestataire", doc.provider))
    pdf.gap()
    pdf.grid(
        ["Désignation", "Qté", "Unité", "PU HT", "Montant HT"],
        [
            [
                _line_label(line),
                _quantity(line.quantity),
                line.unit.label_fr,
                money_fr(line.unit_price_excl_vat),
                money_fr(line.amount_excl_vat),
            ]
            for line in doc.lines
        ],
        [84, 16, 18, 26, 30],
        ["LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT"],
    )
    pdf.gap(2)
    pdf.totals([("Montant total HT :", money_fr(doc.amount_excl_vat))])
    return pdf.finish()


# --- EN 16931 CII XML ---------------------------------------------------------------------

_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    prefix, name = tag.split(":")
    element = ET.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _decimal(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _date_102(parent: ET.Element, tag: str, day: date, *, qualified: bool = False) -> None:
    holder = _el(parent, tag)
    prefix = "qdt" if qualified else "udt"
    _el(holder, f"{prefix}:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _vat_category(doc: BilledDocument, rate: Decimal) -> str:
    """S / Z when the seller charges VAT; E (franchise, 293 B) or AE (reverse charge)."""
    if not doc.vat_regime.charges_vat:
        return vat_category(doc.vat_regime)
    return "S" if rate > 0 else "Z"


def _trade_party(parent: ET.Element, tag: str, party: Party, *, seller_exempt: bool) -> None:
    """BG-4 / BG-7. The seller's registration is its additional legal information (BT-33)."""
    node = _el(parent, tag)
    if party.siret:
        _el(node, "ram:GlobalID", party.siret, schemeID="0009")  # SIRET
    _el(node, "ram:Name", party.display_name)
    legal_info = registration_mention(party) if tag == "ram:SellerTradeParty" else None
    if legal_info:
        _el(node, "ram:Description", legal_info)
    legal = _el(node, "ram:SpecifiedLegalOrganization")
    _el(legal, "ram:ID", party.siren, schemeID="0002")  # SIREN
    address = _el(node, "ram:PostalTradeAddress")
    _el(address, "ram:PostcodeCode", party.postcode)
    for tag_name, line in zip(
        ("ram:LineOne", "ram:LineTwo", "ram:LineThree"), party.address_lines, strict=False
    ):
        _el(address, tag_name, line)
    _el(address, "ram:CityName", party.city)
    _el(address, "ram:CountryID", party.country)
    # Electronic address (BT-34 / BT-49): the French directory's SIREN-based scheme.
    communication = _el(node, "ram:URIUniversalCommunication")
    _el(communication, "ram:URIID", party.siren, schemeID="0225")
    if party.vat_number:
        registration = _el(node, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", party.vat_number, schemeID="VA")
    elif seller_exempt:
        # BR-E-02 / BR-AE-02: an exempt or reverse-charged invoice names the seller's VAT or
        # tax registration; without a VAT number, its French tax identifier is its SIREN.
        registration = _el(node, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", party.siren, schemeID="FC")


def _notes(document: ET.Element, notes: Sequence[tuple[str, str]]) -> None:
    for subject, content in notes:
        note = _el(document, "ram:IncludedNote")
        _el(note, "ram:Content", content)
        _el(note, "ram:SubjectCode", subject)


def _cii(
    doc: BilledDocument,
    *,
    type_code: str,
    notes: Sequence[tuple[str, str]],
    payment_terms: str,
    due_on: date | None,
    preceding: tuple[str, date] | None,
) -> bytes:
    root = ET.Element(f"{{{_NS['rsm']}}}CrossIndustryInvoice")
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(
        _el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"),
        "ram:ID",
        BUSINESS_PROCESS_SERVICES,
    )
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931_GUIDELINE)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", doc.number)
    _el(document, "ram:TypeCode", type_code)
    _date_102(document, "ram:IssueDateTime", doc.issued_on)
    _notes(document, notes)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for position, line in enumerate(doc.lines, start=1):
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        line_doc = _el(item, "ram:AssociatedDocumentLineDocument")
        _el(line_doc, "ram:LineID", str(position))
        details = []
        if line.corrects_month:
            details.append(f"Régularisation du mois {line.corrects_month}")
        if line.receipt_ref:
            details.append(f"Justificatif {line.receipt_ref}")
        if details:
            _el(_el(line_doc, "ram:IncludedNote"), "ram:Content", " ; ".join(details))
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.label)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        price = _el(agreement, "ram:NetPriceProductTradePrice")
        _el(price, "ram:ChargeAmount", _amount(line.unit_price_excl_vat))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", _decimal(line.quantity), unitCode=line.unit.value)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:CategoryCode", _vat_category(doc, line.vat_rate))
        _el(tax, "ram:RateApplicablePercent", _decimal(line.vat_rate))
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", _amount(line.amount_excl_vat))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    exempt = not doc.vat_regime.charges_vat
    _trade_party(agreement, "ram:SellerTradeParty", doc.seller, seller_exempt=exempt)
    _trade_party(agreement, "ram:BuyerTradeParty", doc.buyer, seller_exempt=False)
    if doc.purchase_order:
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", doc.purchase_order)
    contract = _el(agreement, "ram:ContractReferencedDocument")
    _el(contract, "ram:IssuerAssignedID", doc.mission_id)

    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date_102(event, "ram:OccurrenceDateTime", doc.service_end)  # BT-72: service done

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", "EUR")
    for vat in doc.vat_breakdown:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(vat.vat))
        _el(tax, "ram:TypeCode", "VAT")
        reason, code = vat_mention(doc.vat_regime), exemption_code(doc.vat_regime)
        if reason is not None:
            _el(tax, "ram:ExemptionReason", reason)
        _el(tax, "ram:BasisAmount", _amount(vat.base))
        _el(tax, "ram:CategoryCode", _vat_category(doc, vat.rate))
        if code is not None:
            _el(tax, "ram:ExemptionReasonCode", code)
        _el(tax, "ram:RateApplicablePercent", _decimal(vat.rate))
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date_102(period, "ram:StartDateTime", doc.service_start)
    _date_102(period, "ram:EndDateTime", doc.service_end)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", payment_terms)
    if due_on is not None:
        _date_102(terms, "ram:DueDateDateTime", due_on)
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", _amount(doc.total_excl_vat))
    _el(totals, "ram:TaxBasisTotalAmount", _amount(doc.total_excl_vat))
    _el(totals, "ram:TaxTotalAmount", _amount(doc.total_vat), currencyID="EUR")
    _el(totals, "ram:GrandTotalAmount", _amount(doc.total_incl_vat))
    _el(totals, "ram:DuePayableAmount", _amount(doc.total_incl_vat))
    if preceding is not None:
        reference = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(reference, "ram:IssuerAssignedID", preceding[0])
        _date_102(reference, "ram:FormattedIssueDateTime", preceding[1], qualified=True)

    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return xml


def _common_notes(doc: BilledDocument) -> list[tuple[str, str]]:
    """REG self-billing, TXD the VAT mention (293 B, autoliquidation), and the AAB / PMD /
    PMT notes BR-FR-05 requires."""
    notes: list[tuple[str, str]] = []
    mention = self_billing_mention(doc)
    if mention:
        notes.append(("REG", mention))
    vat_note = vat_mention(doc.vat_regime)
    if vat_note is not None:
        notes.append(("TXD", vat_note))
    notes += [
        ("AAB", NO_DISCOUNT_MENTION),
        ("PMD", penalty_mention(doc)),
        ("PMT", recovery_indemnity_mention(doc.recovery_indemnity)),
    ]
    return notes


def invoice_cii_xml(doc: InvoiceDocument) -> bytes:
    """The invoice as EN 16931 CII XML (Factur-X EN 16931 profile), UTF-8 bytes."""
    return _cii(
        doc,
        type_code="389" if doc.self_billed else "380",
        notes=_common_notes(doc),
        payment_terms=f"Paiement à l'échéance du {date_fr(doc.due_on)}. {NO_DISCOUNT_MENTION}",
        due_on=doc.due_on,
        preceding=None,
    )


def credit_note_cii_xml(doc: CreditNoteDocument) -> bytes:
    """The credit note as EN 16931 CII XML, referencing the invoice it cancels (BG-3)."""
    return _cii(
        doc,
        type_code="261" if doc.self_billed else "381",
        notes=[
            *_common_notes(doc),
            (
                "AAI",
                f"Avoir annulant la facture n° {doc.invoice_number} du "
                f"{date_fr(doc.invoice_issued_on)}. Motif : {doc.reason}",
            ),
        ],
        payment_terms="Montant à déduire des sommes dues ou à rembourser au client.",
        due_on=None,
        preceding=(doc.invoice_number, doc.invoice_issued_on),
    )


# --- Factur-X -----------------------------------------------------------------------------

_FACTURX_LOCK = threading.Lock()


@contextmanager
def _facturx_clock(at: datetime) -> Iterator[None]:
    """Pin the dates factur-x stamps (Info dates, XMP dates, attachment date) to `at`.

    The library reads the clock in two private helpers; replacing them for the duration of
    one call, under a lock, is what makes its output reproducible. If a future version
    renames them, nothing is replaced and only determinism is lost (a test says so).
    """
    module: Any = importlib.import_module("facturx.facturx")
    names = ("_get_pdf_timestamp", "_get_metadata_timestamp")
    with _FACTURX_LOCK:
        if not all(hasattr(module, name) for name in names):
            yield
            return
        original_pdf: Callable[..., str] = module._get_pdf_timestamp
        original_meta: Callable[[], str] = module._get_metadata_timestamp

        def pdf_timestamp(date: datetime | None = None) -> str:
            return original_pdf(at if date is None else date)

        def metadata_timestamp() -> str:
            return at.strftime("%Y-%m-%dT%H:%M:%S+00:00")

        module._get_pdf_timestamp = pdf_timestamp
        module._get_metadata_timestamp = metadata_timestamp
        try:
            yield
        finally:
            module._get_pdf_timestamp = original_pdf
            module._get_metadata_timestamp = original_meta


def _facturx(pdf: bytes, xml: bytes, doc: BilledDocument, title: str) -> bytes:
    metadata = {
        "author": doc.seller.name,
        "keywords": "Factur-X, EN 16931",
        "title": f"{doc.seller.name} : {title} {doc.number}",
        "subject": f"{title} {doc.number} du {date_fr(doc.issued_on)}, "
        f"{doc.seller.name} pour {doc.buyer.name}",
    }
    with _facturx_clock(_at_midnight_utc(doc.issued_on)):
        result: bytes = facturx.generate_from_binary(
            pdf,
            xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata=metadata,
            lang="fr-FR",
        )
    return result


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as Factur-X: a PDF/A-3B with `factur-x.xml` (EN 16931 profile) inside.

    The XML is checked against the profile's XSD first; an invalid one raises.
    """
    return _facturx(_invoice_pdf(doc, "PDF/A-3B"), invoice_cii_xml(doc), doc, "Facture")


def render_credit_note_facturx_pdf(doc: CreditNoteDocument) -> bytes:
    """The credit note as Factur-X (type code 261 self-billed, or 381), EN 16931 profile."""
    return _facturx(_credit_note_pdf(doc, "PDF/A-3B"), credit_note_cii_xml(doc), doc, "Avoir")
