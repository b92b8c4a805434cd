"""A mission as the ledger (PostgreSQL) records it: the system of record of what happened.

Support reads (`contracting mission show/explain`, the gateway's read routes) start here, so
they answer the same for a mission closed two years ago as for one running today: the
workflows' histories are kept only for the namespace's retention. The models are the ones the
workflows' `state` queries answer (`MissionState`, `CraState`, `PayoutState`), rebuilt from
the rows the activities wrote; what only a running workflow knows (a renewal on its way, the
open CRA cycles, reminders) is added by `starter.support.live`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    CarriedBalanceRow,
    ClientPayment,
    Contract,
    Cra,
    CraLine,
    CraLineKind,
    DocumentReview,
    Invoice,
    InvoiceKind,
    LegalDocument,
    Mission,
    MissionEvent,
    MissionTerms,
    Payout,
    Proposal,
    Provider,
    PurchaseOrder,
    Rfp,
)
from domain.client_payments import ClientPayment as Payment
from domain.client_payments import payment_progress
from domain.compliance import compliance_status
from domain.cra import PART_SEPARATOR
from domain.mission_rules import cycle_bounds
from schemas.compliance import ComplianceStatus, DocumentView
from schemas.cra import CraState
from schemas.enums import CraStatus, MissionStage, PaymentOffer
from schemas.mission import ContractTerms, LegalVerification, MissionState, TimelineEntry
from schemas.payouts import CarriedBalance, CarryKind, PayoutDateFacts, PayoutFacts, PayoutState

STARTED_STAGES = frozenset(
    {
        MissionStage.IN_PROGRESS,
        MissionStage.RENEWAL_PENDING,
        MissionStage.COMPLETED,
        MissionStage.TERMINATED,
    }
)
HELD_STAGES = STARTED_STAGES | {MissionStage.LEGAL_VERIFICATION, MissionStage.TO_START}


@dataclass(frozen=True)
class LedgerMission:
    """The mission's state as recorded, and its provider's compliance today."""

    state: MissionState
    compliance: ComplianceStatus


async def read_mission(session: AsyncSession, mission_id: str, today: date) -> LedgerMission | None:
    """The mission rebuilt from its rows; None when no proposal was ever recorded under it."""
    mission = await session.get(Mission, mission_id)
    proposal = await session.get(Proposal, mission_id)
    if mission is None or proposal is None:
        return None
    provider = await session.get(Provider, mission.provider_siren)
    rfp = await session.get(Rfp, proposal.rfp_id)
    assert provider is not None and rfp is not None, "foreign keys guarantee them"
    versions = await _contract_versions(session, mission_id)
    orders = (
        await session.execute(
            select(PurchaseOrder.po_number)
            .where(PurchaseOrder.mission_id == mission_id)
            .order_by(PurchaseOrder.confirmed_at, PurchaseOrder.id)
        )
    ).scalars()
    cras = await _cras(session, mission_id)
    timeline = await _timeline(session, mission_id)
    renewals = versions[1:]
    state = MissionState(
        mission_id=mission_id,
        rfp_id=proposal.rfp_id,
        client_id=mission.client_id,
        provider_siren=mission.provider_siren,
        stage=mission.stage,
        proposal_status=proposal.status,
        tjm=versions[-1].tjm if versions else proposal.tjm,
        start_date=mission.start_date,
        end_date=mission.end_date,
        qualification_meeting_at=proposal.qualification_meeting_at,
        qualification_meeting_held=(
            proposal.qualification_meeting_at is not None and mission.stage in HELD_STAGES
        ),
        cancel_reason=proposal.cancel_reason,
        rfp_closed=rfp.closed_at is not None,
        legal=LegalVerification(
            purchase_order=next(iter(reversed(list(orders))), None),
            contract=versions[0] if versions else None,
        ),
        started_on=mission.started_on
        or (mission.start_date if mission.stage in STARTED_STAGES else None),
        cra_months=[month for month, _ in cras],
        validated_months=[month for month, status in cras if status is CraStatus.VALIDATED],
        renewals=renewals,
        split_on=_split_on(renewals, [month for month, _ in cras]),
        ended_on=mission.ended_on,
        failed_transitions=[
            str(entry.detail) for entry in timeline if entry.kind == "transition.failed"
        ],
        timeline=timeline,
    )
    compliance = await read_compliance(session, provider, today)
    state.legal.provider_compliant = compliance.compliant
    state.legal.provider_missing = compliance.missing
    state.legal.provider_valid_until = compliance.valid_until
    return LedgerMission(state=state, compliance=compliance)


def _entry(event: MissionEvent) -> TimelineEntry:
    data = event.data or {}
    detail = data.get("detail")
    if not detail and event.kind == "transition.failed":
        detail = data.get("transition", "")
    return TimelineEntry(at=event.at, kind=event.kind, detail=str(detail or ""))


async def _contract_versions(session: AsyncSession, mission_id: str) -> list[ContractTerms]:
    """Every signed version of the terms, in order (version 1 is the first contract)."""
    rows = (
        await session.execute(
            select(MissionTerms, Contract)
            .join(
                Contract,
                (Contract.mission_id == MissionTerms.mission_id)
                & (Contract.version == MissionTerms.version),
            )
            .where(MissionTerms.mission_id == mission_id)
            .order_by(MissionTerms.version)
        )
    ).all()
    imported = await session.scalar(
        select(Invoice.id)
        .where(Invoice.mission_id == mission_id, Invoice.kind == InvoiceKind.IMPORTED)
        .limit(1)
    )
    return [
        ContractTerms(
            version=terms.version,
            signed_on=contract.signed_on,
            payment_offer=contract.payment_offer,
            special_conditions_ref=contract.special_conditions_ref,
            invoicing="provider" if imported is not None else "platform",
            tjm=terms.tjm,
            start_date=terms.start_date,
            end_date=terms.end_date,
        )
        for terms, contract in rows
    ]


def _split_on(renewals: list[ContractTerms], keys: Iterable[str]) -> list[date]:
    """Days a renewal cut its month into billing periods, as the CRAs recorded them."""
    split_months = {key.split(PART_SEPARATOR)[0] for key in keys if PART_SEPARATOR in key}
    return [
        terms.start_date
        for terms in renewals
        if terms.start_date.day > 1 and terms.start_date.strftime("%Y-%m") in split_months
    ]


async def read_compliance(session: AsyncSession, provider: Provider, on: date) -> ComplianceStatus:
    """The provider's documents with their last review, and its compliance on `on`."""
    documents = list(
        (
            await session.execute(
                select(LegalDocument)
                .where(LegalDocument.provider_siren == provider.siren)
                .order_by(LegalDocument.created_at, LegalDocument.document_id)
            )
        ).scalars()
    )
    last_review: dict[str, DocumentReview] = {}
    if documents:
        reviews = (
            await session.execute(
                select(DocumentReview)
                .where(DocumentReview.document_id.in_([d.document_id for d in documents]))
                .order_by(DocumentReview.reviewed_at)
            )
        ).scalars()
        last_review = {review.document_id: review for review in reviews}
    views = []
    for doc in documents:
        review = last_review.get(doc.document_id)
        views.append(
            DocumentView(
                document_id=doc.document_id,
                kind=doc.kind,
                issued_on=doc.issued_on,
                expires_on=doc.expires_on,
                file_ref=doc.file_ref,
                status=str(doc.status),
                comment=review.comment if review is not None and not review.accepted else None,
                uploaded_at=doc.created_at,
                reviewed_at=review.reviewed_at if review is not None else None,
            )
        )
    return compliance_status(provider.siren, provider.legal_form, views, on)


async def read_recorded(
    session: AsyncSession, running: MissionState, today: date
) -> LedgerMission | None:
    """For a mission whose workflow runs (its state is a moment ahead of the rows): only what
    the ledger adds to it — the whole timeline (the workflow keeps the latest entries) and the
    provider's documents — not the rows the workflow's state already holds (a support read is
    polled: it stays cheap). None when the provider is not written yet."""
    provider = await session.get(Provider, running.provider_siren)
    if provider is None:
        return None
    state = running.model_copy(update={"timeline": await _timeline(session, running.mission_id)})
    return LedgerMission(state=state, compliance=await read_compliance(session, provider, today))


async def _cras(session: AsyncSession, mission_id: str) -> list[tuple[str, CraStatus]]:
    rows = await session.execute(
        select(Cra.month, Cra.status).where(Cra.mission_id == mission_id).order_by(Cra.month)
    )
    return [(month, status) for month, status in rows]


async def _timeline(session: AsyncSession, mission_id: str) -> list[TimelineEntry]:
    events = (
        await session.execute(
            select(MissionEvent)
            .where(MissionEvent.mission_id == mission_id)
            .order_by(MissionEvent.at, MissionEvent.id)
        )
    ).scalars()
    return [_entry(event) for event in events]


async def read_cras(
    session: AsyncSession, state: MissionState, keys: list[str]
) -> dict[str, CraState]:
    """The recorded CRAs of these billing periods (a period without a row has none yet)."""
    rows = (
        await session.execute(
            select(Cra).where(Cra.mission_id == state.mission_id, Cra.month.in_(keys))
        )
    ).scalars()
    billed = await _billing(session, state.mission_id, keys)
    found: dict[str, CraState] = {}
    for cra in rows:
        start, end = cycle_bounds(state, cra.month)
        payout = billed.get(cra.month)
        found[cra.month] = CraState(
            mission_id=state.mission_id,
            month=cra.month,
            status=cra.status,
            max_days=max((end - start).days + 1, 0),
            days=cra.days,
            rejection_comment=cra.rejection_comment,
            submitted_at=cra.submitted_at,
            rejected_at=cra.rejected_at,
            validated_at=cra.validated_at,
            validated_on=cra.validated_on,
            approver_id=cra.approver_id,
            invoice_number=payout.invoice.number if payout and payout.invoice else None,
            payout_status=payout.payout.status if payout else None,
            payout_date=payout.payout.due_on if payout else None,
        )
    return found


@dataclass(frozen=True)
class _Billed:
    payout: Payout
    invoice: Invoice | None


async def _billing(session: AsyncSession, mission_id: str, keys: list[str]) -> dict[str, _Billed]:
    rows = (
        await session.execute(
            select(Payout, Invoice)
            .outerjoin(Invoice, Invoice.id == Payout.invoice_id)
            .where(Payout.mission_id == mission_id, Payout.month.in_(keys))
        )
    ).all()
    return {payout.month: _Billed(payout, invoice) for payout, invoice in rows}


async def read_payouts(
    session: AsyncSession, mission_id: str, keys: list[str], validated_on: dict[str, date]
) -> dict[str, PayoutState]:
    """The recorded payouts of these billing periods, with the facts of their date (the
    schedule stored at validation), the client's payments and the carried balances."""
    billed = await _billing(session, mission_id, keys)
    carried = (
        await session.execute(
            select(CarriedBalanceRow).where(CarriedBalanceRow.mission_id == mission_id)
        )
    ).scalars()
    balances = [
        (
            row,
            CarriedBalance(
                kind=CarryKind(str(row.kind)),
                from_month=row.from_month,
                amount=row.amount,
                invoice_number=row.invoice_number,
                into_month=row.into_month,
            ),
        )
        for row in carried
    ]
    found: dict[str, PayoutState] = {}
    for key, each in billed.items():
        payout, invoice = each.payout, each.invoice
        facts = PayoutFacts(
            validated_on=validated_on.get(key) or payout.created_at.date(),
            invoice_date=invoice.issued_on if invoice is not None else None,
            **_schedule(payout.schedule),
        )
        if invoice is not None:
            await _client_payments(session, invoice, payout.amount, facts)
        found[key] = PayoutState(
            mission_id=mission_id,
            month=key,
            offer=PaymentOffer(payout.offer),
            status=payout.status,
            invoice_number=invoice.number if invoice is not None else None,
            payout_date=payout.due_on,
            service_amount=await _service_amount(session, mission_id, key),
            amount=payout.amount,
            fee=payout.fee,
            net_amount=payout.net_amount,
            paid_at=payout.paid_at,
            reason=payout.status_reason,
            invoice_blocked_reason=invoice.blocked_reason if invoice is not None else None,
            facts=facts,
            carried_in=[b for row, b in balances if row.into_month == key],
            carried_out=[b for row, b in balances if row.from_month == key],
        )
    return found


def _schedule(stored: dict[str, Any] | None) -> dict[str, Any]:
    if not stored:
        return {}
    return PayoutDateFacts.model_validate(stored).model_dump()


async def _service_amount(session: AsyncSession, mission_id: str, key: str) -> Decimal:
    """The days of service of the period's CRA (its `days` lines), excl. VAT."""
    total = await session.scalar(
        select(func.coalesce(func.sum(CraLine.amount), 0))
        .join(Cra, Cra.id == CraLine.cra_id)
        .where(Cra.mission_id == mission_id, Cra.month == key, CraLine.kind == CraLineKind.DAYS)
    )
    return Decimal(total or 0).quantize(Decimal("0.01"))


async def _client_payments(
    session: AsyncSession, invoice: Invoice, gross: Decimal, facts: PayoutFacts
) -> None:
    rows = (
        await session.execute(
            select(ClientPayment.amount, ClientPayment.paid_on)
            .where(ClientPayment.invoice_id == invoice.id)
            .order_by(ClientPayment.paid_on, ClientPayment.id)
        )
    ).all()
    if not rows:
        return
    total = invoice.amount_incl_vat if invoice.amount_incl_vat is not None else gross
    progress = payment_progress(total, [Payment(amount=a, paid_on=d) for a, d in rows])
    facts.client_paid_on = progress.complete_on
    facts.client_paid = progress.paid
    facts.client_still_due = progress.still_due
    facts.client_overpaid_by = progress.overpaid_by
