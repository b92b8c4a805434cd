"""The fast tier: PayoutWorkflow on the time-skipping server with its activities replaced by
fakes under the same names (tests/support/fakes.py). No PostgreSQL, no SMTP: which
transitions the payout writes, and at which instant. The payouts are started as the CRA
validation starts them (tests/support/payouts.py: `PayoutDriver`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.clock import paris_date, paris_instant
from domain.payouts import PAY_AT, back_to_back_payout_date, compute_payout
from schemas.enums import PaymentOffer, PayoutStatus
from schemas.events import InvoiceCancelled
from schemas.names import (
    DELIVER_OUTBOX,
    INVOICE_CANCELLED,
    RECORD_CLIENT_PAYMENT,
    RECORD_PAYOUT_TRANSITION,
)
from schemas.payouts import PayoutTransition
from tests.fixtures.temporal import settle, skip_until
from tests.support.fakes import FakePayoutActivities, fake_worker
from tests.support.payouts import INCL_VAT, PayoutDriver
from tests.support.waits import eventually

pytestmark = pytest.mark.timeout(60)

Fast = tuple[PayoutDriver, FakePayoutActivities]


@pytest_asyncio.fixture
async def payout_env(own_time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Fast]:
    fakes = FakePayoutActivities()
    async with fake_worker(own_time_skipping_env, fakes.all()) as queue:
        yield PayoutDriver(own_time_skipping_env, queue), fakes


def transitions(fakes: FakePayoutActivities) -> list[PayoutTransition]:
    return list(fakes.recorded.inputs(RECORD_PAYOUT_TRANSITION))


async def written(fakes: FakePayoutActivities, *kinds: str) -> None:
    """Wait until the payout wrote exactly these transitions."""

    async def reached() -> bool:
        return fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION) == list(kinds)

    try:
        await eventually(reached)
    except AssertionError:
        got = fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION)
        raise AssertionError(f"transitions {list(kinds)} expected, written {got}") from None


async def test_a_flash_payout_is_paid_at_nine_on_its_date(payout_env: Fast) -> None:
    driver, fakes = payout_env
    handle, inp = await driver.start(PaymentOffer.FLASH)
    payout_on = inp.terms.payout_date
    assert payout_on is not None
    assert payout_on == compute_payout(PaymentOffer.FLASH, inp.terms.validated_on).payout_date
    pay_at = paris_instant(payout_on, PAY_AT)
    await written(fakes, "scheduled")
    [scheduled] = transitions(fakes)
    assert (scheduled.status, scheduled.due_on) == (PayoutStatus.SCHEDULED, payout_on)

    # 08:30 on the day: still scheduled. Just past 09:00: paid, at 09:00.
    await skip_until(driver.env, paris_instant(payout_on, time(8, 30)))
    await settle()
    assert fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION) == ["scheduled"]
    await driver.reach_payment(payout_on)
    await written(fakes, "scheduled", "paid")
    paid = transitions(fakes)[-1]
    assert paid.status is PayoutStatus.PAID and paid.due_on == payout_on
    assert pay_at <= paid.at < pay_at + timedelta(minutes=1)
    assert (paid.amount, paid.fee, paid.net_amount) == (
        inp.terms.amount,
        inp.terms.fee,
        inp.terms.net_amount,
    )
    assert [(e.to, e.template) for e in paid.emails] == [("provider", "payout_paid")]
    state = await driver.state(handle)
    assert state.status is PayoutStatus.PAID and state.paid_at == paid.at

    async def delivered() -> bool:
        return bool(fakes.recorded.inputs(DELIVER_OUTBOX))

    await eventually(delivered)
    await handle.terminate("test over")  # a paid payout stays open for the client's payment


async def test_an_invoice_cancelled_before_the_date_cancels_the_payout(payout_env: Fast) -> None:
    driver, fakes = payout_env
    handle, inp = await driver.start(PaymentOffer.FLASH)
    assert inp.terms.payout_date is not None and inp.invoice_number is not None
    await written(fakes, "scheduled")

    cancel = InvoiceCancelled(invoice_number=inp.invoice_number, reason="Avoir AV-1")
    await driver.send(handle, INVOICE_CANCELLED, cancel)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.status is PayoutStatus.CANCELLED and result.paid_at is None
    assert result.reason == "Avoir AV-1"
    assert fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION) == ["scheduled", "cancelled"]
    cancelled = transitions(fakes)[-1]
    assert cancelled.status is PayoutStatus.CANCELLED and cancelled.reason == "Avoir AV-1"
    assert paris_date(cancelled.at) < inp.terms.payout_date
    assert [(e.to, e.template) for e in cancelled.emails] == [("provider", "payout_cancelled")]


async def test_back_to_back_waits_for_the_whole_payment(payout_env: Fast) -> None:
    """A partial payment (sent twice: counted once) leaves the payout waiting with what is
    still due; the payment that covers the invoice (and 100 € more: flagged to ops) releases
    it, dated from that payment's day, once."""
    driver, fakes = payout_env
    handle, inp = await driver.start(PaymentOffer.BACK_TO_BACK)
    await written(fakes, "scheduled")
    assert transitions(fakes)[0].status is PayoutStatus.WAITING_CLIENT_PAYMENT
    today = await driver.today()
    event_id = f"evt-{inp.mission_id}"

    for _ in range(2):  # the same event delivered twice
        partial = await driver.client_pays(
            handle,
            today,
            invoice_number=inp.invoice_number,
            amount=Decimal("1.00"),
            event_id=event_id,
        )
        assert partial.status is PayoutStatus.WAITING_CLIENT_PAYMENT
        assert partial.payout_date is None and partial.facts.client_paid_on is None
        assert (partial.facts.client_paid, partial.facts.client_still_due) == (
            Decimal("1.00"),
            INCL_VAT - Decimal("1.00"),
        )
    assert len(fakes.recorded.inputs(RECORD_CLIENT_PAYMENT)) <= 2
    assert list(fakes.client_payments[(inp.mission_id, inp.month)]) == [event_id]
    await settle()
    assert fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION) == ["scheduled"]

    # Ten days later, at 07:00, the client pays the rest, and 100 € too much.
    completed_on = today + timedelta(days=10)
    await skip_until(driver.env, paris_instant(completed_on, time(7, 0)))
    state = await driver.client_pays(
        handle, completed_on, invoice_number=inp.invoice_number, amount=INCL_VAT + Decimal("99")
    )
    assert state.facts.client_overpaid_by == Decimal("100.00")
    assert state.facts.client_still_due == 0 and state.facts.client_paid_on == completed_on

    async def released() -> bool:
        return fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION)[:2] == ["scheduled", "scheduled"]

    await eventually(released)
    scheduled = transitions(fakes)[1]
    assert scheduled.status is PayoutStatus.SCHEDULED
    assert scheduled.due_on == back_to_back_payout_date(completed_on)
    delivered = [key for d in fakes.recorded.inputs(DELIVER_OUTBOX) for key in d.keys]
    assert [key for key in delivered if key.endswith(":overpaid:ops")] and len(delivered) == 1

    await driver.reach_payment(back_to_back_payout_date(completed_on))
    result = await asyncio.wait_for(handle.result(), 30)  # complete: nothing left to wait for
    assert result.status is PayoutStatus.PAID
    assert result.payout_date == back_to_back_payout_date(completed_on)
    assert fakes.recorded.kinds(RECORD_PAYOUT_TRANSITION) == ["scheduled", "scheduled", "paid"]
