"""A payout transition writes its timeline row and its payout row in one statement
(activities/payouts.py `_payout_transition`): the payout row is written only when the timeline
row is new, so a transition recorded before (a retry after the commit) changes nothing, and a
final row is never changed by a later transition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.cra import CraActivities
from activities.payouts import PayoutActivities
from activities.proposals import ProposalActivities
from db.engine import create_engine, session_factory
from db.models import MissionEvent, Payout
from schemas.cra import CraInput, CraValidationResult
from schemas.enums import PayoutStatus
from schemas.payouts import PayoutTransition, PayoutTransitionKind
from settings import Settings
from tests.support.validations import cra_validation, payout_transition, submitted_mission

MONTH = "2026-03"


@pytest_asyncio.fixture
async def engine(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    built = create_engine(stack_settings.database_url)
    yield built
    await built.dispose()


async def _validated(engine: AsyncEngine) -> tuple[CraInput, CraValidationResult]:
    sessions = session_factory(engine)
    cra = CraActivities(sessions)
    inp = await submitted_mission(ProposalActivities(sessions), cra, MONTH)
    result = await ActivityEnvironment().run(cra.record_cra_validation, cra_validation(inp))
    return inp, result


async def _payout(engine: AsyncEngine, mission_id: str) -> tuple[PayoutStatus, Decimal, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(Payout.status, Payout.net_amount, Payout.invoice_id).where(
                    Payout.mission_id == mission_id, Payout.month == MONTH
                )
            )
        ).one()
    return row.status, row.net_amount, row.invoice_id


async def _events(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).where(MissionEvent.idempotency_key == key)
        return int((await conn.execute(stmt)).scalar_one())


async def test_a_transition_recorded_before_leaves_the_payout_alone(engine: AsyncEngine) -> None:
    inp, result = await _validated(engine)
    payouts = PayoutActivities(session_factory(engine), "ops@example.test")
    scheduled = payout_transition(
        inp, result, "scheduled", PayoutStatus.SCHEDULED, cra_validation(inp).at
    )
    first = await ActivityEnvironment().run(payouts.record_payout_transition, scheduled)
    assert first.applied
    status, net, invoice_id = await _payout(engine, inp.mission_id)
    assert (status, net) == (PayoutStatus.SCHEDULED, result.terms.net_amount)
    assert invoice_id is not None  # the month's invoice

    # The same transition again, its amounts changed meanwhile: recorded before, so nothing
    # is written (a payout upsert not guarded by the new timeline row would change the net).
    one = Decimal("1.00")
    changed = scheduled.model_copy(update={"amount": one, "fee": Decimal(0), "net_amount": one})
    again = await ActivityEnvironment().run(payouts.record_payout_transition, changed)
    assert not again.applied
    assert await _payout(engine, inp.mission_id) == (status, net, invoice_id)
    assert await _events(engine, scheduled.key) == 1


async def test_a_final_payout_is_not_changed_by_a_later_transition(engine: AsyncEngine) -> None:
    inp, result = await _validated(engine)
    payouts = PayoutActivities(session_factory(engine), "ops@example.test")
    at = cra_validation(inp).at
    steps: tuple[tuple[PayoutTransitionKind, PayoutStatus], ...] = (
        ("scheduled", PayoutStatus.SCHEDULED),
        ("paid", PayoutStatus.PAID),
    )
    for kind, status in steps:
        done = await ActivityEnvironment().run(
            payouts.record_payout_transition, payout_transition(inp, result, kind, status, at)
        )
        assert done.applied
    paid = await _payout(engine, inp.mission_id)
    assert paid[0] is PayoutStatus.PAID

    late: PayoutTransition = payout_transition(
        inp, result, "scheduled", PayoutStatus.WAITING_CLIENT_PAYMENT, at
    )
    done = await ActivityEnvironment().run(payouts.record_payout_transition, late)
    assert done.applied  # its timeline row is new: recorded, but the paid row stays paid
    assert await _payout(engine, inp.mission_id) == paid
    assert await _events(engine, late.key) == 1
