"""The fast tier: MissionWorkflow on the time-skipping server with its activities replaced by
fakes under the same names (tests/support/fakes.py). No PostgreSQL, no SMTP, no provider
workflow: the fake `watch_provider` signals the mission's compliance as the provider workflow
does. What the mission decides, and in what order it asks for it to be written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.clock import paris_instant
from domain.cra import month_bounds
from schemas.compliance import WatchRequest
from schemas.cra import CraInput
from schemas.enums import MissionStage, PaymentOffer
from schemas.events import (
    ContractSigned,
    ProposalRetained,
    RenewalRequested,
)
from schemas.mission import MissionTransition
from schemas.names import (
    CONTRACT_SIGNED,
    OPEN_CRA_CYCLE,
    PROPOSAL_RETAINED,
    RECORD_MISSION_TRANSITION,
    RECORD_PROPOSAL,
    RENEWAL_REQUESTED,
    WATCH_PROVIDER,
)
from tests.fixtures.temporal import refused_update, send_update
from tests.support.fakes import FakeMissionActivities, fake_worker
from tests.support.mission import MissionDriver
from tests.support.months import next_month
from tests.support.waits import eventually

pytestmark = pytest.mark.timeout(60)

Fast = tuple[MissionDriver, FakeMissionActivities]


@pytest_asyncio.fixture
async def mission_env(own_time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Fast]:
    fakes = FakeMissionActivities(own_time_skipping_env.client)
    async with fake_worker(own_time_skipping_env, fakes.all()) as queue:
        yield MissionDriver(own_time_skipping_env, queue), fakes


async def test_a_retained_proposal_is_verified_then_starts_on_its_date(
    mission_env: Fast,
) -> None:
    driver, fakes = mission_env
    month = next_month(await driver.today())
    start, end = month_bounds(month)
    mission = await driver.submit(start, end, prefix="FAST")
    pid = (await driver.state(mission)).mission_id

    await send_update(mission, PROPOSAL_RETAINED, ProposalRetained(proposal_id=pid))
    state = await driver.until(mission, lambda s: s.legal.provider_compliant)
    assert state.stage is MissionStage.LEGAL_VERIFICATION
    [watch] = fakes.recorded.inputs(WATCH_PROVIDER)
    assert isinstance(watch, WatchRequest)
    assert (watch.mission_id, watch.provider.siren) == (pid, state.provider_siren)

    await driver.sign(mission, PaymentOffer.FLASH)
    state = await driver.until(mission, lambda s: s.stage is MissionStage.TO_START)
    assert fakes.recorded.names() == [
        RECORD_PROPOSAL,
        RECORD_MISSION_TRANSITION,
        WATCH_PROVIDER,
        RECORD_MISSION_TRANSITION,
        RECORD_MISSION_TRANSITION,
        RECORD_MISSION_TRANSITION,
    ]
    assert fakes.recorded.kinds(RECORD_MISSION_TRANSITION) == [
        "proposal.retained",
        "purchase_order.confirmed",
        "contract.signed",
        "legal_verification.completed",
    ]
    ready: MissionTransition = fakes.recorded.inputs(RECORD_MISSION_TRANSITION)[-1]
    assert ready.stage is MissionStage.TO_START
    assert {(e.role, e.template) for e in ready.emails} >= {("provider", "mission_to_start")}

    # Nothing starts before the start date; at 00:05 on it the mission is in progress and
    # its first month's CRA cycle is opened.
    await driver.sleep_until(paris_instant(start, time(0, 5)))
    state = await driver.until(
        mission, lambda s: s.stage is MissionStage.IN_PROGRESS and month in s.cra_months
    )
    assert state.started_on == start
    written = fakes.recorded.inputs(RECORD_MISSION_TRANSITION)
    assert [t.kind for t in written[4:]] == ["mission.started"]
    assert written[4].stage is MissionStage.IN_PROGRESS and written[4].at >= paris_instant(start)
    # The cycle is opened beside the transition's write (their order is not fixed).
    assert sorted(fakes.recorded.names()[6:]) == [OPEN_CRA_CYCLE, RECORD_MISSION_TRANSITION]
    [cycle] = fakes.recorded.inputs(OPEN_CRA_CYCLE)
    assert isinstance(cycle, CraInput)
    assert (cycle.mission_id, cycle.month, cycle.payment_offer) == (pid, month, PaymentOffer.FLASH)
    await mission.terminate("test over")


async def test_a_refused_update_writes_nothing(mission_env: Fast) -> None:
    driver, fakes = mission_env
    month = next_month(await driver.today())
    start, end = month_bounds(month)
    mission = await driver.submit(start, end, prefix="FAST")
    pid = (await driver.state(mission)).mission_id

    async def proposal_recorded() -> bool:
        return fakes.recorded.names() == [RECORD_PROPOSAL]

    await eventually(proposal_recorded)
    renewal = RenewalRequested(mission_id=pid, new_end_date=end + timedelta(days=90))
    assert "cannot request a renewal" in await refused_update(mission, RENEWAL_REQUESTED, renewal)
    contract = ContractSigned(
        proposal_id=pid,
        signed_on=await driver.today(),
        payment_offer=PaymentOffer.FLASH,
        special_conditions_ref=f"CP-{pid}",
    )
    assert "during legal verification" in await refused_update(mission, CONTRACT_SIGNED, contract)

    state = await driver.state(mission)
    assert state.stage is MissionStage.PROPOSAL and state.renewal is None
    assert [e.kind for e in state.timeline] == ["proposal.submitted"]
    assert fakes.recorded.names() == [RECORD_PROPOSAL]
    await mission.terminate("test over")
