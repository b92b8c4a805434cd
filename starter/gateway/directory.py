"""The gateway's lookups in PostgreSQL, for events that do not name their workflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.models import Invoice, LegalDocument, ProcessedEvent, ProcessedEventStatus, Proposal
from schemas.ids import proposal_of_mission_workflow

PROPOSAL_SUBMITTED = "proposal.submitted"
"""The event type as the ledger stores it (a workflow start, not an update name)."""


class DatabaseDirectory:
    """Reads what the activities wrote: proposals by RFP, documents by id, invoices by number."""

    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self._sessions = sessions

    async def proposals_of_rfp(self, rfp_id: str) -> Sequence[str]:
        """The proposals the worker wrote, and those the gateway accepted (its ledger, written
        before it answers 202) that the worker has not written yet: PostgreSQL's `proposals`
        alone would miss them (issue 12 point 7), and Temporal's visibility is only
        eventually consistent."""
        async with self._sessions() as session:
            written = select(Proposal.proposal_id).where(Proposal.rfp_id == rfp_id)
            accepted = select(ProcessedEvent.workflow_id).where(
                ProcessedEvent.type == PROPOSAL_SUBMITTED,
                ProcessedEvent.rfp_id == rfp_id,
                ProcessedEvent.status == ProcessedEventStatus.ACCEPTED,
                ProcessedEvent.workflow_id.is_not(None),
            )
            proposals = set((await session.execute(written)).scalars())
            for workflow_id in (await session.execute(accepted)).scalars():
                proposals.add(proposal_of_mission_workflow(workflow_id))
            return sorted(proposals)

    async def proposals_being_submitted(self, rfp_id: str) -> Sequence[str]:
        async with self._sessions() as session:
            stmt = (
                select(ProcessedEvent.event_id)
                .where(
                    ProcessedEvent.type == PROPOSAL_SUBMITTED,
                    ProcessedEvent.rfp_id == rfp_id,
                    ProcessedEvent.status == ProcessedEventStatus.PROCESSING,
                    ProcessedEvent.lease_expires_at > func.now(),
                )
                .order_by(ProcessedEvent.event_id)
            )
            return list((await session.execute(stmt)).scalars())

    async def provider_of_document(self, document_id: str) -> str | None:
        async with self._sessions() as session:
            stmt = select(LegalDocument.provider_siren).where(
                LegalDocument.document_id == document_id
            )
            siren: str | None = (await session.execute(stmt)).scalar_one_or_none()
            return siren

    async def invoices_by_number(self, number: str) -> Sequence[tuple[str, str, str]]:
        async with self._sessions() as session:
            stmt = (
                select(Invoice.issuer_siren, Invoice.mission_id, Invoice.month)
                .where(Invoice.number == number)
                .order_by(Invoice.issuer_siren)
            )
            return [(row[0], row[1], row[2]) for row in await session.execute(stmt)]
