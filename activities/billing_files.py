"""The files of a validated CRA, issued once: its BPF and, for a generated invoice, the
invoice as Factur-X — and later the Factur-X of the credit note that cancels that invoice —
stored in `billing_documents` for the API to serve.

The legal record (the CRA, the invoice's number and amounts, the payout's terms) commits in
the CRA validation's transaction (`activities.cra`); the files are rendered right after, by
their own activity (`issue_billing_documents`, on the render task queue
`CONTRACTING_RENDER_TASK_QUEUE`), so the validation never waits for the rendering, which
can run on other processes. The activity is idempotent by document key: one file per
mission, month and kind (`INSERT … ON CONFLICT DO NOTHING`), rendered deterministically, so a
retried or re-run rendering stores the same document once, with the same bytes. Everything
printed is read from the database — the CRA and its lines, the parties and their postal
addresses, the BPF and invoice rows — never from workflow inputs, so the same call also
issues the files of a month validated before they existed. The credit note's file is still
issued in the transaction that numbers it (a rare event, never part of the month-end surge).

Why PostgreSQL (bytea) rather than files on a disk: an invoice is a legal record kept ten
years (L123-22 C. com.) that must exist exactly when its number does; in the same
transaction, it is atomic with the ledger, backed up and restored with it, and served by any
gateway replica without a volume shared with the workers. The files are small (tens of kB
each, a few per mission-month). Moving the bytes to object storage later only swaps the
`content` column for a key.

The invoice is stored once, as its Factur-X (a PDF/A-3 any reader shows, with the EN 16931
XML inside): one original per number, never a second PDF that could differ from it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.billing_documents import (
    render_bpf_pdf,
    render_credit_note_facturx_pdf,
    render_facturx_pdf,
)
from activities.transitions import queue_email, record_timeline
from db.models import (
    Approver,
    BillingDocument,
    BillingDocumentKind,
    Bpf,
    CarriedBalanceKind,
    CarriedBalanceRow,
    Client,
    Cra,
    CraLine,
    CraLineKind,
    CreditNote,
    Invoice,
    InvoiceKind,
    Mission,
    Provider,
    PurchaseOrder,
)
from domain.billing_documents import (
    bpf_document_for_cra,
    client_party,
    invoice_document_for_cra,
    party,
)
from domain.carry_over import carried_in_label, carried_out_label
from schemas.activities import IssueDocumentsInput, IssueDocumentsResult
from schemas.billing import BpfApprover, CreditNoteDocument, InvoiceDocument, Party
from schemas.enums import CraStatus, LegalForm, VatRegime
from schemas.events import (
    CorrectionLine,
    CraSubmitted,
    ExpenseLine,
    OvertimeLine,
    PostalAddress,
    Registration,
)
from schemas.names import ISSUE_BILLING_DOCUMENTS
from schemas.payouts import CarriedBalance, CarryKind

PDF = "application/pdf"
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class _Facts:
    """What the month's documents print, as the database holds it."""

    cra: Cra
    submission: CraSubmitted
    tjm: Decimal
    client: Client
    provider: Provider
    approver_email: str | None
    purchase_order: str | None
    vat_regime: VatRegime
    """The regime the validation billed the month under (its invoice row), so the BPF and
    the invoice print what the ledger holds even if the provider's record changed since."""


class BillingFileActivities:
    """The rendering of a validated month's files, apart from the validation's transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ops_email: str) -> None:
        self._sessions = sessions
        self._ops_email = ops_email

    @activity.defn(name=ISSUE_BILLING_DOCUMENTS)
    async def issue_billing_documents(self, inp: IssueDocumentsInput) -> IssueDocumentsResult:
        """Render and store the month's missing files (none on a retry or a re-run); a file
        that cannot be issued is one ops alert, whose outbox key the caller delivers."""
        keys: list[str] = []
        async with self._sessions.begin() as session:
            written = await issue_cra_documents(
                session,
                inp.mission_id,
                inp.month,
                at=inp.at,
                ops_email=self._ops_email,
                outbox_keys=keys,
            )
        return IssueDocumentsResult(written=written, outbox_keys=keys)


async def issue_cra_documents(
    session: AsyncSession,
    mission_id: str,
    month: str,
    *,
    at: datetime,
    ops_email: str | None = None,
    outbox_keys: list[str] | None = None,
) -> list[str]:
    """Render and store the month's missing files; the names written now (none on a retry).

    A document that cannot carry its mandatory mentions (a party recorded without a postal
    address, a seller charging VAT without a French VAT number), whose lines disagree with
    the ledger or whose rendering fails is not issued: billing goes on without the file
    (money never waits for a PDF) and it is an ops alert (`_not_issued`) — the BPF and the
    invoice each on their own, so one failing never holds the other back. The alert's e-mail
    goes to `ops_email`, its outbox key appended to `outbox_keys` for the caller to deliver.
    """
    have = set(
        (
            await session.execute(
                select(BillingDocument.kind).where(
                    BillingDocument.mission_id == mission_id, BillingDocument.month == month
                )
            )
        ).scalars()
    )
    bpf = (
        await session.execute(select(Bpf).where(Bpf.mission_id == mission_id, Bpf.month == month))
    ).scalar_one_or_none()
    invoice = (
        await session.execute(
            select(Invoice).where(
                Invoice.mission_id == mission_id,
                Invoice.month == month,
                Invoice.kind == InvoiceKind.GENERATED,
                Invoice.number.is_not(None),
            )
        )
    ).scalar_one_or_none()
    wanted_bpf = bpf is not None and BillingDocumentKind.BPF not in have
    wanted_invoice = invoice is not None and BillingDocumentKind.INVOICE not in have
    if not (wanted_bpf or wanted_invoice):
        return []
    written: list[str] = []
    alert = _Alert(session, mission_id, month, at=at, ops_email=ops_email, keys=outbox_keys)
    try:
        facts = await _facts(session, mission_id, month)
        if facts is None:
            return []
        parties = _parties(facts)
    except (NotIssuable, ValidationError) as exc:
        await alert.not_issued(str(exc))
        return []
    if wanted_bpf and bpf is not None:
        try:
            written.append(await _store_bpf(session, facts, bpf, parties))
        except (NotIssuable, ValidationError) as exc:
            await alert.not_issued(str(exc), what="bpf")
    if wanted_invoice and invoice is not None:
        try:
            written.append(await _store_invoice(session, facts, invoice, parties))
        except (NotIssuable, ValidationError) as exc:
            await alert.not_issued(str(exc), what="invoice")
    return written


async def issue_credit_note_document(
    session: AsyncSession, mission_id: str, month: str, *, at: datetime
) -> list[str]:
    """The Factur-X of the credit note cancelling the month's generated invoice, once; the
    names written now. Called in the transaction that numbers the credit note. An imported
    invoice was the provider's own document: the platform issues no file for its credit note.
    """
    row = (
        await session.execute(
            select(CreditNote, Invoice)
            .join(Invoice, Invoice.id == CreditNote.invoice_id)
            .where(
                Invoice.mission_id == mission_id,
                Invoice.month == month,
                Invoice.kind == InvoiceKind.GENERATED,
            )
        )
    ).one_or_none()
    if row is None:
        return []
    present = await session.scalar(
        select(BillingDocument.id).where(
            BillingDocument.mission_id == mission_id,
            BillingDocument.month == month,
            BillingDocument.kind == BillingDocumentKind.CREDIT_NOTE,
        )
    )
    if present is not None:
        return []
    note: CreditNote = row.CreditNote
    try:
        facts = await _facts(session, mission_id, month)
        if facts is None:
            return []
        invoice_doc = _invoice_document(facts, row.Invoice, _parties(facts))
        doc = CreditNoteDocument.cancelling(
            invoice_doc, number=note.number, issued_on=note.issued_on, reason=note.reason
        )
    except (NotIssuable, ValidationError) as exc:
        await _Alert(session, mission_id, month, at=at).not_issued(str(exc), what="credit_note")
        return []
    try:
        name = await _store(
            session,
            mission_id,
            month,
            BillingDocumentKind.CREDIT_NOTE,
            doc,
            render_credit_note_facturx_pdf,
        )
    except NotIssuable as exc:
        await _Alert(session, mission_id, month, at=at).not_issued(str(exc), what="credit_note")
        return []
    await session.execute(
        update(CreditNote)
        .where(CreditNote.id == note.id, CreditNote.pdf_ref.is_(None))
        .values(pdf_ref=name)
    )
    return [name]


# What the ops e-mail calls each document that was not issued.
_DOCUMENT_FR = {
    "documents": "le BPF et la facture",
    "bpf": "le BPF",
    "invoice": "la facture",
    "credit_note": "l'avoir",
}


@dataclass
class _Alert:
    """A month's document that cannot be issued is an ops alert, not a quiet row."""

    session: AsyncSession
    mission_id: str
    month: str
    at: datetime
    ops_email: str | None = None
    keys: list[str] | None = None

    async def not_issued(self, reason: str, what: str = "documents") -> None:
        """An ERROR log line naming the mission, the month and the reason; the mission's
        timeline row `billing_documents.not_issued`; and, when the caller gave the ops
        address, one e-mail to ops — keyed like the row, so one per document however often
        the issue is retried."""
        mission_id, month = self.mission_id, self.month
        activity.logger.error(
            "billing document not issued: %s of mission %s, month %s: %s",
            what,
            mission_id,
            month,
            reason,
        )
        suffix = "" if what == "documents" else f":{what}"
        key = f"billing_documents.not_issued:{mission_id}:{month}{suffix}"
        await record_timeline(
            self.session,
            key=key,
            mission_id=mission_id,
            kind="billing_documents.not_issued",
            at=self.at,
            data={"month": month, "document": what, "reason": reason},
        )
        if self.ops_email is None:
            return
        outbox_key = await queue_email(
            self.session,
            key=f"{key}:ops",
            mission_id=mission_id,
            recipients=[self.ops_email],
            template="billing_documents_not_issued",
            context={
                "mission_id": mission_id,
                "month": month,
                "document": _DOCUMENT_FR[what],
                "reason": reason,
            },
        )
        if self.keys is not None and outbox_key not in self.keys:
            self.keys.append(outbox_key)


class NotIssuable(Exception):
    """The database lacks what the document must print (a party's address, an invoice's
    dates), or its lines disagree with the ledger's amounts."""


def _address(holder: Client | Provider, who: str) -> PostalAddress:
    country = holder.address_country
    if holder.address_lines is None or holder.postal_code is None or holder.city is None:
        raise NotIssuable(
            f"{who} {holder.name} has no postal address (recorded before proposal.submitted "
            "carried it): a mandatory mention of the invoice (L441-9 C. com.)"
        )
    return PostalAddress(
        lines=holder.address_lines,
        postal_code=holder.postal_code,
        city=holder.city,
        country=_required(country, f"the country of {holder.name}'s address"),
    )


def _parties(facts: _Facts) -> tuple[Party, Party]:
    """(client, provider) as the documents print them. A company established in France
    prints its registration: one recorded without it is not issuable (L441-9 C. com.)."""
    client = client_party(
        facts.client.name,
        facts.client.siren,
        _address(facts.client, "the client"),
        _registration(facts.client, "the client", required=True),
    )
    entrepreneur = facts.provider.legal_form is LegalForm.AUTO_ENTREPRENEUR
    provider = party(
        facts.provider.name,
        facts.provider.siren,
        _address(facts.provider, "the provider"),
        vat_number=facts.provider.vat_number,
        registration=_registration(
            facts.provider,
            "the provider",
            required=not entrepreneur and facts.provider.country == "FR",
        ),
        individual_entrepreneur=entrepreneur,
        email=facts.provider.email,
    )
    return client, provider


def _registration(holder: Client | Provider, who: str, *, required: bool) -> Registration | None:
    if holder.registration_form is None or holder.share_capital is None or holder.rcs_city is None:
        if required:
            raise NotIssuable(
                f"{who} {holder.name} has no registration (legal form, share capital, RCS city): "
                "a mandatory mention of a company's invoice (L441-9 and R123-237 C. com.)"
            )
        return None
    return Registration(
        form=holder.registration_form, share_capital=holder.share_capital, rcs_city=holder.rcs_city
    )


async def _facts(session: AsyncSession, mission_id: str, month: str) -> _Facts | None:
    row = (
        await session.execute(
            select(Cra, Client, Provider)
            .join(Mission, Mission.mission_id == Cra.mission_id)
            .join(Client, Client.client_id == Mission.client_id)
            .join(Provider, Provider.siren == Mission.provider_siren)
            .where(Cra.mission_id == mission_id, Cra.month == month)
        )
    ).one_or_none()
    if row is None or row.Cra.status != CraStatus.VALIDATED:
        return None
    cra: Cra = row.Cra
    lines = (
        await session.execute(
            select(CraLine).where(CraLine.cra_id == cra.id).order_by(CraLine.position)
        )
    ).scalars()
    tjm: Decimal | None = None
    expenses: list[ExpenseLine] = []
    overtime: list[OvertimeLine] = []
    corrections: list[CorrectionLine] = []
    for line in lines:
        if line.kind is CraLineKind.DAYS:
            tjm = line.unit_price
        elif line.kind is CraLineKind.EXPENSE:
            expenses.append(
                ExpenseLine(
                    label=line.label,
                    amount=line.amount,
                    vat_rate=f"{line.vat_rate}",
                    receipt_ref=_required(line.receipt_ref, "an expense's receipt"),
                )
            )
        elif line.kind is CraLineKind.OVERTIME:
            overtime.append(OvertimeLine(label=line.label, amount=line.amount))
        else:
            corrects = _required(line.corrects_month, "the month a correction line corrects")
            corrections.append(
                CorrectionLine(label=line.label, amount=line.amount, corrects_month=corrects)
            )
    if tjm is None:
        raise NotIssuable(f"validated CRA {mission_id} {month} has no priced days line")
    corrections += await _carry_lines(session, mission_id, month)
    approver_email = None
    if cra.approver_id is not None:
        approver_email = (
            await session.execute(
                select(Approver.email).where(Approver.approver_id == cra.approver_id)
            )
        ).scalar_one_or_none()
    purchase_order = (
        await session.execute(
            select(PurchaseOrder.po_number)
            .where(PurchaseOrder.mission_id == mission_id)
            .order_by(PurchaseOrder.confirmed_at.desc(), PurchaseOrder.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    regime = (
        await session.execute(
            select(Invoice.vat_regime).where(
                Invoice.mission_id == mission_id, Invoice.month == month
            )
        )
    ).scalar_one_or_none()
    if regime is None:
        raise NotIssuable(f"validated CRA {mission_id} {month} has no invoice row")
    submission = CraSubmitted(
        mission_id=mission_id,
        month=month,
        days=cra.days,
        expenses=expenses,
        overtime=overtime,
        corrections=corrections,
    )
    return _Facts(
        cra, submission, tjm, row.Client, row.Provider, approver_email, purchase_order, regime
    )


async def _carry_lines(session: AsyncSession, mission_id: str, month: str) -> list[CorrectionLine]:
    """The invoice balances the ledger applied to the month (domain.carry_over): those it
    took in, negative and naming their origin, then what it carried out."""
    rows = (
        await session.execute(
            select(CarriedBalanceRow)
            .where(
                CarriedBalanceRow.mission_id == mission_id,
                CarriedBalanceRow.kind == CarriedBalanceKind.INVOICE,
                (CarriedBalanceRow.into_month == month) | (CarriedBalanceRow.from_month == month),
            )
            .order_by(CarriedBalanceRow.from_month)
        )
    ).scalars()
    taken: list[CorrectionLine] = []
    out: list[CorrectionLine] = []
    for row in rows:
        if row.from_month == month:
            out.append(
                CorrectionLine(
                    label=carried_out_label(month), amount=row.amount, corrects_month=month
                )
            )
            continue
        balance = CarriedBalance(
            kind=CarryKind.INVOICE,
            from_month=row.from_month,
            amount=row.amount,
            invoice_number=row.invoice_number,
            into_month=month,
        )
        taken.append(
            CorrectionLine(
                label=carried_in_label(balance), amount=-row.amount, corrects_month=row.from_month
            )
        )
    return taken + out


def _required(value: str | None, what: str) -> str:
    if value is None:
        raise NotIssuable(f"the database lacks {what}")
    return value


async def _store_bpf(
    session: AsyncSession, facts: _Facts, bpf: Bpf, parties: tuple[Party, Party]
) -> str:
    cra = facts.cra
    if cra.validated_on is None or cra.approver_id is None:
        raise NotIssuable(f"CRA {cra.mission_id} {cra.month} has no validation date or approver")
    doc = bpf_document_for_cra(
        facts.submission,
        facts.tjm,
        number=bpf.number,
        issued_on=bpf.issued_on,
        client=parties[0],
        provider=parties[1],
        validated_on=cra.validated_on,
        approver=BpfApprover(id=cra.approver_id, email=facts.approver_email),
        submitted_on=cra.submitted_at.astimezone(PARIS).date() if cra.submitted_at else None,
        purchase_order=facts.purchase_order,
        regime=facts.vat_regime,
    )
    if doc.amount_excl_vat != bpf.amount_excl_vat:
        raise NotIssuable(
            f"BPF {bpf.number}: the lines give {doc.amount_excl_vat}, the row {bpf.amount_excl_vat}"
        )
    name = await _store(
        session, bpf.mission_id, bpf.month, BillingDocumentKind.BPF, doc, render_bpf_pdf
    )
    await session.execute(
        update(Bpf).where(Bpf.id == bpf.id, Bpf.file_ref.is_(None)).values(file_ref=name)
    )
    return name


async def _store_invoice(
    session: AsyncSession, facts: _Facts, invoice: Invoice, parties: tuple[Party, Party]
) -> str:
    doc = _invoice_document(facts, invoice, parties)
    ledger = (invoice.amount_excl_vat, invoice.vat_amount, invoice.amount_incl_vat)
    if (doc.total_excl_vat, doc.total_vat, doc.total_incl_vat) != ledger:
        raise NotIssuable(f"invoice {invoice.number}: the lines disagree with its row {ledger}")
    name = await _store(
        session,
        invoice.mission_id,
        invoice.month,
        BillingDocumentKind.INVOICE,
        doc,
        render_facturx_pdf,
    )
    await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.facturx_ref.is_(None))
        .values(pdf_ref=name, facturx_ref=name)
    )
    return name


def _invoice_document(
    facts: _Facts, invoice: Invoice, parties: tuple[Party, Party]
) -> InvoiceDocument:
    """The generated invoice as its row numbered and dated it."""
    number = _required(invoice.number, f"the number of the invoice of {invoice.mission_id}")
    if (
        invoice.issued_on is None
        or invoice.due_on is None
        or invoice.late_payment_rate is None
        or invoice.recovery_indemnity is None
    ):
        raise NotIssuable(f"invoice {number} lacks its issue date, due date or late-payment terms")
    return invoice_document_for_cra(
        facts.submission,
        facts.tjm,
        number=number,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        seller=parties[1],
        buyer=parties[0],
        regime=invoice.vat_regime,
        service_start=invoice.service_start,
        service_end=invoice.service_end,
        late_payment_rate=invoice.late_payment_rate,
        recovery_indemnity=invoice.recovery_indemnity,
        purchase_order=facts.purchase_order,
    )


class _Issued(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def issued_on(self) -> date: ...


D = TypeVar("D", bound=_Issued)


async def _store(
    session: AsyncSession,
    mission_id: str,
    month: str,
    kind: BillingDocumentKind,
    doc: D,
    render: Callable[[D], bytes],
) -> str:
    """Render `doc` (in a thread: rendering is CPU-bound, a few milliseconds, and renders of
    several documents may run at once: they share only read-only fonts) and keep its file,
    once per mission, month and kind; returns the file's name (`<number>.pdf`)."""
    name = f"{doc.number}.pdf"
    try:
        content = await asyncio.to_thread(render, doc)
    except Exception as exc:  # rendering is pure: what fails once fails on every retry
        raise NotIssuable(f"rendering {name} failed: {exc!r}") from exc
    await session.execute(
        insert(BillingDocument)
        .values(
            mission_id=mission_id,
            month=month,
            kind=kind,
            number=doc.number,
            name=name,
            content_type=PDF,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            issued_on=doc.issued_on,
        )
        .on_conflict_do_nothing(
            index_elements=[BillingDocument.mission_id, BillingDocument.month, BillingDocument.kind]
        )
    )
    return name
