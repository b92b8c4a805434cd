"""A mission's long life on the real dev server, driven by its events alone.

The dev server's clock cannot skip, so the mission lies in the past and every dated event
carries its `occurred_at` (docs/testing.md): its CRA cycles open at once, its payouts fall
due at once, and nothing waits on the time-skipping test server (nothing can stall).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from activities.registry import Activities
from db.models import Cra, Invoice, Payout
from domain.cra import month_bounds, month_of
from schemas.enums import MissionStage, PaymentOffer
from schemas.ids import mission_workflow_id
from schemas.mission import MissionState
from tests.fixtures.gateway import TASK_QUEUE
from tests.support.mission import (
    MissionHarness,
    check_billing,
    run_chain,
)
from tests.support.months import following, last_day


@pytest_asyncio.fixture
async def dev_harness(
    dev_server_env: WorkflowEnvironment, running_worker: Activities, db_engine: AsyncEngine
) -> MissionHarness:
    """The same driver on the real dev server and the session's worker: its clock cannot
    skip, so the mission lies in the past and every dated event carries its `occurred_at`."""
    return MissionHarness(dev_server_env, TASK_QUEUE, db_engine, patience=60.0)


def renewal_effective(renewals_before: int) -> Callable[[MissionState], bool]:
    return lambda state: state.renewal is None and len(state.renewals) > renewals_before


def months_before(month: str, count: int) -> str:
    for _ in range(count):
        month = month_of(month_bounds(month)[0] - timedelta(days=1))
    return month


async def test_a_9_month_mission_with_two_renewals_stays_small(dev_harness: MissionHarness) -> None:
    """Nine months driven by their events alone on the real dev server (no clock to skip,
    so nothing can stall): four months under Express, renewed at month 3 to month 7 at a new
    TJM, then at month 5 to month 9 under Flash. Every month is billed at its contract's
    terms and paid on the date its validation's day gives, one run per contract, each run
    small (bench/history_per_month.py measures a month)."""
    harness = dev_harness
    first = months_before(month_of(await harness.today()), 10)
    mission, months = await harness.mission_in_progress(
        PaymentOffer.EXPRESS, months=4, first_month=first
    )
    state = await harness.state(mission)
    pid = state.mission_id
    first_run = mission.first_execution_run_id or ""
    plan = list(months)
    while len(plan) < 9:
        plan.append(following(plan[-1]))
    renewals = {2: (plan[6], "700.00", None), 4: (plan[8], "720.00", PaymentOffer.FLASH)}
    offer, tjm = PaymentOffer.EXPRESS, Decimal("650.00")
    pending: dict[str, tuple[PaymentOffer, Decimal]] = {}
    for index, month in enumerate(plan):
        offer, tjm = pending.pop(month, (offer, tjm))
        if index in renewals:
            until, new_tjm, new_offer = renewals[index]
            before = await harness.state(mission)
            await harness.renew(mission, last_day(until), tjm=new_tjm, offer=new_offer)
            # Effective: the new contract applies (the run continues as new once its emails
            # are out; the run count is checked at the end).
            await harness.until(mission, renewal_effective(len(before.renewals)))
            pending[following(month_of(before.end_date))] = (new_offer or offer, Decimal(new_tjm))
        check_billing(await harness.month(mission, month, quick=True), offer, tjm)

    result = await harness.ended(mission)
    assert result.stage == MissionStage.COMPLETED
    for table in (Cra, Invoice):
        assert await harness.count(select(func.count()).where(table.mission_id == pid)) == 9
    payouts = await harness.count(
        select(func.count())
        .select_from(Payout)
        .join(Invoice, Payout.invoice_id == Invoice.id)
        .where(Invoice.mission_id == pid)
    )
    assert payouts == 9
    runs = await run_chain(harness, mission_workflow_id(pid), first_run)
    print("mission runs (events, bytes):", runs)
    assert len(runs) == 3, "one run per contract"
    assert all(events < 2_000 and size < 1_000_000 for events, size in runs), runs
