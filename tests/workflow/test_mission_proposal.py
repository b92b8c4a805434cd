"""The mission workflow's proposal stage on the time-skipping server, with the real activities
against PostgreSQL and the SMTP sink: one effect per transition, however often it is retried."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import EmailOutbox, MissionEvent, Proposal, ProposalStatusHistory
from schemas.activities import RecordProposalInput, TransitionResult
from schemas.events import ProposalSubmitted
from schemas.ids import mission_workflow_id
from schemas.mission import MissionInput, MissionState
from schemas.names import RECORD_PROPOSAL
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.fixtures.histories import recording
from tests.support.db import count
from tests.support.factories import proposal_submitted
from tests.support.waits import eventually
from tests.support.workers import sandboxed_worker
from worker import build_worker
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"


@pytest_asyncio.fixture
async def activities(stack_settings: Settings) -> AsyncIterator[Activities]:
    built = Activities(create_engine(stack_settings.database_url), Mailer(stack_settings))
    yield built
    await built.close()


def _mission_input(proposal_id: str | None = None) -> MissionInput:
    return MissionInput(
        event_id=f"evt-{uuid.uuid4().hex}",
        occurred_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        proposal=ProposalSubmitted.model_validate(proposal_submitted(proposal_id)),
    )


async def _start(
    env: WorkflowEnvironment, task_queue: str, inp: MissionInput
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        "MissionWorkflow",
        inp,
        id=mission_workflow_id(inp.proposal.proposal_id),
        task_queue=task_queue,
    )


async def test_submitted_proposal_is_recorded_and_both_sides_are_mailed(
    time_skipping_env: WorkflowEnvironment,
    activities: Activities,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
) -> None:
    queue = f"tq-{uuid.uuid4().hex}"
    inp = _mission_input()
    pid = inp.proposal.proposal_id
    async with build_worker(time_skipping_env.client, queue, activities.all()):
        handle = await _start(time_skipping_env, queue, inp)
        mails = await smtp_sink.wait_for_async(2)
        state = await handle.query("state", result_type=MissionState)
        history = await handle.fetch_history()

    assert state.stage == "proposal"
    assert state.proposal_status == "sent"
    assert [entry.kind for entry in state.timeline] == ["proposal.submitted"]
    assert {m.rcpt_tos for m in mails} == {
        ("paul@durand-conseil.example",),
        ("claire.martin@acme.example",),
    }
    assert all(m.message_id and pid in m.message_id for m in mails)
    assert await count(db_engine, select(func.count()).where(Proposal.proposal_id == pid)) == 1
    status_rows = select(func.count()).where(ProposalStatusHistory.proposal_id == pid)
    assert await count(db_engine, status_rows) == 1
    if recording("mission_proposal_submitted"):
        (HISTORIES / "mission_proposal_submitted.json").write_text(history.to_json())


async def test_activity_retried_after_its_commit_writes_nothing_twice(
    time_skipping_env: WorkflowEnvironment,
    activities: Activities,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
) -> None:
    """The worker 'dies' between the commit and the reply: the retry must be a no-op."""
    attempts: list[bool] = []

    @activity.defn(name=RECORD_PROPOSAL)
    async def record_then_crash(inp: RecordProposalInput) -> TransitionResult:
        result = await activities.proposals.record_proposal(inp)
        attempts.append(result.applied)
        if len(attempts) == 1:  # the first run, local or not
            raise RuntimeError("worker lost after commit")
        return result

    queue = f"tq-{uuid.uuid4().hex}"
    inp = _mission_input()
    pid = inp.proposal.proposal_id
    async with sandboxed_worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=list(WORKFLOWS),
        activities=[record_then_crash, activities.outbox.deliver_outbox],
    ):
        await _start(time_skipping_env, queue, inp)
        await smtp_sink.wait_for_async(2)

        # The first run sent the e-mails after its commit; wait for the retry's answer too.
        async def retried() -> bool:
            return len(attempts) == 2

        await eventually(retried, within=30)

    assert attempts == [True, False]
    assert len(smtp_sink.messages) == 2
    for model, column in (
        (Proposal, Proposal.proposal_id),
        (MissionEvent, MissionEvent.mission_id),
    ):
        assert (
            await count(db_engine, select(func.count()).select_from(model).where(column == pid))
            == 1
        )
    outbox = select(func.count()).where(EmailOutbox.mission_id == pid)
    assert await count(db_engine, outbox) == 2


async def test_smtp_451_then_recovery_sends_each_email_once(
    time_skipping_env: WorkflowEnvironment,
    activities: Activities,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
) -> None:
    smtp_sink.fail_next(1, code=451)
    queue = f"tq-{uuid.uuid4().hex}"
    inp = _mission_input()
    pid = inp.proposal.proposal_id
    async with build_worker(time_skipping_env.client, queue, activities.all()):
        await _start(time_skipping_env, queue, inp)
        mails = await smtp_sink.wait_for_async(2, timeout=30)

    assert smtp_sink.failures_served == 1
    assert len({m.message_id for m in mails}) == 2
    sent = select(func.sum(EmailOutbox.attempts)).where(
        EmailOutbox.mission_id == pid, EmailOutbox.status == "sent"
    )
    # Two rows sent, one of them after a refused first attempt.
    assert await count(db_engine, sent) == 3
