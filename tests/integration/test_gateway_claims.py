"""An acknowledged event is never lost (issue 12 point 1): a delivery answered while another
one of the same event_id is still dispatching is told to retry (503 `in_flight`, Retry-After),
never `duplicate`; a first delivery that fails leaves the event dispatchable; a claim left by
a dead gateway is taken over once its lease has expired; an update that no worker takes is a
503 within the RPC timeout; and dispatching an event twice has one effect (cra.validated,
client_payment.received; proposal.submitted in test_gateway.py).

On the real dev server, PostgreSQL and the SMTP sink; a worker-less task queue stands for a
worker that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import TypeVar

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from db.engine import session_factory
from db.models import ClientPayment, EmailOutbox, Invoice, Payout, ProcessedEvent
from domain.clock import paris_date
from schemas.enums import PayoutStatus
from settings import Settings
from starter.gateway.processor import EventProcessor
from tests.support.db import count
from tests.support.factories import envelope, proposal_submitted
from tests.support.gateway import (
    GatewayTestClient,
    cra_instants,
    file_cra,
    gateway_of,
    leave_claim,
    ledger,
    month_open,
    view,
)
from tests.support.waits import eventually
from tests.support.workers import new_queue, real_worker

T = TypeVar("T")

RPC_TIMEOUT = timedelta(seconds=2)


async def within(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result, or a failure saying what did not happen in `seconds`."""
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds)
    except TimeoutError:
        raise AssertionError(f"{what}: no answer within {seconds:g} s") from None


def workerless_processor(
    env: WorkflowEnvironment, engine: AsyncEngine, queue: str, lease: timedelta
) -> EventProcessor:
    """A gateway's processor on `queue`, where no worker runs yet, with a short RPC timeout."""
    return EventProcessor(
        env.client, session_factory(engine), queue, rpc_timeout=RPC_TIMEOUT, claim_lease=lease
    )


def assert_retry_later(response: httpx.Response, status: str, most: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["status"] == status, response.text
    assert "same event_id" in response.json()["detail"], response.text
    assert 1 <= int(response.headers["Retry-After"]) <= most, response.headers


async def test_an_update_no_worker_takes_is_a_503_within_the_rpc_timeout(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings, db_engine: AsyncEngine
) -> None:
    queue = new_queue()
    processor = workerless_processor(dev_server_env, db_engine, queue, timedelta(seconds=30))
    async with gateway_of(processor, stack_settings) as gateway:
        proposal = proposal_submitted()
        started = await gateway.post_event(envelope("proposal.submitted", proposal))
        assert started.status_code == 202, started.text  # a start needs no worker
        read = envelope("proposal.read", {"proposal_id": proposal["proposal_id"]})
        began = asyncio.get_running_loop().time()
        answer = await within(
            RPC_TIMEOUT.total_seconds() + 8,
            "the update to a workflow no worker runs",
            gateway.post_event(read),
        )
        elapsed = asyncio.get_running_loop().time() - began
    assert_retry_later(answer, "rejected", most=60)
    assert "worker" in answer.json()["detail"], answer.text
    assert elapsed < RPC_TIMEOUT.total_seconds() + 5, elapsed
    assert await ledger(db_engine, read["event_id"]) == []


async def test_a_redelivery_during_a_dispatch_that_fails_is_told_to_retry_and_the_retry_applies(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings, db_engine: AsyncEngine
) -> None:
    queue = new_queue()
    lease = timedelta(seconds=30)
    processor = workerless_processor(dev_server_env, db_engine, queue, lease)
    async with gateway_of(processor, stack_settings) as gateway:
        proposal = proposal_submitted()
        pid = proposal["proposal_id"]
        submitted = await gateway.post_event(envelope("proposal.submitted", proposal))
        assert submitted.status_code == 202, submitted.text
        read = envelope("proposal.read", {"proposal_id": pid})
        first = asyncio.create_task(gateway.post_event(read))

        async def claimed() -> bool:
            return await ledger(db_engine, read["event_id"]) == [("processing", None)]

        await eventually(claimed)
        redelivered = await gateway.post_event(read)
        # Not `200 duplicate`: the first delivery has not been accepted and may fail.
        assert_retry_later(redelivered, "in_flight", most=lease.total_seconds())

        failed = await within(RPC_TIMEOUT.total_seconds() + 8, "the first delivery", first)
        assert_retry_later(failed, "rejected", most=60)
        assert await ledger(db_engine, read["event_id"]) == []

        # The worker comes back; the platform, told to retry, sends the event again.
        async with real_worker(dev_server_env, stack_settings, queue=queue):
            delivered = await gateway.post_event(read)
            assert delivered.status_code == 202, delivered.text
            assert await ledger(db_engine, read["event_id"]) == [("accepted", f"mission-{pid}")]
            again = await gateway.post_event(read)
            assert again.status_code == 200 and again.json()["first_delivery"] == "accepted"

            async def read_once() -> bool:
                kinds = [entry.kind for entry in (await view(gateway, pid)).state.timeline]
                return kinds.count("proposal.read") == 1 and "proposal.submitted" in kinds

            await eventually(read_once, within=20)
            await eventually(lambda: _mails_sent(db_engine, pid), within=20)
            # The update the timed-out delivery left with the server and the retry are one.
            kinds = [entry.kind for entry in (await view(gateway, pid)).state.timeline]
            assert kinds.count("proposal.read") == 1, kinds


async def test_a_dispatch_longer_than_the_lease_renews_it_so_no_redelivery_takes_it_over(
    dev_server_env: WorkflowEnvironment, stack_settings: Settings, db_engine: AsyncEngine
) -> None:
    """A live gateway keeps its claim however long it dispatches (an rfp.closed fanned out to
    many missions): here one update, its RPC timeout set past a short lease for the test."""
    lease = timedelta(seconds=1.5)
    processor = EventProcessor(
        dev_server_env.client,
        session_factory(db_engine),
        new_queue(),  # no worker: the update waits for its whole RPC timeout
        rpc_timeout=timedelta(seconds=5),
        claim_lease=lease,
    )
    async with gateway_of(processor, stack_settings) as gateway:
        proposal = proposal_submitted()
        submitted = await gateway.post_event(envelope("proposal.submitted", proposal))
        assert submitted.status_code == 202, submitted.text
        read = envelope("proposal.read", {"proposal_id": proposal["proposal_id"]})
        first = asyncio.create_task(gateway.post_event(read))

        async def claimed() -> bool:
            return await ledger(db_engine, read["event_id"]) == [("processing", None)]

        await eventually(claimed)
        first_lease_end = await _lease_end(db_engine, read["event_id"])

        async def first_lease_over() -> bool:
            return await _database_now(db_engine) > first_lease_end

        await eventually(first_lease_over)
        assert not first.done(), "the first delivery ended before its first lease did"
        assert await _lease_end(db_engine, read["event_id"]) > first_lease_end
        redelivered = await gateway.post_event(read)
        assert_retry_later(redelivered, "in_flight", most=lease.total_seconds() + 1)
        failed = await within(15, "the first delivery", first)
        assert_retry_later(failed, "rejected", most=60)


async def _lease_end(engine: AsyncEngine, event_id: str) -> datetime:
    async with engine.connect() as conn:
        end = (
            await conn.execute(
                select(ProcessedEvent.lease_expires_at).where(ProcessedEvent.event_id == event_id)
            )
        ).scalar_one()
    assert end is not None
    return end


async def _database_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        now: datetime = (await conn.execute(select(func.now()))).scalar_one()
    return now


async def _mails_sent(engine: AsyncEngine, mission_id: str) -> bool:
    pending = select(func.count()).where(
        EmailOutbox.mission_id == mission_id, EmailOutbox.status != "sent"
    )
    written = select(func.count()).where(EmailOutbox.mission_id == mission_id)
    return await count(engine, written) > 0 and await count(engine, pending) == 0


async def _one_invoice_and_payout(engine: AsyncEngine, pid: str) -> bool:
    invoices = select(func.count()).select_from(Invoice).where(Invoice.mission_id == pid)
    payouts = select(func.count()).select_from(Payout).where(Payout.mission_id == pid)
    return await count(engine, invoices) == 1 and await count(engine, payouts) == 1


async def test_a_validation_claimed_by_a_dead_gateway_is_taken_over_and_billed_once(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    """The black-box finding: a gateway dies between claiming `cra.validated` and handing it
    to Temporal; redeliveries were answered `200 duplicate` and the CRA was never billed."""
    pid, month = await month_open(gateway, "basic", 12)
    submitted_at, validated_at = cra_instants(month)
    await file_cra(gateway, pid, month, submitted_at, days="3")
    validation = envelope(
        "cra.validated",
        {"mission_id": pid, "month": month, "approver_id": "APR-1"},
        occurred_at=validated_at,
    )

    await leave_claim(db_engine, validation, lease_left=timedelta(seconds=20))
    while_leased = await gateway.post_event(validation)
    assert_retry_later(while_leased, "in_flight", most=20)

    await leave_claim(db_engine, validation, lease_left=-timedelta(seconds=1))  # lease over
    taken_over = await gateway.post_event(validation)
    assert taken_over.status_code == 202, taken_over.text
    assert await ledger(db_engine, validation["event_id"]) == [("accepted", f"cra-{pid}-{month}")]
    await eventually(lambda: _one_invoice_and_payout(db_engine, pid), within=20)

    # A gateway that died after dispatching, before recording: dispatched again, one effect.
    await leave_claim(db_engine, validation, lease_left=-timedelta(seconds=1))
    again = await gateway.post_event(validation)
    assert again.status_code == 202, again.text
    assert (await gateway.post_event(validation)).json()["status"] == "duplicate"

    async def validated() -> bool:  # the cycle tells its mission in the background
        return (await view(gateway, pid)).state.validated_months == [month]

    await eventually(validated, within=20)
    await eventually(lambda: _mails_sent(db_engine, pid), within=20)
    assert await _one_invoice_and_payout(db_engine, pid)
    billed = select(func.count()).where(
        EmailOutbox.mission_id == pid, EmailOutbox.template == "cra_validated"
    )
    assert await count(db_engine, billed) == 1


async def test_a_client_payment_dispatched_twice_is_recorded_and_paid_once(
    gateway: GatewayTestClient, db_engine: AsyncEngine
) -> None:
    # Signed before 2025-04-28: back-to-back, its payout waits for the client's payment.
    pid, month = await month_open(gateway, "back_to_back", 13, signed_on=date(2025, 3, 3))
    submitted_at, validated_at = cra_instants(month)
    await file_cra(gateway, pid, month, submitted_at, days="2")
    validation = envelope(
        "cra.validated",
        {"mission_id": pid, "month": month, "approver_id": "APR-1"},
        occurred_at=validated_at,
    )
    assert (await gateway.post_event(validation)).status_code == 202
    await eventually(lambda: _one_invoice_and_payout(db_engine, pid), within=20)
    async with db_engine.connect() as conn:
        number, amount = (
            await conn.execute(
                select(Invoice.number, Invoice.amount_incl_vat).where(Invoice.mission_id == pid)
            )
        ).one()
    payment = envelope(
        "client_payment.received",
        {
            "invoice_number": number,
            "amount": str(amount),
            "paid_on": paris_date(validated_at).isoformat(),
        },
    )
    assert (await gateway.post_event(payment)).status_code == 202

    # Died after dispatching, before recording: the takeover dispatches it again.
    await leave_claim(db_engine, payment, lease_left=-timedelta(seconds=1))
    again = await gateway.post_event(payment)
    assert again.status_code == 202, again.text

    async def paid() -> bool:
        stmt = select(func.count()).where(
            Payout.mission_id == pid, Payout.status == PayoutStatus.PAID
        )
        return await count(db_engine, stmt) == 1

    await eventually(paid, within=30)
    await eventually(lambda: _mails_sent(db_engine, pid), within=20)
    payments = (
        select(func.count())
        .select_from(ClientPayment)
        .join(Invoice, ClientPayment.invoice_id == Invoice.id)
        .where(Invoice.mission_id == pid)
    )
    assert await count(db_engine, payments) == 1
    paid_mails = select(func.count()).where(
        EmailOutbox.mission_id == pid, EmailOutbox.template == "payout_paid"
    )
    assert await count(db_engine, paid_mails) == 1


async def test_a_renewal_validation_dispatched_again_after_its_continue_as_new_is_one_renewal(
    gateway: GatewayTestClient, db_engine: AsyncEngine, dev_server_env: WorkflowEnvironment
) -> None:
    """The validation continues the mission as new; the new run does not know the update id.
    A gateway that died after dispatching it, before recording it: the delivery that takes
    the claim over is told by the run that applied it (202), not refused by the new one."""
    pid, _ = await month_open(gateway, "basic", 14)
    handle = dev_server_env.client.get_workflow_handle(f"mission-{pid}")
    first_run = (await handle.describe()).run_id
    new_end = (await view(gateway, pid)).state.end_date + timedelta(days=92)
    for event_type, data in (
        ("renewal.requested", {"new_end_date": new_end.isoformat()}),
        ("renewal.accepted", {}),
    ):
        answer = await gateway.post_event(envelope(event_type, {"mission_id": pid, **data}))
        assert answer.status_code == 202, answer.text
    validation = envelope("renewal.validated", {"mission_id": pid, "approver_id": "APR-1"})
    assert (await gateway.post_event(validation)).status_code == 202

    async def continued() -> bool:
        return (await handle.describe()).run_id != first_run

    await eventually(continued, within=20)
    await leave_claim(db_engine, validation, lease_left=-timedelta(seconds=1))
    again = await gateway.post_event(validation)
    assert again.status_code == 202, again.text
    assert await ledger(db_engine, validation["event_id"]) == [("accepted", f"mission-{pid}")]
    state = (await view(gateway, pid)).state
    assert len(state.renewals) == 1 and state.end_date == new_end, state.renewals
    # Another validation (another event_id) is still refused, at once.
    other = envelope("renewal.validated", {"mission_id": pid, "approver_id": "APR-1"})
    refused = await within(5, "a refused validation", gateway.post_event(other))
    assert refused.status_code == 409, refused.text
    assert "no renewal is pending" in refused.json()["detail"]
