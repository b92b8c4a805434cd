"""The event gateway against the real dev server, worker, PostgreSQL and SMTP sink."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from db.models import EmailOutbox, Mission, ProcessedEvent, Proposal
from schemas import search_attributes as sa
from schemas.mission import MissionState
from starter.devstack.mailsink import MailSink
from starter.gateway.signing import signed_headers
from tests.support.db import count
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import TEST_SECRET, GatewayTestClient, leave_claim
from tests.support.waits import eventually, mails, naming, own


async def test_proposal_submitted_starts_mission_records_it_and_mails_both_sides(
    gateway: GatewayTestClient,
    dev_server_env: WorkflowEnvironment,
    db_engine: AsyncEngine,
    smtp_sink: MailSink,
) -> None:
    data = proposal_submitted()
    pid = data["proposal_id"]
    response = await gateway.post_event(envelope("proposal.submitted", data))

    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == f"mission-{pid}"
    assert response.json()["status"] == "accepted"

    received = await mails(smtp_sink, naming(pid), 2)
    by_recipient = {m.rcpt_tos: m for m in received}
    provider_mail = by_recipient[("paul@durand-conseil.example",)]
    client_mail = by_recipient[("claire.martin@acme.example",)]
    assert pid in provider_mail.subject
    assert "650,00 €" in provider_mail.text()
    assert "01/12/2026" in provider_mail.text()
    assert "Durand Conseil" in client_mail.subject
    assert "RFP-90064-1" in client_mail.subject

    handle = dev_server_env.client.get_workflow_handle(f"mission-{pid}")
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert attributes.get(sa.MISSION_STAGE) == "proposal"
    assert attributes.get(sa.MISSION_ID) == pid
    assert attributes.get(sa.PROVIDER_ID) == "200780963"
    assert attributes.get(sa.CLIENT_ID) == "CLI-1"
    assert attributes.get(sa.RFP_ID) == "RFP-90064-1"
    state = await handle.query("state", result_type=MissionState)
    assert state.stage == "proposal"
    assert state.proposal_status == "sent"

    assert await count(db_engine, select(func.count()).where(Proposal.proposal_id == pid)) == 1
    assert await count(db_engine, select(func.count()).where(Mission.mission_id == pid)) == 1
    sent = select(func.count()).where(EmailOutbox.mission_id == pid, EmailOutbox.status == "sent")
    await eventually(lambda: _is(db_engine, sent, 2))


async def _is(engine: AsyncEngine, stmt: Any, expected: int) -> bool:
    return await count(engine, stmt) == expected


async def test_same_event_twice_gives_one_workflow_and_one_email_each(
    gateway: GatewayTestClient, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    proposal = proposal_submitted()
    event = envelope("proposal.submitted", proposal)
    first = await gateway.post_event(event)
    second = await gateway.post_event(event)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["workflow_id"] == first.json()["workflow_id"]
    await mails(smtp_sink, naming(proposal["proposal_id"]), 2)
    await asyncio.sleep(0.5)
    assert len(own(smtp_sink, proposal["proposal_id"])) == 2


async def test_concurrent_deliveries_dispatch_once_and_none_is_a_duplicate_before_acceptance(
    gateway: GatewayTestClient, smtp_sink: MailSink
) -> None:
    """Issue 12 point 1: a delivery that meets another one still dispatching is told to retry
    (503 `in_flight`), never `duplicate`: the first may yet fail."""
    proposal = proposal_submitted()
    event = envelope("proposal.submitted", proposal)
    responses = await asyncio.gather(*(gateway.post_event(event) for _ in range(5)))
    assert [r.status_code for r in responses].count(202) == 1, [r.text for r in responses]
    for response in (r for r in responses if r.status_code != 202):
        if response.status_code == 503:
            assert response.json()["status"] == "in_flight", response.text
            assert int(response.headers["Retry-After"]) >= 1
        else:  # answered after the first delivery was accepted
            assert response.status_code == 200, response.text
            assert response.json()["first_delivery"] == "accepted", response.text
    await mails(smtp_sink, naming(proposal["proposal_id"]), 2)
    await asyncio.sleep(0.5)
    assert len(own(smtp_sink, proposal["proposal_id"])) == 2


async def test_duplicate_detected_after_a_gateway_restart(
    gateway: GatewayTestClient,
    dev_server_env: WorkflowEnvironment,
    stack_settings: Any,
    db_engine: AsyncEngine,
) -> None:
    import httpx

    from db.engine import session_factory
    from starter.gateway.api import create_app
    from starter.gateway.processor import EventProcessor
    from tests.fixtures.gateway import TASK_QUEUE

    event = envelope("proposal.submitted", proposal_submitted())
    assert (await gateway.post_event(event)).status_code == 202

    # A new app and processor: nothing in memory survives, only the ledger in PostgreSQL.
    restarted = create_app(
        stack_settings,
        processor=EventProcessor(dev_server_env.client, session_factory(db_engine), TASK_QUEUE),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=restarted), base_url="http://gateway"
    ) as http:
        again = await GatewayTestClient(http).post_event(event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"


async def test_same_proposal_under_a_new_event_id_is_a_conflict(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    data = proposal_submitted()
    assert (await gateway.post_event(envelope("proposal.submitted", data))).status_code == 202
    second = envelope("proposal.submitted", data)
    response = await gateway.post_event(second)
    assert response.status_code == 409
    assert "already submitted" in response.json()["detail"]
    # Nothing recorded for the refused event: it can be re-evaluated later.
    stmt = select(func.count()).where(ProcessedEvent.event_id == second["event_id"])
    assert await count(db_engine, stmt) == 0


async def test_a_redelivery_serialized_differently_is_the_same_event(
    gateway: GatewayTestClient,
) -> None:
    """Issue 12 point 9: the platform's retry may re-serialize the event (key order, spacing,
    escapes): the content is compared, not the bytes."""
    event = envelope("proposal.submitted", proposal_submitted())
    first = await gateway.post_event(event)
    assert first.status_code == 202, first.text
    body = json.dumps(dict(reversed(list(event.items()))), indent=2, ensure_ascii=True).encode()
    again = await gateway.http.post(
        "/events", content=body, headers=signed_headers(body, TEST_SECRET)
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"


async def test_reused_event_id_with_different_content_is_refused(
    gateway: GatewayTestClient,
) -> None:
    event = envelope("proposal.submitted", proposal_submitted())
    assert (await gateway.post_event(event)).status_code == 202
    other = {**event, "data": proposal_submitted()}
    response = await gateway.post_event(other)
    assert response.status_code == 409
    assert "different event" in response.json()["detail"]


@pytest.mark.parametrize(
    ("signature", "secret"),
    [(None, "wrong-secret"), ("", "test-secret"), ("sha256=00", "test-secret")],
)
async def test_bad_signature_is_401_and_records_nothing(
    gateway: GatewayTestClient, db_engine: AsyncEngine, signature: str | None, secret: str
) -> None:
    event = envelope("proposal.submitted", proposal_submitted())
    response = await gateway.post_event(event, secret=secret, signature=signature)
    assert response.status_code == 401
    assert "X-Signature" in response.json()["detail"]
    stmt = select(func.count()).where(ProcessedEvent.event_id == event["event_id"])
    assert await count(db_engine, stmt) == 0


async def test_malformed_payload_is_422_with_field_paths(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    data = proposal_submitted(tjm="abc")
    data["provider"]["country"] = "France"
    del data["rfp_id"]
    data["unexpected"] = 1
    event = envelope("proposal.submitted", data)
    response = await gateway.post_event(event)
    assert response.status_code == 422
    locs = {error["loc"] for error in response.json()["errors"]}
    assert {"data.tjm", "data.provider.country", "data.rfp_id", "data.unexpected"} <= locs
    stmt = select(func.count()).where(ProcessedEvent.event_id == event["event_id"])
    assert await count(db_engine, stmt) == 0


async def test_malformed_envelope_is_422(gateway: GatewayTestClient) -> None:
    response = await gateway.post_event({"event_id": "e1", "type": "nope", "data": {}})
    assert response.status_code == 422
    locs = {error["loc"] for error in response.json()["errors"]}
    assert {"type", "occurred_at"} <= locs


async def test_invalid_siren_is_422(gateway: GatewayTestClient) -> None:
    data = proposal_submitted()
    data["provider"]["siren"] = "123456789"
    response = await gateway.post_event(envelope("proposal.submitted", data))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "data.provider.siren"


async def test_contract_signed_with_an_unknown_invoicing_is_422(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """`invoicing` is `platform` (self-billing, the default) or `provider` (manual import)."""
    data = {
        "proposal_id": "P-422",
        "signed_on": "2026-05-04",
        "payment_offer": "basic",
        "special_conditions_ref": "CP-1",
        "invoicing": "client",
    }
    event = envelope("contract.signed", data)
    response = await gateway.post_event(event)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == "data.invoicing"
    assert "'platform'" in error["msg"] and "'provider'" in error["msg"]
    stmt = select(func.count()).where(ProcessedEvent.event_id == event["event_id"])
    assert await count(db_engine, stmt) == 0


async def test_renewal_of_an_unknown_mission_is_404(gateway: GatewayTestClient) -> None:
    event = envelope("renewal.requested", {"mission_id": "P-404", "new_end_date": "2027-06-30"})
    response = await gateway.post_event(event)
    assert response.status_code == 404
    assert "P-404" in response.json()["detail"]


async def test_health_and_openapi(gateway: GatewayTestClient) -> None:
    assert (await gateway.http.get("/health")).json() == {"status": "ok"}
    spec = (await gateway.http.get("/openapi.json")).json()
    assert "/events" in spec["paths"]


async def test_a_claim_left_by_a_dead_gateway_is_taken_over_once_its_lease_expired(
    gateway: GatewayTestClient, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    fresh = envelope("proposal.submitted", proposal_submitted())
    await leave_claim(db_engine, fresh, lease_left=timedelta(seconds=20))
    in_flight = await gateway.post_event(fresh)
    assert in_flight.status_code == 503, in_flight.text
    assert in_flight.json()["status"] == "in_flight"
    assert 1 <= int(in_flight.headers["Retry-After"]) <= 20

    stale = envelope("proposal.submitted", proposal_submitted())
    await leave_claim(db_engine, stale, lease_left=-timedelta(seconds=1))
    taken_over = await gateway.post_event(stale)
    assert taken_over.status_code == 202, taken_over.text
    assert (await gateway.post_event(stale)).json()["status"] == "duplicate"
    await smtp_sink.wait_for_async(2)


async def test_a_takeover_after_the_dead_gateway_had_started_the_workflow_is_one_effect(
    gateway: GatewayTestClient, db_engine: AsyncEngine, smtp_sink: MailSink
) -> None:
    event = envelope("proposal.submitted", proposal_submitted())
    assert (await gateway.post_event(event)).status_code == 202
    await leave_claim(db_engine, event, lease_left=-timedelta(seconds=1))  # died before recording

    again = await gateway.post_event(event)
    assert again.status_code == 202, again.text
    await smtp_sink.wait_for_async(2)
    await asyncio.sleep(0.5)
    assert len(smtp_sink.messages) == 2
