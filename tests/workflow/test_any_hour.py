"""The dated path of a month, at the instants where date arithmetic breaks.

For each instant of tests/fixtures/clock.py's NASTY_INSTANTS (23:30 and 00:30 Paris on a
month's last day, 02:00 on a Monday, 31 December, the eve of Ascension, a Friday before a
three-day weekend, both changes of summer time), a fresh time-skipping server starts there and
a CRA of the current month is filed two hours before and validated at that instant, under
Flash and immediate payment, with the real activities (PostgreSQL, SMTP sink). The
validation day, the invoice date, the payout date and the day it is paid must be what
`domain/` computes from the event's Paris day, whatever that instant is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import Invoice, Payout
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds, month_of
from domain.payouts import PAY_AT, compute_payout
from schemas.cra import CraResult
from schemas.enums import PaymentOffer, PayoutStatus
from schemas.ids import payout_workflow_id
from schemas.payouts import PayoutState
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.fixtures.clock import NASTY_INSTANTS
from tests.fixtures.temporal import skip_until, start_time_skipping
from tests.support.cra import CraHarness, opens_on, submitted, validated
from tests.support.waits import eventually
from tests.support.workers import sandboxed_worker
from workflows.registry import WORKFLOWS


@pytest_asyncio.fixture(params=sorted(NASTY_INSTANTS))
async def at_instant(
    request: pytest.FixtureRequest, stack_settings: Settings, smtp_sink: MailSink
) -> AsyncIterator[CraHarness]:
    """A CRA harness on a test server whose clock starts at the instant of the param."""
    env: WorkflowEnvironment = await start_time_skipping(NASTY_INSTANTS[request.param])
    queue = f"tq-{uuid.uuid4().hex}"
    activities = Activities(
        create_engine(stack_settings.database_url),
        Mailer(stack_settings),
        settings=stack_settings.model_copy(update={"task_queue": queue}),
        temporal=env.client,
    )
    try:
        async with sandboxed_worker(
            env.client, task_queue=queue, workflows=list(WORKFLOWS), activities=activities.all()
        ):
            yield CraHarness(env, queue, smtp_sink, activities)
    finally:
        await activities.close()
        await env.shutdown()


async def test_validation_day_invoice_and_payout_follow_the_events_paris_day(
    at_instant: CraHarness, db_engine: AsyncEngine
) -> None:
    h = at_instant
    now = await h.env.get_current_time()
    today = paris_date(now)
    month = month_of(today)
    expected = {}
    for offer in (PaymentOffer.FLASH, PaymentOffer.IMMEDIATE):
        # The mission ends today, so its CRA is open (from the last business day on or
        # before today): filed two hours ago, or at the opening day's midnight if later.
        inp = await h.mission(
            start=month_bounds(month)[0], end=today, month=month, payment_offer=offer
        )
        cycle = await h.start(inp)
        filed_at = max(now - timedelta(hours=2), paris_instant(opens_on(inp)))
        await h.send(cycle, "cra.submitted", submitted(inp, "1", at=filed_at))
        await h.send(cycle, "cra.validated", validated(inp, at=now))
        result: CraResult = await cycle.result()
        schedule = compute_payout(offer, today)
        assert schedule.payout_date is not None
        assert result.validated_on == today, (offer, now)
        assert result.payout_date == schedule.payout_date, (offer, now)
        async with db_engine.connect() as conn:
            invoice = (
                await conn.execute(
                    select(Invoice.issued_on, Payout.due_on)
                    .join(Payout, Payout.invoice_id == Invoice.id)
                    .where(Invoice.mission_id == inp.mission_id)
                )
            ).one()
        assert invoice.issued_on == today and invoice.due_on == schedule.payout_date
        expected[inp.mission_id] = (offer, schedule.payout_date)

    for mission_id, (offer, payout_date) in sorted(expected.items(), key=lambda kv: kv[1][1]):
        paid_from = paris_instant(payout_date, PAY_AT)
        await skip_until(h.env, paid_from + timedelta(minutes=1), f"{offer} payout at {paid_from}")
        payout = h.env.client.get_workflow_handle(payout_workflow_id(mission_id, month))

        async def paid() -> bool:
            state: PayoutState = await payout.query("state", result_type=PayoutState)  # noqa: B023
            return state.status is PayoutStatus.PAID

        await eventually(paid, within=15)
        state: PayoutState = await payout.query("state", result_type=PayoutState)
        assert state.paid_at is not None and state.paid_at >= paid_from
        assert paris_date(state.paid_at) == payout_date, (offer, now, state.paid_at)
