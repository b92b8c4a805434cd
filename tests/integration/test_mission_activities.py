"""The mission transition activity against PostgreSQL and the SMTP sink: one transaction per
transition, and a retry (the worker died after the commit) writes and sends nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import (
    Contract,
    EmailOutbox,
    Mission,
    MissionEvent,
    MissionTerms,
    Proposal,
    ProposalStatusHistory,
    PurchaseOrder,
)
from schemas.activities import DeliverOutboxInput, FailedTransition, RecordProposalInput
from schemas.enums import MissionStage, PaymentOffer, ProposalStatus
from schemas.events import ProposalSubmitted
from schemas.mission import ContractTerms, EmailSpec, MissionTransition
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.support.factories import proposal_submitted
from tests.support.waits import mails, naming, own


@pytest_asyncio.fixture
async def activities(stack_settings: Settings) -> AsyncIterator[Activities]:
    built = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    yield built
    await built.close()


async def _proposal(activities: Activities) -> str:
    proposal = ProposalSubmitted.model_validate(proposal_submitted())
    await ActivityEnvironment().run(
        activities.proposals.record_proposal,
        RecordProposalInput(event_id="evt-1", occurred_at=datetime.now(UTC), proposal=proposal),
    )
    return proposal.proposal_id


async def _count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await conn.execute(stmt)).scalar_one())


def _context(pid: str) -> dict[str, Any]:
    return {
        "mission_id": pid,
        "proposal_id": pid,
        "rfp_id": "RFP-90064-1",
        "client_name": "Acme Industries",
        "provider_name": "Durand Conseil",
        "tjm": "650.00",
        "start_date": "2026-12-01",
        "end_date": "2027-05-31",
    }


async def test_contract_transition_writes_once_and_mails_once_when_retried(
    activities: Activities, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    pid = await _proposal(activities)
    transition = MissionTransition(
        mission_id=pid,
        key=f"contract.signed:{pid}:{uuid.uuid4().hex}",
        kind="contract.signed",
        at=datetime.now(UTC),
        proposal_status=ProposalStatus.RETAINED,
        stage=MissionStage.LEGAL_VERIFICATION,
        purchase_order="PO-42",
        contract=ContractTerms(
            version=1,
            signed_on=date(2026, 11, 27),
            payment_offer=PaymentOffer.FLASH,
            special_conditions_ref="CP-2026-7",
            tjm=Decimal("650.00"),
            start_date=date(2026, 12, 1),
            end_date=date(2027, 5, 31),
        ),
        emails=[
            EmailSpec(
                role="client",
                template="contract_signed",
                context={**_context(pid), "offer": "Flash"},
            ),
            EmailSpec(
                role="ops",
                template="compliance_lapsed",
                context={**_context(pid), "missing": "Kbis"},
            ),
        ],
    )
    env = ActivityEnvironment()
    first = await env.run(activities.missions.record_mission_transition, transition)
    again = await env.run(activities.missions.record_mission_transition, transition)

    assert first.applied and not again.applied
    # The transition's activity sent its e-mails itself, after its commit: nothing is left
    # for the workflow to deliver, and the retry sends nothing again.
    keys = [f"{transition.key}:client", f"{transition.key}:ops"]
    assert first.outbox_keys == again.outbox_keys == []
    expected_rows = (
        (MissionEvent, [MissionEvent.idempotency_key == transition.key], 1),
        (PurchaseOrder, [PurchaseOrder.mission_id == pid], 1),
        (Contract, [Contract.mission_id == pid], 1),
        (MissionTerms, [MissionTerms.mission_id == pid], 1),
        (EmailOutbox, [EmailOutbox.outbox_key.startswith(transition.key)], 2),
        (
            ProposalStatusHistory,
            [ProposalStatusHistory.proposal_id == pid, ProposalStatusHistory.status == "retained"],
            1,
        ),
    )
    for model, where, count in expected_rows:
        assert await _count(db_engine, model, *where) == count, model.__tablename__
    async with db_engine.connect() as conn:
        mission = (await conn.execute(select(Mission).where(Mission.mission_id == pid))).one()
        status = (
            await conn.execute(select(Proposal.status).where(Proposal.proposal_id == pid))
        ).scalar()
    assert (mission.stage, mission.payment_offer, mission.current_terms_version) == (
        "legal_verification",
        "flash",
        1,
    )
    assert status == "retained"

    for _ in range(2):  # delivered again by hand (ops): each was sent once
        result = await env.run(activities.outbox.deliver_outbox, DeliverOutboxInput(keys=keys))
        assert (result.sent, result.already_sent) == (0, 2)
    mine = transition.key.rsplit(":", 1)[1]  # the transition's own mails (not the proposal's)
    received = await mails(smtp_sink, naming(mine), 2)
    assert len(own(smtp_sink, mine)) == 2
    by_recipient = {m.rcpt_tos: m for m in received}
    client_mail = by_recipient[("claire.martin@acme.example",)]
    assert client_mail.subject == "Durand Conseil a signé vos conditions particulières"
    assert "offre de paiement Flash" in client_mail.text()
    ops_mail = by_recipient[("ops@contracting.localhost",)]
    assert "Kbis" in ops_mail.text() and "n'est pas interrompue automatiquement" in ops_mail.text()


async def test_a_refused_transition_is_recorded_and_alerted_once_however_often_retried(
    activities: Activities, db_engine: AsyncEngine
) -> None:
    """`record_failed_transition` retried (the worker died after its commit): one timeline row,
    one ops e-mail in the outbox, the same outbox key returned each time."""
    mission_id = f"P-{uuid.uuid4().hex[:10]}"
    failed = FailedTransition(
        mission_id=mission_id,
        key=f"purchase_order.confirmed:{mission_id}:evt-{'e' * 196}",
        kind="purchase_order.confirmed",
        at=datetime.now(UTC),
        reason="the database refused the data for good: SQLSTATE 22001",
    )
    env = ActivityEnvironment()
    first = await env.run(activities.missions.record_failed_transition, failed)
    again = await env.run(activities.missions.record_failed_transition, failed)
    assert first.applied and not again.applied
    assert first.outbox_keys == again.outbox_keys and len(first.outbox_keys) == 1
    timeline = (MissionEvent.mission_id == mission_id, MissionEvent.kind == "transition.failed")
    assert await _count(db_engine, MissionEvent, *timeline) == 1
    assert await _count(db_engine, EmailOutbox, EmailOutbox.mission_id == mission_id) == 1
