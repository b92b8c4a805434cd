"""Activities of the proposal stage: each transition is one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.outbox import SendNow, keep_for_later
from activities.transitions import queue_email, record_timeline
from db.models import (
    Approver,
    Client,
    Mission,
    Proposal,
    ProposalStatusHistory,
    Provider,
    Rfp,
)
from domain.errors import DomainError
from domain.vat import provider_vat_number
from schemas.activities import RecordProposalInput, TransitionResult
from schemas.enums import MissionStage, ProposalStatus
from schemas.events import PostalAddress, ProposalSubmitted, Registration
from schemas.names import RECORD_PROPOSAL


class ProposalActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], send_now: SendNow = keep_for_later
    ) -> None:
        """`send_now` sends the e-mails after the commit (activities.outbox)."""
        self._sessions = sessions
        self._send_now = send_now

    @activity.defn(name=RECORD_PROPOSAL)
    async def record_proposal(self, inp: RecordProposalInput) -> TransitionResult:
        """Write the parties, the proposal, its mission row, the timeline and both emails."""
        proposal = inp.proposal
        pid = proposal.proposal_id
        async with self._sessions.begin() as session:
            await _upsert_parties(session, proposal)
            await session.execute(
                insert(Proposal)
                .values(
                    proposal_id=pid,
                    rfp_id=proposal.rfp_id,
                    provider_siren=proposal.provider.siren,
                    client_id=proposal.client.id,
                    tjm=proposal.tjm,
                    start_date=proposal.start_date,
                    end_date=proposal.end_date,
                    status=ProposalStatus.SENT,
                )
                .on_conflict_do_nothing(index_elements=[Proposal.proposal_id])
            )
            await session.execute(
                insert(ProposalStatusHistory)
                .values(proposal_id=pid, status=ProposalStatus.SENT, at=inp.occurred_at)
                .on_conflict_do_nothing()
            )
            await session.execute(
                insert(Mission)
                .values(
                    mission_id=pid,
                    client_id=proposal.client.id,
                    provider_siren=proposal.provider.siren,
                    stage=MissionStage.PROPOSAL,
                    start_date=proposal.start_date,
                    end_date=proposal.end_date,
                )
                .on_conflict_do_nothing(index_elements=[Mission.mission_id])
            )
            applied = await record_timeline(
                session,
                key=f"proposal.submitted:{pid}",
                mission_id=pid,
                kind="proposal.submitted",
                at=inp.occurred_at,
                data={"event_id": inp.event_id, "tjm": str(proposal.tjm)},
            )
            context = _email_context(proposal)
            keys = [
                await queue_email(
                    session,
                    key=f"proposal.submitted:{pid}:provider",
                    mission_id=pid,
                    recipients=[proposal.provider.email],
                    template="proposal_acknowledged",
                    context=context,
                ),
                await queue_email(
                    session,
                    key=f"proposal.submitted:{pid}:client",
                    mission_id=pid,
                    recipients=[approver.email for approver in proposal.client.approvers],
                    template="proposal_received",
                    context=context,
                ),
            ]
        activity.logger.info("proposal %s recorded (new: %s)", pid, applied)
        return TransitionResult(applied=applied, outbox_keys=await self._send_now(keys))


async def _upsert_parties(session: AsyncSession, proposal: ProposalSubmitted) -> None:
    """Clients, approvers and providers are the platform's: the latest event wins."""
    client, provider = proposal.client, proposal.provider
    client_values = {
        "name": client.name,
        "siren": client.siren,
        **_address(client.address),
        **_registration(client.registration),
    }
    await session.execute(
        insert(Client)
        .values(client_id=client.id, **client_values)
        .on_conflict_do_update(index_elements=[Client.client_id], set_=client_values)
    )
    for approver in client.approvers:
        await session.execute(
            insert(Approver)
            .values(approver_id=approver.id, client_id=client.id, email=approver.email)
            .on_conflict_do_update(
                index_elements=[Approver.approver_id], set_={"email": approver.email}
            )
        )
    values: dict[str, Any] = {
        "name": provider.name,
        "email": provider.email,
        "country": provider.country,
        "legal_form": provider.legal_form,
        "vat_franchise": provider.vat_franchise,
        "vat_number": _vat_number(proposal),
        **_address(provider.address),
        **_registration(provider.registration),
    }
    await session.execute(
        insert(Provider)
        .values(siren=provider.siren, **values)
        .on_conflict_do_update(index_elements=[Provider.siren], set_=values)
    )
    await session.execute(
        insert(Rfp)
        .values(rfp_id=proposal.rfp_id, client_id=client.id)
        .on_conflict_do_nothing(index_elements=[Rfp.rfp_id])
    )


def _address(address: PostalAddress | None) -> dict[str, Any]:
    """The address columns to write; none for a proposal recorded before the contract had
    addresses (its retry must not erase one stored since)."""
    if address is None:
        return {}
    return {
        "address_lines": list(address.lines),
        "postal_code": address.postal_code,
        "city": address.city,
        "address_country": address.country,
    }


def _vat_number(proposal: ProposalSubmitted) -> str | None:
    """The provider's VAT number as its invoices print it. The gateway refused an invalid
    one (422); a proposal sent without it (a test, a replayed history) stores what it has,
    and an invoice that then lacks a mandatory number is not issued but alerted to ops."""
    provider = proposal.provider
    try:
        return provider_vat_number(
            provider.country,
            provider.siren,
            provider.vat_number,
            vat_franchise=provider.vat_franchise,
        )
    except DomainError:
        return provider.vat_number


def _registration(registration: Registration | None) -> dict[str, Any]:
    """The registration columns: all NULL for a party without one (an individual
    entrepreneur, a company abroad), so a later event that drops it erases it."""
    return {
        "registration_form": registration.form if registration else None,
        "share_capital": registration.share_capital if registration else None,
        "rcs_city": registration.rcs_city if registration else None,
    }


def _email_context(proposal: ProposalSubmitted) -> dict[str, Any]:
    return {
        "proposal_id": proposal.proposal_id,
        "rfp_id": proposal.rfp_id,
        "client_name": proposal.client.name,
        "provider_name": proposal.provider.name,
        "tjm": proposal.tjm,
        "start_date": proposal.start_date,
        "end_date": proposal.end_date,
    }
