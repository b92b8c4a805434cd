"""The mission from proposal to "in progress" on the time-skipping server, with the real
activities (PostgreSQL, SMTP sink) and the real provider compliance workflow, driven by
`mission_harness` (tests/support/mission.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from db.models import Contract, Invoice, Mission, MissionEvent, Proposal, PurchaseOrder
from domain.clock import paris_instant
from domain.cra import submission_opens_on
from schemas.cra import CraState
from schemas.enums import DocumentKind, PaymentOffer
from schemas.events import (
    ContractSigned,
    CraSubmitted,
    CraValidated,
    DocumentReviewed,
    ProposalCancelled,
    ProposalLost,
    ProposalRated,
    ProposalRead,
    ProposalRetained,
    ProposalUpdated,
    PurchaseOrderConfirmed,
    QualificationMeetingHeld,
    QualificationMeetingScheduled,
    RfpClosed,
)
from schemas.ids import cra_workflow_id, fan_out_update_id, provider_workflow_id
from schemas.mission import MissionState
from schemas.names import DOCUMENT_REVIEWED, DOCUMENT_UPLOADED
from starter.devstack.mailsink import ReceivedMessage
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import refused_update, send_update, skip_time
from tests.support.db import count as count_rows
from tests.support.factories import DOCUMENTS, document_events
from tests.support.mission import SUBMIT_AT, MissionHarness
from tests.support.waits import about, eventually

Handle = WorkflowHandle[Any, Any]


async def submit(h: MissionHarness, *, start_in_days: int = 10, **provider: Any) -> Handle:
    """`proposal.submitted` for a mission starting in `start_in_days` days, for 180 days."""
    start = await h.today() + timedelta(days=start_in_days)
    return await h.submit(start, start + timedelta(days=180), prefix="P", **provider)


def _upload(state: MissionState, kind: DocumentKind, issued_on: date, document_id: str) -> Any:
    """The provider uploads a document (its review is the test's)."""
    return document_events(state.provider_siren, kind, issued_on, document_id)[0]


async def test_proposal_read_rated_updated_then_lost_ends_the_mission(
    mission_harness: MissionHarness, db_engine: AsyncEngine
) -> None:
    handle = await submit(mission_harness)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.send(handle, "proposal.read", ProposalRead(proposal_id=pid))
    await mission_harness.send(
        handle, "proposal.rated", ProposalRated(proposal_id=pid, interesting=True)
    )
    await mission_harness.send(
        handle, "proposal.updated", ProposalUpdated(proposal_id=pid, tjm="700.00")
    )
    accepted = await mission_harness.send(handle, "proposal.lost", ProposalLost(proposal_id=pid))

    assert accepted is None or accepted["stage"] == "lost"  # see Harness.send
    result = await handle.result()
    assert result.stage == "lost"
    state = await mission_harness.state(handle)
    assert state.tjm == 700
    assert [e.kind for e in state.timeline] == [
        "proposal.submitted",
        "proposal.read",
        "proposal.rated",
        "proposal.updated",
        "proposal.lost",
    ]
    tjm_mail = (await mission_harness.mails(about(pid, "modifié son TJM"), 1))[0]
    assert tjm_mail.rcpt_tos == ("claire.martin@acme.example",)
    assert "650,00 €" in tjm_mail.text() and "700,00 €" in tjm_mail.text()
    await mission_harness.mails(about(pid, "lue par"), 1)
    await mission_harness.mails(about(pid, "jugée intéressante"), 1)
    await mission_harness.mails(about(pid, "n'a pas été retenue"), 1)
    async with db_engine.connect() as conn:
        row = (await conn.execute(select(Proposal).where(Proposal.proposal_id == pid))).one()
        stage = (
            await conn.execute(select(Mission.stage).where(Mission.mission_id == pid))
        ).scalar()
    assert row.status == "lost" and row.tjm == 700
    assert stage == "lost"


async def test_events_that_do_not_apply_are_refused_before_history(
    mission_harness: MissionHarness,
) -> None:
    handle = await submit(mission_harness)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.send(handle, "proposal.read", ProposalRead(proposal_id=pid))

    assert "only to a proposal that is envoyée" in await refused_update(
        handle, "proposal.read", ProposalRead(proposal_id=pid)
    )
    assert "schedule a qualification meeting" in await refused_update(
        handle,
        "qualification_meeting.scheduled",
        QualificationMeetingScheduled(proposal_id=pid, at=datetime.now(UTC) + timedelta(days=3)),
    )
    assert "during legal verification" in await refused_update(
        handle,
        "purchase_order.confirmed",
        PurchaseOrderConfirmed(proposal_id=pid, po_number="PO-1"),
    )
    await mission_harness.send(handle, "proposal.retained", ProposalRetained(proposal_id=pid))
    assert "client has already decided" in await refused_update(
        handle, "proposal.updated", ProposalUpdated(proposal_id=pid, tjm="800.00")
    )
    assert "client has already decided" in await refused_update(
        handle, "proposal.cancelled", ProposalCancelled(proposal_id=pid, reason="trop tard")
    )

    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 2  # read and retained; every refusal left no trace
    state = await mission_harness.state(handle)
    assert [e.kind for e in state.timeline][1:] == ["proposal.read", "proposal.retained"]
    assert state.tjm == 650


async def test_same_event_twice_has_one_effect(
    mission_harness: MissionHarness, db_engine: AsyncEngine
) -> None:
    handle = await submit(mission_harness)
    pid = (await mission_harness.state(handle)).mission_id
    for _ in range(2):
        await send_update(handle, "proposal.read", ProposalRead(proposal_id=pid), "evt-read-1")
    state = await mission_harness.state(handle)
    assert [e.kind for e in state.timeline] == ["proposal.submitted", "proposal.read"]
    await mission_harness.mails(about(pid, "lue par"), 1)
    stmt = select(func.count()).where(
        MissionEvent.mission_id == pid, MissionEvent.kind == "proposal.read"
    )
    assert await count_rows(db_engine, stmt) == 1
    assert len(mission_harness.sent(pid, "lue par")) == 1


async def test_provider_cancels_with_a_reason(mission_harness: MissionHarness) -> None:
    handle = await submit(mission_harness)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.send(
        handle,
        "proposal.cancelled",
        ProposalCancelled(proposal_id=pid, reason="Autre mission acceptée"),
    )
    assert (await handle.result()).stage == "cancelled"
    [mail] = await mission_harness.mails(about(pid, "a annulé sa proposition"), 1)
    assert "Autre mission acceptée" in mail.text()
    assert (await mission_harness.state(handle)).cancel_reason == "Autre mission acceptée"


async def test_qm_reminder_fires_the_day_before_and_moves_with_a_reschedule(
    mission_harness: MissionHarness,
) -> None:
    handle = await submit(mission_harness)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.send(
        handle, "proposal.rated", ProposalRated(proposal_id=pid, interesting=True)
    )
    now = await mission_harness.env.get_current_time()
    first = now + timedelta(days=3)
    moved = now + timedelta(days=5)
    await mission_harness.send(
        handle,
        "qualification_meeting.scheduled",
        QualificationMeetingScheduled(proposal_id=pid, at=first),
    )
    state = await mission_harness.state(handle)
    assert state.stage == "qualification" and state.proposal_status == "qualification_meeting"
    await mission_harness.send(
        handle,
        "qualification_meeting.scheduled",
        QualificationMeetingScheduled(proposal_id=pid, at=moved),
    )
    reminder = about(pid, "Rappel : entretien")

    # Past the first meeting's eve: no reminder, the meeting was moved.
    await skip_time(mission_harness.env, timedelta(days=2, hours=12))
    assert not mission_harness.sent(pid, "Rappel : entretien")
    # Just before the new eve: still nothing; just after: one reminder to each side.
    await skip_time(
        mission_harness.env,
        moved - timedelta(days=1) - await mission_harness.now() - timedelta(minutes=5),
    )
    assert not mission_harness.sent(pid, "Rappel : entretien")
    await skip_time(mission_harness.env, timedelta(minutes=10))
    mails = await mission_harness.mails(reminder, 2)
    assert {m.rcpt_tos for m in mails} == {
        ("paul@durand-conseil.example",),
        ("claire.martin@acme.example",),
    }
    reminded = [
        e
        for e in (await mission_harness.state(handle)).timeline
        if e.kind == "qualification_meeting.reminder"
    ]
    assert len(reminded) == 1 and reminded[0].at >= moved - timedelta(days=1)
    await mission_harness.send(
        handle, "qualification_meeting.held", QualificationMeetingHeld(proposal_id=pid)
    )
    assert "already marked as held" in await refused_update(
        handle, "qualification_meeting.held", QualificationMeetingHeld(proposal_id=pid)
    )


async def test_rfp_closed_keeps_the_retained_and_loses_the_others(
    mission_harness: MissionHarness,
) -> None:
    retained = await submit(mission_harness)
    other = await submit(mission_harness)
    won = (await mission_harness.state(retained)).mission_id
    lost = (await mission_harness.state(other)).mission_id
    await mission_harness.send(retained, "proposal.retained", ProposalRetained(proposal_id=won))
    await mission_harness.send(other, "proposal.read", ProposalRead(proposal_id=lost))

    for handle in (retained, other):
        await mission_harness.send(handle, "rfp.closed", RfpClosed(rfp_id="RFP-90064-1"))

    assert (await other.result()).stage == "lost"
    assert (await mission_harness.state(retained)).stage == "legal_verification"
    await mission_harness.mails(about(won, "est clôturé"), 1)
    [lost_mail] = await mission_harness.mails(about(lost, "n'a pas été retenue"), 1)
    assert "est clôturé" in lost_mail.text()
    assert "RFP-1" in await refused_update(retained, "rfp.closed", RfpClosed(rfp_id="RFP-1"))
    assert "already closed" in await refused_update(
        retained, "rfp.closed", RfpClosed(rfp_id="RFP-90064-1")
    )


async def test_rfp_closed_mails_each_favourite_once_across_missions_and_redeliveries(
    mission_harness: MissionHarness,
) -> None:
    """Two missions share the RFP; the event reaches both as the gateway fans it out
    (update id `<event id>:<proposal>`), then both again: two favourited addresses get one
    e-mail each (one outbox key per event and address)."""
    retained = await submit(mission_harness)
    other = await submit(mission_harness)
    won = (await mission_harness.state(retained)).mission_id
    lost = (await mission_harness.state(other)).mission_id
    await mission_harness.send(retained, "proposal.retained", ProposalRetained(proposal_id=won))
    rfp = (await mission_harness.state(retained)).rfp_id
    tag = uuid.uuid4().hex[:8]
    fans = [f"fan-{tag}@example.org", f"Other-{tag}@Example.org"]
    closed = RfpClosed(rfp_id=rfp, favourited_by=[*fans, fans[0].upper()])
    assert closed.favourited_by == [fans[0], fans[1].lower()]
    event_id = f"evt-{uuid.uuid4().hex}"
    for _ in range(2):  # delivered twice
        for handle, pid in ((retained, won), (other, lost)):
            try:
                await send_update(handle, "rfp.closed", closed, fan_out_update_id(event_id, pid))
            except Exception:  # the lost mission has completed: nothing left to update
                assert pid == lost

    assert (await other.result()).stage == "lost"
    await mission_harness.mails(about(won, "est clôturé"), 1)
    addressed = [a.lower() for a in fans]

    def to_fan(m: ReceivedMessage) -> bool:
        return any(a in addressed for a in m.rcpt_tos) and "vos favoris" in m.subject

    got = await mission_harness.mails(to_fan, 2)
    await asyncio.sleep(1.0)  # a duplicate would have arrived by now
    got = [m for m in mission_harness.sink.messages if to_fan(m)] if mission_harness.sink else got
    assert sorted(tuple(m.rcpt_tos) for m in got) == sorted((a,) for a in addressed)
    assert all(rfp in m.subject for m in got)


async def test_rejected_document_blocks_the_start_until_a_valid_one_is_accepted(
    mission_harness: MissionHarness, db_engine: AsyncEngine
) -> None:
    handle = await submit(mission_harness, start_in_days=10)
    state = await mission_harness.state(handle)
    pid = state.mission_id
    await mission_harness.send(handle, "proposal.retained", ProposalRetained(proposal_id=pid))
    state = await mission_harness.until(handle, lambda s: len(s.legal.provider_missing) == 4)
    assert state.stage == "legal_verification"
    missing = state.legal.missing()
    assert missing["client"] == ["bon de commande (purchase order)"]
    assert any("signature" in item for item in missing["provider"])

    provider = mission_harness.env.client.get_workflow_handle(
        provider_workflow_id(state.provider_siren)
    )
    today = await mission_harness.today()
    for kind in DOCUMENTS:
        await mission_harness.send(
            provider, DOCUMENT_UPLOADED, _upload(state, kind, today, f"D-{pid}-{kind.value}")
        )
    for kind in DOCUMENTS[1:]:
        await mission_harness.send(
            provider,
            DOCUMENT_REVIEWED,
            DocumentReviewed(document_id=f"D-{pid}-{kind.value}", accepted=True),
        )
    await mission_harness.send(
        provider,
        DOCUMENT_REVIEWED,
        DocumentReviewed(
            document_id=f"D-{pid}-urssaf_vigilance", accepted=False, comment="Attestation illisible"
        ),
    )
    await mission_harness.sign(handle, PaymentOffer.FLASH, po_number="PO-77")
    state = await mission_harness.until(
        handle, lambda s: any("Attestation illisible" in m.reason for m in s.legal.provider_missing)
    )
    assert state.stage == "legal_verification"
    assert state.legal.missing()["client"] == []

    # Far past the start date, still blocked: verification is pending.
    await skip_time(mission_harness.env, timedelta(days=12))
    state = await mission_harness.state(handle)
    assert state.stage == "legal_verification" and state.started_on is None

    await mission_harness.send(
        provider,
        DOCUMENT_UPLOADED,
        _upload(state, DOCUMENTS[0], await mission_harness.today(), f"D-{pid}-urssaf-2"),
    )
    await mission_harness.send(
        provider,
        DOCUMENT_REVIEWED,
        DocumentReviewed(document_id=f"D-{pid}-urssaf-2", accepted=True),
    )
    state = await mission_harness.until(handle, lambda s: s.stage == "in_progress")
    assert state.started_on == await mission_harness.today()

    async def started_row() -> bool:
        # The state answers once the handler decided; the row follows when the main loop
        # has written the transition.
        async with db_engine.connect() as conn:
            stage = await conn.execute(select(Mission.stage).where(Mission.mission_id == pid))
            return bool(stage.scalar() == "in_progress")

    await eventually(started_row)
    async with db_engine.connect() as conn:
        po = (
            await conn.execute(
                select(PurchaseOrder.po_number).where(PurchaseOrder.mission_id == pid)
            )
        ).scalar()
        offer = (
            await conn.execute(select(Contract.payment_offer).where(Contract.mission_id == pid))
        ).scalar()
        stage = (
            await conn.execute(select(Mission.stage).where(Mission.mission_id == pid))
        ).scalar()
    assert (po, offer, stage) == ("PO-77", "flash", "in_progress")
    [rejected] = await mission_harness.mails(lambda m: "Attestation illisible" in m.text(), 1)
    assert rejected.rcpt_tos == ("paul@durand-conseil.example",)


async def test_mission_starts_on_its_start_date_not_before(mission_harness: MissionHarness) -> None:
    handle = await submit(mission_harness, start_in_days=20)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.retain_with_documents(handle, await mission_harness.today())
    await mission_harness.sign(handle, PaymentOffer.BASIC, po_number="PO-1")
    state = await mission_harness.until(handle, lambda s: s.stage == "to_start")
    await mission_harness.mails(about(pid, "démarrage le"), 2)

    start = paris_instant(state.start_date)
    await skip_time(
        mission_harness.env,
        start - await mission_harness.env.get_current_time() - timedelta(minutes=1),
    )
    assert (await mission_harness.state(handle)).stage == "to_start"
    await skip_time(mission_harness.env, timedelta(minutes=2))
    state = await mission_harness.until(handle, lambda s: s.stage == "in_progress")
    assert state.started_on == state.start_date
    await mission_harness.mails(about(pid, "a démarré"), 2)


async def test_ineligible_offers_are_refused(mission_harness: MissionHarness) -> None:
    french = await submit(mission_harness)
    foreign = await submit(mission_harness, country="FI")
    for handle in (french, foreign):
        pid = (await mission_harness.state(handle)).mission_id
        await mission_harness.send(handle, "proposal.retained", ProposalRetained(proposal_id=pid))
    fr_id = (await mission_harness.state(french)).mission_id
    fi_id = (await mission_harness.state(foreign)).mission_id
    old = ContractSigned(
        proposal_id=fr_id,
        signed_on=date(2025, 4, 1),
        payment_offer="flash",
        special_conditions_ref="CP",
    )
    assert "before 2025-04-28" in await refused_update(french, "contract.signed", old)
    abroad = ContractSigned(
        proposal_id=fi_id,
        signed_on=await mission_harness.today(),
        payment_offer="basic",
        special_conditions_ref="CP",
    )
    assert "France" in await refused_update(foreign, "contract.signed", abroad)
    b2b = abroad.model_copy(update={"payment_offer": "back_to_back"})
    await mission_harness.send(foreign, "contract.signed", b2b)
    assert "already signed" in await refused_update(foreign, "contract.signed", b2b)


async def test_compliance_lapse_during_the_mission_alerts_ops_and_provider(
    mission_harness: MissionHarness,
) -> None:
    handle = await submit(mission_harness, start_in_days=0)
    pid = (await mission_harness.state(handle)).mission_id
    issued = await mission_harness.today() - timedelta(
        days=80
    )  # Kbis: 90 days, so lapses in 10 days
    await mission_harness.retain_with_documents(handle, issued)
    await mission_harness.sign(handle, PaymentOffer.EXPRESS, po_number="PO-9")
    state = await mission_harness.until(handle, lambda s: s.stage == "in_progress")
    assert state.legal.provider_valid_until == issued + timedelta(days=90)

    await skip_time(
        mission_harness.env,
        paris_instant(issued + timedelta(days=90))
        - await mission_harness.env.get_current_time()
        + timedelta(hours=1),
    )
    state = await mission_harness.until(handle, lambda s: s.compliance_alert)
    assert state.stage == "in_progress"  # not stopped: a product decision
    mails = await mission_harness.mails(about(pid, "documents légaux expirés"), 2)
    assert {m.rcpt_tos for m in mails} == {
        ("paul@durand-conseil.example",),
        ("ops@contracting.localhost",),
    }
    await record_history(handle, "mission_contracting_in_progress")


async def test_a_started_mission_opens_its_monthly_cra_cycle_and_learns_of_its_validation(
    mission_harness: MissionHarness, db_engine: AsyncEngine
) -> None:
    handle = await submit(mission_harness, start_in_days=0)
    pid = (await mission_harness.state(handle)).mission_id
    await mission_harness.retain_with_documents(handle, await mission_harness.today())
    await mission_harness.sign(handle, PaymentOffer.FLASH, po_number="PO-3")
    month = (await mission_harness.today()).strftime("%Y-%m")
    state = await mission_harness.until(handle, lambda s: s.cra_months == [month])
    period = state.start_date, state.end_date

    cycle = mission_harness.env.client.get_workflow_handle(cra_workflow_id(pid, month))
    cra = await cycle.query("state", result_type=CraState)
    assert cra.status == "draft"
    # Days not yet worked are not billed: the provider files on the day the CRA opens.
    await mission_harness.sleep_until(paris_instant(submission_opens_on(month, *period), SUBMIT_AT))
    await mission_harness.send(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=month, days=Decimal("1"))
    )
    await mission_harness.send(
        cycle, "cra.validated", CraValidated(mission_id=pid, month=month, approver_id="APR-1")
    )
    state = await mission_harness.until(handle, lambda s: s.validated_months == [month])
    assert state.stage == "in_progress"
    async with db_engine.connect() as conn:
        invoice = (
            await conn.execute(
                select(Invoice.number, Invoice.amount_excl_vat).where(
                    Invoice.mission_id == pid, Invoice.month == month
                )
            )
        ).one()
    assert invoice.number and invoice.amount_excl_vat == Decimal("650.00")
    await record_history(handle, "mission_with_cra_cycle")
