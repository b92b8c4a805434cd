"""The fast tier: CraWorkflow on the time-skipping server with its activities replaced by fakes
under the same names (tests/support/fakes.py). No PostgreSQL, no SMTP: what the workflow
decides and in what order it asks for it to be written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds
from domain.payouts import compute_payout
from schemas.activities import IssueDocumentsInput
from schemas.cra import CraInput, CraResult, CraState
from schemas.enums import PaymentOffer
from schemas.ids import cra_workflow_id
from schemas.names import (
    CRA_WORKFLOW,
    ISSUE_BILLING_DOCUMENTS,
    RECORD_CRA_TRANSITION,
    RECORD_CRA_VALIDATION,
    START_PAYOUT,
)
from schemas.payouts import PayoutInput
from tests.fixtures.temporal import refused_update, send_update
from tests.support.cra import cra_input, new_proposal, opens_on, submitted, validated
from tests.support.fakes import FakeCraActivities, fake_worker
from tests.support.months import next_month

pytestmark = pytest.mark.timeout(60)


@pytest_asyncio.fixture
async def cra_env(
    own_time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[tuple[WorkflowEnvironment, FakeCraActivities, str]]:
    fakes = FakeCraActivities()
    async with fake_worker(own_time_skipping_env, fakes.all()) as queue:
        yield own_time_skipping_env, fakes, queue


async def next_months_cycle(
    env: WorkflowEnvironment, offer: PaymentOffer = PaymentOffer.BASIC, *, more_days: int = 0
) -> CraInput:
    """The input of next month's CRA cycle, of a mission from that month's first day to
    `more_days` after its last."""
    month = next_month(paris_date(await env.get_current_time()))
    first, last = month_bounds(month)
    end = last + timedelta(days=more_days)
    return cra_input(new_proposal(first, end), month, first, end, offer)


async def test_a_validated_cra_starts_its_payout_with_the_terms_of_its_validation(
    cra_env: tuple[WorkflowEnvironment, FakeCraActivities, str],
) -> None:
    env, fakes, queue = cra_env
    inp = await next_months_cycle(env, PaymentOffer.FLASH, more_days=90)
    month = inp.month
    cycle = await env.client.start_workflow(
        CRA_WORKFLOW,
        inp,
        id=cra_workflow_id(inp.mission_id, month),
        task_queue=queue,
        result_type=CraResult,
    )
    await send_update(cycle, "cra.submitted", submitted(inp, "18"))
    await send_update(cycle, "cra.validated", validated(inp))
    result = await cycle.result()

    opened = opens_on(inp)  # submitted and validated the day the CRA opens
    assert result.validated_on == opened and result.days == Decimal("18")
    assert result.payout_date == compute_payout(PaymentOffer.FLASH, opened).payout_date
    assert fakes.recorded.names()[:2] == [RECORD_CRA_TRANSITION, RECORD_CRA_VALIDATION]
    [payout] = fakes.recorded.inputs(START_PAYOUT)
    assert isinstance(payout, PayoutInput)
    assert payout.terms.payout_date == result.payout_date
    assert payout.invoice_number == result.invoice_number
    # The files are rendered after the validation committed, by their own activity.
    [files] = fakes.recorded.inputs(ISSUE_BILLING_DOCUMENTS)
    assert isinstance(files, IssueDocumentsInput)
    assert (files.mission_id, files.month) == (inp.mission_id, month)
    names = fakes.recorded.names()
    assert names.index(RECORD_CRA_VALIDATION) < names.index(ISSUE_BILLING_DOCUMENTS)


async def test_a_refused_update_writes_nothing(
    cra_env: tuple[WorkflowEnvironment, FakeCraActivities, str],
) -> None:
    env, fakes, queue = cra_env
    inp = await next_months_cycle(env)
    month = inp.month
    cycle = await env.client.start_workflow(
        CRA_WORKFLOW, inp, id=cra_workflow_id(inp.mission_id, month), task_queue=queue
    )

    assert "half-day steps" in await refused_update(cycle, "cra.submitted", submitted(inp, "8.3"))
    assert "not submitted yet" in await refused_update(cycle, "cra.validated", validated(inp))
    assert fakes.recorded.calls == []
    await cycle.terminate("test over")


async def test_a_cra_opens_on_the_last_business_day_of_the_missions_part_of_the_month(
    cra_env: tuple[WorkflowEnvironment, FakeCraActivities, str],
) -> None:
    """Days not yet worked are not billed: submitted the day before the CRA opens (Paris
    day of its `occurred_at`), it is refused with the date it opens and nothing is written;
    on that day it is accepted. The mission ends on a Saturday mid-month: the CRA opens the
    day before, Friday."""
    env, fakes, queue = cra_env
    month = next_month(paris_date(await env.get_current_time()))
    first, _ = month_bounds(month)
    saturday = first + timedelta(days=7 + (5 - first.weekday()) % 7)
    inp = cra_input(new_proposal(first, saturday), month, first, saturday)
    opened = opens_on(inp)
    assert opened < saturday and opened.weekday() < 5
    cycle = await env.client.start_workflow(
        CRA_WORKFLOW, inp, id=cra_workflow_id(inp.mission_id, month), task_queue=queue
    )
    early = paris_instant(opened, time(23, 59)) - timedelta(days=1)
    refusal = await refused_update(cycle, "cra.submitted", submitted(inp, "5", at=early))
    assert opened.isoformat() in refusal and "Europe/Paris" in refusal, refusal
    assert fakes.recorded.calls == []

    await send_update(cycle, "cra.submitted", submitted(inp, "5", at=paris_instant(opened)))
    state = await cycle.query("state", result_type=CraState)
    assert state.status == "submitted" and state.submitted_at == paris_instant(opened)
    await cycle.terminate("test over")
