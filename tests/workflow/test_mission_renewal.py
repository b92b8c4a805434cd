"""Renewal, early termination, end of mission and long life, through MissionWorkflow on the
time-skipping server with the real activities (PostgreSQL, SMTP sink) and the real provider
compliance workflow: the amounts and payout dates of the months before and after a renewal,
a declined renewal, a termination mid-month, and a 9-month mission with two renewals whose
every run stays small."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import Cra, Invoice, Mission, MissionTerms, Payout
from domain.calendar import next_business_day_on_or_after, previous_business_day_on_or_before
from domain.clock import paris_instant
from domain.cra import month_bounds, month_of
from domain.fees import offer_fee
from domain.payouts import compute_payout
from schemas.compliance import DOCUMENT_REVIEWED, DOCUMENT_UPLOADED
from schemas.cra import CraResult, CraState
from schemas.enums import MissionStage, PaymentOffer
from schemas.events import (
    CraSubmitted,
    CraValidated,
    DocumentReviewed,
    DocumentUploaded,
    MissionTerminated,
    RenewalAccepted,
    RenewalDeclined,
    RenewalRequested,
    RenewalValidated,
)
from schemas.ids import cra_workflow_id, mission_workflow_id
from schemas.mission import MissionResult, MissionState
from settings import Settings
from starter.devstack.mailsink import MailSink
from starter.support.explain import explain_month
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import refused_update, send_update, skip_time
from tests.workflow.mission_billing import DOCUMENTS, SUBMIT_AT, VALIDATE_AT, MissionDriver
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"
Handle = WorkflowHandle[Any, Any]
APPROVER = "APR-1"  # the approver of tests.fixtures.gateway.proposal_submitted's client
DAYS = Decimal("10")
WAIT = 60.0
"""Seconds a workflow result may take once the clock is past what it waits for."""


def following(month: str) -> str:
    return month_of(month_bounds(month)[1] + timedelta(days=1))


def last_day(month: str) -> date:
    return month_bounds(month)[1]


class Harness(MissionDriver):
    def __init__(
        self, env: WorkflowEnvironment, queue: str, engine: AsyncEngine, patience: float = 20.0
    ) -> None:
        super().__init__(env, queue, patience)
        self.engine = engine

    async def state(self, handle: Handle) -> MissionState:
        """The current run's state; a query that lands while the run continues as new is
        asked again."""
        for _ in range(20):
            try:
                return await super().state(handle)
            except RPCError:
                await asyncio.sleep(0.2)
        return await super().state(handle)

    async def count(self, stmt: Any) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def send(self, handle: Handle, name: str, payload: Any) -> Any:
        return await send_update(handle, name, payload, f"evt-{uuid.uuid4().hex}")

    async def month(
        self,
        mission: Handle,
        month: str,
        *,
        days: Decimal = DAYS,
        ends: date | None = None,
        quick: bool = False,
    ) -> CraResult:
        """The provider submits on the last business day of the mission's part of the month,
        an approver validates the next business day; the cycle's result."""
        state = await self.state(mission)
        pid = state.mission_id
        due = previous_business_day_on_or_before(min(last_day(month), ends or last_day(month)))
        await self.sleep_until(paris_instant(due, SUBMIT_AT))
        await self.until(mission, lambda s: month in s.cra_months)
        cycle = self.env.client.get_workflow_handle(
            cra_workflow_id(pid, month), result_type=CraResult
        )
        submitted = CraSubmitted(
            mission_id=pid, month=month, days=days, occurred_at=paris_instant(due, SUBMIT_AT)
        )
        await self.send(cycle, "cra.submitted", submitted)
        validate_on = next_business_day_on_or_after(due + timedelta(days=1))
        if quick:  # the client validates the same day: one time skip less per month
            validate_on = due
        validated_at = paris_instant(validate_on, VALIDATE_AT)
        await self.sleep_until(validated_at)
        await self.send(
            cycle,
            "cra.validated",
            CraValidated(
                mission_id=pid, month=month, approver_id=APPROVER, occurred_at=validated_at
            ),
        )
        result: CraResult = await asyncio.wait_for(cycle.result(), WAIT)
        assert result.validated_on == validate_on
        return result

    async def ended(self, mission: Handle) -> MissionResult:
        """The mission's result, once the clock is past its end date (the result call alone
        would wait forever if the test server stopped skipping time)."""
        end = (await self.state(mission)).end_date
        await self.sleep_until(paris_instant(end + timedelta(days=1), time(1, 7)))
        result: MissionResult = await asyncio.wait_for(mission.result(), WAIT)
        return result

    async def refresh_documents(self, state: MissionState) -> None:
        """The provider uploads fresh legal documents, accepted at once."""
        today = await self.today()
        provider = self.env.client.get_workflow_handle(f"provider-{state.provider_siren}")
        for kind in DOCUMENTS:
            document_id = f"DOC-{state.mission_id}-{kind.value}-{today.isoformat()}"
            upload = DocumentUploaded(
                document_id=document_id,
                provider_siren=state.provider_siren,
                kind=kind,
                issued_on=today,
                file_ref=f"s3://docs/{document_id}.pdf",
            )
            await self.send(provider, DOCUMENT_UPLOADED, upload)
            await self.send(
                provider,
                DOCUMENT_REVIEWED,
                DocumentReviewed(document_id=document_id, accepted=True),
            )

    async def renew(
        self,
        mission: Handle,
        new_end: date,
        *,
        tjm: str | None = None,
        offer: PaymentOffer | None = None,
    ) -> None:
        pid = (await self.state(mission)).mission_id
        await self.send(
            mission,
            "renewal.requested",
            RenewalRequested(mission_id=pid, new_end_date=new_end, new_tjm=tjm),
        )
        await self.send(
            mission, "renewal.accepted", RenewalAccepted(mission_id=pid, payment_offer=offer)
        )
        await self.send(
            mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id=APPROVER)
        )


@pytest_asyncio.fixture
async def harness(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> AsyncIterator[Harness]:
    env = own_time_skipping_env
    queue = f"tq-{uuid.uuid4().hex}"
    settings = stack_settings.model_copy(update={"task_queue": queue})
    activities = Activities(
        create_engine(settings.database_url),
        Mailer(settings),
        settings=settings,
        temporal=env.client,
    )
    async with Worker(
        env.client, task_queue=queue, workflows=list(WORKFLOWS), activities=activities.all()
    ):
        yield Harness(env, queue, db_engine)
    await activities.close()


def renewed_after(run: int) -> Callable[[MissionState], bool]:
    """The renewal took effect and the workflow continued as new past run `run`."""
    return lambda state: state.renewal is None and state.run > run


def check_billing(
    result: CraResult, offer: PaymentOffer, tjm: Decimal, days: Decimal = DAYS
) -> None:
    """The month was invoiced at `tjm` and is paid on `offer`'s date (domain/)."""
    assert result.validated_on is not None
    assert result.amount_excl_vat == tjm * days
    assert result.payout_date == compute_payout(offer, result.validated_on).payout_date
    assert result.amount_incl_vat == (tjm * days * Decimal("1.2")).quantize(Decimal("0.01"))


async def next_run(harness: Harness, workflow_id: str, run_id: str) -> str | None:
    """The run a run continued as new into, if it did."""
    handle = harness.env.client.get_workflow_handle(workflow_id, run_id=run_id)
    last = (await handle.fetch_history()).events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return str(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def run_chain(harness: Harness, workflow_id: str, first_run: str) -> list[tuple[int, int]]:
    """(events, bytes) of every run of a workflow, following its continue-as-new chain."""
    sizes: list[tuple[int, int]] = []
    run_id: str | None = first_run
    while run_id:
        handle = harness.env.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        sizes.append((len(history.events), sum(e.ByteSize() for e in history.events)))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return sizes


async def test_renewal_with_new_tjm_and_offer_applies_to_the_renewed_months_only(
    harness: Harness,
) -> None:
    mission, months = await harness.mission_in_progress(PaymentOffer.EXPRESS, months=2)
    state = await harness.state(mission)
    pid = state.mission_id
    first_run = mission.first_execution_run_id or ""
    renewed = [following(months[-1]), following(following(months[-1]))]

    january = await harness.month(mission, months[0])
    check_billing(january, PaymentOffer.EXPRESS, Decimal("650.00"))

    # Requested: the renewed months are hidden, and the explanation says who must act.
    await harness.send(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(renewed[-1]), new_tjm="700.00"),
    )
    state = await harness.state(mission)
    assert state.stage == MissionStage.RENEWAL_PENDING
    hidden = explain_month(state, renewed[0], None, None, await harness.today())
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
    await harness.send(
        mission,
        "renewal.accepted",
        RenewalAccepted(mission_id=pid, payment_offer=PaymentOffer.FLASH),
    )
    assert "not an approver" in await refused_update(
        mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id="APR-X")
    )
    await harness.send(
        mission, "renewal.validated", RenewalValidated(mission_id=pid, approver_id=APPROVER)
    )
    state = await harness.continued(mission, first_run)
    assert state.run == 2
    assert state.stage == MissionStage.IN_PROGRESS and state.renewal is None
    terms = state.renewals[0]
    assert (terms.version, terms.tjm, terms.payment_offer) == (2, Decimal("700.00"), "flash")
    assert terms.start_date == last_day(months[-1]) + timedelta(days=1)
    assert state.end_date == last_day(renewed[-1])

    # Months of the first contract keep its TJM and offer; renewed months take the new ones.
    february = await harness.month(mission, months[1])
    check_billing(february, PaymentOffer.EXPRESS, Decimal("650.00"))
    for month in renewed:
        check_billing(await harness.month(mission, month), PaymentOffer.FLASH, Decimal("700.00"))

    ended = await harness.ended(mission)
    assert ended.stage == MissionStage.COMPLETED
    runs = await run_chain(harness, mission_workflow_id(pid), first_run)
    assert len(runs) >= 2
    payouts = await harness.rows(
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
    versions = await harness.rows(
        select(MissionTerms.version, MissionTerms.tjm, MissionTerms.payment_offer)
        .where(MissionTerms.mission_id == pid)
        .order_by(MissionTerms.version)
    )
    assert [(v.version, v.tjm, v.payment_offer) for v in versions][-1] == (2, 700, "flash")
    row = (await harness.rows(select(Mission).where(Mission.mission_id == pid)))[0]
    assert row.stage == "completed" and row.end_date == last_day(renewed[-1])
    assert row.ended_on == last_day(renewed[-1])
    # The run before the renewal, and the run it continued as new into (which starts from
    # the carried state).
    renewed_run = harness.env.client.get_workflow_handle(mission_workflow_id(pid), run_id=first_run)
    await record_history(renewed_run, "mission_renewed")
    second_run = await next_run(harness, mission_workflow_id(pid), first_run)
    assert second_run is not None
    await record_history(
        harness.env.client.get_workflow_handle(mission_workflow_id(pid), run_id=second_run),
        "mission_continued_as_new",
    )


async def test_declined_renewal_ends_the_mission_on_its_current_end_date(
    harness: Harness,
) -> None:
    mission, months = await harness.mission_in_progress(PaymentOffer.BASIC, months=2)
    pid = (await harness.state(mission)).mission_id
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
    await harness.send(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(beyond)),
    )
    assert "no other renewal is pending" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(beyond)),
    )
    await harness.send(
        mission,
        "renewal.declined",
        RenewalDeclined(mission_id=pid, by="provider", reason="nouvelle mission ailleurs"),
    )
    state = await harness.state(mission)
    assert state.stage == MissionStage.IN_PROGRESS and state.renewal is None
    assert "no renewal is pending" in await refused_update(
        mission, "renewal.accepted", RenewalAccepted(mission_id=pid)
    )

    for month in months:
        check_billing(await harness.month(mission, month), PaymentOffer.BASIC, Decimal("650.00"))
    result = await harness.ended(mission)
    assert result.stage == MissionStage.COMPLETED
    await record_history(mission, "mission_renewal_declined")
    state = await harness.state(mission)
    assert state.cra_months == months and state.ended_on == last_day(months[-1])
    assert await harness.count(select(func.count()).where(Cra.mission_id == pid)) == 2


async def test_early_termination_mid_month_makes_the_last_cra_pro_rata(
    harness: Harness,
) -> None:
    mission, months = await harness.mission_in_progress(PaymentOffer.BASIC, months=3)
    pid = (await harness.state(mission)).mission_id
    first = await harness.month(mission, months[0])
    second = months[1]
    await harness.sleep_until(
        paris_instant(month_bounds(second)[0] + timedelta(days=9), time(9, 37))
    )
    await harness.until(mission, lambda s: second in s.cra_months)
    assert "too early" in await refused_update(
        mission,
        "mission.terminated",
        MissionTerminated(
            mission_id=pid, end_date=last_day(months[0]) - timedelta(days=3), reason="x"
        ),
    )
    end = month_bounds(second)[0] + timedelta(days=14)
    await harness.send(
        mission,
        "mission.terminated",
        MissionTerminated(mission_id=pid, end_date=end, reason="fin du projet client"),
    )
    state = await harness.state(mission)
    assert state.end_date == end and state.termination is not None
    assert "not renewed" in await refused_update(
        mission,
        "renewal.requested",
        RenewalRequested(mission_id=pid, new_end_date=last_day(months[-1])),
    )
    cycle = harness.env.client.get_workflow_handle(cra_workflow_id(pid, second))

    async def max_days() -> int:
        cra: CraState = await cycle.query("state", result_type=CraState)
        return cra.max_days

    for _ in range(50):
        if await max_days() == 15:
            break
        await skip_time(harness.env, timedelta(seconds=1))
    assert await max_days() == 15, "the open cycle learned its pro rata"
    refusal = await refused_update(
        cycle, "cra.submitted", CraSubmitted(mission_id=pid, month=second, days=Decimal("16"))
    )
    assert "15" in refusal, refusal
    last = await harness.month(mission, second, ends=end)
    check_billing(last, PaymentOffer.BASIC, Decimal("650.00"))

    result = await harness.ended(mission)
    assert result.stage == MissionStage.TERMINATED
    state = await harness.state(mission)
    assert state.cra_months == months[:2], "no CRA after the termination date"
    row = (await harness.rows(select(Mission).where(Mission.mission_id == pid)))[0]
    assert row.stage == "terminated" and row.end_date == end and row.ended_on == end
    assert row.end_reason == "fin du projet client"
    # The first month's payout still completes on its date.
    assert first.payout_date is not None
    await harness.sleep_until(paris_instant(first.payout_date, time(12, 13)))
    statuses = await harness.rows(
        select(Payout.status)
        .join(Invoice, Payout.invoice_id == Invoice.id)
        .where(Invoice.mission_id == pid, Invoice.month == months[0])
    )
    assert [s.status for s in statuses] == ["paid"]
    await record_history(mission, "mission_terminated")
