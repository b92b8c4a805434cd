"""Edges of the mission's lifecycle, through MissionWorkflow on the time-skipping server with
the real activities (PostgreSQL, SMTP sink), the real CRA cycles and the real provider
compliance workflow: a start blocked by documents that lapsed after legal verification, a
compliance alert cleared by fresh documents, the CRAs of a mission terminated early, a
renewal that extends an open mid-month cycle, and a termination that drops a pending
renewal."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from db.engine import session_factory
from db.models import Mission, MissionEvent
from domain.calendar import previous_business_day_on_or_before
from domain.clock import paris_instant
from domain.cra import month_bounds, month_of, submission_opens_on
from schemas.cra import CraResult, CraState
from schemas.enums import CraStatus, MissionStage, PaymentOffer, RenewalStep
from schemas.events import (
    CraRejected,
    CraSubmitted,
    CraValidated,
    MissionTerminated,
    RenewalAccepted,
    RenewalDeclined,
    RenewalRequested,
    RenewalValidated,
)
from schemas.ids import cra_workflow_id
from settings import Settings
from starter.devstack.mailsink import MailSink, ReceivedMessage
from starter.gateway.directory import DatabaseDirectory
from starter.gateway.dispatch import Context, dispatch
from starter.gateway.events import EventError, NotApplicable, parse_event
from starter.support.explain import explain_month
from tests.fixtures.temporal import refused_update
from tests.support.factories import APPROVER, envelope
from tests.support.mission import SUBMIT_AT, MissionHarness
from tests.support.months import following, last_day
from tests.support.waits import eventually

Handle = WorkflowHandle[Any, Any]
PROVIDER_EMAIL = "paul@durand-conseil.example"  # tests.support.factories.proposal_submitted's
KBIS_VALIDITY = timedelta(days=90)
"""A Kbis extract is valid 90 days (CONTRACTING_KBIS_MAX_AGE_DAYS): the first to lapse."""
WAIT = 30.0


async def contracted(
    h: MissionHarness,
    *,
    start: date,
    end: date,
    issued_on: date,
    offer: PaymentOffer = PaymentOffer.BASIC,
) -> Handle:
    """The driver's contracting steps, the documents issued on `issued_on`: legal
    verification complete."""
    return await h.contract(offer, start, end, issued_on=issued_on, prefix="EDGE")


async def mails(
    sink: MailSink, mission_id: str, subject_part: str, count: int
) -> list[ReceivedMessage]:
    """The mission's messages whose subject contains `subject_part`, once `count` arrived."""

    def about(message: ReceivedMessage) -> bool:
        return mission_id in (message.message_id or "") and subject_part in message.subject

    async def arrived() -> bool:
        return len([m for m in sink.messages if about(m)]) >= count

    await eventually(arrived, within=20)
    return [m for m in sink.messages if about(m)]


async def timeline_kinds(h: MissionHarness, mission_id: str) -> list[str]:
    """The mission's timeline as written to PostgreSQL (`mission_events`), in order."""
    rows = await h.rows(
        select(MissionEvent.kind)
        .where(MissionEvent.mission_id == mission_id)
        .order_by(MissionEvent.id)
    )
    return [row.kind for row in rows]


async def db_mission(h: MissionHarness, mission_id: str, check: Callable[[Any], bool]) -> Any:
    """The `missions` row, once `check` holds (the worker writes it asynchronously)."""

    async def reached() -> bool:
        rows = await h.rows(select(Mission).where(Mission.mission_id == mission_id))
        return bool(rows) and check(rows[0])

    await eventually(reached, within=20)
    return (await h.rows(select(Mission).where(Mission.mission_id == mission_id)))[0]


async def cra_state(h: MissionHarness, mission_id: str, month: str) -> CraState:
    cycle = h.env.client.get_workflow_handle(cra_workflow_id(mission_id, month))
    state: CraState = await cycle.query("state", result_type=CraState)
    return state


async def cycle_max_days(h: MissionHarness, mission_id: str, month: str, expected: int) -> int:
    """The open cycle's `max_days`, once it is `expected` (or after 20 s, whatever it is)."""

    async def learned() -> bool:
        return (await cra_state(h, mission_id, month)).max_days == expected

    with contextlib.suppress(AssertionError):
        await eventually(learned, within=20)
    return (await cra_state(h, mission_id, month)).max_days


async def gateway_refusal(h: MissionHarness, event_type: str, data: dict[str, Any]) -> EventError:
    """What the gateway's dispatch answers to a platform event dated now (test server's
    clock): parsed as the gateway parses it, routed with its PostgreSQL directory."""
    now = await h.now()
    raw = json.dumps(envelope(event_type, data, occurred_at=now)).encode()
    event = parse_event(raw, received_at=now)
    context = Context(h.env.client, h.queue, DatabaseDirectory(session_factory(h.engine)))
    with pytest.raises(EventError) as refused:
        await dispatch(context, event)
    return refused.value


# ---------------------------------------------------------------------- 1. start blocked


async def test_documents_lapsing_before_the_start_date_send_the_mission_back_to_legal_verification(
    mission_harness: MissionHarness, smtp_sink: MailSink, stack_settings: Settings
) -> None:
    h = mission_harness
    today = await h.today()
    start = today + timedelta(days=10)
    issued = today - timedelta(days=85)  # the Kbis lapses in 5 days: after verification
    handle = await contracted(h, start=start, end=start + timedelta(days=60), issued_on=issued)
    state = await h.until(handle, lambda s: s.stage == MissionStage.TO_START)
    pid = state.mission_id
    lapses_on = state.legal.provider_valid_until
    assert lapses_on == issued + KBIS_VALIDITY
    assert today < lapses_on < start, "valid at legal verification, lapsed by the start date"
    assert state.legal.provider_compliant

    await h.sleep_until(paris_instant(start, time(0, 5)))
    state = await h.until(handle, lambda s: s.stage == MissionStage.LEGAL_VERIFICATION)
    assert state.started_on is None and state.cra_months == []
    assert not state.legal.provider_compliant
    [blocked] = [e for e in state.timeline if e.kind == "mission.start_blocked"]
    assert "mission.started" not in [e.kind for e in state.timeline]
    assert blocked.detail and blocked.detail == "; ".join(state.legal.missing()["provider"])

    notices = await mails(smtp_sink, pid, "suspendu", 2)
    assert sorted(m.rcpt_tos for m in notices) == sorted(
        [(PROVIDER_EMAIL,), (stack_settings.ops_email,)]
    )
    assert all(blocked.detail in m.text() for m in notices)
    row = await db_mission(h, pid, lambda m: m.stage == MissionStage.LEGAL_VERIFICATION)
    assert row.stage == MissionStage.LEGAL_VERIFICATION
    assert "mission.start_blocked" in await timeline_kinds(h, pid)

    # Two days later the provider sends fresh documents: the mission starts that day, not
    # retroactively on its start date (its documents had lapsed then).
    await h.sleep_until(paris_instant(start + timedelta(days=2), time(10)))
    assert (await h.state(handle)).stage == MissionStage.LEGAL_VERIFICATION
    await h.refresh_documents(state)
    state = await h.until(handle, lambda s: s.stage == MissionStage.IN_PROGRESS)
    assert state.started_on == start + timedelta(days=2)
    assert [e.kind for e in state.timeline].count("mission.start_blocked") == 1
    await db_mission(h, pid, lambda m: m.stage == MissionStage.IN_PROGRESS)


# ---------------------------------------------------------------------- 2. alert cleared


async def test_fresh_documents_accepted_during_the_mission_clear_the_compliance_alert(
    mission_harness: MissionHarness, smtp_sink: MailSink
) -> None:
    h = mission_harness
    today = await h.today()
    issued = today - timedelta(days=80)  # the Kbis lapses in 10 days, mid-mission
    handle = await contracted(h, start=today, end=today + timedelta(days=60), issued_on=issued)
    state = await h.until(handle, lambda s: s.stage == MissionStage.IN_PROGRESS)
    pid = state.mission_id
    assert not state.compliance_alert

    await h.sleep_until(paris_instant(issued + KBIS_VALIDITY, time(1)))
    state = await h.until(handle, lambda s: s.compliance_alert)
    await mails(smtp_sink, pid, "documents légaux expirés", 2)

    await h.refresh_documents(state)
    state = await h.until(handle, lambda s: not s.compliance_alert)
    assert state.stage == MissionStage.IN_PROGRESS
    assert state.legal.provider_compliant
    assert state.legal.provider_valid_until == await h.today() + KBIS_VALIDITY
    kinds = [e.kind for e in state.timeline]
    assert kinds.count("compliance.lapsed") == 1 and kinds.count("compliance.restored") == 1
    assert kinds.index("compliance.lapsed") < kinds.index("compliance.restored")

    async def restored_in_db() -> bool:
        return "compliance.restored" in await timeline_kinds(h, pid)

    await eventually(restored_in_db, within=20)
    written = await timeline_kinds(h, pid)
    assert written.index("compliance.lapsed") < written.index("compliance.restored")
    # Cleared, not raised again: no second alert to the provider and ops.
    assert len(await mails(smtp_sink, pid, "documents légaux expirés", 2)) == 2


# ---------------------------------------------------------------------- 3. after a termination


async def test_after_an_early_termination_no_cra_opens_beyond_the_end_and_validations_are_refused(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    mission, months = await h.mission_in_progress(PaymentOffer.BASIC, months=3)
    pid = (await h.state(mission)).mission_id
    first, second, third = months
    await h.until(mission, lambda s: first in s.cra_months)
    cycle = h.env.client.get_workflow_handle(cra_workflow_id(pid, first), result_type=CraResult)
    # The provider declares 20 days of the first month on its last business day (when its
    # CRA opens) while the mission still runs to the end of the third.
    running = await h.state(mission)
    opens = submission_opens_on(first, running.start_date, running.end_date)
    await h.sleep_until(paris_instant(opens, SUBMIT_AT))
    await h.send(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=first, days=Decimal("20"))
    )
    end = month_bounds(first)[0] + timedelta(days=14)
    await h.send(
        mission,
        "mission.terminated",
        MissionTerminated(mission_id=pid, end_date=end, reason="fin du projet client"),
    )
    assert await cycle_max_days(h, pid, first, 15) == 15
    refusal = await refused_update(
        cycle, "cra.validated", CraValidated(mission_id=pid, month=first, approver_id=APPROVER)
    )
    assert "declares 20" in refusal and end.isoformat() in refusal, refusal
    assert "15 days of mission at most" in refusal, refusal
    await h.send(
        cycle,
        "cra.rejected",
        CraRejected(mission_id=pid, month=first, approver_id=APPROVER, comment="15 jours max"),
    )
    await h.send(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=first, days=Decimal("10"))
    )

    # Into the third month: neither month after the end date opened a CRA cycle.
    await h.sleep_until(paris_instant(month_bounds(third)[0] + timedelta(days=1), time(9)))
    state = await h.state(mission)
    assert state.stage == MissionStage.IN_PROGRESS, "it ends once its last CRA is validated"
    assert state.cra_months == [first] and state.end_date == end
    for month in (second, third):
        with pytest.raises(RPCError) as missing:
            await h.env.client.get_workflow_handle(cra_workflow_id(pid, month)).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
    validation = {"mission_id": pid, "month": second, "approver_id": APPROVER}
    refused = await gateway_refusal(h, "cra.validated", validation)
    assert isinstance(refused, NotApplicable) and refused.status_code == 409
    assert f"the CRA of {second} is not open for mission {pid}" in refused.message
    assert "not a month of the mission" in refused.message, refused.message
    explained = explain_month(state, second, None, None, await h.today())
    assert not explained.cra_visible
    assert explained.cra[0].code == "not_a_mission_month"
    assert explained.cra[0].facts["end_date"] == end.isoformat()

    await h.send(
        cycle, "cra.validated", CraValidated(mission_id=pid, month=first, approver_id=APPROVER)
    )
    closed = await cycle.result()
    assert closed.status == CraStatus.VALIDATED
    assert closed.amount_excl_vat == Decimal("650.00") * 10
    ended = await h.ended(mission)
    assert ended.stage == MissionStage.TERMINATED
    refused = await gateway_refusal(h, "cra.validated", {**validation, "month": third})
    assert refused.status_code == 409
    assert f"the CRA of {third} is not open" in refused.message
    assert "terminated" in refused.message, refused.message


# ---------------------------------------------------------------------- 4. renewal, mid-month


async def test_a_renewal_validated_while_a_mid_month_end_cycle_is_open_extends_it_to_the_month(
    mission_harness: MissionHarness,
) -> None:
    h = mission_harness
    today = await h.today()
    month = following(month_of(today))
    start = month_bounds(month)[0]
    end = start + timedelta(days=14)  # the mission ends mid-month
    handle = await contracted(h, start=start, end=end, issued_on=today)
    await h.until(handle, lambda s: s.stage == MissionStage.TO_START)
    await h.sleep_until(paris_instant(start, time(0, 5)))
    state = await h.until(handle, lambda s: month in s.cra_months)
    pid = state.mission_id
    run = state.run
    cycle = h.env.client.get_workflow_handle(cra_workflow_id(pid, month))
    assert (await cra_state(h, pid, month)).max_days == 15
    assert "15" in await refused_update(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=month, days=Decimal("16"))
    )

    new_end = last_day(following(month))
    run_id = (await handle.describe()).run_id
    await h.renew(handle, new_end)
    state = await h.continued(handle, run_id)
    assert state.renewal is None and state.run == run + 1
    assert state.end_date == new_end and state.stage == MissionStage.IN_PROGRESS
    [terms] = state.renewals
    assert (terms.version, terms.start_date, terms.end_date) == (
        2,
        end + timedelta(days=1),
        new_end,
    )

    whole_month = last_day(month).day
    assert await cycle_max_days(h, pid, month, whole_month) == whole_month
    # The whole month is filed when its CRA now opens, on its last business day.
    await h.sleep_until(paris_instant(submission_opens_on(month, start, new_end), SUBMIT_AT))
    await h.send(
        cycle,
        "cra.submitted",
        CraSubmitted(mission_id=pid, month=month, days=Decimal(whole_month)),
    )
    cra = await cra_state(h, pid, month)
    assert cra.status == CraStatus.SUBMITTED and cra.days == whole_month


# ---------------------------------------------------------------------- 5. renewal dropped


async def test_a_termination_drops_the_pending_renewal(mission_harness: MissionHarness) -> None:
    h = mission_harness
    mission, months = await h.mission_in_progress(PaymentOffer.BASIC, months=2)
    pid = (await h.state(mission)).mission_id
    await h.until(mission, lambda s: months[0] in s.cra_months)
    await h.send(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(following(months[-1]))),
    )
    state = await h.state(mission)
    assert state.stage == MissionStage.RENEWAL_PENDING
    assert state.renewal is not None and state.renewal.step == RenewalStep.REQUESTED

    end = month_bounds(months[0])[0] + timedelta(days=19)
    await h.send(
        mission,
        "mission.terminated",
        MissionTerminated(mission_id=pid, end_date=end, reason="budget supprimé"),
    )
    state = await h.state(mission)
    assert state.renewal is None
    assert state.stage == MissionStage.IN_PROGRESS and state.end_date == end
    assert state.termination is not None and state.termination.end_date == end
    assert "no renewal is pending" in await refused_update(
        mission, "renewal.accepted", RenewalAccepted(mission_id=pid)
    )
    assert "no renewal is pending" in await refused_update(
        mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id=APPROVER)
    )
    assert "no renewal is pending" in await refused_update(
        mission,
        "renewal.declined",
        RenewalDeclined(mission_id=pid, by="provider", reason="plus rien à refuser"),
    )
    assert "not renewed" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(months[-1])),
    )
    # The month after the end is outside the mission, no longer awaiting a renewal.
    explained = explain_month(state, months[1], None, None, await h.today())
    assert explained.cra[0].code == "not_a_mission_month"
    row = await db_mission(h, pid, lambda m: m.end_date == end)
    assert row.stage == MissionStage.IN_PROGRESS

    # With no renewal left pending, the mission ends once its last CRA is validated.
    await h.month(mission, months[0], ends=end, quick=True)
    ended = await h.ended(mission)
    assert ended.stage == MissionStage.TERMINATED
    assert (await h.state(mission)).cra_months == [months[0]]


async def test_a_cra_cycle_terminated_by_ops_does_not_fail_its_mission(
    mission_harness: MissionHarness,
) -> None:
    """Issue 12 point 3: ops terminate a month's CRA cycle; the mission, which still counts
    it open, later tells it the mission ends mid-month. The signal fails (no such running
    workflow): the mission logs it and goes on, terminated, instead of failing whole."""
    h = mission_harness
    mission, months = await h.mission_in_progress(PaymentOffer.BASIC, months=3)
    pid = (await h.state(mission)).mission_id
    second = months[1]
    await h.sleep_until(paris_instant(month_bounds(second)[0] + timedelta(days=9), time(9, 37)))
    await h.until(mission, lambda s: second in s.cra_months)
    await h.env.client.get_workflow_handle(cra_workflow_id(pid, second)).terminate("ops")
    end = month_bounds(second)[0] + timedelta(days=14)
    await h.send(
        mission, "mission.terminated", MissionTerminated(mission_id=pid, end_date=end, reason="x")
    )
    await h.until(mission, lambda s: s.termination is not None and s.end_date == end)
    await h.sleep_until(paris_instant(end, time(18, 17)))
    assert (await mission.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await h.state(mission)).stage == MissionStage.IN_PROGRESS


async def test_a_month_billed_during_an_smtp_outage_is_closed_to_a_termination(
    mission_harness: MissionHarness,
) -> None:
    """Issue 12 points 4 and 5: the CRA cycle tells its mission the month is billed before
    its e-mails are delivered. During an SMTP outage (every message 451), the mission still
    learns it at once, so a termination dated inside that month is refused; before, the
    mission saw the month open until the mails went out, and accepted it."""
    h = mission_harness
    sink = h.sink
    assert sink is not None
    mission, months = await h.mission_in_progress(PaymentOffer.BASIC, months=3)
    pid = (await h.state(mission)).mission_id
    first = months[0]
    due = previous_business_day_on_or_before(last_day(first))
    submitted_at = paris_instant(due, SUBMIT_AT)
    await h.sleep_until(submitted_at)
    await h.until(mission, lambda s: first in s.cra_months)
    cycle = h.env.client.get_workflow_handle(cra_workflow_id(pid, first))
    await h.send(
        cycle,
        "cra.submitted",
        CraSubmitted(mission_id=pid, month=first, days=Decimal("10"), occurred_at=submitted_at),
    )
    sink.fail_next(100_000)  # the outage: every message gets "451 Try again later"
    try:
        await h.send(
            cycle,
            "cra.validated",
            CraValidated(
                mission_id=pid,
                month=first,
                approver_id=APPROVER,
                occurred_at=submitted_at + timedelta(seconds=1),
            ),
        )
        await h.until(mission, lambda s: first in s.validated_months)
        refusal = await refused_update(
            mission,
            "mission.terminated",
            MissionTerminated(
                mission_id=pid, end_date=last_day(first) - timedelta(days=3), reason="x"
            ),
        )
        assert "too early" in refusal, refusal
    finally:
        sink.recover()
