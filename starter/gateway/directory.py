"""The gateway's lookups in PostgreSQL, for events that do not name their workflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.models import Invoice, LegalDocument, Proposal


class DatabaseDirectory:
    """Reads what the activities wrote: proposals by RFP, documents by id, invoices by number."""

    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self._sessions = sessions

    async def proposals_of_rfp(self, rfp_id: str) -> Sequence[str]:
        async with self._sessions() as session:
            stmt = (
                select(Proposal.proposal_id)
                .where(Proposal.rfp_id == rfp_id)
                .order_by(Proposal.proposal_id)
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
