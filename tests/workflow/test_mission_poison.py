"""A transition the database refuses for good does not wedge its mission (issue 12 point 2).

Also: a CRA validation, or a payout's payment, the database refuses fails its cycle or its
payout at once, visibly (timeline row, one ops e-mail, the refusal as the workflow's failure),
instead of being retried for ever.

On the time-skipping server with the real activities, PostgreSQL and the SMTP sink: the
database is made to refuse one purchase order number (a CHECK the test adds for that one
value, standing for any schema rule stricter than the contract: the gateway's validation is
bypassed, the update goes straight to the workflow). The refused transition is recorded
once on the timeline, alerted once to ops, logged at ERROR with the mission id, put in the
search attribute `FailedTransitions`, without the refused value anywhere; the mission's next
event (the contract signed) is still written and the mission reaches `to_start`. The
three workflows' histories are recorded (tests/histories/mission_transition_refused.json,
cra_validation_refused.json, payout_transition_refused.json) and replayed by
tests/workflow/test_replay.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from db.models import Contract, Invoice, MissionEvent, Payout, PurchaseOrder
from schemas.enums import MissionStage, PaymentOffer, PayoutStatus
from schemas.names import DATA_REFUSED
from schemas.search_attributes import FAILED_TRANSITIONS
from tests.fixtures.histories import record_history
from tests.support.cra import CraHarness, submitted, validated
from tests.support.db import refusing
from tests.support.mission import MissionHarness
from tests.support.payouts import PayoutHarness
from tests.support.waits import about, eventually

ALERT = "n'a pas pu enregistrer"


@pytest.fixture
async def poison(db_engine: AsyncEngine) -> AsyncIterator[str]:
    """A purchase order number the database refuses (CHECK), for this test only."""
    value = f"PO-POISON-{uuid.uuid4().hex[:12]}"
    async with refusing(db_engine, "purchase_orders", f"po_number <> '{value}'"):
        yield value


async def test_a_refused_transition_is_recorded_alerted_and_the_mission_goes_on(
    mission_harness: MissionHarness, poison: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = mission_harness
    caplog.set_level(logging.ERROR)
    start = await h.today() + timedelta(days=10)
    handle = await h.submit(start, start + timedelta(days=180), prefix="POISON")
    pid = (await h.state(handle)).mission_id
    await h.retain_with_documents(handle, await h.today())

    await h.sign(handle, PaymentOffer.FLASH, po_number=poison)

    state = await h.until(handle, lambda s: s.stage is MissionStage.TO_START)
    assert state.failed_transitions == ["purchase_order.confirmed"]
    assert [e.kind for e in state.timeline].count("transition.failed") == 1
    refused = await h.rows(
        sa.select(MissionEvent.data).where(
            MissionEvent.mission_id == pid, MissionEvent.kind == "transition.failed"
        )
    )
    assert len(refused) == 1, refused
    (data,) = refused[0]
    assert data["transition"] == "purchase_order.confirmed"
    assert "23514" in data["reason"] and "ck_purchase_orders_poison" in data["reason"]
    assert poison not in str(data)
    # The next event of the mission was written: its contract and its stage.
    contracts = sa.select(sa.func.count()).where(Contract.mission_id == pid)
    assert await h.count(contracts) == 1
    orders = sa.select(sa.func.count()).where(PurchaseOrder.mission_id == pid)
    assert await h.count(orders) == 0
    stage_rows = await h.rows(
        sa.select(MissionEvent.kind).where(MissionEvent.mission_id == pid).order_by(MissionEvent.id)
    )
    kinds = [kind for (kind,) in stage_rows]
    assert kinds.index("transition.failed") < kinds.index("contract.signed"), kinds

    (alert,) = await h.mails(about(pid, ALERT), 1)
    assert "purchase_order.confirmed" in alert.subject and poison not in alert.text()
    assert "23514" in alert.text()

    async def attribute_set() -> bool:
        described = await handle.describe()
        return described.typed_search_attributes.get(FAILED_TRANSITIONS) == [
            "purchase_order.confirmed"
        ]

    try:
        await eventually(attribute_set, within=10)
    except AssertionError:
        described = await handle.describe()
        raise AssertionError(
            f"FailedTransitions not set on {handle.id}: {described.typed_search_attributes}"
        ) from None

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(pid in message and "purchase_order.confirmed" in message for message in errors), (
        errors
    )
    assert not any(poison in message for message in errors), errors
    # Once: no second alert by the time the mission's later e-mails are in.
    await h.mails(about(pid, "validée : démarrage"), 1)
    assert len(h.sent(pid, ALERT)) == 1
    await record_history(handle, "mission_transition_refused")


async def test_a_refused_cra_validation_fails_its_cycle_visibly_once(
    cra_harness: CraHarness, db_engine: AsyncEngine
) -> None:
    h = cra_harness
    inp = await h.mission(offer=PaymentOffer.EXPRESS)
    mid = inp.mission_id
    refuse = f"NOT (mission_id = '{mid}' AND status = 'validated')"
    async with refusing(db_engine, "cras", refuse) as name:
        handle = await h.start(inp)
        await h.send(handle, "cra.submitted", submitted(inp, "19"))
        await h.send(handle, "cra.validated", validated(inp))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == DATA_REFUSED, cause
    assert name in cause.message
    (alert,) = await h.mails(about(mid, ALERT), 1)
    assert "cra.validated" in alert.subject
    async with db_engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(MissionEvent.kind).where(MissionEvent.mission_id == mid)
            )
        ).all()
        invoices = (
            await connection.execute(sa.select(sa.func.count()).where(Invoice.mission_id == mid))
        ).scalar_one()
    kinds = [kind for (kind,) in rows]
    assert kinds.count("transition.failed") == 1, kinds
    assert "cra.validated" not in kinds and invoices == 0  # nothing of the month half-written
    assert len([m for m in h.sink.messages if about(mid, ALERT)(m)]) == 1
    await record_history(handle, "cra_validation_refused")


async def test_a_refused_payment_stops_its_payout_visibly_once(
    payout_harness: PayoutHarness, db_engine: AsyncEngine
) -> None:
    h = payout_harness
    handle, inp = await h.start(PaymentOffer.EXPRESS)
    mid = inp.mission_id
    assert inp.terms.payout_date is not None
    async with refusing(db_engine, "payouts", f"NOT (mission_id = '{mid}' AND status = 'paid')"):
        await h.reach_payment(inp.terms.payout_date)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == DATA_REFUSED, cause
    (alert,) = await h.mails(about(mid, ALERT), 1)
    assert "payout.paid" in alert.subject
    async with db_engine.connect() as connection:
        kinds = list(
            (
                await connection.execute(
                    sa.select(MissionEvent.kind).where(MissionEvent.mission_id == mid)
                )
            ).scalars()
        )
        status = (
            await connection.execute(sa.select(Payout.status).where(Payout.mission_id == mid))
        ).scalar_one()
    assert kinds.count("transition.failed") == 1 and "payout.paid" not in kinds, kinds
    assert status is PayoutStatus.SCHEDULED  # no money moved on a row that was not written
    await record_history(handle, "payout_transition_refused")
