"""A permanent SMTP refusal (5xx), on the real dev server with the real worker, PostgreSQL and
the SMTP sink: the email outbox marks the row `refused` for ops (its answer in `last_error`,
an `email.refused` timeline row), never retries it, never fails the workflow, and still sends
the other emails of the same transition (docs/design.md, "Transactional email outbox")."""

from __future__ import annotations

import random
from typing import Any

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from stdnum import luhn
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.mailer import Mailer, message_id_for
from activities.outbox import OutboxActivities, permanent_code
from db.engine import session_factory
from db.models import EmailOutbox, MissionEvent
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
        return row is not None and (row.status != OutboxStatus.PENDING or bool(row.last_error))

    await eventually(attempted, within=20)
    return (await outbox_rows(engine, mission_id))[template]


async def resend(stack_settings: Settings, engine: AsyncEngine, keys: list[str]) -> Any:
    """Ops resend rows once the cause is fixed: the outbox activity itself, outside a workflow."""
    outbox = OutboxActivities(session_factory(engine), Mailer(stack_settings))
    result: DeliverOutboxResult = await ActivityEnvironment().run(
        outbox.deliver_outbox, DeliverOutboxInput(keys=keys)
    )
    return result


async def refusals_explained(gateway: GatewayTestClient, mission_id: str) -> list[Any]:
    """The refused e-mails `GET /missions/{id}/explain` shows support."""
    response = await gateway.http.get(f"/missions/{mission_id}/explain")
    assert response.status_code == 200, response.text
    refused: list[Any] = response.json()["emails_refused"]
    return refused


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
    assert row.status == OutboxStatus.REFUSED and "550" in (row.last_error or "")

    # The refusal is on the mission's timeline for ops; the delivery activity did not fail
    # (nothing for Temporal to retry).
    async with db_engine.connect() as conn:
        refusals = (
            await conn.execute(
                select(MissionEvent).where(
                    MissionEvent.mission_id == pid, MissionEvent.kind == "email.refused"
                )
            )
        ).all()
    [refusal] = refusals
    assert refusal.data["outbox_key"] == row.outbox_key and "550" in refusal.data["error"]
    mission = dev_server_env.client.get_workflow_handle(mission_workflow_id(pid))
    assert await failed_deliveries(mission) == []
    # Support sees it in the explanation: what, to whom, the server's answer, what to do.
    [shown] = await refusals_explained(gateway, pid)
    assert shown["code"] == "email_refused" and shown["facts"]["outbox_key"] == row.outbox_key
    assert "550" in shown["message"] and "renvoyez-le" in shown["message"]
    assert shown["facts"]["recipients"] == ", ".join(row.recipients)

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
    assert row.status == OutboxStatus.REFUSED and row.sent_at is None
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
    assert await refusals_explained(gateway, pid) == []


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
        assert refused.status == OutboxStatus.REFUSED and "550" in (refused.last_error or "")

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


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(code, "no", f"r{n}@x.example")
            for n, code in enumerate(codes)
        ]
    )


def test_every_recipient_refused_with_a_5xx_is_permanent_a_4xx_is_not() -> None:
    """Issue 12 point 4: `SMTPRecipientsRefused` has no code of its own and was retried for
    ever; every recipient refused for good is permanent."""
    assert permanent_code(_refused(550, 553)) == 550
    assert permanent_code(_refused(550, 450)) is None  # one may pass later
    assert permanent_code(aiosmtplib.SMTPResponseException(554, "no")) == 554
    assert permanent_code(aiosmtplib.SMTPResponseException(451, "later")) is None
    assert permanent_code(aiosmtplib.SMTPServerDisconnected("gone")) is None
