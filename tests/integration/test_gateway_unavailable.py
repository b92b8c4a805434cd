"""The gateway when Temporal cannot be reached: 503, nothing recorded in the event ledger, and
the same event delivered again to a working gateway is processed normally (docs/events.md,
"Answers": "503 — Temporal or PostgreSQL unreachable: retry later with the same event_id";
"A delivery that fails (404, 409, 503) releases its claim")."""

from __future__ import annotations

import json
import random
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from stdnum import luhn
from temporalio.client import Client, RetryConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from db.engine import session_factory
from db.models import ProcessedEvent
from schemas.ids import mission_workflow_id
from settings import Settings
from starter.devstack.binaries import temporal_test_server
from starter.gateway.processor import EventProcessor
from tests.fixtures.gateway import TASK_QUEUE
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import GatewayTestClient, gateway_of, ledger
from tests.support.waits import eventually

FAST_FAILURE = RetryConfig(
    initial_interval_millis=50, max_interval_millis=100, max_elapsed_time_millis=500, max_retries=1
)
"""The production client retries an unreachable server for about 10 s before it gives up
with UNAVAILABLE; the same answer, at once."""


async def temporal_gone() -> Client:
    """A client of a Temporal server that went away after the client connected (the gateway
    connects at start-up): a test server of its own, stopped."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server())
    )
    target = env.client.service_client.config.target_host
    client = await Client.connect(
        target, data_converter=pydantic_data_converter, retry_config=FAST_FAILURE
    )
    await env.shutdown()
    return client


def fresh_siren() -> str:
    body = str(random.randrange(10_000_000, 100_000_000))
    return body + luhn.calc_check_digit(body)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def temporal_never_reached() -> Client:
    """A lazy client of an address where nothing listens: it connects on its first call."""
    return await Client.connect(
        f"127.0.0.1:{free_port()}",
        data_converter=pydantic_data_converter,
        retry_config=FAST_FAILURE,
        lazy=True,
    )


def processor_on(client: Client, engine: AsyncEngine) -> EventProcessor:
    """A processor whose Temporal client is `client` (PostgreSQL is the test one)."""
    return EventProcessor(client, session_factory(engine), TASK_QUEUE)


@pytest_asyncio.fixture
async def unreachable(
    stack_settings: Settings, db_engine: AsyncEngine
) -> AsyncIterator[GatewayTestClient]:
    processor = processor_on(await temporal_gone(), db_engine)
    async with gateway_of(processor, stack_settings) as gateway:
        yield gateway


def new_proposal() -> dict[str, Any]:
    data = proposal_submitted()
    data["provider"]["siren"] = fresh_siren()
    return data


async def test_temporal_unreachable_is_a_503_that_records_nothing_and_the_event_can_be_resent(
    unreachable: GatewayTestClient,
    gateway: GatewayTestClient,
    db_engine: AsyncEngine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    # A mission the working gateway started; then Temporal is out of reach for a start and
    # for an update.
    existing = new_proposal()
    first = await gateway.post_event(envelope("proposal.submitted", existing))
    assert first.status_code == 202, first.text
    events = [
        envelope("proposal.submitted", new_proposal()),
        envelope("proposal.read", {"proposal_id": existing["proposal_id"]}),
    ]
    for event in events:
        answer = await unreachable.post_event(event)
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["status"] == "rejected" and "Temporal" in body["detail"], body
        assert await ledger(db_engine, event["event_id"]) == []
    assert unreachable.workflow_ids == set()

    # Delivered again, same event_id and body, to a gateway that reaches Temporal: processed
    # as a first delivery (202, not 200 duplicate), then recorded.
    for event in events:
        answer = await gateway.post_event(event)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "accepted"
        workflow_id = mission_workflow_id(event["data"]["proposal_id"])
        assert answer.json()["workflow_id"] == workflow_id
        assert await ledger(db_engine, event["event_id"]) == [("accepted", workflow_id)]
    again = await gateway.post_event(events[0])
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    read = dev_server_env.client.get_workflow_handle(mission_workflow_id(existing["proposal_id"]))

    async def was_read() -> bool:
        state = await read.query("state")
        return bool(state["proposal_status"] == "read")

    await eventually(was_read, within=20)


async def test_the_503_tells_the_platform_to_retry_with_the_same_event_id(
    unreachable: GatewayTestClient,
) -> None:
    answer = await unreachable.post_event(envelope("proposal.submitted", new_proposal()))
    assert answer.status_code == 503, answer.text
    assert "retry" in answer.json()["detail"].lower(), answer.json()
    assert int(answer.headers["Retry-After"]) >= 1, answer.headers


async def test_a_temporal_never_reached_is_a_503_too(
    stack_settings: Settings, db_engine: AsyncEngine
) -> None:
    processor = processor_on(await temporal_never_reached(), db_engine)
    event = envelope("proposal.submitted", new_proposal(), event_id=f"evt-{uuid.uuid4().hex}")
    async with gateway_of(processor, stack_settings) as gateway:
        answer = await gateway.post_event(event)
    # The claim is released whatever the error (this holds today).
    async with db_engine.connect() as conn:
        recorded = (
            await conn.execute(
                select(func.count()).where(ProcessedEvent.event_id == event["event_id"])
            )
        ).scalar_one()
    assert recorded == 0
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert json.loads(answer.text)["status"] == "rejected"
