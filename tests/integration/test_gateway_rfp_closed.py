"""`rfp.closed` reaches every proposal the gateway accepted (issue 12 point 7), including those
the worker has not written to PostgreSQL yet: the gateway's ledger, written before it answers
202, is read with the `proposals` table. Here the worker's `record_proposal` is held until the
RFP is closed, so none of the proposals is in `proposals` when `rfp.closed` arrives."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.proposals import ProposalActivities
from db.engine import session_factory
from db.models import EmailOutbox, Proposal
from schemas.activities import RecordProposalInput, TransitionResult
from schemas.names import RECORD_PROPOSAL
from settings import Settings
from starter.gateway.processor import EventProcessor
from tests.support.db import count
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import (
    GatewayTestClient,
    gateway_of,
    leave_claim,
    ledger,
    post,
    provider,
    view,
)
from tests.support.waits import eventually
from tests.support.workers import real_worker

HELD_AT_MOST = 20.0
"""The held activity gives up (and fails the test) after this: it never waits unbounded."""


async def test_rfp_closed_right_after_the_proposals_reaches_those_the_worker_has_not_written(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings, db_engine: AsyncEngine
) -> None:
    release = asyncio.Event()
    real = ProposalActivities(session_factory(db_engine))

    @activity.defn(name=RECORD_PROPOSAL)
    async def held_record_proposal(inp: RecordProposalInput) -> TransitionResult:
        await asyncio.wait_for(release.wait(), timeout=HELD_AT_MOST)
        return await real.record_proposal(inp)

    rfp = f"RFP-{uuid.uuid4().hex[:8]}"
    async with real_worker(dev_server_env, stack_settings, held_record_proposal) as (queue, _):
        processor = EventProcessor(
            dev_server_env.client,
            session_factory(db_engine),
            queue,
            rpc_timeout=timedelta(seconds=10),
        )
        async with gateway_of(processor, stack_settings) as gateway:
            retained, *undecided = [await _submit(gateway, rfp) for _ in range(3)]
            steps: list[tuple[str, dict[str, Any]]] = [
                ("proposal.read", {}),
                ("proposal.rated", {"interesting": True}),
                ("proposal.retained", {}),
            ]
            for event_type, extra in steps:
                answer = await post(gateway, event_type, proposal_id=retained, **extra)
                assert answer.status_code == 202, answer.text

            written = select(func.count()).where(Proposal.rfp_id == rfp)
            assert await count(db_engine, written) == 0  # the worker has written none of them
            closed = envelope("rfp.closed", {"rfp_id": rfp})
            answer = await gateway.post_event(closed)
            assert answer.status_code == 202, answer.text
            notified = sorted(f"mission-{pid}" for pid in (retained, *undecided))
            assert sorted(answer.json()["workflow_ids"]) == notified
            assert answer.json()["skipped"] == {}
            assert await count(db_engine, written) == 0  # still none: the ledger found them
            release.set()

            async def outcomes() -> bool:
                stages = [(await view(gateway, pid)).state.stage for pid in (retained, *undecided)]
                return stages == ["legal_verification", "lost", "lost"]

            await eventually(outcomes, within=30)
            again = await gateway.post_event(closed)
            assert again.status_code == 200 and again.json()["status"] == "duplicate"

            for pid in (retained, *undecided):
                kinds = [entry.kind for entry in (await view(gateway, pid)).state.timeline]
                assert kinds.count("rfp.closed") == 1, (pid, kinds)
            await eventually(lambda: _outcome_mails_sent(db_engine, retained, undecided), 30)


async def _submit(gateway: GatewayTestClient, rfp: str) -> str:
    data = proposal_submitted(rfp_id=rfp, provider=provider())
    answer = await gateway.post_event(envelope("proposal.submitted", data))
    assert answer.status_code == 202, answer.text
    return str(data["proposal_id"])


async def _outcome_mails_sent(engine: AsyncEngine, retained: str, lost: list[str]) -> bool:
    """Each provider told its outcome once (and every e-mail of the missions sent)."""
    for pid, template in [(retained, "rfp_closed_retained"), *((p, "proposal_lost") for p in lost)]:
        told = select(func.count()).where(
            EmailOutbox.mission_id == pid,
            EmailOutbox.template == template,
            EmailOutbox.status == "sent",
        )
        pending = select(func.count()).where(
            EmailOutbox.mission_id == pid, EmailOutbox.status != "sent"
        )
        if await count(engine, told) != 1 or await count(engine, pending) != 0:
            return False
    return True


async def test_rfp_closed_while_a_proposal_of_the_rfp_is_being_submitted_is_a_503_to_retry(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """A `proposal.submitted` still dispatching (a live claim) may be accepted before the
    RFP's closure is: the closure waits for it rather than miss it."""
    rfp = f"RFP-{uuid.uuid4().hex[:8]}"
    accepted = await _submit(gateway, rfp)
    submitting = envelope("proposal.submitted", proposal_submitted(rfp_id=rfp, provider=provider()))
    await leave_claim(db_engine, submitting, lease_left=timedelta(seconds=20))
    closed = envelope("rfp.closed", {"rfp_id": rfp})

    answer = await gateway.post_event(closed)
    assert answer.status_code == 503, answer.text
    assert submitting["event_id"] in answer.json()["detail"], answer.text
    assert "same event_id" in answer.json()["detail"], answer.text
    assert await ledger(db_engine, closed["event_id"]) == []

    # Its gateway died (the lease expired) without a 202: the closure goes on without it.
    await leave_claim(db_engine, submitting, lease_left=-timedelta(seconds=1))
    answer = await gateway.post_event(closed)
    assert answer.status_code == 202, answer.text
    assert answer.json()["workflow_ids"] == [f"mission-{accepted}"]
