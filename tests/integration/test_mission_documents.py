"""A validated CRA's BPF and invoice (Factur-X), rendered right after the validation by their
own activity and served by the gateway: listed, downloadable, printing both parties' postal
addresses and the mandatory mentions; issued once; 404s; the 422 of a `proposal.submitted`
without address.

Real dev server, worker, PostgreSQL and gateway (tests/fixtures/gateway.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import facturx
import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from activities import billing_files
from activities.billing_files import issue_cra_documents
from activities.registry import Activities
from db.models import (
    BillingDocument,
    Bpf,
    EmailOutbox,
    Invoice,
    InvoiceNumberSequence,
    Mission,
    MissionEvent,
    Payout,
    ProcessedEvent,
    Provider,
)
from domain.document_numbers import bpf_number
from domain.vat import french_vat_number
from schemas.activities import DeliverOutboxInput, IssueDocumentsInput, IssueDocumentsResult
from schemas.enums import PayoutStatus, VatRegime
from settings import Settings
from tests.support.einvoice import compile_schematrons
from tests.support.factories import CLIENT_ADDRESS, PROVIDER_ADDRESS, envelope, proposal_submitted
from tests.support.gateway import CONTRACTING, GatewayTestClient, submit, validated_month
from tests.support.waits import eventually

NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
AGREEMENT = "{*}SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
PENALTIES = (
    "Tout retard de paiement donnera lieu, en plus des pénalités de retard (10 % par an), au "
    "versement d'une indemnité forfaitaire de 40€ pour frais de recouvrement."
)


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def _has_both_addresses(text: str) -> None:
    for address in (CLIENT_ADDRESS, PROVIDER_ADDRESS):
        for line in address["lines"]:
            assert line in text
        assert f"{address['postal_code']} {address['city']}" in text


async def _get(gateway: GatewayTestClient, url: str) -> httpx.Response:
    return await gateway.http.get(url)


async def _invoice(engine: AsyncEngine, mission_id: str) -> Invoice:
    async with engine.connect() as conn:
        row = (await conn.execute(select(Invoice).where(Invoice.mission_id == mission_id))).one()
    return Invoice(**row._asdict())


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(CONTRACTING),
        *args,
        env={**os.environ, "CONTRACTING_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_validated_month_serves_its_bpf_and_its_factur_x_invoice(
    gateway: GatewayTestClient, db_engine: AsyncEngine, stack_settings: Settings, tmp_path: Path
) -> None:
    pid, month = await validated_month(gateway)
    invoice = await _invoice(db_engine, pid)
    assert invoice.number is not None

    listed = await _get(gateway, f"/missions/{pid}/documents")
    assert listed.status_code == 200, listed.text
    documents = {doc["kind"]: doc for doc in listed.json()["documents"]}
    assert set(documents) == {"bpf", "invoice"}
    bpf, inv = documents["bpf"], documents["invoice"]
    assert bpf["number"] == f"BPF-{pid}-{month}" and inv["number"] == invoice.number
    assert {bpf["month"], inv["month"]} == {month}
    assert inv["url"] == f"/missions/{pid}/documents/{invoice.number}.pdf"
    assert invoice.facturx_ref == inv["name"]

    files = {}
    for kind, doc in documents.items():
        response = await _get(gateway, doc["url"])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf" == doc["content_type"]
        assert response.content.startswith(b"%PDF-")
        assert hashlib.sha256(response.content).hexdigest() == doc["sha256"]
        assert len(response.content) == doc["size"]
        files[kind] = response.content

    # The invoice: both addresses and every mandatory mention, in the PDF's text.
    text = _text(files["invoice"])
    _has_both_addresses(text)
    assert f"FACTURE N° {invoice.number}" in text
    assert "Acme Industries" in text and "Durand Conseil" in text
    assert f"SIREN : {invoice.issuer_siren}" in text and "SIREN : 325437259" in text
    assert f"N° TVA intracommunautaire : {french_vat_number(invoice.issuer_siren)}" in text
    assert f"N° TVA intracommunautaire : {french_vat_number('325437259')}" in text
    assert "Date d'émission :" in text and "Date d'échéance :" in text
    assert "Période de prestation :" in text
    assert "Total HT : 650,00 €" in text and "Total TTC : 780,00 €" in text
    assert PENALTIES in text
    assert "Indemnité forfaitaire pour frais de recouvrement" in text
    assert "Autofacturation" in text
    assert "Bon de commande : PO-9" in text
    # Issue 11 point 9: each company's legal form, share capital and RCS city.
    assert "SARL au capital de 10 000,00 € · RCS Lyon" in text  # the provider
    assert "SA au capital de 1 200 000,00 € · RCS Paris" in text  # the client

    # Its Factur-X XML passes the library's check and carries both postal addresses.
    name, xml = facturx.get_facturx_xml_from_pdf(files["invoice"], check_xsd=False)
    assert name == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = ET.fromstring(xml)
    for role, address in (("Seller", PROVIDER_ADDRESS), ("Buyer", CLIENT_ADDRESS)):
        postal = root.find(f"{AGREEMENT}/ram:{role}TradeParty/ram:PostalTradeAddress", NS)
        assert postal is not None
        found = [
            node.text
            for tag in ("LineOne", "LineTwo")
            for node in postal.iterfind(f"ram:{tag}", NS)
        ]
        assert found == address["lines"]
        assert postal.findtext("ram:PostcodeCode", namespaces=NS) == address["postal_code"]
        assert postal.findtext("ram:CityName", namespaces=NS) == address["city"]
        assert postal.findtext("ram:CountryID", namespaces=NS) == "FR"

    # The BPF: both addresses, the facts of the validation, not an invoice.
    text = _text(files["bpf"])
    _has_both_addresses(text)
    assert f"BON POUR FACTURATION (BPF) N° BPF-{pid}-{month}" in text
    assert "claire.martin@acme.example" in text and "n'est pas une facture" in text

    # The CLI lists them and saves the same bytes.
    code, out, err = await _cli(
        stack_settings.database_url, "mission", "documents", pid, "--save", str(tmp_path)
    )
    assert code == 0, err
    assert f"{invoice.number}.pdf" in out and f"BPF-{pid}-{month}.pdf" in out
    for kind, doc in documents.items():
        assert (tmp_path / doc["name"]).read_bytes() == files[kind]
    code, out, _ = await _cli(stack_settings.database_url, "mission", "documents", pid, "--json")
    assert code == 0 and json.loads(out) == listed.json()
    code, _, err = await _cli(stack_settings.database_url, "mission", "documents", "NOPE")
    assert code == 3 and err.strip() == "error: no mission 'NOPE'"


async def test_a_portuguese_provider_gets_a_reverse_charged_invoice_and_is_paid_its_total(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """Issue 11 point 1, end to end: a company established in Portugal (its VAT number in
    `proposal.submitted`) is billed without French VAT, "Autoliquidation" and both VAT
    numbers on the invoice, Factur-X category AE, and its payout is the invoice's total
    minus the fee — on `main` before the fix it was charged 20 % VAT (paid out) and its
    invoice was never issued."""
    pid, _ = await validated_month(gateway, "immediate", country="PT", vat_number="PT501964843")
    invoice = await _invoice(db_engine, pid)
    assert invoice.vat_regime is VatRegime.REVERSE_CHARGE_EU
    assert invoice.amount_excl_vat == invoice.amount_incl_vat == D("650.00")  # 1 day at 650 €
    assert invoice.vat_amount == 0
    assert invoice.vat_mention is not None and invoice.vat_mention.startswith("Autoliquidation")
    async with db_engine.connect() as conn:
        payout = (await conn.execute(select(Payout).where(Payout.mission_id == pid))).one()
    assert payout.amount == D("650.00") and payout.net_amount == D("650.00") - payout.fee

    listed = (await _get(gateway, f"/missions/{pid}/documents")).json()["documents"]
    assert {doc["kind"] for doc in listed} == {"bpf", "invoice"}
    [url] = [doc["url"] for doc in listed if doc["kind"] == "invoice"]
    pdf = (await _get(gateway, url)).content
    text = _text(pdf)
    assert "Autoliquidation : TVA due par le preneur, art. 283-2 du CGI" in text
    assert "N° TVA intracommunautaire : PT501964843" in text
    assert f"N° TVA intracommunautaire : {french_vat_number('325437259')}" in text
    assert "Total TVA" not in text and "Net à payer : 650,00 €" in text
    _, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    assert compile_schematrons()(xml) == []
    root = ET.fromstring(xml)
    settlement = "{*}SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    [tax] = root.findall(f"{settlement}/ram:ApplicableTradeTax", NS)
    assert tax.findtext("ram:CategoryCode", namespaces=NS) == "AE"
    assert tax.findtext("ram:ExemptionReasonCode", namespaces=NS) == "VATEX-EU-AE"
    seller_vat = f"{AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID"
    assert root.findtext(seller_vat, namespaces=NS) == "PT501964843"


async def test_a_cancelled_invoice_gets_its_credit_note_as_factur_x(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    pid, _ = await validated_month(gateway)
    invoice = await _invoice(db_engine, pid)

    async def scheduled() -> bool:
        async with db_engine.connect() as conn:
            status = select(Payout.status).where(Payout.mission_id == pid)
            return (await conn.execute(status)).scalar_one_or_none() == PayoutStatus.SCHEDULED

    await eventually(scheduled)
    cancel = envelope(
        "invoice.cancelled", {"invoice_number": invoice.number, "reason": "Erreur de TJM"}
    )
    assert (await gateway.post_event(cancel)).status_code == 202

    async def three_documents() -> bool:
        listed = await _get(gateway, f"/missions/{pid}/documents")
        return len(listed.json()["documents"]) == 3

    await eventually(three_documents)
    listed = (await _get(gateway, f"/missions/{pid}/documents")).json()["documents"]
    note = next(doc for doc in listed if doc["kind"] == "credit_note")
    assert note["number"].startswith(f"AV-{invoice.issuer_siren}-")
    response = await _get(gateway, note["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    text = _text(response.content)
    _has_both_addresses(text)
    assert f"AVOIR N° {note['number']}" in text
    assert f"Avoir annulant la facture n° {invoice.number}" in text
    assert "Motif : Erreur de TJM" in text
    _, xml = facturx.get_facturx_xml_from_pdf(response.content, check_xsd=False)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = ET.fromstring(xml)
    assert root.findtext("{*}ExchangedDocument/ram:TypeCode", namespaces=NS) == "261"


async def test_documents_are_issued_once_and_the_same_when_reissued(
    gateway: GatewayTestClient, db_engine: AsyncEngine, running_worker: Activities
) -> None:
    """The rendering activity, retried or run again, finds its files; a lost file is issued
    again, byte for byte, under its number: no second document, no second number."""
    pid, month = await validated_month(gateway)
    render = running_worker.files.issue_billing_documents
    again = IssueDocumentsInput(mission_id=pid, month=month, at=datetime.now(UTC))
    invoice = await _invoice(db_engine, pid)

    async def documents() -> dict[str, tuple[str, str]]:
        async with db_engine.connect() as conn:
            rows = await conn.execute(
                select(BillingDocument.kind, BillingDocument.number, BillingDocument.sha256).where(
                    BillingDocument.mission_id == pid
                )
            )
            return {str(kind): (number, digest) for kind, number, digest in rows}

    async def last_number() -> int:
        async with db_engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(InvoiceNumberSequence.last_number).where(
                            InvoiceNumberSequence.issuer_siren == invoice.issuer_siren
                        )
                    )
                ).scalar_one()
            )

    first, counter = await documents(), await last_number()
    assert set(first) == {"bpf", "invoice"}
    assert await render(again) == IssueDocumentsResult()  # a retry writes nothing
    assert await documents() == first

    async with db_engine.begin() as conn:
        await conn.execute(
            delete(BillingDocument).where(
                BillingDocument.mission_id == pid, BillingDocument.kind == "invoice"
            )
        )
    written = await render(again)
    assert written == IssueDocumentsResult(written=[f"{invoice.number}.pdf"])
    assert await documents() == first  # the same bytes (sha256) under the same number
    assert await last_number() == counter


async def test_a_party_without_address_gets_no_document_and_the_timeline_says_why(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """A provider recorded before the contract carried addresses: billing goes on, no
    invoice without its mandatory mentions."""
    pid, month = await validated_month(gateway)
    async with db_engine.begin() as conn:
        siren = (
            await conn.execute(select(Mission.provider_siren).where(Mission.mission_id == pid))
        ).scalar_one()
        await conn.execute(
            update(Provider)
            .where(Provider.siren == siren)
            .values(address_lines=None, postal_code=None, city=None, address_country=None)
        )
        await conn.execute(delete(BillingDocument).where(BillingDocument.mission_id == pid))
    async with AsyncSession(db_engine) as session, session.begin():
        assert await issue_cra_documents(session, pid, month, at=datetime.now(UTC)) == []
    async with db_engine.connect() as conn:
        reason = (
            await conn.execute(
                select(MissionEvent.data["reason"].astext).where(
                    MissionEvent.idempotency_key == f"billing_documents.not_issued:{pid}:{month}"
                )
            )
        ).scalar_one()
    assert "has no postal address" in reason and "L441-9" in reason
    listed = await _get(gateway, f"/missions/{pid}/documents")
    assert listed.status_code == 200 and listed.json()["documents"] == []


async def test_unknown_missions_and_documents_are_404(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    listed = await _get(gateway, "/missions/NO-SUCH-MISSION/documents")
    assert listed.status_code == 404
    assert listed.json() == {"detail": "no mission 'NO-SUCH-MISSION'"}
    file = await _get(gateway, "/missions/NO-SUCH-MISSION/documents/F-1.pdf")
    assert file.status_code == 404
    assert "no mission" in file.json()["detail"]

    pid = await submit(gateway)  # a mission without any validated month yet

    async def recorded() -> bool:
        async with db_engine.connect() as conn:
            found = select(Mission.mission_id).where(Mission.mission_id == pid)
            return (await conn.execute(found)).first() is not None

    await eventually(recorded)
    empty = await _get(gateway, f"/missions/{pid}/documents")
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"mission_id": pid, "documents": []}
    missing = await _get(gateway, f"/missions/{pid}/documents/F-000000000-000001.pdf")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        f"mission '{pid}' has no document 'F-000000000-000001.pdf'; "
        f"GET /missions/{pid}/documents lists them"
    )


async def test_a_proposal_without_addresses_is_422_and_not_recorded(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    data = proposal_submitted()
    del data["client"]["address"]
    del data["provider"]["address"]
    event = envelope("proposal.submitted", data)
    response = await gateway.post_event(event)
    assert response.status_code == 422, response.text
    errors = {error["loc"]: error["msg"] for error in response.json()["errors"]}
    assert errors == {
        "data.client.address": "Field required",
        "data.provider.address": "Field required",
    }
    async with db_engine.connect() as conn:
        count = (
            await conn.execute(
                select(func.count()).where(ProcessedEvent.event_id == event["event_id"])
            )
        ).scalar_one()
    assert count == 0


async def test_a_100_character_mission_id_with_dots_and_colons_gets_all_its_documents(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """The contract allows ids of 100 characters with `.` and `:`: the month still gets its
    BPF, its invoice PDF and its Factur-X, under numbers of at most 35 characters."""
    head = f"mission:{uuid.uuid4().hex}.acme.fr:"
    long_id = (head + "x" * 100)[:100]
    pid, month = await validated_month(gateway, proposal_id=long_id)
    assert pid == long_id and len(pid) == 100
    invoice = await _invoice(db_engine, pid)
    assert invoice.number is not None

    listed = await _get(gateway, f"/missions/{pid}/documents")
    assert listed.status_code == 200, listed.text
    documents = {doc["kind"]: doc for doc in listed.json()["documents"]}
    assert set(documents) == {"bpf", "invoice"}
    number = bpf_number(pid, month)
    assert documents["bpf"]["number"] == number and len(number) <= 35
    assert documents["invoice"]["number"] == invoice.number
    async with db_engine.connect() as conn:
        stored = await conn.scalar(select(Bpf.number).where(Bpf.mission_id == pid))
        alerts = await conn.scalar(
            select(func.count())
            .select_from(MissionEvent)
            .where(MissionEvent.kind == "billing_documents.not_issued")
            .where(MissionEvent.mission_id == pid)
        )
    assert stored == number and alerts == 0

    files = {}
    for kind, doc in documents.items():
        response = await _get(gateway, doc["url"])
        assert response.status_code == 200, response.text
        assert response.content.startswith(b"%PDF-")
        files[kind] = response.content
    assert f"BON POUR FACTURATION (BPF) N° {number}" in _text(files["bpf"])
    assert f"FACTURE N° {invoice.number}" in _text(files["invoice"])
    _, xml = facturx.get_facturx_xml_from_pdf(files["invoice"], check_xsd=False)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = ET.fromstring(xml)
    assert root.findtext("{*}ExchangedDocument/ram:ID", namespaces=NS) == invoice.number


async def test_a_document_that_cannot_be_rendered_is_one_ops_alert(
    gateway: GatewayTestClient,
    db_engine: AsyncEngine,
    running_worker: Activities,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A BPF whose rendering fails: an ERROR log naming the mission, the month and the
    reason, the timeline row, one e-mail to ops however often it is retried — and the invoice
    is issued all the same."""
    pid, month = await validated_month(gateway)
    async with db_engine.begin() as conn:
        await conn.execute(delete(BillingDocument).where(BillingDocument.mission_id == pid))

    def broken(doc: object) -> bytes:
        raise RuntimeError("font cache unreadable")

    monkeypatch.setattr(billing_files, "render_bpf_pdf", broken)
    invoice = await _invoice(db_engine, pid)
    keys: list[str] = []
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            async with AsyncSession(db_engine) as session, session.begin():
                written = await issue_cra_documents(
                    session,
                    pid,
                    month,
                    at=datetime.now(UTC),
                    ops_email="ops@contracting.localhost",
                    outbox_keys=keys,
                )
            assert written in ([f"{invoice.number}.pdf"], [])
    key = f"billing_documents.not_issued:{pid}:{month}:bpf"
    assert keys == [f"{key}:ops"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(pid in m and month in m and "font cache unreadable" in m for m in errors), errors
    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                select(MissionEvent.data["reason"].astext).where(
                    MissionEvent.mission_id == pid,
                    MissionEvent.kind == "billing_documents.not_issued",
                )
            )
        ).all()
        emails = (
            await conn.execute(
                select(EmailOutbox.recipients, EmailOutbox.subject, EmailOutbox.body_text).where(
                    EmailOutbox.outbox_key == f"{key}:ops"
                )
            )
        ).all()
        kinds = set(
            (
                await conn.execute(
                    select(BillingDocument.kind).where(BillingDocument.mission_id == pid)
                )
            ).scalars()
        )
    assert len(rows) == 1 and "font cache unreadable" in rows[0][0]
    assert len(emails) == 1
    recipients, subject, body = emails[0]
    assert recipients == ["ops@contracting.localhost"]
    assert pid in subject and month in subject and "le BPF" in subject
    assert "font cache unreadable" in body
    assert {str(kind) for kind in kinds} == {"invoice"}
    # Sent once, through the outbox the CRA workflow delivers the validation's keys with.
    sent = await running_worker.outbox.deliver_outbox(DeliverOutboxInput(keys=keys))
    again = await running_worker.outbox.deliver_outbox(DeliverOutboxInput(keys=keys))
    assert (sent.sent, again.sent, again.already_sent) == (1, 0, 1)
