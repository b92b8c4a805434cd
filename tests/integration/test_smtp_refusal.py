"""A permanent SMTP refusal (5xx), on the real dev server with the real worker, PostgreSQL and
the SMTP sink: the email outbox records it for ops and Temporal does not retry it
(docs/design.md, "Transactional email outbox": "a 5xx is permanent: logged, left in the row's
`last_error` for ops, and never fails the workflow that queued it")."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from stdnum import luhn
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.mailer import Mailer, message_id_for
from activities.outbox import OutboxActivities
from db.engine import session_factory
from db.models import EmailOutbox
from schemas.activities import DeliverOutboxInput, DeliverOutboxResult
from schemas.enums import OutboxStatus
from schemas.ids import mission_workflow_id
from schemas.names import DELIVER_OUTBOX
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import GatewayTestClient
from tests.support.waits import eventually, mails, naming


def fresh_siren() -> str:
    body = str(random.randrange(10_000_000, 100_000_000))
    return body + luhn.calc_check_digit(body)


async def outbox_rows(engine: AsyncEngine, mission_id: str) -> dict[str, Any]:
    """The mission's outbox rows by template."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(EmailOutbox).where(EmailOutbox.mission_id == mission_id))
        ).all()
    return {row.template: row for row in rows}


async def outbox_row(engine: AsyncEngine, mission_id: str, template: str) -> Any:
    """The row of `template`, once a delivery attempt (sent or refused) was recorded on it."""

    async def attempted() -> bool:
        row = (await outbox_rows(engine, mission_id)).get(template)
        return row is not None and row.attempts > 0

    await eventually(attempted, within=20)
    return (await outbox_rows(engine, mission_id))[template]


async def resend(stack_settings: Settings, engine: AsyncEngine, keys: list[str]) -> Any:
    """Ops resend rows once the cause is fixed: the outbox activity itself, outside a workflow."""
    outbox = OutboxActivities(session_factory(engine), Mailer(stack_settings))
    result: DeliverOutboxResult = await ActivityEnvironment().run(
        outbox.deliver_outbox, DeliverOutboxInput(keys=keys)
    )
    return result


async def submitted(gateway: GatewayTestClient) -> str:
    data = proposal_submitted()
    data["provider"]["siren"] = fresh_siren()
    response = await gateway.post_event(envelope("proposal.submitted", data))
    assert response.status_code == 202, response.text
    return str(data["proposal_id"])


async def test_a_permanent_smtp_refusal_is_recorded_for_ops_and_never_retried(
    gateway: GatewayTestClient,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
    stack_settings: Settings,
    dev_server_env: WorkflowEnvironment,
) -> None:
    pid = await submitted(gateway)
    await mails(smtp_sink, naming(pid), 2)  # the provider's acknowledgement, the client's notice
    served = smtp_sink.failures_served

    smtp_sink.fail_next(1, code=550)  # "550 5.7.1 Rejected by the sink"
    read = await gateway.post_event(envelope("proposal.read", {"proposal_id": pid}))
    assert read.status_code == 202, read.text
    row = await outbox_row(db_engine, pid, "proposal_read")
    assert smtp_sink.failures_served - served == 1

    # Temporal recorded the delivery as failed for good at its first attempt: not retried.
    mission = dev_server_env.client.get_workflow_handle(mission_workflow_id(pid))

    async def delivery_failed() -> bool:
        return bool(await failed_deliveries(mission))

    await eventually(delivery_failed, within=20)
    [(attempt, failure)] = await failed_deliveries(mission)
    assert attempt == 1
    info = failure.application_failure_info
    assert info.type == "SmtpPermanentFailure" and info.non_retryable
    assert row.outbox_key in failure.message and "550" in failure.message

    # The mission goes on, and so does SMTP: the next event's email is delivered.
    rated = await gateway.post_event(
        envelope("proposal.rated", {"proposal_id": pid, "interesting": True})
    )
    assert rated.status_code == 202, rated.text
    await outbox_row(db_engine, pid, "proposal_rated")

    async def rated_sent() -> bool:
        row = (await outbox_rows(db_engine, pid))["proposal_rated"]
        return bool(row.status == OutboxStatus.SENT)

    await eventually(rated_sent, within=20)
    assert (await mission.describe()).status == WorkflowExecutionStatus.RUNNING

    # The refusal is left in the row for ops, once; nothing re-sent it meanwhile.
    row = (await outbox_rows(db_engine, pid))["proposal_read"]
    assert row.status != OutboxStatus.SENT and row.sent_at is None
    assert row.attempts == 1
    assert row.last_error is not None and "550" in row.last_error
    refused_id = message_id_for(row.outbox_key)
    assert not [m for m in smtp_sink.messages if m.message_id == refused_id]
    assert smtp_sink.failures_served - served == 1

    # Once the cause is fixed, a resend delivers it once, with its own Message-ID.
    assert (await resend(stack_settings, db_engine, [row.outbox_key])).sent == 1
    again = await resend(stack_settings, db_engine, [row.outbox_key])
    assert (again.sent, again.already_sent) == (0, 1)
    assert len([m for m in smtp_sink.messages if m.message_id == refused_id]) == 1
    row = (await outbox_rows(db_engine, pid))["proposal_read"]
    assert row.status == OutboxStatus.SENT and row.attempts == 2


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=(
        "defect: activities/outbox.py deliver_outbox sends a transition's keys in one "
        "activity and stops at the first permanently refused one (it raises a non-retryable "
        "SmtpPermanentFailure), so the transition's other emails are never attempted: they "
        "stay pending with no last_error, invisible to ops"
    ),
)
async def test_a_permanent_refusal_does_not_hold_back_the_other_emails_of_its_transition(
    gateway: GatewayTestClient,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
    stack_settings: Settings,
) -> None:
    smtp_sink.fail_next(1, code=550)  # the first of the two: the provider's acknowledgement
    pid = await submitted(gateway)
    refused = await outbox_row(db_engine, pid, "proposal_acknowledged")
    try:
        assert refused.status != OutboxStatus.SENT and "550" in (refused.last_error or "")

        async def client_notice_sent() -> bool:
            row = (await outbox_rows(db_engine, pid)).get("proposal_received")
            return row is not None and row.status == OutboxStatus.SENT

        await eventually(client_notice_sent, within=5)
    finally:
        # Ops resend both once the cause is fixed (and the gateway fixture finds them sent).
        keys = [row.outbox_key for row in (await outbox_rows(db_engine, pid)).values()]
        await resend(stack_settings, db_engine, keys)


async def failed_deliveries(mission: Any) -> list[tuple[int, Any]]:
    """(attempt, failure) of every `deliver_outbox` activity that failed in the history."""
    history = await mission.fetch_history()
    scheduled: dict[int, str] = {}
    attempts: dict[int, int] = {}
    failed: list[tuple[int, Any]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attributes = event.activity_task_failed_event_attributes
            if scheduled.get(attributes.scheduled_event_id) == DELIVER_OUTBOX:
                failed.append((attempts[attributes.scheduled_event_id], attributes.failure))
    return failed
