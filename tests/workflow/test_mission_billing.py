"""Three-month missions end to end through MissionWorkflow, one per payment offer, on the
time-skipping server with the real activities (PostgreSQL, SMTP sink): proposal → retained →
legal verification → start → three monthly CRAs submitted and validated → payouts. Every
payout date and amount is checked against `domain/` and against the database rows, with a
Flash payout across a public holiday, Basic and Express payouts whose day 60 / 30 is not a
business day paid the business day before (never late),
overtime and expenses in a CRA, and the exactly-once cases of the validation path: the same
validation delivered twice, a worker lost between the commit and the reply, an SMTP server
that answers 451 then recovers."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.registry import Activities
from db.engine import create_engine
from db.models import Bpf, Cra, CraLine, EmailOutbox, Invoice, MissionEvent, Payout
from domain.calendar import is_business_day
from domain.clock import paris_date, paris_instant
from domain.cra import month_bounds
from domain.payouts import CLIENT_PAYMENT_TERM, Shift, compute_payout
from domain.penalties import late_payment_penalty
from schemas.cra import CraValidation, CraValidationResult
from schemas.enums import CraStatus, InvoiceStatus, PaymentOffer, PayoutStatus
from schemas.events import CraValidated
from schemas.ids import payout_workflow_id
from schemas.names import RECORD_CRA_VALIDATION
from settings import Settings
from starter.devstack.mailsink import MailSink
from tests.fixtures.histories import record_history
from tests.fixtures.temporal import send_update
from tests.support.mission import (
    Handle,
    MissionHarness,
    MonthOutcome,
    MonthPlan,
    first_validation_day,
)
from tests.support.months import next_month
from tests.support.waits import eventually
from tests.support.workers import real_worker

HISTORIES = Path(__file__).parent.parent / "histories"

# Month 2 carries overtime, an expense and a correction of month 1: all invoiced, all paid to
# the provider, and no fee on any of them (fees apply to days of service only).
MONTH_2_LINES: dict[str, Any] = {
    "expenses": [
        {"label": "Train Paris-Lyon", "amount": "120.00", "vat_rate": "10", "receipt_ref": "R-1"}
    ],
    "overtime": [{"label": "Astreinte week-end", "amount": "300.00"}],
}
DAYS = (Decimal("15"), Decimal("18.5"), Decimal("10"))


@pytest_asyncio.fixture
async def make_harness(
    own_time_skipping_env: WorkflowEnvironment,
    stack_settings: Settings,
    smtp_sink: MailSink,
    db_engine: AsyncEngine,
) -> AsyncIterator[Callable[..., Any]]:
    """A worker on its own queue with the real activities; `extra` ones replace them by name."""
    async with AsyncExitStack() as stack:

        async def make(*extra: Callable[..., Any]) -> MissionHarness:
            queue, _ = await stack.enter_async_context(
                real_worker(own_time_skipping_env, stack_settings, *extra)
            )
            return MissionHarness(own_time_skipping_env, queue, db_engine, sink=smtp_sink)

        yield make


def plans(
    months: list[str],
    choose: Callable[[int, str], date | None] = lambda i, m: None,
    **extra: Any,
) -> list[MonthPlan]:
    """Three months: 15 days, then 18.5 days with overtime, an expense and a correction of
    month 1, then 10 days; validated on `choose(i, month)` or the first business day after
    the month's last business day."""
    result = []
    for i, month in enumerate(months):
        lines: dict[str, Any] = {}
        if i == 1:
            correction = {"label": "Trop facturé", "amount": "-50.00", "corrects_month": months[0]}
            lines = {**MONTH_2_LINES, "corrections": [correction]}
        validate_on = choose(i, month) or first_validation_day(month)
        assert validate_on is not None
        result.append(MonthPlan(month, DAYS[i], validate_on, lines, **extra.get(str(i), {})))
    return result


async def run_mission(
    h: MissionHarness, offer: PaymentOffer, make_plans: Any
) -> tuple[str, Handle, list[MonthOutcome]]:
    mission, months = await h.mission_in_progress(offer)
    pid = (await h.state(mission)).mission_id
    outcomes = [await h.run_month(mission, offer, plan) for plan in make_plans(months)]
    return pid, mission, outcomes


async def skip_to_a_holiday_season(h: MissionHarness, predicate: Callable[[date], bool]) -> None:
    """Move the clock (no workflow runs yet) so that one of the three months of the mission
    `mission_in_progress` starts next month has a validation day `predicate` accepts: some
    quarters have no public holiday near a month end (January to March in some years)."""
    first = start = next_month(await h.today())
    for _ in range(12):
        months = [first]
        while len(months) < 3:
            months.append(next_month(month_bounds(months[-1])[0]))
        if any(first_validation_day(m, predicate) for m in months):
            break
        first = next_month(month_bounds(first)[0])
    if first != start:  # mission_in_progress starts on the 1st of the month after "today"
        await h.sleep_until(paris_instant(month_bounds(first)[0] - timedelta(days=1), time(12)))


async def check_paid(
    h: MissionHarness, pid: str, offer: PaymentOffer, outcomes: list[MonthOutcome]
) -> None:
    """Once the last payout date has passed: every month invoiced once and paid once, on the
    date and for the amount `domain/` gives, in the workflows and in the database."""
    dates = [o.expected_payout_date for o in outcomes]
    assert all(dates), dates
    last = max(d for d in dates if d is not None)
    await h.sleep_until(paris_instant(last, time(9, 30)))  # payouts go at 09:00
    state = await h.state(await _mission(h, pid))

    async def all_paid() -> bool:
        states = [await h.payout_state(pid, o.month) for o in outcomes]
        return all(s.status is PayoutStatus.PAID for s in states)

    await eventually(all_paid, within=20)

    async def all_sent() -> bool:
        rows = await h.rows(select(EmailOutbox.status).where(EmailOutbox.mission_id == pid))
        return all(status == "sent" for (status,) in rows)

    await eventually(all_sent, within=20)
    assert state.validated_months == [o.month for o in outcomes]
    for o in outcomes:
        payout = await h.payout_state(pid, o.month)
        assert payout.status is PayoutStatus.PAID, (o.month, payout)
        assert payout.payout_date == o.payout_on
        assert payout.amount == o.amounts.total_incl_vat
        assert payout.fee == o.fee and payout.net_amount == o.net
        assert payout.paid_at is not None and paris_date(payout.paid_at) == o.payout_on
        if o.client_paid_on is None:  # fixed date or immediate: the date of domain.payouts
            assert payout.facts.validated_on == o.plan.validate_on
            assert payout.facts.capped_by_legal_limit == o.schedule.capped_by_legal_limit
        else:
            assert payout.facts.client_paid_on == o.client_paid_on

        [invoice] = await h.rows(
            select(Invoice.__table__).where(Invoice.mission_id == pid, Invoice.month == o.month)
        )
        assert invoice.number == o.cra.invoice_number and invoice.number is not None
        # Paid once the client settled it (back-to-back); in payment otherwise.
        paid_by_client = o.client_paid_on is not None
        assert invoice.status == (
            InvoiceStatus.PAID if paid_by_client else InvoiceStatus.IN_PAYMENT
        )
        assert invoice.issued_on == o.plan.validate_on
        assert (invoice.amount_excl_vat, invoice.vat_amount, invoice.amount_incl_vat) == (
            o.amounts.total_excl_vat,
            o.amounts.vat,
            o.amounts.total_incl_vat,
        )
        [row] = await h.rows(
            select(Payout.__table__).where(Payout.mission_id == pid, Payout.month == o.month)
        )
        assert row.status == PayoutStatus.PAID and row.invoice_id == invoice.id
        assert (row.due_on, row.amount, row.fee, row.net_amount) == (
            o.payout_on,
            o.amounts.total_incl_vat,
            o.fee,
            o.net,
        )
        assert row.paid_at == payout.paid_at
        [bpf] = await h.rows(
            select(Bpf.__table__).where(Bpf.mission_id == pid, Bpf.month == o.month)
        )
        assert bpf.amount_excl_vat == o.amounts.total_excl_vat
        # One email each: billing started (with the payment date when known), then paid.
        [billing] = h.sent(pid, f"CRA {o.month} validé")
        if o.client_paid_on is None:
            assert o.payout_on.strftime("%d/%m/%Y") in billing.text()
        assert len(h.sent(pid, f"Paiement effectué : mission {pid}, CRA {o.month}")) == 1
    numbers = [o.cra.invoice_number for o in outcomes]
    siren = (await h.state(await _mission(h, pid))).provider_siren
    assert numbers == [f"F-{siren}-{n:06d}" for n in (1, 2, 3)]  # continuous per issuer


async def _mission(h: MissionHarness, pid: str) -> Handle:
    return h.env.client.get_workflow_handle(f"mission-{pid}")


def check_month_2_lines(outcome: MonthOutcome, offer: PaymentOffer) -> None:
    """18.5 days × 650 = 12 025, + 300 overtime − 50 correction = 12 275 at 20 % (2 455),
    + 120 train at 10 % (12): 12 395 excl. VAT, 14 862 incl. VAT. The fee is on the 12 025 of
    days only; the provider gets the overtime and the expense in full."""
    assert outcome.amounts.total_excl_vat == Decimal("12395.00")
    assert outcome.amounts.total_incl_vat == Decimal("14862.00")
    assert outcome.cra.amount_incl_vat == Decimal("14862.00")
    fee = {
        PaymentOffer.BASIC: Decimal("0.00"),
        PaymentOffer.EXPRESS: Decimal("300.63"),  # 2.5 % × 650 × 18.5 = 300.625, half up
        PaymentOffer.FLASH: Decimal("601.25"),  # 5 % × 650 × 18.5
        PaymentOffer.BACK_TO_BACK: Decimal("0.00"),
        PaymentOffer.IMMEDIATE: Decimal("370.00"),  # 20 € × 18.5 days
    }[offer]
    assert outcome.fee == fee
    assert outcome.net == Decimal("14862.00") - fee


async def check_lines_in_db(h: MissionHarness, pid: str, month: str) -> None:
    [cra] = await h.rows(select(Cra.__table__).where(Cra.mission_id == pid, Cra.month == month))
    assert cra.status == CraStatus.VALIDATED
    lines = await h.rows(
        select(CraLine.kind, CraLine.amount)
        .where(CraLine.cra_id == cra.id)
        .order_by(CraLine.position)
    )
    assert [(str(k), a) for k, a in lines] == [
        ("days", Decimal("12025.00")),
        ("expense", Decimal("120.00")),
        ("overtime", Decimal("300.00")),
        ("correction", Decimal("-50.00")),
    ]


async def test_basic_mission_pays_60_days_later_and_never_after_day_60(
    make_harness: Callable[..., Any],
) -> None:
    h: MissionHarness = await make_harness()

    def day_60_off(day: date) -> bool:
        return is_business_day(day) and not is_business_day(day + timedelta(days=60))

    # Month 2 is validated on a day whose 60th day later is not a business day: the payout
    # moves to the business day before it (never after the promised day, nor the legal cap).
    pid, mission, outcomes = await run_mission(
        h,
        PaymentOffer.BASIC,
        lambda months: plans(
            months, lambda i, m: first_validation_day(m, day_60_off) if i == 1 else None
        ),
    )
    pulled = outcomes[1]
    day_60 = pulled.plan.validate_on + timedelta(days=60)
    assert pulled.schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert not pulled.schedule.capped_by_legal_limit  # the weekend moved it, not the cap
    assert pulled.payout_on < day_60 and is_business_day(pulled.payout_on)
    assert all(
        not is_business_day(pulled.payout_on + timedelta(days=i))
        for i in range(1, (day_60 - pulled.payout_on).days + 1)
    )
    check_month_2_lines(pulled, PaymentOffer.BASIC)

    if os.environ.get("RECORD_HISTORIES"):  # each one only if new or named (histories.py)
        # Three validated CRAs, the last month's payout waiting on its 60-day timer.
        last = outcomes[-1]
        payout = h.env.client.get_workflow_handle(payout_workflow_id(pid, last.month))
        assert (await h.payout_state(pid, last.month)).status is PayoutStatus.SCHEDULED
        for name, handle in (
            ("mission_three_months_billed", mission),
            ("payout_basic_pending_timer", payout),
        ):
            await record_history(handle, name)

    await check_paid(h, pid, PaymentOffer.BASIC, outcomes)
    await check_lines_in_db(h, pid, pulled.month)
    state = await h.payout_state(pid, pulled.month)
    assert not state.facts.capped_by_legal_limit and state.facts.legal_limit == day_60
    assert state.facts.shift == Shift.PREVIOUS_BUSINESS_DAY.value
    assert "paiement avancé au jour ouvré précédent" in state.facts.explanation


async def test_flash_mission_across_a_public_holiday_with_a_worker_lost_after_the_commit(
    make_harness: Callable[..., Any], stack_settings: Settings
) -> None:
    """Flash: 3 business days, public holidays do not count. The first validation's activity
    commits, then its worker is lost before replying: the retry finds the commit and writes
    nothing twice (one invoice, one payout, one email)."""
    real = Activities(
        create_engine(stack_settings.database_url), Mailer(stack_settings), settings=stack_settings
    )
    lost: list[str] = []

    @activity.defn(name=RECORD_CRA_VALIDATION)
    async def lost_after_commit(v: CraValidation) -> CraValidationResult:
        result = await real.cra.record_cra_validation(v)
        if not lost:
            lost.append(v.key)
            raise RuntimeError("worker lost after the commit, before the reply")
        return result

    def across_holiday(day: date) -> bool:
        return is_business_day(day) and bool(
            compute_payout(PaymentOffer.FLASH, day).skipped_holidays
        )

    try:
        h: MissionHarness = await make_harness(lost_after_commit)
        await skip_to_a_holiday_season(h, across_holiday)
        pid, _, outcomes = await run_mission(
            h,
            PaymentOffer.FLASH,
            lambda months: plans(months, lambda i, m: first_validation_day(m, across_holiday)),
        )
        assert lost and lost[0].endswith(outcomes[0].month)
        shifted = [o for o in outcomes if o.schedule.skipped_holidays]
        assert shifted, "no Flash validation of the mission's months crossed a holiday"
        for o in shifted:
            plain = o.plan.validate_on + timedelta(days=3)
            assert o.payout_on > plain
        check_month_2_lines(outcomes[1], PaymentOffer.FLASH)
        await check_paid(h, pid, PaymentOffer.FLASH, outcomes)
        await check_lines_in_db(h, pid, outcomes[1].month)
        for o in shifted:
            facts = (await h.payout_state(pid, o.month)).facts
            assert facts.skipped_holidays and "férié" in facts.explanation
        # The retried validation wrote nothing twice.
        month = outcomes[0].month
        for model in (Invoice, Payout, Bpf):
            assert (
                await h.count(
                    select(func.count())
                    .select_from(model)
                    .where(model.mission_id == pid, model.month == month)
                )
                == 1
            )
        assert (
            await h.count(
                select(func.count()).where(
                    MissionEvent.mission_id == pid,
                    MissionEvent.kind == "cra.validated",
                )
            )
            == 3
        )
        assert (
            await h.count(
                select(func.count()).where(
                    EmailOutbox.mission_id == pid, EmailOutbox.template == "cra_validated"
                )
            )
            == 3
        )
    finally:
        await real.close()


async def test_express_mission_with_the_validation_delivered_twice(
    make_harness: Callable[..., Any],
) -> None:
    """The platform delivers month 2's `cra.validated` twice with the same event id (one
    update), then again under a new event id (refused: a validated CRA is immutable)."""
    h: MissionHarness = await make_harness()
    refusals: list[str] = []

    async def twice_then_again(cycle: Handle, event: CraValidated) -> None:
        event_id = f"evt-{uuid.uuid4().hex}"
        await asyncio.gather(
            send_update(cycle, "cra.validated", event, event_id),
            send_update(cycle, "cra.validated", event, event_id),
        )
        try:
            await send_update(cycle, "cra.validated", event, f"evt-{uuid.uuid4().hex}")
        except WorkflowUpdateFailedError as exc:  # validator: already validated
            refusals.append(str(exc.cause))
        except RPCError as exc:  # the cycle already completed: nothing can reach it
            described = await cycle.describe()
            assert exc.status is RPCStatusCode.NOT_FOUND, exc
            assert described.status is WorkflowExecutionStatus.COMPLETED, described.status
            refusals.append("completed")

    def lands_on_a_weekend(day: date) -> bool:
        schedule = compute_payout(PaymentOffer.EXPRESS, day)
        return is_business_day(day) and schedule.shift is Shift.PREVIOUS_BUSINESS_DAY

    pid, _, outcomes = await run_mission(
        h,
        PaymentOffer.EXPRESS,
        lambda months: plans(
            months,
            lambda i, m: first_validation_day(m, lands_on_a_weekend) if i == 0 else None,
            **{"1": {"deliver_validation": twice_then_again}},
        ),
    )
    assert len(refusals) == 1
    assert refusals[0] == "completed" or "a validated CRA is immutable" in refusals[0], refusals
    # Month 1's day 30 is not a business day: paid the business day before, never after it
    # (the billing e-mail and the payout carry that earlier date: check_paid).
    first = outcomes[0]
    assert first.schedule.shift is Shift.PREVIOUS_BUSINESS_DAY
    assert first.payout_on < first.plan.validate_on + timedelta(days=30)
    assert is_business_day(first.payout_on)
    check_month_2_lines(outcomes[1], PaymentOffer.EXPRESS)
    await check_paid(h, pid, PaymentOffer.EXPRESS, outcomes)
    assert (
        await h.count(
            select(func.count()).where(
                EmailOutbox.mission_id == pid, EmailOutbox.template == "cra_validated"
            )
        )
        == 3
    )


async def test_back_to_back_mission_waits_for_the_client_then_pays(
    make_harness: Callable[..., Any],
) -> None:
    """Back-to-back: no payout date until the client pays. The client pays the three invoices
    late, once month 3 is validated: month 1's payout has waited two months (a fixed-date
    offer would have paid it), and the client owes late-payment interest and the €40
    indemnity on it."""
    h: MissionHarness = await make_harness()
    pid, _, outcomes = await run_mission(h, PaymentOffer.BACK_TO_BACK, plans)

    async def all_waiting() -> bool:
        states = [await h.payout_state(pid, o.month) for o in outcomes]
        return all(s.status is PayoutStatus.WAITING_CLIENT_PAYMENT for s in states)

    await eventually(all_waiting)
    for o in outcomes:
        assert o.schedule.payout_date is None and o.expected_payout_date is None
        waiting = await h.payout_state(pid, o.month)
        assert waiting.payout_date is None and "après l'encaissement" in waiting.facts.explanation
    assert await h.today() - outcomes[0].plan.validate_on > timedelta(days=50)
    for o in outcomes:
        await h.client_pays(pid, o)
    check_month_2_lines(outcomes[1], PaymentOffer.BACK_TO_BACK)
    await check_paid(h, pid, PaymentOffer.BACK_TO_BACK, outcomes)
    first = outcomes[0]
    assert first.client_paid_on is not None
    penalty = late_payment_penalty(
        first.amounts.total_incl_vat,
        first.plan.validate_on + CLIENT_PAYMENT_TERM,
        first.client_paid_on,
    )
    facts = (await h.payout_state(pid, first.month)).facts
    assert facts.client_days_late == penalty.days_late > 0
    assert facts.client_penalties == penalty.interest > 0
    assert facts.client_indemnity == Decimal("40.00")


async def test_immediate_mission_pays_at_once_and_survives_smtp_451(
    make_harness: Callable[..., Any], smtp_sink: MailSink
) -> None:
    """Immediate payment: the first business day on or after the validation (a Saturday
    validation pays on Monday), €20 per day. Month 2's emails meet two 451 answers: the
    billing-started and the payout-paid emails still arrive once each."""
    h: MissionHarness = await make_harness()

    def saturday(day: date) -> bool:
        return day.weekday() == 5

    served_before = smtp_sink.failures_served
    pid, _, outcomes = await run_mission(
        h,
        PaymentOffer.IMMEDIATE,
        lambda months: plans(
            months,
            lambda i, m: first_validation_day(m, saturday) if i == 0 else None,
            **{"1": {"before_validation": lambda: smtp_sink.fail_next(2, code=451)}},
        ),
    )
    first = outcomes[0]
    assert first.payout_on > first.plan.validate_on
    assert is_business_day(first.payout_on)
    check_month_2_lines(outcomes[1], PaymentOffer.IMMEDIATE)
    await check_paid(h, pid, PaymentOffer.IMMEDIATE, outcomes)
    assert smtp_sink.failures_served - served_before == 2
    attempts = await h.count(
        select(func.sum(EmailOutbox.attempts)).where(
            EmailOutbox.mission_id == pid,
            EmailOutbox.template.in_(("cra_validated", "payout_paid")),
        )
    )
    assert attempts == 6 + 2  # three months × two emails, two of them refused once first
