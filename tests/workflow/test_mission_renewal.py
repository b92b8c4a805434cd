"""Renewal, early termination, end of mission and long life, through MissionWorkflow on the
time-skipping server with the real activities (PostgreSQL, SMTP sink) and the real provider
compliance workflow: the amounts and payout dates of the months before and after a renewal,
a declined renewal, a termination mid-month, and a 9-month mission with two renewals whose
every run stays small."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle

from db.models import Cra, Invoice, Mission, MissionTerms, Payout
from domain.clock import paris_instant
from domain.cra import month_bounds
from domain.fees import offer_fee
from schemas.cra import CraState
from schemas.enums import MissionStage, PaymentOffer
from schemas.events import (
    CraSubmitted,
    MissionTerminated,
    RenewalAccepted,
    RenewalDeclined,
    RenewalRequested,
    RenewalValidated,
)
from schemas.ids import cra_workflow_id, mission_workflow_id
from starter.support.explain import explain_month
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import refused_update, skip_time
from tests.support.factories import APPROVER
from tests.support.mission import (
    DAYS,
    MissionHarness,
    check_billing,
    next_run,
    run_chain,
)
from tests.support.months import following, last_day

HISTORIES = Path(__file__).parent.parent / "histories"
Handle = WorkflowHandle[Any, Any]


async def test_renewal_with_new_tjm_and_offer_applies_to_the_renewed_months_only(
    mission_harness: MissionHarness,
) -> None:
    mission, months = await mission_harness.mission_in_progress(PaymentOffer.EXPRESS, months=2)
    state = await mission_harness.state(mission)
    pid = state.mission_id
    first_run = mission.first_execution_run_id or ""
    renewed = [following(months[-1]), following(following(months[-1]))]

    january = await mission_harness.month(mission, months[0])
    check_billing(january, PaymentOffer.EXPRESS, Decimal("650.00"))

    # Requested: the renewed months are hidden, and the explanation says who must act.
    await mission_harness.send(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(renewed[-1]), new_tjm="700.00"),
    )
    state = await mission_harness.state(mission)
    assert state.stage == MissionStage.RENEWAL_PENDING
    hidden = explain_month(state, renewed[0], None, None, await mission_harness.today())
    assert not hidden.cra_visible and hidden.cra[0].code == "renewal_pending"
    assert "attend l'acceptation du prestataire" in hidden.cra[0].message
    assert "contracts signed before" in await refused_update(
        mission,
        "renewal.accepted",
        RenewalAccepted(mission_id=pid, payment_offer=PaymentOffer.BACK_TO_BACK),
    )
    assert "this applies when it is accepted" in await refused_update(
        mission,
        "renewal.validated",
        RenewalValidated(mission_id=pid, approver_id=APPROVER),
    )
    await mission_harness.send(
        mission,
        "renewal.accepted",
        RenewalAccepted(mission_id=pid, payment_offer=PaymentOffer.FLASH),
    )
    assert "not an approver" in await refused_update(
        mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id="APR-X")
    )
    await mission_harness.send(
        mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id=APPROVER)
    )
    state = await mission_harness.continued(mission, first_run)
    assert state.run == 2
    assert state.stage == MissionStage.IN_PROGRESS and state.renewal is None
    terms = state.renewals[0]
    assert (terms.version, terms.tjm, terms.payment_offer) == (2, Decimal("700.00"), "flash")
    assert terms.start_date == last_day(months[-1]) + timedelta(days=1)
    assert state.end_date == last_day(renewed[-1])

    # Months of the first contract keep its TJM and offer; renewed months take the new ones.
    february = await mission_harness.month(mission, months[1])
    check_billing(february, PaymentOffer.EXPRESS, Decimal("650.00"))
    for month in renewed:
        check_billing(
            await mission_harness.month(mission, month), PaymentOffer.FLASH, Decimal("700.00")
        )

    ended = await mission_harness.ended(mission)
    assert ended.stage == MissionStage.COMPLETED
    runs = await run_chain(mission_harness, mission_workflow_id(pid), first_run)
    assert len(runs) >= 2
    payouts = await mission_harness.rows(
        select(Payout.offer, Payout.fee)
        .join(Invoice, Payout.invoice_id == Invoice.id)
        .where(Invoice.mission_id == pid)
        .order_by(Invoice.month)
    )
    assert [p.offer for p in payouts] == ["express", "express", "flash", "flash"]
    assert [p.fee for p in payouts] == [
        offer_fee(PaymentOffer.EXPRESS, Decimal("650.00"), DAYS),
        offer_fee(PaymentOffer.EXPRESS, Decimal("650.00"), DAYS),
        offer_fee(PaymentOffer.FLASH, Decimal("700.00"), DAYS),
        offer_fee(PaymentOffer.FLASH, Decimal("700.00"), DAYS),
    ]
    versions = await mission_harness.rows(
        select(MissionTerms.version, MissionTerms.tjm, MissionTerms.payment_offer)
        .where(MissionTerms.mission_id == pid)
        .order_by(MissionTerms.version)
    )
    assert [(v.version, v.tjm, v.payment_offer) for v in versions][-1] == (2, 700, "flash")
    row = (await mission_harness.rows(select(Mission).where(Mission.mission_id == pid)))[0]
    assert row.stage == "completed" and row.end_date == last_day(renewed[-1])
    assert row.ended_on == last_day(renewed[-1])
    # The run before the renewal, and the run it continued as new into (which starts from
    # the carried state).
    renewed_run = mission_harness.env.client.get_workflow_handle(
        mission_workflow_id(pid), run_id=first_run
    )
    await record_history(renewed_run, "mission_renewed")
    second_run = await next_run(mission_harness, mission_workflow_id(pid), first_run)
    assert second_run is not None
    await record_history(
        mission_harness.env.client.get_workflow_handle(mission_workflow_id(pid), run_id=second_run),
        "mission_continued_as_new",
    )


async def test_declined_renewal_ends_the_mission_on_its_current_end_date(
    mission_harness: MissionHarness,
) -> None:
    mission, months = await mission_harness.mission_in_progress(PaymentOffer.BASIC, months=2)
    pid = (await mission_harness.state(mission)).mission_id
    beyond = following(months[-1])
    assert "no renewal is pending" in await refused_update(
        mission,
        "renewal.declined",
        RenewalDeclined(mission_id=pid, by="provider", reason="rien à refuser"),
    )
    assert "must be after the current end date" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(months[0])),
    )
    await mission_harness.send(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(beyond)),
    )
    assert "no other renewal is pending" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(beyond)),
    )
    await mission_harness.send(
        mission,
        "renewal.declined",
        RenewalDeclined(mission_id=pid, by="provider", reason="nouvelle mission ailleurs"),
    )
    state = await mission_harness.state(mission)
    assert state.stage == MissionStage.IN_PROGRESS and state.renewal is None
    assert "no renewal is pending" in await refused_update(
        mission, "renewal.accepted", RenewalAccepted(mission_id=pid)
    )

    for month in months:
        check_billing(
            await mission_harness.month(mission, month), PaymentOffer.BASIC, Decimal("650.00")
        )
    result = await mission_harness.ended(mission)
    assert result.stage == MissionStage.COMPLETED
    await record_history(mission, "mission_renewal_declined")
    state = await mission_harness.state(mission)
    assert state.cra_months == months and state.ended_on == last_day(months[-1])
    assert await mission_harness.count(select(func.count()).where(Cra.mission_id == pid)) == 2


async def test_early_termination_mid_month_makes_the_last_cra_pro_rata(
    mission_harness: MissionHarness,
) -> None:
    mission, months = await mission_harness.mission_in_progress(PaymentOffer.BASIC, months=3)
    pid = (await mission_harness.state(mission)).mission_id
    first = await mission_harness.month(mission, months[0])
    second = months[1]
    await mission_harness.sleep_until(
        paris_instant(month_bounds(second)[0] + timedelta(days=9), time(9, 37))
    )
    await mission_harness.until(mission, lambda s: second in s.cra_months)
    assert "too early" in await refused_update(
        mission,
        "mission.terminated",
        MissionTerminated(
            mission_id=pid, end_date=last_day(months[0]) - timedelta(days=3), reason="x"
        ),
    )
    end = month_bounds(second)[0] + timedelta(days=14)
    await mission_harness.send(
        mission,
        "mission.terminated",
        MissionTerminated(mission_id=pid, end_date=end, reason="fin du projet client"),
    )
    state = await mission_harness.state(mission)
    assert state.end_date == end and state.termination is not None
    assert "not renewed" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(months[-1])),
    )
    cycle = mission_harness.env.client.get_workflow_handle(cra_workflow_id(pid, second))

    async def max_days() -> int:
        cra: CraState = await cycle.query("state", result_type=CraState)
        return cra.max_days

    for _ in range(50):
        if await max_days() == 15:
            break
        await skip_time(mission_harness.env, timedelta(seconds=1))
    assert await max_days() == 15, "the open cycle learned its pro rata"
    refusal = await refused_update(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=second, days=Decimal("16"))
    )
    assert "15" in refusal, refusal
    last = await mission_harness.month(mission, second, ends=end)
    check_billing(last, PaymentOffer.BASIC, Decimal("650.00"))

    result = await mission_harness.ended(mission)
    assert result.stage == MissionStage.TERMINATED
    state = await mission_harness.state(mission)
    assert state.cra_months == months[:2], "no CRA after the termination date"
    row = (await mission_harness.rows(select(Mission).where(Mission.mission_id == pid)))[0]
    assert row.stage == "terminated" and row.end_date == end and row.ended_on == end
    assert row.end_reason == "fin du projet client"
    # The first month's payout still completes on its date.
    assert first.payout_date is not None
    await mission_harness.sleep_until(paris_instant(first.payout_date, time(12, 13)))
    statuses = await mission_harness.rows(
        select(Payout.status)
        .join(Invoice, Payout.invoice_id == Invoice.id)
        .where(Invoice.mission_id == pid, Invoice.month == months[0])
    )
    assert [s.status for s in statuses] == ["paid"]
    await record_history(mission, "mission_terminated")
